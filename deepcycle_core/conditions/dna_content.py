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
* :func:`fit_dna_histogram` fits the classic Dean-Jett-Fox model to the log intensities: a Gaussian
  2N peak, a 4N peak at ``g2_ratio`` times it (each with its own width), S phase as DNA
  spread evenly between them, broadened by the peaks' noise, and a small flat component for debris
  and clumps. It needs no labels and no calibration, so it is fitted on each population itself.
  The stain bleaches frame by frame and a plate's wells are stained apart, so
  :class:`DnaContentReadout` first places each imaging group's 2N peak (a frame, by default) and then
  fits the pooled, aligned histogram.

What it cannot do: split G2 from M (both 4N), see a drug that changes staining itself, or work
without a stoichiometric DNA stain (a brightfield-only movie has no DNA channel).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import ndimage, optimize
from scipy.special import ndtr

from ..validation.features import crop_background, integrated_stain  # the one home of the stain integral

__all__ = ["integrated_dna", "measure_dna", "DnaHistogramFit", "fit_dna_histogram", "DnaContentReadout"]

_MIN_CELLS = 60  # fewer cells than this leave a 3-phase histogram undetermined


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


def measure_dna(store, ids: Sequence[int] | np.ndarray | None = None, **kwargs) -> pd.DataFrame:
    """``cell_id, dna`` (:func:`integrated_dna`) for ``ids`` of a cell store (default: every cell),
    one store chunk at a time."""
    want = np.arange(store.n_cells) if ids is None else np.unique(np.asarray(ids, dtype=np.int64))
    if want.size == 0:
        raise ValueError(f"{store.path}: no cells to measure")
    nuc = store.channel_index("nuclear")
    parts = [integrated_dna(block[:, nuc], **kwargs) for _, block in store.iter_selected(want)]
    return pd.DataFrame({"cell_id": want, "dna": np.concatenate(parts)})


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


def fit_dna_histogram(log2_dna: np.ndarray, *, g2_ratio: float = 2.0, outliers: bool = True,
                      separate_widths: bool = True, bin_width: float = 0.01,
                      start: DnaHistogramFit | None = None) -> DnaHistogramFit:
    """Maximum-likelihood Dean-Jett-Fox fit of log2 integrated stain (one imaging condition).

    ``g2_ratio`` is the 4N/2N intensity ratio, 2 for a stoichiometric stain (fitting it within
    1.85-2.1 made the fits unstable on simulated movies: it traded off against the S share). S is DNA
    spread evenly between the peaks (an S thinning towards 4N was tried: it moved ~3 points into the
    4N peak on populations whose S is even, and helped little where it is not). The two peaks have
    their own widths in log units (within a factor 1.5 of each other): additive noise (photons,
    background, a neighbour's glow) widens the dimmer 2N peak more. ``outliers`` adds a flat
    component (debris, clumps, mis-centred crops) of at most 20 %. ``start`` (a fit of similar data,
    as in a bootstrap) replaces the many starting points by one. The likelihood is binned at ``bin_width`` log2 (far below the
    peaks' width), so a fit costs the same for a thousand cells or millions.
    """
    x = np.asarray(log2_dna, dtype=float)
    if x.ndim != 1 or not np.isfinite(x).all():
        raise ValueError("log2 DNA values must be a finite 1-D array (take log2 of positive intensities)")
    if x.size < _MIN_CELLS:
        raise ValueError(f"{x.size} cells: a DNA histogram needs at least {_MIN_CELLS}")
    if not 1.5 <= g2_ratio <= 2.5:
        raise ValueError(f"g2_ratio {g2_ratio} is not a 4N/2N ratio (expected 1.5-2.5)")
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
        start = fit_dna_histogram(x, g2_ratio=g2_ratio, outliers=outliers, separate_widths=False, bin_width=bin_width)
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
    return DnaHistogramFit(mu, sd, float(g2_ratio), sd_g2, w, int(x.size), span)


