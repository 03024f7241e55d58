"""The comparison with the released peer: labels, AUROC, the cuts that turn a clock or a feature into a
G1 vs S/G2 call (fitted on FUCCI-labelled fitting cells only), FUCCI's own error against the truth."""

from __future__ import annotations

import numpy as np
import pytest

from deepcycle_core.validation import peer as P


def test_labels_from_fucci_and_truth():
    assert P.fucci_phase([0, 1, 2, 3]).tolist() == [-1, 0, 1, -1]
    assert P.truth_phase(["G1", "S", "G2", "M"]).tolist() == [0, 1, 1, -1]


def test_fucci_error_counts_the_labelled_share_and_the_red_split():
    classes = np.array([1, 1, 2, 2, 0, 3, 0, 3])
    truth = np.array([0, 0, 1, 1, 0, 1, 1, 0])
    e = P.fucci_error(classes, truth)
    assert e["labelled"] == 0.5 and e["error_labelled"] == 0.0
    # red split: 1 and 3 -> G1, 0 and 2 -> S/G2: wrong on cells 4 (G1 as S/G2) and 5 (S/G2 as G1)
    assert e["error_red_split"] == pytest.approx(2 / 8)


def test_auroc_matches_sklearn_with_ties():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    s = np.round(rng.normal(y * 0.7, 1.0), 1)
    assert P.auroc(s, y) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert np.isnan(P.auroc(s, np.ones_like(y)))


def test_best_cut_lies_between_the_labels_and_barely_moves_with_the_last_bits():
    rng = np.random.default_rng(1)
    s = np.concatenate([rng.normal(0.3, 0.08, 600), rng.normal(0.75, 0.06, 400)])
    y = np.r_[np.zeros(600), np.ones(400)]
    cut = P.best_cut(s, y)
    assert 0.45 < cut < 0.6
    bumped = P.best_cut(s * (1 + 1e-9 * rng.standard_normal(s.size)), y)
    assert abs(bumped - cut) < 1e-7
    assert 0.4 < P.best_cut(np.r_[np.linspace(0, 0.4, 50), np.linspace(0.6, 1, 50)], np.r_[np.zeros(50), np.ones(50)]) < 0.6
    with pytest.raises(ValueError):
        P.best_cut(s, np.zeros(s.size))
    with pytest.raises(ValueError):
        P.best_cut(-s, y)  # falls from G1 to S/G2: not a score to cut


def test_cycle_origin_lies_between_s_g2_and_g1_even_across_zero():
    rng = np.random.default_rng(2)
    g1 = np.mod(rng.uniform(0.9, 1.3, 400), 1.0)  # G1 from 0.9 through 0 to 0.3
    sg2 = rng.uniform(0.35, 0.85, 500)
    pos, y = np.r_[g1, sg2], np.r_[np.zeros(400), np.ones(500)]
    origin = P.cycle_origin(pos, y)
    assert abs(((origin - 0.875 + 0.5) % 1.0) - 0.5) < 0.03  # halfway from S/G2's mean (0.6) to G1's (0.1)
    score = np.mod(pos - origin, 1.0)
    assert P.auroc(score, y) > 0.99
    assert abs(P.cycle_origin(pos * (1 + 1e-9), y) - origin) < 1e-6
