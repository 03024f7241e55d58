"""Scale-out on Dask: embedding and drawing with 1 and then 2 workers on the same data, in one run.

What a user with a cluster needs to know is whether a second worker halves the time. Each
configuration gets its own ``LocalCluster`` (processes, 1 thread each: Dask's nanny sets
``OMP_NUM_THREADS=1``, so torch runs one thread a worker -- the worker count is the only
parallelism) and is driven through the same calls a real cluster would get:

* **embed** -- ``deepcycle_core.net.embed.embed(store, checkpoint, out, scheduler=client)``: the workers
  open the Zarr store and the checkpoint themselves (tasks carry paths and cell ranges, ~24 bytes a
  cell come back). Timed twice: *cold* (each worker loads the network and opens the store) and
  *warm* (the per-process cache is hot: the steady-state rate a long run sees);
* **draw** -- ``deepcycle_core.plots.cluster_draw.ring_aggregate_on_cluster``: Datashader over a Dask
  DataFrame that the workers read, a row group a task, from a Parquet table of ``--points`` cells
  (x, y, FUCCI ratio) in 16 files; only the 600 x 600 image comes back.

Efficiency = (time with 1 worker / time with 2 workers) / 2: 100 % is perfect scaling. On a 2-core
machine 2 workers use every core; other processes sharing those cores lower it (the load average is
printed). ``--json`` stores the figures.

    .venv/bin/python benchmarks/dask_scaling.py [--cells 8192] [--points 2e7] [--json out.json]

On a real cluster the same embed call takes ``scheduler="tcp://host:8786"`` (or
``deepcycle embed --run RUN --scheduler tcp://host:8786``); see README, "Running at scale".
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from embed import default_checkpoint, synthetic_store  # noqa: E402  (benchmarks/embed.py)


def _points_table(path: Path, n: int, parts: int, seed: int = 0) -> Path:
    """A ring of ``n`` cells as ``parts`` Parquet files, written a part at a time (never all in memory)."""
    path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for p in range(parts):
        m = n // parts + (p < n % parts)
        theta = rng.uniform(0, 2 * np.pi, m)
        r = 1 + rng.normal(0, 0.08, m)
        pd.DataFrame({"x": (r * np.cos(theta)).astype("float32"), "y": (r * np.sin(theta)).astype("float32"),
                      "ratio": (np.cos(theta) / 2 + 0.5).astype("float32")}).to_parquet(path / f"part-{p:03d}.parquet")
    return path


def _draw(client, table: Path) -> tuple[float, float]:
    """Seconds to aggregate the table on the cluster (mean FUCCI ratio per pixel), and the mean of the image."""
    from deepcycle_core.plots.cluster_draw import ring_aggregate_on_cluster

    t = time.perf_counter()
    image, _ = ring_aggregate_on_cluster(table, "ratio", x="x", y="y", width=600, height=600,
                                         ranges=((-1.5, 1.5), (-1.5, 1.5)), client=client)
    return time.perf_counter() - t, float(np.nanmean(image.values))


def run(workers: int, store: Path, ckpt: Path, table: Path, tmp: Path, batch_size: int) -> dict:
    import torch  # noqa: F401  (imported here so the workers' thread setting below can be checked)
    from dask.distributed import Client, LocalCluster

    from deepcycle_core.net import embed as E

    t = time.perf_counter()
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(cluster)
    start_s = time.perf_counter() - t
    try:
        torch_threads = sorted(set(client.run(lambda: __import__("torch").get_num_threads()).values()))
        res: dict = {"workers": workers, "cluster_start_s": start_s, "torch_threads_per_worker": torch_threads}
        for label in ("cold", "warm"):
            out = tmp / f"embed-{workers}-{label}"
            t = time.perf_counter()
            E.embed(store, ckpt, out, batch_size=batch_size, scheduler=client, progress=False, h5ad=False)
            res[f"embed_{label}_s"] = time.perf_counter() - t
        res["descriptors"] = E.read_descriptors(tmp / f"embed-{workers}-warm")
        _draw(client, table)  # numba compiles Datashader's kernels once per worker: not timed
        res["draw_s"], res["draw_mean"] = _draw(client, table)
        return res
    finally:
        client.close()
        cluster.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=8192, help="cells embedded (a synthetic store of this many crops)")
    ap.add_argument("--points", type=float, default=2e7, help="cells in the drawn table")
    ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument("--json", help="write the figures to this JSON file")
    args = ap.parse_args(argv)

    from deepcycle_core.data.runs import repo_root
    from deepcycle_core.data.store import open_store

    root = repo_root(Path(__file__).parent)
    tmp = Path(tempfile.mkdtemp(prefix="bench-dask-"))
    try:
        ckpt = root / "data" / "reference" / "both.pt"
        note = "the reference network (data/reference/both.pt)"
        if not ckpt.is_file():
            ckpt, note = default_checkpoint(tmp / "default.pt"), "the default network with random weights"
        store = synthetic_store(tmp / "store", args.cells)
        n = open_store(store).n_cells
        table = _points_table(tmp / "points", int(args.points), parts=16)
        print(f"{n:,} cells embedded with {note}; {int(args.points):,} cells drawn from 16 Parquet parts")
        print(f"cores: {os.cpu_count()}, load average at start: {os.getloadavg()[0]:.2f}")
        one, two = (run(w, store, ckpt, table, tmp, args.batch_size) for w in (1, 2))
        same = float(np.abs(one.pop("descriptors").to_numpy() - two.pop("descriptors").to_numpy()).max())
        rows = []
        for what, key, count in (("embed, cold (workers load the network)", "embed_cold_s", n),
                                 ("embed, warm (steady state)", "embed_warm_s", n),
                                 ("draw: Datashader aggregate of Parquet on the workers", "draw_s", int(args.points))):
            eff = one[key] / two[key] / 2
            rows.append({"stage": what, "one_worker_s": one[key], "two_workers_s": two[key],
                         "one_worker_per_s": count / one[key], "two_workers_per_s": count / two[key],
                         "efficiency": eff})
            print(f"  {what:55s} 1 worker {one[key]:7.2f} s ({count / one[key]:10,.0f}/s)   "
                  f"2 workers {two[key]:7.2f} s ({count / two[key]:10,.0f}/s)   efficiency {eff:6.1%}")
        print(f"  torch threads per worker: {one['torch_threads_per_worker']} / {two['torch_threads_per_worker']}; "
              f"cluster start-up {one['cluster_start_s']:.1f} s / {two['cluster_start_s']:.1f} s")
        print(f"  max |1 worker - 2 workers| descriptor difference: {same:.2e}; "
              f"drawn image mean {one['draw_mean']:.6f} / {two['draw_mean']:.6f}")
        print(f"load average at end: {os.getloadavg()[0]:.2f}")
        if args.json:
            Path(args.json).write_text(json.dumps({
                "what": "benchmarks/dask_scaling.py: 1 vs 2 Dask workers (LocalCluster, 1 thread each), same data, one run",
                "command": "python benchmarks/dask_scaling.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "cores": os.cpu_count(), "cells": n,
                "points": int(args.points), "checkpoint": note, "rows": rows, "one_worker": one, "two_workers": two,
                "max_descriptor_difference": same, "load_average_end": os.getloadavg()[0]}, indent=2) + "\n")
            print(f"wrote {args.json}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
