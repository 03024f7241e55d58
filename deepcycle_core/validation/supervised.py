"""A supervised baseline on the clock head's own labels: simple per-crop features and a standard regressor.

Why: the unsupervised baselines (hand-made features and raw pixels through a ring) answer "does a
network help at all?", not "does a network help once it is given the same labels?". The clock head is
trained on the movie's partial tracks (:mod:`deepcycle_core.net.cycle_targets`); a plain regressor on a
few dozen numbers per crop, trained on the very same labels of the very same fitting cells, is the
baseline the network must beat clearly to show that learning features from the crops is worth it.

* :func:`crop_measures` (the describe stage, ``describe/supervised_features/``): per crop a radial
  profile of each channel around the crop centre (:data:`N_RADII` one-pixel rings, the mean of the
  normalised crop in each -- the network's own input normalisation, :func:`.baselines.normalise`),
  the integrated nuclear stain (raw and over the median of every cell of its frame: bleaching and
  staining differ frame to frame) and the nuclear area (:func:`.features.crop_features`). The crop
  ceilings (:func:`deepcycle_core.validation.ceiling.crop_variable_predictions`) read the stain over
  its frame median and the area from the same file.
* :func:`supervised_predictions` (the validation): a histogram gradient-boosting regressor of
  ``(cos, sin)`` of 2 pi x position fitted on the FITTING cells that have a cycle target
  (:func:`~deepcycle_core.net.cycle_targets.cycle_targets` with the doubling time of the store's cells,
  the head's T and labels), read on the evaluated cells as the angle; hours = position x T. Nothing is
  ever fitted on evaluated (held-out) cells: overlapping ids are refused.

Torch-free (numpy, scipy, scikit-learn).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..data.store import CROP_SIZE, CellStore

__all__ = ["MEASURE_COLUMNS", "N_RADII", "TooFewLabels", "crop_measures", "radial_profile", "supervised_predictions"]

#: One-pixel rings around the crop centre whose mean is taken per channel (0..N_RADII px).
N_RADII = 24

#: The non-profile columns of :func:`crop_measures`.
MEASURE_COLUMNS: tuple[str, ...] = ("nuclear_integrated", "nuclear_integrated_frame", "nuclear_area")


class TooFewLabels(ValueError):
    """Too few fitting cells carry a cycle target (a movie that shows few births and divisions): no fit."""


def _ring_matrix(n_radii: int = N_RADII, size: int = CROP_SIZE) -> np.ndarray:
    """(size*size, n_radii): each column averages the pixels of one one-pixel ring around the centre."""
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2.0
    ring = np.floor(np.hypot(yy, xx)).astype(int).ravel()
    m = np.zeros((size * size, n_radii))
    inside = ring < n_radii
    m[np.nonzero(inside)[0], ring[inside]] = 1.0
    return m / np.maximum(m.sum(axis=0, keepdims=True), 1.0)


def radial_profile(crops: np.ndarray, n_radii: int = N_RADII) -> np.ndarray:
    """(n, C * n_radii): the mean of each channel of each crop (n, C, h, w) in one-pixel rings around the
    centre, channel by channel. Rotation-invariant by construction, as a cycle read-out should be."""
    x = np.asarray(crops, dtype=np.float64)
    if x.ndim != 4 or x.shape[2] != x.shape[3]:
        raise ValueError(f"radial_profile needs square crops (n, C, h, w), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("radial_profile: the crops contain non-finite values")
    n, c, size, _ = x.shape
    if size < 2 * n_radii:
        raise ValueError(f"{n_radii} rings need crops of at least {2 * n_radii} px, got {size}")
    return (x.reshape(n * c, size * size) @ _ring_matrix(n_radii, size)).reshape(n, c * n_radii)


def crop_measures(store: CellStore, ids: Sequence[int] | np.ndarray) -> pd.DataFrame:
    """``cell_id``, ``r_<channel>_<k>`` (radial profiles of the normalised crops) and :data:`MEASURE_COLUMNS`
    for ``ids``, sorted by cell id, one store chunk at a time.

    ``nuclear_integrated_frame`` divides each cell's integrated stain by the median over EVERY cell of
    its frame (field, frame) -- all of them are measured, described or not: the DNA content as the
    crops show it, with bleaching and staining level divided out (over the described cells only, a
    thinner sample, the crop ceiling without the phase was 0.3 h worse on the default store). It uses
    no label and no truth.
    """
    from .baselines import frame_stats, normalise
    from .features import crop_features

    want = np.unique(np.asarray(ids, dtype=np.int64))
    if want.size == 0:
        raise ValueError(f"{store.path}: no cells to measure")
    if want[0] < 0 or want[-1] >= store.n_cells:
        raise ValueError(f"{store.path}: cell ids outside 0..{store.n_cells - 1}")
    table = store.cells.set_index("cell_id")
    keys = [k for k in ("field", "frame") if k in table.columns]
    if keys:  # every cell of the frames the described cells lie in
        frames = pd.MultiIndex.from_frame(table.loc[want, keys].drop_duplicates())
        same = pd.MultiIndex.from_frame(table[keys]).isin(frames)
        every = np.union1d(want, table.index.to_numpy(dtype=np.int64)[same])
    else:
        every = want
    nuc = store.channel_index("nuclear")
    stats = frame_stats(store)
    profiles, feats = [], []
    for cid, block in store.iter_selected(every):
        feats.append(crop_features(block[:, nuc])[:, :2])
        mine = np.isin(cid, want)
        if mine.any():
            profiles.append(radial_profile(normalise(store, cid[mine], block[mine], stats)))
    f = pd.DataFrame(np.concatenate(feats), columns=["nuclear_integrated", "nuclear_area"], index=every)
    if keys:
        med = f["nuclear_integrated"].groupby([table.loc[every, k].to_numpy() for k in keys]).transform("median")
    else:
        med = pd.Series(f["nuclear_integrated"].median(), index=every)
    f["nuclear_integrated_frame"] = f["nuclear_integrated"] / med.where(med > 0)
    names = [f"r_{ch}_{k}" for ch in store.channels for k in range(N_RADII)]
    df = pd.DataFrame(np.concatenate(profiles).astype(np.float32), columns=names)
    df.insert(0, "cell_id", want)
    for col in MEASURE_COLUMNS:
        df[col] = f.loc[want, col].to_numpy()
    return df


def _labels(cells: pd.DataFrame, frame_interval_h: float, T_hours: float) -> pd.Series:
    """The cycle head's targets (position, NaN = none) by cell id: the same function, T and cells."""
    from ..net.cycle_targets import cycle_targets

    t = cycle_targets(cells, frame_interval_h, T_hours)
    return pd.Series(t.position, index=cells["cell_id"].to_numpy(dtype=np.int64))


