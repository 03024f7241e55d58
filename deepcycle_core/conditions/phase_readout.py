"""Phase shares of a population from the network's read-out, calibrated on the control's phase calls.

Why: what a treatment does is summarised by the share of cells in G1, S and G2/M. The network's six
numbers per cell (the four FUCCI-class log-probabilities and the clock's cos/sin) say more than the
clock's angle alone: the class outputs separate G1 from S/G2/M sharply, the clock places a cell along
S. A multinomial logistic read-out of those six numbers is fitted on the control's FUCCI + DNA calls
(:mod:`deepcycle_core.conditions.phase_calls`), never on treated cells, and a population's share of each phase is
the mean of its cells' phase probabilities (probabilistic classify and count; Bella et al. 2010), which
is less biased than counting hard calls when the read-out is unsure. On the control movie this read-out
put the shares within ~2-4 percentage points of the truth, the clock's arcs within ~3-6.

The read-out assumes that a cell in a given phase looks the same under treatment as in the control.
A drug that holds cells at one point of a phase, or changes how they look, bends that; the chapter
measures by how much against the simulator's truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..net.cycle_targets import CYCLE_COLUMNS
from .phase_calls import PHASE_GROUPS

__all__ = ["READOUT_COLUMNS", "PhaseReadout", "fit_phase_readout"]

#: The network outputs the read-out uses, in order: the 4-class descriptor and the clock head.
READOUT_COLUMNS: tuple[str, ...] = ("d0", "d1", "d2", "d3", *CYCLE_COLUMNS)


def _matrix(table: pd.DataFrame) -> np.ndarray:
    missing = [c for c in READOUT_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"the read-out needs the network outputs {list(READOUT_COLUMNS)}; missing {missing}")
    X = table[list(READOUT_COLUMNS)].to_numpy(dtype=float)
    if not np.isfinite(X).all():
        raise ValueError("the network outputs contain non-finite values")
    return X


@dataclass
class PhaseReadout:
    """A fitted phase read-out: ``probabilities`` per cell, ``shares`` per population."""

    model: Any
    n_calibration: int
    calibration_shares: np.ndarray = field(default_factory=lambda: np.zeros(3))

    def probabilities(self, table: pd.DataFrame) -> np.ndarray:
        """(n, 3) probabilities of G1, S, G2/M for each cell of ``table`` (network outputs)."""
        proba = self.model.predict_proba(_matrix(table))
        order = [list(self.model.classes_).index(ph) for ph in PHASE_GROUPS]
        return proba[:, order]

    def shares(self, table: pd.DataFrame) -> np.ndarray:
        """The population's share of each phase (mean probability), in :data:`PHASE_GROUPS` order."""
        if len(table) == 0:
            raise ValueError("no cells to read phase shares from")
        return self.probabilities(table).mean(axis=0)

    def calls(self, table: pd.DataFrame) -> np.ndarray:
        """The most probable phase of each cell."""
        return np.asarray(PHASE_GROUPS)[self.probabilities(table).argmax(axis=1)]


def fit_phase_readout(table: pd.DataFrame, calls: Sequence[str] | np.ndarray, *, C: float = 1.0) -> PhaseReadout:
    """Fit the read-out on control cells: ``table`` holds their network outputs, ``calls`` their phase
    calls (``''`` = not called, ignored). Every phase needs at least 20 called cells."""
    from sklearn.linear_model import LogisticRegression

    calls = np.asarray(calls).astype(str)
    if len(calls) != len(table):
        raise ValueError(f"{len(calls)} calls for {len(table)} cells")
    keep = calls != ""
    counts = {ph: int((calls[keep] == ph).sum()) for ph in PHASE_GROUPS}
    unknown = sorted(set(calls[keep]) - set(PHASE_GROUPS))
    if unknown:
        raise ValueError(f"unknown phase calls {unknown}; expected {PHASE_GROUPS}")
    if min(counts.values()) < 20:
        raise ValueError(f"too few called cells per phase {counts}: at least 20 each are needed")
    X = _matrix(table)[keep]
    # fitted to its optimum, not to sklearn's default tolerance: where lbfgs stopped early depended on the
    # networks' last bits, so another CPU's vector units moved a share by 1.6e-4 (at the optimum: 2e-7)
    model = LogisticRegression(C=C, tol=1e-10, max_iter=20000).fit(X, calls[keep])
    shares = np.array([counts[ph] for ph in PHASE_GROUPS], dtype=float)
    return PhaseReadout(model, int(keep.sum()), shares / shares.sum())
