"""What the images can tell at best: the cycle read from the simulator's own hidden variables.

A missed target means little until we know whether the method or the data stops it. The virtual
microscope draws each crop from a few hidden per-cell variables -- DNA content (2N..4N through S),
nuclear area (growing through interphase, with each cell's own size), the phase and the progress
through mitosis (prophase .. telophase shapes) -- plus noise and texture that carry no time. A model
given those variables themselves, not the crops, and fitted on the fitting cells' TRUE ages, is an
upper bound for any read-out of these crops by the same kind of model: it sees the variables
exactly, without blur, noise, neighbours or staining variability.

It uses ground truth (variables and ages), so it is a reference row that never passes a target
(``used_truth``), never a method. Neighbour regression on the circle: the position of a cell is the
circular mean of the true ages of its ``k`` nearest fitting cells in the standardised variables.
Torch-free (scipy's KD-tree).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["HIDDEN_VARIABLES", "hidden_variable_predictions"]

#: The simulator's per-cell variables that shape a crop (store columns); the phase is one-hot encoded.
HIDDEN_VARIABLES: tuple[str, ...] = ("true_dna", "true_nuc_area", "true_m_progress", "true_phase")


def _design(cells: pd.DataFrame, scale_from: np.ndarray | None = None) -> np.ndarray:
    missing = [c for c in HIDDEN_VARIABLES if c not in cells.columns]
    if missing:
        raise ValueError(f"the store lacks the hidden variables {missing}: the ceiling needs a store simulated "
                         "by this package's simulator (version 4 or later)")
    phase = cells["true_phase"].astype(str).to_numpy()
    cols = [
        cells["true_dna"].to_numpy(float),
        np.sqrt(cells["true_nuc_area"].to_numpy(float)),  # a radius: the scale the eye and the crop see
        np.clip(cells["true_m_progress"].to_numpy(float), -0.25, None),
        *[(phase == p).astype(float) for p in ("G1", "S", "G2", "M")],
    ]
    return np.stack(cols, axis=1)


def hidden_variable_predictions(
    cells: pd.DataFrame, fit_ids: Any, eval_ids: Any, T_hours: float | None, *, k: int = 25
) -> pd.DataFrame:
    """``cell_id, pseudotime, hours`` for ``eval_ids``: neighbour regression from the hidden variables,
    fitted on ``fit_ids``' true ages. Hours: position x T, as the clock head reads them (a position
    learned in time needs no ERA calibration)."""
    from scipy.spatial import cKDTree

    table = cells.set_index("cell_id")
    fit_ids = np.asarray(fit_ids, dtype=np.int64)
    eval_ids = np.asarray(eval_ids, dtype=np.int64)
    if fit_ids.size < k:
        raise ValueError(f"{fit_ids.size} fitting cells, fewer than k = {k} neighbours")
    Xf = _design(table.loc[fit_ids])
    mu, sd = Xf.mean(0), Xf.std(0)
    sd[sd == 0] = 1.0
    tree = cKDTree((Xf - mu) / sd)
    angle = 2 * np.pi * table.loc[fit_ids, "true_age"].to_numpy(float)
    unit = np.exp(1j * angle)

    def predict(ids: np.ndarray) -> np.ndarray:
        X = (_design(table.loc[ids]) - mu) / sd
        _, nn = tree.query(X, k=k)
        return np.mod(np.angle(unit[nn].mean(1)) / (2 * np.pi), 1.0)

    pos = predict(eval_ids)
    T = float(T_hours) if T_hours else np.nan
    return pd.DataFrame({"cell_id": eval_ids, "pseudotime": pos, "hours": pos * T})
