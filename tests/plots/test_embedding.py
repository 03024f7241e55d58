"""The embedding chapter's figures and tables, on a small synthetic descriptor table."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from types import SimpleNamespace

import holoviews as hv
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from deepcycle_core.plots import embedding
from deepcycle_core.plots import views

hv.extension("bokeh")


@pytest.fixture(scope="module")
def tables() -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """400 cells whose descriptor mostly points at their class, with train/val/heldout splits."""
    rng = np.random.default_rng(0)
    n = 400
    cls = np.arange(n) % 4
    logits = rng.normal(size=(n, 4)) + 3.0 * np.eye(4)[cls]
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    desc = pd.DataFrame({"cell_id": np.arange(n), **{f"d{k}": logp[:, k] for k in range(4)}})
    cells = pd.DataFrame({"class": np.where(np.arange(n) < 8, -1, cls), "fucci_red": rng.random(n) * 100,
                          "fucci_green": rng.random(n) * 100})
    split = np.array(["train", "val", "heldout", "excluded"])[np.arange(n) // 100]
    return desc, cells, split


@pytest.fixture(scope="module")
def df(tables) -> pd.DataFrame:
    return embedding.descriptor_table(*tables)


def test_descriptor_table_and_summary(tables, df):
    desc, cells, _ = tables
    assert list(df.columns) == ["cell_id", "d0", "d1", "d2", "d3", "class", "split", "fucci_red", "fucci_green"]
    assert len(df) == len(desc)
    assert (embedding.descriptor_table(desc, cells, None)["split"] == "all").all()
    text = embedding.descriptor_summary(df)
    assert text.splitlines()[0].split() == ["cell_id", "d0", "d1", "d2", "d3", "class", "split", "fucci_red", "fucci_green"]
    assert text.endswith("sum of exp(d) per cell: min 1.0000, max 1.0000")


def test_embed_and_inference_summaries(tables):
    desc = tables[0]
    summary = {"features": 0, "cycle_head": True, "precision": "fp32", "channels_last": True, "batch_size": 512,
               "seconds": 12.34, "cells_per_s": 32.4, "executor": "local"}
    text = embedding.embed_summary(desc, summary)
    assert text.startswith("descriptors: 400 cells x 4 numbers (+ 0 pooled features), and the cycle head's")
    assert text.endswith("\nprecision used: fp32, channels-last: True, batch 512")
    assert "bf16 on this CPU" not in text  # a machine fact: not in a cell nbval compares
    assert "cycle head" not in embedding.embed_summary(desc, {**summary, "cycle_head": False})
    assert embedding.inference_summary(summary, True) == (
        "last inference run: 12.3 s, 32 cells/s (local); native bf16 on this CPU: True")


def test_held_out_mask_accuracy_and_confusion(df):
    held, which = embedding.held_out_mask(df)
    assert which == "held-out" and held.sum() == 100
    acc = embedding.accuracy_table(df)
    assert list(acc["split"]) == ["train", "val", "heldout", "all"]
    assert list(acc["cells"]) == [92, 100, 100, 392]
    assert (acc["accuracy"] > 0.5).all()
    text = embedding.confusion_summary(df)
    assert text.startswith("held-out cells, confusion")
    assert len(text.splitlines()) == 1 + 2 + 4  # heading, column header, index name, four classes
    no_held = df.assign(split="all")
    assert embedding.held_out_mask(no_held)[1] == "all"
    assert embedding.confusion_summary(no_held).startswith("all cells")


def test_class_histograms_and_medians(df):
    fig = embedding.class_histograms_figure(df)
    assert len(fig.axes) == 4
    assert [ax.get_title() for ax in fig.axes][1] == "d1 = log p(red-high)"
    assert all(len(ax.patches) == 4 for ax in fig.axes)  # one step histogram per class
    assert fig.dpi == 90
    plt.close(fig)
    text = embedding.class_medians_table(df)
    lines = text.splitlines()
    assert lines[0] == "median descriptor per FUCCI class (held-out cells):"
    assert lines[1].split() == ["d0", "d1", "d2", "d3"] and len(lines) == 6


def test_descriptor_plane(df):
    pts = views.prepare_points(df, x="d1", y="d2")
    fig = embedding.descriptor_plane_figure(pts)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "d1 = log p(red-high)" and ax.get_ylabel() == "d2 = log p(green-high)"
    assert ax.get_title() == "400 cells, coloured by FUCCI green fraction"
    plt.close(fig)
    view = embedding.descriptor_plane_view(pts)
    assert type(hv.render(view)).__name__ == "figure"


def test_throughput_summary():
    tp = pd.DataFrame({"what": ["loader", "model a", "model b", "pipeline"], "cells_per_s": [8000.4, 500.0, 800.0, 650.0],
                       "ratio_vs_baseline": [16.0, 1.0, 1.6, 1.3], "torch_threads": 2})
    text = embedding.throughput_summary(tp)
    assert "loader / fastest model: 10.0x  ->  the model is the bottleneck" in text
    assert text.endswith("projected time for the paper's 2.6 M crops at the pipeline's speed: 67 min")


def test_benchmark_summaries():
    stage = {"cells": 1000, "wall_s": 60.0, "cpu_s": 120.0, "rss_mb": 1024.0, "worker_rss_mb": 1024.0}
    full = {"date": "2026-12-02T10:00", "machine": {"cpu_model": "CPU", "cores": 2, "avx512": False, "amx": False,
                                                     "native_bf16": False},
            "commit": "abc", "stages": {"simulate": stage, "embed": {**stage, "precision": "fp32"}},
            "total_wall_s": 3600.0, "targets": {"wall_s": 2700.0, "memory_mb": 4096.0}, "crops": 1000,
            "store_bytes_on_disk": 2e9, "peak_process_rss_mb": 1024.0, "peak_with_children_rss_mb": 2048.0}
    text = embedding.paper_scale_summary(full)
    assert text.startswith("measured 2026-12-02 on CPU, 2 cores, commit abc")
    assert "1,000 crops end to end in 60 min (target <= 45 min: MISSED)" in text
    assert "peak memory of any stage process: 1.00 GB (target < 4 GB: met)" in text
    dask_run = {"cells": 8192, "points": 20e6, "rows": [
        {"stage": "embed, cold start", "one_worker_s": 30.0, "two_workers_s": 20.0, "efficiency": 0.75},
        {"stage": "draw", "one_worker_s": 5.0, "two_workers_s": 4.0, "efficiency": 0.625}]}
    lines = embedding.dask_scaling_summary(dask_run).splitlines()
    assert lines[0] == "8,192 cells embedded; 1 vs 2 workers of 1 thread each:"
    assert "embed, cold" in lines[2] and lines[2].rstrip().endswith("75%")
    assert lines[3].lstrip().startswith("draw 20 M cells")


def test_anndata_summary(tables):
    desc = tables[0]
    X = desc[list(embedding.DESCRIPTOR_COLUMNS)].to_numpy().astype(np.float32)
    adata = SimpleNamespace(n_obs=len(desc), obsm={"X_deepcycle": X}, obs=pd.DataFrame(index=range(3), columns=["a", "b"]))
    text = embedding.anndata_summary(adata, desc)
    assert text == ("AnnData: 400 obs; obsm keys ['X_deepcycle']; obs columns: 2\n"
                    "X_deepcycle equals descriptors.parquet: True")
    adata.obsm["X_deepcycle"] = X + 1
    assert embedding.anndata_summary(adata, desc).endswith("False")
