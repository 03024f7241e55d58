"""Validation: metrics of one method on known cases, the table of a tiny run, targets, the CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_baselines import make_store  # the tiny cycling store shared with the baseline tests

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
    row, tracks = v.evaluate(pred, truth)
    assert row["n_tracks"] == 12 and row["n_cells"] == len(truth)
    assert row["track_spearman_median"] == pytest.approx(1.0)
    assert row["fisher_lee"] == pytest.approx(1.0)
    assert row["jammalamadaka_sengupta"] == pytest.approx(1.0)
    assert row["circ_mae_h"] == pytest.approx(0.0, abs=1e-9)
    assert row["era_mae_h"] == pytest.approx(0.0, abs=1e-9)
    assert row["paper_spearman"] == pytest.approx(1.0)
    assert len(tracks) == 12 and (tracks["spearman"] > 0.999).all()


def test_evaluate_wrong_origin_costs_mae_not_correlation():
    truth = _truth()
    shifted = (truth["true_age"] + 0.1) % 1.0
    pred = pd.DataFrame({"cell_id": truth["cell_id"], "pseudotime": shifted})
    row, _ = v.evaluate(pred, truth)
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
    row, tracks = v.evaluate(pred, truth)
    assert row["fisher_lee"] == pytest.approx(-1.0)
    assert row["track_spearman_median"] < -0.99
    assert row["circ_mae_h"] > 4.0


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
# a whole (tiny) run folder
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A run with a store, the training split and a fabricated trajectory (truth + small noise)."""
    root = tmp_path_factory.mktemp("valrun")
    run = RunDir(root)
    _, split = make_store(run.store)
    run.train.mkdir(parents=True)
    split.to_parquet(run.train / "split.parquet", index=False)
    cells = open_store(run.store).cells
    rng = np.random.default_rng(3)
    p = (cells["true_age"].to_numpy() + rng.normal(0, 0.01, len(cells))) % 1.0
    traj = pd.DataFrame({
        "cell_id": cells["cell_id"], "x2d": np.cos(2 * np.pi * p), "y2d": np.sin(2 * np.pi * p),
        "angle": 2 * np.pi * p, "pseudotime": p, "hours": p * 24.0, "som_node": np.floor(p * 30).astype(int),
    })
    run.trajectory.mkdir(parents=True)
    traj.to_parquet(run.trajectory / "trajectory.parquet", index=False)
    return run, split


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


def test_run_validation_writes_the_table(tiny_run):
    run, split = tiny_run
    methods = ("deepcycle", "deepcycle_som", "handmade", "pixels_pca")
    table = v.run_validation(run, methods=methods, pca_components=4, pca_pool=6)
    assert list(table["method"]) == list(methods)
    assert list(table.columns) == ["method", "label", *v.METRIC_COLUMNS, "note"]
    on_disk = pd.read_csv(run.validate / "table.csv")
    pd.testing.assert_frame_equal(on_disk[["method"]], table[["method"]])
    t = table.set_index("method")
    held = set(split.loc[split["split"] == "heldout", "cell_id"])
    assert (t["n_cells"].dropna() == len(held)).all()
    assert t.at["deepcycle", "circ_mae_h"] < 0.5 and t.at["deepcycle", "fisher_lee"] > 0.95
    # the SOM reads the same ring at 30 steps: about a node's width worse, no better
    assert t.at["deepcycle", "circ_mae_h"] <= t.at["deepcycle_som", "circ_mae_h"] < 1.5
    for b in ("handmade", "pixels_pca"):  # a ring with a larger error, or the reason why there is none
        note = str(t.at[b, "note"])
        assert t.at[b, "circ_mae_h"] > t.at["deepcycle", "circ_mae_h"] or note.startswith("no ring")
        assert note in ("", "nan") or note.startswith("no ring") or "true phases" in note
    res = v.load_results(run)
    assert set(res["heldout"]["cell_id"]) == held  # predictions judged: held-out cells only
    assert set(res["phases"]["phase"]) <= set(v.PHASES)
    assert set(res["confusion"]["method"]) == set(table.dropna(subset=["circ_mae_h"])["method"])
    # cached descriptors are reused and give the same numbers
    again = v.run_validation(run, methods=("handmade",), pca_components=4, pca_pool=6)
    assert again.iloc[0]["circ_mae_h"] == pytest.approx(t.at["handmade", "circ_mae_h"], nan_ok=True)


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


def test_truth_classes_follow_the_fucci_order():
    truth = _truth()
    k = v.truth_classes(truth)
    first = {c: truth.loc[k == c, "true_age"].mean() for c in (0, 1, 3, 2)}
    assert first[0] < first[1] < first[3] < first[2]
    assert set(np.unique(k)) == {0, 1, 2, 3}


def test_a_baseline_without_ring_counts_as_worse():
    table = pd.DataFrame([
        {"method": "deepcycle", "track_spearman_median": 0.97, "fisher_lee": 0.95, "circ_mae_h": 1.0, "era_mae_h": 1.5, "note": ""},
        {"method": "handmade", "circ_mae_h": np.nan, "note": "no ring: classes do not order the cycle"},
    ])
    res = v.check_targets(table).set_index("target")
    assert res.filter(like="handmade", axis=0)["status"].item() == "PASS"


def test_per_track_statistics_skip_barely_seen_tracks():
    truth = _truth()
    life = truth.groupby("track_id")["cell_id"].transform("size")
    truth = truth.assign(frame=truth["true_age_h"].astype(int), birth_frame=0, division_frame=life)
    # track 0 is seen only over its first quarter; a clock that is wrong there must not count per track
    part = truth[(truth["track_id"] != 0) | (truth["true_age"] < 0.25)]
    p = part["true_age"].where(part["track_id"] != 0, 1.0 - part["true_age"])
    row, tracks = v.evaluate(pd.DataFrame({"cell_id": part["cell_id"], "pseudotime": p % 1.0}), part)
    assert row["n_tracks"] == 11 and 0 not in set(tracks["track_id"])
    assert row["n_cells"] == len(part)  # circular metrics still use every cell
    cov = v.track_coverage(part)
    assert cov[part["track_id"] == 0].max() < 0.25 and cov[part["track_id"] == 1].min() > 0.9
