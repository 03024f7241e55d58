"""The virtual microscope: a FUCCI time-lapse of a growing epithelial population, with ground truth.

Why: no real data can be fetched on a fresh machine, and the paper never had the true cycle position
of a cell. This module films a simulated population the way the paper filmed MDCKII-FUCCI cells
(Hoechst + brightfield + two FUCCI reporters, a frame every 10 min) and writes the same cell store that
movie ingestion writes, plus the truth the paper lacked.

The model, in the order it is computed:

* **Population** (per field of view, sequential in time). Founders get ages from the steady-state age
  density of an exponentially growing population, ``p(a) = 2 ln2 · 2^-a``; every cell has its own
  log-normal cycle length (mean 27 h, sd 3 h), daughters' lengths are correlated with the mother's
  (and sisters' with each other). Phases: G1 ≈ 37 %, S ≈ 33 %, G2 the rest, M ≈ 1 h (≈ 4 %).
  Cells migrate slowly (persistent random walk, halted in mitosis), repel each other on contact
  (crowding) and are confined to a dish region a little larger than the imaged field, so cells enter
  and leave the field. Division places two daughters along the spindle axis where the telophase
  nuclei were; they carry the mother's track id as ``parent_track_id``.
* **Reporters**. FUCCI red (Cdt1) rises in G1 (logistic, centre ≈ 0.45 of G1), peaks at G1/S and is
  degraded within ≈ 1 h of S onset; FUCCI green (Geminin) switches on ≈ 0.8 h before G1/S, accumulates
  through S/G2 to a maximum at M and is degraded at anaphase. Each cell has its own expression level
  (log-normal, CV 30 %), inherited with correlation by its daughters.
* **Hoechst**. DNA content 1 (2N) in G1, linear to 2 (4N) through S; nuclear area grows through
  interphase; texture: dark nucleoli (G1 most), fine speckle (S), granular condensed chromatin in
  prophase, a bright bar at metaphase, two bars in anaphase, two small compact nuclei in telophase that
  become the (compact, expanding) early-G1 daughters. Per-cell staining varies (``stain_cv``), the stain
  bleaches frame by frame.
* **Brightfield**. A flat textured cell with a faint dark edge, spreading with age; mitotic rounding
  with a bright halo; two rounded daughters at cytokinesis; neighbours overlap; per-frame defocus (blur)
  and illumination drift (gain and a slowly turning gradient).
* **Camera**. Background, vignetting, Poisson–Gaussian noise (shot noise in its Gaussian form, exact in
  the photon counts used here, plus read noise), offset, 16-bit clipping.

Outputs. The cell store (channels ``hoechst``/nuclear and ``brightfield``/brightfield): one 48 x 48
uint16 crop per nucleus per frame, ``img[round(y)-24 : round(y)+24, round(x)-24 : round(x)+24]`` of the
field (x = column, y = row, pixel centres at integers); nuclei closer than 24 px to the field edge are
dropped. ``birth_frame`` is the first frame of a daughter track, ``division_frame`` the last frame of a
mother (its daughters appear in the next frame), both ``-1`` when outside the movie; ``full_cycle`` =
both seen. FUCCI columns are :func:`deepcycle_core.data.fucci.measure` on the rendered FUCCI frames and
``class`` is :func:`deepcycle_core.data.fucci.classify` over all cells of the store. With ``movie=True``:
``movie/movie.ome.tif`` next to the store folder (field 0 only; TCYX uint16, channels
:data:`MOVIE_CHANNELS`, OME pixel size in um and time increment in min) and ``movie/truth.parquet``
with :data:`TRUTH_TABLE_COLUMNS`, one row per nucleus whose centre lies inside the field, per frame.

Treatment conditions. A drug is a few more parameters, neutral by default (an untreated preset simulates
byte for byte as before they existed): ``g1_extend``/``s_extend``/``g2_extend`` stretch a phase's
hours (the cycle grows, the other phases keep their hours); ``g1_arrest_frac`` of the cells stop for
good at the restriction point (``g1_arrest_at`` of G1, like a CDK4/6 inhibitor) and ``g2m_block_frac``
stop for good at the end of G2 or, ``g2m_block_in_m`` of them, in metaphase (rounded mitotic cells
pile up); an arrested cell's age stops at its arrest point, so it never divides, and the store's
``true_arrested`` says which cells are held. ``treatment_lead_h`` hours of unfilmed, unrendered
population growth under the drug come before frame 0, so the movie opens on a treated steady state
(founders met the drug at a random age; one already past its arrest point escapes it). Which cells
arrest is drawn from a generator of its own, ``(seed, field, 3)``, only when a knob is away from
neutral. :mod:`deepcycle_core.sim.treatments` names the conditions (``g1_arrest``, ``s_slowdown``,
``g2m_block``) as dose-scaled overrides: ``simulate(..., condition=, strength=)``.

Difficulty is a parameter set (:data:`PRESETS`), never a code path. Every random draw comes from a
generator seeded by ``(seed, field, ...)`` so the output is byte-identical for a seed, whatever the
number of worker processes. Memory is bounded by one field of view: fields are simulated one after
the other and crops stream into the store chunk by chunk.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd
from scipy import ndimage
from scipy.spatial import cKDTree

from ..data import fucci
from .treatments import CONDITIONS, condition_overrides, describe_conditions, resolve_strength
from ..data.fucci import PHASES  # the phase names' one home (re-exported: simulate.PHASES)
from ..data.atomic import atomic_path
from ..data.split import fit_mask
from ..data.store import CROP_SIZE, StoreWriter

__all__ = [
    "SIM_VERSION",
    "FRAME_INTERVAL_MIN",
    "PIXEL_SIZE_UM",
    "CHANNELS",
    "MOVIE_CHANNELS",
    "MOVIE_NAME",
    "TRUTH_NAME",
    "TRUTH_TABLE_COLUMNS",
    "MAX_CELLS_PER_FIELD",
    "PHASES",
    "SimParams",
    "PRESETS",
    "ARREST_M_PROGRESS",
    "resolve_params",
    "n_frames_for",
    "movie_dir",
    "simulate",
    "register_cli",
    "CONDITIONS",
    "condition_overrides",
]

#: Bump when the simulated biology, rendering or labelling changes, so cached stores are not reused by
#: mistake. 3: the FUCCI class gates are fitted on non-held-out cells only (crops unchanged).
SIM_VERSION = 4
FRAME_INTERVAL_MIN = 10.0
PIXEL_SIZE_UM = 0.65
CHANNELS: list[tuple[str, str]] = [("hoechst", "nuclear"), ("brightfield", "brightfield")]
MOVIE_CHANNELS: tuple[str, ...] = ("brightfield", "hoechst", "fucci_red", "fucci_green")
MOVIE_NAME = "movie.ome.tif"
TRUTH_NAME = "truth.parquet"
TRUTH_TABLE_COLUMNS = (
    "frame", "track_id", "parent_track_id", "x", "y", "generation",
    "birth_frame", "division_frame", "true_age", "true_phase",
)
#: No field holds more founders than this; more cells means more fields (memory ~ one field).
MAX_CELLS_PER_FIELD = 1500
_PHASE_LABELS = np.array(PHASES)  # indexed by phase code (0 G1, 1 S, 2 G2, 3 M)

_P_NUC = 32  # patch size of one nuclear / FUCCI blob
_P_BF = 48  # patch size of one brightfield cell body
_N_TEX = 64  # textures per bank


@dataclass(frozen=True)
class SimParams:
    """Every knob of the virtual microscope. Presets differ only in these numbers."""

    # population
    cycle_mean_h: float = 27.0
    cycle_sd_h: float = 3.0
    inherit_corr: float = 0.5  # mother-daughter correlation of log cycle length and expression
    g1_frac: float = 0.37
    g1_sd: float = 0.03
    s_frac: float = 0.33
    s_sd: float = 0.03
    m_hours: float = 1.05
    spacing_px: float = 38.0  # mean distance between founders (sets density and field size)
    margin_px: int = 40  # dish beyond the imaged field on each side
    motility_px: float = 0.6  # rms random velocity kick per frame
    persistence: float = 0.8
    contact_gap_px: float = 3.0  # cytoplasm kept between neighbouring nuclei by crowding
    # nucleus
    nuc_radius_px: float = 7.5  # equivalent radius of a newborn nucleus after its early-G1 expansion
    nuc_size_cv: float = 0.12
    nuc_growth: float = 0.8  # fractional area growth from birth to the end of G2
    nuc_aspect_max: float = 1.45
    # stains and reporters (photo-electrons per pixel)
    hoechst_photons: float = 650.0  # density of a G1 nucleus at stain factor 1
    stain_cv: float = 0.15
    hoechst_bg: float = 60.0
    hoechst_bleach: float = 0.0012  # fraction lost per frame
    fucci_photons: float = 450.0
    fucci_cv: float = 0.30
    fucci_bg: float = 40.0
    fucci_bleach: float = 0.0008
    # FUCCI dynamics (hours): Geminin switches on this long before G1/S and accumulates with this time
    # constant; Cdt1 is degraded with this time constant from S onset. The defaults leave a stretch at
    # G1/S where Cdt1 is gone and Geminin is still below the population median (median-split "low/low"
    # holds early S as well as early G1); the ``overlap`` preset has the classic long both-high overlap.
    geminin_lead_h: float = 0.8
    geminin_tau_h: float = 8.0
    cdt1_decay_h: float = 0.3
    # brightfield
    bf_photons: float = 3000.0
    bf_texture: float = 0.035
    bf_edge: float = 0.05
    bf_halo: float = 0.30
    defocus_sd: float = 0.5  # px, sd of the slowly drifting extra blur
    illum_drift: float = 0.05  # relative amplitude of gain and gradient drift
    # camera
    vignetting: float = 0.25
    read_noise_e: float = 3.0
    gain_adu: float = 1.0
    offset_adu: float = 100.0
    # treatment (see deepcycle_core.sim.treatments for the named conditions). All neutral by default:
    # a preset without them simulates exactly as before they existed (same random stream, same bytes).
    g1_extend: float = 0.0  # G1 lasts (1 + x) times its hours; the cycle grows, the other phases keep theirs
    s_extend: float = 0.0
    g2_extend: float = 0.0  # (M always keeps its m_hours)
    g1_arrest_frac: float = 0.0  # share of cells that stop for good at the restriction point ...
    g1_arrest_at: float = 0.8  # ... this far through their G1 (a CDK4/6 inhibitor's arrest)
    g2m_block_frac: float = 0.0  # share of cells that stop for good before or in mitosis ...
    g2m_block_in_m: float = 0.5  # ... of which this share in metaphase, the others at the end of G2
    treatment_lead_h: float = 0.0  # hours the drug has acted before the first filmed frame

    def __post_init__(self) -> None:
        # only the treatment knobs are checked: a bad value would silently give a meaningless arrest
        for name in ("g1_extend", "s_extend", "g2_extend", "treatment_lead_h"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float, np.number)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"SimParams.{name} must be a finite number >= 0, got {v!r}")
        for name in ("g1_arrest_frac", "g1_arrest_at", "g2m_block_frac", "g2m_block_in_m"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float, np.number)) and 0.0 <= v <= 1.0):
                raise ValueError(f"SimParams.{name} must be a number in [0, 1], got {v!r}")

    @property
    def treated(self) -> bool:
        """Whether any treatment knob is away from neutral (only then is the treatment generator drawn)."""
        return bool(self.g1_extend or self.s_extend or self.g2_extend or self.g1_arrest_frac
                    or self.g2m_block_frac or self.treatment_lead_h)


PRESETS: dict[str, SimParams] = {
    "default": SimParams(),
    "hard": SimParams(
        spacing_px=32.0,
        motility_px=0.9,
        nuc_size_cv=0.18,
        hoechst_photons=220.0,
        stain_cv=0.30,
        hoechst_bleach=0.003,
        fucci_photons=200.0,
        fucci_cv=0.40,
        fucci_bleach=0.002,
        bf_photons=1200.0,
        defocus_sd=0.9,
        illum_drift=0.12,
        vignetting=0.35,
        read_noise_e=6.0,
    ),
    # the other FUCCI dynamics: Geminin up ~3 h before S and fast, Cdt1 lingering ~1.5 h into S, so
    # the reporters overlap (a long both-high stretch) and no low/low gap sits at G1/S
    "overlap": SimParams(geminin_lead_h=3.0, geminin_tau_h=4.0, cdt1_decay_h=1.5),
}


def resolve_params(difficulty: str | SimParams = "default", overrides: dict[str, Any] | None = None) -> SimParams:
    """A preset by name (or a SimParams) with optional overrides; unknown names raise ValueError."""
    if isinstance(difficulty, SimParams):
        params = difficulty
    else:
        if difficulty not in PRESETS:
            raise ValueError(f"unknown difficulty {difficulty!r}; presets are {sorted(PRESETS)}")
        params = PRESETS[difficulty]
    if overrides:
        known = {f.name for f in dataclasses.fields(SimParams)}
        bad = sorted(set(overrides) - known)
        if bad:
            raise ValueError(f"unknown simulator parameter(s) {bad}; known: {sorted(known)}")
        params = dataclasses.replace(params, **overrides)
    return params


def n_frames_for(hours: float) -> int:
    """Frames in a movie of ``hours`` at one frame every 10 min (33.3 h -> 200)."""
    n = int(round(hours * 60.0 / FRAME_INTERVAL_MIN))
    if n < 2:
        raise ValueError(f"hours={hours} gives fewer than 2 frames")
    return n


# ---------------------------------------------------------------------------------------------
# population
# ---------------------------------------------------------------------------------------------


@dataclass
class _Field:
    """The simulated history of one field: per-track attributes and per-(cell, frame) rows."""

    side: int  # imaged field is side x side px; the dish adds margin_px around it
    tracks: pd.DataFrame  # indexed by local track index
    rows: pd.DataFrame  # frame, tidx, x, y (dish coordinates), age_h  -- sorted by frame


class _Tracks:
    """Growable per-track attribute table (column lists of arrays, concatenated once)."""

    def __init__(self) -> None:
        self.cols: dict[str, list[np.ndarray]] = {}
        self.n = 0

    def add(self, **cols: np.ndarray) -> np.ndarray:
        k = len(next(iter(cols.values())))
        for name, val in cols.items():
            self.cols.setdefault(name, []).append(np.asarray(val))
        idx = np.arange(self.n, self.n + k)
        self.n += k
        return idx

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({k: np.concatenate(v) for k, v in self.cols.items()})


def _new_cell_attrs(rng: np.random.Generator, p: SimParams, log_t: np.ndarray, log_r: np.ndarray,
                    log_g: np.ndarray) -> dict[str, np.ndarray]:
    n = len(log_t)
    cyc = np.exp(log_t)
    g1 = np.clip(rng.normal(p.g1_frac, p.g1_sd, n), 0.2, 0.55)
    s = np.clip(rng.normal(p.s_frac, p.s_sd, n), 0.2, 0.45)
    m = np.minimum(p.m_hours / cyc, 0.1)
    sz = np.exp(rng.normal(0.0, p.nuc_size_cv, n) - p.nuc_size_cv**2 / 2)
    s_end, m_start = g1 + s, 1.0 - m
    if p.g1_extend or p.s_extend or p.g2_extend:  # untreated cells keep the exact arithmetic above
        cyc, g1, s_end, m_start = _extend_phases(p, cyc, g1, s, m)
    return dict(
        cycle_h=cyc,
        g1_end=g1,
        s_end=s_end,
        m_start=m_start,
        log_red=log_r,
        log_green=log_g,
        stain=np.exp(rng.normal(0.0, p.stain_cv, n) - p.stain_cv**2 / 2),
        radius=p.nuc_radius_px * np.sqrt(sz),
        aspect=rng.uniform(1.0, p.nuc_aspect_max, n),
        theta=rng.uniform(0, np.pi, n),
        spindle=rng.uniform(0, np.pi, n),
        bf_scale=np.exp(rng.normal(0.0, 0.1, n)),
        tex=rng.integers(0, _N_TEX, n),
    )


def _extend_phases(p: SimParams, cyc: np.ndarray, g1: np.ndarray, s: np.ndarray, m: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Treated timings: each phase's HOURS times (1 + extend); returns (cycle_h, g1_end, s_end, m_start).

    A drug that slows one phase leaves the others' durations alone, so the cycle grows by the extra
    hours and the phase boundaries (fractions of the cycle) move; M keeps its hours. The draws are the
    untreated cell's, so a treated cell is its untreated twin with one phase stretched.
    """
    g1_h = g1 * cyc * (1.0 + p.g1_extend)
    s_h = s * cyc * (1.0 + p.s_extend)
    m_h = m * cyc
    g2_h = np.clip(1.0 - g1 - s - m, 0.0, None) * cyc * (1.0 + p.g2_extend)
    total = g1_h + s_h + g2_h + m_h
    return total, g1_h / total, (g1_h + s_h) / total, 1.0 - m_h / total


