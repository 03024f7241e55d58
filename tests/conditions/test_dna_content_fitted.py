"""The DNA read-out fitted to each movie: the 4N/2N ratio calibrated on the control, the integration disc
from the nuclei's size, alignment that says where it fell back, and field-jackknife intervals."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from deepcycle_core.conditions.dna_content import (
    DISC_PER_RADIUS, DnaContentReadout, fit_dna_histogram, half_height_radii, integrated_dna, measure_dna,
    nucleus_radius_px,
)


def _population(shares, n: int, *, ratio: float = 2.0, cv: float = 0.10, level: float = 16.0, seed: int = 0) -> np.ndarray:
    """log2 integrated stain of ``n`` cells: 2N at 2**level, 4N at ``ratio`` times it, S between."""
    rng = np.random.default_rng(seed)
    phase = rng.choice(3, size=n, p=shares)
    dna = np.where(phase == 0, 1.0, np.where(phase == 2, ratio, rng.uniform(1.0, ratio, n)))
    return level + np.log2(dna) + rng.normal(0.0, np.sqrt(np.log(1 + cv**2)), n) / np.log(2)


@pytest.mark.parametrize("ratio", [1.7, 2.0])
def test_the_ratio_is_fitted(ratio):
    fit = fit_dna_histogram(_population((0.47, 0.30, 0.23), 4000, ratio=ratio, seed=11))
    assert fit.g2_ratio == pytest.approx(ratio, abs=0.05)
    assert fit.ratio_ci[0] - 0.05 <= ratio <= fit.ratio_ci[1] + 0.05
    # at a ratio of 1.7 the peaks are 0.77 log2 apart: S and the peaks share more cells, so the shares
    # of 4000 cells scatter by a few points
    np.testing.assert_allclose(fit.shares, (0.47, 0.30, 0.23), atol=0.06)


def test_calibrated_on_the_control_the_ratio_reads_a_g1_heavy_population():
    ratio, truth = 1.75, np.array([0.75, 0.15, 0.10])
    control = pd.DataFrame({"dna": 2.0 ** _population((0.47, 0.30, 0.23), 4000, ratio=ratio, seed=21), "frame": 0})
    treated = pd.DataFrame({"dna": 2.0 ** _population(truth, 3000, ratio=ratio, seed=22), "frame": 0})
    readout = DnaContentReadout()
    assert readout.calibrate(control) == pytest.approx(ratio, abs=0.05)
    assert readout.g2_ratio_fitted == readout.fit(treated)[0].g2_ratio  # applied to the treated population
    np.testing.assert_allclose(readout.shares(treated), truth, atol=0.03)
    fixed = DnaContentReadout(g2_ratio=2.0).shares(treated)
    assert np.abs(fixed - truth).max() > 0.05  # the stoichiometric 2 misreads it


def _blurred_disc(radius: float, total: float = 2e5, size: int = 64, sigma: float = 1.2) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    c = (size - 1) / 2.0
    img = ndimage.gaussian_filter(((yy - c) ** 2 + (xx - c) ** 2 < radius**2).astype(float), sigma)
    return img * total / img.sum()


class _Store:
    """The few store methods measure_dna uses, over crops in memory."""

    def __init__(self, crops: np.ndarray) -> None:
        self.crops = crops[:, None]
        self.n_cells, self.path = len(crops), "memory"

    def channel_index(self, name: str) -> int:
        return 0

    def iter_selected(self, ids):
        ids = np.unique(np.asarray(ids))
        yield ids, self.crops[ids]


@pytest.mark.parametrize("radius", [5.0, 11.0])
def test_the_disc_follows_the_nucleus_size(radius):
    rng = np.random.default_rng(int(radius))
    crops = np.stack([rng.poisson(_blurred_disc(radius) + 60.0) for _ in range(30)]).astype(np.uint16)
    assert np.median(half_height_radii(crops)) == pytest.approx(radius, abs=0.6)
    store = _Store(crops)
    assert nucleus_radius_px(store) == pytest.approx(radius, abs=0.6)
    table = measure_dna(store)
    assert table.attrs["disc_radius_px"] == pytest.approx(DISC_PER_RADIUS * table.attrs["nucleus_radius_px"])
    # the measured disc keeps the whole nucleus, rim included (noise-free crops: the background
    # percentile is then exact), where a fixed 12 px disc cuts a large one
    clean = _Store(np.stack([np.round(_blurred_disc(radius) + 60.0) for _ in range(30)]).astype(np.uint16))
    assert np.median(measure_dna(clean)["dna"]) == pytest.approx(2e5, rel=0.01)
    if radius > 10:
        assert np.median(measure_dna(clean, radius=12.0)["dna"]) < 0.98 * 2e5
    else:  # and around a small one sums fewer background pixels, each biased by the background percentile
        err = abs(np.median(table["dna"]) - 2e5)
        assert err < 0.5 * abs(np.median(measure_dna(store, radius=12.0)["dna"]) - 2e5)
    fixed = measure_dna(store, radius=12.0)
    assert np.isnan(fixed.attrs["nucleus_radius_px"]) and fixed.attrs["disc_radius_px"] == 12.0


def _bleached_movie(cells_per_frame, *, step: float = -0.1, seed: int = 30) -> pd.DataFrame:
    parts = []
    for f, n in enumerate(cells_per_frame):
        x = _population((0.5, 0.3, 0.2), n, cv=0.15, level=16.0 + step * f, seed=seed + f)
        parts.append(pd.DataFrame({"dna": 2.0 ** x, "frame": f}))
    return pd.concat(parts, ignore_index=True)


def test_a_frame_with_few_cells_is_put_on_the_trend_and_the_report_says_so():
    table = _bleached_movie([300, 300, 300, 300, 300, 40])  # the stain loses 0.1 log2 a frame
    readout = DnaContentReadout(g2_ratio=2.0)
    al = readout.alignment(table)
    assert al.placed == [0, 1, 2, 3, 4] and al.trend == [5] and al.pooled == []
    assert "40 cells" in al.reasons[5] and "5: 40 cells" in str(al)
    assert al.slope == pytest.approx(-0.1, abs=0.03)
    assert al.offsets[5] == pytest.approx(16.0 - 0.5, abs=0.06)  # where its 2N peak is, not the median frame's
    assert set(al.as_dict()) >= {"placed", "trend", "pooled", "reasons"}
    # no group big enough and no trend: pooled unaligned, and said so
    tiny = _bleached_movie([20] * 6, step=0.0)
    al = readout.alignment(tiny)
    assert al.placed == [] and al.pooled == list(range(6)) and "pooled unaligned" in str(al)
    assert np.isfinite(readout.shares(tiny)).all()


def test_an_unresolved_peak_is_not_placed_on_its_own():
    # 70 cells at a 30 % CV: the 2N peak's place is too uncertain to trust a frame's own fit
    parts = []
    for f in range(6):
        n, cv = (70, 0.30) if f == 2 else (400, 0.10)
        x = _population((0.5, 0.3, 0.2), n, cv=cv, level=16.0 - 0.1 * f, seed=50 + f)
        parts.append(pd.DataFrame({"dna": 2.0 ** x, "frame": f}))
    al = DnaContentReadout(g2_ratio=2.0).alignment(pd.concat(parts, ignore_index=True))
    assert 2 in al.trend and "uncertain" in al.reasons[2]
    assert set(al.placed) == {0, 1, 3, 4, 5}


# --- intervals over few fields: a seeded Monte Carlo of control-vs-control pairs --------------------

def _field_population(seed: int, *, fields: int = 4, cells: int = 400, field_sd: float = 0.12) -> pd.DataFrame:
    """A population whose fields differ (each field's G1 share drawn around 0.45: focus, crowding,
    a local clone), so that its fields, not its cells, are the units that vary between populations."""
    rng = np.random.default_rng(seed)
    parts = []
    for f in range(fields):
        g1 = float(np.clip(0.45 + rng.normal(0.0, field_sd), 0.1, 0.9))
        x = _population((g1, (1 - g1) * 0.6, (1 - g1) * 0.4), cells, seed=seed * 10 + f)
        parts.append(pd.DataFrame({"dna": 2.0 ** x, "field": f, "frame": 0}))
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def null_pairs():
    """8 populations of 4 fields from one model, every pair of them (28 pairs, 84 intervals), and one
    read-out that keeps each population's fit and refits (so each is fitted once)."""
    import itertools

    pops = [_field_population(s) for s in range(8)]
    return pops, list(itertools.combinations(range(8), 2)), DnaContentReadout(by=(), g2_ratio=2.0)


