"""Training: outputs, the checkpoints it writes load safely, exact resume after a kill, DDP agreement."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parents[1]))
from builders import make_tiny_store  # noqa: E402

from deepcycle_core.net import checkpoint as C  # noqa: E402
from deepcycle_core.net import train as T  # noqa: E402

FAST = dict(
    epochs=2, batch_size=8, samples_per_epoch=32, val_cells=16, heldout_cells=16, pretrained=None,
    progress=False, threads=1, seed=3, cycle_weight=0.0,  # the tiny store has no partial tracks: no cycle targets
)


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("tr") / "run" / "store"
    make_tiny_store(path, n_tracks=20, frames=8, chunk_cells=32)
    return path


@pytest.fixture(scope="module")
def trained(store_path):
    summary = T.train(store_path.parent, **FAST)
    return summary, store_path.parent / "train"


def test_outputs_summary_and_load_model(trained, store_path):
    summary, out = trained
    for name in ("last.pt", "best.pt", "history.csv", "split.parquet", "summary.json"):
        assert (out / name).is_file(), name
    assert json.loads((out / "summary.json").read_text())["accuracy"] == summary["accuracy"]
    assert summary["channels"] == ["hoechst", "brightfield"] and summary["mode"] == "both"
    assert 0 <= summary["accuracy"] <= 1 and len(summary["recall"]) == 4
    conf = np.array(summary["confusion"])
    assert conf.shape == (4, 4) and (conf.sum(1) > 0).sum() >= 2  # rows of the classes present in val
    assert np.allclose(conf.sum(1)[conf.sum(1) > 0], 1)
    hist = pd.read_csv(out / "history.csv")
    assert list(hist["epoch"]) == [1, 2] and (hist["train_samples"] == 32).all()
    # the held-out full-cycle tracks are exactly the held-out split, and never in training
    split = pd.read_parquet(out / "split.parquet")
    cells = pd.read_parquet(store_path / "cells.parquet")
    assert set(split.loc[cells["full_cycle"].to_numpy(), "split"]) == {"heldout"}
    assert summary["n_labelled"]["heldout"] == int(cells["full_cycle"].sum())
    model, info = C.load_model(out / "best.pt")
    assert not model.training and info["channels"] == ["hoechst", "brightfield"]
    assert info["normalisation"]["method"] == "frame_median_std"
    from deepcycle_core.net import normalise as N
    from deepcycle_core.data.store import open_store

    st = open_store(store_path)
    med, std = N.frame_norm(st, [st.channel_index(r) for r in info["roles"]])
    x = torch.from_numpy(N.normalise_crops(st.read(0, 5), med[:5], std[:5]))
    with torch.no_grad():
        d = model.descriptor(x)
    assert d.shape == (5, 4) and torch.isfinite(d).all()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_checkpoints_load_weights_only_and_bad_files_are_named(trained, tmp_path, monkeypatch):
    _, out = trained
    seen = []
    real_load = torch.load

    def spy(*a, **k):
        seen.append(k.get("weights_only"))
        return real_load(*a, **k)

    monkeypatch.setattr(torch, "load", spy)
    ckpt = C.load_checkpoint(out / "last.pt")
    assert seen == [True] and ckpt["epoch"] == 2 and ckpt["batch"] == 0
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00garbage")
    with pytest.raises(C.CheckpointError, match="junk.pt"):
        C.load_model(junk)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, foreign)
    with pytest.raises(C.CheckpointError, match="foreign.pt.*not a DeepCycle checkpoint"):
        C.load_model(foreign)
    with pytest.raises(C.CheckpointError, match="missing.pt"):
        C.load_model(tmp_path / "missing.pt")


class _Payload:
    """Unpickling this object calls ``os.makedirs(marker)``: code execution, harmless but visible."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (str(self.marker),))


def _evil_checkpoint(path: Path, marker: Path) -> Path:
    """A checkpoint that is valid in every respect (format, version, model, info) except that unpickling
    it runs code: a loader with ``weights_only=False`` would return it and create ``marker``."""
    torch.save({"format": C.CHECKPOINT_FORMAT, "version": C.CHECKPOINT_VERSION, "model": {}, "info": {},
                "payload": _Payload(marker)}, path)
    return path


