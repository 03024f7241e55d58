"""The conditions chapter's figures and tables, on small synthetic populations and comparisons."""

from __future__ import annotations

from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import holoviews as hv
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from deepcycle_core.conditions.analysis import Comparison
from deepcycle_core.conditions.circular_tests import FieldTest
from deepcycle_core.conditions.dna_content import fit_dna_histogram
from deepcycle_core.plots import conditions as cp

hv.extension("bokeh")

PHASES = ("G1", "S", "G2/M")


def _population(n: int = 300, seed: int = 0, g1: float = 0.5) -> pd.DataFrame:
    """A synthetic read population: fields, truth (phase, arrest, nuclear area, age) and the clock."""
    rng = np.random.default_rng(seed)
    phase = rng.choice(["G1", "S", "G2", "M"], n, p=[g1, (1 - g1) / 2, (1 - g1) / 3, (1 - g1) / 6])
    age = rng.uniform(0, 1, n)
    return pd.DataFrame({
        "field": rng.integers(0, 4, n), "true_phase": phase, "true_arrested": (phase == "G1") & (rng.random(n) < 0.3),
        "true_nuc_area": rng.integers(150, 300, n), "clock": age, "cycle_cos": np.cos(2 * np.pi * age),
        "cycle_sin": np.sin(2 * np.pi * age), "true_age_h": 24 * age, "true_cycle_h": np.full(n, 24.0),
    })


class _Readout:
    """A read-out stand-in: fixed probabilities per cell (S rises with the nuclear area)."""

    def probabilities(self, table: pd.DataFrame) -> np.ndarray:
        s = (table["true_nuc_area"].to_numpy() - 150) / 300
        return np.column_stack([1 - s - 0.1, s, np.full(len(s), 0.1)])

    def shares(self, table: pd.DataFrame) -> np.ndarray:
        return self.probabilities(table).mean(axis=0)


def _comparison(shares, true, control_true, p=0.029, arcs=True) -> Comparison:
    shares, true, control_true = map(np.asarray, (shares, true, control_true))
    delta = shares - control_true
    return Comparison(shares=shares, control_shares=control_true, delta=delta, delta_low=delta - 0.02,
                      delta_high=delta + 0.02, test=FieldTest(1.2, p, 70, True), naive_p=3e-5, true=true,
                      control_true=control_true, arc_shares=shares + 0.01 if arcs else None)


@pytest.fixture()
def results() -> dict:
    ctl = [0.5, 0.3, 0.2]
    return {
        ("g1_arrest", "network (both)"): _comparison([0.45, 0.40, 0.15], [0.8, 0.1, 0.1], ctl),
        ("control (2nd seed)", "network (both)"): _comparison([0.5, 0.31, 0.19], [0.49, 0.31, 0.2], ctl, p=0.7),
        ("g1_arrest", "DNA content"): _comparison([0.79, 0.11, 0.10], [0.8, 0.1, 0.1], ctl, arcs=False),
        ("control (2nd seed)", "DNA content"): _comparison([0.5, 0.3, 0.2], [0.49, 0.31, 0.2], ctl, arcs=False),
    }


def test_arcs_summary_states_cuts_and_diagonal():
    arcs = {"both": SimpleNamespace(cuts=(0.4, 0.7), misreading=np.diag([0.8, 0.6, 0.7]))}
    text = cp.arcs_summary(arcs)
    assert text == ("both: clock arcs G1 [0, 0.40), S [0.40, 0.70), G2/M [0.70, 1); "
                    "cells read in the arc of their call: G1 0.80, S 0.60, G2/M 0.70")


def test_population_table_has_truth_per_population():
    pops = {"control": {"both": _population(seed=1)}, "g1_arrest": {"both": _population(seed=2, g1=0.8)},
            "control (2nd seed)": {"both": _population(seed=3)}}
    t = cp.population_table(pops, "both")
    assert list(t.index) == list(pops)
    assert list(t.columns) == ["acts on", "cells read", "fields", "arrested (true)", "true G1", "true S", "true G2/M"]
    assert t.loc["g1_arrest", "acts on"] == "G1" and t.loc["control (2nd seed)", "acts on"] == "-"
    assert np.allclose(t[["true G1", "true S", "true G2/M"]].sum(axis=1), 1.0)
    assert t.loc["g1_arrest", "true G1"] > t.loc["control", "true G1"]


