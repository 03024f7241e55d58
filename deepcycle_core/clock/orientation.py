"""Which way time runs around a ring, where division sits on it, and whether it is a clock at all.

Why: a closed curve through the descriptors has no direction and no origin of its own. Every FUCCI
training set comes from a time-lapse movie, and the movie already says both, whatever the reporter's
dynamics: along each tracked cell time runs forward, so the ring's positions must advance along the
tracks; and the first frames of a daughter track are the cells that have just divided, so their
positions mark the origin. Partial tracks are enough (full-cycle tracks stay held out). The same
steps, read arc by arc, show whether the ring is a clock: on a clock the positions advance (or at
worst stall) everywhere; a ring that *folds* back on itself has arcs where they run backwards, and
no origin or direction can turn that into a trustworthy pseudotime. That is reported, not hidden.

Positions are ring parameters in turns, [0, 1). Nothing here reads ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .metrics import TWO_PI
from ..data.split import track_keys

__all__ = [
    "MovieTooShort",
    "NOT_A_CLOCK",
    "TrackTable",
    "TrackSteps",
    "MovieOrientation",
    "RingQuality",
    "track_steps",
    "orient_by_tracks",
    "ring_quality",
]


#: Verdicts under which a ring is no clock: no hours, never a passed target.
NOT_A_CLOCK: tuple[str, ...] = ("folded", "reversed", "undirected")


class MovieTooShort(ValueError):
    """The movie has too few tracks or divisions to orient the ring (a snapshot, or nearly): another
    rule may orient it. Not raised when the tracks are there but the ring does not move with time."""


def _wrap(d: np.ndarray) -> np.ndarray:
    """A difference of positions in turns, wrapped to [-0.5, 0.5)."""
    return (np.asarray(d, dtype=float) + 0.5) % 1.0 - 0.5


def _circ_mean(x: np.ndarray) -> tuple[float, float]:
    """Circular mean (turns, in [0, 1)) and mean resultant length of positions in turns."""
    z = np.exp(1j * TWO_PI * np.asarray(x, dtype=float)).mean()
    return float((np.angle(z) / TWO_PI) % 1.0), float(abs(z))


@dataclass(frozen=True)
class TrackTable:
    """What a movie says about a set of cells: which track each is on, when it was imaged, and how long
    after its birth (NaN where the birth was not seen, e.g. cells present in the first frame)."""

    track: np.ndarray  # int key per cell; negative = not tracked
    time_h: np.ndarray
    since_birth_h: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.track)
        if len(self.time_h) != n or len(self.since_birth_h) != n:
            raise ValueError("track, time_h and since_birth_h must have one entry per cell")

    def __len__(self) -> int:
        return len(self.track)

    def subset(self, idx: np.ndarray) -> "TrackTable":
        return TrackTable(self.track[idx], self.time_h[idx], self.since_birth_h[idx])

    @classmethod
    def from_cells(cls, cells: pd.DataFrame) -> "TrackTable":
        """From a cell table: ``track_id, frame, time_h`` (and ``field``, ``birth_frame`` when present).

        Time since birth is ``time_h`` minus the time of the track's birth frame, for tracks whose
        birth frame was seen (``birth_frame`` >= 0); the time of a frame is read off the table itself.
        """
        missing = [c for c in ("track_id", "frame", "time_h") if c not in cells.columns]
        if missing:
            raise ValueError(f"the cell table lacks column(s) {missing}: no track information")
        tid = cells["track_id"].to_numpy().astype(np.int64)
        key = np.where(tid >= 0, track_keys(cells)[0], -1)
        time_h = cells["time_h"].to_numpy(dtype=float)
        frame = cells["frame"].to_numpy(dtype=float)
        since = np.full(len(cells), np.nan)
        if "birth_frame" in cells.columns:
            born = cells["birth_frame"].to_numpy(dtype=float)
            ok = (born >= 0) & (tid >= 0)
            if ok.any():
                hours_per_frame = _hours_per_frame(frame, time_h)
                since[ok] = (frame[ok] - born[ok]) * hours_per_frame
        return cls(key, time_h, since)


def _hours_per_frame(frame: np.ndarray, time_h: np.ndarray) -> float:
    """The frame interval in hours, from the table's own frame numbers and times (least squares)."""
    f = frame - frame.min()
    t = time_h - time_h[np.argmin(frame)]
    den = float(np.sum(f * f))
    if den <= 0:
        raise ValueError("cannot tell the frame interval: every cell is in the same frame")
    return float(np.sum(f * t) / den)


