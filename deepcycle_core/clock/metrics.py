"""Circular statistics and track correlations: how well a cycle clock tells real time.

A cycle position lives on a circle, so ordinary correlations and errors mislead at the wrap-around
(a cell at 0.99 of its cycle is next to one at 0.01). Everything here treats positions as angles or as
fractions of a period, and every function is pure numpy/scipy so the validation chapter, the benchmark
and the tests compute the same numbers.

Conventions: angles in radians; ``pseudotime`` in [0, 1) (one turn); hours with an explicit period.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "TWO_PI",
    "circular_mean",
    "fisher_lee",
    "fisher_lee_pairs",
    "jammalamadaka_sengupta",
    "circular_difference",
    "circular_mae",
    "circular_mae_hours",
    "per_track_correlations",
    "grouped_spearman",
    "paper_average_curve",
]

TWO_PI = 2.0 * np.pi


def _angles(name: str, values: Any) -> np.ndarray:
    a = np.asarray(values, dtype=float).ravel()
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return a


def _pair(alpha: Any, beta: Any) -> tuple[np.ndarray, np.ndarray]:
    a, b = _angles("alpha", alpha), _angles("beta", beta)
    if a.shape != b.shape:
        raise ValueError(f"alpha and beta differ in length ({a.size} vs {b.size})")
    if a.size < 3:
        raise ValueError(f"a circular correlation needs at least 3 pairs, got {a.size}")
    return a, b


def circular_mean(angles: Any) -> float:
    """Mean direction in [0, 2π) of angles in radians."""
    a = _angles("angles", angles)
    return float(np.arctan2(np.sin(a).sum(), np.cos(a).sum()) % TWO_PI)


def fisher_lee(alpha: Any, beta: Any) -> float:
    """Fisher–Lee (1983) circular–circular correlation of two angle samples (radians), in [-1, 1].

    Defined as the normalised sum over all pairs i<j of sin(α_i−α_j)·sin(β_i−β_j). It is invariant to
    rotating either sample (so a wrong origin is NOT penalised — pair it with :func:`circular_mae`),
    changes sign under reflection (a reversed clock gives −1), and stays well defined when the angles
    cover the whole circle. Computed in O(n) from sums of cos/sin (Fisher 1993, eq. 6.36) instead of
    the O(n²) pair sum.
    """
    a, b = _pair(alpha, beta)
    n = a.size
    ca, sa, cb, sb = np.cos(a), np.sin(a), np.cos(b), np.sin(b)
    A = np.dot(ca, cb)
    B = np.dot(sa, sb)
    C = np.dot(ca, sb)
    D = np.dot(sa, cb)
    E, F = np.cos(2 * a).sum(), np.sin(2 * a).sum()
    G, H = np.cos(2 * b).sum(), np.sin(2 * b).sum()
    denom = (n * n - E * E - F * F) * (n * n - G * G - H * H)
    if denom <= 0:
        raise ValueError("Fisher–Lee correlation undefined: one sample has (almost) no angular spread")
    return float(4.0 * (A * B - C * D) / np.sqrt(denom))


def fisher_lee_pairs(alpha: Any, beta: Any) -> float:
    """The O(n²) definition of :func:`fisher_lee`; for tests and small samples only."""
    a, b = _pair(alpha, beta)
    da = np.sin(a[:, None] - a[None, :])
    db = np.sin(b[:, None] - b[None, :])
    iu = np.triu_indices(a.size, 1)
    da, db = da[iu], db[iu]
    return float(np.sum(da * db) / np.sqrt(np.sum(da * da) * np.sum(db * db)))


def jammalamadaka_sengupta(alpha: Any, beta: Any) -> float:
    """Jammalamadaka–SenGupta (1988) circular correlation, in [-1, 1].

    Correlates sin(α−ᾱ) with sin(β−β̄) about each sample's mean direction. Kept for comparison with
    other papers; it is unreliable when a sample covers the circle uniformly (as cycle positions of an
    unsynchronised population do), because the mean direction is then ill defined.
    """
    a, b = _pair(alpha, beta)
    sa = np.sin(a - circular_mean(a))
    sb = np.sin(b - circular_mean(b))
    denom = np.sqrt(np.sum(sa * sa) * np.sum(sb * sb))
    if denom == 0:
        raise ValueError("Jammalamadaka–SenGupta correlation undefined: a sample has no spread")
    return float(np.sum(sa * sb) / denom)


def circular_difference(pred: Any, true: Any, period: Any = 1.0) -> np.ndarray:
    """Signed difference pred − true wrapped into [−period/2, period/2); ``period`` may be per element."""
    p = np.asarray(pred, dtype=float)
    t = np.asarray(true, dtype=float)
    per = np.asarray(period, dtype=float)
    if np.any(~np.isfinite(per)) or np.any(per <= 0):
        raise ValueError("period (cycle length) must be positive and finite")
    return (p - t + per / 2.0) % per - per / 2.0


def circular_mae(pred: Any, true: Any, period: Any = 1.0) -> float:
    """Mean absolute circular error, in the units of ``period`` (NaN pairs are ignored)."""
    d = np.abs(circular_difference(pred, true, period))
    d = d[np.isfinite(d)]
    if d.size == 0:
        raise ValueError("circular MAE of an empty sample (no finite pairs)")
    return float(d.mean())


def circular_mae_hours(pred_h: Any, true_h: Any, cycle_h: Any) -> float:
    """Circular mean absolute error in hours between predicted and true time since division.

    ``cycle_h`` is the cycle length: one number for the population, or one per cell (e.g. the
    simulator's ``true_cycle_h``), in which case each cell's error wraps at its own cycle length.
    """
    return circular_mae(pred_h, true_h, cycle_h)


def _unwrap_turns(p: np.ndarray) -> np.ndarray:
    """Unwrap a pseudotime sequence in turns: a jump of more than half a turn is a wrap-around."""
    return np.unwrap(TWO_PI * p) / TWO_PI


def _check_track_frame(df: pd.DataFrame, cols: tuple[str, ...]) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"track table lacks column(s) {missing}; has {list(df.columns)}")


def _track_series(
    df: pd.DataFrame, track_col: str, time_col: str, pseudotime_col: str, min_points: int
) -> Iterator[tuple[Any, np.ndarray, np.ndarray]]:
    """Each track's (id, times, pseudotimes) in time order, finite values only; tracks with fewer than
    ``min_points`` such cells or a constant time are skipped (shared by the per-track statistics)."""
    for tid, g in df.groupby(track_col, sort=True):
        g = g.sort_values(time_col, kind="stable")
        t = g[time_col].to_numpy(dtype=float)
        p = g[pseudotime_col].to_numpy(dtype=float)
        ok = np.isfinite(t) & np.isfinite(p)
        t, p = t[ok], p[ok]
        if t.size >= min_points and np.ptp(t) > 0:
            yield tid, t, p


def per_track_correlations(
    df: pd.DataFrame,
    *,
    track_col: str = "track_id",
    time_col: str = "time_h",
    pseudotime_col: str = "pseudotime",
    min_points: int = 5,
) -> pd.DataFrame:
    """Spearman and Pearson correlation, per track, of unwrapped pseudotime with time since birth.

    Each track is sorted by time; pseudotime is unwrapped along it (a step of more than half a turn
    counts as crossing the origin), so a track that crosses division keeps one monotone clock. Time
    since birth is ``time - first time of the track``, which is exact for full-cycle tracks. Tracks
    with fewer than ``min_points`` cells, or a constant time, are dropped. Returns one row a track:
    track_id, n, duration_h, spearman, pearson.
    """
    _check_track_frame(df, (track_col, time_col, pseudotime_col))
    rows = []
    for tid, t, p in _track_series(df, track_col, time_col, pseudotime_col, min_points):
        u = _unwrap_turns(p)
        since = t - t[0]
        if np.ptp(u) == 0:
            sp = pe = np.nan
        else:
            sp = float(stats.spearmanr(since, u).statistic)
            pe = float(stats.pearsonr(since, u).statistic)
        rows.append({"track_id": tid, "n": int(t.size), "duration_h": float(since[-1]), "spearman": sp, "pearson": pe})
    return pd.DataFrame(rows, columns=["track_id", "n", "duration_h", "spearman", "pearson"])


def grouped_spearman(group: Any, time_h: Any, pseudotime: Any, *, min_points: int = 5) -> pd.DataFrame:
    """Per group (a track, or a stretch of one), the Spearman correlation of its unwrapped pseudotime
    with time -- the statistic of :func:`per_track_correlations`, vectorised over every group at once.

    Sorting, unwrapping and ranking are done for all groups together (no Python loop over groups), so
    hundreds of thousands of groups cost seconds; ties in time or position are ranked by order, not
    averaged (cells of one track have distinct times). Groups with fewer than ``min_points`` finite
    cells or a constant time are dropped. Returns group, n, duration_h, spearman.
    """
    g = np.asarray(group, dtype=np.int64)
    t = np.asarray(time_h, dtype=float)
    p = np.asarray(pseudotime, dtype=float)
    if not (len(g) == len(t) == len(p)):
        raise ValueError("group, time_h and pseudotime must have one entry per cell")
    ok = np.isfinite(t) & np.isfinite(p)
    g, t, p = g[ok], t[ok], p[ok]
    order = np.lexsort((t, g))
    g, t, p = g[order], t[order], p[order]
    empty = pd.DataFrame(columns=["group", "n", "duration_h", "spearman"])
    if g.size == 0:
        return empty
    new = np.concatenate([[True], g[1:] != g[:-1]])
    start = np.flatnonzero(new)
    gid = np.cumsum(new) - 1  # 0..G-1 in sorted order
    pos = np.arange(g.size) - start[gid]  # index within the group = rank of time
    step = np.diff(p, prepend=p[0])
    step = np.where(new, 0.0, (step + 0.5) % 1.0 - 0.5)  # a jump over half a turn crosses the origin
    cs = np.cumsum(step)
    u = cs - cs[start][gid]  # unwrapped, relative to each group's first cell
    order_u = np.lexsort((u, gid))
    rank_u = np.empty(g.size, dtype=float)
    rank_u[order_u] = np.arange(g.size) - start[gid[order_u]]
    x, y = pos.astype(float), rank_u
    n = np.bincount(gid).astype(float)
    sx, sy = np.bincount(gid, x), np.bincount(gid, y)
    sxy, sxx, syy = np.bincount(gid, x * y), np.bincount(gid, x * x), np.bincount(gid, y * y)
    cov = sxy - sx * sy / n
    var_x, var_y = sxx - sx**2 / n, syy - sy**2 / n
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = cov / np.sqrt(var_x * var_y)
    last = np.concatenate([start[1:], [g.size]]) - 1
    duration = t[last] - t[start]
    keep = (n >= min_points) & (duration > 0)
    return pd.DataFrame({"group": g[start][keep], "n": n[keep].astype(int), "duration_h": duration[keep],
                         "spearman": rho[keep]})


def paper_average_curve(
    df: pd.DataFrame,
    *,
    n_points: int = 100,
    track_col: str = "track_id",
    time_col: str = "time_h",
    pseudotime_col: str = "pseudotime",
    unwrap: bool = False,
    min_points: int = 5,
) -> dict[str, Any]:
    """The original paper's statistic: the track-AVERAGED pseudotime curve against relative time.

    Every track (full-cycle tracks expected: birth to division) gets relative time
    (t − t_first) / (t_last − t_first) in [0, 1]; its pseudotime is linearly resampled on ``n_points``
    evenly spaced relative times; the curves are averaged; Spearman and Kendall correlations of the
    mean curve with relative time are returned. Averaging hides per-track errors, which is why the
    validation chapter reports :func:`per_track_correlations` too.

    ``unwrap=False`` averages the raw pseudotimes in [0, 1), as the original did. Then a track that
    crosses the origin contributes a jump of a whole turn, and tracks that start just before and just
    after the origin average to the middle of the ring, so a clock running BACKWARDS can score high.
    ``unwrap=True`` treats the wrap as :func:`per_track_correlations` does: each track is unwrapped
    along time (a step of more than half a turn crosses the origin) and shifted by whole turns so
    that its first value lies in [-0.5, 0.5) -- every track then starts in the same turn, and a clock
    that runs backwards gives a falling mean curve (a negative correlation).

    Returns a dict: relative_time, mean_curve, std_curve (arrays), spearman, kendall, n_tracks.
    """
    _check_track_frame(df, (track_col, time_col, pseudotime_col))
    if n_points < 3:
        raise ValueError(f"n_points must be at least 3, got {n_points}")
    grid = np.linspace(0.0, 1.0, n_points)
    curves = []
    for _, t, p in _track_series(df, track_col, time_col, pseudotime_col, min_points):
        if unwrap:
            p = _unwrap_turns(p)
            p = p - np.floor(p[0] + 0.5)
        rel = (t - t[0]) / (t[-1] - t[0])
        curves.append(np.interp(grid, rel, p))
    if not curves:
        raise ValueError(f"no track with at least {min_points} timed cells to average")
    stack = np.vstack(curves)
    mean = stack.mean(axis=0)
    return {
        "relative_time": grid,
        "mean_curve": mean,
        "std_curve": stack.std(axis=0),
        "spearman": float(stats.spearmanr(grid, mean).statistic),
        "kendall": float(stats.kendalltau(grid, mean).statistic),
        "n_tracks": len(curves),
    }
