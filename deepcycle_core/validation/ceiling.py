"""What the images can tell at best: the cycle read from the simulator's own hidden variables.

A missed target means little until we know whether the method or the data stops it. The virtual
microscope draws each crop from a few hidden per-cell variables -- DNA content (2N..4N through S),
nuclear area (growing through interphase, with each cell's own size), the phase and the progress
through mitosis (prophase .. telophase shapes) -- plus noise and texture that carry no time. A model
given those variables themselves, not the crops, and fitted on the fitting cells' TRUE ages, is an
upper bound for any read-out of these crops by the same kind of model: it sees the variables
exactly, without blur, noise, neighbours or staining variability.

The exact variables are more than any crop shows: the stain's brightness varies from cell to cell and
bleaches frame by frame. Two more references read what the crops CARRY (:func:`crop_variable_predictions`):
the DNA content as the crops show it (integrated nuclear stain over the median of its frame) and the
nuclear area measured from the crop (:mod:`deepcycle_core.validation.supervised`), with the true mitotic
progress, and with (``ceiling_crops_phase``) or without (``ceiling_crops``) the exact phase.

They use ground truth (variables and ages), so they are reference rows that never pass a target
(``used_truth``), never methods. Neighbour regression on the circle: the position of a cell is the
circular mean of the true ages of its ``k`` nearest fitting cells in the standardised variables.
Torch-free (scipy's KD-tree).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["CROP_VARIABLES", "HIDDEN_VARIABLES", "crop_variable_predictions", "hidden_variable_predictions",
           "oracle_label_predictions"]

#: The simulator's per-cell variables that shape a crop (store columns); the phase is one-hot encoded.
HIDDEN_VARIABLES: tuple[str, ...] = ("true_dna", "true_nuc_area", "true_m_progress", "true_phase")

#: What the crop ceilings read: two measured columns (:func:`deepcycle_core.validation.supervised.crop_measures`)
#: and, from the truth, the mitotic progress and (``with_phase``) the phase.
CROP_VARIABLES: tuple[str, ...] = ("nuclear_integrated_frame", "nuclear_area", "true_m_progress", "true_phase")


def _design(cells: pd.DataFrame, dna: str = "true_dna", area: str = "true_nuc_area", phase: bool = True) -> np.ndarray:
    """Standardisable columns: DNA, the area's square root, mitotic progress, the phase one-hot (``phase``)."""
    need = [dna, area, "true_m_progress", *(["true_phase"] if phase else [])]
    missing = [c for c in need if c not in cells.columns]
    if missing:
        raise ValueError(f"the ceiling lacks the variables {missing}: the exact ones need a store simulated "
                         "by this package's simulator (version 4 or later), the measured ones the describe stage")
    cols = [
        cells[dna].to_numpy(float),
        np.sqrt(np.clip(cells[area].to_numpy(float), 0, None)),  # a radius: the scale the eye and the crop see
        np.clip(cells["true_m_progress"].to_numpy(float), -0.25, None),
    ]
    if phase:
        ph = cells["true_phase"].astype(str).to_numpy()
        cols += [(ph == p).astype(float) for p in ("G1", "S", "G2", "M")]
    X = np.stack(cols, axis=1)
    if not np.isfinite(X).all():
        raise ValueError(f"the ceiling's variables ({', '.join(need)}) contain non-finite values")
    return X