#: Where an arrested cell stops in mitosis: mid-metaphase (mitotic progress 0.3-0.65), rounded, one bar.
ARREST_M_PROGRESS = 0.45
#: A G2-blocked cell stops this many hours before M, so that it is unambiguously (still) in G2.
_G2_ARREST_GAP_H = 1e-3


def _arrest_ages(trng: np.random.Generator, p: SimParams, attrs: dict[str, np.ndarray]) -> np.ndarray:
    """Per-cell age in hours at which the cell stops for good (inf: never), drawn from ``trng``.

    A G1 arrest (restriction point, ``g1_arrest_at`` of the way through G1) takes precedence over a
    G2/M block: a cell stopped in G1 never reaches G2. The draws come from the treatment generator
    only, three per cell, so the default random stream is the same with or without treatment.
    """
    cyc = attrs["cycle_h"]
    u_g1, u_block, u_in_m = trng.random((3, len(cyc)))
    m_start = attrs["m_start"]
    at_g1 = p.g1_arrest_at * attrs["g1_end"] * cyc
    at_g2 = m_start * cyc - _G2_ARREST_GAP_H
    at_m = (m_start + ARREST_M_PROGRESS * (1.0 - m_start)) * cyc
    arrest = np.where(u_block < p.g2m_block_frac, np.where(u_in_m < p.g2m_block_in_m, at_m, at_g2), np.inf)
    return np.where(u_g1 < p.g1_arrest_frac, at_g1, arrest)


