"""Descriptors of simpler methods, to show what the network adds.

A cycle clock built from a network is only convincing next to what plainer inputs give when they go
through the very same ring fit. This module makes two descriptor tables of the same shape as the
network's (``cell_id`` + numeric columns), so the validation stage can hand them to the trajectory
code unchanged:

* **hand-made features** -- integrated nuclear (Hoechst) intensity, nuclear area and a brightfield
  texture measure per crop (measured by :mod:`deepcycle_core.validation.features`, as in the data chapter),
  standardised with the mean and spread of the *fitting* cells only;
* **raw pixels** -- the per-frame normalised crops (the network's own input), 3x3 mean-pooled to keep
  the matrix small, reduced by a PCA that is fitted by streaming store chunks of non-held-out cells
  only (mean and covariance accumulated chunk by chunk) and then applied to every requested cell.

Nothing here ever fits on held-out cells: callers pass ``fit_ids`` (cells allowed to shape the
transform) and ``ids`` (cells to describe), and the held-out cells belong only to the latter.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ..net.normalise import frame_norm, normalise_crops
from ..data.store import CROP_SIZE, CellStore

__all__ = [
    "HANDMADE_COLUMNS", "frame_stats", "handmade_descriptors", "normalise", "pixel_pca_descriptors",
    "pooled_pixels",
]

#: Names of the hand-made feature columns, in order.
HANDMADE_COLUMNS: tuple[str, ...] = ("nuclear_integrated", "nuclear_area", "bf_texture")


def _ids(name: str, values: Sequence[int] | np.ndarray | None, n_cells: int) -> np.ndarray:
    """Sorted unique cell ids, checked against the store size."""
    if values is None:
        return np.arange(n_cells, dtype=np.int64)
    ids = np.unique(np.asarray(values, dtype=np.int64))
    if ids.size and (ids[0] < 0 or ids[-1] >= n_cells):
        raise ValueError(f"{name} holds cell ids outside 0..{n_cells - 1}")
    return ids


def normalise(
    store: CellStore, cell_ids: np.ndarray, crops: np.ndarray, stats: tuple[np.ndarray, np.ndarray] | None = None
) -> np.ndarray:
    """The network's input normalisation (``(x − frame median) / frame std`` per channel), as numpy.

    Uses :mod:`deepcycle_core.net.normalise` so the baseline sees exactly what the network sees. ``stats``:
    the store's per-cell ``frame_norm`` of all channels, to compute once for many chunks.
    """
    med, std = stats if stats is not None else frame_stats(store)
    return normalise_crops(crops, med[cell_ids], std[cell_ids])


def frame_stats(store: CellStore) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell frame (median, std) of every channel of the store, (n_cells, C) each."""
    return frame_norm(store, range(len(store.channels)))


