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
control), the BF + nuclear network, the size-blind BF + nuclear network, the nuclear-only network and
the BF-only network (the reference networks of ``deepcycle_core.net.reference``), each network read through a phase read-out calibrated on the untreated training movie's calls (never on treated
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
#: The read-outs scored, in the order printed: (label, network mode or None for the DNA content).
READOUTS: tuple[tuple[str, str | None], ...] = (
    ("DNA content", None), ("network (both)", "both"), ("network (both_sizeblind)", "both_sizeblind"),
    ("network (nuclear_only)", "nuclear_only"), ("network (bf_only)", "bf_only"),
)


def film(folder, m: int, c: int, *, workers: int | None = None):
    """The store of microscope ``m``'s population ``c`` (filmed once, reused when current)."""
    from deepcycle_core.sim.simulate import simulate

    name, overrides, founders, fields = GRID[m]
    condition = GRID_CONDITIONS[c]
    seed = GRID_SEED + 10 * m + c
    return simulate(folder / f"{name}_{condition}_seed{seed}" / "store", cells=founders, hours=GRID_DESIGN["hours"],
                    seed=seed, fields=fields, condition=condition, overrides=dict(overrides),
                    frame_every=GRID_DESIGN["frame_every"], positions=GRID_DESIGN["positions"],
                    detect_diameter_px=GRID_DESIGN["detect_diameter_px"], reuse=True, progress=False, workers=workers)


def score(shares: dict[str, Any], truth: dict[str, Any]) -> dict[str, Any]:
    """Named right and largest share error of each treated population against its microscope's control."""
    import numpy as np

    from deepcycle_core.conditions.phase_calls import PHASE_GROUPS

    out = {}
    for cond in GRID_CONDITIONS[1:]:
        named = PHASE_GROUPS[int(np.argmax(shares[cond] - shares["control"]))]
        true = PHASE_GROUPS[int(np.argmax(truth[cond] - truth["control"]))]
        out[cond] = {"named": named, "true_phase": true, "named_right": named == true,
                     "largest_error_pp": float(100 * np.abs(shares[cond] - truth[cond]).max()),
                     "inferred": [round(float(v), 4) for v in shares[cond]],
                     "true": [round(float(v), 4) for v in truth[cond]]}
    return out


def summarise(rows: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per read-out: treated populations, named right, within 5 pp, within 10 pp."""
    out: dict[str, dict[str, int]] = {}
    for label, _ in READOUTS:
        mine = [r for r in rows if r["readout"] == label]
        out[label] = {"treated": len(mine), "named_right": sum(r["named_right"] for r in mine),
                      "within_5pp": sum(r["largest_error_pp"] <= 5.0 for r in mine),
                      "within_10pp": sum(r["largest_error_pp"] <= 10.0 for r in mine)}
    return out


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json
    import platform
    import time
    from pathlib import Path

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="default", help="the run whose installed networks and untreated movie are used")
    ap.add_argument("--microscopes", type=int, default=len(GRID), help="only the first N microscopes (a quick look; the result is not the grid's)")
    ap.add_argument("--out", default=str(Path(__file__).with_name("robustness_grid_results.json")))
    args = ap.parse_args(argv)

    from deepcycle_core.conditions import analysis as cond
    from deepcycle_core.conditions.dna_content import DnaContentReadout
    from deepcycle_core.data.runs import run_dir

    run = run_dir(args.profile)
    modes = [m for _, m in READOUTS if m is not None]
    checkpoints = {m: run.train_dir(m) / "best.pt" for m in modes}
    missing = [str(p) for p in checkpoints.values() if not p.exists()]
    if missing:
        raise SystemExit(f"no network at {missing}: run chapters 01-02 of profile {args.profile} first")
    t0 = time.perf_counter()
    cal = cond.calibrate_on_control(run, checkpoints, max_cells=2000, seed=0)
    folder = run.root / "robustness_grid"
    rows, micro = [], []
    for m in range(min(args.microscopes, len(GRID))):
        tables = {c: cond.read_population(film(folder, m, i), checkpoints) for i, c in enumerate(GRID_CONDITIONS)}
        truth = {c: cond.true_shares(t[modes[0]]) for c, t in tables.items()}
        dna = DnaContentReadout()
        ratio = dna.calibrate(tables["control"][modes[0]])
        per_frame = {c: round(float(t[modes[0]].groupby(["field", "frame"]).size().mean()), 1) for c, t in tables.items()}
        micro.append({"microscope": GRID[m][0], "overrides": GRID[m][1], "fitted_4n_2n_ratio": round(float(ratio), 3),
                      "ratio_interval": [round(float(v), 3) for v in dna.g2_ratio_interval],
                      "alignment": {c: str(dna.alignment(t[modes[0]])) for c, t in tables.items()},
                      "cells": {c: len(t[modes[0]]) for c, t in tables.items()}, "cells_per_field_frame": per_frame})
        for label, mode in READOUTS:
            if mode is None:
                shares = {c: dna.shares(t[modes[0]]) for c, t in tables.items()}
            else:
                shares = {c: cal.readout[mode].shares(t[mode]) for c, t in tables.items()}
            for c, r in score(shares, truth).items():
                rows.append({"microscope": GRID[m][0], "condition": c, "readout": label, **r})
                print(f"{GRID[m][0]:12s} {c:11s} {label:25s} named {r['named']:5s} (true {r['true_phase']:5s}) "
                      f"largest error {r['largest_error_pp']:5.1f} pp", flush=True)
    summary = summarise(rows)
    for label, s in summary.items():
        print(f"{label}: {s['named_right']} of {s['treated']} named right, {s['within_5pp']} of {s['treated']} within 5 pp, "
              f"{s['within_10pp']} of {s['treated']} within 10 pp")
    out = {"grid": [list(g) for g in GRID], "conditions": list(GRID_CONDITIONS), "design": GRID_DESIGN,
           "microscopes_read": len(micro), "complete": len(micro) == len(GRID), "summary": summary,
           "microscopes": micro, "rows": rows, "wall_s": round(time.perf_counter() - t0, 1),
           "machine": platform.processor() or platform.machine(),
           "command": f"python benchmarks/robustness_grid.py --profile {args.profile}"}
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"{len(rows) // len(READOUTS)} treated populations on {len(micro)} microscopes; {out['wall_s']} s -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
