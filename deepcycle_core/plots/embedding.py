"""The figures and printed tables of the embedding chapter (``book/03_embed.ipynb``).

Why a module: the chapter reads like a methods section and only calls these functions; each one
draws (or formats) exactly what the chapter showed when the drawing was inline, so the book's
figures and printed numbers do not change. The embedding itself, its throughput measurement and the
confusion metrics live in ``deepcycle_core.net`` (:mod:`deepcycle_core.net.embed`,
:func:`deepcycle_core.net.train.confusion_metrics`); this module joins their outputs with the cell
table for display and formats the stored benchmark results.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd

from ..data.fucci import CLASS_NAMES
from .views import CLASS_COLORS, ring_image, ring_view

__all__ = [
    "DESCRIPTOR_COLUMNS",
    "accuracy_table",
    "anndata_summary",
    "class_histograms_figure",
    "class_medians_table",
    "confusion_summary",
    "dask_scaling_summary",
    "descriptor_plane_figure",
    "descriptor_plane_view",
    "descriptor_summary",
    "descriptor_table",
    "embed_summary",
    "held_out_mask",
    "inference_summary",
    "paper_scale_summary",
    "throughput_summary",
]

#: The four log-probabilities of the descriptor, one per FUCCI class.
DESCRIPTOR_COLUMNS = ("d0", "d1", "d2", "d3")
#: Resolution of the chapter's matplotlib figures (the book's inline figures).
_DPI = 90


def embed_summary(desc: pd.DataFrame, summary: Mapping[str, Any]) -> str:
    """What the embedding wrote and how it ran (precision, memory layout, batch).

    Only what the run's parameters fix: facts of the machine (native bf16) go in
    :func:`inference_summary`, which chapters print in a cell nbval does not compare."""
    head = (", and the cycle head's 2 outputs (cycle_cos, cycle_sin; chapter 4)" if summary.get("cycle_head") else "")
    return (f"descriptors: {len(desc):,} cells x {sum(c[0] == 'd' for c in desc.columns)} numbers"
            f" (+ {summary['features']} pooled features){head}\n"
            f"precision used: {summary['precision']}, "
            f"channels-last: {summary['channels_last']}, batch {summary['batch_size']}")


def inference_summary(summary: Mapping[str, Any], native_bf16: bool) -> str:
    """The last inference run's wall time and rate, and whether this CPU has native bf16: facts of the
    machine and the moment, so a chapter prints them where nbval ignores the output."""
    return (f"last inference run: {summary['seconds']:.1f} s, {summary['cells_per_s']:.0f} cells/s "
            f"({summary['executor']}); native bf16 on this CPU: {native_bf16}")


def descriptor_table(desc: pd.DataFrame, cells: pd.DataFrame, split: np.ndarray | None) -> pd.DataFrame:
    """One row per cell: its descriptor, FUCCI class, split (``"all"`` without a split) and reporters.

    ``desc`` and ``cells`` are in the store's cell order (as :func:`deepcycle_core.net.embed.embed`
    writes them); ``split`` is the split column of ``split.parquet`` or None.
    """
    D = desc[list(DESCRIPTOR_COLUMNS)].to_numpy()
    split = np.full(len(cells), "all") if split is None else np.asarray(split).astype(str)
    return pd.DataFrame({"cell_id": desc["cell_id"], **{f"d{k}": D[:, k] for k in range(4)},
                         "class": cells["class"].to_numpy(), "split": split,
                         "fucci_red": cells["fucci_red"].to_numpy(), "fucci_green": cells["fucci_green"].to_numpy()})


def descriptor_summary(df: pd.DataFrame, rows: int = 6) -> str:
    """The first rows of the table and the check that each cell's probabilities sum to one."""
    total = np.exp(df[list(DESCRIPTOR_COLUMNS)].to_numpy()).sum(1)
    return (df.head(rows).round(3).to_string(index=False)
            + f"\n\nsum of exp(d) per cell: min {total.min():.4f}, max {total.max():.4f}")


def held_out_mask(df: pd.DataFrame) -> tuple[np.ndarray, str]:
    """Labelled held-out cells (all labelled cells when the run has none) and the word for them."""
    has_held = bool((df["split"] == "heldout").any())
    lab = df["class"].to_numpy()
    held = (lab >= 0) & ((df["split"].to_numpy() == "heldout") if has_held else True)
    return held, "held-out" if has_held else "all"


