"""Scoring: the metrics of one method on known cases, coverage, phases, targets and the table text.

Pure functions of tables (deepcycle_core.validation.scoring): no run folder, no store, no network.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from deepcycle_core.validation import scoring as s


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


def test_score_predictions_perfect_clock():
    truth = _truth()
    pred = pd.DataFrame({"cell_id": truth["cell_id"], "pseudotime": truth["true_age"], "hours": truth["true_age_h"]})
    row, tracks, curves = s.score_predictions(pred, truth)
    assert row["n_tracks"] == 12 and row["n_cells"] == len(truth)
    assert row["track_spearman_median"] == pytest.approx(1.0)
    assert row["fisher_lee"] == pytest.approx(1.0)
    assert row["circ_mae_h"] == pytest.approx(0.0, abs=1e-9)
    assert row["hours_mae_h"] == pytest.approx(0.0, abs=1e-9)
    assert row["paper_spearman"] == pytest.approx(1.0)
    assert row["paper_spearman_unwrapped"] == pytest.approx(1.0)
    assert len(tracks) == 12 and (tracks["spearman"] > 0.999).all()
    assert len(curves) == 100 and (curves["n_tracks"] == 12).all()
    np.testing.assert_allclose(curves["mean_unwrapped"], curves["relative_time"], atol=0.05)


def test_score_predictions_wrong_origin_costs_mae_not_correlation():
    truth = _truth()
    shifted = (truth["true_age"] + 0.1) % 1.0
    pred = pd.DataFrame({"cell_id": truth["cell_id"], "pseudotime": shifted})
    row, _, _ = s.score_predictions(pred, truth)
    # rotation-invariant correlation stays perfect, the error is 0.1 of each cell's own cycle
    assert row["fisher_lee"] == pytest.approx(1.0)
    expected = float((0.1 * truth["true_cycle_h"]).mean())
    assert row["circ_mae_h"] == pytest.approx(expected, rel=1e-6)
    assert np.isnan(row["hours_mae_h"])  # no hours column: no hours error
    assert np.isnan(row["interval80_cover"]) and np.isnan(row["width_error_spearman"])  # no intervals
    # per-track correlation unwraps the crossing of the origin
    assert row["track_spearman_median"] == pytest.approx(1.0)


def test_score_predictions_reversed_clock_is_negative():
    truth = _truth()
    pred = pd.DataFrame({"cell_id": truth["cell_id"], "pseudotime": (1.0 - truth["true_age"]) % 1.0})
    row, tracks, _ = s.score_predictions(pred, truth)
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
    row, tracks, curves = s.score_predictions(pred, truth)
    assert row["paper_spearman"] > 0.4  # the raw statistic is fooled
    assert row["paper_spearman_unwrapped"] == pytest.approx(-1.0)
    assert row["paper_kendall_unwrapped"] == pytest.approx(-1.0)
    assert row["track_spearman_median"] < -0.99  # and agrees with the per-track statistic
    assert curves["mean_unwrapped"].iloc[-1] < curves["mean_unwrapped"].iloc[0] - 0.9


def test_score_predictions_needs_truth_columns():
    truth = _truth().drop(columns=["true_cycle_h"])
    pred = pd.DataFrame({"cell_id": truth["cell_id"], "pseudotime": 0.5})
    with pytest.raises(ValueError, match="true_cycle_h"):
        s.score_predictions(pred, truth)


def test_phase_breakdown_shows_which_phases_are_confused():
    truth = _truth(n_tracks=30)
    ref = s.phase_reference(truth)
    pred = pd.DataFrame({"cell_id": truth["cell_id"], "pseudotime": truth["true_age"]})
    phases, conf = s.phase_breakdown(pred, truth, ref)
    assert list(phases["phase"]) == ["G1", "S", "G2", "M"]
    assert phases["mae_h"].max() == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(np.diag(conf.to_numpy()), 1.0, atol=0.1)
    # a clock late by 0.2 turns puts late-G1 cells into S and most M cells into G1 after division
    late = pred.assign(pseudotime=(truth["true_age"] + 0.2) % 1.0)
    phases, conf = s.phase_breakdown(late, truth, ref)
    assert phases["bias_h"].gt(0).all()
    assert conf.loc["M", "G1"] > 0.9
    assert conf.loc["G1", "S"] > 0.3
    np.testing.assert_allclose(conf.sum(axis=1), 1.0)


_GOOD = {"worst_tenth_mae_h": 2.0, "interval80_cover": 0.8}


def test_check_targets_pass_and_miss_with_gaps():
    table = pd.DataFrame([
        {"method": "deepcycle", "track_spearman_median": 0.97, "fisher_lee": 0.65, "circ_mae_h": 1.0, "hours_mae_h": 2.5,
         "worst_tenth_mae_h": 2.7, "interval80_cover": 0.9},
        {"method": "handmade", "track_spearman_median": 0.5, "fisher_lee": 0.5, "circ_mae_h": 3.0, "hours_mae_h": 4.0},
        {"method": "supervised_features", "track_spearman_median": 0.5, "fisher_lee": 0.5, "circ_mae_h": 1.1},
        {"method": "pixels_pca", "track_spearman_median": 0.5, "fisher_lee": 0.5, "circ_mae_h": 1.1, "hours_mae_h": 4.0},
    ])
    res = s.check_targets(table, method="deepcycle").set_index("target")
    assert res.loc["track_spearman_median >= 0.95", "status"] == "PASS"
    assert res.loc["track_spearman_median >= 0.95", "gap"] == pytest.approx(0.02)
    assert res.loc["fisher_lee >= 0.7", "status"] == "MISS"
    assert res.loc["fisher_lee >= 0.7", "gap"] == pytest.approx(-0.05)
    assert res.loc["circ_mae_h <= 1.8", "gap"] == pytest.approx(0.8)
    assert res.loc["hours_mae_h <= 2", "status"] == "MISS"
    assert res.loc["worst_tenth_mae_h <= 2.5", "gap"] == pytest.approx(-0.2)
    # coverage has to land in [0.75, 0.85]: too wide intervals (0.9) miss the upper side only
    assert res.loc["interval80_cover >= 0.75", "status"] == "PASS"
    assert res.loc["interval80_cover <= 0.85", "status"] == "MISS"
    assert res.filter(like="handmade", axis=0)["status"].item() == "PASS"
    # the supervised baseline is a rival; the raw-pixel ring is no longer one
    assert res.filter(like="supervised_features", axis=0)["status"].item() == "MISS"
    assert not res.index.str.startswith("pixels_pca").any()
    with pytest.raises(ValueError, match="not in the table"):
        s.check_targets(table, method="nope")


def test_a_baseline_without_ring_is_no_comparison():
    table = pd.DataFrame([
        {"method": "deepcycle", "track_spearman_median": 0.97, "fisher_lee": 0.95, "circ_mae_h": 1.0, "hours_mae_h": 1.5, "note": ""},
        {"method": "handmade", "circ_mae_h": np.nan, "note": "no ring: classes do not order the cycle"},
    ])
    res = s.check_targets(table, method="deepcycle").set_index("target")
    assert res.filter(like="handmade", axis=0)["status"].item() == "NO RING"


def test_a_row_that_used_ground_truth_never_passes():
    """Numbers that would pass every target do not, once the row is marked as having used the truth."""
    good = {"method": "deepcycle", "track_spearman_median": 0.99, "fisher_lee": 0.99, "circ_mae_h": 0.5,
            "hours_mae_h": 0.5, **_GOOD}
    base = {"method": "handmade", "track_spearman_median": 0.5, "fisher_lee": 0.5, "circ_mae_h": 5.0, "hours_mae_h": 5.0}
    honest = s.check_targets(pd.DataFrame([{**good, "used_truth": False}, {**base, "used_truth": False}]), method="deepcycle")
    assert (honest["status"] == "PASS").all()
    helped = s.check_targets(pd.DataFrame([{**good, "used_truth": True}, {**base, "used_truth": False}]), method="deepcycle")
    assert not (helped["status"] == "PASS").any()
    assert (helped["status"] == "TRUTH").all()
    assert "USED GROUND TRUTH" in s.format_table(pd.DataFrame([{**good, "used_truth": True, "note": "", "label": ""}]))


def test_a_ring_the_movie_shows_is_no_clock_never_passes():
    """A folded or reversed ring (judged along the fitting tracks) never passes, whatever its numbers."""
    good = {"method": "deepcycle", "track_spearman_median": 0.99, "fisher_lee": 0.99, "circ_mae_h": 0.5,
            "hours_mae_h": 0.5, "used_truth": False, **_GOOD}
    base = {"method": "handmade", "circ_mae_h": 5.0, "used_truth": False, "ring": "clock"}
    assert (s.check_targets(pd.DataFrame([{**good, "ring": "clock"}, base]), method="deepcycle")["status"] == "PASS").all()
    for verdict in ("folded", "reversed"):
        res = s.check_targets(pd.DataFrame([{**good, "ring": verdict}, base]), method="deepcycle")
        assert (res["status"] == "NO CLOCK").all(), verdict


def test_the_clock_head_must_beat_the_papers_read_outs_too():
    """Checked on our clock (the default), the paper's ring and SOM are rivals like the baselines."""
    row = {"track_spearman_median": 0.99, "fisher_lee": 0.99, "hours_mae_h": 0.5, "ring": "clock", "used_truth": False,
           **_GOOD}
    table = pd.DataFrame([
        {"method": s.OURS, **row, "circ_mae_h": 1.0},
        {"method": "deepcycle", **row, "circ_mae_h": 1.1},  # barely worse: not clearly worse
        {"method": "deepcycle_som", **row, "circ_mae_h": 2.0},
        {"method": "handmade", **row, "circ_mae_h": 3.0},
    ])
    res = s.check_targets(table).set_index("target")
    assert res.loc[f"deepcycle circ_mae_h >= 1.25 x {s.OURS}", "status"] == "MISS"
    assert res.loc[f"deepcycle_som circ_mae_h >= 1.25 x {s.OURS}", "status"] == "PASS"
    assert res.loc[f"handmade circ_mae_h >= 1.25 x {s.OURS}", "status"] == "PASS"
    # the paper's ring checked as the method has no paper rival (it would be its own)
    assert not s.check_targets(table, method="deepcycle")["target"].str.startswith("deepcycle ").any()


