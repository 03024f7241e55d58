"""The virtual microscope's optics and camera: one field's population filmed frame by frame.

Why its own module: rendering is the costly, parallel part of the simulator (frames are rendered in
worker processes, so a frame job and its result travel between processes) and it draws only from the
per-frame generators ``(seed, field, 1, frame)`` and the field's drift generator ``(seed, field, 2)``,
never from the population's. It turns the tables of :mod:`deepcycle_core.sim.population` into the four
channels (brightfield, Hoechst, FUCCI red and green), cuts the crops of the cell store, measures FUCCI
and writes the truth of each cell; :mod:`deepcycle_core.sim.simulate` streams the results into the store.

A frame is rendered in the steps of :func:`_render`: the state of each cell now
(:func:`_cells_now`), the nuclear blobs (:func:`_nuclei`), the FUCCI blobs (:func:`_fucci`), the
brightfield cell bodies (:func:`_cell_bodies`), the dish canvases and the camera (:func:`_compose`),
and the read-out: crops, FUCCI levels and the rows of the store and of the truth table
(:func:`_readout`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pandas as pd
from scipy import ndimage
from scipy.spatial import cKDTree

from ..data import fucci
from ..data.fucci import PHASES
from ..data.nuclei import detect_nuclei, match_frame
from ..data.store import CROP_SIZE
from .params import _N_TEX, FRAME_INTERVAL_MIN, SimParams
from .population import _Field, _phase_and_levels

__all__ = []

_PHASE_LABELS = np.array(PHASES)  # indexed by phase code (0 G1, 1 S, 2 G2, 3 M)
_P_NUC = 32  # patch size of one nuclear / FUCCI blob
_P_BF = 48  # patch size of one brightfield cell body


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
    positions: str = "true"  # where the crops are cut: at the "true" nuclei or the "detected" ones
    detect_diameter_px: float = 16.0  # the detector's nucleus diameter (positions == "detected")


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

@dataclass
class _Cells:
    """The cells of one frame now, in dish coordinates (one entry per cell): the renderer's input."""

    n: int
    a: np.ndarray  # cycle age fraction
    bio: dict[str, np.ndarray]  # phase, DNA content, FUCCI levels (:func:`_phase_and_levels`)
    phase: np.ndarray
    mfrac: np.ndarray  # mitotic progress (-1 outside M)
    th: np.ndarray  # age in hours
    cx: np.ndarray
    cy: np.ndarray
    r0: np.ndarray
    asp: np.ndarray
    theta: np.ndarray
    spin: np.ndarray
    tex: np.ndarray  # texture index this frame
    m_start: np.ndarray


@dataclass
class _Nuclei:
    """The nuclear blobs of a frame (two for a cell in anaphase/telophase) and the geometry the later steps reuse."""

    patch: np.ndarray  # Hoechst photons per blob, (blobs, P, P)
    x0: np.ndarray
    y0: np.ndarray
    mask: np.ndarray
    w_nucl: np.ndarray  # nucleoli weight per blob
    t_i: np.ndarray  # texture index per blob
    ra: np.ndarray  # per cell: ellipse semi-axes and angle
    rb: np.ndarray
    ang: np.ndarray
    req: np.ndarray  # per cell: equivalent radius and area
    area: np.ndarray
    dx: np.ndarray  # per cell: half the offset between the two blobs
    dy: np.ndarray


def _render(job: _FrameJob) -> _FrameResult:
    """Render the four channels of one frame, cut the crops and measure FUCCI."""
    banks = _banks(job.seed)
    rng = np.random.default_rng([job.seed, job.field, 1, job.frame])
    cl = _cells_now(job)
    nu = _nuclei(job, cl, banks)
    fucci_blobs = _fucci(job, cl, nu)
    bodies = _cell_bodies(job, cl, nu, banks)
    img = _compose(job, nu, fucci_blobs, bodies, rng)
    return _readout(job, cl, nu, img)


