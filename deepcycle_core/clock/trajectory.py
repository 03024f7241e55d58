"""The cycle ring: a closed curve through the descriptors, each cell's angle on it, pseudotime, hours.

Why this shape of method: a cycling population traces a closed loop in any descriptor that follows the
cycle; the position along that loop is the cell's clock. The original fitted a 30-node ring
self-organising map on a UMAP and set origin and direction by hand; here

1. the descriptors (any ``d >= 2`` features; the network's 4 log-probabilities by default) are centred,
   optionally whitened, and projected to 2-D by PCA;
2. a smooth closed principal curve is fitted in that plane (Hastie & Stuetzle 1989 iterations with a
   periodic smoother: a low-order Fourier series in the arc-length parameter, refitted after every
   re-projection), and each cell's pseudotime is the arc-length fraction of its projection on the curve;
3. direction and origin come from the FUCCI classes, never by hand (see :func:`orient`): going
   forward, red-high cells lie just before the both-high (G1/S) peak and green-high cells just after it
   (red before green); the origin (division) is where green-high turns into low/low;
4. hours by ergodic rate analysis (Kafri et al. 2013): in an exponentially growing population with
   doubling time T, the fraction F of cells with pseudotime <= p maps to age t = -T log2(1 - F/2);
5. the paper's variant for comparison: a 30-node ring SOM in the same plane, oriented the same way.

Fitting never sees held-out cells (the full-cycle tracks used as validation evidence); the fitted
:class:`Ring` is then applied to every cell.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from ..data.atomic import write_json_atomic, write_parquet_atomic
from ..data.fucci import CLASS_NAMES
from ..data.growth import doubling_time_from_counts, era_age_fraction
from .metrics import TWO_PI
from .orientation import NOT_A_CLOCK, MovieOrientation, MovieTooShort, TrackTable, orient_by_tracks, ring_quality
from ..data.runs import RunDir
from ..data.split import FIT_SPLITS, read_split

__all__ = [
    "CLASS_ORDER", "CLOCK_NAME", "NO_RING_NAME", "RING_VERSION", "NoRing", "Orientation", "Ring", "TrajectoryResult", "descriptor_columns",
    "fit_closed_curve", "fit_ring", "fit_ring_som", "load_ring", "orient", "project_to_curve", "read_descriptor_matrix",
    "refresh_command", "register_cli", "run_trajectory", "run_doubling_time", "som_nodes_of", "try_trajectory",
]

#: Biological order of the 4 FUCCI classes going forward from division.
CLASS_ORDER = (0, 1, 3, 2)
RING_VERSION = 1
#: What the trajectory stage writes instead of a ring when the descriptors give none (its reason).
NO_RING_NAME = "no_ring.json"

#: Every cell's cycle-head clock with its calibrated interval (written when the descriptors have the head).
CLOCK_NAME = "clock.parquet"


class NoRing(ValueError):
    """The descriptors give no ring: no closed curve runs through them, or neither the movie's tracks nor
    the FUCCI classes can orient it (the message says which). A result, not a fault: the trajectory
    stage records it (``trajectory/no_ring.json``), and a chapter reports it and goes on
    (:func:`try_trajectory`)."""


# ---------------------------------------------------------------------------------------------
# geometry helpers
# ---------------------------------------------------------------------------------------------
def _fourier_basis(lam: np.ndarray, n_harmonics: int) -> np.ndarray:
    k = np.arange(1, n_harmonics + 1)
    ang = TWO_PI * lam[:, None] * k[None, :]
    return np.hstack([np.ones((lam.size, 1)), np.cos(ang), np.sin(ang)])


def _arc(P: np.ndarray) -> tuple[np.ndarray, float]:
    """Cumulative arc length at each vertex of the closed polyline P (m, 2), and the total length."""
    seg = np.linalg.norm(np.roll(P, -1, axis=0) - P, axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    return cum[:-1], float(cum[-1])


def _resample_closed(P: np.ndarray, m: int, start: float = 0.0) -> np.ndarray:
    """m points equally spaced in arc length along the closed polyline P, from arc fraction ``start``."""
    s, L = _arc(P)
    closed = np.vstack([P, P[:1]])
    sc = np.concatenate([s, [L]]) / L
    t = (start + np.arange(m) / m) % 1.0
    return np.column_stack([np.interp(t, sc, closed[:, 0]), np.interp(t, sc, closed[:, 1])])


def project_to_curve(xy: np.ndarray, curve: np.ndarray, chunk: int = 1_000_000) -> tuple[np.ndarray, np.ndarray]:
    """Arc-length fraction in [0, 1) of each point's projection on the closed polyline, and its squared distance.

    The nearest vertex is found with a KD-tree, then the point is projected on the two segments that
    meet there, so the parameter is continuous (not quantised to the vertices).
    """
    xy = np.asarray(xy, dtype=float)
    s, L = _arc(curve)
    if L <= 0:
        raise ValueError("the ring has zero length: the descriptors do not trace a loop")
    m = len(curve)
    tree = cKDTree(curve)
    seg_len = np.linalg.norm(np.roll(curve, -1, axis=0) - curve, axis=1)
    lam = np.empty(len(xy))
    d2 = np.empty(len(xy))
    for a in range(0, len(xy), chunk):
        X = xy[a : a + chunk]
        _, k = tree.query(X, workers=-1)
        best_d = np.full(len(X), np.inf)
        best_p = np.zeros(len(X))
        for i0 in ((k - 1) % m, k):
            i1 = (i0 + 1) % m
            A, B = curve[i0], curve[i1]
            AB = B - A
            den = np.maximum(np.einsum("ij,ij->i", AB, AB), 1e-300)
            t = np.clip(np.einsum("ij,ij->i", X - A, AB) / den, 0.0, 1.0)
            Q = A + t[:, None] * AB
            d = np.einsum("ij,ij->i", X - Q, X - Q)
            better = d < best_d
            best_d[better] = d[better]
            best_p[better] = (s[i0] + t * seg_len[i0])[better]
        lam[a : a + chunk] = (best_p / L) % 1.0
        d2[a : a + chunk] = best_d
    return lam, d2


def fit_closed_curve(
    xy: np.ndarray,
    *,
    n_harmonics: int = 6,
    smoothing: float = 1e-2,
    n_points: int = 512,
    max_iter: int = 30,
    tol: float = 1e-5,
) -> tuple[np.ndarray, dict[str, Any]]:
    """A smooth closed principal curve through 2-D points (Hastie–Stuetzle iterations).

    Start from each point's angle about the centre of the (axis-scaled) cloud; then repeat: fit x(λ)
    and y(λ) as Fourier series of ``n_harmonics`` harmonics (ridge penalty ``smoothing``·k⁴ on the k-th
    harmonic, a periodic smoothing-spline-like roughness penalty), resample the curve at equal arc
    length, and re-project every point to get its new λ, until the mean squared distance stops
    falling. Returns the curve as ``n_points`` vertices (equal arc-length spacing) and diagnostics.
    """
    xy = np.asarray(xy, dtype=float)
    c = xy.mean(axis=0)
    sd = xy.std(axis=0)
    sd[sd == 0] = 1.0
    z = (xy - c) / sd
    lam = (np.arctan2(z[:, 1], z[:, 0]) / TWO_PI) % 1.0
    k = np.arange(1, n_harmonics + 1, dtype=float)
    scale2 = float(np.mean(np.sum((xy - c) ** 2, axis=1))) or 1.0
    penalty = smoothing * len(xy) * np.concatenate([[0.0], k**4, k**4])
    prev = np.inf
    history = []
    curve = None
    for it in range(max_iter):
        B = _fourier_basis(lam, n_harmonics)
        coef = np.linalg.solve(B.T @ B + np.diag(penalty), B.T @ xy)
        dense = _fourier_basis(np.arange(4 * n_points) / (4 * n_points), n_harmonics) @ coef
        curve = _resample_closed(dense, n_points)
        lam, d2 = project_to_curve(xy, curve)
        msd = float(d2.mean()) / scale2
        history.append(msd)
        if prev - msd < tol * max(prev, 1e-12) and it > 0:
            break
        prev = msd
    return curve, {"iterations": len(history), "relative_msd": history[-1], "msd_history": history}


# ---------------------------------------------------------------------------------------------
# orientation: direction and origin from the FUCCI classes
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Orientation:
    """``pseudotime = (direction · (raw − origin)) mod 1``; raw is a parameter in [0, 1) on the ring."""

    direction: int
    origin: float
    g1s: float  # oriented position of the both-high (G1/S) enrichment peak
    direction_score: float  # in [-2, 2]; sign chose the direction, size is the evidence
    division_score: float  # in [-2, 2]; contrast of the green-high -> low/low step at the origin
    class_means: dict[int, float]  # circular mean pseudotime of each class after orientation

    def apply(self, raw: Any) -> np.ndarray:
        return (self.direction * (np.asarray(raw, dtype=float) - self.origin)) % 1.0


def _circ_mean_turns(x: np.ndarray) -> tuple[float, float]:
    z = np.exp(1j * TWO_PI * x).mean()
    return float((np.angle(z) / TWO_PI) % 1.0), float(abs(z))


class _Windows:
    """Counts of cells (optionally of one class) in arcs (c + lo, c + hi] of a ring, by binary search."""

    def __init__(self, x: np.ndarray) -> None:
        s = np.sort(x % 1.0)
        self.ext = np.concatenate([s - 1.0, s, s + 1.0])

    def count(self, centers: np.ndarray, lo: float, hi: float) -> np.ndarray:
        return np.searchsorted(self.ext, centers + hi, "right") - np.searchsorted(self.ext, centers + lo, "right")


def _best_split(offsets: np.ndarray, is_before: np.ndarray) -> float:
    """Split point on a line minimising (#'after'-class cells before it + #'before'-class cells after it)."""
    vals, inv = np.unique(offsets, return_inverse=True)
    n_before = np.bincount(inv, weights=is_before.astype(float), minlength=vals.size)
    n_after = np.bincount(inv, weights=(~is_before).astype(float), minlength=vals.size)
    # candidate j: split just before vals[j] (j = 0..V); cost = after-class left of it + before-class right of it
    left_after = np.concatenate([[0.0], np.cumsum(n_after)])
    right_before = n_before.sum() - np.concatenate([[0.0], np.cumsum(n_before)])
    cost = left_after + right_before
    best = np.flatnonzero(cost == cost.min())
    j = int(best[len(best) // 2])
    lo = vals[j - 1] if j > 0 else vals[0]
    hi = vals[j] if j < vals.size else vals[-1]
    return float((lo + hi) / 2.0)


def _candidates(x: np.ndarray, n_grid: int = 1000) -> np.ndarray:
    """Where a boundary may sit: a fine grid, or midpoints between the values of a discrete ring (SOM)."""
    vals = np.unique(x % 1.0)
    if vals.size <= n_grid // 4:
        nxt = np.roll(vals, -1)
        nxt[-1] += 1.0
        return ((vals + nxt) / 2.0) % 1.0
    return (np.arange(n_grid) + 0.5) / n_grid


def orient(
    raw: Any,
    classes: Any,
    *,
    min_class_cells: int = 10,
    window: float = 0.05,
    flank: float = 0.25,
    min_score: float = 0.2,
) -> Orientation:
    """Direction and origin of a ring from the FUCCI classes of its cells (unlabelled: class −1).

    Both rules are local, because the paper's median-split classes are not single arcs: low/low holds
    early-G1 cells *and* early-S cells (red already degraded, green not yet above its median), so a
    rule on class means can point the wrong way.

    Direction — "red before green", read where it is unambiguous, at G1/S: the both-high class (3) is
    most enriched at G1/S; going forward, red-high (1) cells lie just behind that point and green-high
    (2) cells just ahead. The score (n1 behind − n1 ahead)/(n1) + (n2 ahead − n2 behind)/(n2) in
    ``flank``-wide arcs is in [−2, 2]; its sign picks the direction.

    Origin — division, where green-high turns into low/low: the point maximising the contrast
    (f2 − f0 in the ``window`` arc behind) + (f0 − f2 in the arc ahead) of class fractions, then refined
    to the best green-high/low-low split inside that neighbourhood. Going forward, this step happens
    only at anaphase (in S, low/low turns *into* green-high, the opposite step).

    Raises ValueError when a class is missing or the classes do not order the ring.
    """
    raw = np.asarray(raw, dtype=float) % 1.0
    classes = np.asarray(classes)
    if raw.shape != classes.shape:
        raise ValueError(f"{raw.size} ring positions but {classes.size} class labels")
    for c in CLASS_ORDER:
        k = int(np.sum(classes == c))
        if k < min_class_cells:
            raise ValueError(
                f"class {c} ({CLASS_NAMES[c]}) has {k} cells, fewer than {min_class_cells}: "
                "cannot orient the ring (are the FUCCI classes / predictions complete?)"
            )
    lab = classes >= 0
    raw_l, cls_l = raw[lab], classes[lab]
    cand = _candidates(raw_l)
    n_vals = np.unique(raw_l).size
    if cand.size == n_vals:  # a discrete ring (SOM nodes): whole nodes per window, borders between nodes
        window = 1.0 / n_vals
        flank = max(1, round(flank * n_vals)) / n_vals
    n_min = max(3.0, 0.2 * lab.sum() * 2 * window)
    # -- direction: around the both-high (G1/S) enrichment peak
    allw = _Windows(raw_l)
    w = {c: _Windows(raw_l[cls_l == c]) for c in CLASS_ORDER}
    n_all = allw.count(cand, -window, window)
    f3 = np.where(n_all >= n_min, w[3].count(cand, -window, window) / np.maximum(n_all, 1), -1.0)
    peak = cand[int(np.argmax(f3))]
    pk = np.array([peak])
    b1, a1 = w[1].count(pk, -flank, 0.0)[0], w[1].count(pk, 0.0, flank)[0]
    b2, a2 = w[2].count(pk, -flank, 0.0)[0], w[2].count(pk, 0.0, flank)[0]
    score = (b1 - a1) / max(b1 + a1, 1) + (a2 - b2) / max(a2 + b2, 1)
    if abs(score) < min_score:
        raise ValueError(
            f"cannot tell the ring's direction: around the both-high (G1/S) peak red-high and green-high cells "
            f"are not on opposite sides (score {score:.2f}); the descriptors do not order the cycle"
        )
    direction = 1 if score > 0 else -1
    # -- origin: the green-high -> low/low step, in oriented coordinates
    x = (direction * raw_l) % 1.0
    xa = _Windows(x)
    x0, x2 = _Windows(x[cls_l == 0]), _Windows(x[cls_l == 2])
    cand_x = _candidates(x)
    nb, na = xa.count(cand_x, -window, 0.0), xa.count(cand_x, 0.0, window)
    ok = (nb >= n_min / 2) & (na >= n_min / 2)
    fb = (x2.count(cand_x, -window, 0.0) - x0.count(cand_x, -window, 0.0)) / np.maximum(nb, 1)
    fa = (x0.count(cand_x, 0.0, window) - x2.count(cand_x, 0.0, window)) / np.maximum(na, 1)
    contrast = np.where(ok, fb + fa, -np.inf)
    best = float(np.max(contrast))
    if not best >= min_score:
        raise ValueError(
            f"no green-high -> low/low step (division) found on the ring (best contrast {best:.2f}): "
            "the descriptors do not order the cycle"
        )
    c0 = cand_x[int(np.argmax(contrast))]
    off = (x - c0 + 0.5) % 1.0 - 0.5  # signed offset from the coarse origin
    near = (np.abs(off) <= window) & ((cls_l == 2) | (cls_l == 0))
    origin_x = (c0 + _best_split(off[near], cls_l[near] == 2)) % 1.0 if near.any() else c0
    origin_raw = float((direction * origin_x) % 1.0)
    means = {c: (_circ_mean_turns(x[cls_l == c])[0] - origin_x) % 1.0 for c in CLASS_ORDER}
    return Orientation(
        direction=direction,
        origin=origin_raw,
        g1s=float((direction * peak - origin_x) % 1.0),
        direction_score=float(score),
        division_score=best,
        class_means=means,
    )


# ---------------------------------------------------------------------------------------------
# the paper's variant: a ring self-organising map
# ---------------------------------------------------------------------------------------------
def fit_ring_som(
    xy: np.ndarray, n_nodes: int = 30, *, n_iter: int = 40, sigma_start: float | None = None, sigma_end: float = 0.7
) -> np.ndarray:
    """A 1-D ring self-organising map (batch algorithm) on 2-D points; returns node positions (n_nodes, 2).

    Nodes start on an ellipse around the cloud (so they are already in ring order) and are updated
    with a Gaussian neighbourhood over ring distance whose width shrinks geometrically from
    ``sigma_start`` (default n_nodes/4) to ``sigma_end``. Deterministic: no random initialisation.
    """
    xy = np.asarray(xy, dtype=float)
    c = xy.mean(axis=0)
    sd = xy.std(axis=0) * np.sqrt(2.0)
    ang = TWO_PI * np.arange(n_nodes) / n_nodes
    nodes = c + np.column_stack([np.cos(ang), np.sin(ang)]) * sd
    idx = np.arange(n_nodes)
    ring = np.abs(idx[:, None] - idx[None, :])
    ring = np.minimum(ring, n_nodes - ring).astype(float)
    s0 = sigma_start if sigma_start is not None else n_nodes / 4.0
    for it in range(n_iter):
        sigma = s0 * (sigma_end / s0) ** (it / max(n_iter - 1, 1))
        H = np.exp(-(ring**2) / (2.0 * sigma**2))
        bmu = som_nodes_of(xy, nodes)
        counts = np.bincount(bmu, minlength=n_nodes).astype(float)
        sums = np.column_stack([np.bincount(bmu, weights=xy[:, j], minlength=n_nodes) for j in range(2)])
        den = H @ counts
        nodes = np.where(den[:, None] > 0, (H @ sums) / np.maximum(den, 1e-300)[:, None], nodes)
    return nodes


def som_nodes_of(xy: np.ndarray, nodes: np.ndarray, chunk: int = 1 << 18) -> np.ndarray:
    """Index of the nearest node (best-matching unit) of each point (brute force: few nodes, many points)."""
    xy = np.asarray(xy, dtype=float)
    nodes = np.asarray(nodes, dtype=float)
    nn = np.einsum("ij,ij->i", nodes, nodes)
    out = np.empty(len(xy), dtype=np.int64)
    for a in range(0, len(xy), chunk):
        X = xy[a : a + chunk]
        out[a : a + chunk] = np.argmin(nn[None, :] - 2.0 * (X @ nodes.T), axis=1)
    return out


# ---------------------------------------------------------------------------------------------
# the fitted ring
# ---------------------------------------------------------------------------------------------
@dataclass
class Ring:
    """A fitted, oriented cycle ring that can be applied to any cell's descriptors.

    ``curve[0]`` is the division point and the vertices run forward in cycle order, so a cell's
    pseudotime is simply the arc-length fraction of its projection on the curve. ``som_nodes`` are
    the paper's-variant nodes, already re-indexed so that node 0 follows division.
    """

    center: np.ndarray  # (d,) descriptor mean
    scale: np.ndarray  # (d,) divisor applied before PCA (ones unless whitened)
    components: np.ndarray  # (2, d) PCA axes
    curve: np.ndarray  # (m, 2) oriented closed curve in the 2-D plane
    som_nodes: np.ndarray  # (n_nodes, 2) oriented SOM nodes
    era_quantiles: np.ndarray  # pseudotime quantiles of the fitting population (for ERA's F)
    T_hours: float | None = None
    T_source: str = "none: no doubling time given and no growth curve available"
    info: dict[str, Any] = field(default_factory=dict)

    # -- applying -------------------------------------------------------------------------------
    def project(self, descriptors: Any) -> np.ndarray:
        """2-D coordinates of descriptors in the ring's plane."""
        X = _check_descriptors(descriptors, expect_dim=self.center.size)
        return ((X - self.center) / self.scale) @ self.components.T

    def pseudotime(self, xy: np.ndarray) -> np.ndarray:
        return project_to_curve(xy, self.curve)[0]

    def era_fraction(self, pseudotime: Any) -> np.ndarray:
        """F: the fraction of the fitting population with pseudotime <= p."""
        q = self.era_quantiles
        levels = np.linspace(0.0, 1.0, q.size)
        return np.interp(np.asarray(pseudotime, dtype=float), q, levels, left=0.0, right=1.0)

    @property
    def verdict(self) -> str:
        """``clock``, ``folded``, ``reversed`` or ``undirected`` (the tracks agree on no direction) as judged
        along the fitting tracks; ``unchecked`` without them."""
        return str(self.info.get("quality", {}).get("verdict", "unchecked"))

    def hours(self, pseudotime: Any) -> np.ndarray:
        """ERA hours since division; NaN when the ring has no doubling time, or when the movie showed
        that it is not a clock (folded or reversed): its positions are no time to calibrate."""
        p = np.asarray(pseudotime, dtype=float)
        if self.T_hours is None or self.verdict in NOT_A_CLOCK:
            return np.full(p.shape, np.nan)
        return self.T_hours * era_age_fraction(self.era_fraction(p))

    def som_node(self, xy: np.ndarray) -> np.ndarray:
        return som_nodes_of(xy, self.som_nodes)

    def transform(self, descriptors: Any) -> pd.DataFrame:
        """x2d, y2d, angle (rad), pseudotime [0, 1), hours (ERA) and som_node for each row."""
        xy = self.project(descriptors)
        p = self.pseudotime(xy)
        return pd.DataFrame(
            {
                "x2d": xy[:, 0].astype(np.float32),
                "y2d": xy[:, 1].astype(np.float32),
                "angle": TWO_PI * p,
                "pseudotime": p,
                "hours": self.hours(p),
                "som_node": self.som_node(xy).astype(np.int16),
            }
        )

    def with_doubling_time(self, T_hours: float | None, source: str) -> "Ring":
        if T_hours is not None and not (np.isfinite(T_hours) and T_hours > 0):
            raise ValueError(f"doubling time must be a positive number of hours, got {T_hours!r}")
        return replace(self, T_hours=None if T_hours is None else float(T_hours), T_source=source)

    # -- persistence ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "version": RING_VERSION,
            "projection": {
                "center": self.center.tolist(),
                "scale": self.scale.tolist(),
                "components": self.components.tolist(),
            },
            "curve": self.curve.tolist(),
            "origin": {
                "curve_index": 0,
                "xy": self.curve[0].tolist(),
                "rule": self.info.get("origin_rule", ""),
                "score": self.info.get("division_score"),
            },
            "direction": {
                "curve_order": "forward: pseudotime = arc-length fraction from curve[0] along increasing index",
                "rule": self.info.get("direction_rule", ""),
                "score": self.info.get("direction_score"),
            },
            "som_nodes": self.som_nodes.tolist(),
            "era_quantiles": self.era_quantiles.tolist(),
            "T_hours": self.T_hours,
            "T_source": self.T_source,
            "info": self.info,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Ring":
        if d.get("version") != RING_VERSION:
            raise ValueError(f"ring version {d.get('version')!r}, this package reads {RING_VERSION}")
        p = d["projection"]
        return cls(
            center=np.asarray(p["center"], dtype=float),
            scale=np.asarray(p["scale"], dtype=float),
            components=np.asarray(p["components"], dtype=float),
            curve=np.asarray(d["curve"], dtype=float),
            som_nodes=np.asarray(d["som_nodes"], dtype=float),
            era_quantiles=np.asarray(d["era_quantiles"], dtype=float),
            T_hours=d.get("T_hours"),
            T_source=d.get("T_source", ""),
            info=d.get("info", {}),
        )

    def save(self, path: str | os.PathLike) -> Path:
        return write_json_atomic(path, self.to_dict(), parents=True, indent=1, default=_json_default)


def load_ring(path: str | os.PathLike) -> Ring:
    path = Path(path)
    if not path.exists():
        none = path.parent / NO_RING_NAME
        if none.exists():
            raise NoRing(f"{path}: the trajectory stage found no ring: {json.loads(none.read_text()).get('reason', '')}")
        raise FileNotFoundError(f"{path}: no fitted ring here (run `deepcycle trajectory` first)")
    try:
        return Ring.from_dict(json.loads(path.read_text()))
    except (json.JSONDecodeError, KeyError, ValueError) as exc:
        raise ValueError(f"{path}: not a valid ring file ({exc})") from exc


def run_doubling_time(run: RunDir | str | os.PathLike) -> float | None:
    """The doubling time the trajectory stage used (``ring.json``), or the one it recorded with no ring
    (``no_ring.json``): for the chapters after it that need T whether or not the descriptors gave a ring.
    A ring.json is read only while its stamp vouches for it (edited by hand or left from other inputs:
    :class:`~deepcycle_core.data.fingerprint.StaleInputError`)."""
    from ..data.fingerprint import current_ring

    run = run if isinstance(run, RunDir) else RunDir(Path(run))
    none = run.trajectory / NO_RING_NAME
    if not run.ring.exists() and none.exists():
        T = json.loads(none.read_text()).get("T_hours")
        return None if T is None else float(T)
    return load_ring(current_ring(run)).T_hours


def _check_descriptors(descriptors: Any, expect_dim: int | None = None) -> np.ndarray:
    X = np.asarray(descriptors, dtype=float)
    if X.ndim != 2 or X.shape[1] < 2:
        raise ValueError(f"descriptors must be a 2-D array (n_cells, d >= 2), got shape {X.shape}")
    if expect_dim is not None and X.shape[1] != expect_dim:
        raise ValueError(f"descriptors have {X.shape[1]} columns, the ring was fitted on {expect_dim}")
    bad = ~np.isfinite(X).all(axis=1)
    if bad.any():
        raise ValueError(f"descriptors contain NaN or infinite values in {int(bad.sum())} cell(s), e.g. row {int(np.flatnonzero(bad)[0])}")
    return X


def fit_ring(
    descriptors: Any,
    classes: Any | None = None,
    *,
    whiten: bool = False,
    n_harmonics: int = 6,
    smoothing: float = 1e-2,
    n_curve_points: int = 512,
    som_nodes: int = 30,
    min_cells: int = 100,
    min_class_cells: int = 10,
    max_fit_cells: int = 200_000,
    T_hours: float | None = None,
    T_source: str | None = None,
    seed: int = 0,
    tracks: TrackTable | None = None,
    orientation: str = "auto",
) -> Ring:
    """Fit an oriented cycle ring to descriptors (n, d) of the fitting cells.

    Orientation (direction and origin), by ``orientation``:

    * ``"movie"`` -- from ``tracks`` (:class:`~deepcycle_core.clock.orientation.TrackTable` of the same
      cells): time runs forward along the tracks, daughters' first frames mark division
      (:func:`~deepcycle_core.clock.orientation.orient_by_tracks`); the rule for any data set that comes
      from a time-lapse, whatever its FUCCI dynamics;
    * ``"fucci"`` -- from the FUCCI classes 0..3 (−1 = unlabelled; without ``classes`` the network's
      own prediction, argmax of a 4-column descriptor): the rule for snapshot data;
    * ``"auto"`` -- the movie when ``tracks`` hold enough tracks and births, else the FUCCI classes.

    With ``tracks`` the oriented ring is also judged along them (:func:`ring_quality`): its verdict
    (clock, folded, reversed) is in ``info["quality"]``, and a ring that is not a clock gives no hours.
    When the tracks agree on no direction (``"auto"``) the verdict is ``undirected``: the FUCCI rule
    orients the ring so that it can still be drawn and compared, but it is no clock and gets no hours. At most ``max_fit_cells`` cells (a seeded
    random subset) are used for the curve, the SOM and the ERA population (200k cells pin quantiles to
    ~0.2 %); the movie rule reads every fitting cell. Raises ValueError with the reason when no ring
    can be fitted: :class:`NoRing` when the descriptors give no ring (no loop, or neither rule can orient it).
    """
    if orientation not in ("auto", "movie", "fucci"):
        raise ValueError(f"orientation must be 'auto', 'movie' or 'fucci', got {orientation!r}")
    X = _check_descriptors(descriptors)
    n, d = X.shape
    if n < min_cells:
        raise ValueError(f"only {n} cells to fit the ring, at least {min_cells} are needed")
    if tracks is not None and len(tracks) != n:
        raise ValueError(f"{n} descriptor rows but {len(tracks)} track entries")
    if orientation == "movie" and tracks is None:
        raise ValueError("orientation 'movie' needs the cells' tracks")
    tracks_for_orientation = None if orientation == "fucci" else tracks
    classes, class_source = _orientation_classes(X, classes, tracks_for_orientation is not None)
    center, scale, components, explained, xy = _projection(X, whiten, max_fit_cells)
    # fit on a seeded subset when large
    rng = np.random.default_rng(seed)
    fit_idx = np.sort(rng.choice(n, max_fit_cells, replace=False)) if n > max_fit_cells else np.arange(n)
    xs, cs = xy[fit_idx], classes[fit_idx]
    try:  # from here on a ValueError means the descriptors give no ring: NoRing, with the reason
        curve_raw, diag = fit_closed_curve(xs, n_harmonics=n_harmonics, smoothing=smoothing, n_points=n_curve_points)
        raw, _ = project_to_curve(xs, curve_raw)
        if tracks_for_orientation is not None:
            raw_all = raw if fit_idx.size == n else project_to_curve(xy, curve_raw)[0]
            ori, movie_note, undirected = _orient_by_movie(
                raw_all, tracks_for_orientation, raw, cs, orientation == "movie", min_class_cells
            )
        else:
            ori, movie_note, undirected = orient(raw, cs, min_class_cells=min_class_cells), "", ""
    except NoRing:
        raise
    except ValueError as exc:
        raise NoRing(str(exc)) from exc
    # re-index the curve: vertex 0 at the origin, vertices in forward order
    if ori.direction == 1:
        curve, start = curve_raw, ori.origin
    else:  # same vertex 0, walked backwards: raw arc fraction r becomes 1 - r
        curve, start = np.roll(curve_raw[::-1], 1, axis=0), (1.0 - ori.origin) % 1.0
    curve = _resample_closed(curve, n_curve_points, start=start)
    pt, _ = project_to_curve(xs, curve)
    # the paper's variant, oriented by the same rule
    try:
        nodes, som_ori = _oriented_som(xs, cs, curve_raw, ori, som_nodes, min_class_cells)
    except ValueError as exc:
        raise NoRing(f"the paper's ring SOM cannot be oriented: {exc}") from exc
    levels = np.linspace(0.0, 1.0, 1001)
    quant = np.quantile(pt, levels)
    quant = quant + np.arange(quant.size) * 1e-12  # strictly increasing for interpolation
    info = {
        "n_cells": int(n),
        "n_fit_cells": int(fit_idx.size),
        "descriptor_dim": int(d),
        "whiten": bool(whiten),
        "explained_variance_2d": explained,
        "n_harmonics": int(n_harmonics),
        "smoothing": float(smoothing),
        "curve_fit": {k: v for k, v in diag.items() if k != "msd_history"},
        **_orientation_info(ori, class_source, movie_note),
        "som": {"n_nodes": int(som_nodes), **_orientation_scores(som_ori)},
        "seed": int(seed),
    }
    if tracks is not None:  # is the oriented ring a clock along the fitting tracks?
        pt_all = pt if fit_idx.size == n else project_to_curve(xy, curve)[0]
        info["quality"] = _quality(pt_all, tracks, undirected)
    ring = Ring(center=center, scale=scale, components=components, curve=curve, som_nodes=nodes, era_quantiles=quant,
                info=info)
    if T_hours is not None:
        ring = ring.with_doubling_time(T_hours, T_source or "given by the user")
    return ring


def _orientation_classes(X: np.ndarray, classes: Any | None, has_tracks: bool) -> tuple[np.ndarray, str]:
    """The FUCCI classes that orient the ring (given, or argmax of 4 class scores, or none when tracks do) and their source."""
    n, d = X.shape
    if classes is None and (not has_tracks and d != 4):
        raise ValueError(f"without FUCCI classes or tracks the ring is oriented by argmax of 4 class scores; got {d} columns")
    if classes is None and d != 4:
        return np.full(n, -1, dtype=np.int64), "none"
    if classes is None:
        return np.argmax(X, axis=1), "predicted (argmax of descriptors)"
    classes = np.asarray(classes).astype(np.int64).ravel()
    if classes.size != n:
        raise ValueError(f"{n} descriptor rows but {classes.size} class labels")
    return classes, "labels"


def _projection(X: np.ndarray, whiten: bool, max_fit_cells: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list, np.ndarray]:
    """(center, scale, components, explained variance, xy): the descriptors' 2-D PCA plane, signs fixed."""
    n, d = X.shape
    center = X.mean(axis=0)
    scale = X.std(axis=0) if whiten else np.ones(d)
    if whiten and (scale == 0).any():
        raise ValueError(f"descriptor column(s) {np.flatnonzero(scale == 0).tolist()} are constant: cannot whiten")
    Z = (X - center) / scale
    _, S, Vt = np.linalg.svd(Z[:: max(1, n // max_fit_cells)], full_matrices=False)
    components = Vt[:2]
    for i in range(2):  # deterministic sign: largest loading positive
        if components[i, np.argmax(np.abs(components[i]))] < 0:
            components[i] = -components[i]
    explained = (S[:2] ** 2 / np.sum(S**2)).tolist()
    return center, scale, components, explained, Z @ components.T


def _orient_by_movie(
    raw_all: np.ndarray, tracks: TrackTable, raw: np.ndarray, cs: np.ndarray, movie_only: bool, min_class_cells: int,
) -> tuple[Orientation | MovieOrientation, str, str]:
    """(orientation, note, why undirected): the movie's, or the FUCCI rule's when the movie cannot say (unless ``movie_only``)."""
    try:
        return orient_by_tracks(raw_all, tracks), "", ""
    except MovieTooShort as exc:
        if movie_only:
            raise
        movie_note = f"the movie could not orient the ring ({exc}); FUCCI classes used"
        return orient(raw, cs, min_class_cells=min_class_cells), movie_note, ""
    except ValueError as exc:  # the tracks do not agree on a direction: no clock, whatever else orients it
        if movie_only:
            raise
        movie_note = "the tracks do not agree on a direction; FUCCI classes orient the ring for drawing only"
        return orient(raw, cs, min_class_cells=min_class_cells), movie_note, str(exc)


def _oriented_som(
    xs: np.ndarray, cs: np.ndarray, curve_raw: np.ndarray, ori: Orientation | MovieOrientation, som_nodes: int,
    min_class_cells: int,
) -> tuple[np.ndarray, Orientation | MovieOrientation]:
    """The paper's variant, oriented by the same rule: the SOM nodes from node 0 forward, and their orientation."""
    nodes = fit_ring_som(xs[:: max(1, len(xs) // 50_000)], som_nodes)  # 30 nodes need no more cells
    if isinstance(ori, MovieOrientation):
        # the movie's orientation of the curve, carried to the nodes: each node's place on the oriented
        # curve; node 0 is the first after the origin, and the ring is walked the way those places grow
        # (re-reading 30 discrete node positions along the tracks would be a noisier second verdict)
        q = ori.apply(project_to_curve(nodes, curve_raw)[0])
        som_dir = 1 if np.sum((np.diff(np.concatenate([q, q[:1]])) + 0.5) % 1.0 - 0.5) >= 0 else -1
        k0, som_ori = int(np.argmin(q)), ori
        order = (k0 + som_dir * np.arange(som_nodes)) % som_nodes
    else:
        som_ori = orient(som_nodes_of(xs, nodes) / som_nodes, cs, min_class_cells=min_class_cells)
        # node that follows the origin (a class boundary between nodes) becomes node 0
        k0 = int(np.ceil(((som_ori.origin * som_nodes) - 1e-9))) % som_nodes if som_ori.direction == 1 else int(
            np.floor(som_ori.origin * som_nodes + 1e-9)
        ) % som_nodes
        order = (k0 + som_ori.direction * np.arange(som_nodes)) % som_nodes
    return nodes[order], som_ori


def _quality(pt_all: np.ndarray, tracks: TrackTable, undirected: str) -> dict[str, Any]:
    """``info["quality"]``: the ring's verdict along the fitting tracks (``undirected`` when they agree on no direction)."""
    try:
        quality = ring_quality(pt_all, tracks).to_dict()
    except ValueError as exc:
        quality = {"verdict": "unchecked", "reason": str(exc)}
    if undirected:
        quality.update(verdict="undirected", reason=undirected)
    return quality


def _orientation_scores(ori: Orientation | MovieOrientation) -> dict[str, Any]:
    """The evidence behind an orientation, by rule."""
    if isinstance(ori, MovieOrientation):
        return {"forward_tracks": round(ori.forward_tracks, 4), "direction_z": round(ori.z, 2),
                "n_tracks": ori.n_tracks, "n_births": ori.n_births, "birth_spread": round(ori.birth_spread, 4)}
    return {"direction_score": round(ori.direction_score, 4), "division_score": round(ori.division_score, 4)}


def _orientation_info(ori: Orientation | MovieOrientation, class_source: str, note: str) -> dict[str, Any]:
    """What ring.json says about how the ring was oriented."""
    if isinstance(ori, MovieOrientation):
        out: dict[str, Any] = {
            "orientation": "movie",
            "direction_rule": "time runs forward along most fitting tracks (sign test on per-track Spearman)",
            "origin_rule": "circular mean position of the daughter tracks' first cells (division)",
        }
    else:
        out = {
            "orientation": "fucci",
            "orientation_classes": class_source,
            "direction_rule": "red-high behind / green-high ahead of the both-high (G1/S) peak",
            "origin_rule": "green-high -> low/low step of class fractions, refined by the best split",
            "g1s_pseudotime": round(ori.g1s, 4),
            "class_mean_pseudotime": {CLASS_NAMES[c]: round(v, 4) for c, v in ori.class_means.items()},
        }
    out.update(_orientation_scores(ori))
    if note:
        out["orientation_note"] = note
    return out


# ---------------------------------------------------------------------------------------------
# the stage
# ---------------------------------------------------------------------------------------------
def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    raise TypeError(f"not JSON serialisable: {type(obj)}")


def descriptor_columns(columns: Any) -> list[str]:
    """The network's descriptor columns ``d0, d1, ...`` among ``columns``, in index order.

    The one rule for telling descriptors from the other columns of a descriptor table (``cell_id``,
    pooled features ``f0..``): every reader of ``embed/descriptors.parquet`` uses it, so they agree.
    """
    return sorted((str(c) for c in columns if str(c)[:1] == "d" and str(c)[1:].isdigit()), key=lambda c: int(c[1:]))


def read_descriptor_matrix(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """cell_id and the (n, k) descriptor matrix (columns d0..d{k-1}) of an embed/descriptors.parquet.

    (The table itself, as a DataFrame, is :func:`deepcycle_core.net.embed.read_descriptors`.)
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no descriptors (run `deepcycle embed` first)")
    df = pd.read_parquet(path)
    cols = descriptor_columns(df.columns)
    if "cell_id" not in df.columns or len(cols) < 2:
        raise ValueError(f"{path}: needs columns cell_id, d0, d1, ...; has {list(df.columns)}")
    X = df[cols].to_numpy(dtype=float)
    bad = ~np.isfinite(X).all(axis=1)
    if bad.any():
        raise ValueError(f"{path}: {int(bad.sum())} row(s) of descriptors contain NaN or infinite values")
    return df["cell_id"].to_numpy(dtype=np.int64), X


def run_trajectory(
    run: RunDir | str | os.PathLike,
    *,
    descriptors_path: str | os.PathLike | None = None,
    T_hours: float | None = None,
    out_dir: str | os.PathLike | None = None,
    whiten: bool = False,
    n_harmonics: int = 6,
    smoothing: float = 1e-2,
    som_nodes: int = 30,
    max_fit_cells: int = 200_000,
    use_labels: bool = True,
    seed: int = 0,
    orientation: str = "auto",
) -> tuple[pd.DataFrame, Ring]:
    """The trajectory stage: fit the ring on non-held-out cells, apply it to every cell, write outputs.

    Reads ``embed/descriptors.parquet`` (or ``descriptors_path``), the store's cell table and, if present,
    ``train/split.parquet``; writes ``trajectory/trajectory.parquet`` (cell_id, x2d, y2d, angle,
    pseudotime, hours, som_node) and ``trajectory/ring.json``, each atomically. T for the hours is
    ``T_hours`` when given, else the doubling time of the store's cell counts per frame. The ring is
    oriented by the fitting cells' tracks when the store has them (``orientation="auto"``; see
    :func:`fit_ring`) and judged along them (``ring.verdict``). When the descriptors give no ring it raises
    :class:`NoRing` after removing the old outputs and writing the reason to ``trajectory/no_ring.json``
    (:func:`try_trajectory` returns that as a result instead).

    Before fitting it refuses stale inputs (:class:`deepcycle_core.data.fingerprint.StaleInputError`): the
    descriptors must have been embedded from the current store with the current ``train/best.pt``,
    and the split made from the current store. Afterwards ``trajectory/stamp.json`` records the
    descriptors, split, store and parameters the ring was fitted with, for the stages after it.
    """
    from ..data.fingerprint import check_trajectory_inputs, remove_stamp, write_stamp
    from ..data.store import open_store

    run = run if isinstance(run, RunDir) else RunDir(Path(run))
    dpath = Path(descriptors_path) if descriptors_path is not None else run.descriptors
    cell_id, X = read_descriptor_matrix(dpath)
    memo: dict = {}  # digests shared by the check and the stamp: every input is hashed once
    check_trajectory_inputs(run, dpath, memo=memo)
    cells = open_store(run.store).cells
    known = cells["cell_id"].to_numpy()
    if not np.isin(cell_id, known).all():
        raise ValueError(f"{dpath}: some cell_id values are not in the store {run.store}")
    info = cells.set_index("cell_id").loc[cell_id]
    # which cells may be used to fit
    fit_mask = np.ones(len(cell_id), dtype=bool)
    split_path = run.split
    split_note = "no split file: all cells fitted"
    if split_path.exists():
        split = read_split(split_path)
        # only train/val cells fit: never the held-out tracks, nor their mothers and daughters
        fitting = split.loc[split["split"].isin(FIT_SPLITS), "cell_id"].to_numpy()
        fit_mask = np.isin(cell_id, fitting)
        split_note = (f"fitted without {int((~fit_mask).sum())} held-out or lineage-excluded cell(s) "
                      f"of {split_path.name}")
    classes = None
    if use_labels and "class" in info.columns:
        lab = info["class"].to_numpy(dtype=np.int64)
        if (lab[fit_mask] >= 0).any():
            classes = lab[fit_mask]
    tracks = None
    if {"track_id", "frame", "time_h"} <= set(info.columns):
        tracks = TrackTable.from_cells(info.reset_index()[fit_mask])
    if classes is None and X.shape[1] != 4 and (tracks is None or orientation == "fucci"):
        raise ValueError(f"{dpath}: no FUCCI class labels or tracks in the store and descriptors are not 4 class scores")
    tdir = Path(out_dir) if out_dir is not None else run.trajectory
    T, T_source = _stage_doubling_time(T_hours, cells)
    clock_path = _write_clock(tdir, dpath, run, split_path)  # the cycle head's clock needs no ring
    try:
        ring = fit_ring(X[fit_mask], classes, tracks=tracks, orientation=orientation, whiten=whiten,
                        n_harmonics=n_harmonics, smoothing=smoothing, som_nodes=som_nodes,
                        max_fit_cells=max_fit_cells, seed=seed)
    except NoRing as exc:
        _record_no_ring(tdir, exc, {"n_cells": int(len(cell_id)), "n_fit_cells": int(fit_mask.sum()), "split": split_note,
                                    "descriptors": str(dpath.name), "T_hours": T, "T_source": T_source})
        raise
    ring = ring.with_doubling_time(T, T_source)
    ring.info["split"] = split_note
    ring.info["descriptors"] = str(dpath.name)
    out = ring.transform(X)
    out.insert(0, "cell_id", cell_id)
    remove_stamp(tdir)  # an interrupted write must not leave a record vouching for the old outputs
    (tdir / NO_RING_NAME).unlink(missing_ok=True)
    table = tdir / RunDir.TRAJECTORY_NAME
    write_parquet_atomic(table, out, parents=True)
    ring_path = ring.save(tdir / RunDir.RING_NAME)
    params = {"T_hours": T_hours, "whiten": bool(whiten), "n_harmonics": int(n_harmonics),
              "smoothing": float(smoothing), "som_nodes": int(som_nodes), "max_fit_cells": int(max_fit_cells),
              "use_labels": bool(use_labels), "seed": int(seed), "orientation": orientation}
    write_stamp(tdir, stage="trajectory", outputs=[table, ring_path] + ([clock_path] if clock_path else []),
                inputs={"store": run.store, "descriptors": dpath, "split": split_path}, params=params,
                command=refresh_command(run, descriptors_path, params), root=run.root, memo=memo)
    return out, ring


def _write_clock(tdir: Path, dpath: Path, run: RunDir, split_path: Path) -> Path | None:
    """``trajectory/clock.parquet``: every cell's clock with its calibrated 80 % interval
    (:func:`deepcycle_core.clock.head.clock_table`), when the descriptors carry the cycle head; else none."""
    from ..data.store import open_store
    from .head import clock_table, has_cycle_head

    desc = pd.read_parquet(dpath)
    path = tdir / CLOCK_NAME
    if not has_cycle_head(desc.columns):
        path.unlink(missing_ok=True)
        return None
    split = read_split(split_path) if split_path.exists() else None
    write_parquet_atomic(path, clock_table(desc, open_store(run.store), split), parents=True)
    return path


def _stage_doubling_time(T_hours: float | None, cells: pd.DataFrame) -> tuple[float | None, str]:
    """The doubling time for the ERA hours and where it comes from: given, or the store's growth curve."""
    if T_hours is not None:
        return T_hours, "given by the user"
    counts = cells.groupby("time_h").size()
    try:
        T = doubling_time_from_counts(counts.index.to_numpy(), counts.to_numpy())
    except ValueError as exc:
        return None, f"none: {exc}; hours are NaN (pass --hours-T)"
    return T, f"growth curve: log2 cell count per frame over {len(counts)} frames"


def _record_no_ring(tdir: Path, exc: NoRing, facts: dict[str, Any]) -> None:
    """No ring: the old ring, its table and stamp go (nothing may read them as this run's), the reason stays."""
    from ..data.fingerprint import remove_stamp

    remove_stamp(tdir)
    for name in (RunDir.TRAJECTORY_NAME, RunDir.RING_NAME):
        (tdir / name).unlink(missing_ok=True)
    write_json_atomic(tdir / NO_RING_NAME, {"reason": str(exc), **facts}, parents=True, indent=1, default=_json_default)


@dataclass(frozen=True)
class TrajectoryResult:
    """What the trajectory stage gave a chapter: the cells on the ring and the ring, or no ring and why."""

    table: pd.DataFrame | None
    ring: Ring | None
    no_ring: str = ""  # the reason there is no ring ("" when there is one)

    @property
    def message(self) -> str:
        """One paragraph for the reader when there is no ring ("" when there is one)."""
        if self.ring is not None:
            return ""
        return (f"no ring: {self.no_ring}\nThe ring's figures, hours and SOM are skipped (and {RunDir.RING_NAME} is not "
                f"written: {NO_RING_NAME} holds the reason); the cycle head needs no ring and is read below.")


def try_trajectory(run: RunDir | str | os.PathLike, **kwargs: Any) -> TrajectoryResult:
    """:func:`run_trajectory` for a chapter: the ring, or the reason there is none -- never an exception
    for that (a trained network whose descriptors order nothing is a result to report, not a crash).
    Any other error (stale inputs, a missing file) still raises."""
    try:
        table, ring = run_trajectory(run, **kwargs)
    except NoRing as exc:
        return TrajectoryResult(None, None, str(exc))
    return TrajectoryResult(table, ring)


def refresh_command(run: RunDir, descriptors_path: str | os.PathLike | None, params: dict[str, Any]) -> str:
    """The ``deepcycle trajectory`` command line that remakes this fit (non-default settings spelled out)."""
    from ..data.fingerprint import display_path

    cmd = ["deepcycle trajectory --run", display_path(run.root)]
    if params.get("T_hours") is not None:
        cmd += ["--hours-T", repr(float(params["T_hours"]))]
    if descriptors_path is not None:
        cmd += ["--descriptors", display_path(descriptors_path)]
    if params.get("whiten"):
        cmd.append("--whiten")
    flags = {"n_harmonics": ("--harmonics", 6), "smoothing": ("--smoothing", 1e-2), "som_nodes": ("--som-nodes", 30),
             "max_fit_cells": ("--max-fit-cells", 200_000), "seed": ("--seed", 0),
             "orientation": ("--orientation", "auto")}
    for key, (flag, default) in flags.items():
        if key in params and params[key] != default:
            cmd += [flag, repr(params[key])]
    return " ".join(cmd)


def register_cli(subparsers: Any) -> None:
    from ..__main__ import add_command

    p = add_command(subparsers, "trajectory")
    p.add_argument("--run", required=True, help="run folder (data/runs/<profile>)")
    p.add_argument("--hours-T", type=float, default=None, dest="hours_T",
                   help="doubling time in hours for the ERA (default: from the store's growth curve)")
    p.add_argument("--descriptors", default=None, help="descriptor parquet (default: RUN/embed/descriptors.parquet;"
                   " one from outside the pipeline is checked only if a stamp.json next to it lists it)")
    p.add_argument("--whiten", action="store_true", help="standardise descriptor columns before PCA")
    p.add_argument("--harmonics", type=int, default=6, help="Fourier harmonics of the closed curve")
    p.add_argument("--smoothing", type=float, default=1e-2, help="roughness penalty of the closed curve")
    p.add_argument("--som-nodes", type=int, default=30, help="nodes of the paper's ring SOM")
    p.add_argument("--max-fit-cells", type=int, default=200_000, help="fit on at most this many cells (seeded subset)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--orientation", choices=("auto", "movie", "fucci"), default="auto",
                   help="direction and origin from the movie's tracks (movie), the FUCCI classes (fucci, for "
                        "snapshots) or the movie when it has enough tracks and births (auto)")
    p.set_defaults(func=_cli_trajectory)


def _cli_trajectory(args: argparse.Namespace) -> int:
    out, ring = run_trajectory(
        args.run,
        descriptors_path=args.descriptors,
        T_hours=args.hours_T,
        whiten=args.whiten,
        n_harmonics=args.harmonics,
        smoothing=args.smoothing,
        som_nodes=args.som_nodes,
        max_fit_cells=args.max_fit_cells,
        seed=args.seed,
        orientation=args.orientation,
    )
    T = "n/a" if ring.T_hours is None else f"{ring.T_hours:.3g} h"
    print(f"trajectory: {len(out)} cells on the ring ({ring.info['n_cells']} fitted); T = {T} ({ring.T_source})")
    print(f"oriented by the {ring.info.get('orientation')} rule; verdict along the fitting tracks: {ring.verdict}"
          + (f" -- {ring.info['quality'].get('reason')}" if ring.info.get("quality", {}).get("reason") else ""))
    return 0