@dataclass(frozen=True)
class TrackSteps:
    """Pairs of positions of one cell ``lag_h`` apart: where each pair starts, its step (turns, wrapped
    to [-0.5, 0.5)), the time between them, and the track."""

    start: np.ndarray
    step: np.ndarray
    dt_h: np.ndarray
    track: np.ndarray

    def __len__(self) -> int:
        return len(self.step)


def track_steps(pos: Any, tracks: TrackTable, *, lag_h: float = 1.0, max_lag_factor: float = 1.5) -> TrackSteps:
    """Each cell paired with the same track's first cell at least ``lag_h`` later (and at most
    ``max_lag_factor * lag_h`` later: gaps in a track make no pair).

    A lag of about an hour averages out frame-to-frame jitter of the descriptor yet keeps each step
    far below half a turn, so wrapping it is unambiguous on any ring that behaves like a clock.
    """
    if not lag_h > 0:
        raise ValueError(f"lag_h must be positive, got {lag_h}")
    pos = np.asarray(pos, dtype=float) % 1.0
    if len(pos) != len(tracks):
        raise ValueError(f"{len(pos)} positions but {len(tracks)} track entries")
    ok = (tracks.track >= 0) & np.isfinite(tracks.time_h) & np.isfinite(pos)
    idx = np.flatnonzero(ok)
    order = idx[np.lexsort((tracks.time_h[idx], tracks.track[idx]))]
    key, t = tracks.track[order], tracks.time_h[order]
    bounds = np.flatnonzero(np.diff(key)) + 1
    starts, stops = np.concatenate([[0], bounds]), np.concatenate([bounds, [len(order)]])
    a_parts, b_parts = [], []
    for lo, hi in zip(starts, stops):
        if hi - lo < 2:
            continue
        tt = t[lo:hi]
        j = np.searchsorted(tt, tt + lag_h * (1.0 - 1e-9), side="left")
        has = j < (hi - lo)
        jj = np.minimum(j, hi - lo - 1)
        has &= (tt[jj] - tt) <= lag_h * max_lag_factor
        a_parts.append(lo + np.flatnonzero(has))
        b_parts.append(lo + jj[has])
    if not a_parts:
        empty = np.empty(0)
        return TrackSteps(empty, empty, empty, np.empty(0, dtype=np.int64))
    a, b = order[np.concatenate(a_parts)], order[np.concatenate(b_parts)]
    return TrackSteps(pos[a], _wrap(pos[b] - pos[a]), tracks.time_h[b] - tracks.time_h[a], tracks.track[a])


def _first_frames_after_birth(tracks: TrackTable, window_h: float) -> np.ndarray:
    """Indices of each born track's earliest cell, when it was imaged at most ``window_h`` after birth."""
    since = tracks.since_birth_h
    ok = np.flatnonzero(np.isfinite(since) & (since >= 0) & (since <= window_h) & (tracks.track >= 0))
    if ok.size == 0:
        return ok
    order = ok[np.lexsort((since[ok], tracks.track[ok]))]
    first = np.concatenate([[True], np.diff(tracks.track[order]) != 0])
    return order[first]


@dataclass(frozen=True)
class MovieOrientation:
    """Direction and origin read off the movie's tracks.

    ``pseudotime = (direction * (raw - origin)) mod 1``. ``forward_tracks`` is the share of the judged
    tracks whose position advances the chosen way; ``z`` the sign test's evidence for that majority
    (standard deviations from an even split); ``n_births`` how many daughter
    tracks' first cells placed the origin, ``birth_spread`` their circular spread (1 - mean resultant
    length: 0 = all at one point).
    """

    direction: int
    origin: float
    forward_tracks: float
    z: float
    n_tracks: int
    n_births: int
    birth_spread: float
    rule: str = "movie: time runs forward along the tracks; daughters' first frames mark division"

    def apply(self, raw: Any) -> np.ndarray:
        return (self.direction * (np.asarray(raw, dtype=float) - self.origin)) % 1.0