def _cells_now(job: _FrameJob) -> _Cells:
    """Each cell's age, phase and reporter levels, position in the dish, shape and texture at this frame."""
    p, c = job.params, job.cells
    m = p.margin_px
    a = c["age_h"].to_numpy() / c["cycle_h"].to_numpy()
    bio = _phase_and_levels(a, c, p)
    tex0 = c["tex"].to_numpy()
    turn = np.where(tex0 % 2 == 0, 1.0, -1.0) * (0.01 + 0.0005 * (tex0 % 16))
    return _Cells(
        n=len(c),
        a=a,
        bio=bio,
        phase=bio["phase"],
        mfrac=bio["mfrac"],
        th=bio["th"],
        cx=c["x"].to_numpy() + m,
        cy=c["y"].to_numpy() + m,
        r0=c["radius"].to_numpy(),
        asp=c["aspect"].to_numpy(),
        theta=c["theta"].to_numpy() + turn * job.frame,  # each nucleus turns slowly, its own way
        spin=c["spindle"].to_numpy(),
        tex=(tex0 + (job.frame + 5 * tex0) // 12) % _N_TEX,  # texture renews every 2 h, cells out of step
        m_start=c["m_start"].to_numpy(),
    )


def _nuclei(job: _FrameJob, cl: _Cells, banks: _Banks) -> _Nuclei:
    """Nuclear geometry: two blobs per cell (the second only in anaphase/telophase), textured by phase."""
    p, c, n = job.params, job.cells, cl.n
    a, th, r0, asp, mfrac, spin, phase = cl.a, cl.th, cl.r0, cl.asp, cl.mfrac, cl.spin, cl.phase
    cx, cy = cl.cx, cl.cy
    grow = 1.0 + p.nuc_growth * np.clip(a / cl.m_start, 0, 1)
    early = np.clip(th / 1.5, 0, 1)  # early-G1 daughters are compact and expand over 1.5 h
    area = np.pi * r0**2 * grow * (0.55 + 0.45 * early)
    req = np.sqrt(area / np.pi)
    ra = req * np.sqrt(asp)
    rb = req / np.sqrt(asp)
    ang = cl.theta.copy()
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
    t_i = cl.tex[owner]
    texture = (1.0 + w_fine[:, None, None].astype(np.float32) * banks.fine[t_i]
               + w_nucl[:, None, None].astype(np.float32) * banks.nucleoli[t_i]
               + w_gran[:, None, None].astype(np.float32) * banks.granular[t_i])
    texture = np.clip(texture, 0.05, None)
    dome = 1.0 - 0.25 * np.clip(rho, 0, 1) ** 2
    bleach_h = (1.0 - p.hoechst_bleach) ** job.frame
    dna = cl.bio["dna"]
    if p.dna_4n_ratio != 2.0:  # widefield: a 4N nucleus shows less than twice a 2N one's stain
        dna = 1.0 + (dna - 1.0) * (p.dna_4n_ratio - 1.0)
    total = dna * c["stain"].to_numpy() * p.hoechst_photons * np.pi * p.nuc_radius_px**2 * bleach_h
    dens = (total[owner] * bw) / (np.pi * bra * brb)
    patch = mask * texture * dome * dens.astype(np.float32)[:, None, None]
    return _Nuclei(patch=patch, x0=x0, y0=y0, mask=mask, w_nucl=w_nucl, t_i=t_i, ra=ra, rb=rb, ang=ang,
                   req=req, area=area, dx=dx, dy=dy)


def _fucci(job: _FrameJob, cl: _Cells, nu: _Nuclei
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """FUCCI blobs: nuclear in interphase, spread over the rounded cell after nuclear envelope breakdown.

    Returns (unit mask per cell, x0, y0, red photons, green photons).
    """
    p = job.params
    f_ra, f_rb, f_ang = nu.ra.copy(), nu.rb.copy(), nu.ang.copy()
    spread = cl.mfrac >= 0.3
    f_ra[spread] = f_rb[spread] = 11.0 * job.cells["bf_scale"].to_numpy()[spread]
    frho, fx0, fy0 = _ellipse(cl.cx, cl.cy, f_ra, f_rb, f_ang, _P_NUC)
    fmask = _soft(frho, np.sqrt(f_ra * f_rb), 1.3) / (np.pi * f_ra * f_rb).astype(np.float32)[:, None, None]
    f_area0 = np.pi * p.nuc_radius_px**2 * p.fucci_photons
    bleach_f = (1.0 - p.fucci_bleach) ** job.frame
    red_tot = cl.bio["red"] * f_area0 * bleach_f
    green_tot = cl.bio["green"] * f_area0 * bleach_f
    return fmask, fx0, fy0, red_tot, green_tot


def _cell_bodies(job: _FrameJob, cl: _Cells, nu: _Nuclei, banks: _Banks
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Brightfield cell bodies: spread flat cells, rounding + halo in mitosis, two at cytokinesis.

    Returns (body patches, their x0, y0, and the nuclei's faint brightfield patches at the nuclear x0, y0).
    """
    p, n = job.params, cl.n
    a, asp, mfrac, phase, th = cl.a, cl.asp, cl.mfrac, cl.phase, cl.th
    cx, cy, dx, dy, ang = cl.cx, cl.cy, nu.dx, nu.dy, nu.ang
    bfs = job.cells["bf_scale"].to_numpy()
    rc = np.minimum(1.9 * nu.req * (1.0 + 0.15 * a) * bfs, 20.0)
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
        body * (p.bf_texture * banks.bf[cl.tex[cowner]] - 0.02 - 0.06 * rnd)
        - edge * p.bf_edge * (0.5 + age_o) * (1 - rnd)
        + halo * p.bf_halo * rnd
    )
    # the nucleus shows faintly in brightfield (slightly darker, nucleoli darker still)
    nuc_bf = -0.03 * nu.mask * (1.0 + 0.8 * nu.w_nucl[:, None, None].astype(np.float32) * -banks.nucleoli[nu.t_i])
    return bf_patch, cx0, cy0, nuc_bf


def _compose(job: _FrameJob, nu: _Nuclei, fucci_blobs: tuple[np.ndarray, ...], bodies: tuple[np.ndarray, ...],
             rng: np.random.Generator) -> np.ndarray:
    """Paste the blobs into the dish canvases, cut the imaged field and film it: (4, side, side) uint16.

    The planes are brightfield, Hoechst, FUCCI red, FUCCI green (the movie's channel order).
    """
    p = job.params
    m = p.margin_px
    pad = _P_BF
    size = job.side + 2 * m + 2 * pad
    fmask, fx0, fy0, red_tot, green_tot = fucci_blobs
    bf_patch, cx0, cy0, nuc_bf = bodies
    can = np.zeros((4, size, size), np.float32)  # bf modulation, hoechst, red, green
    _paste(can[1], nu.patch, nu.x0, nu.y0, pad)
    _paste(can[0], nuc_bf, nu.x0, nu.y0, pad)
    _paste(can[0], bf_patch, cx0, cy0, pad)
    _paste(can[2], fmask * red_tot.astype(np.float32)[:, None, None], fx0, fy0, pad)
    _paste(can[3], fmask * green_tot.astype(np.float32)[:, None, None], fx0, fy0, pad)
    if p.hoechst_blur_px != 0.0:  # out-of-focus Hoechst light, spread over the whole dish canvas
        can[1] = ndimage.gaussian_filter(can[1], p.hoechst_blur_px)
    lo, hi = pad + m, pad + m + job.side
    sig = can[:, lo:hi, lo:hi]
    side = job.side
    xx, yy, r2 = _grid(side)
    if p.hoechst_falloff != 0.0:  # the Hoechst excitation falls off towards the corners (stain only)
        sig[1] *= 1.0 - np.float32(p.hoechst_falloff * 2.0) * r2
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
    if p.hoechst_full_well_e != 0.0:  # a saturated Hoechst pixel records its full well, flat at the top
        np.minimum(photons[1], np.float32(p.hoechst_full_well_e), out=photons[1])
    photons *= np.float32(p.gain_adu)
    photons += np.float32(p.offset_adu + 0.5)  # +0.5 then truncation = rounding
    np.clip(photons, 0, 65535, out=photons)
    return photons.astype(np.uint16)  # bf, hoechst, red, green


def _readout(job: _FrameJob, cl: _Cells, nu: _Nuclei, img: np.ndarray) -> _FrameResult:
    """Cut the crops of the nuclei far enough from the edge, measure FUCCI, and write the frame's rows.

    The crops are centred at the true nuclei, or (``job.positions == "detected"``) at the nuclei the
    detector finds in the Hoechst plane, each row then taking the truth of its matched cell.
    """
    c, side = job.cells, job.side
    fx = c["x"].to_numpy()
    fy = c["y"].to_numpy()
    owner = None  # detected mode: the cell behind each detection, and whether it was matched
    if job.positions != "true":
        owner, fx, fy, matched = _detected_positions(job, img[1])
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
    if owner is None:
        rows = _store_rows(job, cl, nu, k, red_m, green_m, fx[k], fy[k])
    else:
        rows = _store_rows(job, cl, nu, owner[k], red_m, green_m, fx[k], fy[k])
        rows["detected_matched"] = matched[k]
    stats = {}
    for ch, plane in (("hoechst", img[1]), ("brightfield", img[0])):
        sub = plane[::2, ::2]  # a 1-in-4 pixel grid: the same statistics at a quarter of the cost
        stats[f"{ch}_median"] = float(np.median(sub))
        stats[f"{ch}_std"] = float(sub.std(dtype=np.float64))
    truth = None
    images = None
    if job.keep_images:
        images = img
        truth = _truth_rows(job, cl)
    return _FrameResult(job.field, job.frame, crops.astype(np.uint16), rows, stats, images, truth)


def _detected_positions(job: _FrameJob, plane: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The nuclei a user's ingest would find in this Hoechst plane, each with the cell it shows.

    Detections are matched one to one (Hungarian, within half the detector's diameter) to the true
    nuclei of the dish; a detection left over (a split or spurious nucleus) shows its nearest cell.
    Returns (cell index, detected x, detected y, matched) per detection, in the order of the cells.
    """
    tx = job.cells["x"].to_numpy()
    ty = job.cells["y"].to_numpy()
    det = detect_nuclei(plane, job.detect_diameter_px)  # (n, 2) float (y, x)
    if len(det) == 0 or len(tx) == 0:
        return np.empty(0, np.int64), np.empty(0), np.empty(0), np.empty(0, bool)
    dy, dx = det[:, 0], det[:, 1]
    det_xy, true_xy = np.column_stack([dx, dy]), np.column_stack([tx, ty])
    r, ci = match_frame(det_xy, true_xy, job.detect_diameter_px / 2.0)
    owner = np.empty(len(det), np.int64)
    matched = np.zeros(len(det), bool)
    owner[r], matched[r] = ci, True
    if not matched.all():
        owner[~matched] = cKDTree(true_xy).query(det_xy[~matched])[1]
    order = np.lexsort((dx, dy, owner))
    return owner[order], dx[order], dy[order], matched[order]


def _store_rows(job: _FrameJob, cl: _Cells, nu: _Nuclei, k: np.ndarray, red_m: np.ndarray, green_m: np.ndarray,
                x: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    """The cell-store rows of the cropped cells ``k`` seen at ``x, y``: position, lineage, FUCCI read-out and the truth."""
    c = job.cells
    a, phase, mfrac, bio = cl.a, cl.phase, cl.mfrac, cl.bio
    t_h = job.frame * FRAME_INTERVAL_MIN / 60.0
    sel = c.iloc[k]
    return pd.DataFrame({
        "track_id": sel["track_id"].to_numpy(np.int64),
        "parent_track_id": sel["parent_track_id"].to_numpy(np.int64),
        "frame": np.full(len(k), job.frame, np.int64),
        "time_h": np.full(len(k), t_h),
        "x": x,
        "y": y,
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
        "true_nuc_area": nu.area[k],
        "true_m_progress": mfrac[k],
        # held at its arrest point now (an arrested cell's age stops there; untreated cells: inf)
        "true_arrested": sel["age_h"].to_numpy() >= sel["arrest_h"].to_numpy(),
        "generation": sel["generation"].to_numpy(np.int64),
    })


def _truth_rows(job: _FrameJob, cl: _Cells) -> pd.DataFrame:
    """The movie's truth rows of this frame: every nucleus whose centre lies inside the field."""
    c, side = job.cells, job.side
    fx = c["x"].to_numpy()
    fy = c["y"].to_numpy()
    inside = (fx >= 0) & (fx < side) & (fy >= 0) & (fy < side)
    s2 = c[inside]
    return pd.DataFrame({
        "frame": np.full(int(inside.sum()), job.frame, np.int64),
        "track_id": s2["track_id"].to_numpy(np.int64),
        "parent_track_id": s2["parent_track_id"].to_numpy(np.int64),
        "x": fx[inside], "y": fy[inside],
        "generation": s2["generation"].to_numpy(np.int64),
        "birth_frame": s2["birth_frame"].to_numpy(np.int64),
        "division_frame": s2["division_frame"].to_numpy(np.int64),
        "true_age": cl.a[inside],
        "true_phase": _PHASE_LABELS[cl.phase[inside]],
    })


def _field_jobs(field: int, fld: _Field, track_offset: int, seed: int, p: SimParams, n_frames: int,
                keep_images: bool, frame_every: int = 1, positions: str = "true", detect_diameter_px: float = 16.0
                ) -> Iterator[_FrameJob]:
    """Per-frame render jobs of one field, with the field's drifts drawn up front (crops cut at ``positions``)."""
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
                        (float(gx[f]), float(gy[f])), float(blur[f]), keep_images, positions, detect_diameter_px)