def pooled_pixels(
    store: CellStore, cell_ids: np.ndarray, crops: np.ndarray, pool: int = 2,
    stats: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Normalised crops mean-pooled ``pool`` x ``pool`` and flattened: one row per cell."""
    if CROP_SIZE % pool:
        raise ValueError(f"pool must divide the crop size {CROP_SIZE}, got {pool}")
    x = normalise(store, cell_ids, crops, stats)
    n, c = x.shape[:2]
    k = CROP_SIZE // pool
    x = x.reshape(n, c, k, pool, k, pool).mean(axis=(3, 5))
    return x.reshape(n, -1)


def pixel_pca_descriptors(
    store: CellStore,
    fit_ids: Sequence[int] | np.ndarray,
    ids: Sequence[int] | np.ndarray | None = None,
    *,
    n_components: int = 8,
    pool: int = 3,
) -> pd.DataFrame:
    """Raw-pixel baseline: PCA of normalised, pooled crops fitted on ``fit_ids``, applied to ``ids``.

    The fit streams the store chunk by chunk, accumulating the mean and the covariance matrix
    (d x d, d = channels x (48/pool)^2 = 512 by default), then takes its leading eigenvectors: an
    exact PCA whose memory is one chunk plus the d x d matrix whatever the store size. (An
    ``IncrementalPCA`` gives the same axes but needs an SVD of every batch, ~10x slower on 2 cores.)
    Returns ``cell_id, p0..p{k-1}`` for ``ids`` (default: every cell), sorted by cell id; the
    explained variance ratios are in ``df.attrs['explained_variance_ratio']``.
    """
    fit = _ids("fit_ids", fit_ids, store.n_cells)
    want = _ids("ids", ids, store.n_cells)
    if fit.size <= n_components:
        raise ValueError(f"{store.path}: raw-pixel PCA needs more than {n_components} fitting cells, got {fit.size}")
    stats = frame_stats(store)
    total: np.ndarray | None = None
    gram: np.ndarray | None = None
    for cid, crops in store.iter_selected(fit):
        x = pooled_pixels(store, cid, crops, pool, stats)
        if total is None:
            total = np.zeros(x.shape[1])
            gram = np.zeros((x.shape[1], x.shape[1]))
        total += x.sum(axis=0, dtype=np.float64)
        gram += (x.T @ x).astype(np.float64)
    assert total is not None and gram is not None
    mean = total / fit.size
    cov = gram / fit.size - np.outer(mean, mean)
    evals, evecs = np.linalg.eigh(cov)
    order = np.argsort(evals)[::-1][:n_components]
    axes = evecs[:, order].T  # (k, d)
    for row in axes:  # deterministic sign: the largest loading is positive
        if row[np.argmax(np.abs(row))] < 0:
            row *= -1
    parts, out_ids = [], []
    for cid, crops in store.iter_selected(want):
        parts.append(((pooled_pixels(store, cid, crops, pool, stats) - mean) @ axes.T).astype(np.float32))
        out_ids.append(cid)
    values = np.concatenate(parts) if parts else np.empty((0, n_components), np.float32)
    df = pd.DataFrame(values, columns=[f"p{i}" for i in range(n_components)])
    df.insert(0, "cell_id", np.concatenate(out_ids) if out_ids else np.empty(0, np.int64))
    df.attrs["explained_variance_ratio"] = (np.clip(evals[order], 0, None) / max(evals.clip(0).sum(), 1e-300)).tolist()
    return df


def handmade_descriptors(
    store: CellStore,
    fit_ids: Sequence[int] | np.ndarray,
    ids: Sequence[int] | np.ndarray | None = None,
) -> pd.DataFrame:
    """Hand-made baseline: the data chapter's per-crop features, standardised on ``fit_ids``.

    The features (integrated nuclear intensity, nuclear area, brightfield texture) are measured by
    :func:`deepcycle_core.validation.features.measure`, the same code as the single-feature baseline of the data
    chapter; integrated intensity is log-transformed (it spans a factor of ~2 within a cell and more
    across staining), then every column is centred and scaled with the mean and sd of the fitting
    cells only. Returns ``cell_id`` + :data:`HANDMADE_COLUMNS` for ``ids`` (default: all), sorted.
    """
    from .features import FEATURE_COLUMNS, measure

    fit = _ids("fit_ids", fit_ids, store.n_cells)
    want = _ids("ids", ids, store.n_cells)
    if fit.size < 3:
        raise ValueError(f"{store.path}: hand-made features need at least 3 fitting cells, got {fit.size}")
    table = measure(store, np.union1d(fit, want))
    cid_all = table["cell_id"].to_numpy(dtype=np.int64)
    feats = table[list(FEATURE_COLUMNS)].to_numpy(dtype=np.float64)
    feats[:, 0] = np.log1p(np.clip(feats[:, 0], 0, None))
    in_fit = np.isin(cid_all, fit)
    mu = feats[in_fit].mean(axis=0)
    sd = feats[in_fit].std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    z = (feats - mu) / sd
    keep = np.isin(cid_all, want)
    df = pd.DataFrame(z[keep].astype(np.float32), columns=list(HANDMADE_COLUMNS))
    df.insert(0, "cell_id", cid_all[keep])
    return df
