"""How much of the cycle position does one hand-made feature tell? The single-feature baseline.

Why: a clock reconstructed by a network is only impressive if simple measurements cannot read it off.
This module streams the store once, measures per crop the integrated nuclear (Hoechst) intensity,
nuclear area and brightfield texture with a simple threshold segmentation (:func:`crop_features`),
and turns each feature into a cycle position with no training at all: if a feature grew monotonically with age, its rank would be the cell's quantile in
the population's age distribution, and for an exponentially growing population that distribution is
known (Kafri et al. 2013): the fraction of cells younger than age ``a`` is ``F(a) = 2(1 - 2^-a)``, so
``a = -log2(1 - F/2)``. The errors of that read-out, against ground truth, are the baseline.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from scipy import ndimage

from ..data.store import CROP_SIZE, CellStore
from ..data.growth import era_age_fraction  # the ERA formula's one home

__all__ = [
    "FEATURE_COLUMNS",
    "crop_background",
    "crop_features",
    "integrated_stain",
    "measure",
    "era_age",
    "baseline_table",
]

#: Feature columns returned by :func:`measure`, in order.
FEATURE_COLUMNS: tuple[str, ...] = ("nuclear_integrated", "nuclear_area", "bf_texture")

_PLANE = np.zeros((3, 3, 3), bool)
_PLANE[1] = ndimage.generate_binary_structure(2, 1)  # 4-connectivity inside a crop, never across crops


def crop_background(crops: np.ndarray, percentile: float = 5.0) -> np.ndarray:
    """(n,) background of each crop of (n, h, w): its ``percentile``-th pixel value, i.e. its darkest pixels.

    Each caller chooses what it reads it on (the raw crop, or a smoothed one) and says why.
    """
    crops = np.asarray(crops)
    return np.percentile(crops.reshape(len(crops), -1), percentile, axis=1)


def integrated_stain(raw: np.ndarray, region: np.ndarray, background: np.ndarray) -> np.ndarray:
    """(n,) integrated nuclear stain: each crop's raw pixels minus its background, summed over its region.

    The one home of "integrated nuclear stain"; the callers differ only in the region (a half-maximum
    segmentation here, a Voronoi-split disc in :mod:`deepcycle_core.conditions.dna_content`) and in the
    background they pass (see :func:`crop_background`). ``raw`` (n, h, w), ``region`` (n, h, w) bool.
    """
    bg = np.asarray(background)[:, None, None]
    return ((np.asarray(raw, dtype=np.float64) - bg) * region).sum(axis=(1, 2))


def crop_features(nuclear: np.ndarray, brightfield: np.ndarray | None = None) -> np.ndarray:
    """(n, 3): integrated nuclear intensity, nuclear area (px), brightfield texture, for n crops.

    The nucleus is the 4-connected region above half-maximum (halfway between the crop's 5th
    percentile, taken as background, and the brightest smoothed pixel within 4 px of the centre)
    that contains that brightest pixel; a neighbour in the crop is a separate region. Integrated
    intensity sums background-subtracted pixels over it (:func:`integrated_stain`). Brightfield texture is the standard
    deviation of the Laplacian of the smoothed brightfield over the central 24 x 24 px, relative to
    the crop's median (so illumination level cancels).
    """
    img = ndimage.gaussian_filter(np.asarray(nuclear, dtype=np.float32), (0, 1.0, 1.0))
    n = len(img)
    out = np.zeros((n, 3))
    if n == 0:
        return out
    bg = crop_background(img)  # on the smoothed crop, like the peak and the threshold
    c0, r = CROP_SIZE // 2, 4
    centre = img[:, c0 - r : c0 + r, c0 - r : c0 + r].reshape(n, -1)
    arg = centre.argmax(axis=1)
    peak = centre[np.arange(n), arg]
    thr = bg + 0.5 * (peak - bg)
    mask = img > thr[:, None, None]
    lab, _ = ndimage.label(mask, structure=_PLANE)
    py, px = arg // (2 * r) + c0 - r, arg % (2 * r) + c0 - r
    own = lab[np.arange(n), py, px]
    nucleus = (lab == own[:, None, None]) & (own[:, None, None] > 0)
    out[:, 0] = integrated_stain(nuclear, nucleus, bg)
    out[:, 1] = nucleus.sum(axis=(1, 2))
    if brightfield is not None:
        bf = np.asarray(brightfield, dtype=np.float32)
        lap = ndimage.gaussian_laplace(bf, (0, 1.0, 1.0))[:, c0 - 12 : c0 + 12, c0 - 12 : c0 + 12]
        med = np.median(bf.reshape(n, -1), axis=1)
        out[:, 2] = lap.reshape(n, -1).std(axis=1) / np.maximum(med, 1.0)
    return out


def measure(store: CellStore, ids: Sequence[int] | np.ndarray | None = None) -> pd.DataFrame:
    """``cell_id`` + :data:`FEATURE_COLUMNS` for ``ids`` (default: every cell), one store chunk at a time.

    Memory is one chunk of crops plus the result.
    """
    want = np.arange(store.n_cells) if ids is None else np.unique(np.asarray(ids, dtype=np.int64))
    if want.size == 0:
        raise ValueError(f"{store.path}: no cells to measure")
    nuc = store.channel_index("nuclear")
    bf = store.channel_index("brightfield") if "brightfield" in store.roles else None
    parts = [crop_features(block[:, nuc], None if bf is None else block[:, bf])
             for _, block in store.iter_selected(want)]
    feats = np.concatenate(parts)
    df = pd.DataFrame(feats, columns=list(FEATURE_COLUMNS))
    df.insert(0, "cell_id", want)
    return df


def era_age(values: np.ndarray, increasing: bool = True) -> np.ndarray:
    """Cycle position in [0, 1) implied by a feature's rank, assuming age grows with the feature.

    The rank fraction F in (0, 1) is mapped through the steady-state age distribution of an
    exponentially growing population, ``a = -log2(1 - F/2)``
    (:func:`deepcycle_core.data.growth.era_age_fraction`, the one home of that formula).
    """
    v = np.asarray(values, dtype=float)
    if v.size == 0 or not np.isfinite(v).all():
        raise ValueError("era_age needs a non-empty, finite feature vector")
    r = stats.rankdata(v if increasing else -v, method="average")
    frac = (r - 0.5) / len(v)
    return era_age_fraction(frac)


def _auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Probability that a random ``pos`` value exceeds a random ``neg`` one (Mann-Whitney AUC)."""
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    u = stats.mannwhitneyu(pos, neg, alternative="two-sided").statistic
    return float(u / (len(pos) * len(neg)))


