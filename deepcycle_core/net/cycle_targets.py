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

Frame conventions (the store's): ``birth_frame`` is the daughter's first frame (age in [0, dt)), and
``division_frame`` the mother's last (age in (T - dt, T]); both are counted at the frame's middle.
Pure numpy/pandas (no torch): the labels are a data contract shared by training and scoring.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["CYCLE_COLUMNS", "SOURCES", "CycleTargets", "as_unit_vectors", "cycle_targets", "doubling_time_of_store_cells"]

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


def cycle_targets(cells: pd.DataFrame, frame_interval_h: float, T_hours: float) -> CycleTargets:
    """Targets for every row of a cell table with ``frame, birth_frame, division_frame`` (-1 = unseen).

    ``T_hours`` turns hours into a cycle fraction; it must be a positive finite number.
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
