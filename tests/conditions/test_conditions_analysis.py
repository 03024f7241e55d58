"""Reading treated populations: phase calls, the read-out, the arcs and the field-level tests."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from deepcycle_core.conditions.circular_tests import (
    field_bootstrap, field_permutation_test, watson_u2, watson_u2_asymptotic_p,
)
from deepcycle_core.conditions.phase_arcs import calibrate_arcs
from deepcycle_core.conditions.phase_calls import PHASE_GROUPS, call_phases, phase_group
from deepcycle_core.conditions.phase_readout import fit_phase_readout


def _synthetic_tracks(n_tracks: int = 40, seed: int = 0, s_hours: float = 8.0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Tracks born in the movie, every 10 min: Cdt1 rises in G1, peaks at G1/S, is degraded in S; DNA
    (x a per-track stain) ramps 1 -> 2 over ``s_hours``. Returns cells, dna and the true phase."""
    rng = np.random.default_rng(seed)
    rows, dna, truth = [], [], []
    for k in range(n_tracks):
        g1 = rng.uniform(8, 12)
        cycle = g1 + s_hours + rng.uniform(5, 7)
        t = np.arange(0, cycle, 1 / 6)
        red = np.where(t < g1, 0.2 + t / g1, np.exp(-(t - g1) / 0.3) * 1.2) * rng.uniform(0.7, 1.3)
        red = red * (1 + rng.normal(0, 0.05, t.size))
        content = 1 + np.clip((t - g1) / s_hours, 0, 1)
        dna.append(content * rng.uniform(800, 1200) * (1 + rng.normal(0, 0.04, t.size)))
        truth.append(np.where(t < g1, "G1", np.where(t < g1 + s_hours, "S", "G2/M")))
        rows.append(pd.DataFrame({"track_id": k, "time_h": t + rng.uniform(0, 5), "fucci_red": red}))
    cells = pd.concat(rows, ignore_index=True)
    return cells, np.concatenate(dna), np.concatenate(truth)


def test_phase_calls_find_g1_s_and_g2m_along_tracks():
    cells, dna, truth = _synthetic_tracks()
    shuffled = np.random.default_rng(1).permutation(len(cells))  # any row order
    calls = call_phases(cells.iloc[shuffled].reset_index(drop=True), dna[shuffled])
    truth = truth[shuffled]
    called = calls != ""
    assert called.mean() > 0.9
    assert set(calls[called]) == set(PHASE_GROUPS)
    agree = (calls[called] == truth[called]).mean()
    assert agree > 0.95, agree


def test_phase_calls_leave_tracks_without_a_cdt1_fall_uncalled():
    cells, dna, _ = _synthetic_tracks(n_tracks=8)
    g1_only = cells["time_h"] - cells.groupby("track_id")["time_h"].transform("min") < 6  # before any G1/S
    calls = call_phases(cells[g1_only].reset_index(drop=True), dna[g1_only.to_numpy()])
    assert (calls == "").all()
    with pytest.raises(ValueError, match="fucci_red"):
        call_phases(cells.drop(columns="fucci_red"), dna)
    with pytest.raises(ValueError, match="shape"):
        call_phases(cells, dna[:-1])


def test_phase_group_folds_g2_and_m():
    assert phase_group(pd.Series(["G1", "S", "G2", "M"])).tolist() == ["G1", "S", "G2/M", "G2/M"]


def _readout_table(phases: np.ndarray, rng: np.random.Generator, noise: float = 0.25) -> pd.DataFrame:
    """Network-like outputs: a class pattern per phase and a clock angle in the phase's arc, with noise."""
    centre = {"G1": 0.18, "S": 0.52, "G2/M": 0.83}
    pos = np.array([centre[p] for p in phases]) + rng.normal(0, 0.06, phases.size)
    cls = {"G1": [0, -3, -3, -1], "S": [-3, 0, -1, -3], "G2/M": [-3, -1, 0, -3]}
    d = np.array([cls[p] for p in phases], dtype=float) + rng.normal(0, noise * 4, (phases.size, 4))
    return pd.DataFrame({"d0": d[:, 0], "d1": d[:, 1], "d2": d[:, 2], "d3": d[:, 3],
                         "cycle_cos": np.cos(2 * np.pi * pos), "cycle_sin": np.sin(2 * np.pi * pos), "clock": pos % 1})


