"""Baseline descriptors: hand-made features and raw-pixel PCA, never fitted on held-out cells."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deepcycle_core import baselines
from deepcycle_core.store import StoreWriter, open_store

CYCLE_FRAMES = 24  # one frame an hour: a 24 h cycle


def _phase(a: np.ndarray) -> np.ndarray:
    return np.select([a < 0.37, a < 0.75, a < 0.96], ["G1", "S", "G2"], "M")


def _class(a: np.ndarray) -> np.ndarray:
    return np.select([a < 0.1, a < 0.35, a < 0.45], [0, 1, 3], 2).astype(np.int64)


def make_store(
    path: Path, *, n_tracks: int = 60, n_frames: int = 36, seed: int = 0, scramble_heldout: bool = False
) -> tuple[Path, pd.DataFrame]:
    """A tiny cell store whose crops follow a cycle: a nucleus growing and doubling its DNA, and a
    brightfield that turns granular around mitosis. Returns the store path and a split table in which
    the full-cycle tracks are held out (as the training stage does).

    ``scramble_heldout`` replaces the held-out crops by noise, to prove that nothing fitted sees them.
    """
    rng = np.random.default_rng(seed)
    rows, crops = [], []
    yy, xx = np.mgrid[:48, :48] - 23.5
    rr = np.hypot(yy, xx)
    cell_rng = np.random.default_rng(seed + 1)
    for tid in range(n_tracks):
        # every 3rd track is born at frame 2 and divides inside the movie: a full-cycle track
        # the others are cut by the movie: born before it starts, or dividing after it ends
        full = tid % 3 == 0
        cyc = CYCLE_FRAMES + int(rng.integers(-2, 3))
        if full:
            birth = 2 + (tid % 5)
        elif tid % 2:
            birth = -int(rng.integers(1, cyc))
        else:
            birth = n_frames - int(rng.integers(1, cyc))
        div = birth + cyc
        for f in range(max(birth, 0), min(div, n_frames)):
            a = (f - birth) / cyc
            rows.append({
                "track_id": tid, "parent_track_id": -1, "frame": f, "time_h": float(f), "x": 100.0, "y": 100.0,
                "field": 0, "birth_frame": birth if birth >= 0 else -1,
                "division_frame": div if div < n_frames else -1,
                "full_cycle": bool(full and div < n_frames), "fucci_red": 0.0, "fucci_green": 0.0,
                "class": int(_class(np.array([a]))[0]), "true_age": a, "true_phase": str(_phase(np.array([a]))[0]),
                "true_cycle_h": float(cyc), "true_age_h": float(f - birth), "generation": 1,
            })
            radius = 5.0 + 4.0 * a
            dna = 1.0 + np.clip((a - 0.37) / 0.38, 0, 1)
            nuc = 100 + (dna * 600 / radius**2 * 25) * (rr < radius) + cell_rng.normal(0, 10, (48, 48))
            grain = 200.0 if (a > 0.9 or a < 0.06) else 20.0
            bf = 1000 + cell_rng.normal(0, grain, (48, 48))
            crops.append(np.stack([nuc, bf]))
    cells = pd.DataFrame(rows)
    arr = np.clip(np.stack(crops), 0, 65535).astype(np.uint16)
    split = pd.DataFrame({
        "cell_id": np.arange(len(cells)),
        "split": np.where(cells["full_cycle"], "heldout", np.where(cells["track_id"] % 3 == 1, "val", "train")),
    })
    if scramble_heldout:
        held = split["split"].to_numpy() == "heldout"
        arr[held] = np.random.default_rng(99).integers(0, 4000, arr[held].shape).astype(np.uint16)
    frames = pd.DataFrame({
        "field": 0, "frame": np.arange(n_frames),
        "hoechst_median": 100.0, "hoechst_std": 50.0, "brightfield_median": 1000.0, "brightfield_std": 100.0,
    })
    with StoreWriter(path, channels=[("hoechst", "nuclear"), ("brightfield", "brightfield")],
                     meta={"frame_interval_min": 60, "pixel_size_um": 0.5}, chunk_cells=128) as w:
        w.append(arr, cells)
        w.set_frames(frames)
    return path, split


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
