"""The simulated population of one field of view: lineages, cycle phases, arrest, migration and crowding.

Why its own module: this is the simulated world's biology, the ground truth the book judges its
read-outs against, and it draws only from the field's population generators (``(seed, field, 0)`` for
the untreated biology, ``(seed, field, 3)`` for which cells a drug arrests). Nothing here renders a
pixel: :mod:`deepcycle_core.sim.render` films the tables this module returns, and
:mod:`deepcycle_core.sim.simulate` (whose docstring describes the whole model) runs the stage.

Founders get ages from the steady-state age density of an exponentially growing population,
``p(a) = 2 ln2 · 2^-a``; each cell has its own log-normal cycle length, inherited with correlation by
its daughters. Cells migrate as a persistent random walk (halted in mitosis), repel each other on
contact and stay in a dish a little larger than the imaged field. :func:`_phase_and_levels` gives a
cell's phase, DNA content and noise-free FUCCI levels at an age: the biology the renderer draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from .params import _N_TEX, FRAME_INTERVAL_MIN, SimParams

__all__ = ["ARREST_M_PROGRESS"]


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


@dataclass(frozen=True)
class _Laws:
    """The log-normal laws of a preset: log cycle length (``mu``, ``sig``) and log expression (``sig_f``)."""

    mu: float
    sig: float
    sig_f: float


def _laws(p: SimParams) -> _Laws:
    """Log-normal parameters with the preset's mean and sd of the cycle, and unit-mean expression."""
    sig = math.sqrt(math.log(1 + (p.cycle_sd_h / p.cycle_mean_h) ** 2))
    mu = math.log(p.cycle_mean_h) - sig**2 / 2
    sig_f = math.sqrt(math.log(1 + p.fucci_cv**2))
    return _Laws(mu=mu, sig=sig, sig_f=sig_f)


@dataclass
class _Living:
    """The cells in the dish now, and the per-track attributes the time loop reads.

    ``idx``, ``pos``, ``age``, ``vel`` hold one entry per living cell (track index, dish position,
    age in hours, velocity). Each ``*_of`` list grows by one array per round of divisions, so a
    track's value is ``np.concatenate(list)[track index]``.
    """

    idx: np.ndarray
    pos: np.ndarray
    age: np.ndarray
    vel: np.ndarray
    cycle_of: list[np.ndarray]
    spindle_of: list[np.ndarray]
    radius_of: list[np.ndarray]
    arrest_of: list[np.ndarray]
    logt_of: list[np.ndarray]
    logr_of: list[np.ndarray]
    logg_of: list[np.ndarray]
    gen_of: list[np.ndarray]


@dataclass
class _Record:
    """What the movie saw, frame by frame: (frame, track index, dish position, age) of every cell."""

    frame: list[np.ndarray] = field(default_factory=list)
    idx: list[np.ndarray] = field(default_factory=list)
    pos: list[np.ndarray] = field(default_factory=list)
    age: list[np.ndarray] = field(default_factory=list)


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
    laws = _laws(p)
    tracks = _Tracks()
    live = _founders(n0, dish, p, laws, rng, trng, tracks)

    division_frame: dict[int, int] = {}
    rec = _Record()
    for f in range(-n_lead, n_frames):  # frames < 0: the unfilmed treatment lead
        if f >= 0:
            rec.frame.append(np.full(len(live.idx), f, dtype=np.int32))
            rec.idx.append(live.idx.copy())
            rec.pos.append(live.pos.copy())
            rec.age.append(live.age.copy())
        if f == n_frames - 1:
            break
        cyc = np.concatenate(live.cycle_of)
        live.age = live.age + dt
        if treated:  # an arrested cell's age stops at its arrest point, so it never divides
            live.age = np.minimum(live.age, np.concatenate(live.arrest_of)[live.idx])
        div = live.age >= cyc[live.idx]
        if div.any():
            if f >= 0:
                for m in live.idx[div]:
                    division_frame[int(m)] = f
            _divide(live, div, cyc, f, p, laws, rng, trng, tracks)
        _migrate(live, p, rng, dish)
    return _field_tables(side, tracks, division_frame, rec, n_lead, p)


def _founders(n0: int, dish: int, p: SimParams, laws: _Laws, rng: np.random.Generator,
              trng: np.random.Generator | None, tracks: _Tracks) -> _Living:
    """The founders of a field, at steady-state ages, relaxed into a non-overlapping layout."""
    mu, sig, sig_f = laws.mu, laws.sig, laws.sig_f
    log_t = rng.normal(mu, sig, n0)
    log_r = rng.normal(-sig_f**2 / 2, sig_f, n0)
    log_g = rng.normal(-sig_f**2 / 2, sig_f, n0)
    attrs = _new_cell_attrs(rng, p, log_t, log_r, log_g)
    a0 = -np.log2(1 - rng.uniform(0, 1, n0) / 2)  # steady-state age density 2 ln2 2^-a
    if p.treated:
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
    contact = 2.0 * attrs["radius"] * np.sqrt(1 + p.nuc_growth * a0) + p.contact_gap_px
    for _ in range(15):  # relax the random start into a non-overlapping layout
        pos = _repel(pos, contact, dish)
    return _Living(idx=idx, pos=pos, age=age, vel=vel, cycle_of=[attrs["cycle_h"]], spindle_of=[attrs["spindle"]],
                   radius_of=[attrs["radius"]], arrest_of=[attrs["arrest_h"]], logt_of=[log_t], logr_of=[log_r],
                   logg_of=[log_g], gen_of=[np.zeros(n0, int)])


