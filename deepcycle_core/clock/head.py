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

__all__ = ["CLOCK_TABLE_COLUMNS", "calibrate_clock", "calibration_cells", "clock_positions", "clock_table", "clock_predictions",
           "has_cycle_head", "judge_clock", "read_clock"]

#: What :func:`read_clock` gives per cell: the position, its hours (x T), the head's confidence and the
#: calibrated interval (the arc forward from ``interval_lo`` to ``interval_hi``, its length in hours).
CLOCK_TABLE_COLUMNS: tuple[str, ...] = (
    "cell_id", "cycle_cos", "cycle_sin", "clock", "clock_h", "confidence", "interval_lo", "interval_hi", "interval_h",
)



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


def calibration_cells(split: pd.DataFrame) -> np.ndarray:
    """The cells that calibrate a clock's intervals: the validation split's (never trained on, never held out)."""
    return split.loc[split["split"].astype(str) == "val", "cell_id"].to_numpy(dtype=np.int64)


def calibrate_clock(
    table: pd.DataFrame, cells: pd.DataFrame, calib_ids: Any, frame_interval_h: float, T_hours: float,
    level: float = 0.8,
) -> Any:
    """:class:`~deepcycle_core.clock.uncertainty.IntervalCalibration` of a clock head's outputs ``table``,
    from the cells ``calib_ids`` that carry a cycle target (the same visible-event labels as training).

    ``cells`` is the store's whole cell table (the targets read each cell's track)."""
    from ..net.cycle_targets import cycle_targets
    from .uncertainty import calibrate_intervals

    targets = cycle_targets(cells, frame_interval_h, T_hours)
    label = pd.Series(targets.position, index=cells["cell_id"].to_numpy(dtype=np.int64))
    ids = np.asarray(calib_ids, dtype=np.int64)
    rows = table[table["cell_id"].isin(ids)]
    pos, conf = clock_positions(rows)
    return calibrate_intervals(pos, conf, label.reindex(rows["cell_id"].to_numpy(dtype=np.int64)).to_numpy(),
                               level=level)


def clock_predictions(
    table: pd.DataFrame, fit_ids: Any, eval_ids: Any, T_hours: float | None, calibration: Any = None
) -> pd.DataFrame:
    """``cell_id, pseudotime, hours, hours_era, confidence`` for ``eval_ids``; with a ``calibration``
    (:func:`calibrate_clock`) also ``interval_lo, interval_hi`` (the arc forward from lo to hi, turns) and
    ``interval_h`` (its length in hours).

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
    out = pd.DataFrame({
        "cell_id": cid[keep], "pseudotime": p, "hours": p * T, "hours_era": age * T, "confidence": conf[keep],
    })
    if calibration is not None:
        lo, hi, width = calibration.intervals(p, conf[keep])
        out["interval_lo"], out["interval_hi"], out["interval_h"] = lo, hi, width * T
    return out


def clock_table(desc: pd.DataFrame, store: Any, split: pd.DataFrame | None, level: float = 0.8) -> pd.DataFrame:
    """:data:`CLOCK_TABLE_COLUMNS` of the cells of a descriptor table ``desc`` with the cycle head's columns.

    ``clock`` is the position in [0, 1), ``clock_h`` = clock x T (the doubling time of the store's cell
    counts, the T the head was trained with). The ``level`` interval is calibrated on ``split``'s
    validation cells (:func:`calibrate_clock`); the interval columns are NaN without a split or with too
    few labelled validation cells (``attrs['intervals']`` says why).
    """
    from ..net.cycle_targets import doubling_time_of_store_cells

    if not has_cycle_head(desc.columns):
        raise ValueError("no cycle-head columns: the network was trained without the head (preset cycle_weight = 0)")
    pos, conf = clock_positions(desc)
    try:
        T = doubling_time_of_store_cells(store.cells)
    except ValueError:
        T = float("nan")
    out = pd.DataFrame({"cell_id": desc["cell_id"].to_numpy(), CYCLE_COLUMNS[0]: desc[CYCLE_COLUMNS[0]].to_numpy(),
                        CYCLE_COLUMNS[1]: desc[CYCLE_COLUMNS[1]].to_numpy(), "clock": pos, "clock_h": pos * T,
                        "confidence": conf, "interval_lo": np.nan, "interval_hi": np.nan, "interval_h": np.nan})
    try:
        if split is None:
            raise ValueError("no split, so no validation cells to calibrate the intervals on")
        dt_h = float(store.meta["frame_interval_min"]) / 60.0
        cal = calibrate_clock(desc, store.cells, calibration_cells(split), dt_h, T, level)
    except ValueError as exc:
        out.attrs["intervals"] = f"no intervals: {exc}"
        return out
    lo, hi, width = cal.intervals(pos, conf)
    out["interval_lo"], out["interval_hi"], out["interval_h"] = lo, hi, width * T
    out.attrs["intervals"] = f"{level:.0%} intervals calibrated on {int(cal.n_cells.sum()):,} validation cells"
    out.attrs["calibration"] = cal.to_dict()
    return out


def read_clock(run: Any, level: float = 0.8) -> pd.DataFrame:
    """:func:`clock_table` of every cell of a run, from the embed stage's descriptors (refused when stale,
    like every reader of them), calibrated on the run's split (checked against the store)."""
    from ..data import fingerprint
    from ..data.runs import RunDir
    from ..data.split import read_split
    from ..data.store import open_store

    run = run if isinstance(run, RunDir) else RunDir(run)
    if not run.descriptors.exists():
        raise FileNotFoundError(f"{run.descriptors}: no descriptors (run the embed stage first)")
    fingerprint.check_descriptors(run)
    desc = pd.read_parquet(run.descriptors, columns=None)
    if not has_cycle_head(desc.columns):
        raise ValueError(f"{run.descriptors}: no cycle-head columns: the network was trained without the head "
                         "(preset cycle_weight = 0)")
    split = None
    if run.split.exists():
        fingerprint.check_split(run)
        split = read_split(run.split)
    return clock_table(desc, open_store(run.store), split, level)


def judge_clock(position: Any, cells: pd.DataFrame) -> Any:
    """The movie's verdict on clock positions of the cells ``cells`` (fitting cells, never held-out ones):
    :func:`deepcycle_core.clock.orientation.ring_quality` along their tracks, as every ring is judged."""
    from .orientation import TrackTable, ring_quality

    return ring_quality(np.asarray(position, dtype=float), TrackTable.from_cells(cells))
