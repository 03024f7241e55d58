"""The cycle head's read-out: a cell's position on the cycle from one crop, with no ring to fit.

The paper reads the cycle as the angle of a ring fitted through 4 class log-probabilities, and must then
find the ring's direction and origin. The cycle head (:mod:`deepcycle_core.net.cycle_targets`) is trained on
the movie's partial tracks to output ``(cos, sin)`` of the position itself: division is the origin and
time's direction is the head's by construction, so the read-out is the angle of the two outputs, and a
single snapshot (fixed cells, a drug screen) is read exactly like a movie. The movie is needed to
TRAIN, not to read.

Still judged, never assumed: the same check as the ring's (:func:`deepcycle_core.clock.orientation.ring_quality`)
runs the positions along the fitting cells' tracks and says ``clock``, ``folded`` or ``reversed``.
Hours: the head is trained in hours over one cycle length ``T`` (the doubling time), so its hours are
``position x T``, with no calibration. The ERA map of the position's rank among the fitting cells
(``t = -T log2(1 - F/2)``, :func:`deepcycle_core.data.growth.era_age_fraction`), which a ring needs
because its arc length is not time, is given beside it: it assumes the fitting cells are an unbiased
snapshot of an exponentially growing population, and the partial tracks of a movie are not (founders
present from the start are old, late daughters young). Pure numpy/pandas (torch-free).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..net.cycle_targets import CYCLE_COLUMNS  # the head's output columns: one home, torch-free

__all__ = ["clock_positions", "clock_predictions", "has_cycle_head", "judge_clock", "read_clock"]



def has_cycle_head(columns: Any) -> bool:
    """True when a descriptor table carries the cycle head's outputs."""
    cols = {str(c) for c in columns}
    return all(c in cols for c in CYCLE_COLUMNS)


def clock_positions(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """``(position in [0, 1), confidence)``: the angle of the head's (cos, sin) over 2 pi, and the
    length of that vector (near 1 where the crop is clear, near 0 where the head cannot tell)."""
    if not has_cycle_head(table.columns):
        raise ValueError(f"the descriptor table has no cycle-head columns {CYCLE_COLUMNS} (a network without the head)")
    c = table[CYCLE_COLUMNS[0]].to_numpy(dtype=float)
    s = table[CYCLE_COLUMNS[1]].to_numpy(dtype=float)
    if not (np.isfinite(c).all() and np.isfinite(s).all()):
        raise ValueError("the cycle head's outputs contain non-finite values")
    pos = np.mod(np.arctan2(s, c) / (2.0 * np.pi), 1.0)
    return pos, np.hypot(c, s)


def clock_predictions(
    table: pd.DataFrame, fit_ids: Any, eval_ids: Any, T_hours: float | None
) -> pd.DataFrame:
    """``cell_id, pseudotime, hours, hours_era, confidence`` for ``eval_ids``.

    ``hours``: position x T; ``hours_era``: ERA of the position's mid-rank among the FITTING cells
    (never the evaluated ones). Both NaN without a doubling time.
    """
    from ..data.growth import era_age_fraction

    pos, conf = clock_positions(table)
    cid = table["cell_id"].to_numpy(dtype=np.int64)
    fit = np.isin(cid, np.asarray(fit_ids, dtype=np.int64))
    if not fit.any():
        raise ValueError("no fitting cell among the cycle-head outputs: the ERA hours need them")
    ref = np.sort(pos[fit])
    keep = np.isin(cid, np.asarray(eval_ids, dtype=np.int64))
    p = pos[keep]
    F = (np.searchsorted(ref, p, side="left") + np.searchsorted(ref, p, side="right")) / (2.0 * ref.size)
    age = era_age_fraction(np.clip(F, 0.5 / ref.size, 1.0 - 0.5 / ref.size))
    T = float(T_hours) if T_hours else np.nan
    return pd.DataFrame({
        "cell_id": cid[keep], "pseudotime": p, "hours": p * T, "hours_era": age * T, "confidence": conf[keep],
    })


def read_clock(run: Any) -> pd.DataFrame:
    """``cell_id, cycle_cos, cycle_sin, clock, confidence`` of every cell of a run, from the embed stage's
    descriptors (refused when stale, like every reader of them). ``clock`` is the position in [0, 1)."""
    from ..data import fingerprint
    from ..data.runs import RunDir

    run = run if isinstance(run, RunDir) else RunDir(run)
    if not run.descriptors.exists():
        raise FileNotFoundError(f"{run.descriptors}: no descriptors (run the embed stage first)")
    fingerprint.check_descriptors(run)
    desc = pd.read_parquet(run.descriptors, columns=None)
    if not has_cycle_head(desc.columns):
        raise ValueError(f"{run.descriptors}: no cycle-head columns: the network was trained without the head "
                         "(preset cycle_weight = 0)")
    pos, conf = clock_positions(desc)
    return pd.DataFrame({"cell_id": desc["cell_id"].to_numpy(), CYCLE_COLUMNS[0]: desc[CYCLE_COLUMNS[0]].to_numpy(),
                         CYCLE_COLUMNS[1]: desc[CYCLE_COLUMNS[1]].to_numpy(), "clock": pos, "confidence": conf})


def judge_clock(position: Any, cells: pd.DataFrame) -> Any:
    """The movie's verdict on clock positions of the cells ``cells`` (fitting cells, never held-out ones):
    :func:`deepcycle_core.clock.orientation.ring_quality` along their tracks, as every ring is judged."""
    from .orientation import TrackTable, ring_quality

    return ring_quality(np.asarray(position, dtype=float), TrackTable.from_cells(cells))