def orient_by_tracks(
    raw: Any,
    tracks: TrackTable,
    *,
    min_span_h: float = 2.0,
    birth_window_h: float = 1.0,
    min_tracks: int = 10,
    min_births: int = 10,
    min_z: float = 3.0,
) -> MovieOrientation:
    """Direction from the tracks, origin from the cells just born.

    Direction: for each track spanning at least ``min_span_h``, the Spearman correlation of its
    unwrapped position with time; the direction is the sign that most tracks agree on, if a sign test
    puts that majority ``min_z`` standard deviations from an even split. Ranks, not step sizes: a
    ring that stalls for long stretches and jumps in others still shows which way it mostly turns.
    Origin: the circular mean of the oriented positions of the daughter tracks' first cells (each
    track's earliest cell, if seen at most ``birth_window_h`` after its birth: a later one would pull
    the origin forward by its age). Raises :class:`MovieTooShort` when the movie has too few tracks or
    births, and ValueError when the tracks do not agree on a direction (no clock to orient).
    """
    from .metrics import grouped_spearman

    raw = np.asarray(raw, dtype=float) % 1.0
    ok = tracks.track >= 0
    per = grouped_spearman(tracks.track[ok], tracks.time_h[ok], raw[ok]).dropna(subset=["spearman"])
    per = per[per["duration_h"] >= min_span_h]
    if len(per) < min_tracks:
        raise MovieTooShort(f"only {len(per)} tracks span {min_span_h:g} h or more (need {min_tracks}): "
                            "the movie cannot orient the ring")
    n_pos, n_neg = int((per["spearman"] > 0).sum()), int((per["spearman"] < 0).sum())
    z = (n_pos - n_neg) / np.sqrt(max(n_pos + n_neg, 1))
    if not abs(z) >= min_z:
        raise ValueError(
            f"positions do not move consistently along the {len(per)} tracks ({n_pos} advance, {n_neg} go back; "
            f"sign test z = {z:.2f}): the ring does not order time, so neither its direction nor its origin can be read"
        )
    direction = 1 if z > 0 else -1
    forward = (n_pos if direction == 1 else n_neg) / len(per)
    newborn = _first_frames_after_birth(tracks, birth_window_h)
    if newborn.size < min_births:
        raise MovieTooShort(
            f"only {newborn.size} daughter tracks seen within {birth_window_h:g} h of their birth (need {min_births}): "
            "the movie shows too few divisions to place the origin"
        )
    x = (direction * raw[newborn]) % 1.0
    origin_x, r = _circ_mean(x)
    return MovieOrientation(
        direction=direction,
        origin=float((direction * origin_x) % 1.0),
        forward_tracks=float(forward),
        z=float(abs(z)),
        n_tracks=int(len(per)),
        n_births=int(newborn.size),
        birth_spread=float(1.0 - r),
    )


@dataclass(frozen=True)
class RingQuality:
    """Does the oriented ring tell time along the movie's own (fitting) tracks, and where not.

    ``tracks`` has one row per track long enough to judge: the Spearman correlation of its unwrapped
    pseudotime with time (as the validation does on held-out tracks, here on the fitting tracks the
    ring was made from). ``arcs`` has one row per arc of the ring: the steps starting there, their mean
    rate (turns per hour) and the share going backwards — a stall shows as a rate near zero, a fold as a
    negative one. ``verdict``: ``"clock"``; ``"reversed"`` when time runs backwards along most tracks
    (median correlation below zero: the orientation is wrong); ``"folded"`` when, in more than
    ``max_backward_share`` of the ``window_h``-long stretches of the tracks, time clearly runs backwards
    (correlation below -0.5; noise alone rarely does that over ~24 frames) although most tracks run
    forward — parts of the cycle are mapped onto the ring the wrong way round.
    """

    verdict: str
    median_spearman: float
    backward_share: float
    forward_rate: float  # median over tracks of the mean step rate, turns per hour
    tracks: pd.DataFrame = field(repr=False)
    arcs: pd.DataFrame = field(repr=False)
    reason: str = ""

    @property
    def is_clock(self) -> bool:
        return self.verdict == "clock"

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "reason": self.reason,
            "n_tracks": int(len(self.tracks)),
            "median_spearman": round(self.median_spearman, 4),
            "backward_share": round(self.backward_share, 4),
            "forward_rate_turns_per_h": round(self.forward_rate, 5),
            "arcs": self.arcs.round(5).to_dict(orient="list"),
        }