def _simulate_population(n0: int, n_frames: int, p: SimParams, rng: np.random.Generator,
                         trng: np.random.Generator | None = None) -> _Field:
    """Run the population of one field through the movie; returns per-track and per-frame tables.

    ``rng`` drives the untreated biology; ``trng`` (the treatment generator, drawn only when
    ``p.treated``; default: spawned from ``rng`` without drawing from it) decides which cells arrest.
    With ``p.treatment_lead_h`` the population first lives that many hours unfilmed: tracks that only
    lived then are dropped, tracks born then have ``birth_frame`` -1 and a recorded track whose mother
    was never recorded has ``parent`` -1 (``generation`` still counts the unfilmed divisions).
    """
    dt = FRAME_INTERVAL_MIN / 60.0
    treated = p.treated
    if treated and trng is None:
        trng = rng.spawn(1)[0]
    n_lead = int(round(p.treatment_lead_h / dt))
    side = int(max(128, math.ceil(math.sqrt(n0) * p.spacing_px / 8) * 8))
    dish = side + 2 * p.margin_px
    sig = math.sqrt(math.log(1 + (p.cycle_sd_h / p.cycle_mean_h) ** 2))
    mu = math.log(p.cycle_mean_h) - sig**2 / 2
    sig_f = math.sqrt(math.log(1 + p.fucci_cv**2))

    tracks = _Tracks()
    log_t = rng.normal(mu, sig, n0)
    log_r = rng.normal(-sig_f**2 / 2, sig_f, n0)
    log_g = rng.normal(-sig_f**2 / 2, sig_f, n0)
    attrs = _new_cell_attrs(rng, p, log_t, log_r, log_g)
    a0 = -np.log2(1 - rng.uniform(0, 1, n0) / 2)  # steady-state age density 2 ln2 2^-a
    if treated:
        # a founder already past its arrest point when the drug arrives escapes it (it was not in the
        # drug-sensitive window); its daughters meet the drug at their own arrest points
        attrs["arrest_h"] = _arrest_ages(trng, p, attrs)
        attrs["arrest_h"][a0 * attrs["cycle_h"] > attrs["arrest_h"]] = np.inf
    else:
        attrs["arrest_h"] = np.full(n0, np.inf)
    idx = tracks.add(parent=np.full(n0, -1), generation=np.zeros(n0, int), birth_frame=np.full(n0, -1), **attrs)
    # founders spread over the whole dish (field + margin) so the field edge is not special
    pos = rng.uniform(0, dish, (n0, 2))
    age = a0 * attrs["cycle_h"]
    vel = np.zeros((n0, 2))
    cyc_all = attrs["cycle_h"]
    contact = 2.0 * attrs["radius"] * np.sqrt(1 + p.nuc_growth * a0) + p.contact_gap_px
    for _ in range(15):  # relax the random start into a non-overlapping layout
        pos = _repel(pos, contact, dish)

    division_frame: dict[int, int] = {}
    rec_frame, rec_idx, rec_pos, rec_age = [], [], [], []
    cycle_of = [cyc_all]
    spindle_of = [attrs["spindle"]]
    radius_of = [attrs["radius"]]
    arrest_of = [attrs["arrest_h"]]
    logt_of, logr_of, logg_of, gen_of = [log_t], [log_r], [log_g], [np.zeros(n0, int)]
    for f in range(-n_lead, n_frames):  # frames < 0: the unfilmed treatment lead
        if f >= 0:
            rec_frame.append(np.full(len(idx), f, dtype=np.int32))
            rec_idx.append(idx.copy())
            rec_pos.append(pos.copy())
            rec_age.append(age.copy())
        if f == n_frames - 1:
            break
        cyc = np.concatenate(cycle_of)
        age = age + dt
        if treated:  # an arrested cell's age stops at its arrest point, so it never divides
            age = np.minimum(age, np.concatenate(arrest_of)[idx])
        div = age >= cyc[idx]
        if div.any():
            mothers = idx[div]
            if f >= 0:
                for m in mothers:
                    division_frame[int(m)] = f
            k = len(mothers)
            lt, lr, lg = (np.concatenate(a)[mothers] for a in (logt_of, logr_of, logg_of))
            rho = p.inherit_corr
            shared = rng.normal(size=k)
            new_lt, new_lr, new_lg = [], [], []
            for _d in range(2):
                eps = math.sqrt(0.5) * shared + math.sqrt(0.5) * rng.normal(size=k)
                new_lt.append(mu + rho * (lt - mu) + math.sqrt(1 - rho**2) * sig * eps)
                for src, dst in ((lr, new_lr), (lg, new_lg)):
                    m_ = -sig_f**2 / 2
                    dst.append(m_ + rho * (src - m_) + math.sqrt(1 - rho**2) * sig_f * rng.normal(size=k))
            d_lt, d_lr, d_lg = (np.concatenate(a) for a in (new_lt, new_lr, new_lg))
            d_attrs = _new_cell_attrs(rng, p, d_lt, d_lr, d_lg)
            d_attrs["arrest_h"] = _arrest_ages(trng, p, d_attrs) if treated else np.full(2 * k, np.inf)
            gen = np.concatenate(gen_of)[mothers] + 1
            d_idx = tracks.add(
                parent=np.concatenate([mothers, mothers]),
                generation=np.concatenate([gen, gen]),
                birth_frame=np.full(2 * k, f + 1 if f >= 0 else -1),  # born in the lead: not seen
                **d_attrs,
            )
            arrest_of.append(d_attrs["arrest_h"])
            cycle_of.append(d_attrs["cycle_h"])
            spindle_of.append(d_attrs["spindle"])
            radius_of.append(d_attrs["radius"])
            logt_of.append(d_lt), logr_of.append(d_lr), logg_of.append(d_lg)
            gen_of.append(np.concatenate([gen, gen]))
            spin = np.concatenate(spindle_of)[mothers]
            off = 8.0 * np.stack([np.cos(spin), np.sin(spin)], axis=1)
            mpos = pos[div]
            d_pos = np.concatenate([mpos - off, mpos + off])
            overshoot = age[div] - cyc[mothers]
            keep = ~div
            idx = np.concatenate([idx[keep], d_idx])
            pos = np.concatenate([pos[keep], d_pos])
            vel = np.concatenate([vel[keep], np.zeros((2 * k, 2))])
            age = np.concatenate([age[keep], overshoot, overshoot])
            if treated:  # a daughter whose arrest point lies within the overshoot starts there
                age = np.minimum(age, np.concatenate(arrest_of)[idx])
        # migration: persistent random walk, halted during mitosis
        cyc = np.concatenate(cycle_of)
        moving = (age / cyc[idx]) < (1.0 - p.m_hours / cyc[idx])
        vel = p.persistence * vel + rng.normal(0, p.motility_px, vel.shape)
        vel[~moving] = 0.0
        pos = pos + vel
        # contact distance: the two current nuclear diameters' mean plus a cytoplasm gap
        grow = np.sqrt(1 + p.nuc_growth * np.clip(age / cyc[idx], 0, 1))
        contact = 2.0 * np.concatenate(radius_of)[idx] * grow + p.contact_gap_px
        pos = _repel(pos, contact, dish)
        pos = _repel(pos, contact, dish)

    tab = tracks.frame()
    tab["division_frame"] = -1
    if division_frame:
        keys = np.fromiter(division_frame.keys(), dtype=np.int64)
        tab.loc[keys, "division_frame"] = np.fromiter(division_frame.values(), dtype=np.int64)
    pos_all = np.concatenate(rec_pos)
    rec_tidx = np.concatenate(rec_idx)
    if n_lead:
        # keep only the tracks the movie saw, numbered in order; a mother never filmed is unknown
        seen = np.unique(rec_tidx)
        new_of = np.full(len(tab), -1, dtype=np.int64)
        new_of[seen] = np.arange(len(seen))
        tab = tab.iloc[seen].reset_index(drop=True)
        par = tab["parent"].to_numpy()
        tab["parent"] = np.where(par >= 0, new_of[np.clip(par, 0, None)], -1)
        rec_tidx = new_of[rec_tidx]
    rows = pd.DataFrame({
        "frame": np.concatenate(rec_frame),
        "tidx": rec_tidx,
        "x": pos_all[:, 0] - p.margin_px,
        "y": pos_all[:, 1] - p.margin_px,
        "age_h": np.concatenate(rec_age),
    })
    return _Field(side=side, tracks=tab, rows=rows)


