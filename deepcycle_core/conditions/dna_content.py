"""Phase shares from DNA content: the nuclear stain's integrated intensity and its histogram.

Why: a treatment changes how a cell in a given phase looks (an arrested G1 cell keeps growing), so a
read-out learned on untreated cells' appearance is biased under a drug (chapter 07 measures by how
much). DNA content is not: a G1 cell holds 2N whatever the drug does to its size, a G2 or M cell 4N,
and an S cell lies in between. Cell biologists read phase shares off a DNA-content histogram for this
reason (flow cytometry since Dean & Jett 1974; imaging cytometry with Hoechst or DAPI, e.g. Roukos
et al. 2015). Two pieces make that work on unsegmented crops:

* :func:`integrated_dna` sums the background-subtracted nuclear stain over a disc around the crop's
  centre, giving away the pixels that lie nearer to another nucleus (a Voronoi split between nuclear
  peaks). A disc keeps the blurred rim that a half-maximum segmentation drops (and drops more of for
  small nuclei), so the sum follows DNA content and not nuclear size.
  The disc's radius comes from the nuclei themselves (:func:`nucleus_radius_px`), not from the
  simulator's nuclear size.
* :func:`fit_dna_histogram` fits the classic Dean-Jett-Fox model to the log intensities: a Gaussian
  2N peak, a 4N peak at ``g2_ratio`` times it (each with its own width), S phase as DNA
  spread evenly between them, broadened by the peaks' noise, and a small flat component for debris
  and clumps. It needs no labels. The 4N/2N ratio is FITTED (real widefield images give 1.7-1.9,
  not the stoichiometric 2), best on the untreated control of the same plate
  (:meth:`DnaContentReadout.calibrate`), then applied to the treated populations.
  The stain bleaches frame by frame and a plate's wells are stained apart, so
  :class:`DnaContentReadout` first places each imaging group's 2N peak (a frame, by default) where
  that peak is resolved, puts the other groups on a smooth trend over groups, and then fits the
  pooled, aligned histogram; :meth:`DnaContentReadout.alignment` says which group went where and why.

What it cannot do: split G2 from M (both 4N), see a drug that changes staining itself, or work
without a stoichiometric DNA stain (a brightfield-only movie has no DNA channel).
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import ndimage, optimize
from scipy.special import ndtr

from ..validation.features import crop_background, integrated_stain  # the one home of the stain integral

__all__ = [
    "RATIO_BOUNDS", "DISC_PER_RADIUS", "PLACEMENT_SE_FRACTION", "integrated_dna", "half_height_radii", "nucleus_radius_px", "measure_dna",
    "DnaHistogramFit", "fit_dna_histogram", "Alignment", "DnaContentReadout",
]

_MIN_CELLS = 60  # fewer cells than this leave a 3-phase histogram undetermined

#: Bounds of the fitted 4N/2N intensity ratio: widefield images give 1.7-1.9 (blurred rim, background,
#: detector), a stoichiometric stain at most ~2; 2.2 leaves room above it.
RATIO_BOUNDS = (1.6, 2.2)

#: The integration disc's radius as a multiple of the nucleus' half-height equivalent radius. Optics,
#: not the simulator: a nucleus is a flattened ellipsoid, whose projected stain falls to half its
#: central value at sqrt(3)/2 of its edge, so the edge lies at 1.15 x the half-height radius; the
#: remaining 0.35 x keeps the blurred rim, 2.5 sd of a Gaussian blur of up to 0.14 x the radius (about
#: 1 px for a nucleus of 7-8 px: a 20x widefield PSF with a little defocus). A larger disc adds
#: background noise and neighbours' glow, a smaller one drops rim light and more of it on small nuclei.
DISC_PER_RADIUS = 1.5


def integrated_dna(
    nuclear: np.ndarray, *, radius: float = 12.0, smooth: float = 3.0, min_peak_distance: int = 6,
    peak_fraction: float = 0.3,
) -> np.ndarray:
    """Integrated nuclear stain of the centre nucleus of each crop, (n, h, w) -> (n,).

    Background is the crop's raw 5th percentile. Pixels count within ``radius`` of the crop centre (where
    detection put the nucleus) unless they lie nearer to another nucleus: a local maximum of the
    image smoothed by ``smooth`` px, farther than ``2 * min_peak_distance`` px from the centre and
    above ``peak_fraction`` of the central nucleus' height over background.
    """
    from skimage.feature import peak_local_max

    raw = np.asarray(nuclear, dtype=np.float64)
    if raw.ndim != 3:
        raise ValueError(f"expected nuclear crops of shape (n, h, w), got {raw.shape}")
    n, h, w = raw.shape
    if n == 0:
        return np.zeros(0)
    sm = ndimage.gaussian_filter(raw, (0, smooth, smooth))
    # background: the crop's raw 5th percentile, its darkest pixels. In a crowded crop these carry
    # the neighbours' glow that also spills into the disc, so the two cancel; an unbiased estimate
    # (the dark pixels' median, or the percentile lifted by its noise offset) measured less precisely
    # against the simulator's truth. The price: the percentile sits ~1.6 pixel-noise sd below the
    # true background, which pulls the 4N/2N ratio a little below 2 on dim nuclei (< 5 % in the
    # unit test at Hoechst-like brightness).
    bg = crop_background(raw)
    yy, xx = np.mgrid[:h, :w]
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0  # detection centres the crop on the nucleus
    d_own = (yy - cy) ** 2 + (xx - cx) ** 2
    disc = d_own < radius**2
    r = 4
    region = np.empty((n, h, w), dtype=bool)
    for i in range(n):
        im = sm[i]
        win = im[h // 2 - r : h // 2 + r, w // 2 - r : w // 2 + r]
        peaks = peak_local_max(im, min_distance=min_peak_distance,
                               threshold_abs=bg[i] + peak_fraction * (float(win.max()) - bg[i]), exclude_border=False)
        keep = disc.copy()
        for y, x in peaks:
            if (y - cy) ** 2 + (x - cx) ** 2 > (2 * min_peak_distance) ** 2:
                keep &= d_own <= (yy - y) ** 2 + (xx - x) ** 2
        region[i] = keep
    return integrated_stain(raw, region, bg)


def nucleus_radius_px(store, ids: Sequence[int] | np.ndarray | None = None, *, n_sample: int = 300,
                      seed: int = 0) -> float:
    """The median equivalent radius (px) of the crops' central nuclei at half their height over background.

    Measured on a seeded sample of at most ``n_sample`` crops of ``store`` (of ``ids``, default every
    cell): each crop lightly smoothed (1 px), its background the raw 5th percentile
    (:func:`~deepcycle_core.validation.features.crop_background`), the nucleus the connected region above
    half the central peak's height that holds the peak, its radius ``sqrt(area / pi)``."""
    want = np.arange(store.n_cells) if ids is None else np.unique(np.asarray(ids, dtype=np.int64))
    if want.size == 0:
        raise ValueError(f"{store.path}: no cells to measure")
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(want, min(n_sample, want.size), replace=False))
    nuc = store.channel_index("nuclear")
    return float(np.median(np.concatenate([half_height_radii(block[:, nuc]) for _, block in store.iter_selected(sample)])))