def test_per_track_statistics_skip_barely_seen_tracks():
    truth = _truth()
    life = truth.groupby("track_id")["cell_id"].transform("size")
    truth = truth.assign(frame=truth["true_age_h"].astype(int), birth_frame=0, division_frame=life - 1)
    # track 0 is seen only over its first quarter; a clock that is wrong there must not count per track
    part = truth[(truth["track_id"] != 0) | (truth["true_age"] < 0.25)]
    p = part["true_age"].where(part["track_id"] != 0, 1.0 - part["true_age"])
    row, tracks, _ = s.score_predictions(pd.DataFrame({"cell_id": part["cell_id"], "pseudotime": p % 1.0}), part)
    assert row["n_tracks"] == 11 and 0 not in set(tracks["track_id"])
    assert row["n_cells"] == len(part)  # circular metrics still use every cell
    cov = s.track_coverage(part)
    assert cov[0] < 0.3 and cov.drop(index=0).min() == pytest.approx(1.0)


def test_a_track_with_a_long_gap_is_not_counted_as_seen():
    """Seen at birth and at division but missing for the middle half: its crops span the whole cycle,
    its frames cover half of it."""
    truth = _truth()
    life = truth.groupby("track_id")["cell_id"].transform("size")
    truth = truth.assign(frame=truth["true_age_h"].astype(int), birth_frame=0, division_frame=life - 1)
    gappy = truth[(truth["track_id"] != 3) | (truth["true_age"] < 0.25) | (truth["true_age"] > 0.75)]
    cov = s.track_coverage(gappy)
    assert 0.45 < cov[3] < 0.6
    row, tracks, _ = s.score_predictions(pd.DataFrame({"cell_id": gappy["cell_id"], "pseudotime": gappy["true_age"]}), gappy)
    assert 3 not in set(tracks["track_id"]) and row["n_tracks"] == 11
    # coverage is measured on every frame, not on the thinned subset that is judged
    thinned = gappy[gappy["true_age_h"] % 3 == 0]
    row, _, _ = s.score_predictions(pd.DataFrame({"cell_id": thinned["cell_id"], "pseudotime": thinned["true_age"]}), thinned,
                           coverage=cov)
    assert row["n_tracks"] == 11


