"""Benchmark the virtual microscope: crops per second and peak memory as the data set grows.

Every run is a fresh subprocess, so its peak resident memory (``ru_maxrss`` of the process and of its
render workers) belongs to that run alone. The data set grows by adding fields of view of a fixed size
(``--cells-per-field`` founders each), as the paper profile does.

Baseline, measured in the same invocation: the *same* simulation rendered without streaming -- every
crop kept in memory and written at the end -- whose memory grows with N, against ``simulate()``, which
streams crops into the store chunk by chunk and holds at most one field of view.

    .venv/bin/python benchmarks/simulate.py                 # N ~ 10k, 20k, 67k crops (1, 2, 6 fields)
    .venv/bin/python benchmarks/simulate.py --fields 1 2    # other sizes (fields of view)

Other processes competing for the CPU inflate wall time; CPU seconds (process + workers) are printed
too, and crops per CPU-second is the contention-free figure.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _child(mode: str, fields: int, cells_per_field: int, hours: float, workers: int, out: str) -> None:
    import numpy as np

    from deepcycle_core import simulate as sim

    t0, c0 = time.perf_counter(), time.process_time()
    if mode == "stream":
        sim.simulate(out, cells=cells_per_field * fields, fields=fields, hours=hours, seed=0,
                     progress=False, workers=workers)
        from deepcycle_core.store import open_store

        n = open_store(out).n_cells
    else:  # baseline: same population and rendering, every crop held in memory, one write at the end
        params = sim.resolve_params("default")
        n_frames = sim.n_frames_for(hours)
        crops, offset = [], 0
        for f in range(fields):
            fld = sim._simulate_population(cells_per_field, n_frames, params, np.random.default_rng([0, f, 0]))
            for job in sim._field_jobs(f, fld, offset, 0, params, n_frames, False):
                crops.append(sim._render(job).crops)
            offset += len(fld.tracks)
        allc = np.concatenate(crops)
        np.save(Path(out).with_suffix(".npy"), allc)
        n = len(allc)
    wall = time.perf_counter() - t0
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(json.dumps({
        "crops": int(n),
        "wall_s": wall,
        "cpu_s": (time.process_time() - c0) + kids.ru_utime + kids.ru_stime,
        "rss_mb": me.ru_maxrss / 1024,
        "worker_rss_mb": kids.ru_maxrss / 1024,
    }))


def _run(mode: str, fields: int, args: argparse.Namespace, tmp: str) -> dict:
    out = os.path.join(tmp, f"{mode}-{fields}")
    cmd = [sys.executable, __file__, "--child", mode, "--fields", str(fields), "--cells-per-field",
           str(args.cells_per_field), "--hours", str(args.hours), "--workers", str(args.workers), "--out", out]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fields", type=int, nargs="+", default=[1, 2, 6])
    ap.add_argument("--cells-per-field", type=int, default=150)
    ap.add_argument("--hours", type=float, default=16.7)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--child", choices=["stream", "memory"])
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.child:
        _child(args.child, args.fields[0], args.cells_per_field, args.hours, args.workers, args.out)
        return
    print(f"cores: {os.cpu_count()}, load average before: {os.getloadavg()[0]:.1f}; "
          f"{args.cells_per_field} founders per field, {args.hours} h, workers={args.workers}")
    head = f"{'mode':>8} {'fields':>6} {'crops':>8} {'wall s':>7} {'crops/s':>8} {'crops/CPU-s':>11} {'peak MB':>8} {'worker MB':>9}"
    print(head)
    with tempfile.TemporaryDirectory() as tmp:
        for f in args.fields:
            for mode in ("stream", "memory"):
                r = _run(mode, f, args, tmp)
                peak = r["rss_mb"]
                print(f"{mode:>8} {f:>6} {r['crops']:>8} {r['wall_s']:>7.1f} {r['crops'] / r['wall_s']:>8.0f} "
                      f"{r['crops'] / r['cpu_s']:>11.0f} {peak:>8.0f} {r['worker_rss_mb'] if mode == 'stream' else 0:>9.0f}",
                      flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f} (above {os.cpu_count()} means other processes shared the CPU)")
    print("memory: 'stream' peak (main process; workers listed apart) should stay flat as N grows, "
          "'memory' (the non-streaming baseline) grows with N.")


if __name__ == "__main__":
    main()
