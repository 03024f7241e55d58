"""The validation chapter's figures and tables, drawn from a small synthetic validation result."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from deepcycle_core.plots import validation as vp
from deepcycle_core.validation.scoring import OURS

METHODS = [OURS, "deepcycle", "deepcycle_som", "handmade", "pixels_pca", "ceiling_crops", "ceiling_hidden",
           "deepcycle_clock_hard"]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    mae = [2.0, 4.0, 3.0, 5.0, np.nan, 1.5, 1.0, 4.5]
    nan = np.nan
    return pd.DataFrame({
        "method": METHODS, "circ_mae_h": mae, "hours_mae_h": [2.5, 3.0, 3.5, nan, nan, 1.6, 1.5, 6.0],
        "worst_tenth_mae_h": [2.9, 6.0, 5.0, 7.0, nan, 2.0, 1.5, 6.0],
        "interval80_cover": [0.786, nan, nan, nan, nan, nan, nan, nan],
        "interval_width_h": [7.3, nan, nan, nan, nan, nan, nan, nan],
        "width_error_spearman": [0.3, nan, nan, nan, nan, nan, nan, nan],
        "track_spearman_median": [0.96, 0.9, 0.91, 0.7, nan, 0.98, 0.99, 0.94],
        "fisher_lee": [0.5, 0.3, 0.4, 0.1, nan, 0.7, 0.8, 0.2],
        "paper_spearman": [0.99, 0.8, 0.85, 0.9, nan, 1.0, 1.0, 0.97],
        "paper_spearman_unwrapped": [0.99, 0.99, 0.99, 0.95, nan, 1.0, 1.0, 0.84],
        "paper_kendall": [0.97, 0.76, 0.8, 0.87, nan, 1.0, 1.0, 0.88],
        "paper_kendall_unwrapped": [0.98, 0.97, 0.97, 0.82, nan, 1.0, 1.0, 0.69],
        "ring": ["clock", "clock", "clock", "folded", None, "no ring", "no ring", "clock"],
    })


@pytest.fixture(scope="module")
def cells_pred() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Three held-out tracks of 20 frames whose clock reads the true age plus a little noise."""
    rng = np.random.default_rng(0)
    rows = []
    for tid, T in [(1, 24.0), (2, 26.0), (3, 28.0)]:
        for k in range(20):
            age = k / 20
            rows.append({"cell_id": tid * 100 + k, "field": 0, "track_id": tid, "time_h": age * T, "true_cycle_h": T,
                         "true_age": age, "true_age_h": age * T, "full_cycle": True, "frame": k,
                         "birth_frame": 0, "division_frame": 19 if tid == 1 else 39})
    cells = pd.DataFrame(rows)
    pt = (cells["true_age"] + rng.normal(0, 0.02, len(cells))) % 1
    pred = pd.DataFrame({"method": OURS, "cell_id": cells["cell_id"], "pseudotime": pt, "hours": pt * cells["true_cycle_h"]})
    tracks = pd.DataFrame({"method": [OURS] * 3 + ["deepcycle"] * 3, "track_id": [1, 2, 3] * 2,
                           "spearman": [0.9, 0.97, 0.99, 0.5, 0.8, 0.96], "pearson": [0.9] * 6, "n": [20] * 6,
                           "duration_h": [23.0, 25.0, 27.0] * 2})
    return cells, pred, tracks


def test_inputs_found_says_found_or_missing(tmp_path: Path) -> None:
    (tmp_path / "a").touch()
    text = vp.inputs_found({"here": tmp_path / "a", "gone": tmp_path / "b"}, root=tmp_path)
    assert text.splitlines() == ["here         found: a", "gone         MISSING: b"]


def test_held_out_summary_counts_tracks_and_coverage(cells_pred) -> None:
    cells = cells_pred[0]
    split = pd.DataFrame({"cell_id": cells["cell_id"], "split": ["heldout"] * 40 + ["train"] * 20})
    text = vp.held_out_summary(cells, split)
    assert "split: heldout 40, train 20" in text
    assert "held-out full-cycle tracks: 2, 40 cells" in text
    assert "their cycle length: 25.0" in text
    assert "fraction of held-out cells that are full_cycle: 1.0" in text
    assert "of their cycle (the per-track statistics use these): 1;" in text  # track 2 was seen in half its cycle