def _repel(pos: np.ndarray, contact: np.ndarray, dish: float) -> np.ndarray:
    """One step of soft contact repulsion (crowding) and confinement to the dish."""
    if len(pos) > 1:
        tree = cKDTree(pos)
        pairs = tree.query_pairs(float(contact.max()), output_type="ndarray")
        if len(pairs):
            i, j = pairs[:, 0], pairs[:, 1]
            d = pos[j] - pos[i]
            dist = np.sqrt((d**2).sum(1)) + 1e-6
            reach = 0.5 * (contact[i] + contact[j])
            push = np.clip(reach - dist, 0, None) * 0.3
            step = d / dist[:, None] * push[:, None]
            delta = np.zeros_like(pos)
            np.add.at(delta, i, -step)
            np.add.at(delta, j, step)
            pos = pos + delta
    return np.clip(pos, 0.0, dish)


# ---------------------------------------------------------------------------------------------
# biology of one cell at one age (vectorised over cells)
# ---------------------------------------------------------------------------------------------


def _phase_and_levels(a: np.ndarray, t: pd.DataFrame, p: SimParams) -> dict[str, np.ndarray]:
    """Phase, DNA content and noise-free FUCCI levels (x expression) at cycle age fraction ``a``."""
    cyc = t["cycle_h"].to_numpy()
    g1, s_end, m_start = (t[c].to_numpy() for c in ("g1_end", "s_end", "m_start"))
    th = a * cyc
    phase = np.where(a < g1, 0, np.where(a < s_end, 1, np.where(a < m_start, 2, 3)))
    dna = np.clip(1.0 + (a - g1) / (s_end - g1), 1.0, 2.0)
    # Cdt1 (red): logistic rise in G1, slow creep to a peak at G1/S, degraded within ~1 h of S onset
    rise = 1.0 / (1.0 + np.exp(-(a - 0.45 * g1) / 0.035))
    red = rise * (0.75 + 0.25 * np.clip(a / g1, 0, 1))
    red = red * np.exp(-np.clip(th - g1 * cyc, 0, None) / p.cdt1_decay_h)
    # Geminin (green): on geminin_lead_h before G1/S, accumulates to M, degraded from anaphase on
    on = np.clip(th - (g1 * cyc - p.geminin_lead_h), 0, None)
    green = 1.0 - np.exp(-on / p.geminin_tau_h)
    mfrac = np.where(phase == 3, (a - m_start) / (1.0 - m_start), -1.0)
    t_ana = (m_start + 0.65 * (1.0 - m_start)) * cyc
    green = green * np.exp(-np.clip(th - t_ana, 0, None) / 0.12)
    red = red * np.exp(t["log_red"].to_numpy())
    green = green / (1.0 - math.exp(-20.0 / p.geminin_tau_h)) * np.exp(t["log_green"].to_numpy())
    return dict(phase=phase, dna=dna, red=red, green=green, mfrac=mfrac, th=th)


# ---------------------------------------------------------------------------------------------
# rendering
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Banks:
    fine: np.ndarray  # (K, P, P) zero-mean unit-sd speckle
    nucleoli: np.ndarray  # (K, P, P) <= 0, dark blobs near the centre
    granular: np.ndarray  # (K, P, P) zero-mean bright condensed spots
    bf: np.ndarray  # (K, Pbf, Pbf) zero-mean unit-sd cytoplasm texture