def test_malicious_checkpoint_is_refused_without_running_its_code(tmp_path):
    marker = tmp_path / "pwned"
    evil = _evil_checkpoint(tmp_path / "evil.pt", marker)
    assert not marker.exists()  # writing the file ran nothing
    with pytest.raises(C.CheckpointError, match=r"evil\.pt"):
        C.load_checkpoint(evil)
    assert not marker.exists(), "loading the checkpoint executed code from its pickle"
    with pytest.raises(C.CheckpointError, match=r"evil\.pt"):
        C.load_model(evil)
    assert not marker.exists(), "load_model executed code from the checkpoint's pickle"
    # the file really is live: an unsafe load runs the payload (so the checks above can fail)
    torch.load(evil, map_location="cpu", weights_only=False)
    assert marker.is_dir()


def _cli(store_path, out, *extra, env=None):
    cmd = [sys.executable, "-m", "deepcycle_core", "train", "--store", str(store_path), "--out", str(out),
           "--epochs", "2", "--batch-size", "8", "--samples-per-epoch", "32", "--val-cells", "16",
           "--heldout-cells", "16", "--pretrained", "none", "--threads", "1", "--seed", "3", "--no-progress",
           "--checkpoint-every", "2", "--cycle-weight", "0", *extra]
    return subprocess.run(cmd, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=600)


def test_resume_after_kill_gives_identical_weights(store_path, tmp_path):
    kw = {**FAST, "checkpoint_every": 2}
    full = T.train(store_path, tmp_path / "full", **kw)  # uninterrupted, in this process
    # the same run from the command line, SIGKILLed after step 7 = epoch 2, batch 3 (4 steps an epoch;
    # a mid-epoch checkpoint exists at batch 2); then resumed here
    killed = _cli(store_path, tmp_path / "killed", env={T.KILL_ENV: "7"})
    assert killed.returncode == -9, killed.stderr
    mid = C.load_checkpoint(tmp_path / "killed" / "last.pt")
    assert (mid["epoch"], mid["batch"]) == (1, 2)
    resumed = T.train(store_path, tmp_path / "killed", resume=True, **kw)
    a = C.load_checkpoint(tmp_path / "full" / "last.pt")
    b = C.load_checkpoint(tmp_path / "killed" / "last.pt")
    assert a["epoch"] == b["epoch"] == 2
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert a["history"] == b["history"]
    assert full["weights_sha256"] == resumed["weights_sha256"] and full["confusion"] == resumed["confusion"]
    # resuming with other settings is refused, naming the checkpoint and the setting
    with pytest.raises(C.CheckpointError, match=r"last\.pt.*seed"):
        T.train(store_path, tmp_path / "killed", resume=True, **{**kw, "seed": 4})


def _ddp_worker(rank: int, world: int, store: str, out: str, port: int, results: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    res = T.train(store, out, device="cpu", **{**FAST, "epochs": 1, "batch_size": 4})
    Path(results, f"rank{rank}.json").write_text(json.dumps({"rank": rank, "sha": res["weights_sha256"]}))


def test_ddp_two_gloo_processes_agree(store_path, tmp_path):
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "ddp"
    mp.spawn(_ddp_worker, args=(2, str(store_path), str(out), port, str(tmp_path)), nprocs=2, join=True)
    r0 = json.loads((tmp_path / "rank0.json").read_text())
    r1 = json.loads((tmp_path / "rank1.json").read_text())
    assert r0["sha"] == r1["sha"], "the two ranks ended with different weights"
    last = C.load_checkpoint(out / "last.pt")
    net, _ = C.load_model(out / "last.pt")
    assert T.weights_digest(net) == r0["sha"]  # the checkpoint rank 0 wrote is the agreed model
    # both ranks together consumed each global batch of 2 x 4 once: 32 samples in the epoch
    assert last["history"][0]["train_samples"] == 32 and last["config"]["world_size"] == 2


def test_reuse_returns_the_finished_run_without_training(trained, store_path, monkeypatch):
    summary, out = trained
    monkeypatch.setattr(T, "build_model", lambda *a, **k: pytest.fail("reuse must not build or train a model"))
    again = T.train(store_path.parent, reuse=True, **FAST)
    assert again["reused"] is True and again["weights_sha256"] == summary["weights_sha256"]