def test_targets_text_lists_every_target_and_counts_passes() -> None:
    long = "supervised_features circ_mae_h >= 1.25 x deepcycle_clock"
    targets = pd.DataFrame({"status": ["PASS", "MISS"], "target": ["a >= 1", long], "value": [1.5, 3.0], "gap": [0.5, -1.0]})
    lines = vp.targets_text(targets).splitlines()
    assert lines[0] == "PASS     a >= 1  value 1.500, gap +0.500"
    assert lines[1] == f"MISS     {long}" and lines[2].strip() == "value 3.000, gap -1.000"  # too long for one line
    assert lines[-1] == "1 of 2 targets met"
    assert max(map(len, lines)) <= vp.LINE_WIDTH


def test_interval_text_says_coverage_width_and_rank(table) -> None:
    lines = vp.interval_text(table).splitlines()
    assert lines[0] == "80 % intervals cover 79 % of held-out cells"
    assert "median width 7.3 h" in lines[1]
    assert "Spearman +0.3 (wider for worse cells)" in lines[2]
    assert max(map(len, lines)) <= vp.LINE_WIDTH
    assert vp.interval_text(table, method="deepcycle") == "no per-cell intervals for deepcycle in this run"


def test_mae_bars_draws_one_bar_per_non_hard_method(table) -> None:
    fig = vp.mae_bars(table)
    ax = fig.axes[0]
    assert len(ax.patches) == len(METHODS) - 1
    assert [t.get_text() for t in ax.get_yticklabels()] == METHODS[:-1]
    texts = [t.get_text() for t in ax.texts]
    assert "no ring" in texts
    assert "1.50 (ours +0.50 h)" in texts and "1.00 (ours +1.00 h)" in texts  # our gap to each ceiling
    assert "1.8 h target" in ax.get_xlabel()


def test_ceiling_gap_names_each_ceiling(table) -> None:
    assert vp.ceiling_gap(table).splitlines() == [
        "ours 2.00 h; ceiling_crops 1.50 h: +0.50 h left",
        "ours 2.00 h; ceiling_hidden 1.00 h: +1.00 h left",
        "target 1.8 h: +0.30 h above ceiling_crops",
    ]
    assert vp.ceiling_gap(table[~table["method"].str.startswith("ceiling")]) == ""


def test_example_tracks_one_panel_per_picked_track(cells_pred) -> None:
    cells, pred, tracks = cells_pred
    pick = vp.pick_example_tracks(tracks, 2)
    assert list(pick["track_id"]) == [1, 3]  # the worst and the best
    fig = vp.example_tracks(pick, pred, cells)
    assert len(fig.axes) == 2
    assert fig.axes[0].get_title() == "track 1\nρ = 0.900"
    assert vp.pick_example_tracks(tracks, 2, method="nothing").empty


def test_track_spearman_boxes_and_quantiles_follow_the_table_order(table, cells_pred) -> None:
    tracks = cells_pred[2]
    fig = vp.track_spearman_boxes(tracks, table)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == [OURS, "deepcycle"]
    q = vp.track_spearman_quantiles(tracks, table)
    assert list(q.columns) == ["q10", "median", "q90", "share >= 0.95"]
    assert q.loc[OURS, "median"] == pytest.approx(0.97)
    assert q.loc["deepcycle", "share >= 0.95"] == pytest.approx(1 / 3)


def test_era_hours_hexbin_and_error_by_age(cells_pred) -> None:
    cells, pred, _ = cells_pred
    era = vp.era_hours(pred, cells)
    assert len(era) == len(cells)
    fig = vp.era_hexbin(era)
    assert len(fig.axes) == 2 and fig.axes[0].get_ylabel() == "hours = position x T (clock head)"  # the plot and its colour bar
    err = vp.era_error_by_age(era)
    assert list(err.columns) == ["cells", "bias_h", "mae_h"] and err["cells"].sum() == len(cells)
    assert (err["mae_h"] < 1.5).all()
    assert vp.era_hours(pred.assign(hours=np.nan), cells).empty


def test_paper_curves_and_statistic_table(table) -> None:
    rel = np.linspace(0, 1, 5)
    curves = pd.concat([pd.DataFrame({"method": m, "relative_time": rel, "mean_raw": rel, "sd_raw": 0.1, "mean_unwrapped": rel,
                                      "sd_unwrapped": 0.1, "n_tracks": 3}) for m in (OURS, "deepcycle")])
    fig = vp.paper_curves(curves, table)
    assert len(fig.axes) == 2
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == [f"{OURS}: ρ = 0.990", "deepcycle: ρ = 0.800"]
    text = vp.paper_statistic_table(table, curves)
    assert text.startswith("tracks averaged: 3 (the table's n_tracks)") and "paper_kendall_unwrapped" in text