def half_height_radii(nuclear: np.ndarray, smooth: float = 1.0) -> np.ndarray:
    """(n,) equivalent radius (px) of each crop's central nucleus at half its height over background."""
    raw = np.asarray(nuclear, dtype=np.float64)
    if raw.ndim != 3:
        raise ValueError(f"expected nuclear crops of shape (n, h, w), got {raw.shape}")
    n, h, w = raw.shape
    sm = ndimage.gaussian_filter(raw, (0, smooth, smooth))
    bg = crop_background(raw)
    r = 4
    out = np.full(n, np.nan)
    for i in range(n):
        win = sm[i, h // 2 - r : h // 2 + r, w // 2 - r : w // 2 + r]
        py, px = np.unravel_index(int(np.argmax(win)), win.shape)
        height = float(win[py, px]) - bg[i]
        if height <= 0:
            continue
        lab, _ = ndimage.label(sm[i] > bg[i] + 0.5 * height)
        own = lab[h // 2 - r + py, w // 2 - r + px]
        out[i] = np.sqrt((lab == own).sum() / np.pi)
    return out[np.isfinite(out)]


def measure_dna(store, ids: Sequence[int] | np.ndarray | None = None, radius: float | None = None,
                **kwargs) -> pd.DataFrame:
    """``cell_id, dna`` (:func:`integrated_dna`) for ``ids`` of a cell store (default: every cell),
    one store chunk at a time.

    ``radius`` (px) of the integration disc; None measures it from the store's own crops:
    :data:`DISC_PER_RADIUS` x :func:`nucleus_radius_px`. Both are in the result's ``attrs``
    (``nucleus_radius_px``, ``disc_radius_px``; a merge drops them, so read them first)."""
    want = np.arange(store.n_cells) if ids is None else np.unique(np.asarray(ids, dtype=np.int64))
    if want.size == 0:
        raise ValueError(f"{store.path}: no cells to measure")
    r_nuc = float("nan")
    if radius is None:
        r_nuc = nucleus_radius_px(store, want)
        radius = DISC_PER_RADIUS * r_nuc
    nuc = store.channel_index("nuclear")
    parts = [integrated_dna(block[:, nuc], radius=radius, **kwargs) for _, block in store.iter_selected(want)]
    out = pd.DataFrame({"cell_id": want, "dna": np.concatenate(parts)})
    out.attrs.update(nucleus_radius_px=r_nuc, disc_radius_px=float(radius))
    return out


@dataclass(frozen=True)
class DnaHistogramFit:
    """A fitted DNA-content histogram in log2 intensity units.

    ``shares`` are G1, S, G2/M among the cells that are not debris; ``outlier_share`` is the flat
    component's weight; ``cv`` the peaks' coefficient of variation (staining + measurement)."""

    g1_log2: float
    sd_log2: float
    g2_ratio: float
    sd_g2_log2: float  # the 4N peak's width (additive noise widens the dimmer 2N peak more in log units)
    weights: np.ndarray  # G1, S, G2/M, outlier (sum 1)
    n: int
    span: tuple[float, float]  # the flat component's support
    loglik: float = float("nan")  # the binned log-likelihood at the optimum (comparable across ratios)
    g1_se: float = float("nan")  # the 2N place's standard error (only with placement_se)
    ratio_ci: tuple[float, float] | None = None  # fitted ratio: the ratios within 1.92 log-lik of the best (95 %)

    @property
    def shares(self) -> np.ndarray:
        return self.weights[:3] / self.weights[:3].sum()

    @property
    def outlier_share(self) -> float:
        return float(self.weights[3])

    @property
    def cv(self) -> float:
        return float(np.sqrt(np.exp((self.sd_log2 * np.log(2)) ** 2) - 1))

    def component_densities(self, x: np.ndarray) -> np.ndarray:
        """(n, 4) weighted densities of G1, S, G2/M and the flat component at log2 intensities ``x``."""
        return _components(np.asarray(x, dtype=float), self.g1_log2, self.sd_log2, self.g2_ratio,
                           self.sd_g2_log2, self.span) * self.weights

    def posterior(self, x: np.ndarray) -> np.ndarray:
        """(n, 3) probabilities of G1, S, G2/M per cell, the flat component left out."""
        p = self.component_densities(x)[:, :3]
        tot = p.sum(axis=1, keepdims=True)
        return np.where(tot > 0, p / np.where(tot > 0, tot, 1.0), self.shares)


def _normal(x: np.ndarray, mu: np.ndarray | float, sd: float) -> np.ndarray:
    z = (x - mu) / sd
    return np.exp(-0.5 * z * z) / (sd * np.sqrt(2.0 * np.pi))


def _exp_gauss(y: np.ndarray, m: float, sd: float, top: float) -> np.ndarray:
    """``integral_0^top exp(m u) N(y - u; 0, sd) du`` in closed form (complete the square)."""
    shift = y + m * sd * sd
    return np.exp(m * y + 0.5 * (m * sd) ** 2) * (ndtr((top - shift) / sd) - ndtr(-shift / sd))


def _components(x: np.ndarray, mu: float, sd: float, r: float, sd_g2: float, span: tuple[float, float]) -> np.ndarray:
    """Unit-mass densities of the 2N peak, S, the 4N peak and the flat component at log2 intensities ``x``.

    S holds DNA ``d`` uniform on [1, r], i.e. ``u = log2 d`` with density ``ln2 2^u / (r - 1)``,
    broadened by Gaussian noise of the two peaks' mean width; that convolution has a closed form."""
    g1 = _normal(x, mu, sd)
    lr = np.log2(r)
    g2 = _normal(x, mu + lr, sd_g2)
    k = np.log(2.0)
    s = k / (r - 1.0) * _exp_gauss(x - mu, k, 0.5 * (sd + sd_g2), lr)
    flat = ((x >= span[0]) & (x <= span[1])) / (span[1] - span[0])
    return np.stack([g1, s, g2, flat], axis=1)


def _validate(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if x.ndim != 1 or not np.isfinite(x).all():
        raise ValueError("log2 DNA values must be a finite 1-D array (take log2 of positive intensities)")
    if x.size < _MIN_CELLS:
        raise ValueError(f"{x.size} cells: a DNA histogram needs at least {_MIN_CELLS}")
    return x


def _fit_fixed(x: np.ndarray, g2_ratio: float, outliers: bool, separate_widths: bool, bin_width: float,
               start: DnaHistogramFit | None, placement_se: bool = False) -> DnaHistogramFit:
    """The maximum-likelihood fit at one 4N/2N ratio (see :func:`fit_dna_histogram`)."""
    lr = np.log2(g2_ratio)
    span = (float(x.min()) - 0.5, float(x.max()) + 0.5)
    edges = np.arange(x.min() - bin_width, x.max() + 2 * bin_width, bin_width)
    counts, edges = np.histogram(x, edges)
    used = counts > 0
    centres, counts = (0.5 * (edges[:-1] + edges[1:]))[used], counts[used]

    def unpack(th: np.ndarray) -> tuple[float, float, float, np.ndarray]:
        mu, lsd, a, b, c, q = np.clip(th, -50.0, 50.0)
        sd = float(np.exp(lsd))
        w = np.exp([0.0, a, b, c]) if outliers else np.exp([0.0, a, b, -np.inf])
        w = w / w.sum()
        if w[3] > 0.2:  # cap the flat component: it must not swallow a phase
            w[:3] *= 0.8 / w[:3].sum()
            w[3] = 0.2
        sd_g2 = sd * float(np.exp(0.405 * np.tanh(q))) if separate_widths else sd  # ratio in [1/1.5, 1.5]
        return float(mu), sd, sd_g2, w

    def nll(th: np.ndarray) -> float:
        mu, sd, sd_g2, w = unpack(th)
        if not 0.02 < sd < 0.6:
            return 1e12
        p = _components(centres, mu, sd, g2_ratio, sd_g2, span) @ w
        return -float(counts @ np.log(p + 1e-300))

    if start is None and separate_widths:
        # the many starts on the simpler model (one width), then one polish of the full one
        start = _fit_fixed(x, g2_ratio, outliers, False, bin_width, None)
    if start is None:
        # several starts, as the likelihood has poor local optima (all cells in a broad "S", say): the
        # 2N peak at low quantiles and one 4N below a high one (in a G2/M block the tallest peak is
        # 4N), each with even phases, a dominant G1 and a dominant G2/M
        starts = [[mu0, np.log(0.2), a0, b0, -3.0, 0.0]
                  for mu0 in np.quantile(x, [0.05, 0.2, 0.4, 0.6]) - np.array([0.0, 0.0, 0.0, lr])
                  for a0, b0 in ((0.0, 0.0), (-2.0, -2.0), (0.0, 2.0))]
    else:
        lw = np.log(np.maximum(start.weights, 1e-6))
        ratio = np.clip(np.log(start.sd_g2_log2 / start.sd_log2) / 0.405, -0.99, 0.99)
        starts = [[start.g1_log2, np.log(start.sd_log2), lw[1] - lw[0], lw[2] - lw[0], lw[3] - lw[0],
                   float(np.arctanh(ratio))]]
    best = None
    for th0 in starts:
        r = optimize.minimize(nll, th0, method="Nelder-Mead", options={"maxiter": 3000, "xatol": 1e-5, "fatol": 1e-7})
        if best is None or r.fun < best.fun:
            best = r
    mu, sd, sd_g2, w = unpack(best.x)
    se = float("nan")
    if placement_se:
        # the 2N place's standard error from the observed information (numerical Hessian of the
        # log-likelihood over the free parameters, the others profiled by inverting it)
        free = [0, 1, 2, 3] + ([4] if outliers else []) + ([5] if separate_widths else [])
        h = 1e-3
        th = np.asarray(best.x, dtype=float)
        k = len(free)
        H = np.empty((k, k))
        f0 = nll(th)
        for a_, i in enumerate(free):
            for b_, j in enumerate(free[a_:], start=a_):
                def f(di: float, dj: float) -> float:
                    t = th.copy()
                    t[i] += di
                    t[j] += dj
                    return nll(t)
                if i == j:
                    H[a_, a_] = (f(h, 0) - 2 * f0 + f(-h, 0)) / h**2
                else:
                    H[a_, b_] = H[b_, a_] = (f(h, h) - f(h, -h) - f(-h, h) + f(-h, -h)) / (4 * h * h)
        try:
            cov = np.linalg.inv(H)
            se = float(np.sqrt(cov[0, 0])) if cov[0, 0] > 0 and np.all(np.linalg.eigvalsh(H) > 0) else float("inf")
        except np.linalg.LinAlgError:
            se = float("inf")
    return DnaHistogramFit(mu, sd, float(g2_ratio), sd_g2, w, int(x.size), span, -float(best.fun), se)


def fit_dna_histogram(log2_dna: np.ndarray, *, g2_ratio: float | None = None, outliers: bool = True,
                      separate_widths: bool = True, bin_width: float = 0.01,
                      start: DnaHistogramFit | None = None, placement_se: bool = False) -> DnaHistogramFit:
    """Maximum-likelihood Dean-Jett-Fox fit of log2 integrated stain (one imaging condition).

    ``g2_ratio`` is the 4N/2N intensity ratio. A number holds it fixed (1.5-2.5); ``None`` (the
    default) fits it within :data:`RATIO_BOUNDS` by profile likelihood: the model is fitted at ratios
    0.05 apart over the bounds, each fit started from its neighbour's, and the best is refined by a
    bounded scalar search. Real widefield images give 1.7-1.9 (the blurred rim, background and
    a non-linear detector pull it below the stoichiometric 2), so 2 must not be assumed. The ratio
    trades off against the S share (a narrower gap leaves less room for S), so it is best fitted on
    an asynchronous control that shows both peaks (:meth:`DnaContentReadout.calibrate`) and applied to
    the treated populations of the same plate; fitted on a population with one dominant peak it is
    poorly determined.

    S is DNA spread evenly between the peaks (an S thinning towards 4N was tried: it moved ~3 points
    into the 4N peak on populations whose S is even, and helped little where it is not). The two peaks
    have their own widths in log units (within a factor 1.5 of each other): additive noise (photons,
    background, a neighbour's glow) widens the dimmer 2N peak more. ``outliers`` adds a flat
    component (debris, clumps, mis-centred crops) of at most 20 %. ``start`` (a fit of similar data,
    as in a resampling) replaces the many starting points by one. The likelihood is binned at
    ``bin_width`` log2 (far below the peaks' width), so a fit costs the same for a thousand cells or
    millions. ``placement_se`` also computes the standard error of the 2N peak's place (``g1_se``).
    """
    x = _validate(log2_dna)
    if g2_ratio is not None:
        if not 1.5 <= g2_ratio <= 2.5:
            raise ValueError(f"g2_ratio {g2_ratio} is not a 4N/2N ratio (expected 1.5-2.5)")
        return _fit_fixed(x, float(g2_ratio), outliers, separate_widths, bin_width, start, placement_se)
    lo, hi = RATIO_BOUNDS
    grid = np.round(np.arange(lo, hi + 1e-9, 0.05), 4)
    mid = int(np.argmin(np.abs(grid - 0.5 * (lo + hi))))
    fits: dict[int, DnaHistogramFit] = {mid: _fit_fixed(x, float(grid[mid]), outliers, separate_widths, bin_width, start)}
    for order in (range(mid + 1, len(grid)), range(mid - 1, -1, -1)):
        for i in order:  # each ratio started from its neighbour's fit
            prev = fits[i - 1] if i > mid else fits[i + 1]
            fits[i] = _fit_fixed(x, float(grid[i]), outliers, separate_widths, bin_width, prev)
    k = max(fits, key=lambda i: fits[i].loglik)
    # a second pass from the best fit catches a neighbour stuck in a poorer optimum
    for i in (k - 1, k + 1):
        if 0 <= i < len(grid):
            again = _fit_fixed(x, float(grid[i]), outliers, separate_widths, bin_width, fits[k])
            if again.loglik > fits[i].loglik:
                fits[i] = again
    k = max(fits, key=lambda i: fits[i].loglik)
    a, b = float(grid[max(k - 1, 0)]), float(grid[min(k + 1, len(grid) - 1)])
    cache: dict[float, DnaHistogramFit] = {}

    def neg(r: float) -> float:
        cache[r] = _fit_fixed(x, float(r), outliers, separate_widths, bin_width, fits[k])
        return -cache[r].loglik

    res = optimize.minimize_scalar(neg, bounds=(a, b), method="bounded", options={"xatol": 2e-3})
    best = min([fits[k], *cache.values()], key=lambda f: -f.loglik)
    del res
    # the 95 % profile-likelihood interval of the ratio, at the grid's resolution (the bounds where
    # the profile stays within 1.92 of its best): wide where the histogram cannot tell the ratio
    inside = [float(grid[i]) for i in fits if fits[i].loglik >= best.loglik - 1.92] + [best.g2_ratio]
    ci = (min(inside), max(inside))
    if placement_se:
        best = _fit_fixed(x, best.g2_ratio, outliers, separate_widths, bin_width, best, True)
    return dataclasses.replace(best, ratio_ci=ci)


#: A group's 2N peak is placed on its own only when its place's standard error is below this fraction of
#: the peak's width: an alignment error ``se`` widens the pooled peak to sqrt(sd^2 + se^2), 3 % at 0.25.
PLACEMENT_SE_FRACTION = 0.25


@dataclass
class Alignment:
    """How each imaging group's 2N peak was placed before pooling (:meth:`DnaContentReadout.alignment`).

    ``placed``: groups placed by their own fit; ``trend``: groups put on the linear trend of the 2N
    place against the group's number (bleaching is smooth); ``pooled``: groups left unaligned (at the
    reference). ``reasons`` says why for every group not placed on its own. ``slope`` is the trend's
    log2 change per unit of the group column (None without a trend)."""

    by: tuple[str, ...]
    placed: list
    trend: list
    pooled: list
    reasons: dict
    slope: float | None
    offsets: dict  # each group's 2N place (log2), as used

    def as_dict(self) -> dict:
        return {"by": list(self.by), "placed": list(self.placed), "trend": list(self.trend),
                "pooled": list(self.pooled), "reasons": {str(k): v for k, v in self.reasons.items()},
                "slope_log2_per_unit": self.slope}

    def __str__(self) -> str:
        n = len(self.placed) + len(self.trend) + len(self.pooled)
        if not self.by:
            return "one imaging group: no alignment"
        parts = [f"{len(self.placed)} of {n} groups ({', '.join(self.by)}) placed on their own 2N peak"]
        if self.trend:
            parts.append(f"{len(self.trend)} on the linear trend over groups ({self.slope:+.3f} log2 a unit)")
        if self.pooled:
            parts.append(f"{len(self.pooled)} pooled unaligned")
        text = "; ".join(parts)
        if self.reasons:
            text += " -- " + "; ".join(f"{k}: {v}" for k, v in self.reasons.items())
        return text


class DnaContentReadout:
    """Phase shares of a population from its own DNA histogram (no network).

    ``by`` names the columns of one imaging condition (same stain level and bleaching): each group's
    2N peak is placed (:meth:`alignment` says how), the aligned values are pooled and fitted once
    (:func:`fit_dna_histogram`). ``by=()`` fits the population as one group. Used through
    ``probabilities`` and ``shares`` like :class:`~deepcycle_core.conditions.phase_readout.PhaseReadout`;
    the table needs a ``dna`` column (:func:`measure_dna`).

    The 4N/2N ratio: a number in ``g2_ratio`` holds it fixed. With ``None`` (the default) it is fitted
    on the untreated control of the same microscope and plate by :meth:`calibrate` and then applied to
    every population read. A read-out not yet calibrated fits each population's own ratio (less
    stable: the ratio trades off against the S share), except that :meth:`change_interval` first
    calibrates on its control when nothing was calibrated.
    """

    def __init__(self, by: Sequence[str] = ("frame",), g2_ratio: float | None = None) -> None:
        if g2_ratio is not None and not 1.5 <= g2_ratio <= 2.5:
            raise ValueError(f"g2_ratio {g2_ratio} is not a 4N/2N ratio (expected 1.5-2.5)")
        self.by = tuple(by)
        self.g2_ratio = g2_ratio
        self.g2_ratio_fitted: float | None = None
        self.g2_ratio_interval: tuple[float, float] | None = None  # its 95 % profile-likelihood interval
        self._fits: dict[bytes, tuple[DnaHistogramFit, np.ndarray, Alignment]] = {}  # a population is fitted once
        self._refits: dict[bytes, np.ndarray] = {}  # resampled fits, shared by comparisons with one control

    @property
    def ratio(self) -> float | None:
        """The 4N/2N ratio applied: the fixed one, else the calibrated one (None before calibration)."""
        return self.g2_ratio if self.g2_ratio is not None else self.g2_ratio_fitted

    def _log2(self, table: pd.DataFrame) -> np.ndarray:
        missing = [c for c in ("dna", *self.by) if c not in table.columns]
        if missing:
            raise ValueError(f"the DNA read-out needs columns {missing} (measure them with measure_dna)")
        v = table["dna"].to_numpy(dtype=float)
        if not (np.isfinite(v) & (v > 0)).all():
            bad = int((~(np.isfinite(v) & (v > 0))).sum())
            raise ValueError(f"{bad} cells have no positive integrated stain (empty or mis-centred crops)")
        return np.log2(v)

    def _key(self, table: pd.DataFrame, x: np.ndarray, ratio: float | None) -> bytes:
        groups = pd.util.hash_pandas_object(table[list(self.by)], index=False).to_numpy() if self.by else np.zeros(0)
        return hashlib.sha1(x.tobytes() + groups.tobytes() + repr(ratio).encode()).digest()

    def calibrate(self, control: pd.DataFrame) -> float:
        """Fit the 4N/2N ratio on an untreated, asynchronous ``control`` (both peaks show) and keep it
        (``g2_ratio_fitted``) for every population read afterwards. Returns the ratio."""
        if self.g2_ratio is not None:
            raise ValueError(f"this read-out holds the 4N/2N ratio fixed at {self.g2_ratio}; make one with g2_ratio=None to calibrate")
        fit, _ = self._fitted(control, None)
        self.g2_ratio_fitted = float(fit.g2_ratio)
        self.g2_ratio_interval = fit.ratio_ci
        # the control's fit at its own ratio is the fit at the calibrated one
        x = self._log2(control)
        self._fits[self._key(control, x, self.g2_ratio_fitted)] = self._fits[self._key(control, x, None)]
        return self.g2_ratio_fitted

    def fit(self, table: pd.DataFrame) -> tuple[DnaHistogramFit, np.ndarray]:
        """The pooled fit and each cell's aligned log2 value (its group's 2N peak moved to the pooled one)."""
        return self._fitted(table, self.ratio)

    def alignment(self, table: pd.DataFrame) -> Alignment:
        """How the groups of ``table`` were aligned (``str()`` of it is a sentence for a report)."""
        x = self._log2(table)
        self._fitted(table, self.ratio)
        return self._fits[self._key(table, x, self.ratio)][2]

    def _fitted(self, table: pd.DataFrame, ratio: float | None) -> tuple[DnaHistogramFit, np.ndarray]:
        x = self._log2(table)
        key = self._key(table, x, ratio)
        if key not in self._fits:
            if ratio is None:
                # placing a group's 2N peak needs a ratio: the bounds' middle (the 2N place hardly moves
                # with it, as G1 holds the lowest peak), then the ratio is fitted on the aligned values
                self._fits[key] = self._fit(table, x, float(np.mean(RATIO_BOUNDS)), None)
            else:
                self._fits[key] = self._fit(table, x, ratio, ratio)
        return self._fits[key][:2]

    def _fit(self, table: pd.DataFrame, x: np.ndarray, place_ratio: float,
             ratio: float | None) -> tuple[DnaHistogramFit, np.ndarray, Alignment]:
        if not self.by:
            al = Alignment((), [0], [], [], {}, None, {})
            return fit_dna_histogram(x, g2_ratio=ratio), x, al
        groups = table.groupby(list(self.by), sort=True).indices
        names = list(groups)
        place: dict = {}
        se: dict = {}
        width: dict = {}
        reasons: dict = {}
        for g in names:
            ix = groups[g]
            if len(ix) < _MIN_CELLS:
                reasons[g] = f"{len(ix)} cells (< {_MIN_CELLS})"
                continue
            f = fit_dna_histogram(x[ix], g2_ratio=place_ratio, outliers=False, separate_widths=False, placement_se=True)
            place[g], se[g], width[g] = f.g1_log2, f.g1_se, f.sd_log2
        # the trend over groups: a robust line (Theil-Sen) through the groups that could be fitted,
        # where the group is one numeric column and at least three groups were fitted
        numeric = len(self.by) == 1 and pd.api.types.is_numeric_dtype(table[self.by[0]])
        slope = None
        trend_at = None
        if numeric and len(place) >= 3:
            from scipy.stats import theilslopes

            gx = np.array(list(place), dtype=float)
            res = theilslopes(np.array(list(place.values())), gx)
            slope = float(res[0])
            trend_at = lambda g: float(res[1] + res[0] * float(g))  # noqa: E731
        half_gap = 0.5 * np.log2(place_ratio)
        placed, on_trend, pooled = [], [], []
        offsets: dict = {}
        for g in names:
            if g in place and not np.isfinite(se[g]) or (g in place and se[g] >= PLACEMENT_SE_FRACTION * width[g]):
                reasons[g] = f"its 2N place is uncertain (se {se[g]:.3f} log2 >= {PLACEMENT_SE_FRACTION} x peak width {width[g]:.3f})"
            elif g in place and trend_at is not None and abs(place[g] - trend_at(g)) > half_gap:
                reasons[g] = f"its fitted 2N peak lies {place[g] - trend_at(g):+.2f} log2 off the trend (nearer the other peak)"
            elif g in place:
                placed.append(g)
                offsets[g] = place[g]
                continue
            if trend_at is not None:
                on_trend.append(g)
                offsets[g] = trend_at(g)
            else:
                pooled.append(g)
        if placed:
            ref = float(np.median([offsets[g] for g in placed]))
        elif on_trend:
            ref = float(np.median([offsets[g] for g in on_trend]))
        else:
            ref = 0.0
        for g in pooled:
            offsets[g] = ref
            reasons[g] = reasons.get(g, "") + "; no trend to put it on: pooled unaligned"
        shift = np.zeros(len(x))
        for g in names:
            shift[groups[g]] = offsets[g] - ref
        aligned = x - shift
        al = Alignment(self.by, placed, on_trend, pooled, reasons, slope, offsets)
        return fit_dna_histogram(aligned, g2_ratio=ratio), aligned, al

    def probabilities(self, table: pd.DataFrame) -> np.ndarray:
        """(n, 3) probabilities of G1, S, G2/M for each cell of ``table``, from the population's own fit."""
        fit, aligned = self.fit(table)
        return fit.posterior(aligned)

    def shares(self, table: pd.DataFrame) -> np.ndarray:
        """The population's share of each phase, in :data:`deepcycle_core.data.fucci.PHASE_GROUPS` order."""
        if len(table) == 0:
            raise ValueError("no cells to read phase shares from")
        return self.probabilities(table).mean(axis=0)

    def _refit_shares(self, x: np.ndarray, start: DnaHistogramFit) -> np.ndarray:
        key = hashlib.sha1(x.tobytes() + repr(start.g2_ratio).encode()).digest()
        if key not in self._refits:
            if len(self._refits) > 50_000:
                self._refits.clear()
            self._refits[key] = fit_dna_histogram(x, g2_ratio=start.g2_ratio, start=start).shares
        return self._refits[key]

    def change_interval(
        self, treated: pd.DataFrame, control: pd.DataFrame, *, n_boot: int = 200, level: float = 0.95, seed: int = 0,
        method: str = "jackknife", df: str = "min",
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(change, low, high)`` of the phase shares, treated minus control, over the populations' fields.

        ``method="jackknife"`` (the default): each population's shares are refitted with one field left
        out at a time (started from the full fit, at the same 4N/2N ratio and alignment); the
        delete-one jackknife standard errors, ``sqrt((k-1)/k sum (s_-j - mean)^2)``, are combined
        for the difference, ``sqrt(se_t^2 + se_c^2)``, and the interval is ``change +- t se`` with a t
        quantile on ``df="min"`` degrees of freedom, ``min(k_t, k_c) - 1`` (Hsu's conservative choice:
        its coverage is at least nominal whatever the two variances, where Welch-Satterthwaite's
        ``df="welch"`` estimates the degrees of freedom from the same few-field variances and is
        anti-conservative when one of them comes out small, as 4 fields often make it).
        ``method="bootstrap"``: a percentile interval from ``n_boot`` resamplings of each population's
        fields, refitting every time; with 4 fields a population it undercovers (the bootstrap
        variance is (k-1)/k of the fields' and the few distinct resamples make its tails short).

        Holding the cells' phase probabilities fixed would leave out the fit's own uncertainty (where
        the model splits S from the two peaks), which is most of it, so each replicate refits. The
        4N/2N ratio is held at the calibrated one (a read-out not yet calibrated is calibrated on
        ``control`` first); its own uncertainty is not propagated (it acts on both populations alike).
        """
        if method not in ("jackknife", "bootstrap"):
            raise ValueError(f"method must be 'jackknife' or 'bootstrap', got {method!r}")
        if df not in ("min", "welch"):
            raise ValueError(f"df must be 'min' or 'welch', got {df!r}")
        for table in (treated, control):
            if "field" not in table.columns:
                raise ValueError("the share interval resamples fields: the table needs a 'field' column")
        if self.ratio is None:
            self.calibrate(control)
        groups, starts = [], []
        for table in (treated, control):
            fit, aligned = self.fit(table)
            fields = table["field"].to_numpy()
            groups.append([aligned[fields == f] for f in np.unique(fields)])
            starts.append(fit)
        point = starts[0].shares - starts[1].shares
        if method == "bootstrap":
            from .circular_tests import field_bootstrap

            def change(a: np.ndarray, b: np.ndarray) -> np.ndarray:
                return self._refit_shares(a, starts[0]) - self._refit_shares(b, starts[1])

            _, lo, hi = field_bootstrap(groups, change, n_boot=n_boot, level=level, seed=seed)
            return point, lo, hi
        if any(len(g) < 2 for g in groups):
            raise ValueError("a jackknife over fields needs at least 2 fields in every population")
        var, ks = [], []
        for g, start in zip(groups, starts):
            k = len(g)
            reps = np.array([self._refit_shares(np.concatenate([g[i] for i in range(k) if i != j]), start)
                             for j in range(k)])
            var.append((k - 1) / k * ((reps - reps.mean(axis=0)) ** 2).sum(axis=0))
            ks.append(k)
        se = np.sqrt(var[0] + var[1])
        if df == "min":
            nu = np.full(point.size, float(min(ks) - 1))
        else:
            with np.errstate(invalid="ignore", divide="ignore"):
                nu = (var[0] + var[1]) ** 2 / (var[0] ** 2 / (ks[0] - 1) + var[1] ** 2 / (ks[1] - 1))
            nu = np.where(np.isfinite(nu), np.clip(nu, min(ks) - 1, ks[0] + ks[1] - 2), min(ks) - 1)
        from scipy.stats import t as student_t

        q = student_t.ppf(0.5 + level / 2, nu)
        return point, point - q * se, point + q * se