def _make_banks(seed: int) -> _Banks:
    rng = np.random.default_rng([seed, 7919])
    P, K = _P_NUC, _N_TEX

    def norm(x: np.ndarray) -> np.ndarray:
        x = x - x.mean(axis=(1, 2), keepdims=True)
        return (x / (x.std(axis=(1, 2), keepdims=True) + 1e-9)).astype(np.float32)

    fine = norm(ndimage.gaussian_filter(rng.normal(size=(K, P, P)), (0, 0.9, 0.9)))
    yy, xx = np.mgrid[0:P, 0:P] - (P - 1) / 2
    nuc = np.zeros((K, P, P), np.float32)
    for k in range(K):
        for _ in range(rng.integers(1, 4)):
            cy, cx = rng.normal(0, 2.5, 2)
            s = rng.uniform(1.0, 1.8)
            nuc[k] -= np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s)).astype(np.float32)
    nuc = np.maximum(nuc, -1.0)
    spots = (rng.uniform(size=(K, P, P)) > 0.93).astype(float)
    gran = norm(ndimage.gaussian_filter(spots, (0, 0.8, 0.8)))
    bf = norm(ndimage.gaussian_filter(rng.normal(size=(K, _P_BF, _P_BF)), (0, 1.4, 1.4)))
    return _Banks(fine=fine, nucleoli=nuc, granular=gran, bf=bf)


