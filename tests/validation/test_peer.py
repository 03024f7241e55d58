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


def test_best_cut_separates_and_never_splits_equal_scores():
    s = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    y = np.array([0, 0, 0, 1, 1, 1])
    assert P.best_cut(s, y) == pytest.approx(0.5)
    cut = P.best_cut(np.array([1.0, 1.0, 2.0, 2.0]), np.array([0, 1, 1, 1]))
    assert cut in (1.0, 1.5)
    with pytest.raises(ValueError):
        P.best_cut(s, np.zeros(6))


def test_circular_cut_finds_the_g1_arc_even_across_the_origin():
    rng = np.random.default_rng(1)
    pos = rng.uniform(0, 1, 2000)
    g1 = np.mod(pos - 0.9, 1.0) < 0.4  # G1 from 0.9 through the origin to 0.3
    origin, cut = P.circular_cut(pos, (~g1).astype(int))
    assert abs(((origin - 0.9 + 0.5) % 1.0) - 0.5) <= 0.011
    assert cut == pytest.approx(0.4, abs=0.02)
    score = np.mod(pos - origin, 1.0)
    assert P.auroc(score, (~g1).astype(int)) > 0.99
