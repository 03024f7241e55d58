"""Validation: the describe stage's files, the table of a tiny run read from them, stale files, the CLI.

(The metrics themselves, pure functions of tables, are tested in test_scoring.py.)
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from builders import make_store  # the tiny cycling store shared with the baseline tests

from deepcycle_core.validation import describe as d
from deepcycle_core.validation import scoring as s
from deepcycle_core.validation import validate as v
from deepcycle_core.data.fingerprint import StaleInputError
from deepcycle_core.data.runs import RunDir
from deepcycle_core.data.store import open_store


def test_som_view_places_cells_mid_node_and_era_is_monotone():
    ids = np.arange(300)
    node = np.repeat(np.arange(30), 10)
    traj = pd.DataFrame({"cell_id": ids, "som_node": node})
    out = v.som_view(traj, ids, T_hours=27.0, n_nodes=30)
    np.testing.assert_allclose(out["pseudotime"], (node + 0.5) / 30)
    h = out.groupby(node)["hours"].first().to_numpy()
    assert (np.diff(h) > 0).all() and 0 < h[0] < h[-1] < 27.0
    assert np.isnan(v.som_view(traj, ids, T_hours=None)["hours"]).all()


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


def _make_run(
    root, *, trajectory: bool = True, classes: int | None = None, births: bool = True, hidden: bool = False
) -> tuple[RunDir, pd.DataFrame]:
    """A run folder with a store, its split and the network's descriptors; the trajectory stage is
    run for real when ``trajectory``. ``classes`` replaces every FUCCI class by one value; without
    ``births`` no birth is recorded (a movie that cannot place the origin, as good as a snapshot);
    ``hidden`` adds the simulator's hidden variables (the ceiling row reads them)."""
    from deepcycle_core.data.fingerprint import adopt
    from deepcycle_core.data.split import write_split
    from deepcycle_core.clock.trajectory import run_trajectory

    run = RunDir(root)
    _, split = make_store(run.store)
    path = run.store / "cells.parquet"
    if classes is not None:
        pd.read_parquet(path).assign(**{"class": classes}).to_parquet(path, index=False)
    if not births:
        pd.read_parquet(path).assign(birth_frame=-1).to_parquet(path, index=False)
    if hidden:  # what the virtual microscope draws a crop from (make_store's own rule for DNA and size)
        cells = pd.read_parquet(path)
        a = cells["true_age"].to_numpy()
        cells["true_dna"] = 1.0 + np.clip((a - 0.37) / 0.38, 0, 1)
        cells["true_nuc_area"] = np.pi * (5.0 + 4.0 * a) ** 2
        cells["true_m_progress"] = np.where(a > 0.95, (a - 0.95) / 0.05, -1.0)
        cells.to_parquet(path, index=False)
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


def test_fit_descriptor_ring_never_sees_heldout_cells(tiny_run):
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
    r1 = v.fit_descriptor_ring(desc, store.cells, fit, T_hours=24.0).set_index("cell_id")
    r2 = v.fit_descriptor_ring(bad, store.cells, fit, T_hours=24.0).set_index("cell_id")
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
    written = d.run_describe(run, methods=methods, pca_components=4, pca_pool=6)
    # the network's ring is the trajectory stage's: only the baselines have descriptors of their own
    assert set(written) == {"nuclear_area", "handmade", "pixels_pca"}
    assert all(p == run.method_descriptors(m) and (p.parent / "stamp.json").is_file() for m, p in written.items())
    table = v.run_validation(run, methods=methods, pca_components=4, pca_pool=6)
    assert list(table["method"]) == list(methods)
    assert list(table.columns) == ["method", "label", *s.METRIC_COLUMNS, "ring", "used_truth", "note"]
    on_disk = pd.read_csv(run.validate / "table.csv")
    pd.testing.assert_frame_equal(on_disk[["method"]], table[["method"]])
    t = table.set_index("method")
    assert not t["used_truth"].any()
    held = set(split.loc[split["split"] == "heldout", "cell_id"])
    rings = list(methods)
    assert (t.loc[rings, "n_cells"] == len(held)).all()
    dc = t.loc["deepcycle"]
    assert dc.track_spearman_median > 0.97 and dc.fisher_lee > 0.95 and dc.circ_mae_h < 1.0
    assert dc.paper_spearman_unwrapped > 0.95
    # the SOM reads the same ring at 30 steps: about a node's width worse, no better
    assert dc.circ_mae_h <= t.at["deepcycle_som", "circ_mae_h"] < 1.5
    # nuclear area grows with age in every track: the single-feature read-out orders each track
    assert t.at["nuclear_area", "track_spearman_median"] > 0.95
    # every ring is oriented by the movie (this store has tracks and births) and judged a clock along them
    assert (t.loc[["deepcycle", "deepcycle_som", "handmade", "pixels_pca"], "ring"] == "clock").all()
    assert t.at["nuclear_area", "ring"] == "no ring"
    # the three hand-made features order each track but place it hours off; raw pixels are a poor clock
    assert t.at["handmade", "track_spearman_median"] > 0.9 and 3.0 < t.at["handmade", "circ_mae_h"] < 6.0
    assert t.at["pixels_pca", "circ_mae_h"] > 5.0 and t.at["pixels_pca", "fisher_lee"] < 0.7
    targets = s.check_targets(table, method="deepcycle").set_index("target")
    assert targets.filter(like="handmade", axis=0)["status"].item() == "PASS"
    res = v.load_results(run)
    assert set(res["heldout"]["cell_id"]) == held  # predictions judged: held-out cells only
    assert set(res["phases"]["phase"]) <= set(s.PHASES)
    assert set(res["confusion"]["method"]) == set(rings)
    # the averaged curves on disk are those of the table's tracks
    curves = res["curves"].groupby("method")["n_tracks"].first()
    assert (curves.reindex(rings) == t.loc[rings, "n_tracks"]).all()
    # current descriptors are reused (not remade) and give the same numbers
    made = (run.describe_dir("pixels_pca") / "stamp.json").stat().st_mtime_ns
    d.run_describe(run, methods=("pixels_pca",), pca_components=4, pca_pool=6)
    assert (run.describe_dir("pixels_pca") / "stamp.json").stat().st_mtime_ns == made
    again = v.run_validation(run, methods=("pixels_pca",), pca_components=4, pca_pool=6)
    assert again.iloc[0]["circ_mae_h"] == pytest.approx(t.at["pixels_pca", "circ_mae_h"])