def test_phase_readout_recovers_shifted_phase_shares():
    rng = np.random.default_rng(0)
    control = rng.choice(np.array(PHASE_GROUPS), 3000, p=[0.4, 0.35, 0.25])
    readout = fit_phase_readout(_readout_table(control, rng), control)
    assert np.allclose(readout.calibration_shares, [0.4, 0.35, 0.25], atol=0.03)
    treated = rng.choice(np.array(PHASE_GROUPS), 3000, p=[0.7, 0.2, 0.1])
    shares = readout.shares(_readout_table(treated, rng))
    assert np.abs(shares - [0.7, 0.2, 0.1]).max() < 0.04, shares
    assert (readout.calls(_readout_table(treated, rng)) == treated).mean() > 0.85
    with pytest.raises(ValueError, match="too few"):
        fit_phase_readout(_readout_table(control[:30], rng), control[:30])
    with pytest.raises(ValueError, match="network outputs"):
        readout.shares(pd.DataFrame({"d0": [0.0]}))


def test_arcs_cut_the_clock_where_the_calls_change():
    rng = np.random.default_rng(0)
    phases = rng.choice(np.array(PHASE_GROUPS), 4000, p=[0.4, 0.35, 0.25])
    table = _readout_table(phases, rng)
    arcs = calibrate_arcs(table["clock"].to_numpy(), phases)
    assert 0.3 < arcs.cuts[0] < 0.4 and 0.65 < arcs.cuts[1] < 0.72
    assert np.allclose(arcs.raw_shares(table["clock"].to_numpy()), [0.4, 0.35, 0.25], atol=0.01)
    assert np.all(np.diag(arcs.misreading) > 0.9)
    assert arcs.arc_of(np.array([0.0, 0.5, 0.99, 1.2])).tolist() == [0, 1, 2, 0]


def test_watson_u2_is_zero_for_equal_samples_rotation_invariant_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    a = rng.vonmises(0, 2, 300) / (2 * np.pi)
    b = rng.vonmises(0, 2, 400) / (2 * np.pi)
    assert watson_u2(a, a) == pytest.approx(0.0, abs=1e-12)
    assert watson_u2(a + 0.37, b + 0.37) == pytest.approx(watson_u2(a, b), rel=1e-9)
    assert watson_u2(a, b + 0.25) > 10 * watson_u2(a, b)
    # the asymptotic tail: U2 = 0.187 is the 5 % point for independent samples (Watson 1962)
    assert watson_u2_asymptotic_p(0.187) == pytest.approx(0.05, abs=0.003)
    with pytest.raises(ValueError):
        watson_u2(a, [])


