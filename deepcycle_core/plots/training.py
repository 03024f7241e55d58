"""The figures and printed tables of the training chapter (``book/02_train.ipynb``).

Why a module: the chapter reads like a methods section and only calls these functions; each one
draws (or formats) exactly what the chapter showed when the drawing was inline, so the book's
figures and printed numbers do not change. Training itself, the split and the reference networks
live in ``deepcycle_core.net`` and ``deepcycle_core.data``; this module presents their summaries
(the dicts :func:`deepcycle_core.net.train.train` returns and the reference card) next to the
paper's numbers.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..data.fucci import CLASS_NAMES

__all__ = [
    "PAPER_RESULTS",
    "accuracy_summary",
    "benchmark_summary",
    "confusion_figure",
    "cycle_head_summary",
    "history_table",
    "learning_curves_figure",
    "modes_table",
    "preset_summary",
    "recall_table",
    "reference_speed_summary",
    "reference_summary",
    "split_table",
]

#: The paper's numbers (Rappez et al. 2020): accuracy per input mode, and the per-class recall of
#: Hoechst + brightfield (low/low, red-high, green-high, both-high; the diagonal of its Fig. 2).
PAPER_RESULTS = {"accuracy": {"both": 0.728, "bf_only": 0.642, "nuclear_only": 0.680},
                 "recall_both": [0.765, 0.168, 0.850, 0.388]}

#: Resolution of the chapter's matplotlib figures (the book's inline figures).
_DPI = 90


def _subplots(*args: Any, **kwargs: Any):
    import matplotlib.pyplot as plt

    return plt.subplots(*args, dpi=_DPI, **kwargs)


def preset_summary(store: Any, preset: Any) -> str:
    """Two lines: what the store holds and the training preset's recipe."""
    p = preset
    return (f"store: {store.n_cells:,} cells, channels {store.channels}\n"
            f"preset {p.name}: {p.backbone} cut after stage 3: {p.truncate}, {p.optimizer}, lr {p.lr:g}, "
            f"batch {p.batch_size}, schedule {p.schedule}, augment {p.augment}, balance {p.balance}, "
            f"cycle head weight {p.cycle_weight:g}")


def reference_summary(card: Mapping[str, Any]) -> str:
    """Two lines from the reference card: the recipe, the commits, the data and the command."""
    r = card["recipe"]
    commits = ", ".join(f"{m} {n.get('commit', card['commit'])}" for m, n in card["networks"].items())
    data = card["data"]["store"]
    return (f"reference networks: {r['epochs']} epochs x all training cells, seed {r['seed']}; commits: {commits}\n"
            f"  on: simulator version {data['sim_version']}, seed {data['seed']}, "
            f"{data['crops']:,} crops; command: {card['command']}")


def split_table(cells: pd.DataFrame, split: pd.DataFrame) -> pd.DataFrame:
    """Cells and tracks on each side of the split (train, val, heldout, excluded)."""
    table = pd.DataFrame({"cells": split["split"].value_counts(),
                          "tracks": cells.assign(split=split["split"].to_numpy()).groupby("split")["track_id"].nunique()})
    return table.reindex(["train", "val", "heldout", "excluded"]).fillna(0).astype(int)


def accuracy_summary(summary: Mapping[str, Any]) -> str:
    """One line: best epoch, validation and held-out accuracy of a training summary."""
    s = summary
    return (f"best epoch {s['best_epoch']} of {s['epochs']}; validation accuracy {s['accuracy']:.3f} "
            f"on {s['n_val_evaluated']} val cells; held-out full-cycle cells {s['heldout']['accuracy']:.3f} "
            f"on {s['heldout']['n']}")


def _has_cycle(hist: pd.DataFrame) -> bool:
    return "val_cycle_mae_h" in hist.columns


def history_table(hist: pd.DataFrame) -> pd.DataFrame:
    """The learning curves as a table (``train/history.csv``), 3 decimals."""
    cols = ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy"]
    cols += ["val_cycle_mae_h"] if _has_cycle(hist) else []
    return hist[cols].round(3)


def learning_curves_figure(hist: pd.DataFrame):
    """Class loss, 4-class accuracy (with chance) and, with a cycle head, its circular error, per epoch."""
    has_cycle = _has_cycle(hist)
    fig, ax = _subplots(1, 3 if has_cycle else 2, figsize=(10, 3.1))
    ax[0].plot(hist.epoch, hist.train_loss, "o-", label="train")
    ax[0].plot(hist.epoch, hist.val_loss, "s-", label="validation")
    ax[0].set(xlabel="epoch", ylabel="cross-entropy", title="class loss")
    ax[1].plot(hist.epoch, hist.train_accuracy, "o-", label="train (augmented, balanced)")
    ax[1].plot(hist.epoch, hist.val_accuracy, "s-", label="validation")
    ax[1].axhline(0.25, color="grey", lw=0.8, ls=":", label="chance")
    ax[1].set(xlabel="epoch", ylabel="accuracy", title="4-class accuracy", ylim=(0, 1))
    if has_cycle:
        ax[2].plot(hist.epoch, hist.val_cycle_mae_h, "s-", color="C2", label="validation")
        ax[2].set(xlabel="epoch", ylabel="hours", title="cycle head: circular error", ylim=(0, None))
    for a in ax:
        a.legend(fontsize=8)
        a.set_xticks(hist.epoch)
    fig.tight_layout()
    return fig


