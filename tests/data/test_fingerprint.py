"""No stale outputs: every stage that reads an earlier stage's file refuses it once its inputs changed.

A tiny run goes through the real stages (train -> embed; the trajectory on a synthetic ring run), then
one input at a time is changed -- the store re-simulated with another seed, the checkpoint replaced
or retrained, the split rewritten, a parameter changed -- and the stage downstream must refuse,
naming the stale file and the command that refreshes it; an unchanged rerun must pass.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))
from builders import make_ring_run as _make_run  # noqa: E402
from builders import make_tiny_store  # noqa: E402

from deepcycle_core.data import fingerprint as F  # noqa: E402
from deepcycle_core.clock import trajectory as tr  # noqa: E402
from deepcycle_core.data.fingerprint import StaleInputError  # noqa: E402
from deepcycle_core.data.runs import RunDir  # noqa: E402

FAST = dict(
    epochs=1, batch_size=8, samples_per_epoch=32, val_cells=16, heldout_cells=16, pretrained=None,
    progress=False, threads=1, seed=3, device="cpu", cycle_weight=0.0,  # no partial tracks: no cycle targets
)
EMBED = dict(precision="fp32", h5ad=False, progress=False, batch_size=64)


def _resimulate(store: Path, seed: int) -> None:
    """Re-write the store in place as a new simulation would (other seed, same size)."""
    shutil.rmtree(store)
    make_tiny_store(store, n_tracks=12, frames=8, seed=seed, chunk_cells=32)


def _stale(excinfo: pytest.ExceptionInfo, file: Path, command: str) -> str:
    """The message names the stale file and the refresh command; returned for further checks."""
    msg = str(excinfo.value)
    assert str(file) in msg, msg
    assert f"`{command}" in msg, msg
    return msg


# ----------------------------------------------------------------------------------------------
# fingerprints and stamps
# ----------------------------------------------------------------------------------------------
def test_store_fingerprint_follows_the_simulation_not_the_crops(tmp_path):
    store = tmp_path / "store"
    make_tiny_store(store, n_tracks=4, frames=4, seed=0)
    a = F.store_fingerprint(store)
    assert a["kind"] == "store" and a["n_cells"] == 16 and a["created"]
    assert F.store_fingerprint(store) == a  # deterministic
    shutil.rmtree(store / "crops.zarr")  # the crops are never read (2.6 M of them at paper scale)
    assert F.store_fingerprint(store) == a
    shutil.rmtree(store)
    make_tiny_store(store, n_tracks=4, frames=4, seed=1)
    b = F.store_fingerprint(store)
    assert b["sha256"] != a["sha256"]  # another seed: another store, even within the same second


def test_store_fingerprint_covers_the_cell_and_frame_tables(tmp_path):
    """An edited cells.parquet (one class label) or frames.parquet changes the fingerprint, meta.json untouched."""
    store = tmp_path / "store"
    make_tiny_store(store, n_tracks=4, frames=4, seed=0)
    meta = (store / "meta.json").read_bytes()
    a = F.store_fingerprint(store)
    cells = pd.read_parquet(store / "cells.parquet")
    cells.loc[3, "class"] = (cells.loc[3, "class"] + 1) % 4
    cells.to_parquet(store / "cells.parquet", index=False)
    b = F.store_fingerprint(store)
    assert b["sha256"] != a["sha256"] and (store / "meta.json").read_bytes() == meta
    frames = pd.read_parquet(store / "frames.parquet")
    frames.iloc[0, -1] += 1.0
    frames.to_parquet(store / "frames.parquet", index=False)
    assert F.store_fingerprint(store)["sha256"] != b["sha256"]


def test_stamp_write_check_and_atomicity(tmp_path):
    inp, out = tmp_path / "in.bin", tmp_path / "stage"
    inp.write_bytes(b"one")
    out.mkdir()
    (out / "result.txt").write_text("made from one")
    F.write_stamp(out, stage="demo", outputs=[out / "result.txt"], inputs={"source": inp, "extra": tmp_path / "none"},
                  params={"k": 3, "t": (1, 2)}, command="deepcycle demo")
    assert sorted(p.name for p in out.iterdir()) == ["result.txt", "stamp.json"]  # no temporaries left
    stamp = F.check_stamp(out, outputs=out / "result.txt", command="x", params={"k": 3, "t": [1, 2]})
    assert stamp["inputs"]["source"]["path"] == "../in.bin" and stamp["inputs"]["extra"]["kind"] == "absent"
    F.check_stamp(out, outputs=out / "result.txt", command="x", inputs={"source": inp})
    with pytest.raises(StaleInputError, match="other parameters") as exc:
        F.check_stamp(out, outputs=out / "result.txt", command="x", params={"k": 4})
    _stale(exc, out / "result.txt", "deepcycle demo")  # the recorded command wins
    inp.write_bytes(b"two")
    with pytest.raises(StaleInputError, match="made from another source") as exc:
        F.check_stamp(out, outputs=out / "result.txt", command="x")
    assert isinstance(exc.value, ValueError)  # the CLI reports it as an error, exit code 2
    inp.write_bytes(b"one")
    (tmp_path / "none").write_text("now here")
    with pytest.raises(StaleInputError, match="made without extra"):
        F.check_stamp(out, outputs=out / "result.txt", command="x")
    (tmp_path / "none").unlink()
    (out / "result.txt").write_text("edited by hand")
    with pytest.raises(StaleInputError, match="changed after the demo stage wrote it"):
        F.check_stamp(out, outputs=out / "result.txt", command="x")
    F.remove_stamp(out)
    with pytest.raises(StaleInputError, match="no record of what it was made from"):
        F.check_stamp(out, outputs=out / "result.txt", command="deepcycle demo")


# ----------------------------------------------------------------------------------------------
# the real chain: train -> embed
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> RunDir:
    """A tiny run folder after the train and embed stages (copy it before changing anything)."""
    from deepcycle_core.net import embed as E
    from deepcycle_core.net import train as T

    run = RunDir(tmp_path_factory.mktemp("fp") / "run")
    make_tiny_store(run.store, n_tracks=12, frames=8, seed=0, chunk_cells=32)
    T.train(run.root, **FAST)
    E.embed(run, **EMBED)
    return run


@pytest.fixture
def run(trained_run, tmp_path) -> RunDir:
    """A private copy of the trained run: stamps hold relative paths, so a copied run stays current."""
    shutil.copytree(trained_run.root, tmp_path / "run")
    return RunDir(tmp_path / "run")


def test_stages_record_what_they_were_made_from(run):
    train_stamp = F.read_stamp(run.train)
    assert train_stamp["stage"] == "train" and set(train_stamp["outputs"]) == {"split.parquet", "best.pt"}
    assert train_stamp["inputs"]["store"]["path"] == "../store" and train_stamp["inputs"]["store"]["n_cells"] == 96
    # the recorded command names the run folder where it is now (this is a copy), with the settings used
    assert F.recorded_command(run.train) == f"deepcycle train --store {run.root} --epochs 1 --seed 3 " \
        "--samples-per-epoch 32 --val-cells 16 --heldout-cells 16 --pretrained none --batch-size 8 --cycle-weight 0.0"
    embed_stamp = F.read_stamp(run.embed)
    assert set(embed_stamp["inputs"]) == {"store", "checkpoint"}
    assert embed_stamp["inputs"]["checkpoint"]["path"] == "../train/best.pt"
    assert embed_stamp["params"] == {"precision": "fp32", "features": False, "h5ad": False}
    assert F.recorded_command(run.embed) == f"deepcycle embed --run {run.root} --precision fp32 --no-h5ad"


def test_an_unchanged_run_passes_and_reuses(run, monkeypatch):
    from deepcycle_core.net import embed as E
    from deepcycle_core.net import train as T

    F.check_stage(run, "train")
    F.check_stage(run, "embed", params={"precision": "fp32"})
    F.check_trajectory_inputs(run)
    stamp = run.descriptors.stat().st_mtime_ns
    E.embed(run, reuse=True, **EMBED)
    assert run.descriptors.stat().st_mtime_ns == stamp  # nothing recomputed
    monkeypatch.setattr(T, "build_model", lambda *a, **k: pytest.fail("reuse must not train"))
    assert T.train(run.root, reuse=True, **FAST)["reused"] is True
    F.check_stage(run, "embed")


def test_resimulated_store_makes_split_checkpoint_and_descriptors_stale(run):
    from deepcycle_core.net import embed as E

    _resimulate(run.store, seed=7)
    with pytest.raises(StaleInputError, match="made from another cell store") as exc:
        F.check_trajectory_inputs(run)  # the split is the most upstream stale file
    _stale(exc, run.split, f"deepcycle train --store {run.root}")
    with pytest.raises(StaleInputError, match="made from another cell store") as exc:
        E.embed(run, **EMBED)  # never embeds with a network trained on another store
    _stale(exc, run.checkpoint, f"deepcycle train --store {run.root}")
    with pytest.raises(StaleInputError) as exc:
        F.check_stage(run, "embed")
    _stale(exc, run.checkpoint, "deepcycle train")


def test_retrained_checkpoint_makes_descriptors_stale(run):
    from deepcycle_core.net import embed as E
    from deepcycle_core.net import train as T

    T.train(run.root, **{**FAST, "seed": 4})  # a new network (and split), properly stamped
    F.check_stage(run, "train")
    with pytest.raises(StaleInputError, match="made from another checkpoint") as exc:
        F.check_trajectory_inputs(run)
    msg = _stale(exc, run.descriptors, f"deepcycle embed --run {run.root}")
    assert str(run.checkpoint) in msg
    E.embed(run, reuse=True, **EMBED)  # reuse notices the new checkpoint and embeds again
    F.check_trajectory_inputs(run)


def test_checkpoint_replaced_by_hand_is_refused(run, tmp_path):
    from deepcycle_core.net import embed as E

    other = RunDir(tmp_path / "other")
    make_tiny_store(other.store, n_tracks=12, frames=8, seed=0, chunk_cells=32)
    from deepcycle_core.net import train as T

    T.train(other.root, **{**FAST, "seed": 5})
    shutil.copyfile(other.checkpoint, run.checkpoint)
    with pytest.raises(StaleInputError, match="changed after the train stage wrote it") as exc:
        E.embed(run, **EMBED)
    _stale(exc, run.checkpoint, f"deepcycle train --store {run.root}")
    with pytest.raises(StaleInputError) as exc:
        F.check_trajectory_inputs(run)
    _stale(exc, run.checkpoint, "deepcycle train")
    # an explicit checkpoint from elsewhere is external: it is recorded by digest, not refused
    out = E.embed(run.store, other.checkpoint, tmp_path / "elsewhere", **EMBED)
    assert F.read_stamp(out)["inputs"]["checkpoint"]["sha256"] == F.file_digest(other.checkpoint)


def test_rewritten_split_is_refused(run):
    from deepcycle_core.net import dataset as D

    split = D.read_split(run.split)
    split.loc[split["split"] == "val", "split"] = "train"
    D.write_split(split, run.split)
    with pytest.raises(StaleInputError, match="changed after the train stage wrote it") as exc:
        F.check_trajectory_inputs(run)
    _stale(exc, run.split, f"deepcycle train --store {run.root}")
    with pytest.raises(StaleInputError):
        F.check_stage(run, "train")


def test_unstamped_checkpoint_of_the_run_is_refused(run):
    from deepcycle_core.net import embed as E

    (run.train / "stamp.json").unlink()
    with pytest.raises(StaleInputError, match="no record of what it was made from") as exc:
        E.embed(run, **EMBED)
    _stale(exc, run.checkpoint, f"deepcycle train --store {run.root}")
    # weights the train stage did not make (another name, e.g. a benchmark's random network) are external
    other = run.train / "random-default.pt"
    shutil.copyfile(run.checkpoint, other)
    E.embed(run, other, **EMBED)
    F.check_descriptors(run)
    assert F.read_stamp(run.embed)["inputs"]["checkpoint"]["path"] == "../train/random-default.pt"


# ----------------------------------------------------------------------------------------------
# the trajectory stage (a synthetic ring run: untrained networks order nothing)
# ----------------------------------------------------------------------------------------------
@pytest.fixture
def ring_run(tmp_path) -> RunDir:
    run, _, _ = _make_run(tmp_path, np.random.default_rng(21))  # split and descriptors stamped (adopted)
    return run


def _rewrite_store(run: RunDir, seed: int) -> None:
    """Re-write the ring run's store with the same cells but other positions (a re-simulation)."""
    from deepcycle_core.data.store import StoreWriter, open_store

    old = open_store(run.store)
    rows = old.cells.drop(columns="cell_id").copy()
    rows["x"] = np.random.default_rng(seed).uniform(0, 100, len(rows))
    frames, n = old.frames, old.n_cells
    with StoreWriter(run.store, channels=[("hoechst", "nuclear")], overwrite=True,
                     meta={"frame_interval_min": 120, "pixel_size_um": 0.5, "provenance": {"seed": seed}}) as w:
        w.append(np.zeros((n, 1, 48, 48), np.uint16), rows)
        w.set_frames(frames)