def test_ring_tabs_one_tab_per_population():
    layout = cp.ring_tabs({"control": _population(seed=1), "g1_arrest": _population(seed=2)}, width=200, height=200)
    assert len(layout) == 2 and layout.opts.get().kwargs["tabs"]
    assert [el.opts.get().kwargs["title"] for el in layout] == ["control: 300 cells", "g1_arrest: 300 cells"]


def test_clock_density_figure_one_panel_per_treatment():
    ctl = _population(seed=1)["clock"]
    treated = {"g1_arrest": _population(seed=2)["clock"], "s_slowdown": _population(seed=3)["clock"]}
    fig = cp.clock_density_figure(ctl, treated, (0.4, 0.7))
    axes = fig.axes
    assert [a.get_title() for a in axes] == ["g1_arrest", "s_slowdown"]
    assert len(axes[1].lines) == 2  # the two arc cuts
    assert axes[0].get_ylabel() == "density" and axes[0].get_legend() is not None
    assert fig.get_dpi() == 90 and tuple(fig.get_size_inches()) == (8.0, 3.2)
    plt.close(fig)


def test_dna_histograms_figure_draws_fitted_components():
    rng = np.random.default_rng(0)
    log2 = np.concatenate([rng.normal(0, 0.15, 600), rng.normal(1, 0.15, 250), rng.uniform(0, 1, 300)])
    fit = fit_dna_histogram(log2)
    fig = cp.dna_histograms_figure({"control": (fit, log2), "again": (fit, log2)})
    assert len(fig.axes) == 2
    assert len(fig.axes[0].lines) == 4  # G1, S, G2/M and their sum
    assert fig.axes[0].get_title().startswith("control (CV ")
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == [*PHASES, "fit"]
    plt.close(fig)


def test_shares_table_rows_per_phase(results):
    t = cp.shares_table(results)
    assert t.index.names == ["condition", "read-out", "phase"] and len(t) == 3 * len(results)
    assert list(t.columns) == ["inferred", "clock arcs", "true", "error (pp)", "change (pp) [95 % CI]", "true change (pp)"]
    row = t.loc[("g1_arrest", "both", "G1")]  # a network's read-out named by its mode
    assert row["error (pp)"] == -35 and row["change (pp) [95 % CI]"] == "-5 [-7, -3]"
    assert row["true change (pp)"] == 30
    # only the digits that hold on every CPU: shares to 0.01, points whole
    shares = t[["inferred", "clock arcs", "true"]].to_numpy(dtype=float)
    assert np.array_equal(shares, shares.round(cp.SHARE_DECIMALS), equal_nan=True) and cp.SHARE_DECIMALS == 2
    assert t["error (pp)"].dtype.kind == "i" and t["true change (pp)"].dtype.kind == "i"
    assert not t["change (pp) [95 % CI]"].str.contains("-0[],]").any()  # no negative zero on the page
    assert np.isnan(t.loc[("g1_arrest", "DNA content", "S"), "clock arcs"])


def test_verdict_table_and_summary(results):
    v = cp.verdict_table(results)
    assert v.loc[("g1_arrest", "both"), "phase named"] == "S"
    assert not v.loc[("g1_arrest", "both"), "named right"]
    assert v.loc[("g1_arrest", "DNA content"), "named right"] and v.loc[("g1_arrest", "DNA content"), "within 5 pp"]
    assert v.loc[("g1_arrest", "both"), "largest share error (pp)"] == 35.0
    assert v.loc[("g1_arrest", "DNA content"), "p (cells, naive)"] == "<0.001"  # a bound, not digits that differ between CPUs
    text = cp.verdict_summary(v, "control (2nd seed)", ["both"])
    assert text.splitlines() == [
        "control vs control (2nd seed): p (fields) both 0.700",
        "network (both): phase named right for 0 of 1;", "  every share within 5 pp for 0 of 1 (targets: all)",
        "DNA content: phase named right for 1 of 1;", "  every share within 5 pp for 1 of 1 (targets: all)",
    ]


def test_dose_table_and_figure():
    dose = {s: {"both": _population(seed=10 + i, g1=g), "bf_only": _population(seed=10 + i, g1=g)}
            for i, (s, g) in enumerate([(0.0, 0.5), (1.0, 0.8)])}
    t = cp.dose_table(dose, "G1", {"both": _Readout(), "bf_only": _Readout()}, _Readout())
    assert list(t.index) == [0.0, 1.0]
    assert list(t.columns) == ["true", "network (both)", "network (bf_only)", "DNA content"]
    assert t.loc[1.0, "true"] > t.loc[0.0, "true"]
    assert list(cp.dose_table(dose, "S", {"both": _Readout()}).columns) == ["true", "network (both)"]
    fig = cp.dose_figure(t, "g1_arrest", "G1")
    ax = fig.axes[0]
    assert len(ax.lines) == 4 and ax.get_xlabel() == "g1_arrest strength" and ax.get_ylabel() == "share of cells in G1"
    plt.close(fig)


