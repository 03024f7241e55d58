"""Growth and ergodic rate analysis: the population's doubling time and the age a rank stands for.

One home for the two formulas every stage that speaks in hours uses (the training targets, the ring's
hours, the clock's ERA hours, the validation's truth, the conditions' hours): the doubling time from a
growth curve (``1 / slope`` of log2 count against time) and ERA (Kafri et al., Cell 2013): in a steady
exponentially growing population with doubling time T, the fraction F of cells younger than age t is
F = 2(1 - 2^(-t/T)), so t = -T log2(1 - F/2). Pure numpy: every wing may use it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["doubling_time_from_counts", "era_age_fraction", "era_hours", "growth_fit"]


def era_age_fraction(F: Any) -> np.ndarray:
    """Age as a fraction of the doubling time for cumulative fraction ``F`` in [0, 1]: −log2(1 − F/2).

    In a steady exponentially growing population the density of cells at age a (fraction of T) is
    2 ln2 · 2^(−a), so F(a) = 2(1 − 2^(−a)); this inverts it. F = 0 → 0, F = 1 → 1.
    """
    F = np.clip(np.asarray(F, dtype=float), 0.0, 1.0)
    return -np.log2(1.0 - F / 2.0)


def era_hours(pseudotime: Any, T_hours: float, reference: Any | None = None) -> np.ndarray:
    """Hours since division for each pseudotime by ERA; F is the ECDF of ``reference`` (default: itself)."""
    p = np.asarray(pseudotime, dtype=float)
    ref = np.sort(np.asarray(p if reference is None else reference, dtype=float).ravel())
    if ref.size == 0:
        raise ValueError("ERA needs a non-empty reference population")
    F = np.searchsorted(ref, p, side="right") / ref.size
    return float(T_hours) * era_age_fraction(F)


def growth_fit(times_h: Any, counts: Any) -> tuple[float, float]:
    """The growth curve's least-squares line through log2(count) vs time: ``(slope per hour, intercept)``.

    Time points without cells (or not finite) are dropped; raises ValueError when fewer than 3
    remain. :func:`doubling_time_from_counts` is 1 / slope; the intercept is for drawing the line.
    """
    t = np.asarray(times_h, dtype=float).ravel()
    c = np.asarray(counts, dtype=float).ravel()
    if t.shape != c.shape:
        raise ValueError(f"times_h and counts differ in length ({t.size} vs {c.size})")
    ok = np.isfinite(t) & np.isfinite(c) & (c > 0)
    t, c = t[ok], c[ok]
    if np.unique(t).size < 3:
        raise ValueError(f"a growth curve needs at least 3 time points with cells, got {np.unique(t).size}")
    slope, intercept = np.polyfit(t, np.log2(c), 1)
    return float(slope), float(intercept)


def doubling_time_from_counts(times_h: Any, counts: Any) -> float:
    """Population doubling time (hours) from cell counts over time: 1 / slope of log2(count) vs time.

    A least-squares line through log2 counts (:func:`growth_fit`); raises ValueError when there are
    fewer than 3 time points with cells or the population does not grow (the ERA needs exponential
    growth).
    """
    slope = growth_fit(times_h, counts)[0]
    if not slope > 0:
        raise ValueError(f"the cell count does not grow (log2 slope {slope:.3g} per hour): no doubling time")
    return float(1.0 / slope)
