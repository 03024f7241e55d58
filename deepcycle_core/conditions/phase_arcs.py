"""Phase arcs on the clock: where the control's G1, S and G2/M lie, and how often the clock misreads them.

Why: the clock's zero is division, so the phases follow each other around it; cutting it into three
arcs says at a glance where a treatment moves cells, and the control's calls
(:mod:`deepcycle_core.conditions.phase_calls`) say where to cut. The two cuts (G1|S, S|G2/M) are placed so that
the arcs hold the calibration cells' share of each phase (quantiles of their clock positions): each cut
sits where cells misread one way and the other way balance on the control. The misreading matrix
``P(arc | called phase)`` on the control shows how wide the clock's error is against the arcs.

Counting cells per arc (classify and count) is what the figure shows; the phase shares the chapter
reports come from :mod:`deepcycle_core.conditions.phase_readout`, which reads more than the angle. Correcting arc
counts by inverting the misreading matrix (adjusted classify and count) was tried on the control movie
and made the shares worse (the S row is read right only ~2/3 of the time, and the inversion amplifies
the calls' own errors), so it is not offered.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .phase_calls import PHASE_GROUPS

__all__ = ["PhaseArcs", "calibrate_arcs"]


@dataclass(frozen=True)
class PhaseArcs:
    """Cuts on the clock (positions in [0, 1), division at 0) and the control's misreading matrix."""

    cuts: tuple[float, float]  # G1|S and S|G2/M
    misreading: np.ndarray  # (3, 3): rows true phase (PHASE_GROUPS order), columns arc
    n_calibration: int

    def arc_of(self, position: np.ndarray) -> np.ndarray:
        """Index of the arc (0 G1, 1 S, 2 G2/M) each clock position falls in."""
        p = np.mod(np.asarray(position, dtype=float), 1.0)
        return np.searchsorted(np.asarray(self.cuts), p, side="right")

    def raw_shares(self, position: np.ndarray) -> np.ndarray:
        """Share of cells in each arc (classify and count)."""
        arc = self.arc_of(position)
        if arc.size == 0:
            raise ValueError("no cells to read phase shares from")
        return np.bincount(arc, minlength=3)[:3] / arc.size

    def to_dict(self) -> dict:
        return {"cuts": list(self.cuts), "misreading": self.misreading.tolist(), "n_calibration": self.n_calibration,
                "phases": list(PHASE_GROUPS)}


def calibrate_arcs(position: np.ndarray, calls: np.ndarray) -> PhaseArcs:
    """Arcs and misreading matrix from the control's clock positions and phase calls (``''`` ignored)."""
    position = np.mod(np.asarray(position, dtype=float), 1.0)
    calls = np.asarray(calls).astype(str)
    if position.shape != calls.shape:
        raise ValueError(f"positions {position.shape} and calls {calls.shape} differ in shape")
    keep = calls != ""
    pos, lab = position[keep], calls[keep]
    unknown = sorted(set(lab) - set(PHASE_GROUPS))
    if unknown:
        raise ValueError(f"unknown phase calls {unknown}; expected {PHASE_GROUPS}")
    counts = np.array([(lab == ph).sum() for ph in PHASE_GROUPS])
    if (counts < 20).any():
        raise ValueError(f"too few calibration cells per phase {dict(zip(PHASE_GROUPS, counts.tolist()))}: "
                         "at least 20 each are needed")
    share = counts / counts.sum()
    cuts = np.quantile(pos, [share[0], share[0] + share[1]])
    arcs = PhaseArcs((float(cuts[0]), float(cuts[1])), np.eye(3), int(keep.sum()))
    arc = arcs.arc_of(pos)
    M = np.zeros((3, 3))
    for i, ph in enumerate(PHASE_GROUPS):
        M[i] = np.bincount(arc[lab == ph], minlength=3)[:3] / counts[i]
    return PhaseArcs(arcs.cuts, M, int(keep.sum()))