def test_network_ring_is_never_oriented_with_ground_truth(tmp_path):
    """Without the trajectory stage's output the network's ring is fitted here with the SAME rule as
    everything else: the movie orients it, and without births the FUCCI classes. When neither can (no
    birth seen and one FUCCI class only), the row says "no ring" -- it is not rescued with the true
    ages -- and no target passes."""
    good, _ = _make_run(tmp_path / "good", trajectory=False)
    assert d.run_describe(good, methods=("deepcycle",)) == {}  # the embed stage's descriptors are read
    t = v.run_validation(good, methods=("deepcycle",)).set_index("method")
    assert "fitted here" in t.at["deepcycle", "note"] and not t.at["deepcycle", "used_truth"]
    assert t.at["deepcycle", "fisher_lee"] > 0.95
    blind, _ = _make_run(tmp_path / "blind", trajectory=False, classes=1, births=False)
    d.run_describe(blind, methods=("deepcycle", "handmade"), pca_components=4)
    table = v.run_validation(blind, methods=("deepcycle", "handmade"), pca_components=4)
    t = table.set_index("method")
    for m in ("deepcycle", "handmade"):
        assert str(t.at[m, "note"]).startswith("no ring"), t.at[m, "note"]
        assert np.isnan(t.at[m, "circ_mae_h"]) and not t.at[m, "used_truth"]
    assert not (s.check_targets(table, method="deepcycle")["status"] == "PASS").any()