class DnaContentReadout:
    """Phase shares of a population from its own DNA histogram (no network, no calibration).

    ``by`` names the columns of one imaging condition (same stain level and bleaching): each group's
    2N peak is placed by a plain fit, the aligned values are pooled and fitted once (:func:`fit_dna_histogram`).
    Groups with fewer than 60 cells are pooled unaligned (too few to place a peak). ``by=()``
    fits the population as one group. Used through ``probabilities`` and ``shares`` like
    :class:`~deepcycle_core.conditions.phase_readout.PhaseReadout`; the table needs a ``dna`` column
    (:func:`measure_dna`).
    """

    def __init__(self, by: Sequence[str] = ("frame",), g2_ratio: float = 2.0) -> None:
        self.by = tuple(by)
        self.g2_ratio = g2_ratio
        self._fits: dict[bytes, tuple[DnaHistogramFit, np.ndarray]] = {}  # a population is fitted once
        self._refits: dict[bytes, np.ndarray] = {}  # bootstrap draws, shared by comparisons with one control

    def _log2(self, table: pd.DataFrame) -> np.ndarray:
        missing = [c for c in ("dna", *self.by) if c not in table.columns]
        if missing:
            raise ValueError(f"the DNA read-out needs columns {missing} (measure them with measure_dna)")
        v = table["dna"].to_numpy(dtype=float)
        if not (np.isfinite(v) & (v > 0)).all():
            bad = int((~(np.isfinite(v) & (v > 0))).sum())
            raise ValueError(f"{bad} cells have no positive integrated stain (empty or mis-centred crops)")
        return np.log2(v)

    def fit(self, table: pd.DataFrame) -> tuple[DnaHistogramFit, np.ndarray]:
        """The pooled fit and each cell's aligned log2 value (its group's 2N peak moved to the pooled one)."""
        x = self._log2(table)
        groups = pd.util.hash_pandas_object(table[list(self.by)], index=False).to_numpy() if self.by else np.zeros(0)
        key = hashlib.sha1(x.tobytes() + groups.tobytes()).digest()
        if key not in self._fits:
            self._fits[key] = self._fit(table, x)
        return self._fits[key]

    def _fit(self, table: pd.DataFrame, x: np.ndarray) -> tuple[DnaHistogramFit, np.ndarray]:
        if not self.by:
            return fit_dna_histogram(x, g2_ratio=self.g2_ratio), x
        groups = table.groupby(list(self.by), sort=True).indices
        offsets = np.zeros(len(x))
        big = [ix for ix in groups.values() if len(ix) >= _MIN_CELLS]
        if not big:
            raise ValueError(f"no imaging group ({', '.join(self.by)}) has {_MIN_CELLS} cells; use by=() to pool them")
        for ix in big:
            offsets[ix] = fit_dna_histogram(x[ix], g2_ratio=self.g2_ratio, outliers=False,
                                            separate_widths=False).g1_log2  # only the 2N peak's place
        ref = float(np.median([offsets[ix[0]] for ix in big]))
        for ix in groups.values():
            if len(ix) < _MIN_CELLS:  # too few cells to place a peak: left where they are
                offsets[ix] = ref
        aligned = x - offsets + ref
        return fit_dna_histogram(aligned, g2_ratio=self.g2_ratio), aligned

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
        key = hashlib.sha1(x.tobytes()).digest()
        if key not in self._refits:
            if len(self._refits) > 50_000:
                self._refits.clear()
            self._refits[key] = fit_dna_histogram(x, g2_ratio=self.g2_ratio, start=start).shares
        return self._refits[key]

    def change_interval(
        self, treated: pd.DataFrame, control: pd.DataFrame, *, n_boot: int = 200, level: float = 0.95, seed: int = 0,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(change, low, high)`` of the phase shares, treated minus control, with a percentile interval
        from resampling each population's fields and refitting its histogram every time.

        Holding the cells' phase probabilities fixed would leave out the fit's own uncertainty (where
        the model splits S from the two peaks), which is most of it: between two control populations
        the S share moved by up to ~6 points. Each refit starts from the population's fit (~0.1 s).
        """
        from .circular_tests import field_bootstrap

        groups, starts = [], []
        for table in (treated, control):
            if "field" not in table.columns:
                raise ValueError("the share interval resamples fields: the table needs a 'field' column")
            fit, aligned = self.fit(table)
            fields = table["field"].to_numpy()
            groups.append([aligned[fields == f] for f in np.unique(fields)])
            starts.append(fit)

        def change(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            return self._refit_shares(a, starts[0]) - self._refit_shares(b, starts[1])

        point = starts[0].shares - starts[1].shares
        _, lo, hi = field_bootstrap(groups, change, n_boot=n_boot, level=level, seed=seed)
        return point, lo, hi