def cycle_head_summary(summary: Mapping[str, Any]) -> str:
    """What the cycle head learned from and its circular error (or that the network has none)."""
    cyc = summary.get("cycle")
    if not cyc:
        return "this network has no cycle head (preset cycle_weight = 0)"
    held = summary["heldout"]
    return "\n".join([
        f"cycle length T = {cyc['T_hours']:.1f} h (population doubling time, growth curve)",
        "cells with a target, by the event it is counted from: "
        + str({k: f"{v:,}" for k, v in cyc["targets"].items()}),
        f"circular error of the cycle head: validation {cyc['val_mae_h']:.2f} h on {cyc['val_n']:,} cells; "
        f"held-out full-cycle {held['cycle_mae_h']:.2f} h on {held['cycle_n']:,} cells",
    ])


def confusion_figure(summary: Mapping[str, Any], paper_recall: Sequence[float] = PAPER_RESULTS["recall_both"]):
    """The row-normalised confusion matrix, and the per-class recall next to the paper's."""
    conf = np.array(summary["confusion"])
    fig, ax = _subplots(1, 2, figsize=(9.5, 3.6), gridspec_kw={"width_ratios": [1, 1.1]})
    ax[0].imshow(conf, vmin=0, vmax=1, cmap="Blues")
    for i in range(4):
        for j in range(4):
            ax[0].text(j, i, f"{conf[i, j]:.2f}", ha="center", va="center",
                       color="white" if conf[i, j] > 0.5 else "black", fontsize=8)
    ax[0].set(xticks=range(4), yticks=range(4), xticklabels=CLASS_NAMES, yticklabels=CLASS_NAMES,
              xlabel="predicted", ylabel="true", title=f"this book (val. accuracy {summary['accuracy']:.2f})")
    ax[0].tick_params(axis="x", labelrotation=30, labelsize=8)
    ax[0].tick_params(axis="y", labelsize=8)
    w = 0.38
    xs = np.arange(4)
    ax[1].bar(xs - w / 2, summary["recall"], w, label="this book")
    ax[1].bar(xs + w / 2, paper_recall, w, label="paper (BF + Hoechst)")
    ax[1].set(xticks=xs, xticklabels=CLASS_NAMES, ylabel="recall (diagonal)", ylim=(0, 1), title="per-class recall")
    ax[1].tick_params(axis="x", labelrotation=30, labelsize=8)
    ax[1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def recall_table(summary: Mapping[str, Any], paper_recall: Sequence[float] = PAPER_RESULTS["recall_both"]) -> pd.DataFrame:
    """Per-class recall of this network and of the paper's (rows: class)."""
    return pd.DataFrame({"recall, this book": np.round(summary["recall"], 3), "recall, paper": list(paper_recall)},
                        index=CLASS_NAMES)


def modes_table(summaries: Mapping[str, Mapping[str, Any]], modes: Sequence[str]) -> pd.DataFrame:
    """One row per input mode: channels, validation and held-out accuracy, the paper's ("-" for a mode it
    did not train, such as the size-blind one), best epoch,
    and the held-out cycle error where the network has a cycle head."""
    rows = []
    for mode in modes:
        m = summaries[mode]
        row = {"mode": mode, "channels": "+".join(m["channels"]), "val accuracy": round(m["accuracy"], 3),
               "held-out accuracy": round(m["heldout"]["accuracy"], 3),
               "paper accuracy": PAPER_RESULTS["accuracy"].get(mode, "-"), "best epoch": m["best_epoch"]}
        if m.get("cycle"):
            row["held-out cycle error (h)"] = round(m["heldout"]["cycle_mae_h"], 2)
        rows.append(row)
    return pd.DataFrame(rows).set_index("mode")


def benchmark_summary(bench: Mapping[str, Any] | None) -> str:
    """The stored training benchmark (``benchmarks/train_results.json``) in a few lines, or how to make it."""
    if bench is None:
        return ("no benchmark result stored yet: run .venv/bin/python benchmarks/train.py "
                "--json benchmarks/train_results.json")
    b = bench
    lines = [f"machine: {b['machine']}"]
    for k in ("training", "inference"):
        lines.append(f"{k:9s}: baseline {b[k]['baseline']:.0f} img/s, tuned {b[k]['tuned']:.0f} img/s, "
                     f"ratio {b[k]['ratio']:.2f}x")
    lines.append(f"loader   : {b['loader']:.0f} img/s = {b['loader_vs_training']:.1f}x what tuned training consumes")
    if "precision" in b:
        pr = b["precision"]
        lines.append(f"fp32 vs bf16 autocast (native bf16 on that CPU: {pr['native_bf16']}): "
                     f"training {pr['fp32']['train']:.0f} vs {pr['bf16']['train']:.0f} img/s, "
                     f"inference {pr['fp32']['infer']:.0f} vs {pr['bf16']['infer']:.0f} img/s")
    return "\n".join(lines)


def reference_speed_summary(card: Mapping[str, Any], modes: Sequence[str]) -> str:
    """The reference networks' training time and throughput from their card, one line per mode."""
    return "\n".join(f"reference {mode:12s}: {net['train_seconds'] / 60:.0f} min for {net['train_images']:,} images "
                     f"= {net['train_images_per_s']:.0f} img/s, bf16 {net['bf16']}"
                     for mode, net in card["networks"].items() if mode in modes)