def test_phase_tables(cells_pred) -> None:
    cells, pred, _ = cells_pred
    ph = pd.DataFrame({"method": [OURS] * 2 + ["deepcycle"] * 2, "phase": ["S", "G1"] * 2, "n_cells": [5, 6, 5, 6],
                       "mae_h": [1.0, 2.0, 3.0, 4.0], "bias_h": [0.1, -0.2, 0.3, 0.4]})
    assert list(vp.phase_errors(ph).columns) == ["phase", "n_cells", "mae_h", "bias_h"]
    wide = vp.phase_mae_table(ph, [OURS, "deepcycle"])
    assert list(wide.columns) == ["G1", "S"] and wide.loc["deepcycle", "G1"] == 4.0
    conf = pd.DataFrame({"method": OURS, "true_phase": ["G1", "S"], "G1": [0.9, 0.3], "S": [0.1, 0.7]})
    cm = vp.confusion_table(conf)
    assert cm.index.name == "true_phase" and cm.loc["S", "G1"] == 0.3
    prof = vp.position_profile(pred, cells)
    assert len(prof) == 10 and prof["cells"].sum() == len(cells)
    assert np.all(np.diff(prof["mean_pseudotime"].to_numpy()[1:]) > 0)  # a good clock climbs


def test_summary_text_names_ours_the_ceiling_and_missed_targets(table) -> None:
    ph = pd.DataFrame({"method": OURS, "phase": ["G1", "S"], "n_cells": [5, 5], "mae_h": [1.0, 2.0], "bias_h": [0.1, -0.5]})
    conf = pd.DataFrame({"method": OURS, "true_phase": ["G1", "S"], "G1": [0.9, 0.4], "S": [0.1, 0.6]})
    targets = pd.DataFrame({"status": ["PASS", "MISS", "NO RING"], "target": ["a", "b", "c"], "value": [1.0, 2.0, np.nan],
                            "gap": [0.1, -0.25, np.nan]})
    text = vp.summary_text(table, targets, ph, conf)
    assert max(map(len, text.splitlines())) <= vp.LINE_WIDTH
    flat = " ".join(text.split())
    assert flat.startswith(f"ours ({OURS}): median per-track Spearman 0.960")
    assert "worst tenth of the cycle 2.90 h), hours MAE 2.50 h" in flat
    assert "its 80 % intervals cover 79 % of held-out cells, median width 7.3 h" in flat
    assert "ceiling_crops (uses truth): circular MAE 1.50 h, hours MAE 1.60 h; ours is +0.50 h from it" in flat
    assert "ceiling_hidden (uses truth): circular MAE 1.00 h" in flat
    assert "largest error in phase S: 2.00 h (bias -0.50 h); most frequent confusion: 40% of true S cells are read as G1." in flat
    assert "methods with a smaller circular MAE than ours: none" in flat
    assert "targets not met: b (MISS, by 0.250); c (NO RING)" in flat
    assert "deepcycle_clock_hard: circular MAE 4.50 h" in flat and flat.endswith("clock")  # the hard rows last
    sup = table.copy()
    sup.loc[len(sup)] = {"method": "supervised_features", "circ_mae_h": 3.0}
    assert "supervised baseline (radial profiles + regressor, the head's labels): circular MAE 3.00 h, 1.50 x ours" in \
        " ".join(vp.summary_text(sup, targets, ph, conf).split())


# ------------------------------------------------------------------------------------------------
# the released peer (CellCycleNet), G1 vs S/G2
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def peer_result() -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    from deepcycle_core.validation.peer import ROWS

    rng = np.random.default_rng(5)
    n = 300
    age = rng.uniform(0, 0.95, n)
    phase = np.where(age < 0.37, "G1", np.where(age < 0.7, "S", "G2"))
    per = pd.DataFrame({"cell_id": np.arange(n), "true_age": age, "true_phase": phase, "truth": (phase != "G1").astype(int)})
    for k, row in enumerate(ROWS):
        per[row] = np.clip(age + rng.normal(0, 0.1 * (k + 1), n), 0, 1)
    table = pd.DataFrame({"row": list(ROWS), "auroc": [0.3, 0.93, 0.97, 0.96, 0.9, 0.88],
                          "accuracy": [0.4, 0.8, 0.9, 0.9, 0.85, 0.8], "called_sg2": [0.95, 0.4, 0.6, 0.6, 0.5, 0.5],
                          "cells": n, "cut": [0.5, 0.5, 0.4, 0.4, 0.45, 0.5]})
    fucci = {"cells": n, "labelled": 0.55, "error_labelled": 0.0, "error_red_split": 0.12}
    return table, per, fucci