def _inherit(rng: np.random.Generator, p: SimParams, laws: _Laws, lt: np.ndarray, lr: np.ndarray, lg: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both daughters' log cycle lengths and log expressions, correlated with the mother's and each other's.

    Returns (log_t, log_red, log_green) of the first daughters of every mother, then the second ones.
    """
    mu, sig, sig_f = laws.mu, laws.sig, laws.sig_f
    k = len(lt)
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
    return d_lt, d_lr, d_lg


def _divide(live: _Living, div: np.ndarray, cyc: np.ndarray, f: int, p: SimParams, laws: _Laws,
            rng: np.random.Generator, trng: np.random.Generator | None, tracks: _Tracks) -> None:
    """Replace each dividing cell (``div``) by two daughters placed along its spindle axis, in place.

    ``cyc`` is every track's cycle length before the daughters are added; a daughter starts at its
    mother's overshoot past the end of the cycle.
    """
    treated = p.treated
    mothers = live.idx[div]
    k = len(mothers)
    lt, lr, lg = (np.concatenate(a)[mothers] for a in (live.logt_of, live.logr_of, live.logg_of))
    d_lt, d_lr, d_lg = _inherit(rng, p, laws, lt, lr, lg)
    d_attrs = _new_cell_attrs(rng, p, d_lt, d_lr, d_lg)
    d_attrs["arrest_h"] = _arrest_ages(trng, p, d_attrs) if treated else np.full(2 * k, np.inf)
    gen = np.concatenate(live.gen_of)[mothers] + 1
    d_idx = tracks.add(
        parent=np.concatenate([mothers, mothers]),
        generation=np.concatenate([gen, gen]),
        birth_frame=np.full(2 * k, f + 1 if f >= 0 else -1),  # born in the lead: not seen
        **d_attrs,
    )
    live.arrest_of.append(d_attrs["arrest_h"])
    live.cycle_of.append(d_attrs["cycle_h"])
    live.spindle_of.append(d_attrs["spindle"])
    live.radius_of.append(d_attrs["radius"])
    live.logt_of.append(d_lt), live.logr_of.append(d_lr), live.logg_of.append(d_lg)
    live.gen_of.append(np.concatenate([gen, gen]))
    spin = np.concatenate(live.spindle_of)[mothers]
    off = 8.0 * np.stack([np.cos(spin), np.sin(spin)], axis=1)
    mpos = live.pos[div]
    d_pos = np.concatenate([mpos - off, mpos + off])
    overshoot = live.age[div] - cyc[mothers]
    keep = ~div
    live.idx = np.concatenate([live.idx[keep], d_idx])
    live.pos = np.concatenate([live.pos[keep], d_pos])
    live.vel = np.concatenate([live.vel[keep], np.zeros((2 * k, 2))])
    live.age = np.concatenate([live.age[keep], overshoot, overshoot])
    if treated:  # a daughter whose arrest point lies within the overshoot starts there
        live.age = np.minimum(live.age, np.concatenate(live.arrest_of)[live.idx])


def _migrate(live: _Living, p: SimParams, rng: np.random.Generator, dish: int) -> None:
    """One frame of movement, in place: a persistent random walk (halted in mitosis), then crowding."""
    idx, age = live.idx, live.age
    cyc = np.concatenate(live.cycle_of)
    moving = (age / cyc[idx]) < (1.0 - p.m_hours / cyc[idx])
    vel = p.persistence * live.vel + rng.normal(0, p.motility_px, live.vel.shape)
    vel[~moving] = 0.0
    pos = live.pos + vel
    # contact distance: the two current nuclear diameters' mean plus a cytoplasm gap
    grow = np.sqrt(1 + p.nuc_growth * np.clip(age / cyc[idx], 0, 1))
    contact = 2.0 * np.concatenate(live.radius_of)[idx] * grow + p.contact_gap_px
    pos = _repel(pos, contact, dish)
    live.pos = _repel(pos, contact, dish)
    live.vel = vel


def _field_tables(side: int, tracks: _Tracks, division_frame: dict[int, int], rec: _Record, n_lead: int,
                  p: SimParams) -> _Field:
    """The field's track table and per-(cell, frame) rows in field coordinates, lead-only tracks dropped."""
    tab = tracks.frame()
    tab["division_frame"] = -1
    if division_frame:
        keys = np.fromiter(division_frame.keys(), dtype=np.int64)
        tab.loc[keys, "division_frame"] = np.fromiter(division_frame.values(), dtype=np.int64)
    pos_all = np.concatenate(rec.pos)
    rec_tidx = np.concatenate(rec.idx)
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
        "frame": np.concatenate(rec.frame),
        "tidx": rec_tidx,
        "x": pos_all[:, 0] - p.margin_px,
        "y": pos_all[:, 1] - p.margin_px,
        "age_h": np.concatenate(rec.age),
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

