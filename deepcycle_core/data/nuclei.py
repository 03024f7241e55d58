"""Nucleus centres in a nuclear-stain frame without segmentation, and their matching to a truth.

Why in the data layer: two wings find nuclei the same way. Movie ingestion
(:mod:`deepcycle_core.movies.ingest`) detects the nuclei of a real movie, and the virtual microscope
(:mod:`deepcycle_core.sim.render`) can cut its crops at the detected positions instead of the true
ones, as a user's ingest would; the simulator's wing comes before the movies wing, so the one detector
lives here and :mod:`deepcycle_core.movies.detect_track` hands it on.

Detection follows the paper: no segmentation, only nucleus centres found in the nuclear channel.
One Laplacian-of-Gaussian scale set by the expected nucleus diameter (a blob of radius r answers most
strongly at sigma = r / sqrt(2)), then local maxima above a noise-relative threshold.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.optimize import linear_sum_assignment
from scipy.spatial import cKDTree

from .values import positive_number

__all__ = ["normalise_frame", "detect_nuclei", "match_frame"]


def normalise_frame(image: np.ndarray) -> np.ndarray:
    """``(image - background) / noise`` with both estimated from the background alone.

    The background is the frame median (nuclei cover well under half of a frame) and the noise the
    one-sided MAD of the pixels below it, which nuclei never touch. Thresholds in these units mean
    the same at any exposure, bit depth, bleaching or cell density.
    """
    img = np.asarray(image, dtype=np.float32)
    bg = float(np.median(img))
    low = img[img <= bg]
    noise = 1.4826 * float(np.median(bg - low)) if low.size else 0.0
    if noise <= 0:  # quantised, noise-free frames: fall back to the overall spread
        noise = float(img.std()) or 1.0
    return (img - bg) / noise


def detect_nuclei(
    image: np.ndarray,
    diameter_px: float,
    threshold: float = 3.0,
    min_distance_px: float | None = None,
) -> np.ndarray:
    """Nucleus centres ``(n, 2)`` as float (y, x).

    The frame is put in background-noise units (:func:`normalise_frame`), filtered with the
    scale-normalised LoG at sigma = diameter / (2 sqrt 2), and local maxima above ``threshold`` are
    kept. ``min_distance_px`` (default 0.25 x diameter) is the closest two centres may be: small
    enough to keep touching nuclei and the two compact nuclei of a telophase apart.
    """
    from skimage.feature import peak_local_max

    img = np.asarray(image)
    if img.ndim != 2:
        raise ValueError(f"detect_nuclei needs a 2-D image, got shape {img.shape}")
    if diameter_px <= 0:
        raise ValueError(f"nucleus diameter must be positive, got {diameter_px}")
    threshold = positive_number("threshold", threshold)  # at or below 0 the noise itself makes "nuclei"
    z = normalise_frame(img)
    sigma = diameter_px / (2.0 * np.sqrt(2.0))
    response = -(sigma**2) * ndimage.gaussian_laplace(z, sigma, mode="reflect")
    min_d = int(round(min_distance_px if min_distance_px is not None else 0.25 * diameter_px))
    peaks = peak_local_max(response, min_distance=max(1, min_d), threshold_abs=threshold, exclude_border=False)
    if len(peaks) == 0:
        return np.empty((0, 2), dtype=np.float64)
    # sub-pixel centre: parabola through the response at the peak and its neighbours, per axis
    h, w = response.shape
    out = peaks.astype(np.float64)
    for axis, size in ((0, h), (1, w)):
        lo = peaks.copy()
        hi = peaks.copy()
        lo[:, axis] = np.clip(peaks[:, axis] - 1, 0, size - 1)
        hi[:, axis] = np.clip(peaks[:, axis] + 1, 0, size - 1)
        f0 = response[peaks[:, 0], peaks[:, 1]]
        fm = response[lo[:, 0], lo[:, 1]]
        fp = response[hi[:, 0], hi[:, 1]]
        denom = fm - 2 * f0 + fp
        shift = np.where(denom < 0, 0.5 * (fm - fp) / np.where(denom < 0, denom, -1), 0.0)
        out[:, axis] += np.clip(shift, -0.5, 0.5)
    return out


def match_frame(det_xy: np.ndarray, truth_xy: np.ndarray, max_dist: float) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching (Hungarian) of detections to truth within ``max_dist``: index pairs."""
    if len(det_xy) == 0 or len(truth_xy) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    tree = cKDTree(truth_xy)
    pairs = tree.query_ball_point(det_xy, r=max_dist)
    big = 1e6
    cost = np.full((len(det_xy), len(truth_xy)), big)
    for i, js in enumerate(pairs):
        for j in js:
            cost[i, j] = float(np.hypot(*(det_xy[i] - truth_xy[j])))
    r, c = linear_sum_assignment(cost)
    ok = cost[r, c] < big
    return r[ok], c[ok]