def _ellipse(cx: np.ndarray, cy: np.ndarray, ra: np.ndarray, rb: np.ndarray, ang: np.ndarray, P: int
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normalised elliptical radius rho (n, P, P) of each blob in its own integer-aligned patch.

    Returns (rho, x0, y0): patch i covers pixels [y0, y0+P) x [x0, x0+P) of the canvas.
    """
    x0 = np.floor(cx).astype(np.int64) - P // 2
    y0 = np.floor(cy).astype(np.int64) - P // 2
    g = np.arange(P, dtype=np.float32)
    u = g[None, None, :] - (cx - x0).astype(np.float32)[:, None, None]
    v = g[None, :, None] - (cy - y0).astype(np.float32)[:, None, None]
    c = np.cos(ang).astype(np.float32)[:, None, None]
    s = np.sin(ang).astype(np.float32)[:, None, None]
    pa = (u * c + v * s) / ra.astype(np.float32)[:, None, None]
    pb = (-u * s + v * c) / rb.astype(np.float32)[:, None, None]
    return np.sqrt(pa * pa + pb * pb), x0, y0


def _soft(rho: np.ndarray, r: np.ndarray, width: float) -> np.ndarray:
    """A disk with a linear soft edge ``width`` px wide at rho == 1."""
    return np.clip((1.0 - rho) * r.astype(np.float32)[:, None, None] / width + 0.5, 0.0, 1.0)


def _paste(canvas: np.ndarray, patches: np.ndarray, x0: np.ndarray, y0: np.ndarray, pad: int) -> None:
    P = patches.shape[-1]
    for i in range(len(patches)):
        ys, xs = y0[i] + pad, x0[i] + pad
        canvas[ys : ys + P, xs : xs + P] += patches[i]


@dataclass
class _FrameJob:
    field: int
    frame: int
    seed: int
    side: int
    params: SimParams
    cells: pd.DataFrame  # one row per cell in the dish at this frame (track attributes merged)
    gain: float
    grad: tuple[float, float]
    blur: float
    keep_images: bool


@dataclass
class _FrameResult:
    field: int
    frame: int
    crops: np.ndarray
    rows: pd.DataFrame
    stats: dict[str, float]
    images: np.ndarray | None  # (4, side, side) uint16 in MOVIE_CHANNELS order, when asked
    truth: pd.DataFrame | None


_BANKS: dict[int, _Banks] = {}


def _banks(seed: int) -> _Banks:
    if seed not in _BANKS:
        _BANKS.clear()
        _BANKS[seed] = _make_banks(seed)
    return _BANKS[seed]


_GRID: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}


def _grid(side: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centred coordinates x, y in [-0.5, 0.5) of a field and their squared radius (cached)."""
    if side not in _GRID:
        _GRID.clear()
        yy, xx = np.mgrid[0:side, 0:side].astype(np.float32) / side - 0.5
        _GRID[side] = (xx, yy, xx**2 + yy**2)
    return _GRID[side]


def _render(job: _FrameJob) -> _FrameResult:
    """Render the four channels of one frame, cut the crops and measure FUCCI."""
    p, c = job.params, job.cells
    banks = _banks(job.seed)
    rng = np.random.default_rng([job.seed, job.field, 1, job.frame])
    m = p.margin_px
    pad = _P_BF
    dish = job.side + 2 * m
    size = dish + 2 * pad
    n = len(c)
    a = c["age_h"].to_numpy() / c["cycle_h"].to_numpy()
    bio = _phase_and_levels(a, c, p)
    phase, mfrac, th = bio["phase"], bio["mfrac"], bio["th"]
    cx = c["x"].to_numpy() + m
    cy = c["y"].to_numpy() + m
    r0 = c["radius"].to_numpy()
    asp = c["aspect"].to_numpy()
    tex0 = c["tex"].to_numpy()
    turn = np.where(tex0 % 2 == 0, 1.0, -1.0) * (0.01 + 0.0005 * (tex0 % 16))
    theta = c["theta"].to_numpy() + turn * job.frame  # each nucleus turns slowly, its own way
    spin = c["spindle"].to_numpy()
    tex = (tex0 + (job.frame + 5 * tex0) // 12) % _N_TEX  # texture renews every 2 h, cells out of step
    m_start = c["m_start"].to_numpy()

    # ---- nuclear geometry: two blobs per cell (the second only in anaphase/telophase) ----------
    grow = 1.0 + p.nuc_growth * np.clip(a / m_start, 0, 1)
    early = np.clip(th / 1.5, 0, 1)  # early-G1 daughters are compact and expand over 1.5 h
    area = np.pi * r0**2 * grow * (0.55 + 0.45 * early)
    req = np.sqrt(area / np.pi)
    ra = req * np.sqrt(asp)
    rb = req / np.sqrt(asp)
    ang = theta.copy()
    sep = np.zeros(n)
    w2 = np.zeros(n)  # share of the DNA in blob 2
    r_end = r0 * np.sqrt(1 + p.nuc_growth)
    pro = (mfrac >= 0) & (mfrac < 0.3)
    meta = (mfrac >= 0.3) & (mfrac < 0.65)
    ana = (mfrac >= 0.65) & (mfrac < 0.8)
    telo = mfrac >= 0.8
    ra[pro] = rb[pro] = 0.9 * r_end[pro]
    ra[meta], rb[meta] = 1.0 * r_end[meta], 2.6
    ang[meta] = spin[meta] + np.pi / 2
    ra[ana], rb[ana] = 0.8 * r_end[ana], 2.4
    ang[ana] = spin[ana] + np.pi / 2
    sep[ana] = 3.0 + (mfrac[ana] - 0.65) / 0.15 * 9.0
    w2[ana] = 0.5
    ra[telo] = rb[telo] = 0.55 * r0[telo] * (1 + 0.2 * (mfrac[telo] - 0.8) / 0.2)
    sep[telo] = 12.0 + (mfrac[telo] - 0.8) / 0.2 * 4.0
    w2[telo] = 0.5
    dx, dy = 0.5 * sep * np.cos(spin), 0.5 * sep * np.sin(spin)
    two = w2 > 0
    bx = np.concatenate([cx - dx, (cx + dx)[two]])
    by = np.concatenate([cy - dy, (cy + dy)[two]])
    bw = np.concatenate([1.0 - w2, w2[two]])
    bra = np.concatenate([ra, ra[two]])
    brb = np.concatenate([rb, rb[two]])
    bang = np.concatenate([ang, ang[two]])
    owner = np.concatenate([np.arange(n), np.nonzero(two)[0]])
    rho, x0, y0 = _ellipse(bx, by, bra, brb, bang, _P_NUC)
    rmean = np.sqrt(bra * brb)
    mask = _soft(rho, rmean, 1.3)
    # texture weights by phase
    ph = phase[owner]
    mf = mfrac[owner]
    w_nucl = np.select([ph == 0, ph == 1, ph == 2], [0.45, 0.3, 0.2], 0.0)
    w_fine = np.select([ph == 0, ph == 1, ph == 2], [0.10, 0.20, 0.14], 0.10)
    w_gran = np.where(ph == 2, 0.12, 0.0) + np.where((mf >= 0) & (mf < 0.3), 0.25 + 1.5 * mf, 0.0)
    t_i = tex[owner]
    texture = (1.0 + w_fine[:, None, None].astype(np.float32) * banks.fine[t_i]
               + w_nucl[:, None, None].astype(np.float32) * banks.nucleoli[t_i]
               + w_gran[:, None, None].astype(np.float32) * banks.granular[t_i])
    texture = np.clip(texture, 0.05, None)
    dome = 1.0 - 0.25 * np.clip(rho, 0, 1) ** 2
    bleach_h = (1.0 - p.hoechst_bleach) ** job.frame
    total = bio["dna"] * c["stain"].to_numpy() * p.hoechst_photons * np.pi * p.nuc_radius_px**2 * bleach_h
    dens = (total[owner] * bw) / (np.pi * bra * brb)
    nuc_patch = mask * texture * dome * dens.astype(np.float32)[:, None, None]

    # ---- FUCCI: nuclear in interphase, spread over the rounded cell after nuclear envelope breakdown
    f_ra, f_rb, f_ang = ra.copy(), rb.copy(), ang.copy()
    spread = mfrac >= 0.3
    f_ra[spread] = f_rb[spread] = 11.0 * c["bf_scale"].to_numpy()[spread]
    frho, fx0, fy0 = _ellipse(cx, cy, f_ra, f_rb, f_ang, _P_NUC)
    fmask = _soft(frho, np.sqrt(f_ra * f_rb), 1.3) / (np.pi * f_ra * f_rb).astype(np.float32)[:, None, None]
    f_area0 = np.pi * p.nuc_radius_px**2 * p.fucci_photons
    bleach_f = (1.0 - p.fucci_bleach) ** job.frame
    red_tot = bio["red"] * f_area0 * bleach_f
    green_tot = bio["green"] * f_area0 * bleach_f

    # ---- brightfield cell bodies: spread flat cells, rounding + halo in mitosis, two at cytokinesis
    bfs = c["bf_scale"].to_numpy()
    rc = np.minimum(1.9 * req * (1.0 + 0.15 * a) * bfs, 20.0)
    c_ra = np.minimum(rc * np.sqrt(asp * 1.2), 21.0)
    c_rb = rc / np.sqrt(asp * 1.2)
    round_ = np.zeros(n)
    round_ = np.where(mfrac >= 0, np.clip((mfrac + 0.1) / 0.35, 0, 1), round_)
    round_ = np.where(phase == 0, np.clip(1.0 - th / 1.5, 0, 1) * 0.8, round_)
    r_round = 11.0 * bfs
    c_ra = c_ra + (r_round - c_ra) * round_
    c_rb = c_rb + (r_round - c_rb) * round_
    split = mfrac >= 0.65
    c_ra[split] = c_rb[split] = 0.78 * r_round[split]
    cbx = np.concatenate([cx - dx, (cx + dx)[split]])
    cby = np.concatenate([cy - dy, (cy + dy)[split]])
    cowner = np.concatenate([np.arange(n), np.nonzero(split)[0]])
    cra, crb = c_ra[cowner], c_rb[cowner]
    crho, cx0, cy0 = _ellipse(cbx, cby, cra, crb, np.concatenate([ang, ang[split]]), _P_BF)
    cr = np.sqrt(cra * crb).astype(np.float32)[:, None, None]
    rnd = round_[cowner].astype(np.float32)[:, None, None]
    body = np.clip((1.0 - crho) * cr / 2.0 + 0.5, 0, 1)
    edge = np.exp(-(((crho - 1.0) * cr / 1.3) ** 2))
    halo = np.exp(-(((crho - 1.15) * cr / 1.6) ** 2))
    age_o = a[cowner].astype(np.float32)[:, None, None]
    bf_patch = (
        body * (p.bf_texture * banks.bf[tex[cowner]] - 0.02 - 0.06 * rnd)
        - edge * p.bf_edge * (0.5 + age_o) * (1 - rnd)
        + halo * p.bf_halo * rnd
    )
    # the nucleus shows faintly in brightfield (slightly darker, nucleoli darker still)
    nuc_bf = -0.03 * mask * (1.0 + 0.8 * w_nucl[:, None, None].astype(np.float32) * -banks.nucleoli[t_i])

    # ---- compose the dish canvases and cut the imaged field ----------------------------------
    can = np.zeros((4, size, size), np.float32)  # bf modulation, hoechst, red, green
    _paste(can[1], nuc_patch, x0, y0, pad)
    _paste(can[0], nuc_bf, x0, y0, pad)
    _paste(can[0], bf_patch, cx0, cy0, pad)
    _paste(can[2], fmask * red_tot.astype(np.float32)[:, None, None], fx0, fy0, pad)
    _paste(can[3], fmask * green_tot.astype(np.float32)[:, None, None], fx0, fy0, pad)
    lo, hi = pad + m, pad + m + job.side
    sig = can[:, lo:hi, lo:hi]
    side = job.side
    xx, yy, r2 = _grid(side)
    vign = 1.0 - p.vignetting * 2.0 * r2
    illum = (p.bf_photons * job.gain) * (1.0 + job.grad[0] * xx + job.grad[1] * yy)
    bf_mod = ndimage.gaussian_filter(sig[0], 0.7 + job.blur)
    photons = np.empty_like(sig)
    np.clip(bf_mod + 1.0, 0.05, None, out=photons[0])
    photons[0] *= illum
    for ch, bg in ((1, p.hoechst_bg), (2, p.fucci_bg), (3, p.fucci_bg)):
        np.add(sig[ch], bg, out=photons[ch])
    photons *= vign
    # Poisson-Gaussian camera: shot noise (variance = photons) + read noise, then gain and offset
    noise = rng.standard_normal(photons.shape, dtype=np.float32)
    sd = np.sqrt(photons + np.float32(p.read_noise_e**2))
    sd *= noise
    photons += sd
    photons *= np.float32(p.gain_adu)
    photons += np.float32(p.offset_adu + 0.5)  # +0.5 then truncation = rounding
    np.clip(photons, 0, 65535, out=photons)
    img = photons.astype(np.uint16)  # bf, hoechst, red, green

    # ---- crops, FUCCI readout, rows -----------------------------------------------------------
    fx = c["x"].to_numpy()
    fy = c["y"].to_numpy()
    ix, iy = np.rint(fx).astype(np.int64), np.rint(fy).astype(np.int64)
    h = CROP_SIZE // 2
    keep = (ix - h >= 0) & (ix + h <= side) & (iy - h >= 0) & (iy + h <= side)
    k = np.nonzero(keep)[0]
    g = np.arange(-h, h)
    yi = iy[k][:, None, None] + g[None, :, None]
    xi = ix[k][:, None, None] + g[None, None, :]
    crops = np.stack([img[1][yi, xi], img[0][yi, xi]], axis=1)  # hoechst, brightfield
    red_m = fucci.measure(img[2], fx[k], fy[k]) if len(k) else np.empty(0)
    green_m = fucci.measure(img[3], fx[k], fy[k]) if len(k) else np.empty(0)
    t_h = job.frame * FRAME_INTERVAL_MIN / 60.0
    sel = c.iloc[k]
    rows = pd.DataFrame({
        "track_id": sel["track_id"].to_numpy(np.int64),
        "parent_track_id": sel["parent_track_id"].to_numpy(np.int64),
        "frame": np.full(len(k), job.frame, np.int64),
        "time_h": np.full(len(k), t_h),
        "x": fx[k],
        "y": fy[k],
        "field": np.full(len(k), job.field, np.int64),
        "birth_frame": sel["birth_frame"].to_numpy(np.int64),
        "division_frame": sel["division_frame"].to_numpy(np.int64),
        "full_cycle": (sel["birth_frame"].to_numpy() >= 0) & (sel["division_frame"].to_numpy() >= 0),
        "fucci_red": red_m,
        "fucci_green": green_m,
        "class": np.full(len(k), -1, np.int64),
        "true_age": a[k],
        "true_phase": _PHASE_LABELS[phase[k]],
        "true_dna": bio["dna"][k],
        "true_red": bio["red"][k],
        "true_green": bio["green"][k],
        "true_cycle_h": sel["cycle_h"].to_numpy(),
        "true_age_h": sel["age_h"].to_numpy(),
        "true_nuc_area": area[k],
        "true_m_progress": mfrac[k],
        # held at its arrest point now (an arrested cell's age stops there; untreated cells: inf)
        "true_arrested": sel["age_h"].to_numpy() >= sel["arrest_h"].to_numpy(),
        "generation": sel["generation"].to_numpy(np.int64),
    })
    stats = {}
    for ch, plane in (("hoechst", img[1]), ("brightfield", img[0])):
        sub = plane[::2, ::2]  # a 1-in-4 pixel grid: the same statistics at a quarter of the cost
        stats[f"{ch}_median"] = float(np.median(sub))
        stats[f"{ch}_std"] = float(sub.std(dtype=np.float64))
    truth = None
    images = None
    if job.keep_images:
        images = img
        inside = (fx >= 0) & (fx < side) & (fy >= 0) & (fy < side)
        s2 = c[inside]
        truth = pd.DataFrame({
            "frame": np.full(int(inside.sum()), job.frame, np.int64),
            "track_id": s2["track_id"].to_numpy(np.int64),
            "parent_track_id": s2["parent_track_id"].to_numpy(np.int64),
            "x": fx[inside], "y": fy[inside],
            "generation": s2["generation"].to_numpy(np.int64),
            "birth_frame": s2["birth_frame"].to_numpy(np.int64),
            "division_frame": s2["division_frame"].to_numpy(np.int64),
            "true_age": a[inside],
            "true_phase": _PHASE_LABELS[phase[inside]],
        })
    return _FrameResult(job.field, job.frame, crops.astype(np.uint16), rows, stats, images, truth)


def _field_jobs(field: int, fld: _Field, track_offset: int, seed: int, p: SimParams, n_frames: int,
                keep_images: bool, frame_every: int = 1) -> Iterator[_FrameJob]:
    """Per-frame render jobs of one field, with the field's drifts drawn up front."""
    rng = np.random.default_rng([seed, field, 2])
    # slow drifts: AR(1) processes with a correlation time of ~3 h
    phi = math.exp(-1.0 / 18.0)

    def ar1(sd: float) -> np.ndarray:
        x = np.empty(n_frames)
        x[0] = rng.normal(0, sd)
        e = rng.normal(0, sd * math.sqrt(1 - phi**2), n_frames)
        for i in range(1, n_frames):
            x[i] = phi * x[i - 1] + e[i]
        return x

    gain = 1.0 + ar1(p.illum_drift)
    gx, gy = ar1(p.illum_drift), ar1(p.illum_drift)
    blur = np.abs(ar1(p.defocus_sd))
    t = fld.tracks
    t = t.assign(
        track_id=np.arange(len(t), dtype=np.int64) + track_offset,
        parent_track_id=np.where(t["parent"].to_numpy() >= 0, t["parent"].to_numpy() + track_offset, -1),
    )
    t["division_frame"] = t["division_frame"].astype(np.int64)
    cols = ["track_id", "parent_track_id", "generation", "birth_frame", "division_frame", "cycle_h", "g1_end",
            "s_end", "m_start", "log_red", "log_green", "stain", "radius", "aspect", "theta", "spindle",
            "bf_scale", "tex", "arrest_h"]
    merged = fld.rows.join(t[cols], on="tidx")
    for f, grp in merged.groupby("frame", sort=True):
        if f % frame_every:
            continue  # imaged (it bleached the stains) but not kept for analysis
        yield _FrameJob(field, int(f), seed, fld.side, p, grp.reset_index(drop=True), float(gain[f]),
                        (float(gx[f]), float(gy[f])), float(blur[f]), keep_images)


#: The columns :func:`_label_classes` reads (FUCCI levels, and the lineage :func:`fit_mask` needs): the
#: store writer hands it only these, so the whole cell table never has to be in memory at once.
_LABEL_COLUMNS: tuple[str, ...] = ("fucci_red", "fucci_green", "track_id", "parent_track_id", "field", "full_cycle")


def _label_classes(cells: pd.DataFrame) -> pd.DataFrame:
    """Apply the FUCCI class rule just before the store is sealed.

    The paper's median splits need every cell's intensities, which only exist after the last frame.
    The gates are fitted on the cells that may be fitted on (not the held-out full-cycle tracks nor
    their mothers and daughters, :func:`deepcycle_core.data.split.fit_mask`) and applied to every cell.
    Gets the :data:`_LABEL_COLUMNS` of every cell and returns them with ``class`` added.
    """
    cells["class"] = fucci.classify(
        cells["fucci_red"].to_numpy(), cells["fucci_green"].to_numpy(), fit=fit_mask(cells)
    ).astype(np.int64)
    return cells


def _same_parameters(out: Path, parameters: dict[str, Any]) -> bool:
    """Whether ``out`` is a sealed store whose provenance records exactly ``parameters``."""
    try:
        got = json.loads((out / "meta.json").read_text())["provenance"]["parameters"]
    except (OSError, KeyError, TypeError, ValueError):
        return False
    return json.loads(json.dumps(parameters)) == got


def movie_dir(out: str | os.PathLike) -> Path:
    """Where ``simulate(out, movie=True)`` puts the movie: ``<out parent>/movie``."""
    return Path(out).parent / "movie"


def simulate(
    out: str | os.PathLike,
    *,
    cells: int = 100,
    hours: float = 33.3,
    seed: int = 0,
    difficulty: str = "default",
    fields: int = 1,
    movie: bool = False,
    overwrite: bool = False,
    reuse: bool = False,
    progress: bool = True,
    workers: int | None = None,
    overrides: dict[str, Any] | None = None,
    condition: str = "control",
    strength: float | None = None,
    frame_every: int = 1,
) -> Path:
    """Film a simulated FUCCI population and write its cell store at ``out``; returns ``out``.

    ``cells`` founders in total, shared evenly among ``fields`` fields of view (more fields are added
    so that none holds over :data:`MAX_CELLS_PER_FIELD`); each field is a square sized for the
    preset's founder spacing. ``hours`` of movie at one frame every 10 min. With ``movie=True`` the
    first field is also written as ``<out parent>/movie/movie.ome.tif`` (TCYX uint16; channels
    brightfield, hoechst, fucci_red, fucci_green) with ``truth.parquet`` (one row per nucleus centred
    inside the field per frame). ``workers`` > 1 renders frames in parallel processes (default: up to
    2, one per core); the output is identical whatever the number of workers. ``reuse=True`` returns
    at once when ``out`` already holds a sealed store simulated with exactly these parameters (same
    simulator version, preset values and seed; and the movie, when asked for); otherwise it is
    simulated anew (replacing an outdated store, as with ``overwrite``).

    ``condition`` names a treatment of :data:`CONDITIONS` (:mod:`deepcycle_core.sim.treatments`) at
    ``strength`` (a dose; None: 1.0, 0: untreated); its overrides go on top of the ``difficulty`` preset
    and explicit ``overrides`` win over them. A treated store records ``condition`` and the resolved
    ``strength`` in its provenance parameters; the control's provenance has neither key, so a control
    store's parameters are what they were before conditions existed (plus the neutral treatment knobs).

    ``frame_every`` > 1 keeps only every n-th frame (0, n, 2n, ...) in the store, with its true frame
    number and time: the movie is filmed (and its stains bleach) frame by frame as always, but only a
    sample of frames is analysed, as a screen reads a few time points of a time-lapse. Not with
    ``movie=True``.
    """
    out = Path(out)
    if cells < 1:
        raise ValueError(f"cells must be >= 1, got {cells}")
    if fields < 1:
        raise ValueError(f"fields must be >= 1, got {fields}")
    if isinstance(hours, bool) or not isinstance(hours, (int, float, np.number)) or not math.isfinite(hours) or hours <= 0:
        raise ValueError(f"hours must be a positive, finite number, got {hours!r}")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1 (or None: up to 2), got {workers}")
    if isinstance(frame_every, bool) or not isinstance(frame_every, (int, np.integer)) or frame_every < 1:
        raise ValueError(f"frame_every must be an integer >= 1, got {frame_every!r}")
    if movie and frame_every > 1:
        raise ValueError("movie=True writes every frame: frame_every must be 1")
    merged = {**condition_overrides(condition, strength), **(overrides or {})}
    params = resolve_params(difficulty, merged)
    n_frames = n_frames_for(hours)
    fields = max(fields, math.ceil(cells / MAX_CELLS_PER_FIELD))
    if cells < fields:
        raise ValueError(f"{cells} cells cannot fill {fields} fields")
    per_field = [cells // fields + (1 if i < cells % fields else 0) for i in range(fields)]
    mdir = movie_dir(out)
    parameters = {
        "sim_version": SIM_VERSION,
        "cells": int(cells),
        "hours": float(hours),
        "seed": int(seed),
        "difficulty": difficulty if isinstance(difficulty, str) else "custom",
        "fields": int(fields),
        "n_frames": n_frames,
        "overrides": dict(overrides or {}),
        "params": dataclasses.asdict(params),
    }
    if condition != "control":
        parameters["condition"] = condition
        parameters["strength"] = resolve_strength(strength)
    if frame_every > 1:
        parameters["frame_every"] = int(frame_every)
    if reuse:
        if _same_parameters(out, parameters) and (not movie or (mdir / MOVIE_NAME).exists()):
            return out
        overwrite = True
    if movie and (mdir / MOVIE_NAME).exists() and not overwrite:
        raise FileExistsError(f"{mdir / MOVIE_NAME}: already exists (pass overwrite=True / --overwrite)")
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out}: already exists (pass overwrite=True / --overwrite to replace it)")
    meta = {
        "frame_interval_min": FRAME_INTERVAL_MIN,
        "pixel_size_um": PIXEL_SIZE_UM,
        "provenance": {"source": "simulate", "parameters": parameters},
    }
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(range(0, n_frames, frame_every)) * fields, desc="simulate", unit="frame", file=sys.stderr)
    if workers is None:
        workers = min(2, os.cpu_count() or 1)
    pool = ProcessPoolExecutor(max_workers=workers) if workers > 1 else None
    frames_rows: list[dict[str, Any]] = []
    track_offset = 0
    try:
        with StoreWriter(out, channels=CHANNELS, meta=meta, overwrite=overwrite,
                         finalise_cells=_label_classes, finalise_columns=_LABEL_COLUMNS) as writer:
            for field in range(fields):
                fld = _simulate_population(per_field[field], n_frames, params,
                                           np.random.default_rng([seed, field, 0]),
                                           np.random.default_rng([seed, field, 3]))
                want_movie = movie and field == 0
                jobs = _field_jobs(field, fld, track_offset, seed, params, n_frames, want_movie, frame_every)
                track_offset += len(fld.tracks)
                results = pool.map(_render, jobs, chunksize=4) if pool else map(_render, jobs)

                def consume(res: _FrameResult) -> None:
                    if len(res.crops):
                        writer.append(res.crops, res.rows)
                    frames_rows.append({"field": res.field, "frame": res.frame, **res.stats})
                    if bar is not None:
                        bar.update(1)

                if want_movie:
                    _write_movie(mdir, fld.side, n_frames, results, consume)
                else:
                    for res in results:
                        consume(res)
            writer.set_frames(pd.DataFrame(frames_rows))
    finally:
        if pool is not None:
            pool.shutdown()
        if bar is not None:
            bar.close()
    return out


def _write_movie(mdir: Path, side: int, n_frames: int, results: Iterator[_FrameResult], consume) -> None:
    """Stream one field into an OME-TIFF (TCYX) and its truth table, under temporary names."""
    import tifffile

    mdir.mkdir(parents=True, exist_ok=True)
    truths: list[pd.DataFrame] = []

    def pages() -> Iterator[np.ndarray]:
        for res in results:
            consume(res)
            truths.append(res.truth)
            for plane in res.images:
                yield plane

    # the inner block leaves first: the movie is renamed onto its name, then the truth table
    with atomic_path(mdir / TRUTH_NAME) as tmp_truth, atomic_path(mdir / MOVIE_NAME) as tmp_tif:
        with tifffile.TiffWriter(tmp_tif, bigtiff=True, ome=True) as tw:
            tw.write(
                pages(),
                shape=(n_frames, len(MOVIE_CHANNELS), side, side),
                dtype=np.uint16,
                photometric="minisblack",
                metadata={
                    "axes": "TCYX",
                    "Channel": {"Name": list(MOVIE_CHANNELS)},
                    "PhysicalSizeX": PIXEL_SIZE_UM,
                    "PhysicalSizeXUnit": "µm",
                    "PhysicalSizeY": PIXEL_SIZE_UM,
                    "PhysicalSizeYUnit": "µm",
                    "TimeIncrement": FRAME_INTERVAL_MIN,
                    "TimeIncrementUnit": "min",
                },
            )
        truth = pd.concat(truths, ignore_index=True)[list(TRUTH_TABLE_COLUMNS)]
        truth.to_parquet(tmp_truth, index=False)


# ---------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "simulate",
        help="film the virtual microscope into a cell store",
        description="Film the virtual microscope into a cell store, optionally under a drug condition.",
        epilog="conditions (--condition NAME, dose --strength X; 1.0 nominal, 0 untreated):\n"
        + describe_conditions(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", required=True, help="cell store folder to create (e.g. data/runs/default/store)")
    p.add_argument("--cells", type=int, default=100, help="founder cells in total (default 100)")
    p.add_argument("--hours", type=float, default=33.3, help="movie length in hours (default 33.3 = 200 frames)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--difficulty", choices=sorted(PRESETS), default="default")
    p.add_argument("--condition", choices=list(CONDITIONS), default="control",
                   help="drug / treatment condition on top of the preset (default control; listed below)")
    p.add_argument("--strength", type=float, default=None,
                   help="the condition's dose (default 1.0; 0 = untreated; ignored for control)")
    p.add_argument("--fields", type=int, default=1, help="fields of view (default 1)")
    p.add_argument("--movie", action="store_true", help="also write <out parent>/movie/movie.ome.tif + truth.parquet")
    p.add_argument("--workers", type=int, default=None, help="render processes (default: up to 2; output identical)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing store / movie")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cli_simulate)


def _cli_simulate(args: argparse.Namespace) -> int:
    try:
        path = simulate(args.out, cells=args.cells, hours=args.hours, seed=args.seed, difficulty=args.difficulty,
                        fields=args.fields, movie=args.movie, overwrite=args.overwrite, progress=not args.quiet,
                        workers=args.workers, condition=args.condition, strength=args.strength)
    except FileExistsError as exc:
        raise ValueError(str(exc)) from exc
    from ..data.store import open_store

    st = open_store(path)
    c = st.cells
    print(f"wrote {path}: {st.n_cells} crops, {c['track_id'].nunique()} tracks, "
          f"{c.loc[c['full_cycle'], 'track_id'].nunique()} full-cycle tracks")
    return 0
