"""The pipeline with every default on a movie of another FUCCI dynamic, against the default movie.

    .venv/bin/python benchmarks/other_fucci.py            # ~25 min on 2 cores (simulate, train, embed, validate)

The simulator's ``overlap`` preset has the classic FUCCI dynamic (Cdt1 and Geminin overlap for hours, no
low/low gap at G1/S); the default movie has a low/low stretch. Nothing downstream may assume either. This
script simulates the ``overlap`` movie with the default profile's size and seed, trains the two-channel
network on it by the reference recipe (``deepcycle_core.net.reference.RECIPE``; the FUCCI classes of this
movie feed the auxiliary class loss, the cycle head's targets come from its tracks), embeds, fits the
ring, and validates the clock head, the paper's ring and SOM, the supervised baseline and the
nuclear-area baseline on its held-out full-cycle tracks. It prints each row's movie verdict and its
circular MAE as a ratio to the same row on the default movie (``data/runs/default/validate/table.csv``,
which the book's chapter 5 wrote), then every error of the clock head (circular, hours, worst tenth) as
a ratio to the default movie's and its interval coverage; the target is a ratio <= 1.25 with the
orientation right (verdict ``clock``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

from deepcycle_core.validation.describe import run_describe
from deepcycle_core.net.embed import embed
from deepcycle_core.net.reference import RECIPE
from deepcycle_core.book.profiles import load_profile
from deepcycle_core.data.runs import RunDir, repo_root
from deepcycle_core.sim.simulate import simulate
from deepcycle_core.net.train import train
from deepcycle_core.clock.trajectory import run_trajectory
from deepcycle_core.validation.scoring import OURS
from deepcycle_core.validation.validate import run_validation

__all__ = ["main"]

METHODS = ("deepcycle_clock", "deepcycle", "deepcycle_som", "supervised_features", "nuclear_area")

#: The clock head's errors compared between the two movies (lower is better), and the target ratio.
CLOCK_ERRORS = ("circ_mae_h", "hours_mae_h", "worst_tenth_mae_h")
TARGET_RATIO = 1.25


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="overlap", help="simulator preset with the other FUCCI dynamic")
    ap.add_argument("--run", default=None, help="run folder (default: data/runs/<preset>)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=None, help="override the reference recipe's epochs")
    ap.add_argument("--json", default=None, help="also write the result to this JSON file")
    args = ap.parse_args(argv)
    prof = load_profile("default")
    root = repo_root()
    run = RunDir(Path(args.run) if args.run else root / "data" / "runs" / args.preset)
    t0 = time.perf_counter()
    simulate(run.store, cells=prof["sim_cells"], hours=prof["sim_hours"], seed=prof["seed"], fields=prof["sim_fields"],
             difficulty=args.preset, reuse=True, progress=False)
    epochs = args.epochs or RECIPE["epochs"]
    train(run.root, preset=RECIPE["preset"], mode="both", epochs=epochs, seed=RECIPE["seed"],
          samples_per_epoch=RECIPE["samples_per_epoch"], val_cells=RECIPE["val_cells"],
          heldout_cells=RECIPE["heldout_cells"], threads=args.threads, reuse=True, progress=True, device="cpu")
    embed(run.root, precision="fp32", reuse=True, progress=False)
    try:
        run_trajectory(run, seed=prof["seed"])
    except ValueError as exc:  # no ring: the validation then fits and reports the network's ring itself
        print(f"trajectory stage: {exc}")
    opts = dict(methods=METHODS, fit_cells=prof["val_fit_cells"], heldout_every=prof["val_heldout_every"],
                seed=prof["seed"], pca_components=prof["val_pca_components"])
    run_describe(run, **opts)
    table = run_validation(run, **opts).set_index("method")
    ref = pd.read_csv(root / "data" / "runs" / "default" / "validate" / "table.csv").set_index("method")
    rows = {}
    print(f"\n{args.preset} movie vs the default movie ({epochs} epochs, {time.perf_counter() - t0:.0f} s in all)")
    for m in METHODS:
        here, base = float(table.at[m, "circ_mae_h"]), float(ref.at[m, "circ_mae_h"]) if m in ref.index else float("nan")
        rows[m] = {"verdict": str(table.at[m, "ring"]), "circ_mae_h": here, "default_circ_mae_h": base,
                   "ratio": here / base, "track_spearman_median": float(table.at[m, "track_spearman_median"])}
        print(f"  {m:19s} verdict {rows[m]['verdict']:10s} circular MAE {here:5.2f} h (default movie {base:5.2f} h): "
              f"ratio {here / base:4.2f}; per-track Spearman {rows[m]['track_spearman_median']:.3f}")
    clock = {"fisher_lee": float(table.at[OURS, "fisher_lee"]),
             "interval80_cover": float(table.at[OURS, "interval80_cover"])}
    print(f"\nclock head ({OURS}) on the {args.preset} movie; target: each error <= {TARGET_RATIO} x the default movie's")
    for col in CLOCK_ERRORS:
        here, base = float(table.at[OURS, col]), float(ref.at[OURS, col])
        clock[col] = {"here": here, "default": base, "ratio": here / base}
        verdict = "PASS" if here / base <= TARGET_RATIO else "MISS"
        print(f"  {col:18s} {here:5.2f} h (default movie {base:5.2f} h): ratio {here / base:4.2f} {verdict}")
    print(f"  Fisher-Lee {clock['fisher_lee']:.3f}; 80 % intervals cover {100 * clock['interval80_cover']:.0f} % "
          "of held-out cells")
    if args.json:
        Path(args.json).write_text(json.dumps({"preset": args.preset, "epochs": epochs, "rows": rows, "clock": clock}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