def supervised_predictions(
    descriptors: pd.DataFrame,
    cells: pd.DataFrame,
    fit_ids: Any,
    eval_ids: Any,
    *,
    frame_interval_h: float,
    T_hours: float,
    seed: int = 0,
) -> pd.DataFrame:
    """``cell_id, pseudotime, hours`` for ``eval_ids`` (and the fitting cells, in-sample, for the movie's
    check of the clock): a regressor of (cos, sin) of the head's labels fitted on ``fit_ids`` only.

    ``descriptors``: :func:`crop_measures` (every column but ``cell_id`` is a feature); ``cells``: the
    store's cell table (the labels need its tracks' birth and division frames); ``T_hours``: the
    doubling time the labels use (:func:`~deepcycle_core.net.cycle_targets.doubling_time_of_store_cells`).
    ``df.attrs['n_fit']``: the labelled fitting cells the regressor learned from.
    """
    from sklearn.ensemble import HistGradientBoostingRegressor
    from threadpoolctl import threadpool_limits

    fit_ids = np.unique(np.asarray(fit_ids, dtype=np.int64))
    eval_ids = np.unique(np.asarray(eval_ids, dtype=np.int64))
    both = np.intersect1d(fit_ids, eval_ids)
    if both.size:
        raise ValueError(f"{both.size} cell(s) are both fitting and evaluated cells (e.g. {both[:3].tolist()}): "
                         "the supervised baseline never fits on the cells it is judged on")
    if not (np.isfinite(T_hours) and T_hours > 0):
        raise ValueError(f"the supervised baseline needs a positive doubling time, got {T_hours!r}")
    feats = descriptors.set_index("cell_id")
    missing = np.setdiff1d(np.union1d(fit_ids, eval_ids), feats.index.to_numpy())
    if missing.size:
        raise ValueError(f"{missing.size} fitting or evaluated cell(s) have no features (e.g. {missing[:3].tolist()})")
    label = _labels(cells, frame_interval_h, T_hours).reindex(fit_ids)
    train = fit_ids[np.isfinite(label.to_numpy())]
    if train.size < 20:
        raise TooFewLabels(f"only {train.size} fitting cells have a cycle target: too few to fit the supervised baseline")
    X = np.nan_to_num(feats.loc[train].to_numpy(dtype=np.float64))
    angle = 2.0 * np.pi * label.loc[train].to_numpy()
    ids = np.union1d(fit_ids, eval_ids)
    Z = np.nan_to_num(feats.loc[ids].to_numpy(dtype=np.float64))
    # one OpenMP thread: a few seconds for 10k cells, where OpenMP's spinning threads on 2 busy cores took 40x that
    with threadpool_limits(limits=1, user_api="openmp"):
        models = [HistGradientBoostingRegressor(max_iter=200, random_state=seed, early_stopping=False).fit(X, y)
                  for y in (np.cos(angle), np.sin(angle))]
        c, s = (m.predict(Z) for m in models)
    pos = np.mod(np.arctan2(s, c) / (2.0 * np.pi), 1.0)
    out = pd.DataFrame({"cell_id": ids, "pseudotime": pos, "hours": pos * float(T_hours)})
    out.attrs["n_fit"] = int(train.size)
    return out
