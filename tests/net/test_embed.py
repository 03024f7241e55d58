"""Embedding: every cell gets the network's descriptor, in order, the same locally and on Dask."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from deepcycle_core.net import embed as E
from deepcycle_core.data import fingerprint
from deepcycle_core.data.runs import RunDir
from deepcycle_core.data.store import StoreError, open_store

from builders import EMBED_CHUNK as CHUNK  # noqa: E402
from builders import EMBED_N_CELLS as N_CELLS  # noqa: E402
from builders import write_embed_checkpoint as _write_checkpoint  # noqa: E402
from builders import write_embed_store as _write_store  # noqa: E402


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("embed")
    store = _write_store(root / "run" / "store", [("hoechst", "nuclear"), ("brightfield", "brightfield")])
    (root / "run" / "train").mkdir()
    ckpt = _write_checkpoint(root / "run" / "train" / "best.pt")
    fingerprint.adopt(RunDir(root / "run"), "train")  # a hand-made checkpoint: vouch that it fits this store
    return root, store, ckpt


@pytest.fixture(scope="module")
def local_fp32(setup):
    root, store, ckpt = setup
    out = E.embed(root / "run", batch_size=50, precision="fp32", features=True, progress=False)
    return out


def test_local_outputs(setup, local_fp32):
    root, store, _ = setup
    out = local_fp32
    assert out == root / "run" / "embed"
    df = E.read_descriptors(out)
    assert list(df.columns[:5]) == ["cell_id", "d0", "d1", "d2", "d3"]
    assert len(df) == N_CELLS and (df["cell_id"].to_numpy() == np.arange(N_CELLS)).all()
    feats = [c for c in df.columns if c.startswith("f")]
    assert len(feats) == 256  # resnet18 cut after layer3
    d = df[["d0", "d1", "d2", "d3"]].to_numpy()
    assert np.isfinite(d).all() and (d <= 0).all()
    # log(softmax + 1e-7): the exponentials sum to 1 (+ 4e-7)
    np.testing.assert_allclose(np.exp(d).sum(1), 1.0, atol=1e-5)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_cells"] == N_CELLS and summary["precision"] == "fp32" and summary["features"] == 256
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "temporary files left behind"


def test_reuse_skips_only_when_up_to_date(setup, local_fp32):
    root, store, ckpt = setup
    stamp = (local_fp32 / E.DESCRIPTORS_NAME).stat().st_mtime_ns
    E.embed(root / "run", batch_size=50, precision="fp32", features=True, reuse=True, progress=False)
    assert (local_fp32 / E.DESCRIPTORS_NAME).stat().st_mtime_ns == stamp  # same inputs: nothing recomputed
    assert E._up_to_date(local_fp32, {**json.loads((local_fp32 / "summary.json").read_text())["fingerprint"]})
    fp = json.loads((local_fp32 / "summary.json").read_text())["fingerprint"]
    assert not E._up_to_date(local_fp32, {**fp, "features": False})
    assert not E._up_to_date(local_fp32, {**fp, "checkpoint_sha256": "0" * 64})


def test_descriptors_match_the_network(setup, local_fp32):
    """Order and normalisation: cell i's row equals the network on cell i's per-frame-normalised crop."""
    from deepcycle_core.net.checkpoint import load_model
    from deepcycle_core.net.normalise import frame_norm, normalise_crops

    root, store_path, ckpt = setup
    store = open_store(store_path)
    model, _ = load_model(ckpt)
    idx = np.array([0, 63, 64, 200, N_CELLS - 1])
    med, std = frame_norm(store, [0, 1])
    x = torch.from_numpy(normalise_crops(store.take(idx), med[idx], std[idx]))
    with torch.inference_mode():
        want = model.descriptor(x).numpy()
        want_f = model.features(x).numpy()
    df = E.read_descriptors(local_fp32)
    got = df.loc[idx, ["d0", "d1", "d2", "d3"]].to_numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(df.loc[idx, ["f0", "f1", "f255"]].to_numpy(), want_f[:, [0, 1, 255]], rtol=1e-4, atol=1e-4)


def test_h5ad_export(setup, local_fp32):
    import anndata as ad

    _, store_path, _ = setup
    a = ad.read_h5ad(local_fp32 / E.H5AD_NAME)
    assert a.n_obs == N_CELLS
    assert a.obsm["X_deepcycle"].shape == (N_CELLS, 4) and a.obsm["X_features"].shape == (N_CELLS, 256)
    df = E.read_descriptors(local_fp32)
    np.testing.assert_array_equal(a.obsm["X_deepcycle"], df[["d0", "d1", "d2", "d3"]].to_numpy())
    cells = open_store(store_path).cells
    np.testing.assert_array_equal(a.obs["frame"].to_numpy(), cells["frame"].to_numpy())
    assert a.uns["deepcycle"]["n_cells"] == N_CELLS


def test_bf16_close_to_fp32(setup, tmp_path):
    _, _, ckpt = setup
    store = _write_store(tmp_path / "small", [("hoechst", "nuclear"), ("brightfield", "brightfield")], n=40)
    # bf16 is emulated (slow) on AVX2 CPUs: a small store keeps this test quick everywhere
    out = E.embed(store, ckpt, tmp_path / "bf16", precision="bf16", h5ad=False, progress=False)
    ref = E.embed(store, ckpt, tmp_path / "fp32", precision="fp32", h5ad=False, progress=False)
    a = E.read_descriptors(out)[["d0", "d1", "d2", "d3"]].to_numpy()
    b = E.read_descriptors(ref)[["d0", "d1", "d2", "d3"]].to_numpy()
    # bf16 keeps ~3 significant digits; the class probabilities agree closely
    np.testing.assert_allclose(np.exp(a), np.exp(b), atol=0.03)


def test_dask_local_cluster_matches_local(setup, local_fp32, tmp_path):
    _, store, ckpt = setup
    out = E.embed(store, ckpt, tmp_path / "dask", batch_size=50, precision="fp32", features=True,
                  local_cluster=True, n_workers=2, threads_per_worker=1, progress=False)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["executor"].startswith("dask LocalCluster")
    a = E.read_descriptors(out)
    b = E.read_descriptors(local_fp32)
    assert (a["cell_id"].to_numpy() == b["cell_id"].to_numpy()).all()
    np.testing.assert_allclose(a.drop(columns="cell_id").to_numpy(), b.drop(columns="cell_id").to_numpy(),
                               rtol=1e-5, atol=1e-5)


def test_chunk_ranges_cover_everything():
    r = E.chunk_ranges(300, 64)
    assert r[0] == (0, 64) and r[-1] == (256, 300) and len(r) == 5
    r2 = E.chunk_ranges(300, 64, cells_per_task=130)
    assert r2 == [(0, 128), (128, 256), (256, 300)]
    assert all(s % 64 == 0 for s, _ in r2)


def test_resolve_run_one_rule_for_run_folders_and_bare_stores(setup, tmp_path):
    """The rule train and embed share: a folder with meta.json is a store, one whose store/ has it a run."""
    from deepcycle_core.data.runs import resolve_run

    root, store, ckpt = setup
    assert resolve_run(root / "run") == (store, RunDir(root / "run"))
    assert resolve_run(RunDir(root / "run")) == (store, RunDir(root / "run"))
    assert resolve_run(store) == (store, None)
    assert E.resolve_inputs(root / "run", None, None) == (store, ckpt, root / "run" / "embed")
    (tmp_path / "store").mkdir()  # a store/ folder without meta.json does not make a run folder
    with pytest.raises(FileNotFoundError, match="neither a cell store nor a run folder"):
        resolve_run(tmp_path)


def test_clear_errors(setup, tmp_path):
    root, store, ckpt = setup
    with pytest.raises(ValueError, match="give checkpoint and out_dir"):
        E.embed(store, progress=False)
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        E.embed(store, tmp_path / "nope.pt", tmp_path / "o", progress=False)
    with pytest.raises(FileNotFoundError, match="neither a cell store nor a run folder"):
        E.embed(tmp_path, progress=False)
    with pytest.raises(ValueError, match="precision"):
        E.embed(store, ckpt, tmp_path / "o", precision="fp8", progress=False)
    # a brightfield-only store cannot feed a two-channel (nuclear + brightfield) model
    bf = _write_store(tmp_path / "bf", [("brightfield", "brightfield")])
    with pytest.raises(StoreError, match="nuclear"):
        E.embed(bf, ckpt, tmp_path / "o2", progress=False)
    assert not (tmp_path / "o2" / E.DESCRIPTORS_NAME).exists()


def test_single_channel_mode_and_cli(setup, tmp_path):
    from deepcycle_core.__main__ import main

    _, store, _ = setup
    ckpt = _write_checkpoint(tmp_path / "bf_only.pt", mode="bf_only")
    rc = main(["embed", "--store", str(store), "--checkpoint", str(ckpt), "--out", str(tmp_path / "cli"),
               "--precision", "fp32", "--quiet", "--no-h5ad"])
    assert rc == 0
    df = E.read_descriptors(tmp_path / "cli")
    assert len(df) == N_CELLS and not (tmp_path / "cli" / E.H5AD_NAME).exists()


def test_read_descriptors_refuses_stale_or_unrecorded_descriptors(setup, local_fp32, tmp_path):
    """What the embed stage wrote reads; edited by hand afterwards, copied without its stamp, or made
    from a store that has changed since, it is refused, naming the file and the command that remakes it."""
    import shutil

    from deepcycle_core.data.fingerprint import StaleInputError

    root, _, _ = setup
    run = tmp_path / "run"
    shutil.copytree(root / "run", run)  # stamps name their inputs relative to themselves: still current
    assert len(E.read_descriptors(RunDir(run))) == N_CELLS
    path = run / "embed" / E.DESCRIPTORS_NAME
    df = pd.read_parquet(path)
    df.loc[0, "d0"] -= 1.0
    df.to_parquet(path, index=False)
    for where in (RunDir(run), run, run / "embed"):
        with pytest.raises(StaleInputError, match=rf"{path}: stale, it was changed after the embed stage wrote it"
                                                  rf".*`deepcycle embed --run {run}"):
            E.read_descriptors(where)
    # an embed folder of another store (no run around it) is checked against its own stamp
    out = tmp_path / "elsewhere"
    shutil.copytree(run / "embed", out)
    (out / "stamp.json").unlink()
    with pytest.raises(StaleInputError, match=rf"{out / E.DESCRIPTORS_NAME}: stale, there is no record"):
        E.read_descriptors(out)
    # the run's store changed after the descriptors were made (one class relabelled)
    shutil.rmtree(run)
    shutil.copytree(root / "run", run)
    cells = pd.read_parquet(run / "store" / "cells.parquet")
    cells.loc[0, "class"] = (cells.loc[0, "class"] + 1) % 4
    cells.to_parquet(run / "store" / "cells.parquet", index=False)
    with pytest.raises(StaleInputError, match="another version of the cell store"):
        E.read_descriptors(run)