def baseline_table(features: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """Per feature: how well it predicts the true cycle position (needs the simulator's truth).

    Columns: ``spearman`` (feature vs true age over all cells), ``mae_h`` (circular mean absolute
    error in hours of the rank read-out :func:`era_age`, each cell wrapping at its own cycle length),
    ``spearman_g1`` (feature vs age within G1: can it tell early from late G1?) and ``auc_m_vs_g2``
    (can it tell mitotic from G2 cells? 0.5 = not at all; reported as max(AUC, 1-AUC)).
    A reference row ``no information`` gives the error of guessing every cell's age at random from
    the population's age distribution.
    """
    if "true_age" not in cells.columns:
        raise ValueError("the single-feature baseline needs ground truth (a simulated store)")
    c = cells.set_index("cell_id").loc[features["cell_id"].to_numpy()]
    age = c["true_age"].to_numpy()
    cyc = c["true_cycle_h"].to_numpy()
    phase = c["true_phase"].to_numpy()
    g1, m, g2 = phase == "G1", phase == "M", phase == "G2"
    rows = []
    for col in FEATURE_COLUMNS:
        v = features[col].to_numpy(dtype=float)
        rho = stats.spearmanr(v, age).statistic
        pred = era_age(v, increasing=bool(rho >= 0))
        d = np.abs((pred - age + 0.5) % 1.0 - 0.5)
        auc = _auc(v[m], v[g2])
        rows.append({
            "feature": col,
            "spearman": float(rho),
            "mae_h": float(np.mean(d * cyc)),
            "spearman_g1": float(stats.spearmanr(v[g1], age[g1]).statistic) if g1.sum() > 2 else float("nan"),
            "auc_m_vs_g2": max(auc, 1.0 - auc),
        })
    rng = np.random.default_rng(0)
    guess = era_age_fraction(rng.uniform(size=len(age)))
    d0 = np.abs((guess - age + 0.5) % 1.0 - 0.5)
    rows.append({"feature": "no information", "spearman": 0.0, "mae_h": float(np.mean(d0 * cyc)),
                 "spearman_g1": 0.0, "auc_m_vs_g2": 0.5})
    return pd.DataFrame(rows).set_index("feature")