def test_trajectory_stage_checks_and_stamps(ring_run):
    run = ring_run
    tr.run_trajectory(run, T_hours=26.0)
    stamp = F.check_stage(run, "trajectory", params={"T_hours": 26.0, "whiten": False, "n_harmonics": 6})
    assert set(stamp["inputs"]) == {"store", "descriptors", "split"}
    assert F.recorded_command(run.trajectory) == f"deepcycle trajectory --run {run.root} --hours-T 26.0"
    tr.run_trajectory(run, T_hours=26.0)  # an unchanged rerun passes
    F.check_stage(run, "trajectory")


def test_trajectory_refuses_a_store_it_did_not_see(ring_run):
    run = ring_run
    _rewrite_store(run, seed=5)
    with pytest.raises(StaleInputError, match="made from another") as exc:
        tr.run_trajectory(run)
    _stale(exc, run.split, f"deepcycle train --store {run.root}")
    F.adopt(run, "train")  # as if the split were remade: now the descriptors are the stale file
    with pytest.raises(StaleInputError, match="made from another") as exc:
        tr.run_trajectory(run)
    _stale(exc, run.descriptors, f"deepcycle embed --run {run.root}")
    assert not run.trajectory_table.exists()  # refused before fitting


def test_trajectory_refuses_rewritten_split_and_unrecorded_descriptors(ring_run, tmp_path):
    run = ring_run
    split = pd.read_parquet(run.split)
    split.loc[split.index[-5:], "split"] = "heldout"  # five more held-out cells
    split.to_parquet(run.split)
    with pytest.raises(StaleInputError, match="changed after the train stage wrote it") as exc:
        tr.run_trajectory(run)
    _stale(exc, run.split, "deepcycle train --store")
    F.adopt(run, "train")
    (run.embed / "stamp.json").unlink()
    with pytest.raises(StaleInputError, match="no record of what it was made from") as exc:
        tr.run_trajectory(run)
    _stale(exc, run.descriptors, f"deepcycle embed --run {run.root}")
    # descriptors from outside the pipeline, passed explicitly, are taken as given (and recorded)
    ext = tmp_path / "external.parquet"
    shutil.copyfile(run.descriptors, ext)
    tr.run_trajectory(run, descriptors_path=ext)
    assert F.read_stamp(run.trajectory)["inputs"]["descriptors"]["sha256"] == F.file_digest(ext)


