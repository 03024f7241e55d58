"""The cycle ring on synthetic rings with known clocks: fit, orientation, ERA hours, SOM, the stage."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from builders import class_of_age, era_ages, softmax_descriptors
from builders import make_ring_run as _make_run

from deepcycle_core.clock import metrics as m
from deepcycle_core.clock import trajectory as tr

TWO_PI = 2 * np.pi


def random_orthogonal(rng: np.random.Generator, d: int, reflect: bool) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(d, d)))
    q = q * np.sign(np.diag(r))
    if (np.linalg.det(q) < 0) != reflect:
        q[:, 0] = -q[:, 0]
    return q


def noisy_circle_4d(rng: np.random.Generator, a: np.ndarray, reflect: bool) -> np.ndarray:
    n = a.size
    base = np.column_stack(
        [np.cos(TWO_PI * a), np.sin(TWO_PI * a), 0.05 * rng.normal(size=n), 0.05 * rng.normal(size=n)]
    )
    base[:, :2] += 0.04 * rng.normal(size=(n, 2))
    return 3.0 * base @ random_orthogonal(rng, 4, reflect) + rng.normal(0, 5, 4)


@pytest.mark.parametrize("seed,reflect", [(0, False), (1, True), (2, False), (3, True)])
def test_ring_recovers_clock_under_rotation_and_reflection(seed, reflect):
    rng = np.random.default_rng(seed)
    a = rng.uniform(0, 1, 3000)
    X = noisy_circle_4d(rng, a, reflect)
    ring = tr.fit_ring(X, class_of_age(a))
    p = ring.transform(X)["pseudotime"].to_numpy()
    assert ((p >= 0) & (p < 1)).all()
    assert m.fisher_lee(TWO_PI * p, TWO_PI * a) > 0.99  # positive: direction right
    assert m.circular_mae(p, a) < 0.015  # origin right (a uniform circle: arc length = age)
    assert abs(ring.info["direction_score"]) > 1.5 and ring.info["division_score"] > 1.5
    assert abs(ring.info["g1s_pseudotime"] - 0.45) < 0.05


def test_whitened_ellipse_and_class_noise():
    rng = np.random.default_rng(11)
    a = rng.uniform(0, 1, 3000)
    X = noisy_circle_4d(rng, a, reflect=True) * np.array([1.0, 5.0, 0.3, 2.0])
    noisy_classes = class_of_age((a + rng.normal(0, 0.03, a.size)) % 1.0)
    ring = tr.fit_ring(X, noisy_classes, whiten=True)
    p = ring.transform(X)["pseudotime"].to_numpy()
    assert m.fisher_lee(TWO_PI * p, TWO_PI * a) > 0.97
    assert abs(m.circular_difference(m.circular_mean(TWO_PI * (p - a)), 0.0, TWO_PI)) < 0.15


def test_softmax_ring_with_era_hours():
    """End to end on log-softmax descriptors of an exponentially growing population: hours ≈ true age."""
    rng = np.random.default_rng(5)
    a = era_ages(rng, 6000)
    X = softmax_descriptors(a, rng)
    ring = tr.fit_ring(X, class_of_age((a + rng.normal(0, 0.02, a.size)) % 1.0), T_hours=27.0)
    out = ring.transform(X)
    assert ring.T_source == "given by the user"
    assert m.fisher_lee(out["angle"], TWO_PI * a) > 0.99
    assert m.circular_mae_hours(out["hours"], 27.0 * a, 27.0) < 0.5
    assert ((out["hours"] >= 0) & (out["hours"] <= 27.0)).all()


def test_orientation_from_predicted_classes_without_labels():
    rng = np.random.default_rng(6)
    a = era_ages(rng, 4000)
    # a 'network' whose class scores fall off with the circular distance to each class's age interval,
    # so its argmax agrees with the FUCCI classes, as a trained classifier's should
    bounds = {0: (0.0, 0.15), 1: (0.15, 0.4), 3: (0.4, 0.5), 2: (0.5, 1.0)}
    logits = np.zeros((a.size, 4))
    for k, (lo, hi) in bounds.items():
        mid, half = (lo + hi) / 2, (hi - lo) / 2
        dist = np.maximum(np.abs(m.circular_difference(a, mid)) - half, 0.0)
        logits[:, k] = -20.0 * dist + rng.normal(0, 0.3, a.size)
    X = np.log(np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True) + 1e-7)
    assert (np.argmax(X, axis=1) == class_of_age(a)).mean() > 0.9
    ring = tr.fit_ring(X)  # no labels: the argmax of the descriptors orients the ring
    p = ring.transform(X)["pseudotime"].to_numpy()
    assert ring.info["orientation_classes"].startswith("predicted")
    assert m.fisher_lee(TWO_PI * p, TWO_PI * a) > 0.99
    assert m.circular_mae(p, a) < 0.03


def fucci_like_labels(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The paper's median-split classes of FUCCI levels with realistic dynamics (as in the simulator).

    Cdt1 (red) rises in mid G1 and is degraded at S onset (age 0.37); Geminin (green) rises slowly from
    G1/S and is degraded at anaphase. Because green is split at its median *within* the red-low half,
    low/low holds early-G1 AND early-S cells: class 0 is not one arc.
    """
    g1 = 0.37
    red = 1.0 / (1.0 + np.exp(-(a - 0.45 * g1) / 0.035)) * np.exp(-np.clip(a - g1, 0, None) * 27 / 0.3)
    green = (1.0 - np.exp(-np.clip(a - g1 + 0.03, 0, None) * 27 / 8.0)) * np.exp(-np.clip(a - 0.99, 0, None) * 27 / 0.12)
    red = red * rng.lognormal(0, 0.3, a.size) + rng.normal(0, 0.03, a.size)
    green = green * rng.lognormal(0, 0.3, a.size) + rng.normal(0, 0.03, a.size)
    red_high = red > np.median(red)
    green_high = np.zeros(a.size, bool)
    for half in (red_high, ~red_high):
        green_high[half] = green[half] > np.median(green[half])
    return np.select([red_high & green_high, red_high, green_high], [3, 1, 2], 0)