def test_peer_lines_print_one_line_a_row_fucci_and_the_target(peer_result):
    table, _, fucci = peer_result
    text = vp.peer_lines(table, fucci)
    assert "CellCycleNet zero-shot: G1 vs S/G2 AUROC 0.300" in text
    assert "our clock: G1 vs S/G2 AUROC 0.970" in text
    assert "labels 55.0% of these cells" in text and "error 0.120" in text
    assert "CellCycleNet fine-tuned: G1 vs S/G2 AUROC 0.93\n" in text  # fine-tuned on a CPU: 2 decimals
    assert "target: our clock >= best CellCycleNet row + 0.05: MISSED (our clock 0.97, CellCycleNet fine-tuned 0.93, gap -0.01)" in text
    better = table.assign(auroc=[0.3, 0.9, 0.97, 0.96, 0.9, 0.88])
    assert "MET" in vp.peer_lines(better, fucci).splitlines()[-1]


def test_peer_table_and_figure(peer_result):
    table, per, _ = peer_result
    t = vp.peer_table(table)
    assert list(t.columns) == ["AUROC", "accuracy", "called S/G2", "reads"] and t.loc["our clock", "AUROC"] == "0.970"
    assert t.loc["CellCycleNet fine-tuned", "AUROC"] == "0.93"
    assert "GroupNorm" in t.loc["CellCycleNet zero-shot", "reads"]
    fig = vp.peer_figure(per, table)
    assert len([ax for ax in fig.axes if ax.has_data()]) == len(table)
    assert fig.axes[0].get_title().startswith("CellCycleNet zero-shot")


def test_peer_summary_names_masks_canvas_and_fine_tuning():
    summary = {"judged_cells": 100, "masked": 98, "cropped_to_canvas": 3,
               "factors_heldout": {"tiles": 40, "norm": 580.0, "scale": [0.43, 0.43], "canvas": [48.6, 51.0]},
               "finetune_cells": {"train": 1190, "val": 298},
               "finetune": {"settings": {"n_epochs": 10, "batch_size": 4, "initial_LR": 1e-5}, "threads": 1, "seconds": 120.4},
               "seconds": 150.0}
    text = vp.peer_summary(summary)
    assert "masked by our detection: 98" in text and "centre-cropped): 3" in text
    assert "canvas 48 x 51 px" in text and "1190 training cells" in text and "10 epochs" in text


def test_misses_explained_reads_the_reference_rows():
    from deepcycle_core.plots.validation import misses_explained

    table = pd.DataFrame({
        "method": ["deepcycle_clock", "oracle_labels", "ceiling_crops_phase", "ceiling_hidden"],
        "circ_mae_h": [1.95, 1.96, 1.80, 1.49], "hours_mae_h": [2.31, 2.37, 2.21, 2.05],
        "fisher_lee": [0.69, 0.80, 0.74, 0.82]})
    targets = pd.DataFrame({"target": ["circ_mae_h <= 1.8", "hours_mae_h <= 2", "fisher_lee >= 0.7",
                                       "supervised_features circ_mae_h >= 1.25 x deepcycle_clock"],
                            "status": ["MISS", "MISS", "MISS", "MISS"]})
    text = misses_explained(table, targets).replace("\n  ", " ")
    lines = text.splitlines()
    assert lines[0].startswith("circ_mae_h: ours 1.95; the same network on TRUE ages 1.96: the labels are not what")
    assert lines[0].endswith("reached by ceiling_crops_phase")
    assert "no reference row reaches the target, not even the exact hidden variables" in lines[1]
    assert "perfect labels would help" in lines[2]  # the oracle's 0.80 is clearly better than ours
    assert lines[-1].startswith("hours from one crop are its position x T")
    assert len(lines) == 4  # the ratio target is not an accuracy target of ours
    assert misses_explained(table, targets.assign(status="PASS")) == ""


def test_track_quantiles_of_a_ring_that_is_no_clock_are_not_shown():
    from deepcycle_core.plots.validation import track_spearman_quantiles

    tracks = pd.DataFrame({"method": ["a"] * 5 + ["b"] * 5, "spearman": [0.9, 0.95, 0.97, 0.99, 0.98] * 2})
    table = pd.DataFrame({"method": ["a", "b"], "ring": ["clock", "undirected"]})
    q = track_spearman_quantiles(tracks, table)
    assert q.loc["a", "median"] == pytest.approx(0.97) and q.loc["b"].isna().all()