def test_cli_validate(tiny_run, capsys):
    from deepcycle_core.__main__ import main

    run, _ = tiny_run
    assert main(["validate", "--run", str(run.root), "--methods", "deepcycle", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "deepcycle" in out and "table.csv" in out
    assert list(pd.read_csv(run.validate / "table.csv")["method"]) == ["deepcycle"]


def test_cli_describe_then_validate(tiny_run, capsys):
    """``deepcycle describe`` writes a method's descriptors; ``deepcycle validate`` reads them (and would
    have made them first had they been missing)."""
    from deepcycle_core.__main__ import main

    run, _ = tiny_run
    assert main(["describe", "--run", str(run.root), "--methods", "nuclear_area", "--quiet"]) == 0
    assert "describe/nuclear_area/descriptors.parquet" in capsys.readouterr().out
    assert main(["validate", "--run", str(run.root), "--methods", "nuclear_area", "--quiet"]) == 0
    assert list(pd.read_csv(run.validate / "table.csv")["method"]) == ["nuclear_area"]


def test_stale_descriptors_are_refused_naming_the_file_and_the_command(tmp_path):
    """Descriptors made for other cells, or changed after the describe stage wrote them, are never
    scored: the validation names the file and the ``deepcycle describe`` command for the cells and
    settings asked for now; describing again remakes them."""
    run, _ = _make_run(tmp_path / "r")
    d.run_describe(run, methods=("handmade",), fit_cells=300)
    v.run_validation(run, methods=("handmade",), fit_cells=300)  # current: read and scored
    with pytest.raises(StaleInputError, match=r"describe/handmade/descriptors\.parquet: stale, it was made for "
                       r"other cells.*`deepcycle describe --run \S+ --methods handmade --fit-cells 200`"):
        v.run_validation(run, methods=("handmade",), fit_cells=200)
    path = run.method_descriptors("handmade")
    df = pd.read_parquet(path)
    df.iloc[0, 1] += 1.0
    df.to_parquet(path, index=False)
    with pytest.raises(StaleInputError, match=r"handmade/descriptors\.parquet: stale, it was changed after the "
                       r"describe stage wrote it.*--methods handmade --fit-cells 300`"):
        v.run_validation(run, methods=("handmade",), fit_cells=300)
    d.run_describe(run, methods=("handmade",), fit_cells=300)  # notices the change and remakes them
    assert pd.read_parquet(path).iloc[0, 1] == pytest.approx(df.iloc[0, 1] - 1.0)
    v.run_validation(run, methods=("handmade",), fit_cells=300)


def _copy_run(run: RunDir, dest) -> RunDir:
    """A copy of a run folder (its stamps name their inputs relative to themselves: the copy is current)."""
    import shutil

    shutil.copytree(run.root, dest)
    return RunDir(dest)


def test_an_edited_ring_json_is_refused_by_every_method(tiny_run, tmp_path):
    """ring.json's settings and T steer every method's ring, the hand-made one too: edited by hand
    (T 24 -> 48 h moved the hand-made row's hours error 2.93 -> 4.80 h without a word), it is refused,
    naming the file and the command that remakes it."""
    run = _copy_run(tiny_run[0], tmp_path / "r")
    d.run_describe(run, methods=("handmade",), fit_cells=300)
    assert v.ring_settings(run)["T_hours"] == 24.0
    ring = json.loads(run.ring.read_text())
    ring["T_hours"] = 48.0
    run.ring.write_text(json.dumps(ring))
    want = rf"{run.ring}: stale, it was changed after the trajectory stage wrote it.*`deepcycle trajectory --run"
    with pytest.raises(StaleInputError, match=want):
        v.ring_settings(run)
    with pytest.raises(StaleInputError, match=want):
        v.run_validation(run, methods=("handmade",), fit_cells=300)
    # without a trajectory stage at all there is nothing to read: the method's own ring, the store's T
    shutil.rmtree(run.trajectory)
    assert v.ring_settings(run) == {}


def test_the_network_rows_refuse_a_stale_trajectory(tiny_run, tmp_path):
    """Validation's own check of the trajectory stage (not only fingerprint's): a trajectory table
    edited after the stage wrote it is never scored, by the table or by the row's predictions."""
    run = _copy_run(tiny_run[0], tmp_path / "r")
    split = tiny_run[1]
    traj = pd.read_parquet(run.trajectory_table)
    traj["pseudotime"] = np.mod(traj["pseudotime"] + 0.5, 1.0)  # a clock half a cycle off
    traj.to_parquet(run.trajectory_table, index=False)
    run.ring.write_text(run.ring.read_text())  # ring.json untouched: only the table is stale
    want = rf"{run.trajectory_table}: stale, it was changed after the trajectory stage wrote it"
    store = open_store(run.store)
    fit = split.loc[split["split"] != "heldout", "cell_id"].to_numpy()
    held = split.loc[split["split"] == "heldout", "cell_id"].to_numpy()
    for method in ("deepcycle", "deepcycle_som"):
        with pytest.raises(StaleInputError, match=want):
            v.method_predictions(method, run, store, fit, held, ring_kwargs={"T_hours": 24.0})
    with pytest.raises(StaleInputError, match=want):
        v.run_validation(run, methods=("deepcycle",))


def test_the_ceiling_row_is_flagged_as_using_truth_through_the_real_path(tmp_path):
    """The ceiling reads the simulator's hidden variables and true ages: the row the validation
    writes carries used_truth=True (table.csv too), and it never passes a target, whatever its
    numbers -- here it beats every target."""
    run, _ = _make_run(tmp_path / "r", hidden=True)
    table = v.run_validation(run, methods=("deepcycle", "ceiling_hidden"))
    t = table.set_index("method")
    assert bool(t.at["ceiling_hidden", "used_truth"]) is True
    assert bool(t.at["deepcycle", "used_truth"]) is False
    assert t.at["ceiling_hidden", "circ_mae_h"] < 1.0  # good enough to pass, were it a method
    on_disk = pd.read_csv(run.validate_table).set_index("method")
    assert bool(on_disk.at["ceiling_hidden", "used_truth"]) is True
    res = s.check_targets(table, method="ceiling_hidden")
    assert (res["status"] == "TRUTH").all(), res
    assert "USED GROUND TRUTH" in s.format_table(table)


def test_missing_inputs_are_named(tmp_path, tiny_run):
    run, _ = tiny_run
    bare = RunDir(tmp_path / "r")
    make_store(bare.store, n_tracks=6)
    with pytest.raises(FileNotFoundError, match="split.parquet"):
        v.run_validation(bare, methods=("deepcycle",))
    with pytest.raises(FileNotFoundError, match="bf_only"):
        v.run_validation(run, methods=("bf_only",))
    # the validation names the command that makes the file; that command names the missing network
    with pytest.raises(FileNotFoundError, match=r"describe/bf_only/descriptors\.parquet: missing; run "
                       r"`deepcycle describe --run \S+ --methods bf_only`"):
        v.run_validation(run, methods=("bf_only",))
    with pytest.raises(FileNotFoundError, match=r"train/bf_only/best\.pt: missing"):
        d.run_describe(run, methods=("bf_only",))
    with pytest.raises(ValueError, match="unknown validation method"):
        v.run_validation(run, methods=("magic",))
    with pytest.raises(ValueError, match="unknown validation method"):
        d.run_describe(run, methods=("magic",))


def test_thin_tracks_keeps_every_track():
    cells = pd.DataFrame({"cell_id": np.arange(20), "field": 0, "track_id": np.repeat([5, 6], 10),
                          "frame": np.tile(np.arange(10), 2)})
    kept = d.thin_tracks(cells, np.arange(20), 3)
    assert list(kept) == [0, 3, 6, 9, 10, 13, 16, 19]
    assert list(d.thin_tracks(cells, np.arange(20), 1)) == list(range(20))
    with pytest.raises(ValueError, match="heldout_every"):
        d.thin_tracks(cells, np.arange(20), 0)


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



def test_supervised_baseline_and_crop_ceilings_through_the_real_path(tmp_path):
    """The describe stage measures the crops once (stamped) for the supervised baseline and both crop
    ceilings; the ceilings are flagged as using truth and read the held-out cells; the supervised row,
    on a movie whose tracks show no birth or division (no mothers, no daughters: no label the clock head
    could learn either), is a result -- no clock -- not a crash. (Its fit: tests/validation/test_supervised.py.)"""
    run, split = _make_run(tmp_path / "r", hidden=True)
    methods = ("supervised_features", "ceiling_crops", "ceiling_crops_phase", "ceiling_hidden")
    written = d.run_describe(run, methods=methods)
    assert set(written) == {"supervised_features", "ceiling_crops", "ceiling_crops_phase"}
    assert len(set(written.values())) == 1 and (run.describe_dir("supervised_features") / "stamp.json").is_file()
    table = v.run_validation(run, methods=methods)
    t = table.set_index("method")
    assert not t.at["supervised_features", "used_truth"]
    assert "cycle target" in t.at["supervised_features", "note"] and np.isnan(t.at["supervised_features", "circ_mae_h"])
    assert t.loc[["ceiling_crops", "ceiling_crops_phase", "ceiling_hidden"], "used_truth"].all()
    # DNA and size as these crops show them carry the age well; knowing the phase does not hurt
    assert t.at["ceiling_crops", "circ_mae_h"] < 3.0
    assert t.at["ceiling_crops_phase", "circ_mae_h"] < t.at["ceiling_crops", "circ_mae_h"] + 0.3
    assert (s.check_targets(table, method="ceiling_crops")["status"] == "TRUTH").all()
    held = set(split.loc[split["split"] == "heldout", "cell_id"])
    assert set(v.load_results(run)["heldout"]["cell_id"]) == held


def test_the_clock_head_row_reads_its_head_and_says_when_it_has_no_intervals(tmp_path):
    """The clock-head row reads the cycle head's (cos, sin) from the embed stage's descriptors: position
    = their angle, hours = position x T. Its 80 % intervals are calibrated on the validation split's
    LABELLED cells; a movie that shows no birth or division (this one) labels none, so the row has no
    intervals and its interval metrics are NaN -- not made up."""
    from deepcycle_core.data.fingerprint import adopt

    run, split = _make_run(tmp_path / "r", trajectory=False)
    cells = open_store(run.store).cells
    desc = pd.read_parquet(run.descriptors)
    a = 2 * np.pi * cells.set_index("cell_id").loc[desc["cell_id"], "true_age"].to_numpy()
    desc["cycle_cos"], desc["cycle_sin"] = np.cos(a), np.sin(a)
    desc.to_parquet(run.descriptors, index=False)
    adopt(run, "embed")
    table = v.run_validation(run, methods=("deepcycle_clock",))
    row = table.set_index("method").loc["deepcycle_clock"]
    assert row.circ_mae_h < 1e-6 and row.worst_tenth_mae_h < 1e-6 and row.track_spearman_median > 0.99
    assert np.isnan(row.interval80_cover) and np.isnan(row.width_error_spearman)
    held = v.load_results(run)["heldout"]
    assert set(held["cell_id"]) == set(split.loc[split["split"] == "heldout", "cell_id"])
