"""Validation: metrics of one method on known cases, the table of a tiny run, targets, the CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from builders import make_store  # the tiny cycling store shared with the baseline tests

from deepcycle_core import validate as v
from deepcycle_core.runs import RunDir
from deepcycle_core.store import open_store


def _truth(n_tracks: int = 12, n_per: int = 24, seed: int = 0) -> pd.DataFrame:
    """Full-cycle tracks sampled every hour from birth to division, with ground truth."""
    rng = np.random.default_rng(seed)
    rows = []
    cid = 0
    for t in range(n_tracks):
        cyc = float(n_per + rng.integers(-2, 3))
        for k in range(int(cyc)):
            a = k / cyc
            phase = "G1" if a < 0.37 else "S" if a < 0.75 else "G2" if a < 0.96 else "M"
            rows.append({"cell_id": cid, "track_id": t, "time_h": 10.0 + k, "true_age": a, "true_cycle_h": cyc,
                         "true_age_h": float(k), "true_phase": phase})
            cid += 1
    return pd.DataFrame(rows)


def test_evaluate_perfect_clock():
    truth = _truth()
    pred = pd.DataFrame({"cell_id": truth["cell_id"], "pseudotime": truth["true_age"], "hours": truth["true_age_h"]})
    row, tracks, curves = v.evaluate(pred, truth)
    assert row["n_tracks"] == 12 and row["n_cells"] == len(truth)
    assert row["track_spearman_median"] == pytest.approx(1.0)
    assert row["fisher_lee"] == pytest.approx(1.0)
    assert row["jammalamadaka_sengupta"] == pytest.approx(1.0)
    assert row["circ_mae_h"] == pytest.approx(0.0, abs=1e-9)
    assert row["era_mae_h"] == pytest.approx(0.0, abs=1e-9)
    assert row["paper_spearman"] == pytest.approx(1.0)
    assert row["paper_spearman_unwrapped"] == pytest.approx(1.0)
    assert len(tracks) == 12 and (tracks["spearman"] > 0.999).all()
    assert len(curves) == 100 and (curves["n_tracks"] == 12).all()
    np.testing.assert_allclose(curves["mean_unwrapped"], curves["relative_time"], atol=0.05)


def test_evaluate_wrong_origin_costs_mae_not_correlation():
    truth = _truth()
    shifted = (truth["true_age"] + 0.1) % 1.0
    pred = pd.DataFrame({"cell_id": truth["cell_id"], "pseudotime": shifted})
    row, _, _ = v.evaluate(pred, truth)
    # rotation-invariant correlation stays perfect, the error is 0.1 of each cell's own cycle
    assert row["fisher_lee"] == pytest.approx(1.0)
    expected = float((0.1 * truth["true_cycle_h"]).mean())
    assert row["circ_mae_h"] == pytest.approx(expected, rel=1e-6)
    assert np.isnan(row["era_mae_h"])  # no hours column: no ERA error
    # per-track correlation unwraps the crossing of the origin
    assert row["track_spearman_median"] == pytest.approx(1.0)


def test_evaluate_reversed_clock_is_negative():
    truth = _truth()
    pred = pd.DataFrame({"cell_id": truth["cell_id"], "pseudotime": (1.0 - truth["true_age"]) % 1.0})
    row, tracks, _ = v.evaluate(pred, truth)
    assert row["fisher_lee"] == pytest.approx(-1.0)
    assert row["track_spearman_median"] < -0.99
    assert row["circ_mae_h"] > 4.0


def test_paper_statistic_unwrapped_sees_a_backward_clock_that_the_raw_one_calls_good():
    """A clock running BACKWARDS whose origin sits half a cycle from division: each track reads 0.5,
    falls to 0, wraps to 1 and falls on to 0.5. Averaging the raw, wrapped values (as the paper did)
    gives a mean curve whose second half lies above its first, a POSITIVE correlation; unwrapping each
    track like the per-track statistic shows the clock runs backwards."""
    truth = _truth(n_tracks=20)
    pred = pd.DataFrame({"cell_id": truth["cell_id"], "pseudotime": (0.5 - truth["true_age"]) % 1.0})
    row, tracks, curves = v.evaluate(pred, truth)
    assert row["paper_spearman"] > 0.4  # the raw statistic is fooled
    assert row["paper_spearman_unwrapped"] == pytest.approx(-1.0)
    assert row["paper_kendall_unwrapped"] == pytest.approx(-1.0)
    assert row["track_spearman_median"] < -0.99  # and agrees with the per-track statistic
    assert curves["mean_unwrapped"].iloc[-1] < curves["mean_unwrapped"].iloc[0] - 0.9


def test_evaluate_needs_truth_columns():
    truth = _truth().drop(columns=["true_cycle_h"])
    pred = pd.DataFrame({"cell_id": truth["cell_id"], "pseudotime": 0.5})
    with pytest.raises(ValueError, match="true_cycle_h"):
        v.evaluate(pred, truth)


def test_phase_breakdown_shows_which_phases_are_confused():
    truth = _truth(n_tracks=30)
    ref = v.phase_reference(truth)
    pred = pd.DataFrame({"cell_id": truth["cell_id"], "pseudotime": truth["true_age"]})
    phases, conf = v.phase_breakdown(pred, truth, ref)
    assert list(phases["phase"]) == ["G1", "S", "G2", "M"]
    assert phases["mae_h"].max() == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(np.diag(conf.to_numpy()), 1.0, atol=0.1)
    # a clock late by 0.2 turns puts late-G1 cells into S and most M cells into G1 after division
    late = pred.assign(pseudotime=(truth["true_age"] + 0.2) % 1.0)
    phases, conf = v.phase_breakdown(late, truth, ref)
    assert phases["bias_h"].gt(0).all()
    assert conf.loc["M", "G1"] > 0.9
    assert conf.loc["G1", "S"] > 0.3
    np.testing.assert_allclose(conf.sum(axis=1), 1.0)


def test_som_view_places_cells_mid_node_and_era_is_monotone():
    ids = np.arange(300)
    node = np.repeat(np.arange(30), 10)
    traj = pd.DataFrame({"cell_id": ids, "som_node": node})
    out = v.som_view(traj, ids, T_hours=27.0, n_nodes=30)
    np.testing.assert_allclose(out["pseudotime"], (node + 0.5) / 30)
    h = out.groupby(node)["hours"].first().to_numpy()
    assert (np.diff(h) > 0).all() and 0 < h[0] < h[-1] < 27.0
    assert np.isnan(v.som_view(traj, ids, T_hours=None)["hours"]).all()


def test_check_targets_pass_and_miss_with_gaps():
    table = pd.DataFrame([
        {"method": "deepcycle", "track_spearman_median": 0.97, "fisher_lee": 0.85, "circ_mae_h": 1.0, "era_mae_h": 2.5},
        {"method": "handmade", "track_spearman_median": 0.5, "fisher_lee": 0.5, "circ_mae_h": 3.0, "era_mae_h": 4.0},
        {"method": "pixels_pca", "track_spearman_median": 0.5, "fisher_lee": 0.5, "circ_mae_h": 1.1, "era_mae_h": 4.0},
    ])
    res = v.check_targets(table).set_index("target")
    assert res.loc["track_spearman_median >= 0.95", "status"] == "PASS"
    assert res.loc["track_spearman_median >= 0.95", "gap"] == pytest.approx(0.02)
    assert res.loc["fisher_lee >= 0.9", "status"] == "MISS"
    assert res.loc["fisher_lee >= 0.9", "gap"] == pytest.approx(-0.05)
    assert res.loc["circ_mae_h <= 1.5", "gap"] == pytest.approx(0.5)
    assert res.loc["era_mae_h <= 2", "status"] == "MISS"
    assert res.filter(like="handmade", axis=0)["status"].item() == "PASS"
    assert res.filter(like="pixels_pca", axis=0)["status"].item() == "MISS"
    with pytest.raises(ValueError, match="not in the table"):
        v.check_targets(table, method="nope")


# ------------------------------------------------------------------------------------------------
# a whole (tiny) run folder, through the real stages
# ------------------------------------------------------------------------------------------------
#: Where along the cycle each FUCCI class of make_store peaks (low/low, red-high, green-high, both-high).
CLASS_PEAKS = np.array([0.05, 0.22, 0.7, 0.4])


def network_like_descriptors(cells: pd.DataFrame, noise: float = 0.05, seed: int = 0) -> pd.DataFrame:
    """What a well-trained 4-class network gives: log-probabilities of classes that peak in turn along
    the cycle. Only the descriptors are made up; the ring fit, its orientation, the hours and the
    validation that read them are the real stages."""
    a = cells["true_age"].to_numpy()
    logits = 4.0 * np.cos(2 * np.pi * (a[:, None] - CLASS_PEAKS[None, :]))
    logits += np.random.default_rng(seed).normal(0, noise, logits.shape)
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    desc = pd.DataFrame(np.log(np.exp(logp) + 1e-7), columns=["d0", "d1", "d2", "d3"])
    desc.insert(0, "cell_id", cells["cell_id"].to_numpy())
    return desc


def _make_run(root, *, trajectory: bool = True, classes: int | None = None) -> tuple[RunDir, pd.DataFrame]:
    """A run folder with a store, its split and the network's descriptors; the trajectory stage is
    run for real when ``trajectory``. ``classes`` replaces every FUCCI class by one value."""
    from deepcycle_core.fingerprint import adopt
    from deepcycle_core.split import write_split
    from deepcycle_core.trajectory import run_trajectory

    run = RunDir(root)
    _, split = make_store(run.store)
    if classes is not None:
        path = run.store / "cells.parquet"
        pd.read_parquet(path).assign(**{"class": classes}).to_parquet(path, index=False)
    run.train.mkdir(parents=True)
    write_split(split, run.split)
    run.embed.mkdir(parents=True)
    network_like_descriptors(open_store(run.store).cells).to_parquet(run.descriptors, index=False)
    adopt(run, "train")  # vouch for the hand-made split and descriptors, as their stages would
    adopt(run, "embed")
    if trajectory:
        run_trajectory(run, T_hours=24.0)
    return run, split


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return _make_run(tmp_path_factory.mktemp("valrun"))


def test_fit_ring_never_sees_heldout_cells(tiny_run):
    """Garbage descriptors on held-out cells change nothing about the ring read on the other cells."""
    run, split = tiny_run
    store = open_store(run.store)
    fit = split.loc[split["split"] != "heldout", "cell_id"].to_numpy()
    held = split.loc[split["split"] == "heldout", "cell_id"].to_numpy()
    a = store.cells["true_age"].to_numpy()
    wobble = np.random.default_rng(5).normal(0, 0.02, (2, len(a)))  # frames give tied ages; cells don't
    desc = pd.DataFrame({"cell_id": store.cells["cell_id"], "c": np.cos(2 * np.pi * a) + wobble[0],
                         "s": np.sin(2 * np.pi * a) + wobble[1]})
    bad = desc.copy()
    bad.loc[bad["cell_id"].isin(held), ["c", "s"]] = 50.0
    r1 = v.fit_ring(desc, store.cells, fit, T_hours=24.0).set_index("cell_id")
    r2 = v.fit_ring(bad, store.cells, fit, T_hours=24.0).set_index("cell_id")
    np.testing.assert_allclose(r1.loc[fit, "pseudotime"], r2.loc[fit, "pseudotime"])
    # and the ring oriented by the FUCCI classes recovers the true clock on the held-out cells
    err = np.abs(((r1.loc[held, "pseudotime"] - a[held] + 0.5) % 1.0) - 0.5)
    assert err.mean() < 0.05


def test_run_validation_real_path_known_answers(tiny_run):
    """Descriptors that order the cycle, through the real trajectory stage and validation: the clock
    must run forward with a small error; a feature that grows with age orders every track; the
    baselines' outcomes on this store are fixed."""
    run, split = tiny_run
    methods = ("deepcycle", "deepcycle_som", "nuclear_area", "handmade", "pixels_pca")
    table = v.run_validation(run, methods=methods, pca_components=4, pca_pool=6)
    assert list(table["method"]) == list(methods)
    assert list(table.columns) == ["method", "label", *v.METRIC_COLUMNS, "used_truth", "note"]
    on_disk = pd.read_csv(run.validate / "table.csv")
    pd.testing.assert_frame_equal(on_disk[["method"]], table[["method"]])
    t = table.set_index("method")
    assert not t["used_truth"].any()
    held = set(split.loc[split["split"] == "heldout", "cell_id"])
    rings = [m for m in methods if m != "handmade"]
    assert (t.loc[rings, "n_cells"] == len(held)).all()
    dc = t.loc["deepcycle"]
    assert dc.track_spearman_median > 0.97 and dc.fisher_lee > 0.95 and dc.circ_mae_h < 1.0
    assert dc.paper_spearman_unwrapped > 0.95
    # the SOM reads the same ring at 30 steps: about a node's width worse, no better
    assert dc.circ_mae_h <= t.at["deepcycle_som", "circ_mae_h"] < 1.5
    # nuclear area grows with age in every track: the single-feature read-out orders each track
    assert t.at["nuclear_area", "track_spearman_median"] > 0.95
    # on this store the three hand-made features do not order the cycle in a way the FUCCI classes can
    # orient (the ring's class contrast is far below the threshold): "no ring", never a rescued ring
    assert str(t.at["handmade", "note"]).startswith("no ring") and np.isnan(t.at["handmade", "circ_mae_h"])
    # raw pixels give a ring, but a poor clock
    assert t.at["pixels_pca", "circ_mae_h"] > 5.0 and t.at["pixels_pca", "fisher_lee"] < 0.7
    targets = v.check_targets(table).set_index("target")
    assert targets.filter(like="handmade", axis=0)["status"].item() == "NO RING"
    assert targets.filter(like="pixels_pca", axis=0)["status"].item() == "PASS"
    res = v.load_results(run)
    assert set(res["heldout"]["cell_id"]) == held  # predictions judged: held-out cells only
    assert set(res["phases"]["phase"]) <= set(v.PHASES)
    assert set(res["confusion"]["method"]) == set(rings)
    # the averaged curves on disk are those of the table's tracks
    curves = res["curves"].groupby("method")["n_tracks"].first()
    assert (curves.reindex(rings) == t.loc[rings, "n_tracks"]).all()
    # cached descriptors are reused and give the same numbers
    again = v.run_validation(run, methods=("pixels_pca",), pca_components=4, pca_pool=6)
    assert again.iloc[0]["circ_mae_h"] == pytest.approx(t.at["pixels_pca", "circ_mae_h"])


