"""The trajectory chapter's figures and printed summaries, on a small synthetic ring."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from deepcycle_core.plots import ring as ring_plots
from deepcycle_core.plots import views

N = 2_000


@pytest.fixture(scope="module")
def df() -> pd.DataFrame:
    """Cells around a unit ring whose pseudotime is their true age, with FUCCI turning once around it."""
    rng = np.random.default_rng(1)
    p = rng.random(N)
    a = 2 * np.pi * p
    cls = np.where(p < 0.3, 1, np.where(p < 0.4, 3, np.where(p < 0.8, 2, 0)))
    ang = np.linspace(0, 2 * np.pi, N)
    return pd.DataFrame({
        "cell_id": np.arange(N), "x2d": np.cos(a), "y2d": np.sin(a), "angle": a, "pseudotime": p,
        "hours": 20 * p, "som_node": (p * 30).astype(int),
        "fucci_red": (p < 0.4) * 100.0 + rng.random(N), "fucci_green": (p > 0.3) * 100.0 + rng.random(N),
        "class": cls, "true_age": p, "true_cycle_h": 20.0,
        "cycle_cos": np.cos(ang), "cycle_sin": np.sin(ang), "clock": ang / (2 * np.pi) % 1.0,
        "confidence": np.linspace(0.5, 1.0, N)})


def _ring(T_hours: float | None = 20.0, verdict: str = "clock", orientation: str = "movie") -> SimpleNamespace:
    t = np.linspace(0, 2 * np.pi, 60, endpoint=False)
    quality = {"verdict": verdict, "n_tracks": 50, "median_spearman": 0.9, "backward_share": 0.05,
               "forward_rate_turns_per_h": 0.04,
               "arcs": {"arc_start": list(np.arange(12) / 12), "mean_rate": [0.05] * 11 + [-0.01]}}
    info = {"n_fit_cells": 1500, "split": "fitted without 500 held-out cell(s)", "explained_variance_2d": [0.6, 0.3],
            "n_harmonics": 6, "curve_fit": {"iterations": 7}, "orientation": orientation, "direction_rule": "tracks",
            "origin_rule": "births", "forward_tracks": 0.95, "n_tracks": 50, "direction_z": 6.3, "n_births": 20,
            "birth_spread": 0.5, "direction_score": 0.8, "division_score": 0.7, "quality": quality}
    return SimpleNamespace(info=info, T_hours=T_hours, T_source="growth curve", verdict=verdict,
                           hours=lambda q: (T_hours or 1.0) * np.asarray(q),
                           som_nodes=np.c_[np.cos(t[::2]), np.sin(t[::2])],
                           curve=np.c_[np.cos(t), np.sin(t)])


def _ring_json(ring: SimpleNamespace) -> dict:
    return {"curve": ring.curve.tolist(), "origin": {"xy": [1.0, 0.0]}}


def test_ring_summary():
    ring = _ring()
    lines = ring_plots.ring_summary(np.zeros(N), ring).splitlines()
    assert lines[0] == "cells placed on the ring: 2,000; fitted on 1,500 (fitted without 500 held-out cell(s))"
    assert lines[1] == "2-D PCA keeps 90.0% of the descriptor variance"
    assert lines[4].startswith("  95% of 50 fitting tracks advance that way (sign test z = 6.3)")
    assert lines[-2:] == ["verdict along the fitting tracks: clock", "doubling time T = 20 h; source: growth curve"]
    snap = ring_plots.ring_summary(np.zeros(3), _ring(None, orientation="fucci"))
    assert "  FUCCI scores: direction 0.80, division 0.70" in snap and "T = not available" in snap


def test_ring_table():
    traj = pd.DataFrame({"cell_id": [2, 0, 1], "pseudotime": [0.1, 0.2, 0.3]})
    cells = pd.DataFrame({"cell_id": [0, 1, 2], "fucci_red": 1.0, "fucci_green": 2.0, "class": [0, 1, 2],
                          "track_id": 5, "frame": [0, 1, 2], "full_cycle": False, "true_age": [0.5, 0.6, 0.7],
                          "unused": 9})
    out = ring_plots.ring_table(traj, cells)
    assert "unused" not in out.columns and "true_age" in out.columns and "true_phase" not in out.columns
    assert list(out["class"]) == [2, 0, 1]


def test_ring_figure_and_class_order(df):
    ring = _ring()
    pts = views.prepare_points(df)
    fig = ring_plots.ring_figure(pts, _ring_json(ring), origin=[1.0, 0.0])
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[:3] == ["coloured by fucci ratio", "coloured by class", "coloured by density"]
    assert not fig.axes[3].axison  # the fourth panel is blank
    assert fig._suptitle.get_text() == "2,000 cells on the fitted ring (Datashader)"
    plt.close(fig)
    lines = ring_plots.class_order_summary(df).splitlines()
    assert [line.split(":")[0].strip() for line in lines[1:]] == ["red-high", "both-high", "green-high", "low/low"]


def test_fucci_peaks(df):
    prof = views.fucci_profile(df, "pseudotime", bins=40, period=1.0)
    text = ring_plots.fucci_peaks_summary(prof)
    red = float(text.split("pseudotime ")[1].split(",")[0])
    assert red < 0.4 and text.startswith("red (Cdt1) median peaks at pseudotime")


def test_arc_rates_and_verdict():
    ring = _ring()
    quality = ring.info["quality"]
    fig = ring_plots.arc_rates_figure(quality, ring.T_hours)
    ax = fig.axes[0]
    assert len(ax.patches) == 12 and len(ax.lines) == 2  # bars, dashed doubling time and zero line
    assert ax.patches[-1].get_facecolor()[:3] == matplotlib.colors.to_rgb("C3")
    plt.close(fig)
    assert ring_plots.ring_verdict_summary(quality, 20.0) == ("verdict: clock; stretches running clearly backwards: 5%; "
                                                         "median rate 0.040 turns/h (one turn per doubling time: 0.050)")
    assert ring_plots.ring_verdict_summary({}).startswith("no judgement: the store has no tracks")


def test_hours(df):
    assert ring_plots.no_hours_reason(_ring(None)).startswith("no doubling time")
    assert ring_plots.no_hours_reason(_ring(verdict="folded")).startswith("no hours: the movie's tracks show this ring is folded")
    ring = _ring()
    assert ring_plots.no_hours_reason(ring) is None
    fig = ring_plots.era_figure(ring, df)
    assert len(fig.axes) == 2 and fig.axes[0].get_title() == "ERA time axis (T = 20 h)"
    assert fig.axes[1].get_xlabel() == "hours since division (ERA)"
    plt.close(fig)
    assert ring_plots.era_summary(ring, df).startswith("median ERA hours: 9.97 h; green peaks at")


def test_gallery(df):
    store = SimpleNamespace(channels=["hoechst", "brightfield"],
                            take=lambda ids: np.random.default_rng(0).random((len(ids), 2, 8, 8)))
    fig = ring_plots.ring_gallery_figure(store, df, n=6, seed=0)
    assert len(fig.axes) == 12
    assert fig.axes[0].get_title().endswith(" h")
    plt.close(fig)


def test_truth_and_som(df):
    ring = _ring()
    fig = ring_plots.truth_figure(df, _ring_json(ring), origin=[1.0, 0.0])
    assert fig.axes[0].get_title() == "coloured by the TRUE age fraction"
    plt.close(fig)
    text = ring_plots.truth_summary(df)
    assert text.splitlines() == ["Fisher-Lee correlation pseudotime vs true age (all cells): 1.00",
                                 "circular mean absolute error: 0.000 of a cycle"]
    fig = ring_plots.som_figure(df, ring.som_nodes)
    assert fig.axes[0].get_title() == "coloured by ring-SOM node (0..29)"
    plt.close(fig)
    assert ring_plots.som_summary(df, 30).startswith("SOM nodes: 30; Fisher-Lee SOM vs curve pseudotime: 1.00")


def test_cycle_head(df):
    fig = ring_plots.cycle_head_figure(df)
    titles = [ax.get_title() for ax in fig.axes]
    assert "cycle head: coloured by FUCCI" in titles
    assert fig.axes[0].get_xlabel() == "cos output"
    plt.close(fig)
    judged = SimpleNamespace(verdict="clock", tracks=[1, 2, 3], median_spearman=0.95, backward_share=0.02)
    lines = ring_plots.clock_verdict_summary(judged, df).splitlines()
    assert lines[0] == ("verdict along the fitting tracks: clock (3 tracks, median Spearman 0.95, "
                        "stretches running clearly backwards 2%)")
    assert lines[1] == "confidence (length of the output vector): median 0.75, 10th percentile 0.55"
    split = pd.DataFrame({"split": np.where(np.arange(N) < 500, "heldout", "train")})
    text = ring_plots.held_out_clock_summary(df.assign(clock=df["true_age"]), split)
    assert text == ("held-out cells: 500; Fisher-Lee clock vs true age 1.00;\ncircular error 0.000 of a cycle "
                    "= 0.00 h at their mean cycle length")


def test_intervals(df):
    """Intervals drawn along the clock and summarised; the held-out coverage line counts the arcs that
    hold the true age (wrapping past 1)."""
    n = len(df)
    width = np.where(df["confidence"] > 0.75, 0.1, 0.3)  # turns; clearer crops get narrower intervals
    d = df.assign(clock=df["true_age"], interval_lo=np.mod(df["true_age"] - width / 2, 1.0),
                  interval_hi=np.mod(df["true_age"] + width / 2, 1.0), interval_h=width * 20.0)
    d.loc[d.index[:100], "interval_lo"] = np.mod(d["true_age"][:100] + 0.01, 1.0)  # 100 arcs miss the truth
    d.loc[d.index[:100], "interval_hi"] = np.mod(d["true_age"][:100] + 0.05, 1.0)
    d.attrs["intervals"] = "80% intervals calibrated on 123 validation cells"
    fig = ring_plots.interval_figure(d)
    assert "cycle head: interval length" in [ax.get_title() for ax in fig.axes]
    plt.close(fig)
    text = ring_plots.interval_summary(d).splitlines()
    assert text[0] == "80% intervals calibrated on 123 validation cells"
    assert text[1].startswith(f"interval length: median {np.median(width * 20.0):.1f} h")
    split = pd.DataFrame({"split": np.where(np.arange(n) < 500, "heldout", "train")})
    held = ring_plots.held_out_clock_summary(d, split)
    assert held.splitlines()[-1] == f"80 % intervals cover {100 * (1 - 100 / 500):.0f} % of held-out cells"
    assert ring_plots.interval_summary(d.assign(interval_h=np.nan)) == d.attrs["intervals"]