def _neighbour_clock(table: pd.DataFrame, fit_ids: Any, eval_ids: Any, T_hours: float | None, k: int,
                     **design: Any) -> pd.DataFrame:
    """Neighbour regression on the circle: the circular mean of the true ages of the ``k`` nearest fitting
    cells in the standardised variables; hours = position x T."""
    from scipy.spatial import cKDTree

    fit_ids = np.asarray(fit_ids, dtype=np.int64)
    eval_ids = np.asarray(eval_ids, dtype=np.int64)
    if fit_ids.size < k:
        raise ValueError(f"{fit_ids.size} fitting cells, fewer than k = {k} neighbours")
    Xf = _design(table.loc[fit_ids], **design)
    mu, sd = Xf.mean(0), Xf.std(0)
    sd[sd == 0] = 1.0
    tree = cKDTree((Xf - mu) / sd)
    unit = np.exp(1j * 2 * np.pi * table.loc[fit_ids, "true_age"].to_numpy(float))
    _, nn = tree.query((_design(table.loc[eval_ids], **design) - mu) / sd, k=k)
    pos = np.mod(np.angle(unit[nn].mean(1)) / (2 * np.pi), 1.0)
    T = float(T_hours) if T_hours else np.nan
    return pd.DataFrame({"cell_id": eval_ids, "pseudotime": pos, "hours": pos * T})


def hidden_variable_predictions(
    cells: pd.DataFrame, fit_ids: Any, eval_ids: Any, T_hours: float | None, *, k: int = 25
) -> pd.DataFrame:
    """``cell_id, pseudotime, hours`` for ``eval_ids``: neighbour regression from the hidden variables,
    fitted on ``fit_ids``' true ages. Hours: position x T, as the clock head reads them (a position
    learned in time needs no ERA calibration)."""
    return _neighbour_clock(cells.set_index("cell_id"), fit_ids, eval_ids, T_hours, k)


def crop_variable_predictions(
    cells: pd.DataFrame, measures: pd.DataFrame, fit_ids: Any, eval_ids: Any, T_hours: float | None, *,
    with_phase: bool, k: int = 25,
) -> pd.DataFrame:
    """As :func:`hidden_variable_predictions`, from what the crops carry: ``measures``' stain over its frame
    median and measured area (``cell_id`` + :data:`CROP_VARIABLES`' first two), the true mitotic progress
    and, ``with_phase``, the exact phase. Every fitting and evaluated cell needs its measures."""
    table = cells.set_index("cell_id")
    m = measures.set_index("cell_id")[list(CROP_VARIABLES[:2])]
    ids = np.union1d(np.asarray(fit_ids, dtype=np.int64), np.asarray(eval_ids, dtype=np.int64))
    absent = np.setdiff1d(ids, m.index.to_numpy())
    if absent.size:
        raise ValueError(f"{absent.size} cell(s) lack crop measures (e.g. {absent[:3].tolist()}): run the describe stage")
    table = table.loc[ids].join(m.loc[ids])
    return _neighbour_clock(table, fit_ids, eval_ids, T_hours, k, dna=CROP_VARIABLES[0], area=CROP_VARIABLES[1],
                            phase=with_phase)


def oracle_label_predictions(
    store: Any, eval_ids: Any, T_hours: float | None, folder: Any = None
) -> pd.DataFrame:
    """``cell_id, pseudotime, hours`` for ``eval_ids``: the clock of the ``both`` network trained by the
    reference recipe on the simulator's TRUE ages (``make model`` keeps its held-out outputs,
    :func:`deepcycle_core.net.reference.train_oracle`). What this network reads with perfect labels: a
    reference that uses truth. Refused (``ReferenceError``) when the card names another store."""
    from ..clock.head import clock_positions
    from ..net.reference_card import oracle_predictions

    out = oracle_predictions(store, folder)
    eval_ids = np.asarray(eval_ids, dtype=np.int64)
    missing = np.setdiff1d(eval_ids, out["cell_id"].to_numpy(dtype=np.int64))
    if missing.size:
        raise ValueError(f"the oracle-label outputs lack {missing.size} held-out cell(s): remake them (make model)")
    out = out[out["cell_id"].isin(eval_ids)].reset_index(drop=True)
    pos, _ = clock_positions(out)
    T = float(T_hours) if T_hours else np.nan
    return pd.DataFrame({"cell_id": out["cell_id"].to_numpy(), "pseudotime": pos, "hours": pos * T})

