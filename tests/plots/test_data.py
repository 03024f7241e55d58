"""The data chapter's figures and tables, on a small synthetic movie: right panels, labels and numbers."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from deepcycle_core.data import fucci
from deepcycle_core.plots import data as data_plots

INTERVAL_MIN = 10.0


@pytest.fixture(scope="module")
def cells() -> pd.DataFrame:
    """30 tracks of 60 frames; the first 10 are full-cycle tracks dividing at frame 59."""
    rng = np.random.default_rng(0)
    rows = []
    for t in range(30):
        cycle_h = 20.0 + t % 5
        for f in range(60):
            age = (f / 60 + t / 30) % 1.0
            phase = "G1" if age < 0.4 else "S" if age < 0.7 else "G2" if age < 0.95 else "M"
            rows.append({"track_id": t, "frame": f, "full_cycle": t < 10, "division_frame": 59 if t < 10 else -1,
                         "true_cycle_h": cycle_h, "true_age": age, "true_phase": phase,
                         "fucci_red": 100 * (age < 0.4) + rng.random(), "fucci_green": 100 * (age >= 0.35) + rng.random()})
    df = pd.DataFrame(rows)
    df["cell_id"] = np.arange(len(df))
    df["class"] = np.select([df.fucci_red > 50, df.fucci_green > 50], [1, 2], 0)
    df.loc[(df.fucci_red > 50) & (df.fucci_green > 50), "class"] = 3
    return df


def test_store_summary_names_crops_frames_tracks_and_phases(cells):
    store = SimpleNamespace(cells=cells, n_cells=len(cells), channels=["hoechst", "brightfield"],
                            crops=np.zeros((len(cells), 2, 48, 48), np.uint16),
                            meta={"provenance": {"parameters": {"fields": 1}}, "frame_interval_min": INTERVAL_MIN,
                                  "pixel_size_um": 0.65})
    lines = data_plots.store_summary(store).splitlines()
    assert lines[0] == "crops: 1,800 of ['hoechst', 'brightfield'] (48x48 px, uint16)"
    assert lines[1] == "fields: 1, frames: 60 every 10 min (10.0 h), pixel 0.65 um"
    assert lines[2].endswith("full-cycle tracks (born and divided in the movie): 10") and "tracks: 30;" in lines[2]
    assert lines[3] == "true cycle length of the full-cycle tracks: 22.0 +/- 1.5 h"
    assert lines[4].startswith("share of crops per true phase: {'G1': ")


def test_crops_along_the_cycle_cover_every_bin_and_draw_five_rows(cells):
    pick = data_plots.pick_crops_along_cycle(cells, seed=0, bins=4, per_bin=2)
    assert len(pick) == 8
    bins = (cells["true_age"].to_numpy()[pick] * 4).astype(int)
    assert list(bins) == [0, 0, 1, 1, 2, 2, 3, 3]
    assert np.array_equal(pick, data_plots.pick_crops_along_cycle(cells, seed=0, bins=4, per_bin=2))
    crops = np.random.default_rng(1).integers(0, 1000, (8, 2, 48, 48)).astype(np.uint16)
    fig = data_plots.crops_along_cycle_figure(cells, crops, pick)
    assert len(fig.axes) == 5 * 4
    assert [fig.axes[r * 4].get_ylabel() for r in range(5)] == ["FUCCI", "Hoechst", "brightfield", "Hoechst", "brightfield"]
    assert fig.axes[0].get_title().endswith("\nG1")
    plt.close(fig)


def test_fucci_around_division_figure_and_table(cells):
    fig = data_plots.fucci_division_figure(cells, INTERVAL_MIN, n_tracks=5)
    assert len(fig.axes) == 2
    assert [ax.get_ylabel() for ax in fig.axes] == ["fucci_red (background-subtracted)", "fucci_green (background-subtracted)"]
    assert len(fig.axes[0].lines) == 5 + 1  # the thin tracks and the median
    plt.close(fig)
    table = data_plots.fucci_division_table(cells, INTERVAL_MIN)
    assert list(table.index) == ["fucci_red", "fucci_green"]
    assert table.columns.name == "hours to division (3 h bins)"
    assert list(table.columns) == [-12.0, -9.0, -6.0, -3.0, 0.0]


def test_class_plane_and_tables(cells):
    fig = data_plots.fucci_class_plane(cells, width=60, height=60)
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("log10(red + 10)", "log10(green + 10)")
    assert ax.get_title() == "1,800 cells: FUCCI classes (Datashader)"
    plt.close(fig)
    balance = data_plots.class_balance_table(cells)
    assert list(balance.columns) == ["class", "cells", "share"]
    assert balance["cells"].sum() == len(cells) and balance["share"].sum() == pytest.approx(1, abs=0.002)
    assert list(balance["class"]) == [fucci.CLASS_NAMES[i] for i in sorted(cells["class"].unique())]
    phases = data_plots.class_phase_table(cells)
    assert list(phases.columns) == list(fucci.PHASES)
    assert phases.loc["red-high", "G1"] == 1.0
    assert np.allclose(phases.sum(axis=1), 1, atol=0.02)


def test_growth_figure_and_summary(cells):
    hours = np.arange(60) * INTERVAL_MIN / 60
    counts = pd.Series(np.round(50 * 2 ** (hours / 20)).astype(int))
    fig = data_plots.growth_figure(hours, counts.to_numpy(), 1 / 20, np.log2(50), 20.0)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and len(ax.lines) == 2
    assert ax.get_legend().get_texts()[1].get_text() == "fit: doubling 20.0 h"
    plt.close(fig)
    line = data_plots.growth_summary(counts, hours, 20.0, cells)
    assert line == (f"cells per frame: 50 at 0 h -> {counts.iloc[-1]} at 9.8 h; fitted doubling time 20.0 h; "
                    "mean true cycle length 22.0 h")


def test_feature_baseline_summary_and_figure(cells):
    table = pd.DataFrame({"spearman": [0.6, 0.5, 0.0], "mae_h": [4.0, 3.5, 6.7],
                          "spearman_g1": [0.1, 0.6, 0.0], "auc_m_vs_g2": [0.8, 0.99, 0.5]},
                         index=pd.Index(["nuclear_integrated", "nuclear_area", "no information"], name="feature"))
    text = data_plots.feature_baseline_summary(table, cells)
    assert text.splitlines()[0].split() == ["spearman", "mae_h", "spearman_g1", "auc_m_vs_g2"]
    assert text.endswith("best single feature: nuclear_area, circular MAE 3.50 h (no information: 6.70 h; cycle ~22 h)")
    feats = pd.DataFrame({"cell_id": cells["cell_id"], "nuclear_integrated": 1000 * (1 + cells["true_age"]),
                          "nuclear_area": 200 + 100 * cells["true_age"]})
    fig = data_plots.feature_age_figure(feats, cells)
    assert [ax.get_ylabel() for ax in fig.axes] == ["integrated Hoechst (counts)", "nuclear area (px)"]
    assert all(len(ax.collections) == 1 and len(ax.lines) == 1 for ax in fig.axes)  # hexbin + median
    plt.close(fig)