def _clustered(rng: np.random.Generator, n_fields: int, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Cells whose field moves them all together (a field effect of sd 0.05 turns) plus a group shift."""
    values, fields = [], []
    for f in range(n_fields):
        centre = rng.normal(0, 0.05) + shift
        values.append(rng.vonmises(0, 3, 150) / (2 * np.pi) + centre)
        fields.append(np.full(150, f))
    return np.concatenate(values), np.concatenate(fields)


def test_field_permutation_test_holds_its_level_where_counting_cells_does_not():
    rng = np.random.default_rng(0)
    reject_field, reject_naive = 0, 0
    reps = 60
    for _ in range(reps):
        a, fa = _clustered(rng, 5)
        b, fb = _clustered(rng, 5)
        res = field_permutation_test(a, fa, b, fb)
        assert res.exact and res.n_permutations == math.comb(10, 5)
        reject_field += res.p_value <= 0.05
        reject_naive += watson_u2_asymptotic_p(res.statistic) <= 0.05
    assert reject_field / reps <= 0.12  # nominal 0.05, binomial sd ~0.03 over 60 repeats
    assert reject_naive / reps > 0.3  # cells are not independent: the naive test rejects often
    a, fa = _clustered(rng, 5)
    b, fb = _clustered(rng, 5, shift=0.3)
    assert field_permutation_test(a, fa, b, fb).p_value <= 2 / math.comb(10, 5) + 1e-12
    with pytest.raises(ValueError, match="2 fields"):
        field_permutation_test(a, np.zeros_like(fa), b, fb)


def test_field_bootstrap_interval_covers_the_difference():
    rng = np.random.default_rng(0)
    ga = [rng.normal(1.0, 1.0, 100) + rng.normal(0, 0.2) for _ in range(6)]
    gb = [rng.normal(0.0, 1.0, 100) + rng.normal(0, 0.2) for _ in range(6)]
    est, lo, hi = field_bootstrap([ga, gb], lambda a, b: np.array([a.mean() - b.mean()]), n_boot=400)
    assert lo[0] < est[0] < hi[0]
    assert lo[0] < 1.0 < hi[0] and lo[0] > 0.3
    with pytest.raises(ValueError, match="2 fields"):
        field_bootstrap([ga[:1], gb], lambda a, b: np.array([0.0]))


def test_compare_names_the_phase_that_rises_and_checks_era():
    from deepcycle_core.conditions import analysis as cond

    rng = np.random.default_rng(3)

    def population(p, fields=4):
        parts = []
        for f in range(fields):
            ph = rng.choice(np.array(PHASE_GROUPS), 300, p=p)
            t = _readout_table(ph, rng)
            t["field"] = f
            t["true_phase"] = np.where(ph == "G2/M", "G2", ph)
            parts.append(t)
        return pd.concat(parts, ignore_index=True)

    control = population([0.45, 0.3, 0.25])
    readout = fit_phase_readout(control, phase_group(control["true_phase"]))
    treated = population([0.75, 0.15, 0.10])
    r = cond.compare(treated, population([0.45, 0.3, 0.25]), readout, n_boot=200)
    assert r.named_phase == "G1" == r.true_phase
    assert r.delta_low[0] > 0.15 and r.delta_high[1] < 0  # G1 up, S down, intervals exclude 0
    assert r.test.exact and r.test.p_value <= 2 / math.comb(8, 4) + 1e-12
    rows = pd.DataFrame(cond.comparison_rows("g1", "both", r))
    assert list(rows["phase"]) == list(PHASE_GROUPS) and rows["error_pp"].abs().max() < 5
    with pytest.raises(ValueError, match="true_age_h"):
        cond.era_check(treated, 27.0)
    ok = treated.assign(true_age_h=treated["clock"] * 27.0, true_cycle_h=27.0)
    era = cond.era_check(ok, 27.0)
    assert era["clock_mae_h"] < 1e-9 and era["era_mae_h"] > 1.0  # ERA misplaces a non-steady population


def test_the_phase_readout_is_fitted_to_its_optimum_so_shares_hold_on_every_cpu():
    """The read-out's fit converges to the one optimum of its (strictly convex) loss. Stopped at sklearn's
    default tolerance it sat ~3e-3 away from it on outputs like the networks' (four log-probabilities
    and cos/sin), and where it stopped depended on the networks' last bits: one CPU's vector units moved
    a population's share by 1.6e-4 and a printed share flipped. At the optimum that move is ~2e-7."""
    from sklearn.linear_model import LogisticRegression

    from deepcycle_core.conditions.phase_readout import READOUT_COLUMNS

    rng = np.random.default_rng(0)
    n = 2000
    phase = rng.choice(["G1", "S", "G2/M"], n, p=[0.5, 0.3, 0.2])
    centre = {"G1": 0.2, "S": 0.55, "G2/M": 0.85}
    ang = 2 * np.pi * (np.array([centre[p] for p in phase]) + rng.normal(0, 0.08, n))
    logits = rng.normal(0, 1.5, (n, 4)) + 3 * np.stack([np.cos(ang), np.sin(ang), -np.cos(ang), -np.sin(ang)], 1)
    d = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    X = np.column_stack([d, np.cos(ang), np.sin(ang)])
    table = pd.DataFrame(X, columns=list(READOUT_COLUMNS))
    optimum = LogisticRegression(tol=1e-14, max_iter=100_000).fit(X, phase).predict_proba(X)
    fitted = fit_phase_readout(table, phase).model.predict_proba(X)
    assert np.abs(fitted - optimum).max() < 1e-7
    nudged = fit_phase_readout(table * (1 + 1e-7 * rng.standard_normal(X.shape)), phase)
    assert np.abs(nudged.shares(table) - fit_phase_readout(table, phase).shares(table)).max() < 1e-5
