"""Growth and ERA: the doubling time from a growth curve, and the age a rank in a growing population stands for."""

from __future__ import annotations

import numpy as np
import pytest
from builders import era_ages

from deepcycle_core.data import growth


def test_era_known_values_and_population():
    assert growth.era_age_fraction([0.0, 1.0, 2 * (1 - 2**-0.5)]) == pytest.approx([0.0, 1.0, 0.5])
    rng = np.random.default_rng(3)
    a = era_ages(rng, 20000)
    pseudo = a**1.7  # any monotone distortion of age: ERA undoes it
    h = growth.era_hours(pseudo, 20.0)
    assert np.mean(np.abs(h - 20.0 * a)) < 0.1


def test_doubling_time_from_counts():
    rng = np.random.default_rng(4)
    t = np.arange(0, 33.3, 1 / 6)
    counts = np.round(500 * 2 ** (t / 22.0) * rng.lognormal(0, 0.02, t.size))
    assert growth.doubling_time_from_counts(t, counts) == pytest.approx(22.0, rel=0.02)
    slope, icpt = growth.growth_fit(t, counts)  # the line the data chapter draws: the same fit
    assert growth.doubling_time_from_counts(t, counts) == 1.0 / slope
    assert icpt == pytest.approx(np.log2(500), abs=0.02)
    with pytest.raises(ValueError, match="does not grow"):
        growth.doubling_time_from_counts(t, 1000 - t)
    with pytest.raises(ValueError, match="at least 3"):
        growth.doubling_time_from_counts([0.0, 1.0], [10, 20])
