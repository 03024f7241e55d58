"""Single-feature baseline: segmentation of synthetic nuclei and the rank-to-age read-out."""

import numpy as np
import pandas as pd
import pytest

from deepcycle_core.validation import features


def _disk(r, value=1000.0, bg=100.0, dx=0, dy=0):
    yy, xx = np.mgrid[0:48, 0:48]
    img = np.full((48, 48), bg)
    img[(yy - 24 - dy) ** 2 + (xx - 24 - dx) ** 2 <= r * r] += value
    return img


def test_crop_features_area_and_integral_of_a_disk():
    crops = np.stack([_disk(6), _disk(9)])
    f = features.crop_features(crops)
    for k, r in enumerate((6, 9)):
        true_area = ((np.mgrid[0:48, 0:48][0] - 24) ** 2 + (np.mgrid[0:48, 0:48][1] - 24) ** 2 <= r * r).sum()
        assert f[k, 1] == pytest.approx(true_area, rel=0.15)
        assert f[k, 0] == pytest.approx(1000.0 * true_area, rel=0.15)
    assert f[1, 0] > 2 * f[0, 0]


def test_neighbour_is_not_counted():
    alone = _disk(6)
    with_neighbour = alone + _disk(6, bg=0.0, dx=17)  # a second nucleus 17 px away, no contact
    a, b = features.crop_features(np.stack([alone, with_neighbour]))
    assert b[1] == pytest.approx(a[1], rel=0.05)


def test_bf_texture_rises_with_texture():
    rng = np.random.default_rng(0)
    flat = np.full((48, 48), 1000.0) + rng.normal(0, 1, (48, 48))
    rough = flat + rng.normal(0, 50, (48, 48))
    f = features.crop_features(np.stack([_disk(6), _disk(6)]), np.stack([flat, rough]))
    assert f[1, 2] > 5 * f[0, 2]


def test_era_age_inverts_the_steady_state_distribution():
    rng = np.random.default_rng(1)
    true = -np.log2(1 - rng.uniform(size=20000) / 2)  # ages of an exponentially growing population
    got = features.era_age(true * 3.0 + 7.0)  # any increasing transform of age
    assert np.abs(got - true).max() < 0.02
    assert np.abs(features.era_age(-true, increasing=False) - true).max() < 0.02
    with pytest.raises(ValueError):
        features.era_age(np.array([1.0, np.nan]))


def test_baseline_table_rewards_a_perfect_feature():
    rng = np.random.default_rng(2)
    n = 5000
    age = -np.log2(1 - rng.uniform(size=n) / 2)
    phase = np.select([age < 0.37, age < 0.7, age < 0.96], ["G1", "S", "G2"], "M")
    cells = pd.DataFrame({"cell_id": np.arange(n), "true_age": age, "true_cycle_h": 27.0, "true_phase": phase})
    feats = pd.DataFrame({"cell_id": np.arange(n), "nuclear_integrated": age, "nuclear_area": rng.normal(size=n),
                          "bf_texture": -age})
    t = features.baseline_table(feats, cells)
    assert t.loc["nuclear_integrated", "mae_h"] < 0.3
    assert t.loc["bf_texture", "mae_h"] < 0.3  # a decreasing feature is read the other way round
    assert t.loc["nuclear_area", "mae_h"] > 5.0  # noise is as bad as no information
    assert t.loc["no information", "mae_h"] > 5.0
    with pytest.raises(ValueError, match="ground truth"):
        features.baseline_table(feats, cells.drop(columns="true_age"))
