"""Accuracy of the cycle clock on held-out full-cycle tracks, against the targets and the baselines.

    python benchmarks/accuracy.py --profile default --seed 0

Runs the describe stage (which keeps descriptors that are still current) and the validation stage on
``data/runs/<profile>/`` -- which must hold the outputs of the chapters 01-04 -- and prints the table (one row a method), every target
as PASS/MISS with its gap, and every row's circular MAE as a ratio to the clock head's (``deepcycle_clock``,
the method the targets are checked on) measured in the same run. Nothing here is fitted on held-out cells; see deepcycle_core.validation.validate and deepcycle_core.validation.describe.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from deepcycle_core.validation import scoring as s
from deepcycle_core.validation import validate as v
from deepcycle_core.validation.describe import run_describe
from deepcycle_core.book.profiles import load_profile
from deepcycle_core.data.runs import run_dir

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="default", help="parameter profile / run folder name")
    ap.add_argument("--seed", type=int, default=None, help="seed of the fitting-cell sample (default: the profile's)")
    ap.add_argument("--methods", default="", help=f"comma-separated subset of {','.join(s.METHODS)}")
    ap.add_argument("--hard-run", default=None, help="run folder holding a hard-preset store (optional)")
    ap.add_argument("--no-cache", action="store_true", help="recompute ablation and baseline descriptors")
    args = ap.parse_args(argv)

    params = load_profile(args.profile)
    seed = params.get("seed", 0) if args.seed is None else args.seed
    run = run_dir(args.profile)
    methods = [m for m in args.methods.split(",") if m] or list(params.get("val_methods", s.METHODS))
    opts = dict(
        methods=methods,
        hard_run=args.hard_run,
        fit_cells=int(params.get("val_fit_cells", 20000)),
        heldout_every=int(params.get("val_heldout_every", 1)),
        pca_components=int(params.get("val_pca_components", 8)),
        seed=seed,
    )
    run_describe(run, **opts, reuse=not args.no_cache, progress=False)  # the descriptors every method reads
    table = v.run_validation(run, **opts)
    print(f"# accuracy on held-out full-cycle tracks: profile {args.profile}, seed {seed}, run {run.root}")
    print(s.format_table(table))
    print()
    if s.OURS not in set(table["method"]):
        print(f"no {s.OURS!r} row: targets not checked")
        return 0
    res = s.check_targets(table)
    print(f"# targets of {s.OURS} (gap > 0: met by that much; gap < 0: missed by that much)")
    for r in res.itertuples():
        print(f"{r.status:8s} {r.target:58s} value {r.value:8.3f}   gap {r.gap:+8.3f}")
    ours = float(table.set_index("method").at[s.OURS, "circ_mae_h"])
    print()
    print(f"# circular MAE relative to the clock head {s.OURS} (same run, same held-out cells)")
    for r in table.itertuples():
        ratio = r.circ_mae_h / ours if np.isfinite(r.circ_mae_h) and ours > 0 else float("nan")
        print(f"{r.method:20s} circ MAE {r.circ_mae_h:7.3f} h   x{ratio:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
