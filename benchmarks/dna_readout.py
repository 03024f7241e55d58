"""The DNA-content read-out on movies it was not developed on: other microscopes, other reporters.

Why: chapter 07's DNA-content shares (``deepcycle_core.conditions.dna_content``) were developed on populations
filmed with the ``default`` virtual microscope. This script films the same conditions through the
other presets -- ``hard`` (a dimmer, twice as variable stain that bleaches faster, noisier camera,
crowded fields) and ``overlap`` (other FUCCI dynamics; the DNA read-out should not care) -- on fresh
seeds, and reports each population's inferred phase shares against the truth, the largest error, and
whether the phase with the largest inferred rise over that preset's control is the true one. No
network is involved, so nothing here needs chapter 02. Writes ``benchmarks/dna_readout_results.json``.

    python benchmarks/dna_readout.py                      # ~10 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="default", help="whose cond_* design (cells, fields, hours) to film")
    ap.add_argument("--presets", nargs="+", default=["hard", "overlap"])
    ap.add_argument("--conditions", nargs="+", default=["control", "g1_arrest", "s_slowdown", "g2m_block"])
    ap.add_argument("--seed", type=int, default=5000)
    ap.add_argument("--out", default=str(Path(__file__).with_name("dna_readout_results.json")))
    args = ap.parse_args(argv)

    from deepcycle_core.conditions.analysis import true_shares
    from deepcycle_core.conditions.dna_content import DnaContentReadout, measure_dna
    from deepcycle_core.conditions.phase_calls import PHASE_GROUPS
    from deepcycle_core.book.profiles import load_profile
    from deepcycle_core.data.runs import run_dir
    from deepcycle_core.sim.simulate import simulate
    from deepcycle_core.data.store import open_store

    prof = load_profile(args.profile)
    design = {k: prof[k] for k in ("cond_cells", "cond_fields", "cond_hours", "cond_frame_every")}
    folder = run_dir(args.profile).root / "dna_readout"
    t0 = time.perf_counter()
    rows = []
    for p_i, preset in enumerate(args.presets):
        shares = {}
        for c_i, name in enumerate(args.conditions):
            seed = args.seed + 10 * p_i + c_i
            path = simulate(folder / f"{preset}_{name}_seed{seed}" / "store", cells=design["cond_cells"],
                            hours=design["cond_hours"], seed=seed, fields=design["cond_fields"], difficulty=preset,
                            condition=name, frame_every=design["cond_frame_every"], reuse=True, progress=False)
            store = open_store(path)
            table = store.cells.merge(measure_dna(store), on="cell_id", validate="one_to_one")
            readout = DnaContentReadout()
            fit, _ = readout.fit(table)
            inferred, truth = readout.shares(table), true_shares(table)
            shares[name] = (inferred, truth)
            row = {"preset": preset, "condition": name, "seed": seed, "cells": len(table),
                   "inferred": [round(float(v), 4) for v in inferred], "true": [round(float(v), 4) for v in truth],
                   "largest_error_pp": round(float(100 * np.abs(inferred - truth).max()), 2),
                   "cv": round(fit.cv, 3), "outlier_share": round(fit.outlier_share, 4)}
            if name != "control" and "control" in shares:
                ci, ct = shares["control"]
                row["phase_named"] = PHASE_GROUPS[int(np.argmax(inferred - ci))]
                row["true_phase"] = PHASE_GROUPS[int(np.argmax(truth - ct))]
            rows.append(row)
            print(f"{preset:8s} {name:11s} {len(table):5d} cells: inferred "
                  + " ".join(f"{v:.3f}" for v in inferred) + " | true " + " ".join(f"{v:.3f}" for v in truth)
                  + f" | largest error {row['largest_error_pp']:.1f} pp, CV {fit.cv:.0%}"
                  + (f", named {row['phase_named']} (true {row['true_phase']})" if "phase_named" in row else ""),
                  flush=True)
    treated = [r for r in rows if "phase_named" in r]
    out = {
        "design": design, "presets": args.presets, "shares_order": list(PHASE_GROUPS),
        "named_right": sum(r["phase_named"] == r["true_phase"] for r in treated), "treated": len(treated),
        "within_5pp": sum(r["largest_error_pp"] <= 5.0 for r in rows), "populations": len(rows),
        "wall_s": round(time.perf_counter() - t0, 1), "machine": platform.processor() or platform.machine(),
        "command": "python benchmarks/dna_readout.py --profile {} --presets {} --seed {}".format(
            args.profile, " ".join(args.presets), args.seed),
        "rows": rows,
    }
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"phase named right {out['named_right']}/{out['treated']}; every share within 5 pp for "
          f"{out['within_5pp']}/{out['populations']} populations; {out['wall_s']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