def _exclusions(null_pairs, **kw) -> tuple[int, float]:
    pops, pairs, readout = null_pairs
    out, width = 0, []
    for i, j in pairs:
        _, lo, hi = readout.change_interval(pops[i], pops[j], **kw)
        out += int(((lo > 0) | (hi < 0)).sum())
        width.append(hi - lo)
    return out, float(np.mean(width))


def test_the_field_jackknife_t_interval_holds_its_level(null_pairs):
    jk, jk_width = _exclusions(null_pairs)
    assert jk <= 4  # at most the nominal 5 % of 84 intervals exclude the null
    one_se, _ = _exclusions(null_pairs, level=0.6827)  # and it is no blanket: a 68 % one excludes it often
    print("jackknife exclusions at 95 % and 68 %:", jk, one_se, "mean width", round(jk_width, 4))
    assert one_se >= 8


def test_the_percentile_bootstrap_over_four_fields_undercovers(null_pairs):
    bs, bs_width = _exclusions(null_pairs, method="bootstrap", n_boot=25)
    jk, jk_width = _exclusions(null_pairs)  # refits cached
    print("bootstrap exclusions at 95 %:", bs, "mean width", round(bs_width, 4), "jackknife", jk, round(jk_width, 4))
    assert bs >= 5 and bs > jk + 3
    assert bs_width < jk_width
