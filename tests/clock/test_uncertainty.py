"""Each cell's interval: arcs on the circle, conformal calibration that holds its level, wider where unsure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from deepcycle_core.clock.head import clock_predictions, clock_table
from deepcycle_core.clock.uncertainty import calibrate_intervals, circular_distance, on_forward_arc


def test_arcs_wrap_past_one():
    assert on_forward_arc(0.05, 0.9, 0.1) and on_forward_arc(0.95, 0.9, 0.1) and not on_forward_arc(0.5, 0.9, 0.1)
    assert on_forward_arc(0.5, 0.4, 0.6) and not on_forward_arc(0.7, 0.4, 0.6)
    np.testing.assert_allclose(circular_distance([0.95, 0.2], [0.05, 0.7]), [0.1, 0.5])


def _noisy_clock(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cells whose error sd falls with the confidence: sd 0.02 at confidence 1, 0.12 at confidence 0."""
    truth = rng.uniform(0, 1, n)
    conf = rng.uniform(0, 1, n)
    pos = np.mod(truth + rng.normal(0, 0.12 - 0.1 * conf), 1.0)
    return truth, conf, pos


def test_calibrated_intervals_hold_their_level_on_new_cells_and_narrow_with_confidence():
    rng = np.random.default_rng(0)
    truth, conf, pos = _noisy_clock(4000, rng)
    cal = calibrate_intervals(pos, conf, truth, level=0.8)
    t2, c2, p2 = _noisy_clock(20000, rng)
    lo, hi, width = cal.intervals(p2, c2)
    cover = on_forward_arc(t2, lo, hi).mean()
    assert 0.77 <= cover <= 0.83
    # clearer crops get narrower intervals, and the bins' widths never grow with confidence
    assert np.all(np.diff(cal.half_width) <= 0) and cal.half_width[0] > 3 * cal.half_width[-1]
    assert width[c2 > 0.9].mean() < 0.5 * width[c2 < 0.1].mean()
    # a level of 0.5 gives narrower intervals that hold about half the cells
    half = calibrate_intervals(pos, conf, truth, level=0.5)
    assert 0.46 <= on_forward_arc(t2, *half.intervals(p2, c2)[:2]).mean() <= 0.54


def test_calibration_refuses_too_few_cells_and_bad_levels():
    with pytest.raises(ValueError, match="at least"):
        calibrate_intervals([0.1] * 10, [0.5] * 10, [0.2] * 10)
    with pytest.raises(ValueError, match="level"):
        calibrate_intervals([0.1] * 100, [0.5] * 100, [0.2] * 100, level=1.0)


class _Store:
    def __init__(self, cells: pd.DataFrame) -> None:
        self.cells, self.meta = cells, {"frame_interval_min": 60.0}


def test_clock_table_calibrates_on_validation_cells_only(monkeypatch):
    """A clock read exactly on validation cells and 0.25 turn off on training cells: the intervals are
    the validation cells' (narrow), whatever the training cells say."""
    rows, cid = [], 0
    for track in range(40):  # each track: born at frame 0 in the field from a mother seen at frame -1
        rows.append(dict(cell_id=cid, track_id=1000 + track, parent_track_id=-1, frame=-1, birth_frame=-1,
                         division_frame=-1, field=0, time_h=-1.0))
        cid += 1
        for f in range(6):
            rows.append(dict(cell_id=cid, track_id=track, parent_track_id=1000 + track, frame=f, birth_frame=0,
                             division_frame=-1, field=0, time_h=float(f)))
            cid += 1
    cells = pd.DataFrame(rows)
    cells.loc[cells["track_id"] < 1000, "division_frame"] = -1
    cells.loc[cells["track_id"] >= 1000, "division_frame"] = -1  # mothers' division not needed here
    T = 24.0
    age = np.where(cells["birth_frame"] == 0, (cells["frame"] + 0.5) / T, 0.5)
    val = (cells["track_id"] < 20).to_numpy()
    pos = np.where(val, age, age + 0.25)
    desc = pd.DataFrame({"cell_id": cells["cell_id"], "cycle_cos": np.cos(2 * np.pi * pos),
                         "cycle_sin": np.sin(2 * np.pi * pos)})
    split = pd.DataFrame({"cell_id": cells["cell_id"], "split": np.where(val, "val", "train")})
    import deepcycle_core.clock.head as head
    import deepcycle_core.net.cycle_targets as targets

    monkeypatch.setattr(targets, "doubling_time_of_store_cells", lambda cells: T)  # no growth curve in 40 tracks
    orig, seen = head.calibrate_clock, {}

    def spy(table, cells_, ids, dt, T_, level=0.8):
        seen["ids"] = np.asarray(ids)
        return orig(table, cells_, ids, dt, T_, level)

    monkeypatch.setattr(head, "calibrate_clock", spy)
    out = clock_table(desc, _Store(cells), split)
    assert set(seen["ids"]) == set(cells.loc[val, "cell_id"])
    assert out["interval_h"].notna().all() and out["interval_h"].max() < 1.0  # exact on validation: narrow
    pred = clock_predictions(desc, cells["cell_id"], cells["cell_id"][:5], T,
                             calibration=calibrate_intervals(pos[val], np.ones(val.sum()), age[val]))
    assert {"interval_lo", "interval_hi", "interval_h"} <= set(pred.columns)
    # without a split there is nothing to calibrate on: NaN intervals and the reason
    none = clock_table(desc, _Store(cells), None)
    assert none["interval_h"].isna().all() and "no split" in none.attrs["intervals"]