def _predicted(df: pd.DataFrame) -> np.ndarray:
    return df[list(DESCRIPTOR_COLUMNS)].to_numpy().argmax(1)


def accuracy_table(df: pd.DataFrame) -> pd.DataFrame:
    """Accuracy of the largest component against the FUCCI class, per split (train, val, heldout, all)."""
    from ..net.train import confusion_metrics  # imports torch: only when the table is made

    pred, lab = _predicted(df), df["class"].to_numpy()
    rows = []
    for s in ["train", "val", "heldout", "all"]:
        sel = (lab >= 0) & ((df["split"].to_numpy() == s) if s != "all" else True)
        if sel.sum():
            m = confusion_metrics(lab[sel], pred[sel], n_classes=len(CLASS_NAMES))  # what training reports
            rows.append({"split": s, "cells": m["n"], "accuracy": round(m["accuracy"], 3)})
    return pd.DataFrame(rows)


def confusion_summary(df: pd.DataFrame) -> str:
    """The held-out confusion matrix, rows normalised (share of each FUCCI class predicted as each class)."""
    from ..net.train import confusion_metrics  # imports torch: only when the table is made

    names = list(CLASS_NAMES)
    held, which = held_out_mask(df)
    lab, pred = df["class"].to_numpy(), _predicted(df)
    cm = pd.DataFrame(confusion_metrics(lab[held], pred[held], n_classes=len(names))["confusion"],
                      index=pd.Index(names, name="FUCCI class"), columns=pd.Index(names, name="predicted"))
    return f"{which} cells, confusion (rows: FUCCI class, share predicted as each class):\n" + cm.round(2).to_string()


def class_histograms_figure(df: pd.DataFrame):
    """One panel per descriptor component: its distribution within each FUCCI class (held-out cells)."""
    import matplotlib.pyplot as plt

    names = list(CLASS_NAMES)
    D, lab = df[list(DESCRIPTOR_COLUMNS)].to_numpy(), df["class"].to_numpy()
    held, _ = held_out_mask(df)
    fig, axes = plt.subplots(1, 4, figsize=(13, 2.9), sharey=False, dpi=_DPI)
    colors = [CLASS_COLORS[n] for n in names]
    bins = np.linspace(np.percentile(D[held], 0.5), 0.0, 60)
    for k, ax in enumerate(axes):
        for c, (name, col) in enumerate(zip(names, colors)):
            v = D[held & (lab == c), k]
            ax.hist(v, bins=bins, histtype="step", density=True, color=col, lw=1.6, label=name)
        ax.set_title(f"d{k} = log p({names[k]})", fontsize=10)
        ax.set_xlabel("log-probability")
        ax.set_yticks([])
    axes[0].legend(fontsize=8, frameon=False, title="FUCCI class", title_fontsize=8)
    fig.tight_layout()
    return fig


def class_medians_table(df: pd.DataFrame) -> str:
    """The median descriptor of each FUCCI class (held-out cells), with its heading."""
    names = list(CLASS_NAMES)
    held, which = held_out_mask(df)
    D, lab = df[list(DESCRIPTOR_COLUMNS)].to_numpy(), df["class"].to_numpy()
    med = pd.DataFrame(D[held]).groupby(lab[held]).median()
    med.index = [names[i] for i in med.index]
    med.columns = [f"d{k}" for k in range(4)]
    return f"median descriptor per FUCCI class ({which} cells):\n" + med.round(2).to_string()


def _plane_labels() -> dict[str, str]:
    names = list(CLASS_NAMES)
    return {"x": "d1", "y": "d2", "xlabel": f"d1 = log p({names[1]})", "ylabel": f"d2 = log p({names[2]})"}


def descriptor_plane_figure(pts: pd.DataFrame):
    """Every cell in the plane of d1 (red-high) and d2 (green-high), coloured by its FUCCI green
    fraction (Datashader, static); ``pts`` from :func:`deepcycle_core.plots.views.prepare_points`."""
    return ring_image(pts, "fucci_ratio", square=False, width=420, height=360, **_plane_labels(),
                      title=f"{len(pts):,} cells, coloured by FUCCI green fraction")


def descriptor_plane_view(pts: pd.DataFrame):
    """The same plane as :func:`descriptor_plane_figure`, interactive (re-aggregates on zoom)."""
    return ring_view(pts, "fucci_ratio", square=False, width=380, height=330, **_plane_labels())