@pytest.mark.parametrize("reflect", [False, True])
def test_orientation_with_median_split_labels(reflect):
    rng = np.random.default_rng(21 + reflect)
    a = era_ages(rng, 8000)
    cls = fucci_like_labels(a, rng)
    early_s = (a > 0.4) & (a < 0.6)
    assert (cls[early_s] == 0).mean() > 0.3  # low/low really is split in two arcs
    X = noisy_circle_4d(rng, a, reflect)
    ring = tr.fit_ring(X, cls, T_hours=27.0)
    out = ring.transform(X)
    assert m.fisher_lee(out["angle"], TWO_PI * a) > 0.99
    assert m.circular_mae(out["pseudotime"], a) < 0.02  # origin at division, not at the S-phase step
    assert m.circular_mae_hours(out["hours"], 27.0 * a, 27.0) < 0.6
    som = (out["som_node"] + 0.5) / 30
    # SOM nodes spread by density (young cells are commoner), so node index is not age-uniform
    assert m.fisher_lee(TWO_PI * som, TWO_PI * a) > 0.98 and m.circular_mae(som, a) < 0.07


def test_orient_known_answer_and_reversal():
    rng = np.random.default_rng(2)
    a = rng.uniform(0, 1, 2000)
    cls = class_of_age(a)
    raw = (a + 0.3) % 1.0  # origin at raw 0.3, forward
    o = tr.orient(raw, cls)
    assert o.direction == 1 and abs(m.circular_difference(o.origin, 0.3)) < 0.005
    assert np.allclose(m.circular_difference(o.apply(raw), a), 0, atol=0.005)
    raw_rev = (0.6 - a) % 1.0  # reflected: origin at raw 0.6, backward
    o = tr.orient(raw_rev, cls)
    assert o.direction == -1 and abs(m.circular_difference(o.origin, 0.6)) < 0.005
    assert np.allclose(m.circular_difference(o.apply(raw_rev), a), 0, atol=0.005)


def test_som_nodes_follow_the_ring():
    rng = np.random.default_rng(8)
    a = rng.uniform(0, 1, 3000)
    X = noisy_circle_4d(rng, a, reflect=True)
    ring = tr.fit_ring(X, class_of_age(a))
    assert ring.som_nodes.shape == (30, 2)
    node_p = ring.pseudotime(ring.som_nodes)
    steps = m.circular_difference(np.roll(node_p, -1), node_p)
    assert (steps > 0).all()  # node index increases along the ring, forward
    assert node_p[0] < 0.05 or node_p[0] > 0.98  # node 0 sits at division
    out = ring.transform(X)
    assert out["som_node"].between(0, 29).all()
    centre = (out["som_node"] + 0.5) / 30  # node k covers [k/30, (k+1)/30) of the ring
    assert m.fisher_lee(TWO_PI * centre, TWO_PI * a) > 0.98
    assert m.circular_mae(centre, a) < 0.03