def test_network_ring_is_never_oriented_with_ground_truth(tmp_path):
    """Without the trajectory stage's output the network's ring is fitted here with the SAME rule as
    everything else: the FUCCI classes orient it. When they cannot (one class only), the row says
    "no ring" -- it is not rescued with the true ages -- and no target passes."""
    good, _ = _make_run(tmp_path / "good", trajectory=False)
    t = v.run_validation(good, methods=("deepcycle",)).set_index("method")
    assert "fitted here" in t.at["deepcycle", "note"] and not t.at["deepcycle", "used_truth"]
    assert t.at["deepcycle", "fisher_lee"] > 0.95
    blind, _ = _make_run(tmp_path / "blind", trajectory=False, classes=1)
    table = v.run_validation(blind, methods=("deepcycle", "handmade"), pca_components=4)
    t = table.set_index("method")
    for m in ("deepcycle", "handmade"):
        assert str(t.at[m, "note"]).startswith("no ring"), t.at[m, "note"]
        assert np.isnan(t.at[m, "circ_mae_h"]) and not t.at[m, "used_truth"]
    assert not (v.check_targets(table)["status"] == "PASS").any()


def test_cli_validate(tiny_run, capsys):
    from deepcycle_core.__main__ import main

    run, _ = tiny_run
    assert main(["validate", "--run", str(run.root), "--methods", "deepcycle", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "deepcycle" in out and "table.csv" in out
    assert list(pd.read_csv(run.validate / "table.csv")["method"]) == ["deepcycle"]


def test_missing_inputs_are_named(tmp_path, tiny_run):
    run, _ = tiny_run
    bare = RunDir(tmp_path / "r")
    make_store(bare.store, n_tracks=6)
    with pytest.raises(FileNotFoundError, match="split.parquet"):
        v.run_validation(bare, methods=("deepcycle",))
    with pytest.raises(FileNotFoundError, match="bf_only"):
        v.run_validation(run, methods=("bf_only",))
    with pytest.raises(ValueError, match="unknown validation method"):
        v.run_validation(run, methods=("magic",))


def test_thin_tracks_keeps_every_track():
    cells = pd.DataFrame({"cell_id": np.arange(20), "field": 0, "track_id": np.repeat([5, 6], 10),
                          "frame": np.tile(np.arange(10), 2)})
    kept = v.thin_tracks(cells, np.arange(20), 3)
    assert list(kept) == [0, 3, 6, 9, 10, 13, 16, 19]
    assert list(v.thin_tracks(cells, np.arange(20), 1)) == list(range(20))
    with pytest.raises(ValueError, match="heldout_every"):
        v.thin_tracks(cells, np.arange(20), 0)


def test_a_baseline_without_ring_is_no_comparison():
    table = pd.DataFrame([
        {"method": "deepcycle", "track_spearman_median": 0.97, "fisher_lee": 0.95, "circ_mae_h": 1.0, "era_mae_h": 1.5, "note": ""},
        {"method": "handmade", "circ_mae_h": np.nan, "note": "no ring: classes do not order the cycle"},
    ])
    res = v.check_targets(table).set_index("target")
    assert res.filter(like="handmade", axis=0)["status"].item() == "NO RING"


def test_a_row_that_used_ground_truth_never_passes():
    """Numbers that would pass every target do not, once the row is marked as having used the truth."""
    good = {"method": "deepcycle", "track_spearman_median": 0.99, "fisher_lee": 0.99, "circ_mae_h": 0.5,
            "era_mae_h": 0.5}
    base = {"method": "handmade", "track_spearman_median": 0.5, "fisher_lee": 0.5, "circ_mae_h": 5.0, "era_mae_h": 5.0}
    honest = v.check_targets(pd.DataFrame([{**good, "used_truth": False}, {**base, "used_truth": False}]))
    assert (honest["status"] == "PASS").all()
    helped = v.check_targets(pd.DataFrame([{**good, "used_truth": True}, {**base, "used_truth": False}]))
    assert not (helped["status"] == "PASS").any()
    assert (helped["status"] == "TRUTH").all()
    assert "USED GROUND TRUTH" in v.format_table(pd.DataFrame([{**good, "used_truth": True, "note": "", "label": ""}]))


def test_per_track_statistics_skip_barely_seen_tracks():
    truth = _truth()
    life = truth.groupby("track_id")["cell_id"].transform("size")
    truth = truth.assign(frame=truth["true_age_h"].astype(int), birth_frame=0, division_frame=life - 1)
    # track 0 is seen only over its first quarter; a clock that is wrong there must not count per track
    part = truth[(truth["track_id"] != 0) | (truth["true_age"] < 0.25)]
    p = part["true_age"].where(part["track_id"] != 0, 1.0 - part["true_age"])
    row, tracks, _ = v.evaluate(pd.DataFrame({"cell_id": part["cell_id"], "pseudotime": p % 1.0}), part)
    assert row["n_tracks"] == 11 and 0 not in set(tracks["track_id"])
    assert row["n_cells"] == len(part)  # circular metrics still use every cell
    cov = v.track_coverage(part)
    assert cov[0] < 0.3 and cov.drop(index=0).min() == pytest.approx(1.0)


def test_a_track_with_a_long_gap_is_not_counted_as_seen():
    """Seen at birth and at division but missing for the middle half: its crops span the whole cycle,
    its frames cover half of it."""
    truth = _truth()
    life = truth.groupby("track_id")["cell_id"].transform("size")
    truth = truth.assign(frame=truth["true_age_h"].astype(int), birth_frame=0, division_frame=life - 1)
    gappy = truth[(truth["track_id"] != 3) | (truth["true_age"] < 0.25) | (truth["true_age"] > 0.75)]
    cov = v.track_coverage(gappy)
    assert 0.45 < cov[3] < 0.6
    row, tracks, _ = v.evaluate(pd.DataFrame({"cell_id": gappy["cell_id"], "pseudotime": gappy["true_age"]}), gappy)
    assert 3 not in set(tracks["track_id"]) and row["n_tracks"] == 11
    # coverage is measured on every frame, not on the thinned subset that is judged
    thinned = gappy[gappy["true_age_h"] % 3 == 0]
    row, _, _ = v.evaluate(pd.DataFrame({"cell_id": thinned["cell_id"], "pseudotime": thinned["true_age"]}), thinned,
                           coverage=cov)
    assert row["n_tracks"] == 11


def test_hard_preset_is_resimulated_when_its_parameters_change(tmp_path):
    """The chapter's hard-preset data set is reused only when it was simulated with the very parameters
    asked for; any change (founders, hours, seed) makes a new one instead of reading a stale one."""
    run = RunDir(tmp_path / "run")

    def made(**kw):
        hard = v.hard_preset_run(run, **kw)
        return open_store(hard.store).meta["provenance"]["parameters"], (hard.store / "meta.json").stat().st_mtime_ns

    first, stamp = made(cells=20, hours=3.0, seed=1)
    assert made(cells=20, hours=3.0, seed=1) == (first, stamp)  # same parameters: the same store, untouched
    for change in ({"cells": 21, "hours": 3.0, "seed": 1}, {"cells": 20, "hours": 4.0, "seed": 1},
                   {"cells": 20, "hours": 3.0, "seed": 2}):
        p, _ = made(**change)
        assert (p["cells"], p["hours"], p["seed"], p["difficulty"]) == (change["cells"], change["hours"], change["seed"], "hard")