def test_a_ceiling_is_never_a_rival_nor_passes():
    """A row flagged used_truth is not compared with (even were it a baseline's name) and never passes."""
    row = {"track_spearman_median": 0.99, "fisher_lee": 0.99, "hours_mae_h": 0.5, "ring": "clock", **_GOOD}
    table = pd.DataFrame([
        {"method": s.OURS, **row, "circ_mae_h": 1.0, "used_truth": False},
        {"method": "handmade", **row, "circ_mae_h": 0.9, "used_truth": True},  # better, but it used truth
        {"method": "ceiling_crops", **row, "circ_mae_h": 0.5, "used_truth": True},
    ])
    res = s.check_targets(table)
    assert not res["target"].str.startswith(("handmade", "ceiling")).any()
    assert (res["status"] == "PASS").all()
    assert (s.check_targets(table, method="ceiling_crops")["status"] == "TRUTH").all()


def test_forward_arc_wraps_past_one():
    lo, hi = np.array([0.9, 0.2, 0.2, 0.5]), np.array([0.1, 0.4, 0.1, 0.5])
    np.testing.assert_allclose(s.forward_arc_length(lo, hi), [0.2, 0.2, 0.9, 0.0], atol=1e-12)
    # 0.9 -> 0.1 covers 0.95 and 0.05 (across the origin), not 0.5; 0.2 -> 0.1 covers almost everything
    assert s.on_forward_arc([0.95, 0.05, 0.0, 0.5], 0.9, 0.1).tolist() == [True, True, True, False]
    assert s.on_forward_arc([0.3, 0.5, 0.19], 0.2, 0.1).tolist() == [True, True, False]
    assert s.on_forward_arc([0.2, 0.4, 0.1], 0.2, 0.4).tolist() == [True, True, False]  # ends included
    assert s.on_forward_arc([1.25, -0.75], 0.2, 0.4).tolist() == [True, True]  # taken modulo 1
    with pytest.raises(ValueError, match="finite"):
        s.on_forward_arc([np.nan], 0.1, 0.2)


