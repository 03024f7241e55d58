"""The training chapter's figures and tables, on made-up training summaries: right panels, rows and lines."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from deepcycle_core.data.fucci import CLASS_NAMES
from deepcycle_core.plots import training as train_plots


def _summary(acc: float, channels: list[str], cycle: bool = True) -> dict:
    conf = np.full((4, 4), 0.1) + np.eye(4) * 0.6
    s = {"best_epoch": 3, "epochs": 4, "accuracy": acc, "n_val_evaluated": 200, "channels": channels,
         "confusion": conf.tolist(), "recall": list(np.diag(conf)),
         "heldout": {"accuracy": acc - 0.05, "n": 300, "cycle_mae_h": 2.5, "cycle_n": 290}}
    if cycle:
        s["cycle"] = {"T_hours": 26.04, "targets": {"none": 5, "birth": 1200, "division": 800},
                      "val_mae_h": 2.431, "val_n": 1999}
    return s


@pytest.fixture(scope="module")
def summaries() -> dict:
    return {"both": _summary(0.65, ["hoechst", "brightfield"]), "bf_only": _summary(0.5, ["brightfield"], cycle=False)}


def test_preset_and_reference_summaries():
    store = SimpleNamespace(n_cells=45221, channels=["hoechst", "brightfield"])
    preset = SimpleNamespace(name="default", backbone="resnet18", truncate=True, optimizer="adamw", lr=0.003,
                             batch_size=128, schedule="onecycle", augment=True, balance="sampler", cycle_weight=1.0)
    lines = train_plots.preset_summary(store, preset).splitlines()
    assert lines[0] == "store: 45,221 cells, channels ['hoechst', 'brightfield']"
    assert lines[1] == ("preset default: resnet18 cut after stage 3: True, adamw, lr 0.003, batch 128, schedule onecycle, "
                        "augment True, balance sampler, cycle head weight 1")
    card = {"recipe": {"epochs": 10, "seed": 0}, "commit": "abc", "command": "make model",
            "networks": {"both": {}, "bf_only": {"commit": "def"}},
            "data": {"store": {"sim_version": 4, "seed": 0, "crops": 45221}}}
    lines = train_plots.reference_summary(card).splitlines()
    assert lines[0] == "reference networks: 10 epochs x all training cells, seed 0; commits: both abc, bf_only def"
    assert lines[1] == "  on: simulator version 4, seed 0, 45,221 crops; command: make model"


def test_split_table_counts_cells_and_tracks():
    cells = pd.DataFrame({"track_id": [0, 0, 1, 2, 2, 3]})
    split = pd.DataFrame({"split": ["train", "train", "val", "heldout", "heldout", "train"]})
    table = train_plots.split_table(cells, split)
    assert list(table.index) == ["train", "val", "heldout", "excluded"]
    assert table["cells"].tolist() == [3, 1, 2, 0] and table["tracks"].tolist() == [2, 1, 1, 0]


def test_accuracy_and_cycle_head_summaries(summaries):
    assert train_plots.accuracy_summary(summaries["both"]) == (
        "best epoch 3 of 4; validation accuracy 0.650 on 200 val cells; held-out full-cycle cells 0.600 on 300")
    lines = train_plots.cycle_head_summary(summaries["both"]).splitlines()
    assert lines[0] == "cycle length T = 26.0 h (population doubling time, growth curve)"
    assert lines[1] == ("cells with a target, by the event it is counted from: "
                        "{'none': '5', 'birth': '1,200', 'division': '800'}")
    assert lines[2] == ("circular error of the cycle head: validation 2.43 h on 1,999 cells; "
                        "held-out full-cycle 2.50 h on 290 cells")
    assert train_plots.cycle_head_summary(summaries["bf_only"]) == "this network has no cycle head (preset cycle_weight = 0)"


@pytest.mark.parametrize("with_cycle", [True, False])
def test_learning_curves(with_cycle):
    hist = pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [1.2, 1.0, 0.9], "train_accuracy": [0.4, 0.5, 0.6],
                         "val_loss": [1.3, 1.1, 1.0], "val_accuracy": [0.35, 0.45, 0.55], "lr": [0.1, 0.2, 0.1]})
    if with_cycle:
        hist["val_cycle_mae_h"] = [5.0, 4.0, 3.0]
    table = train_plots.history_table(hist)
    assert "lr" not in table.columns and ("val_cycle_mae_h" in table.columns) == with_cycle
    fig = train_plots.learning_curves_figure(hist)
    assert len(fig.axes) == (3 if with_cycle else 2)
    assert [ax.get_title() for ax in fig.axes][:2] == ["class loss", "4-class accuracy"]
    assert len(fig.axes[1].lines) == 3  # train, validation, chance
    plt.close(fig)


def test_confusion_figure_and_recall_table(summaries):
    s = summaries["both"]
    fig = train_plots.confusion_figure(s)
    assert len(fig.axes) == 2
    assert len(fig.axes[0].texts) == 16 and fig.axes[0].get_title() == "this book (val. accuracy 0.65)"
    assert len(fig.axes[1].patches) == 8  # two bars per class
    plt.close(fig)
    table = train_plots.recall_table(s)
    assert list(table.index) == list(CLASS_NAMES)
    assert table["recall, paper"].tolist() == train_plots.PAPER_RESULTS["recall_both"]
    assert table["recall, this book"].tolist() == [0.7] * 4


def test_modes_table(summaries):
    table = train_plots.modes_table(summaries, ["both", "bf_only"])
    assert list(table.index) == ["both", "bf_only"]
    assert table.loc["both", "channels"] == "hoechst+brightfield"
    assert table.loc["bf_only", "paper accuracy"] == 0.642
    assert table.loc["both", "held-out cycle error (h)"] == 2.5 and np.isnan(table.loc["bf_only", "held-out cycle error (h)"])
    # a mode the paper did not train (the size-blind network) has no paper figure
    blind = train_plots.modes_table({**summaries, "both_sizeblind": summaries["both"]}, ["both", "both_sizeblind"])
    assert blind.loc["both_sizeblind", "paper accuracy"] == "-"


def test_benchmark_and_reference_speed_summaries():
    assert train_plots.benchmark_summary(None).startswith("no benchmark result stored yet")
    bench = {"machine": "2 CPUs", "training": {"baseline": 83.2, "tuned": 104.1, "ratio": 1.26},
             "inference": {"baseline": 270, "tuned": 422, "ratio": 1.56}, "loader": 12442, "loader_vs_training": 119.9}
    lines = train_plots.benchmark_summary(bench).splitlines()
    assert lines == ["machine: 2 CPUs", "training : baseline 83 img/s, tuned 104 img/s, ratio 1.26x",
                     "inference: baseline 270 img/s, tuned 422 img/s, ratio 1.56x",
                     "loader   : 12442 img/s = 119.9x what tuned training consumes"]
    bench["precision"] = {"native_bf16": False, "fp32": {"train": 124, "infer": 350}, "bf16": {"train": 9, "infer": 46}}
    assert train_plots.benchmark_summary(bench).splitlines()[-1].startswith("fp32 vs bf16 autocast (native bf16 on that CPU: False)")
    card = {"networks": {"both": {"train_seconds": 2220, "train_images": 101120, "train_images_per_s": 45.6, "bf16": False},
                         "bf_only": {"train_seconds": 60, "train_images": 10, "train_images_per_s": 1, "bf16": False}}}
    assert train_plots.reference_speed_summary(card, ["both"]) == (
        "reference both        : 37 min for 101,120 images = 46 img/s, bf16 False")