def test_null_summary_in_words():
    null = {"pairs": 20, "fields": 4, "network": "both", "alpha": 0.05, "rejected_fields": 1, "rate_fields": 0.05,
            "rejected_naive": 3, "rate_naive": 0.15, "dna_bootstrap": 200,
            "dna_ci_excludes_0": {"G1": 5, "S": 4, "G2/M": 4}, "dna_ci_any_phase_excludes_0": 8,
            "dna_mean_largest_change_pp": 3.94, "dna_mean_largest_change_error_pp": 3.31,
            "command": "python benchmarks/conditions_null.py --profile default --pairs 20 --network both"}
    lines = cp.null_summary(null).splitlines()
    assert lines[0] == "20 control-vs-control pairs (4 fields each, network both), level 0.05:"
    assert lines[1] == "  the field-permutation test rejected 1 (rate 0.050)"
    assert lines[3] == "DNA-content shares, 95 % interval of the change:" and lines[4] == "  200 refitted draws"
    assert lines[5] == "  excludes 0: G1 5/20, S 4/20, G2/M 4/20; any phase 8/20"
    assert lines[6] == "  mean largest |change| 3.9 pp; its mean largest error"
    assert lines[8] == "command:" and lines[9].startswith("  python benchmarks/")
    assert max(map(len, lines)) <= 78  # a line longer than the page's code box is cut off
    # the jackknife's result names its interval, and the bootstrap's is shown beside it
    null |= {"dna_interval": "field jackknife, t on min(k)-1 df", "dna_bootstrap_ci_excludes_0": {"G1": 5, "S": 4, "G2/M": 6}}
    lines = cp.null_summary(null).splitlines()
    assert lines[4] == "  field jackknife, t on min(k)-1 df"
    assert lines[6:8] == ["  (a percentile bootstrap of 200 refitted draws instead:", "   G1 5/20, S 4/20, G2/M 6/20)"]
    assert max(map(len, lines)) <= 78


def _grid(complete: bool = True) -> dict:
    rows = []
    for micro, errs in (("neutral", (1.0, 4.0, 6.0)), ("sparse", (3.0, 12.0, 2.0))):
        for cond, e in zip(("g1_arrest", "s_slowdown", "g2m_block"), errs):
            rows.append({"microscope": micro, "condition": cond, "readout": "DNA content", "named_right": e < 10,
                         "largest_error_pp": e, "named": "G1" if e < 10 else "S", "true_phase": "G1"})
            rows.append({"microscope": micro, "condition": cond, "readout": "network (both)", "named_right": False,
                         "largest_error_pp": 2 * e, "named": "S", "true_phase": "G1"})
    micro = [{"microscope": m, "fitted_4n_2n_ratio": r, "cells_per_field_frame": {"control": c}, "overrides": o,
              "ratio_interval": [r - 0.1, r + 0.2]}
             for m, r, c, o in (("neutral", 1.984, 48.7, {}), ("sparse", 1.81, 16.2, {"dna_4n_ratio": 1.8}))]
    summary = {"DNA content": {"treated": 6, "named_right": 5, "within_5pp": 4, "within_10pp": 5},
               "network (both)": {"treated": 6, "named_right": 0, "within_5pp": 1, "within_10pp": 3}}
    return {"grid": [["neutral"], ["sparse"], ["x"]], "microscopes_read": 2 if not complete else 3,
            "complete": complete, "summary": summary, "microscopes": micro, "rows": rows}


def test_grid_tables_per_microscope_and_readout():
    t = cp.grid_table(_grid())
    assert list(t.index) == ["neutral", "sparse", "all"] and list(t.columns) == ["DNA content", "both"]
    assert t.loc["sparse", "DNA content"] == "2 / 2 / 2"  # errors 3, 12, 2: named 2, within 5 pp 2, 10 pp 2
    assert t.loc["neutral", "both"] == "0 / 1 / 2" and t.loc["all", "DNA content"] == "5 / 4 / 5"
    n = cp.grid_named(_grid())
    assert list(n.index) == ["truth", "neutral", "sparse"]
    assert n.loc["truth", "both"] == "G1 G1 G1" and n.loc["sparse", "DNA content"] == "G1 S G1"
    m = cp.grid_microscopes(_grid())
    assert list(m.index) == ["neutral", "sparse"]
    assert m.loc["sparse", "4N/2N fitted [95 %]"] == "1.81 [1.71, 2.01]" and m.loc["sparse", "nuclei a field-frame"] == 16
    assert m.loc["sparse", "4N/2N set"] == 1.8 and m.loc["neutral", "4N/2N set"] == 2.0


