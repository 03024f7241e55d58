"""Which phase is a control cell in? Per-track calls from FUCCI and DNA content, the standard read-outs.

Why: to read phase fractions off the clock, its arcs must be cut where the phases meet, and a user
has no ground truth to cut them with, only the control movie's reporters. Two facts hold for every
FUCCI line and every stain, whatever the reporters' dynamics (with or without a low/low stretch at
G1/S): Cdt1 is degraded at S onset, so along one track the Cdt1 (red) maximum marks G1/S; and DNA
content doubles through S, so the integrated nuclear stain, relative to the same cell's G1 level,
ramps from 1 to 2 and then stays. FUCCI alone cannot tell S from G2 nor G2 from M; the phases called
here are therefore the three of a DNA-content histogram: ``G1``, ``S`` and ``G2/M``.

Only cells of tracks in which the red maximum is seen with its rise and its fall are labelled. S
versus G2/M uses the population's S duration: one track's DNA ramp is noisy (its end is off by a few
hours in a quarter of the tracks), the median over the tracks that show the ramp and its plateau is
not. Everything else is left unlabelled (empty string): the calls are a calibration set, not a census.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.ndimage import median_filter

__all__ = ["PHASE_GROUPS", "phase_group", "call_phases"]

from ..data.fucci import PHASE_GROUPS, PHASES  # the phases read off the clock (G2 and M share 4N DNA)


def phase_group(true_phase: pd.Series | np.ndarray) -> np.ndarray:
    """The simulator's four phases folded onto :data:`PHASE_GROUPS` (G2 and M -> ``G2/M``)."""
    ph = np.asarray(true_phase).astype(str)
    return np.where(np.isin(ph, PHASES[2:]), PHASE_GROUPS[2], ph)


def _ramp_duration(t: np.ndarray, r: np.ndarray, t1: float, grid: np.ndarray) -> float:
    """Least-squares duration ``dS`` of a ramp ``r = a + b clip((t - t1) / dS, 0, 1)`` with free level
    ``a`` and rise ``b`` (a stain's absolute scale and the segmentation's bias cancel); NaN unless at
    least 3 frames lie on the plateau after the ramp and the signal at least 1.5-folds across it."""
    best_sse, best = np.inf, np.nan
    for dS in grid:
        x = np.clip((t - t1) / dS, 0.0, 1.0)
        if (t > t1 + dS).sum() < 3 or (t <= t1).sum() < 3:
            continue
        A = np.stack([np.ones_like(x), x], axis=1)
        coef = np.linalg.lstsq(A, r, rcond=None)[0]
        if not coef[0] > 0 or coef[1] < 0.5 * coef[0]:
            continue
        sse = float(((A @ coef - r) ** 2).sum())
        if sse < best_sse:
            best_sse, best = sse, float(dS)
    return best


def call_phases(
    cells: pd.DataFrame,
    dna: np.ndarray,
    *,
    min_drop: float = 0.5,
    min_rise: float = 0.7,
    s_hours: tuple[float, float] = (1.0, 30.0),
    min_ramps: int = 3,
) -> np.ndarray:
    """Per-cell phase calls (``G1``/``S``/``G2/M``, ``''`` when uncertain) of a control time-lapse.

    ``cells``: ``track_id, time_h, fucci_red`` of each crop (any order); ``dna``: its integrated
    nuclear intensity (:func:`deepcycle_core.validation.features.measure`'s ``nuclear_integrated``), same order.
    Along each track the red signal is smoothed (running median of 3 frames); its maximum is G1/S when
    the track shows the rise (an earlier frame below ``min_rise`` x max) and the fall (a later frame
    below ``min_drop`` x max). Frames up to it are G1. The S duration is the median, over tracks that
    show the whole DNA ramp and its plateau (at least ``min_ramps``), of a least-squares ramp fit;
    frames of a G1/S track within that many hours after G1/S are S, later ones G2/M.
    """
    need = {"track_id", "time_h", "fucci_red"}
    if not need <= set(cells.columns):
        raise ValueError(f"phase calls need columns {sorted(need)}; missing {sorted(need - set(cells.columns))}")
    dna = np.asarray(dna, dtype=float)
    if dna.shape != (len(cells),):
        raise ValueError(f"dna has shape {dna.shape}, expected ({len(cells)},)")
    out = np.full(len(cells), "", dtype=object)
    grid = np.arange(s_hours[0], s_hours[1] + 1e-9, 0.25)
    order = np.lexsort((cells["time_h"].to_numpy(), cells["track_id"].to_numpy()))
    tid = cells["track_id"].to_numpy()[order]
    starts = np.flatnonzero(np.r_[True, tid[1:] != tid[:-1]])
    ends = np.r_[starts[1:], tid.size]
    t_all = cells["time_h"].to_numpy(dtype=float)[order]
    red_all = cells["fucci_red"].to_numpy(dtype=float)[order]
    dna_all = dna[order]
    g1s: list[tuple[int, int, float]] = []
    for s, e in zip(starts, ends):
        if e - s < 6:
            continue
        t, red = t_all[s:e], median_filter(red_all[s:e], size=3, mode="nearest")
        k = int(np.argmax(red))
        peak = red[k]
        if not peak > 0 or not (red[:k] < min_rise * peak).any() or not (red[k + 1 :] < min_drop * peak).any():
            continue
        out[order[s:e][: k + 1]] = "G1"
        g1s.append((s, e, float(t[k])))
    # S versus G2/M: the S duration of the population (median of the tracks whose ramp and plateau are
    # both seen; one track's fit is noisy, the population's is not), applied to every G1/S track
    durations = [_ramp_duration(t_all[s:e], dna_all[s:e], t1, grid) for s, e, t1 in g1s]
    durations = np.asarray([d for d in durations if np.isfinite(d)])
    if durations.size < min_ramps:
        return out.astype(str)
    dS = float(np.median(durations))
    for s, e, t1 in g1s:
        t = t_all[s:e]
        idx = order[s:e]
        out[idx[(t > t1) & (t <= t1 + dS)]] = "S"
        out[idx[t > t1 + dS]] = "G2/M"
    return out.astype(str)
