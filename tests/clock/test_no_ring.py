"""Descriptors that order nothing give "no ring": a result the chapter reports and goes on from, never a crash.

A network trained for seconds (the smoke profile; bf16 on a CPU with AMX) can give descriptors along which
neither the movie's tracks nor the FUCCI classes can tell a direction. Then :func:`fit_ring` raises
:class:`NoRing` (a ValueError, with the reason), the stage removes its old outputs and writes the reason to
``trajectory/no_ring.json``, and :func:`try_trajectory`, what chapter 04 calls, returns that as a result.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from builders import make_ring_run

from deepcycle_core.clock import trajectory as tr
from deepcycle_core.data import fingerprint
from deepcycle_core.data.fingerprint import StaleInputError


def _write_descriptors(run, X: np.ndarray, adopt: bool = True) -> None:
    pd.DataFrame({"cell_id": np.arange(len(X)), **{f"d{k}": X[:, k] for k in range(X.shape[1])}}).to_parquet(
        run.embed / "descriptors.parquet")
    if adopt:
        fingerprint.adopt(run, "embed")


def _noise(n: int) -> np.ndarray:
    return np.random.default_rng(5).normal(0, 1, (n, 4))  # descriptors unrelated to the cycle


def test_descriptors_that_order_nothing_raise_no_ring_with_the_reason():
    rng = np.random.default_rng(3)
    classes = rng.integers(0, 4, 3000)
    with pytest.raises(tr.NoRing, match="do not order the cycle") as exc:
        tr.fit_ring(_noise(3000), classes)
    assert isinstance(exc.value, ValueError)  # callers that catch ValueError (validation's "no ring" rows) still do
    with pytest.raises(ValueError, match="only 50 cells") as bad_input:  # bad input is not "no ring"
        tr.fit_ring(_noise(50), classes[:50])
    assert not isinstance(bad_input.value, tr.NoRing)


def test_the_stage_records_no_ring_and_the_chapter_gets_a_result(tmp_path):
    run, X, _ = make_ring_run(tmp_path, np.random.default_rng(12))
    good = tr.try_trajectory(run)
    assert good.ring is not None and good.table is not None and good.no_ring == "" and good.message == ""
    assert run.ring.exists() and run.trajectory_table.exists()

    _write_descriptors(run, _noise(len(X)))
    res = tr.try_trajectory(run)
    assert res.ring is None and res.table is None
    assert "do not order the cycle" in res.no_ring
    assert res.message.startswith("no ring: ") and "cycle head" in res.message
    # the old ring and its table are gone: nothing after this stage may read them as this run's
    assert not run.ring.exists() and not run.trajectory_table.exists()
    assert not (run.trajectory / "stamp.json").exists()
    rec = json.loads((run.trajectory / tr.NO_RING_NAME).read_text())
    assert rec["reason"] == res.no_ring and rec["T_hours"] == pytest.approx(20.0, rel=0.05)
    with pytest.raises(tr.NoRing, match="found no ring: .*do not order the cycle"):
        tr.load_ring(run.ring)
    with pytest.raises(tr.NoRing):  # the stage itself (CLI, scripts) still says so by raising
        tr.run_trajectory(run)
    # the chapters after it that need the doubling time (07) still get it
    assert tr.run_doubling_time(run) == pytest.approx(good.ring.T_hours)

    _write_descriptors(run, X)  # a network that orders the cycle again: a ring, and the old reason goes
    again = tr.try_trajectory(run)
    assert again.ring is not None and not (run.trajectory / tr.NO_RING_NAME).exists()
    assert tr.run_doubling_time(run.root) == again.ring.T_hours
    np.testing.assert_allclose(again.ring.curve, good.ring.curve)


def test_other_errors_still_stop_the_chapter(tmp_path):
    """Only "no ring" is a result: stale inputs or a missing file still raise from try_trajectory."""
    run, X, _ = make_ring_run(tmp_path, np.random.default_rng(12))
    _write_descriptors(run, _noise(len(X)), adopt=False)  # descriptors no stage vouches for
    with pytest.raises(StaleInputError):
        tr.try_trajectory(run)
    (run.embed / "descriptors.parquet").unlink()
    with pytest.raises(FileNotFoundError, match="no descriptors"):
        tr.try_trajectory(run)


def test_an_undirected_ring_gets_no_hours_in_the_chapter_either():
    """Every verdict that is no clock (folded, reversed, undirected) says why the chapter draws no hours."""
    from types import SimpleNamespace

    from deepcycle_core.clock.orientation import NOT_A_CLOCK
    from deepcycle_core.plots import ring as ring_plots

    for verdict in NOT_A_CLOCK:
        why = ring_plots.no_hours_reason(SimpleNamespace(T_hours=20.0, verdict=verdict))
        assert why is not None and f"this ring is {verdict}, not a clock" in why
    assert ring_plots.no_hours_reason(SimpleNamespace(T_hours=20.0, verdict="clock")) is None


def test_the_doubling_time_is_read_only_from_a_ring_json_its_stamp_vouches_for(tmp_path):
    """Chapter 07 takes T from here: a ring.json edited after the stage wrote it is refused, not read."""
    run, _, _ = make_ring_run(tmp_path, np.random.default_rng(12))
    good = tr.try_trajectory(run)
    assert tr.run_doubling_time(run) == pytest.approx(good.ring.T_hours)
    ring = json.loads(run.ring.read_text())
    ring["T_hours"] = 48.0
    run.ring.write_text(json.dumps(ring))
    with pytest.raises(StaleInputError, match="ring.json"):
        tr.run_doubling_time(run)