def throughput_summary(tp: pd.DataFrame) -> str:
    """The throughput table of :func:`deepcycle_core.net.embed.throughput`, the bottleneck and the
    projected time for the paper's 2.6 M crops (loader first, pipeline last)."""
    table = tp.assign(cells_per_s=tp["cells_per_s"].round(0), ratio_vs_baseline=tp["ratio_vs_baseline"].round(2))
    loader, best_model = tp["cells_per_s"].iloc[0], tp["cells_per_s"].iloc[1:-1].max()
    return (table.to_string(index=False)
            + f"\n\nloader / fastest model: {loader / best_model:.1f}x  ->  the "
            f"{'model' if loader > best_model else 'loader'} is the bottleneck\n"
            f"projected time for the paper's 2.6 M crops at the pipeline's speed: "
            f"{2.6e6 / tp['cells_per_s'].iloc[-1] / 60:.0f} min")


def paper_scale_summary(full: Mapping[str, Any]) -> str:
    """What ``benchmarks/paper_scale.py`` measured: machine, per-stage table, totals against the targets."""
    m = full["machine"]
    stages = pd.DataFrame([{"stage": s, "cells": r["cells"], "wall_min": r["wall_s"] / 60, "cpu_min": r["cpu_s"] / 60,
                            "per_s": round(r["cells"] / r["wall_s"]), "peak_GB": r["rss_mb"] / 1024,
                            "+children_GB": (r["rss_mb"] + r["worker_rss_mb"]) / 1024}
                           for s, r in full["stages"].items()])
    peak_gb, bound_gb = full["peak_process_rss_mb"] / 1024, full["peak_with_children_rss_mb"] / 1024
    wall_ok = full["total_wall_s"] <= full["targets"]["wall_s"]
    mem_ok = full["peak_process_rss_mb"] < full["targets"]["memory_mb"]
    return "\n".join([
        f"measured {full['date'][:10]} on {m['cpu_model']}, {m['cores']} cores, commit {full['commit']}",
        f"AVX-512 {m['avx512']}, AMX {m['amx']}, native bf16 {m['native_bf16']}: "
        f"embedded in {full['stages']['embed']['precision']}",
        stages.round(2).to_string(index=False),
        "",
        f"{full['crops']:,} crops end to end in {full['total_wall_s'] / 60:.0f} min "
        f"(target <= {full['targets']['wall_s'] / 60:.0f} min: {'met' if wall_ok else 'MISSED'})",
        f"store on disk: {full['store_bytes_on_disk'] / 1e9:.1f} GB",
        f"peak memory of any stage process: {peak_gb:.2f} GB "
        f"(target < {full['targets']['memory_mb'] / 1024:.0f} GB: {'met' if mem_ok else 'MISSED'})",
        f"  with its children's peaks added: {bound_gb:.2f} GB (an upper bound: a forked child's",
        "  peak counts the pages it shares with its parent a second time)",
    ])


def dask_scaling_summary(dask_run: Mapping[str, Any]) -> str:
    """What ``benchmarks/dask_scaling.py`` measured: 1 against 2 Dask workers per stage."""
    short = {"embed, cold": "embed, cold", "embed, warm": "embed, warm",
             "draw": f"draw {dask_run['points'] / 1e6:.0f} M cells"}
    scaling = pd.DataFrame([{"Dask stage": next(v for k, v in short.items() if r["stage"].startswith(k)),
                             "1_worker_s": r["one_worker_s"], "2_workers_s": r["two_workers_s"],
                             "efficiency": f"{r['efficiency']:.0%}"} for r in dask_run["rows"]])
    return (f"{dask_run['cells']:,} cells embedded; 1 vs 2 workers of 1 thread each:\n"
            + scaling.round(2).to_string(index=False))


def anndata_summary(adata: Any, desc: pd.DataFrame) -> str:
    """What ``cells.h5ad`` holds, and whether its descriptors equal ``descriptors.parquet``."""
    same = bool(np.array_equal(adata.obsm["X_deepcycle"], desc[list(DESCRIPTOR_COLUMNS)].to_numpy().astype(np.float32)))
    return (f"AnnData: {adata.n_obs:,} obs; obsm keys {sorted(adata.obsm.keys())}; obs columns: {len(adata.obs.columns)}\n"
            f"X_deepcycle equals descriptors.parquet: {same}")