def test_cli_refuses_stale_descriptors(ring_run):
    import argparse

    run = ring_run
    parser = argparse.ArgumentParser(prog="deepcycle")
    tr.register_cli(parser.add_subparsers(dest="command", required=True))
    desc = pd.read_parquet(run.descriptors)
    desc["d0"] += 0.01
    desc.to_parquet(run.descriptors)  # edited by hand after the embed stage wrote it
    args = parser.parse_args(["trajectory", "--run", str(run.root)])
    with pytest.raises(StaleInputError, match="changed after the embed stage wrote it") as exc:
        args.func(args)
    _stale(exc, run.descriptors, f"deepcycle embed --run {run.root}")


def test_trajectory_output_goes_stale_for_validation(ring_run):
    """What validation calls: the ring output, the descriptors and the split must all be current."""
    run = ring_run
    tr.run_trajectory(run, whiten=False)
    F.check_stage(run, "trajectory", params={"whiten": False})
    # a parameter validation expects differs from the fit on disk
    with pytest.raises(StaleInputError, match="other parameters") as exc:
        F.check_stage(run, "trajectory", params={"whiten": True})
    _stale(exc, run.trajectory_table, f"deepcycle trajectory --run {run.root}")
    # new descriptors, properly stamped: the ring on disk was fitted on the old ones
    desc = pd.read_parquet(run.descriptors)
    desc["d1"] *= 1.01
    desc.to_parquet(run.descriptors)
    F.adopt(run, "embed")
    with pytest.raises(StaleInputError, match="made from another descriptors") as exc:
        F.check_stage(run, "trajectory")
    _stale(exc, run.trajectory_table, f"deepcycle trajectory --run {run.root}")
    tr.run_trajectory(run)
    F.check_stage(run, "trajectory")
    # the ring output itself edited by hand
    ring = json.loads(run.ring.read_text())
    ring["T_hours"] = 99.0
    run.ring.write_text(json.dumps(ring))
    with pytest.raises(StaleInputError, match="changed after the trajectory stage wrote it") as exc:
        F.check_stage(run, "trajectory")
    _stale(exc, run.ring, "deepcycle trajectory --run")


