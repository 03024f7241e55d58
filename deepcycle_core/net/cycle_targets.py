"""Cycle-position targets from the movie's own tracks: time since birth and time to division.

Every FUCCI training set comes from a time-lapse, and its tracks know more than four median-split
classes: a track born in the movie knows each of its cells' exact time since division, a track that
divides in the movie knows each cell's time to division, even when neither is a whole cycle. With one
cycle length ``T`` (the population's doubling time from the growth curve, nothing fitted on held-out
tracks) each such cell gets a position on the cycle,

* born in the movie, ``t_b`` hours since division:   ``a = t_b / T``       (kept while ``a < 1``),
* divides in the movie, ``t_d`` hours to division:   ``a = 1 - t_d / T``   (kept while ``a > 0``),
* both (a full-cycle track, held out from fitting):  ``a = t_b / (t_b + t_d)`` (exact),

and a network can learn ``(cos 2 pi a, sin 2 pi a)`` from a single crop: division is the origin and the
direction is time's by construction, with no FUCCI rule and no ring to orient. The error of the label
itself grows with distance from the seen event (a cell's own cycle differs from ``T`` by ~10 %), so
early-cycle labels come mostly from born tracks and late ones from dividing tracks.

Only events the movie shows count (:func:`visible_events`): a birth when the daughter is in the field at
its first frame and its mother in the field just before it, a division when the mother is in the field
at its last frame and a daughter just after it. A simulator knows births outside the imaged field (a
cell that drifted in) and an ingested movie's tracker does not; the same rule holds for both, so the
labels rest only on what a tracker could see.

Frame conventions (the store's): ``birth_frame`` is the daughter's first frame (age in [0, dt)), and
``division_frame`` the mother's last (age in (T - dt, T]); both are counted at the frame's middle.
Pure numpy/pandas (no torch): the labels are a data contract shared by training and scoring.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["CYCLE_COLUMNS", "MAX_EVENT_GAP_FRAMES", "SOURCES", "TRACK_COLUMNS", "CycleTargets", "as_unit_vectors",
           "cycle_targets", "doubling_time_of_store_cells", "visible_events"]

#: The cell-table columns the visibility rule reads (``field`` too when present).
TRACK_COLUMNS: tuple[str, ...] = ("track_id", "parent_track_id", "frame", "birth_frame", "division_frame")

#: A tracker may bridge this many missed frames between a mother and her daughter: the package's own
#: tracker closes gaps of up to 4 frames by default (``deepcycle_core.movies.detect_track``), so an event it
#: links across such a gap in an ingested movie is seen, and the simulator's truth is read the same way.
MAX_EVENT_GAP_FRAMES = 4

#: Where a cell's target came from (``source`` codes): no event seen, birth, division, both.
SOURCES: tuple[str, ...] = ("none", "birth", "division", "full_cycle")


#: The cycle head's two outputs in a descriptor table: (cos, sin) of 2 pi x position.
CYCLE_COLUMNS: tuple[str, str] = ("cycle_cos", "cycle_sin")


@dataclass(frozen=True)
class CycleTargets:
    """Per-cell cycle position in [0, 1) (NaN when unknown) and which event it came from."""

    position: np.ndarray  # (n,) float64, NaN = no target
    source: np.ndarray  # (n,) int8 index into SOURCES
    T_hours: float

    @property
    def known(self) -> np.ndarray:
        return np.isfinite(self.position)

    def counts(self) -> dict[str, int]:
        """Cells per source (what the labels rest on, for the chapter and the card)."""
        return {name: int((self.source == i).sum()) for i, name in enumerate(SOURCES)}


def doubling_time_of_store_cells(cells: pd.DataFrame) -> float:
    """Population doubling time (h) from the cells seen per frame: the ``T`` the targets use.

    Raises ``ValueError`` (from the growth fit) when the count does not grow.
    """
    from ..data.growth import doubling_time_from_counts  # the one growth-curve rule (torch-free)

    counts = cells.groupby("time_h").size()
    return float(doubling_time_from_counts(counts.index.to_numpy(), counts.to_numpy()))


def visible_events(cells: pd.DataFrame, max_gap: int = MAX_EVENT_GAP_FRAMES) -> tuple[np.ndarray, np.ndarray]:
    """``(birth_seen, division_seen)`` per row: did the imaged field show this cell's track being born /
    dividing?

    A birth is seen when the track has a crop at its ``birth_frame`` and its mother (``parent_track_id``,
    same field) has one within ``1 + max_gap`` frames before; a division when the track has a crop at its
    ``division_frame`` and a daughter has one within ``1 + max_gap`` frames after. Rows of untracked cells
    (track -1) see nothing.
    """
    from ..data.split import track_keys  # the one (field, track) key rule, torch-free

    missing = [c for c in TRACK_COLUMNS if c not in cells.columns]
    if missing:
        raise ValueError(f"the cell table lacks {missing}: which births and divisions the movie shows is read "
                         "from its tracks (track_id, parent_track_id, frame)")
    key, parent_key = track_keys(cells)
    frame = cells["frame"].to_numpy(np.int64)
    born = cells["birth_frame"].to_numpy(np.int64)
    div = cells["division_frame"].to_numpy(np.int64)
    t = pd.DataFrame({"key": key, "parent": parent_key, "frame": frame, "born": born, "div": div})
    t = t[t["key"] >= 0]
    g = t.groupby("key")
    track = pd.DataFrame({"first": g["frame"].min(), "last": g["frame"].max(), "born": g["born"].first(),
                          "div": g["div"].first(), "parent": g["parent"].first()})
    # the mother's last crop before the birth, and the daughters' first crop after the division
    mother_last = track["last"].reindex(track["parent"].to_numpy()).to_numpy()
    b_ok = ((track["born"] >= 0) & (track["first"] == track["born"])
            & (mother_last >= track["born"] - 1 - max_gap) & (mother_last <= track["born"] - 1))
    kids_first = track.loc[track["parent"] >= 0].groupby("parent")["first"].min()
    first_kid = kids_first.reindex(track.index).to_numpy()
    d_ok = ((track["div"] >= 0) & (track["last"] == track["div"])
            & (first_kid >= track["div"] + 1) & (first_kid <= track["div"] + 1 + max_gap))
    birth_seen = np.zeros(len(cells), dtype=bool)
    division_seen = np.zeros(len(cells), dtype=bool)
    rows = key >= 0
    birth_seen[rows] = b_ok.reindex(key[rows]).to_numpy(dtype=bool)
    division_seen[rows] = d_ok.reindex(key[rows]).to_numpy(dtype=bool)
    return birth_seen, division_seen


def cycle_targets(
    cells: pd.DataFrame, frame_interval_h: float, T_hours: float, *, visible_only: bool = True
) -> CycleTargets:
    """Targets for every row of a cell table with ``frame, birth_frame, division_frame`` (-1 = unseen).

    ``T_hours`` turns hours into a cycle fraction; it must be a positive finite number. With
    ``visible_only`` (the default, and the rule of every training run) a birth or division counts only
    when the movie shows it (:func:`visible_events`, which needs the track columns); ``False`` trusts
    ``birth_frame``/``division_frame`` as given (a table without tracks).
    """
    missing = [c for c in ("frame", "birth_frame", "division_frame") if c not in cells.columns]
    if missing:
        raise ValueError(f"the cell table lacks {missing}: cycle targets need the tracks' birth and division frames")
    if not (np.isfinite(frame_interval_h) and frame_interval_h > 0):
        raise ValueError(f"frame interval must be a positive number of hours, got {frame_interval_h!r}")
    if not (np.isfinite(T_hours) and T_hours > 0):
        raise ValueError(f"cycle length T must be a positive number of hours, got {T_hours!r}")
    frame = cells["frame"].to_numpy(np.float64)
    born = cells["birth_frame"].to_numpy(np.int64)
    div = cells["division_frame"].to_numpy(np.int64)
    has_b, has_d = born >= 0, div >= 0
    if visible_only:
        seen_b, seen_d = visible_events(cells)
        has_b, has_d = has_b & seen_b, has_d & seen_d
    t_b = (frame - born + 0.5) * frame_interval_h
    t_d = (div - frame + 0.5) * frame_interval_h
    pos = np.full(len(cells), np.nan)
    src = np.zeros(len(cells), dtype=np.int8)
    only_b = has_b & ~has_d
    a = t_b / T_hours
    ok = only_b & (a < 1.0)
    pos[ok], src[ok] = a[ok], 1
    only_d = has_d & ~has_b
    a = 1.0 - t_d / T_hours
    ok = only_d & (a > 0.0)
    pos[ok], src[ok] = a[ok], 2
    both = has_b & has_d
    pos[both] = t_b[both] / (t_b[both] + t_d[both])
    src[both] = 3
    return CycleTargets(position=np.mod(pos, 1.0), source=src, T_hours=float(T_hours))


def as_unit_vectors(position: Any) -> np.ndarray:
    """(n, 2) float32 ``(cos, sin)`` of ``2 pi position``; rows of NaN where the position is unknown."""
    a = 2.0 * np.pi * np.asarray(position, dtype=np.float64)
    return np.stack([np.cos(a), np.sin(a)], axis=1).astype(np.float32)
