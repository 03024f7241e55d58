"""Phase shares of treated populations on microscopes the read-outs were not made on: the robustness grid.

Why: chapter 07's read-outs were built on populations filmed by the ``default`` virtual microscope, whose
stain is exactly stoichiometric (a 4N nucleus renders at 1.998 times a 2N one), evenly lit, never
saturated and in focus. Real widefield images are not: out-of-focus light and thicker G2 nuclei pull the
4N/2N ratio below 2, stains vary more from cell to cell, the brightest nuclei saturate, excitation falls
off towards the corners, and a screen may hold few cells a frame. This script films fresh populations
through a fixed grid of such microscopes and reads each with every read-out, against the truth.

The grid (fixed on 2026-12-03 BEFORE any read-out was tuned on it; not to be changed afterwards --
add a new grid under a new name instead). Each microscope is the ``default`` preset with these
simulator parameters (``deepcycle_core.sim.params.SimParams``; neutral values: ``dna_4n_ratio`` 2.0,
``stain_cv`` 0.15, ``hoechst_blur_px`` 0, ``hoechst_full_well_e`` 0 = no saturation,
``hoechst_falloff`` 0), and films the control and the three treatments of
``deepcycle_core.sim.treatments`` at their nominal strength (1.0), each on a fresh seed
(``9100 + 10 * microscope + condition``), 48 h, every 36th frame read, crops cut at DETECTED nuclei
(nucleus diameter 16 px, as a user's ingest would):

=====  ============  ===============================================================  ========  ======
  #    name          parameters                                                        founders  fields
=====  ============  ===============================================================  ========  ======
  0    neutral       (none)                                                            240       4
  1    ratio_1.8     dna_4n_ratio 1.8                                                  240       4
  2    ratio_1.65    dna_4n_ratio 1.65, hoechst_blur_px 1.5                            240       4
  3    ratio_2.1     dna_4n_ratio 2.1                                                  240       4
  4    stain_cv_22   stain_cv 0.22, dna_4n_ratio 1.85                                  240       4
  5    saturated     hoechst_full_well_e 1100 (about the 90th percentile of a default
                     crop's brightest pixel: the brightest nuclei clip)                240       4
  6    falloff       hoechst_falloff 0.35 (excitation falls off towards the corners)   240       4
  7    sparse        (none), 20 founders a field: ~16 nuclei a field, ~65 a frame      80        4
  8    independent   dna_4n_ratio 1.8, stain_cv 0.22, hoechst_blur_px 1.0,
                     hoechst_falloff 0.2, 35 founders a field (~120 nuclei a frame)    140       4
=====  ============  ===============================================================  ========  ======

That is 9 microscopes x 4 populations = 36 fresh populations, 27 of them treated. Each treated population
is compared with its own microscope's control. Per read-out the script prints
``N of M named right, K of M within 5 pp`` (named right: the phase whose inferred share rises most over
the control is the one whose true share rises most; within 5 pp: every inferred share of the treated
population within 5 percentage points of its true share) and, for the networks, within 10 pp too.
The read-outs: the DNA content (fitted on each population, its 4N/2N ratio from its microscope's
control), the BF + nuclear network, the BF-only network, and the size-blind network, each network
read through a phase read-out calibrated on the untreated training movie's calls (never on treated
cells, never on the grid).
"""

from __future__ import annotations

from typing import Any

#: The grid, as documented above: (name, SimParams overrides, founders, fields). Never edit; add a new grid.
GRID: tuple[tuple[str, dict[str, Any], int, int], ...] = (
    ("neutral", {}, 240, 4),
    ("ratio_1.8", {"dna_4n_ratio": 1.8}, 240, 4),
    ("ratio_1.65", {"dna_4n_ratio": 1.65, "hoechst_blur_px": 1.5}, 240, 4),
    ("ratio_2.1", {"dna_4n_ratio": 2.1}, 240, 4),
    ("stain_cv_22", {"stain_cv": 0.22, "dna_4n_ratio": 1.85}, 240, 4),
    ("saturated", {"hoechst_full_well_e": 1100.0}, 240, 4),
    ("falloff", {"hoechst_falloff": 0.35}, 240, 4),
    ("sparse", {}, 80, 4),
    ("independent", {"dna_4n_ratio": 1.8, "stain_cv": 0.22, "hoechst_blur_px": 1.0, "hoechst_falloff": 0.2}, 140, 4),
)
#: The populations each microscope films: the control first (each treatment is compared with it).
GRID_CONDITIONS: tuple[str, ...] = ("control", "g1_arrest", "s_slowdown", "g2m_block")
GRID_SEED = 9100
GRID_DESIGN = {"hours": 48.0, "frame_every": 36, "positions": "detected", "detect_diameter_px": 16.0}
