"""Embedding throughput (cells/s) of the default model, and whether the loader is the bottleneck.

Measured in one process on the same cells (``deepcycle_core.embed.throughput``):

* loader alone -- read Zarr chunks + per-frame normalisation;
* model alone on data in memory -- the BASELINE is plain fp32, contiguous (NCHW), single process;
  then fp32 channels-last, and bf16 autocast channels-last (``--bf16``; on CPUs without native bf16
  it is emulated and ~10x slower, so it is off by default there);
* the pipeline -- ``embed()``'s prefetching reader + model;

then the full ``embed()`` call (Parquet + AnnData written) locally and on a Dask ``LocalCluster``
(2 workers x 1 thread) over the same store.  Every ratio is against the baseline of this run.

The model is the ``default`` preset (ResNet18 cut after stage 3, what the book trains); it uses the
trained ``data/runs/default/train/best.pt`` when present, otherwise the same network with random
weights (throughput does not depend on the weights).  The store is ``data/runs/default/store`` when
present, else a synthetic store of ``--cells`` random crops.

Other processes competing for the 2 cores inflate wall time: CPU seconds are printed too, and
cells per CPU-second is the contention-free figure.

    .venv/bin/python benchmarks/embed.py [--cells 8192] [--bf16] [--no-dask]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def synthetic_store(path: Path, n: int, seed: int = 0) -> Path:
    """n random 2-channel crops in a valid store (the loader cost is the same as for real crops)."""
    from deepcycle_core.store import StoreWriter

    rng = np.random.default_rng(seed)
    frames = pd.DataFrame({"field": 0, "frame": np.arange(10), "hoechst_median": 200.0, "hoechst_std": 50.0,
                           "brightfield_median": 1000.0, "brightfield_std": 100.0})
    with StoreWriter(path, channels=[("hoechst", "nuclear"), ("brightfield", "brightfield")],
                     meta={"frame_interval_min": 10, "pixel_size_um": 0.5}) as w:
        for start in range(0, n, 4096):
            m = min(4096, n - start)
            frame = np.arange(start, start + m) % 10
            rows = pd.DataFrame({
                "track_id": -1, "parent_track_id": -1, "frame": frame, "time_h": frame / 6.0, "x": 0.0, "y": 0.0,
                "field": 0, "birth_frame": -1, "division_frame": -1, "full_cycle": False, "fucci_red": np.nan,
                "fucci_green": np.nan, "class": -1,
            })
            # smooth blobs + noise compress like real crops (pure noise would overstate decoding cost)
            base = rng.normal(0, 1, (m, 2, 12, 12)).repeat(4, axis=2).repeat(4, axis=3)
            crops = np.clip(300 + 80 * base + rng.normal(0, 20, base.shape), 0, 65535).astype(np.uint16)
            w.append(crops, rows)
        w.set_frames(frames)
    return path


def default_checkpoint(path: Path) -> Path:
    """The default preset's network with random weights, saved in the training checkpoint format."""
    import torch

    from deepcycle_core.checkpoint import save_checkpoint
    from deepcycle_core.model import build_model

    torch.manual_seed(0)
    net = build_model("default", in_channels=2, pretrained=None).eval()
    info = {**net.config, "mode": "both", "roles": ["nuclear", "brightfield"], "channels": ["hoechst", "brightfield"]}
    return save_checkpoint(path, "untrained", info=info, model=net.state_dict())


def timed(fn):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=8192, help="cells measured (and of the synthetic store)")
    ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument("--bf16", action="store_true", help="also time bf16 autocast (slow where emulated)")
    ap.add_argument("--no-dask", action="store_true", help="skip the Dask LocalCluster run")
    args = ap.parse_args(argv)

    import torch

    from deepcycle_core import embed as E
    from deepcycle_core.runs import repo_root
    from deepcycle_core.store import open_store

    root = repo_root(Path(__file__).parent)
    tmp = Path(tempfile.mkdtemp(prefix="bench-embed-"))
    run = root / "data" / "runs" / "default"
    ckpt = run / "train" / "best.pt"
    ckpt_note = "trained default model"
    if not ckpt.is_file():
        ckpt, ckpt_note = default_checkpoint(tmp / "default.pt"), "default preset network, random weights"
    if (run / "store" / "meta.json").is_file():
        store, store_note = run / "store", "data/runs/default/store"
    else:
        store, store_note = synthetic_store(tmp / "store", args.cells), f"synthetic store of {args.cells} crops"
    info = torch.load(ckpt, weights_only=True)["info"]
    print(f"model: {info['backbone']} (truncate={info['truncate']}), {ckpt_note}; store: {store_note}")
    print(f"cores: {os.cpu_count()}, torch threads: {torch.get_num_threads()}, native bf16: {E.native_bf16()}, "
          f"load average at start: {os.getloadavg()[0]:.2f} (other processes share the cores)")

    tp = E.throughput(store, ckpt, n_cells=args.cells, batch_size=args.batch_size, bf16=args.bf16 or None)
    print(f"\n== throughput on {min(args.cells, open_store(store).n_cells)} cells (best of 1) ==")
    for _, r in tp.iterrows():
        print(f"  {r['what']:62s} {r['cells_per_s']:9.1f} cells/s   ratio vs baseline {r['ratio_vs_baseline']:5.2f}x")
    loader = tp["cells_per_s"].iloc[0]
    model = tp["cells_per_s"].iloc[1:-1].max()
    print(f"  loader / fastest model: {loader / model:.1f}x -> "
          f"{'the loader is NOT the bottleneck' if loader > model else 'the LOADER is the bottleneck'}")
    print(f"  pipeline / fastest model alone: {tp['cells_per_s'].iloc[-1] / model:.2f}")

    # the whole stage, local and on Dask, over a store of args.cells cells
    sub = store if open_store(store).n_cells <= args.cells else synthetic_store(tmp / "sub", args.cells)
    n = open_store(sub).n_cells
    print(f"\n== embed() end to end on {n} cells (outputs written) ==")
    _, wall, cpu = timed(lambda: E.embed(sub, ckpt, tmp / "out-local", batch_size=args.batch_size, progress=False))
    s = json.loads((tmp / "out-local" / "summary.json").read_text())
    print(f"  local ({s['precision']}, channels-last):   {wall:7.1f} s wall  {n / wall:8.1f} cells/s   "
          f"{n / max(cpu, 1e-9):8.1f} cells per CPU-s (this process)")
    base_local = n / wall
    if not args.no_dask:
        _, wall, _ = timed(lambda: E.embed(sub, ckpt, tmp / "out-dask", batch_size=args.batch_size, local_cluster=True,
                                           n_workers=2, threads_per_worker=1, progress=False))
        print(f"  Dask LocalCluster 2x1 (incl. start-up): {wall:7.1f} s wall  {n / wall:8.1f} cells/s   "
              f"ratio vs local {n / wall / base_local:5.2f}x")
        a = E.read_descriptors(tmp / "out-local")
        b = E.read_descriptors(tmp / "out-dask")
        print(f"  max |local - dask| descriptor difference: {np.abs(a.to_numpy() - b.to_numpy()).max():.2e}")
    print(f"\nprojection for the paper's 2.6 M crops at the local rate: {2.6e6 / base_local / 60:.0f} min "
          f"(load average now {os.getloadavg()[0]:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