def test_grid_summary_states_counts_targets_and_a_partial_grid():
    text = cp.grid_summary(_grid())
    assert max(map(len, text.splitlines())) <= 78
    first, second = (" ".join(part.split()) for part in text.split("\nnetwork"))
    assert first == ("DNA content: 5 of 6 named right, 4 of 6 within 5 pp, 5 of 6 within 10 pp -- "
                     "target 95% named and 80% within 5 pp: MISSED")
    assert second.startswith("(both): 0 of 6 named right") and second.endswith("within 10 pp: MISSED")
    g = _grid()
    g["summary"]["DNA content"] = {"treated": 6, "named_right": 6, "within_5pp": 5, "within_10pp": 6}
    assert cp.grid_summary(g).split("\nnetwork")[0].endswith(": met")
    assert cp.grid_summary(_grid(complete=False)).startswith("NOTE: only 2 of 3 microscopes were read")


def test_dose_monotone_says_which_readouts_follow_the_dose():
    t = pd.DataFrame({"true": [0.47, 0.68, 0.84, 0.93], "DNA content": [0.49, 0.69, 0.84, 0.91],
                      "network (both)": [0.41, 0.46, 0.40, 0.24]}, index=[0.0, 0.5, 1.0, 1.5])
    lines = cp.dose_monotone(t).splitlines()
    assert lines[0].endswith("(rises with the dose)")
    assert lines[1].endswith("monotone with the truth") and "NOT" not in lines[1]
    assert lines[2] == "network (both): 0.41, 0.46, 0.40, 0.24 -- NOT monotone"


def test_era_table_per_population():
    t = cp.era_table({"control": _population(seed=1), "g1_arrest": _population(seed=2)}, 24.0)
    assert list(t.index) == ["control", "g1_arrest"]
    assert list(t.columns) == ["ERA hours: MAE (h)", "clock hours: MAE (h)", "true mean cycle (h)"]
    assert np.allclose(t["true mean cycle (h)"], 24.0)
    assert (t["clock hours: MAE (h)"] < 1e-6).all()  # the synthetic clock is the truth


def test_arrest_table_groups_and_probabilities():
    ctl, ga = _population(seed=1), _population(seed=2, g1=0.8)
    t = cp.arrest_table(ctl, ga, {"both": _Readout(), "both_sizeblind": _Readout()}, _Readout())
    assert list(t.index) == ["control, G1", "control, S", "g1_arrest, G1 not arrested", "g1_arrest, G1 arrested"]
    assert t.loc["g1_arrest, G1 arrested", "cells"] == int(ga["true_arrested"].sum())
    assert t.loc["control, G1", "cells"] == int((ctl["true_phase"] == "G1").sum())
    assert t["cells"].dtype.kind == "i" and t["nuclear area (px)"].dtype.kind == "i"
    for col in ("P(S) both", "P(S) both_sizeblind", "P(S) DNA"):
        assert ((t[col] > 0) & (t[col] < 1)).all()
    # per-network tables (a mode -> its table) give the same rows as one shared table
    t2 = cp.arrest_table({"both": ctl, "both_sizeblind": ctl}, {"both": ga, "both_sizeblind": ga},
                         {"both": _Readout(), "both_sizeblind": _Readout()}, _Readout())
    pd.testing.assert_frame_equal(t, t2)


def test_points_are_whole_and_never_negative_zero():
    pts = cp._points(np.array([-0.3, 0.4, -35.6, 35.49]))
    assert pts.tolist() == [0, 0, -36, 35] and [f"{p:+d}" for p in pts][0] == "+0"


def test_alignment_summary_fits_the_code_box():
    class _Report:
        def __str__(self) -> str:
            return "3 of 8 groups (frame) placed on their own 2N peak; 5 on the linear trend over groups " * 3

    lines = cp.alignment_summary(_Report()).splitlines()
    assert len(lines) > 1 and max(map(len, lines)) <= 76 and lines[1].startswith("  ")
    assert " ".join(" ".join(lines).split()) == " ".join(str(_Report()).split())