def test_an_edited_cell_table_makes_every_stage_stale(ring_run):
    """cells.parquet edited in place (a few FUCCI classes relabelled: meta.json, crops and sizes
    unchanged) is another store for every stage made from it, and for the ring.json readers."""
    run = ring_run
    tr.run_trajectory(run)
    F.check_stage(run, "trajectory")
    path = run.store / "cells.parquet"
    cells = pd.read_parquet(path)
    cells.loc[:9, "class"] = (cells.loc[:9, "class"] + 2) % 4
    cells.to_parquet(path, index=False)
    for check in (lambda: F.check_stage(run, "trajectory"), lambda: F.current_ring(run),
                  lambda: F.check_split(run), lambda: F.check_descriptors(run)):
        with pytest.raises(StaleInputError, match=r"another version of the cell store .*\(its metadata or cell "
                                                  r"table changed\)"):
            check()


def test_a_split_that_appears_after_the_fit_makes_it_stale(ring_run):
    run = ring_run
    split = pd.read_parquet(run.split)
    run.split.unlink()
    F.adopt(run, "train")  # a train folder without a split (nothing to vouch for)
    tr.run_trajectory(run)  # fitted on every cell
    split.to_parquet(run.split)
    F.adopt(run, "train")
    with pytest.raises(StaleInputError, match="made without split") as exc:
        F.check_stage(run, "trajectory")
    _stale(exc, run.trajectory_table, "deepcycle trajectory --run")


def test_missing_stage_output_is_named(tmp_path):
    run = RunDir(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="trajectory.parquet.*deepcycle trajectory --run"):
        F.check_stage(run, "trajectory")
    with pytest.raises(ValueError, match="unknown stage"):
        F.check_stage(run, "simulate")