def ring_quality(
    pseudotime: Any,
    tracks: TrackTable,
    *,
    n_arcs: int = 12,
    lag_h: float = 1.0,
    min_span_h: float = 3.0,
    min_tracks: int = 10,
    window_h: float = 4.0,
    max_backward_share: float = 0.15,
) -> RingQuality:
    """Judge ORIENTED positions (pseudotime) along the tracks: per track, and arc by arc.

    A clock advances along every track (slowly where the descriptor changes little, e.g. a long G1);
    a folded ring — two stretches of the cycle mapped onto one arc in opposite directions, or a
    crescent whose end runs back to its start — has stretches of tracks along which it runs backwards.
    """
    from .metrics import grouped_spearman

    p = np.asarray(pseudotime, dtype=float) % 1.0
    ok = tracks.track >= 0
    track, time_h, p = tracks.track[ok], tracks.time_h[ok], p[ok]
    per = grouped_spearman(track, time_h, p).dropna(subset=["spearman"])
    per = per[per["duration_h"] >= min_span_h]
    if len(per) < min_tracks:
        raise ValueError(f"only {len(per)} tracks span {min_span_h:g} h or more (need {min_tracks}): cannot judge the ring")
    # the same correlation in windows of each track: a fold is local, a whole track may hide it
    keys, inv = np.unique(track, return_inverse=True)
    t0 = np.full(keys.size, np.inf)
    np.minimum.at(t0, inv, time_h)
    window = inv.astype(np.int64) * 100_000 + ((time_h - t0[inv]) // window_h).astype(np.int64)
    win = grouped_spearman(window, time_h, p).dropna(subset=["spearman"])
    win = win[win["duration_h"] >= 0.75 * window_h]
    st = track_steps(p, tracks, lag_h=lag_h)
    rate = st.step / st.dt_h
    arc = np.minimum((st.start * n_arcs).astype(int), n_arcs - 1)
    n = np.bincount(arc, minlength=n_arcs)
    arcs = pd.DataFrame({
        "arc_start": np.arange(n_arcs) / n_arcs,
        "n_steps": n,
        "mean_rate": np.bincount(arc, weights=rate, minlength=n_arcs) / np.maximum(n, 1),
        "backward_fraction": np.bincount(arc, weights=(st.step < 0).astype(float), minlength=n_arcs) / np.maximum(n, 1),
    })
    keys, inv = np.unique(st.track, return_inverse=True)
    forward_rate = float(np.median(np.bincount(inv, weights=rate) / np.bincount(inv))) if len(st) else float("nan")
    median = float(per["spearman"].median())
    backward = float(np.mean(win["spearman"] < -0.5)) if len(win) else float("nan")
    verdict, reason = "clock", ""
    if median < 0:
        verdict = "reversed"
        reason = f"time runs backwards along most tracks (median per-track Spearman {median:.2f})"
    elif backward > max_backward_share:
        bad = arcs.loc[(arcs["mean_rate"] < 0) & (arcs["n_steps"] > 0), "arc_start"].to_numpy()
        where = f" (negative mean rate in the arcs starting at {', '.join(f'{a:.2f}' for a in bad)})" if bad.size else ""
        verdict = "folded"
        reason = (f"time runs clearly backwards in {backward:.0%} of the {window_h:g}-h stretches of the tracks{where}: "
                  "parts of the cycle lie on the ring the wrong way round")
    return RingQuality(verdict, median, backward, forward_rate, per, arcs, reason)
