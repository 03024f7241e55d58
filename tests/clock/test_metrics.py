"""Circular statistics and track correlations on cases with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from deepcycle_core.clock import metrics as m

TWO_PI = 2 * np.pi


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


def test_fisher_lee_o_n_matches_pair_definition(rng):
    a = rng.uniform(0, TWO_PI, 200)
    b = (a + rng.normal(0, 0.8, 200)) % TWO_PI
    assert m.fisher_lee(a, b) == pytest.approx(m.fisher_lee_pairs(a, b), abs=1e-10)
    c = rng.uniform(0, TWO_PI, 200)
    assert m.fisher_lee(a, c) == pytest.approx(m.fisher_lee_pairs(a, c), abs=1e-10)


def test_fisher_lee_known_values_and_invariances(rng):
    a = rng.uniform(0, TWO_PI, 500)
    assert m.fisher_lee(a, a) == pytest.approx(1.0)
    # rotation of either sample does not matter; reflection flips the sign
    assert m.fisher_lee(a, (a + 2.0) % TWO_PI) == pytest.approx(1.0)
    assert m.fisher_lee((a + 1.0) % TWO_PI, (-a + 0.3) % TWO_PI) == pytest.approx(-1.0)
    # independent angles: near zero
    assert abs(m.fisher_lee(a, rng.uniform(0, TWO_PI, 500))) < 0.15
    # more noise, lower correlation
    r_small = m.fisher_lee(a, a + rng.normal(0, 0.2, 500))
    r_big = m.fisher_lee(a, a + rng.normal(0, 1.0, 500))
    assert 1.0 > r_small > r_big > 0


def test_jammalamadaka_sengupta(rng):
    a = rng.vonmises(1.0, 2.0, 400)
    assert m.jammalamadaka_sengupta(a, a) == pytest.approx(1.0)
    assert m.jammalamadaka_sengupta(a, (a + 1.5) % TWO_PI) == pytest.approx(1.0)
    assert m.jammalamadaka_sengupta(a, -a) == pytest.approx(-1.0)
    assert m.jammalamadaka_sengupta(a, a + rng.normal(0, 0.3, 400)) > 0.8


def test_correlation_errors():
    with pytest.raises(ValueError, match="NaN"):
        m.fisher_lee([0.1, np.nan, 0.3], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="length"):
        m.fisher_lee([0.1, 0.2, 0.3], [0.1, 0.2])
    with pytest.raises(ValueError, match="spread"):
        m.fisher_lee(np.zeros(10), np.linspace(0, 6, 10))


def test_circular_mean():
    # the mean of 359.9° and 0.1° is 0°, not 180°
    assert abs(m.circular_difference(m.circular_mean([TWO_PI - 0.1, 0.1]), 0.0, TWO_PI)) < 1e-12
    assert m.circular_mean([1.0, 1.2, 1.4]) == pytest.approx(1.2)


def test_circular_mae_wraps_and_per_cell_period():
    # 26.5 h and 0.5 h are 1 h apart on a 27 h cycle
    assert m.circular_mae_hours([26.5], [0.5], 27.0) == pytest.approx(1.0)
    assert m.circular_mae_hours([10.0, 20.0], [12.0, 19.0], 27.0) == pytest.approx(1.5)
    # per-cell cycle lengths: 29 vs 1 is 2 h apart on a 30 h cycle, 28 h apart on a 60 h cycle
    assert m.circular_mae_hours([29.0, 29.0], [1.0, 1.0], [30.0, 60.0]) == pytest.approx((2.0 + 28.0) / 2)
    d = m.circular_difference([0.95, 0.05], [0.05, 0.95])
    assert np.allclose(d, [-0.1, 0.1])
    # worst possible error is half a cycle
    rng = np.random.default_rng(0)
    assert m.circular_mae(rng.uniform(0, 1, 1000), rng.uniform(0, 1, 1000)) == pytest.approx(0.25, abs=0.02)
    with pytest.raises(ValueError, match="period"):
        m.circular_mae([1.0], [1.0], 0.0)


def _track_table(rng, n_tracks=8, noise=0.0, offset_frac=0.0):
    rows = []
    for tid in range(n_tracks):
        T = rng.uniform(24, 30)
        t = np.arange(0, T, 1 / 6)
        p = (t / T + offset_frac + rng.normal(0, noise, t.size)) % 1.0
        rows.append(pd.DataFrame({"track_id": tid, "time_h": 5.0 + t, "pseudotime": p}))
    return pd.concat(rows, ignore_index=True).sample(frac=1.0, random_state=1)  # order must not matter


def test_per_track_correlations_perfect_and_wrapped(rng):
    # clocks that cross the origin mid-track (offset 0.4) are unwrapped: still perfect
    df = _track_table(rng, offset_frac=0.4)
    out = m.per_track_correlations(df)
    assert len(out) == 8
    assert np.allclose(out["spearman"], 1.0)
    assert np.allclose(out["pearson"], 1.0)
    assert (out["duration_h"] > 23).all()


def test_per_track_correlations_noise_and_short_tracks(rng):
    df = _track_table(rng, noise=0.03)
    short = pd.DataFrame({"track_id": 99, "time_h": [0.0, 1.0], "pseudotime": [0.1, 0.2]})
    out = m.per_track_correlations(pd.concat([df, short]), min_points=5)
    assert 99 not in set(out["track_id"])
    assert (out["spearman"] > 0.95).all() and (out["spearman"] < 1.0).all()
    with pytest.raises(ValueError, match="lacks column"):
        m.per_track_correlations(df.drop(columns="time_h"))


def test_paper_average_curve(rng):
    # clocks that start a little after division so that noise never wraps them (the paper averaged
    # raw, wrapped values: a cell read at 0.99 right after birth would drag the mean curve)
    df = _track_table(rng)
    df["pseudotime"] = np.clip(0.03 + 0.94 * df["pseudotime"] + rng.normal(0, 0.01, len(df)), 0, 0.999)
    res = m.paper_average_curve(df, n_points=100)
    assert res["n_tracks"] == 8
    assert res["relative_time"].shape == (100,) and res["mean_curve"].shape == (100,)
    assert res["spearman"] > 0.99 and res["kendall"] > 0.9
    # a reversed clock gives negative statistics
    rev = df.assign(pseudotime=(1.0 - df["pseudotime"]) % 1.0)
    assert m.paper_average_curve(rev)["spearman"] < -0.9
    with pytest.raises(ValueError, match="no track"):
        m.paper_average_curve(df.iloc[:0])


def test_the_unwrapped_curve_aligns_every_track_to_one_turn():
    """Full-cycle tracks read near division at birth, some just before the origin (0.98), some just after
    (0.02): unwrapped, each is shifted by whole turns to start in [-0.5, 0.5), so the averaged curve
    starts at 0 with a spread of a hundredth of a turn and rises by one turn. Without that alignment the
    statistic is unchanged (the mean curve still rises) but the written curve and its spread are wrong
    (about 0.3 +- 0.45 at t = 0)."""
    rows = []
    for tid in range(20):
        T = 24.0 + tid % 5
        t = np.arange(0, T, 1 / 6)
        start = (0.98, 0.02)[tid % 2] if tid < 14 else 0.99
        rows.append(pd.DataFrame({"track_id": tid, "time_h": t, "pseudotime": (start + t / T) % 1.0}))
    df = pd.concat(rows, ignore_index=True)
    res = m.paper_average_curve(df, n_points=50, unwrap=True)
    assert res["mean_curve"][0] == pytest.approx(0.0, abs=0.02)
    assert res["std_curve"][0] < 0.02
    assert res["mean_curve"][-1] - res["mean_curve"][0] == pytest.approx(1.0, abs=0.05)
    np.testing.assert_array_less(res["std_curve"], 0.03)  # every track in the same turn all along
    assert res["spearman"] == pytest.approx(1.0)


def test_grouped_spearman_matches_the_per_track_statistic():
    """The vectorised per-group Spearman gives the per-track statistic's numbers (unwrapping included),
    in any row order, and drops the groups that statistic drops."""
    rng = np.random.default_rng(4)
    rows = []
    for tid in range(40):
        n = int(rng.integers(2, 30))
        t = np.sort(rng.choice(200, n, replace=False)) / 6.0
        p = (rng.uniform() + np.sign(rng.normal()) * t / 24.0 + rng.normal(0, 0.03, n)) % 1.0
        rows.append(pd.DataFrame({"track_id": tid, "time_h": t, "pseudotime": p}))
    df = pd.concat(rows, ignore_index=True).sample(frac=1.0, random_state=1)
    ref = m.per_track_correlations(df).set_index("track_id")
    fast = m.grouped_spearman(df["track_id"], df["time_h"], df["pseudotime"]).set_index("group")
    assert sorted(fast.index) == sorted(ref.index) and len(ref) > 20
    np.testing.assert_allclose(fast.loc[ref.index, "spearman"], ref["spearman"], atol=1e-9)
    np.testing.assert_allclose(fast.loc[ref.index, "duration_h"], ref["duration_h"])
    assert (fast.loc[ref.index, "n"] == ref["n"]).all()
