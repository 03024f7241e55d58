"""Baseline descriptors: hand-made features and raw-pixel PCA, never fitted on held-out cells."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from builders import make_store

from deepcycle_core.validation import baselines
from deepcycle_core.data.store import open_store


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("baselines")
    path, split = make_store(root / "store")
    return open_store(path), split


def _fit_ids(split: pd.DataFrame) -> np.ndarray:
    return split.loc[split["split"] != "heldout", "cell_id"].to_numpy()


def test_normalise_is_per_frame_median_and_std(tiny):
    store, _ = tiny
    ids = np.arange(5)
    crops = store.read(0, 5)
    x = baselines.normalise(store, ids, crops)
    assert x.dtype == np.float32
    np.testing.assert_allclose(x[:, 0], (crops[:, 0].astype(np.float32) - 100.0) / 50.0, rtol=1e-6)
    np.testing.assert_allclose(x[:, 1], (crops[:, 1].astype(np.float32) - 1000.0) / 100.0, rtol=1e-6)


def test_pooled_pixels_shape_and_pooling(tiny):
    store, _ = tiny
    crops = store.read(0, 3)
    p = baselines.pooled_pixels(store, np.arange(3), crops, pool=2)
    assert p.shape == (3, 2 * 24 * 24)
    full = baselines.normalise(store, np.arange(3), crops)
    assert p[0, 0] == pytest.approx(full[0, 0, :2, :2].mean(), rel=1e-5)
    with pytest.raises(ValueError, match="divide"):
        baselines.pooled_pixels(store, np.arange(3), crops, pool=5)


def test_handmade_features_follow_the_cycle_and_are_standardised_on_fit_cells(tiny):
    store, split = tiny
    fit = _fit_ids(split)
    df = baselines.handmade_descriptors(store, fit)
    assert list(df.columns) == ["cell_id", *baselines.HANDMADE_COLUMNS]
    assert np.array_equal(df["cell_id"].to_numpy(), np.arange(store.n_cells))
    z = df.set_index("cell_id").loc[fit]
    np.testing.assert_allclose(z.mean().to_numpy(), 0.0, atol=1e-4)
    np.testing.assert_allclose(z.std(ddof=0).to_numpy(), 1.0, atol=1e-3)
    cells = store.cells
    age = cells["true_age"].to_numpy()
    # nuclear area grows with age; integrated intensity doubles through S; texture is high in mitosis
    assert pd.Series(df["nuclear_area"]).corr(pd.Series(age), method="spearman") > 0.95
    assert pd.Series(df["nuclear_integrated"]).corr(pd.Series(age), method="spearman") > 0.8
    mitotic = (age > 0.9) | (age < 0.06)
    assert df["bf_texture"][mitotic].min() > df["bf_texture"][~mitotic].max()


def test_handmade_subset_matches_full_run(tiny):
    store, split = tiny
    fit = _fit_ids(split)
    full = baselines.handmade_descriptors(store, fit).set_index("cell_id")
    sub = baselines.handmade_descriptors(store, fit, ids=[3, 200, 7]).set_index("cell_id")
    assert list(sub.index) == [3, 7, 200]
    np.testing.assert_allclose(sub.to_numpy(), full.loc[[3, 7, 200]].to_numpy(), rtol=1e-5)


def test_pixel_pca_streaming_matches_batch_svd(tiny):
    store, split = tiny
    fit = _fit_ids(split)
    df = baselines.pixel_pca_descriptors(store, fit, n_components=3, pool=4)
    assert list(df.columns) == ["cell_id", "p0", "p1", "p2"]
    assert len(df) == store.n_cells
    X = baselines.pooled_pixels(store, fit, store.take(fit), pool=4).astype(np.float64)
    mu = X.mean(axis=0)
    _, S, Vt = np.linalg.svd(X - mu, full_matrices=False)
    allx = baselines.pooled_pixels(store, np.arange(store.n_cells), store.read(), pool=4).astype(np.float64)
    ref = (allx - mu) @ Vt[:3].T
    for k in range(3):  # the same axes up to sign, and the same scores
        np.testing.assert_allclose(np.abs(df[f"p{k}"]), np.abs(ref[:, k]), rtol=1e-3, atol=1e-2 * S[0] / np.sqrt(len(fit)))
    ev = df.attrs["explained_variance_ratio"]
    assert ev[0] >= ev[1] >= ev[2] > 0
    np.testing.assert_allclose(ev, (S[:3] ** 2 / np.sum(S**2)), rtol=1e-3)


def test_nothing_is_fitted_on_heldout_cells(tmp_path):
    """Replacing every held-out crop by noise changes no fitted transform: only their own outputs."""
    p1, split = make_store(tmp_path / "a", n_tracks=30)
    p2, _ = make_store(tmp_path / "b", n_tracks=30, scramble_heldout=True)
    s1, s2 = open_store(p1), open_store(p2)
    fit = _fit_ids(split)
    for make in (
        lambda s: baselines.pixel_pca_descriptors(s, fit, n_components=4, pool=4),
        lambda s: baselines.handmade_descriptors(s, fit),
    ):
        a, b = make(s1).set_index("cell_id"), make(s2).set_index("cell_id")
        np.testing.assert_allclose(a.loc[fit].to_numpy(), b.loc[fit].to_numpy(), rtol=1e-4, atol=1e-4)
        held = split.loc[split["split"] == "heldout", "cell_id"].to_numpy()
        assert not np.allclose(a.loc[held].to_numpy(), b.loc[held].to_numpy())


def test_bad_ids_are_named(tiny):
    store, split = tiny
    with pytest.raises(ValueError, match="outside"):
        baselines.pixel_pca_descriptors(store, [0, 1, 10**6])
    with pytest.raises(ValueError, match="fitting cells"):
        baselines.pixel_pca_descriptors(store, [0, 1], n_components=4)
