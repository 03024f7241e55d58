"""Training and inference throughput of the default DeepCycle network, against a plain baseline.

Baseline (measured in the same run, interleaved with the tuned version so that load from other
processes hits both alike): the same network in fp32, default (NCHW) memory layout, data loaded in
the training process. Tuned: channels-last, bf16 autocast only where the CPU/GPU runs it natively,
conv+BN folding and ``torch.inference_mode`` for inference (and optionally ``torch.compile``),
DataLoader workers. Also: how many images/second the chunked, augmenting data loader delivers on its
own, against what the tuned training consumes (target >= 3x); and fp32 against bf16 autocast side by
side, for training and inference, measured in the same run whatever the CPU (on a CPU without native
bf16 -- AVX2 only -- oneDNN emulates it and it is many times slower: that is why the presets use bf16
only where the hardware has it; ``--precision-images`` keeps that measurement short).

    .venv/bin/python benchmarks/train.py                # synthetic store, ~2-4 minutes on 2 cores
    .venv/bin/python benchmarks/train.py --store data/runs/default/store --compile

The figures depend on what else runs on the machine; each figure is the best of ``--rounds``
interleaved rounds, which is the least contended.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from deepcycle_core.net import dataset as D
from deepcycle_core.net.model import build_model, get_preset, use_bf16
from deepcycle_core.data.store import StoreWriter, open_store


def synthetic_store(path: Path, n: int = 8192, chunk: int = 2048) -> Path:
    """A store of noisy blobs (content does not matter for speed, compression roughly does)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:48, :48]
    blob = np.exp(-((yy - 24.0) ** 2 + (xx - 24.0) ** 2) / 50.0)
    frames = 64
    with StoreWriter(path, channels=[("hoechst", "nuclear"), ("brightfield", "brightfield")],
                     meta={"frame_interval_min": 10, "pixel_size_um": 0.5, "provenance": {"source": "benchmark"}},
                     chunk_cells=chunk) as w:
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            crops = 500 + 800 * blob[None, None] + rng.normal(0, 40, (m, 2, 48, 48))
            f = (start + np.arange(m)) % frames
            w.append(crops.clip(0, 65535).astype(np.uint16), pd.DataFrame({
                "track_id": (start + np.arange(m)) // 16, "parent_track_id": -1, "frame": f, "time_h": f / 6.0,
                "x": 10.0, "y": 10.0, "field": 0, "birth_frame": -1, "division_frame": -1, "full_cycle": False,
                "fucci_red": 0.0, "fucci_green": 0.0, "class": rng.integers(0, 4, m)}))
        w.set_frames(pd.DataFrame({"field": 0, "frame": np.arange(frames), "hoechst_median": 500.0,
                                   "hoechst_std": 100.0, "brightfield_median": 500.0, "brightfield_std": 100.0}))
    return path


def loader(data: D.TrainingData, n: int, batch: int, workers: int, epoch: int = 0) -> DataLoader:
    idx = data.indices("train")
    order = D.chunk_order(D.epoch_sample(idx, data.labels[idx], n, 0, epoch, "sampler"), data.store.chunk_cells, 4, 0, epoch)
    ds = data.batches(order, batch, augment=True, seed=0, epoch=epoch, drop_last=True)
    return DataLoader(ds, batch_size=None, num_workers=workers, persistent_workers=False)


def time_train(model, opt, batches, channels_last: bool, bf16: bool) -> float:
    """Images/second of forward+backward+step over the loader (data loading included)."""
    mf = torch.channels_last if channels_last else torch.contiguous_format
    model.train()
    n, t0 = 0, None
    for i, (x, y, _) in enumerate(batches):
        if i == 1:  # first batch: warm-up (allocations, worker start-up)
            t0, n = time.perf_counter(), 0
        x = x.to(memory_format=mf)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = torch.nn.functional.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        n += len(y)
    return n / (time.perf_counter() - t0)


