"""Each cell's own uncertainty: a calibrated interval on the cycle around its clock position.

A clock position alone does not say which cells to trust. The cycle head gives each cell a second number
for free, its *confidence* (the length of its (cos, sin) output: near 1 where the crop is clear, small
where the head hedges between positions), and that number ranks cells by how far off they tend to be.
Turning it into an interval that holds its level needs labels the network never trained on: the
validation split's cells that carry a cycle target (:mod:`deepcycle_core.net.cycle_targets`, from births
and divisions the movie shows; never a held-out cell).

Split conformal calibration, binned by confidence: the cells are cut into bins of equal count along
the confidence, and each bin's half-width is the conformal quantile (rank ``ceil((n + 1) level)``) of its
cells' circular errors, made non-increasing in confidence so that a clearer crop never gets a wider
interval. A cell's interval is its position +/- the half-width of its bin, an arc of the cycle.

Caveat: the calibration labels are partial-track targets, off by the cell's own cycle length's
deviation from ``T`` (~10 % of the distance to the event), so the intervals are slightly conservative
where labels are far from their event; the held-out coverage in the validation chapter says by how much.
Pure numpy (torch-free).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["DEFAULT_LEVEL", "MIN_PER_BIN", "N_BINS", "IntervalCalibration", "calibrate_intervals",
           "circular_distance", "forward_arc_length", "on_forward_arc"]

#: The interval's nominal coverage: 80 % of cells should lie inside their interval.
DEFAULT_LEVEL = 0.8

#: Confidence bins of the calibration (fewer when there are too few labelled cells).
N_BINS = 8

#: Fewest calibration cells a bin may hold: a conformal quantile at 80 % needs a few dozen.
MIN_PER_BIN = 50


def circular_distance(a: Any, b: Any) -> np.ndarray:
    """Distance on the cycle (positions in turns) between ``a`` and ``b``, in [0, 0.5]."""
    d = np.mod(np.asarray(a, dtype=float) - np.asarray(b, dtype=float), 1.0)
    return np.minimum(d, 1.0 - d)


def forward_arc_length(lo: Any, hi: Any) -> np.ndarray:
    """Length in turns of the arc going FORWARD from ``lo`` to ``hi`` (positions on a circle of period 1),
    in [0, 1); ``lo == hi`` is an empty arc."""
    lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    return np.mod(hi - lo, 1.0)


def on_forward_arc(x: Any, lo: Any, hi: Any) -> np.ndarray:
    """True where position ``x`` lies on the arc going forward from ``lo`` to ``hi`` (ends included),
    wrapping past 1 -> 0: ``lo`` 0.9, ``hi`` 0.1 covers 0.95 and 0.05, not 0.5. Positions in turns;
    any value is taken modulo 1. Why forward: an interval on a clock has a direction (time's); the
    shorter of the two arcs would turn a wide interval into its complement."""
    x, lo = np.asarray(x, dtype=float), np.asarray(lo, dtype=float)
    if not (np.isfinite(x).all() and np.isfinite(lo).all() and np.isfinite(np.asarray(hi, dtype=float)).all()):
        raise ValueError("on_forward_arc needs finite positions and interval ends")
    return np.mod(x - lo, 1.0) <= forward_arc_length(lo, hi) + 1e-12


@dataclass(frozen=True)
class IntervalCalibration:
    """Half-widths (turns) per confidence bin; ``edges`` are the inner bin edges (len = bins - 1)."""

    level: float
    edges: np.ndarray
    half_width: np.ndarray
    n_cells: np.ndarray

    def half_widths(self, confidence: Any) -> np.ndarray:
        """The half-width (turns) of each cell's interval from its confidence."""
        return self.half_width[np.searchsorted(self.edges, np.asarray(confidence, dtype=float), side="right")]

    def intervals(self, position: Any, confidence: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(lo, hi, width)`` in turns: the arc from ``lo`` forward to ``hi`` and its length."""
        h = self.half_widths(confidence)
        p = np.asarray(position, dtype=float)
        return np.mod(p - h, 1.0), np.mod(p + h, 1.0), 2.0 * h

    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level, "edges": self.edges.tolist(), "half_width": self.half_width.tolist(),
                "n_cells": self.n_cells.tolist()}


def calibrate_intervals(
    position: Any, confidence: Any, label: Any, *, level: float = DEFAULT_LEVEL, n_bins: int = N_BINS,
    min_per_bin: int = MIN_PER_BIN,
) -> IntervalCalibration:
    """Conformal half-widths from calibration cells' positions, confidences and labels (all in turns).

    Pass only cells the read-out never trained on. Raises ``ValueError`` with fewer than ``min_per_bin``
    labelled cells, or a level outside (0, 1).
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"interval level must lie in (0, 1), got {level!r}")
    p, c, y = (np.asarray(v, dtype=float) for v in (position, confidence, label))
    ok = np.isfinite(p) & np.isfinite(c) & np.isfinite(y)
    if ok.sum() < min_per_bin:
        raise ValueError(f"{int(ok.sum())} labelled calibration cells; the intervals need at least {min_per_bin}")
    p, c, y = p[ok], c[ok], y[ok]
    err = circular_distance(p, y)
    k = int(max(1, min(n_bins, ok.sum() // min_per_bin)))
    # bins of equal count by rank (ties split arbitrarily but never leave a bin empty); a new cell goes
    # to the bin whose confidence range holds it
    order = np.argsort(c, kind="stable")
    starts = (np.arange(k) * c.size) // k
    edges = c[order][starts[1:]]
    half = np.empty(k)
    counts = np.empty(k, dtype=np.int64)
    for b in range(k):
        stop = starts[b + 1] if b + 1 < k else c.size
        e = np.sort(err[order[starts[b]:stop]])
        counts[b] = e.size
        rank = min(e.size, math.ceil((e.size + 1) * level))  # the conformal quantile
        half[b] = e[rank - 1]
    # a clearer crop never gets a wider interval: widths non-increasing along confidence
    half = np.maximum.accumulate(half[::-1])[::-1]
    return IntervalCalibration(level=float(level), edges=np.asarray(edges, dtype=float),
                               half_width=np.minimum(half, 0.5), n_cells=counts)
