"""The virtual microscope's knobs: the parameter set, the named presets and the clock of the movie.

Why its own module: the population model, the renderer and the stage all read these numbers, and a
reader who wants to know what a preset changes (or what a treatment overrides) should find every knob
in one short file, without the machinery that uses them. Difficulty is a parameter set
(:data:`PRESETS`), never a code path; :mod:`deepcycle_core.sim.treatments` names the drug conditions as
overrides of these fields.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "SIM_VERSION",
    "FRAME_INTERVAL_MIN",
    "PIXEL_SIZE_UM",
    "MAX_CELLS_PER_FIELD",
    "SimParams",
    "PRESETS",
    "resolve_params",
    "n_frames_for",
]

#: Bump when the simulated biology, rendering or labelling changes, so cached stores are not reused by
#: mistake. 3: the FUCCI class gates are fitted on non-held-out cells only (crops unchanged).
SIM_VERSION = 4
FRAME_INTERVAL_MIN = 10.0
PIXEL_SIZE_UM = 0.65
#: No field holds more founders than this; more cells means more fields (memory ~ one field).
MAX_CELLS_PER_FIELD = 1500
#: Textures per bank: the population draws each cell's texture index, the renderer holds the banks.
_N_TEX = 64


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
    # stain physics of the Hoechst channel (all neutral by default: the default preset renders exactly
    # as before they existed, same random stream, same bytes)
    dna_4n_ratio: float = 2.0  # rendered integrated Hoechst of a 4N nucleus over a 2N one; real widefield
    #   (out-of-focus light, thicker G2 nuclei) gives ~1.7-1.9; the stain follows 1 + (dna - 1)(r - 1),
    #   the true_dna column stays the DNA content. In [1.2, 3.0].
    hoechst_blur_px: float = 0.0  # sd (px) of an extra out-of-focus blur of the Hoechst plane only: total
    #   light kept, spread beyond the nucleus (before the camera noise)
    hoechst_full_well_e: float = 0.0  # a Hoechst pixel saturates at this many photo-electrons (signal +
    #   background, after the noise, before gain and offset: flat at the top); 0 = never saturates
    hoechst_falloff: float = 0.0  # Hoechst excitation falls off to the field corners: the stain signal is
    #   multiplied by 1 - x * 2 r^2 (r: centred radius, corners r^2 = 0.5), on top of the vignetting; in [0, 1)
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

        # the stain physics: out of range would render light from nowhere or a negative stain
        _check_range("dna_4n_ratio", self.dna_4n_ratio, 1.2, 3.0)
        _check_range("hoechst_blur_px", self.hoechst_blur_px, 0.0, 20.0)
        _check_range("hoechst_full_well_e", self.hoechst_full_well_e, 0.0, 1e7)
        _check_range("hoechst_falloff", self.hoechst_falloff, 0.0, 1.0, open_top=True)

    @property
    def treated(self) -> bool:
        """Whether any treatment knob is away from neutral (only then is the treatment generator drawn)."""
        return bool(self.g1_extend or self.s_extend or self.g2_extend or self.g1_arrest_frac
                    or self.g2m_block_frac or self.treatment_lead_h)


def _check_range(name: str, v: Any, lo: float, hi: float, open_top: bool = False) -> None:
    """Raise ValueError naming ``SimParams.<name>`` unless ``v`` is a finite number in [lo, hi] (or [lo, hi))."""
    ok = (isinstance(v, (int, float, np.number)) and not isinstance(v, bool) and math.isfinite(v)
          and lo <= v and (v < hi if open_top else v <= hi))
    if not ok:
        raise ValueError(f"SimParams.{name} must be a finite number in [{lo:g}, {hi:g}{')' if open_top else ']'}, got {v!r}")


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