def time_infer(fn, x: torch.Tensor, reps: int, bf16: bool) -> float:
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        fn(x)
        t0 = time.perf_counter()
        for _ in range(reps):
            fn(x)
    return reps * len(x) / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", default=None, help="a cell store (default: a synthetic one in a temp folder)")
    ap.add_argument("--train-images", type=int, default=1536, help="images per training measurement")
    ap.add_argument("--infer-batch", type=int, default=256)
    ap.add_argument("--infer-reps", type=int, default=4)
    ap.add_argument("--workers", type=int, default=1, help="DataLoader workers of the tuned run")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--compile", action="store_true", help="also try torch.compile for inference")
    ap.add_argument("--precision-images", type=int, default=512,
                    help="images per fp32-vs-bf16 training measurement (bf16 is slow where it is emulated)")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file (the book prints it)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    tmp = tempfile.TemporaryDirectory()
    store = open_store(args.store) if args.store else open_store(synthetic_store(Path(tmp.name) / "store"))
    data = D.TrainingData.from_store(store, "both")
    p = get_preset("default")
    bf16 = use_bf16(p.bf16, "cpu")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, native bf16: {bf16}; store {store.n_cells} cells")

    torch.manual_seed(0)
    base_model = build_model(p, 2, pretrained=None)
    tuned_model = copy.deepcopy(base_model).to(memory_format=torch.channels_last)
    base_opt = torch.optim.AdamW(base_model.parameters(), lr=1e-4)
    tuned_opt = torch.optim.AdamW(tuned_model.parameters(), lr=1e-4)
    n, b = args.train_images, p.batch_size

    res: dict[str, list[float]] = {k: [] for k in ("train_base", "train_tuned", "infer_base", "infer_tuned", "loader")}
    x = next(iter(loader(data, args.infer_batch, args.infer_batch, 0)))[0]
    base_eval = copy.deepcopy(base_model).eval()
    from torch.fx.experimental.optimization import fuse

    class ClassLogits(torch.nn.Module):
        """The class-logit path only, so FX traces ``forward(x)`` with ``heads`` a constant."""

        def __init__(self, net: torch.nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x)

    tuned_eval = fuse(ClassLogits(copy.deepcopy(base_model)).eval()).to(memory_format=torch.channels_last)
    xc = x.contiguous(memory_format=torch.channels_last)
    compiled = None
    if args.compile:
        t0 = time.perf_counter()
        compiled = torch.compile(tuned_eval)
        time_infer(compiled, xc, 1, bf16)
        print(f"torch.compile warm-up {time.perf_counter() - t0:.0f} s")
        res["infer_compiled"] = []
    for r in range(args.rounds):
        res["train_base"].append(time_train(base_model, base_opt, loader(data, n, b, 0, r), False, False))
        res["train_tuned"].append(time_train(tuned_model, tuned_opt, loader(data, n, b, args.workers, r), True, bf16))
        res["infer_base"].append(time_infer(base_eval, x, args.infer_reps, False))
        res["infer_tuned"].append(time_infer(tuned_eval, xc, args.infer_reps, bf16))
        if compiled is not None:
            res["infer_compiled"].append(time_infer(compiled, xc, args.infer_reps, bf16))
        t0, m = time.perf_counter(), 0
        for xb, _, _ in loader(data, 4 * n, b, 0, r):
            m += len(xb)
        res["loader"].append(m / (time.perf_counter() - t0))
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.0f}" for k, v in res.items()) + " img/s", flush=True)

    # fp32 against bf16, same tuned model and layout, in this run (one round each: bf16 may be emulated)
    prec: dict[str, dict[str, float]] = {}
    for name, use in (("fp32", False), ("bf16", True)):
        m = copy.deepcopy(tuned_model)
        o = torch.optim.AdamW(m.parameters(), lr=1e-4)
        prec[name] = {
            "train": time_train(m, o, loader(data, args.precision_images, b, 0, 7), True, use),
            "infer": time_infer(tuned_eval, xc, max(1, args.infer_reps // 2), use),
        }
        print(f"{name}: training {prec[name]['train']:.0f} img/s, inference {prec[name]['infer']:.0f} img/s", flush=True)

    best = {k: max(v) for k, v in res.items()}
    infer_best = max(best["infer_tuned"], best.get("infer_compiled", 0.0))
    print("\nimages/second (best of rounds)")
    print(f"  training   baseline {best['train_base']:8.0f}   tuned {best['train_tuned']:8.0f}   "
          f"ratio {best['train_tuned'] / best['train_base']:.2f}x (target 1.5x)")
    print(f"  inference  baseline {best['infer_base']:8.0f}   tuned {best['infer_tuned']:8.0f}   "
          f"ratio {best['infer_tuned'] / best['infer_base']:.2f}x (target 2x)")
    if compiled is not None:
        print(f"  inference  torch.compile {best['infer_compiled']:8.0f}   ratio {best['infer_compiled'] / best['infer_base']:.2f}x")
    print(f"  data loader (1 process, augmenting) {best['loader']:8.0f}   = {best['loader'] / best['train_tuned']:.1f}x "
          f"what tuned training consumes (target 3x), {best['loader'] / infer_best:.1f}x tuned inference")
    print(f"  fp32 vs bf16 (native bf16: {bf16}): training {prec['fp32']['train']:.0f} vs {prec['bf16']['train']:.0f}, "
          f"inference {prec['fp32']['infer']:.0f} vs {prec['bf16']['infer']:.0f} img/s "
          f"(bf16/fp32 {prec['bf16']['train'] / prec['fp32']['train']:.2f}x and {prec['bf16']['infer'] / prec['fp32']['infer']:.2f}x)")
    if args.json:
        load = os.getloadavg()[0]
        out = {
            "machine": f"{os.cpu_count()} CPUs ({torch.backends.cpu.get_cpu_capability()}, native bf16: {bf16}), "
            f"{torch.get_num_threads()} torch thread(s), load average {load:.1f} while measuring",
            "command": "benchmarks/train.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "training": {"baseline": best["train_base"], "tuned": best["train_tuned"],
                         "ratio": best["train_tuned"] / best["train_base"]},
            "inference": {"baseline": best["infer_base"], "tuned": infer_best, "ratio": infer_best / best["infer_base"]},
            "loader": best["loader"],
            "loader_vs_training": best["loader"] / best["train_tuned"],
            "precision": {"native_bf16": bool(bf16), **prec},
        }
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
