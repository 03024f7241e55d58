"""Control against control: how often does the conditions chapter's test reject a true null?

Why: chapter 07 compares treated populations with a control by Watson's U^2 with whole fields
permuted between the groups. Over many pairs of independent control populations (different seeds,
same design as the chapter), a valid test rejects at most at its nominal level; the same statistic's
textbook p-value, which counts cells as independent, is reported beside it for contrast. The chapter's
DNA-content shares are checked the same way: how often does the 95 % interval of a share's change
exclude zero between two controls? The DNA read-out runs with its defaults: the 4N/2N ratio fitted on
the pair's second population (the control of the comparison, as the chapter calibrates on its control)
and applied to both, the integration disc measured from each store's nuclei, and the field-jackknife t
interval; ``--bootstrap N`` adds the percentile bootstrap over fields (N refits) at the same ratio for
contrast. The previous file's DNA figures are kept under ``previous``. Writes
``benchmarks/conditions_null_results.json`` (after every pair), which the chapter shows.

    python benchmarks/conditions_null.py --pairs 20        # ~30 min on 2 cores (default profile's network)
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="default")
    ap.add_argument("--pairs", type=int, default=20)
    ap.add_argument("--network", default="both")
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--first-seed", type=int, default=1000)
    ap.add_argument("--bootstrap", type=int, default=0,
                    help="also a percentile bootstrap over fields with this many refits (0: jackknife only)")
    ap.add_argument("--out", default=str(Path(__file__).with_name("conditions_null_results.json")))
    args = ap.parse_args(argv)

    from deepcycle_core.conditions import analysis as cond
    from deepcycle_core.conditions.circular_tests import watson_u2_asymptotic_p
    from deepcycle_core.conditions.dna_content import DnaContentReadout, nucleus_radius_px
    from deepcycle_core.data.store import open_store
    from deepcycle_core.conditions.phase_calls import PHASE_GROUPS
    from deepcycle_core.book.profiles import load_profile as read_profile
    from deepcycle_core.data.runs import run_dir

    prof = read_profile(args.profile)
    run = run_dir(args.profile)
    ckpt = {args.network: run.train_dir(args.network) / "best.pt"}
    if not ckpt[args.network].exists():
        print(f"{ckpt[args.network]}: no network; run the book's chapter 02 first", file=sys.stderr)
        return 2
    folder = run.root / "conditions_null"
    design = {k: prof[k] for k in ("cond_cells", "cond_fields", "cond_hours", "cond_frame_every")}
    previous = None
    if Path(args.out).exists():
        old = json.loads(Path(args.out).read_text())
        previous = old.get("previous") or {
            "what": "percentile bootstrap over fields, 4N/2N ratio fixed at 2, 12 px disc",
            **{k: old.get(k) for k in ("dna_bootstrap", "dna_ci_excludes_0", "dna_ci_any_phase_excludes_0",
                                       "dna_mean_largest_change_pp", "dna_mean_largest_change_error_pp", "wall_s")}}
    t0 = time.perf_counter()
    rows = []
    for i in range(args.pairs):
        pops, radii = [], []
        for j in range(2):
            seed = args.first_seed + 2 * i + j
            store = cond.condition_store(folder, "control", seed=seed, cells=design["cond_cells"],
                                         fields=design["cond_fields"], hours=design["cond_hours"],
                                         frame_every=design["cond_frame_every"])
            pops.append(cond.read_population(store, ckpt)[args.network])
            radii.append(round(nucleus_radius_px(open_store(store)), 2))
        a, b = pops
        readout = DnaContentReadout()
        t1 = time.perf_counter()
        ratio = readout.calibrate(b)  # on the comparison's control, applied to both
        r = cond.compare(a, b, readout, seed=i)
        dna_s = time.perf_counter() - t1
        _, wlo, whi = readout.change_interval(a, b, df="welch")  # the same jackknife, Welch-Satterthwaite df
        welch = [bool(lo > 0 or hi < 0) for lo, hi in zip(wlo, whi)]
        boot = None
        if args.bootstrap:
            _, blo, bhi = readout.change_interval(a, b, method="bootstrap", n_boot=args.bootstrap, seed=i)
            boot = [bool(lo > 0 or hi < 0) for lo, hi in zip(blo, bhi)]
        res = r.test
        excl = [bool(lo > 0 or hi < 0) for lo, hi in zip(r.delta_low, r.delta_high)]
        rows.append({"seeds": [args.first_seed + 2 * i, args.first_seed + 2 * i + 1], "U2": res.statistic,
                     "p_fields": res.p_value, "p_naive": watson_u2_asymptotic_p(res.statistic), "cells": [len(a), len(b)],
                     "dna_change_pp": [round(100 * d, 2) for d in r.delta],
                     "dna_ci_pp": [[round(100 * lo, 2), round(100 * hi, 2)] for lo, hi in zip(r.delta_low, r.delta_high)],
                     "dna_ci_excludes_0": excl, "dna_bootstrap_ci_excludes_0": boot,
                     "dna_welch_ci_excludes_0": welch,
                     "g2_ratio": round(ratio, 3), "g2_ratio_ci": list(readout.g2_ratio_interval),
                     "nucleus_radius_px": radii, "dna_seconds": round(dna_s, 1),
                     "alignment": [str(readout.alignment(a)), str(readout.alignment(b))],
                     "true_change_pp": [round(100 * d, 2) for d in r.true - r.control_true]})
        print(f"pair {i + 1}/{args.pairs}: U2 {res.statistic:.4f}, p(fields) {res.p_value:.3f}, "
              f"p(cells) {rows[-1]['p_naive']:.4f}; DNA share change (pp) "
              + ", ".join(f"{ph} {100 * d:+.1f}" for ph, d in zip(PHASE_GROUPS, r.delta))
              + " (true " + ", ".join(f"{100 * d:+.1f}" for d in r.true - r.control_true) + ")"
              + f"; ratio {ratio:.3f}, excludes 0: {excl}" + ("" if boot is None else f" (bootstrap {boot})"), flush=True)
        _write(args, design, rows, previous, t0, PHASE_GROUPS)
    return _report(args, design, rows, previous, t0, PHASE_GROUPS)


def _write(args, design, rows, previous, t0, PHASE_GROUPS) -> dict:
    n = len(rows)
    rej_f = sum(r["p_fields"] <= args.alpha for r in rows)
    rej_n = sum(r["p_naive"] <= args.alpha for r in rows)
    dna_excl = {ph: int(sum(r["dna_ci_excludes_0"][k] for r in rows)) for k, ph in enumerate(PHASE_GROUPS)}
    dna_any = int(sum(any(r["dna_ci_excludes_0"]) for r in rows))
    dna_abs = float(np.mean([max(abs(d) for d in r["dna_change_pp"]) for r in rows]))
    dna_err = float(np.mean([max(abs(d - t) for d, t in zip(r["dna_change_pp"], r["true_change_pp"])) for r in rows]))
    out = {
        "pairs": args.pairs, "alpha": args.alpha, "network": args.network, "fields": design["cond_fields"],
        "design": design, "rejected_fields": int(rej_f), "rate_fields": rej_f / args.pairs,
        "rejected_naive": int(rej_n), "rate_naive": rej_n / args.pairs,
        "pairs_done": n, "dna_interval": "field jackknife, t on min(k)-1 df", "dna_g2_ratio": "fitted on the pair's control",
        "dna_g2_ratio_fitted": [r["g2_ratio"] for r in rows],
        "dna_ci_excludes_0": dna_excl, "dna_ci_any_phase_excludes_0": dna_any,
        "dna_welch_ci_excludes_0": {ph: int(sum(r["dna_welch_ci_excludes_0"][k] for r in rows)) for k, ph in enumerate(PHASE_GROUPS)},
        "dna_bootstrap": args.bootstrap,
        "dna_bootstrap_ci_excludes_0": None if not args.bootstrap else
        {ph: int(sum(r["dna_bootstrap_ci_excludes_0"][k] for r in rows)) for k, ph in enumerate(PHASE_GROUPS)},
        "dna_mean_largest_change_pp": round(dna_abs, 2), "dna_mean_largest_change_error_pp": round(dna_err, 2),
        "wall_s": round(time.perf_counter() - t0, 1), "machine": platform.processor() or platform.machine(),
        "command": f"python benchmarks/conditions_null.py --profile {args.profile} --pairs {args.pairs} "
                   f"--network {args.network} --bootstrap {args.bootstrap}",
        "previous": previous,
        "rows": rows,
    }
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    return out


def _report(args, design, rows, previous, t0, PHASE_GROUPS) -> int:
    out = _write(args, design, rows, previous, t0, PHASE_GROUPS)
    rej_f, rej_n, dna_excl, dna_any = out["rejected_fields"], out["rejected_naive"], out["dna_ci_excludes_0"], out["dna_ci_any_phase_excludes_0"]
    dna_abs, dna_err = out["dna_mean_largest_change_pp"], out["dna_mean_largest_change_error_pp"]
    print(f"field-permutation test: {rej_f}/{args.pairs} rejections at {args.alpha} (rate {rej_f / args.pairs:.3f}); "
          f"cells as independent: {rej_n}/{args.pairs} (rate {rej_n / args.pairs:.3f}); {out['wall_s']} s")
    print("DNA-content shares: 95 % interval of the change excludes 0 in "
          + ", ".join(f"{ph} {n}/{args.pairs}" for ph, n in dna_excl.items())
          + f"; any phase {dna_any}/{args.pairs}; mean largest |change| {dna_abs:.2f} pp, "
          f"its mean largest error against the true change {dna_err:.2f} pp")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