def test_errors_are_clear():
    rng = np.random.default_rng(9)
    a = rng.uniform(0, 1, 600)
    X = noisy_circle_4d(rng, a, reflect=False)
    cls = class_of_age(a)
    with pytest.raises(ValueError, match="only 50 cells"):
        tr.fit_ring(X[:50], cls[:50])
    bad = X.copy()
    bad[7, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        tr.fit_ring(bad, cls)
    no3 = np.where(cls == 3, 1, cls)
    with pytest.raises(ValueError, match="class 3"):
        tr.fit_ring(X, no3)
    with pytest.raises(ValueError, match="do not order the cycle"):
        tr.fit_ring(X, rng.integers(0, 4, a.size))
    with pytest.raises(ValueError, match="argmax"):
        tr.fit_ring(X[:, :3])
    with pytest.raises(ValueError, match="shape"):
        tr.fit_ring(X[:, 0])
    ring = tr.fit_ring(X, cls)
    with pytest.raises(ValueError, match="columns"):
        ring.transform(X[:, :3])


def test_ring_save_load_roundtrip(tmp_path):
    rng = np.random.default_rng(10)
    a = rng.uniform(0, 1, 1500)
    X = noisy_circle_4d(rng, a, reflect=False)
    ring = tr.fit_ring(X, class_of_age(a), T_hours=25.0)
    path = ring.save(tmp_path / "ring.json")
    back = tr.load_ring(path)
    pd.testing.assert_frame_equal(ring.transform(X), back.transform(X))
    assert back.T_hours == 25.0 and back.T_source == "given by the user"
    with pytest.raises(FileNotFoundError, match="no fitted ring"):
        tr.load_ring(tmp_path / "missing.json")


# --- the stage on a tiny run folder --------------------------------------------------------------


def test_run_trajectory_stage(tmp_path):
    rng = np.random.default_rng(12)
    run, X, held = _make_run(tmp_path, rng)
    out, ring = tr.run_trajectory(run)
    assert list(out.columns) == ["cell_id", "x2d", "y2d", "angle", "pseudotime", "hours", "som_node"]
    assert len(out) == len(X) and (out["cell_id"].to_numpy() == np.arange(len(X))).all()
    assert ring.T_hours == pytest.approx(20.0, rel=0.05) and ring.T_source.startswith("growth curve")
    assert ring.info["n_cells"] == int((~held).sum())  # fitted without the held-out cells
    cls = pd.read_parquet(run.store / "cells.parquet")["class"].to_numpy()
    direct = tr.fit_ring(X[~held], cls[~held])
    np.testing.assert_allclose(ring.curve, direct.curve)
    saved = pd.read_parquet(run.trajectory / "trajectory.parquet")
    pd.testing.assert_frame_equal(saved, out)
    meta = json.loads((run.trajectory / "ring.json").read_text())
    assert meta["T_source"].startswith("growth curve") and len(meta["som_nodes"]) == 30
    assert abs(meta["direction"]["score"]) > 1 and meta["origin"]["score"] > 1
    assert not list(run.trajectory.glob(".*tmp*"))  # atomic writes leave no temporaries


def test_cli_with_given_doubling_time(tmp_path, capsys):
    # the sub-command alone (the full `deepcycle` parser imports every stage, torch included: slow)
    import argparse

    parser = argparse.ArgumentParser(prog="deepcycle")
    tr.register_cli(parser.add_subparsers(dest="command", required=True))
    rng = np.random.default_rng(13)
    run, _, _ = _make_run(tmp_path, rng)
    args = parser.parse_args(["trajectory", "--run", str(run.root), "--hours-T", "26"])
    assert args.func(args) == 0
    assert "T = 26 h (given by the user)" in capsys.readouterr().out
    assert tr.load_ring(run.trajectory / "ring.json").T_hours == 26.0
    (run.embed / "descriptors.parquet").unlink()
    args = parser.parse_args(["trajectory", "--run", str(run.root)])
    with pytest.raises(FileNotFoundError, match="no descriptors"):
        args.func(args)