def test_interval_metrics_cover_width_and_rank():
    """Intervals centred on the prediction, twice as wide as each cell's error where half the cells are
    covered; the width ranks cells by error."""
    truth = _truth(n_tracks=20)
    rng = np.random.default_rng(3)
    n = len(truth)
    err = rng.uniform(0.0, 0.2, n)
    sign = rng.choice([-1.0, 1.0], n)
    pred_pos = (truth["true_age"].to_numpy() + sign * err) % 1.0
    half = np.where(np.arange(n) % 2 == 0, 1.5 * err, 0.5 * err)  # even cells covered, odd not
    pred = pd.DataFrame({"cell_id": truth["cell_id"], "pseudotime": pred_pos,
                         "interval_lo": (pred_pos - half) % 1.0, "interval_hi": (pred_pos + half) % 1.0})
    row, _, _ = s.score_predictions(pred, truth)
    assert row["interval80_cover"] == pytest.approx(0.5, abs=1.0 / n)
    width_h = 2 * half * truth["true_cycle_h"].to_numpy()
    assert row["interval_width_h"] == round(float(np.median(width_h)), 1)  # kept to 0.1 h (stable digits)
    assert row["width_error_spearman"] > 0.5
    # intervals that have nothing to do with the error do not rank cells
    flat = pred.assign(interval_lo=(pred_pos - rng.uniform(0, 0.2, n)) % 1.0)
    flat["interval_hi"] = (pred_pos + 0.2) % 1.0
    assert abs(s.score_predictions(flat, truth)[0]["width_error_spearman"]) < 0.15


def test_worst_tenth_finds_the_bad_end_of_the_cycle():
    """A clock exact everywhere but 0.1 turn late in the last tenth of the true cycle: the circular MAE is
    small, the worst tenth is that tenth's error."""
    truth = _truth(n_tracks=20)
    a = truth["true_age"].to_numpy()
    p = np.where(a >= 0.9, (a + 0.1) % 1.0, a)
    row, _, _ = s.score_predictions(pd.DataFrame({"cell_id": truth["cell_id"], "pseudotime": p}), truth)
    late = a >= 0.9
    assert row["worst_tenth_mae_h"] == pytest.approx(float((0.1 * truth["true_cycle_h"].to_numpy()[late]).mean()))
    assert row["circ_mae_h"] < row["worst_tenth_mae_h"] / 5
    per = s.tenth_mae_h(p, a, truth["true_cycle_h"].to_numpy())
    assert per.shape == (10,) and np.nanargmax(per) == 9 and per[:9].max() == pytest.approx(0.0, abs=1e-9)
