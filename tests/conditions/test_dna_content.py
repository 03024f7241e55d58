"""The DNA-content read-out: the per-crop stain integral and the Dean-Jett-Fox histogram fit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import integrate

from deepcycle_core.conditions.dna_content import (
    DnaContentReadout, _components, fit_dna_histogram, integrated_dna,
)
from deepcycle_core.validation.features import crop_features


def _blob(total: float, radius: float, centre=(23.5, 23.5), size: int = 48) -> np.ndarray:
    """A flat-topped nucleus of ``total`` photons, blurred like an optical image."""
    from scipy import ndimage

    yy, xx = np.mgrid[:size, :size]
    disc = ((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 < radius**2).astype(float)
    img = ndimage.gaussian_filter(disc, 1.2)
    return img * total / img.sum()


def _crops(blobs: list[np.ndarray], seed: int = 0, background: float = 60.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([rng.poisson(b + background).astype(np.uint16) for b in blobs])


def _pinned_crops(n: int = 40, seed: int = 7) -> np.ndarray:
    """A seeded batch of crops: nuclei of random size, brightness and offset, a neighbour in every third."""
    rng = np.random.default_rng(seed)
    crops = []
    for i in range(n):
        img = _blob(rng.uniform(5e4, 2.5e5), rng.uniform(5.0, 10.0), centre=tuple(23.5 + rng.uniform(-1.5, 1.5, 2)))
        if i % 3 == 0:  # a neighbour somewhere in the crop
            img = img + _blob(rng.uniform(5e4, 2.5e5), rng.uniform(5.0, 9.0), centre=tuple(rng.uniform(2, 46, 2)))
        crops.append(rng.poisson(img + rng.uniform(40, 120)).astype(np.uint16))
    return np.stack(crops)


# both measures of the integrated nuclear stain on :func:`_pinned_crops`, as they were before they shared
# their background-and-sum code (validation.features.integrated_stain)
_PINNED_DNA = [
    180795.0, 206131.0, 134092.0, 257262.0, 129357.0, 63511.0, 221397.0, 194667.0,
    94332.0, 58679.0, 75625.0, 204334.0, 119833.0, 176599.0, 214541.0, 84973.0,
    76135.0, 129208.0, 174649.0, 90538.0, 118688.0, 327823.0, 178533.0, 202337.0,
    60067.0, 157582.0, 146372.0, 239898.0, 137672.0, 99754.0, 322851.0, 130354.0,
    120123.0, 178195.0, 187313.0, 186609.0, 158521.0, 169765.0, 108534.0, 141729.0,
]
_PINNED_NUCLEAR_INTEGRATED = [
    157102.51765441895, 179921.83811950684, 115982.75459289551, 374971.5174026489,
    100007.28414916992, 51243.32986450195, 169181.28930664062, 148659.3816833496,
    75846.00128173828, 47075.18975830078, 60956.10173034668, 164027.48260498047,
    104133.10355758667, 157236.67388916016, 164162.3942489624, 65340.15131378174,
    57146.278869628906, 103626.34469604492, 142152.9012298584, 68775.56895446777,
    97772.76168823242, 175375.68258666992, 155428.84113311768, 173248.5599822998,
    42480.31623840332, 136076.12309265137, 125643.0751876831, 191634.68926239014,
    108304.52276611328, 83889.56951904297, 188603.67680358887, 109087.37589263916,
    94587.06733703613, 145960.35736083984, 159574.15270233154, 149740.59869384766,
    354174.8848876953, 147652.32971191406, 86654.93743133545, 112792.45942687988,
]


def test_both_stain_integrals_are_pinned():
    crops = _pinned_crops()
    np.testing.assert_allclose(integrated_dna(crops), _PINNED_DNA, rtol=1e-12, atol=0)
    np.testing.assert_allclose(crop_features(crops)[:, 0], _PINNED_NUCLEAR_INTEGRATED, rtol=1e-12, atol=0)


def test_the_integral_follows_dna_and_not_nuclear_size():
    # a 2N nucleus of ~1e5 photons over a background of 60 per pixel, like a Hoechst image
    v = integrated_dna(_crops([_blob(100_000, 6.0), _blob(100_000, 9.0), _blob(200_000, 8.0)]))
    assert v[1] / v[0] == pytest.approx(1.0, abs=0.04)  # 2.25x the area, the same DNA
    assert v[2] / v[0] == pytest.approx(2.0, abs=0.1)  # twice the DNA (the background estimate's bias: < 5 %)


def test_a_neighbour_in_the_crop_is_left_out():
    alone = _blob(100_000, 7.0)
    neighbour = _blob(200_000, 8.0, centre=(23.5, 41.0))  # a bright 4N neighbour 17.5 px away
    v = integrated_dna(_crops([alone, alone + neighbour], seed=1))
    assert v[1] / v[0] == pytest.approx(1.0, abs=0.08)
    with pytest.raises(ValueError, match=r"\(n, h, w\)"):
        integrated_dna(np.zeros((48, 48)))


def test_the_components_are_densities_and_s_has_its_closed_form():
    x = np.linspace(-2.0, 3.0, 20001)
    comp = _components(x, 0.1, 0.2, 2.0, 0.2, (-2.0, 3.0))
    np.testing.assert_allclose(integrate.trapezoid(comp, x, axis=0), 1.0, atol=1e-3)
    d = np.linspace(1.0, 2.0, 4001)  # S by brute force: DNA uniform on [1, 2], log-normal noise
    brute = np.exp(-0.5 * ((x[:, None] - 0.1 - np.log2(d)) / 0.2) ** 2).mean(axis=1) / (0.2 * np.sqrt(2 * np.pi))
    np.testing.assert_allclose(comp[:, 1], brute, atol=2e-3)


def test_s_is_broadened_by_the_mean_of_the_two_peak_widths():
    """With peaks of different widths (2N 0.12, 4N 0.28 log2), S is DNA uniform between them broadened by
    their MEAN width, 0.20: checked by brute force, so a wrong width (either peak's, or their sum) fails."""
    x = np.linspace(-2.0, 3.0, 20001)
    comp = _components(x, 0.1, 0.12, 2.0, 0.28, (-2.0, 3.0))
    np.testing.assert_allclose(integrate.trapezoid(comp, x, axis=0), 1.0, atol=1e-3)
    d = np.linspace(1.0, 2.0, 4001)
    brute = np.exp(-0.5 * ((x[:, None] - 0.1 - np.log2(d)) / 0.2) ** 2).mean(axis=1) / (0.2 * np.sqrt(2 * np.pi))
    np.testing.assert_allclose(comp[:, 1], brute, atol=2e-3)
    # and the peaks keep their own widths
    assert np.ptp(x[comp[:, 0] > comp[:, 0].max() / 2]) == pytest.approx(2.3548 * 0.12, abs=1e-3)
    assert np.ptp(x[comp[:, 2] > comp[:, 2].max() / 2]) == pytest.approx(2.3548 * 0.28, abs=1e-3)


def _population(shares, n: int, cv: float = 0.15, level: float = 16.0, seed: int = 0) -> np.ndarray:
    """log2 integrated stain of ``n`` cells with phase ``shares`` (G1, S, G2/M) and staining ``cv``."""
    rng = np.random.default_rng(seed)
    phase = rng.choice(3, size=n, p=shares)
    dna = np.where(phase == 0, 1.0, np.where(phase == 2, 2.0, rng.uniform(1.0, 2.0, n)))
    sd = np.sqrt(np.log(1 + cv**2))
    return level + np.log2(dna) + rng.normal(0.0, sd, n) / np.log(2)


@pytest.mark.parametrize("shares", [(0.47, 0.30, 0.23), (0.85, 0.08, 0.07), (0.20, 0.17, 0.63), (0.30, 0.55, 0.15)])
def test_the_fit_recovers_phase_shares(shares):
    # 20,000 cells: at a 15 % CV the S share of a few thousand cells scatters by 2-3 points by itself
    fit = fit_dna_histogram(_population(shares, 20_000, seed=3), g2_ratio=2.0)  # the fixed-ratio path
    np.testing.assert_allclose(fit.shares, shares, atol=0.02)
    assert fit.g1_log2 == pytest.approx(16.0, abs=0.03)
    assert fit.cv == pytest.approx(0.15, abs=0.02)


def test_debris_goes_to_the_flat_component():
    rng = np.random.default_rng(5)
    x = np.concatenate([_population((0.5, 0.3, 0.2), 20_000, seed=5), rng.uniform(14.0, 19.0, 1000)])
    fit = fit_dna_histogram(x, g2_ratio=2.0)
    assert 0.02 < fit.outlier_share < 0.08
    np.testing.assert_allclose(fit.shares, (0.5, 0.3, 0.2), atol=0.02)


def test_the_readout_aligns_each_frame_before_pooling():
    # the stain bleaches: each later frame is 6 % dimmer, and the arrest fills G1 as frames go on
    frames, parts = [], []
    for f in range(8):
        g1 = 0.5 + 0.05 * f
        x = _population((g1, (1 - g1) * 0.6, (1 - g1) * 0.4), 250, level=16.0 + f * np.log2(0.94), seed=10 + f)
        parts.append(x)
        frames.append(np.full(x.size, f))
    table = pd.DataFrame({"dna": 2.0 ** np.concatenate(parts), "frame": np.concatenate(frames)})
    true_g1 = np.mean([0.5 + 0.05 * f for f in range(8)])
    aligned = DnaContentReadout(g2_ratio=2.0).shares(table)
    pooled = DnaContentReadout(by=(), g2_ratio=2.0).shares(table)
    assert aligned[0] == pytest.approx(true_g1, abs=0.03)
    assert abs(pooled[0] - true_g1) > abs(aligned[0] - true_g1)
    p = DnaContentReadout(g2_ratio=2.0).probabilities(table)
    assert p.shape == (len(table), 3)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="at least 60"):
        fit_dna_histogram(np.full(10, 16.0))
    with pytest.raises(ValueError, match="finite"):
        fit_dna_histogram(np.array([16.0, np.nan] * 50))
    with pytest.raises(ValueError, match="4N/2N"):
        fit_dna_histogram(_population((0.5, 0.3, 0.2), 200), g2_ratio=3.0)
    with pytest.raises(ValueError, match="needs columns"):
        DnaContentReadout().shares(pd.DataFrame({"dna": [1.0]}))
    with pytest.raises(ValueError, match="no positive integrated stain"):
        DnaContentReadout(by=()).shares(pd.DataFrame({"dna": [0.0] * 100}))
    with pytest.raises(ValueError, match="4N/2N"):
        DnaContentReadout(g2_ratio=1.2)
    with pytest.raises(ValueError, match="holds the 4N/2N ratio fixed"):
        DnaContentReadout(g2_ratio=2.0).calibrate(pd.DataFrame({"dna": np.ones(100), "frame": 0}))


def test_the_change_interval_refits_and_covers_a_null_and_an_effect():
    def population(g1: float, seed: int) -> pd.DataFrame:
        parts = []
        for f in range(4):
            x = _population((g1, (1 - g1) * 0.6, (1 - g1) * 0.4), 300, seed=seed + f)
            parts.append(pd.DataFrame({"dna": 2.0 ** x, "field": f, "frame": 0}))
        return pd.concat(parts, ignore_index=True)

    readout = DnaContentReadout(g2_ratio=2.0)
    control = population(0.45, seed=100)
    d, lo, hi = readout.change_interval(population(0.45, seed=200), control, n_boot=30, seed=1)
    assert ((lo <= 0) & (hi >= 0)).all()  # same composition: every interval holds 0
    assert (hi - lo > 0.01).all()  # and the refits make it more than a point
    d, lo, hi = readout.change_interval(population(0.75, seed=300), control, n_boot=30, seed=1)
    assert d[0] == pytest.approx(0.30, abs=0.05) and lo[0] > 0.15 and hi[1] < 0 and hi[2] < 0
    with pytest.raises(ValueError, match="'field'"):
        readout.change_interval(control.drop(columns="field"), control)
