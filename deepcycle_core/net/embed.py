"""Embedding: the trained network's 4-number descriptor (and optionally pooled features) for every cell.

Inference streams the cell store one Zarr chunk at a time, so memory is bounded by the chunk size
and not by the data set (the paper's 2.6 M crops are ~25 GB decoded).  A background thread reads and
normalises the next chunk while the network runs on the current one, so on CPU the loader hides
behind the model (``benchmarks/embed.py`` measures both).  Channels-last helps the CPU convolutions;
bf16 autocast helps only where the CPU has native bf16 (AVX512-BF16/AMX: ~2x) and is ~10x SLOWER
where it is emulated (AVX2 machines), so ``precision='auto'`` asks oneDNN which case holds.

The same function runs on a Dask cluster: the cell indices are cut into chunk-aligned ranges, each
task opens the store and the checkpoint itself (only paths and numbers travel through the
scheduler), and the results are gathered back in order.  Because local and Dask runs use the same
ranges and the same per-range code, they give the same numbers.

Outputs (in ``out_dir``, each written to a temporary name and renamed):

* ``descriptors.parquet`` -- ``cell_id, d0..d3`` (``log(softmax + 1e-7)``), optionally ``f0..fK``;
* ``cells.h5ad`` -- AnnData for scverse users: the cell table in ``obs``, descriptors in
  ``obsm['X_deepcycle']``, optional features in ``obsm['X_features']``, provenance in ``uns``;
* ``summary.json`` -- settings and speed; ``stamp.json`` -- the store and checkpoint the descriptors
  were made from (see :mod:`deepcycle_core.data.fingerprint`), which the trajectory stage checks.

A checkpoint of the run's own ``train/`` must be current (trained on this store, unchanged since):
embedding with a stale network raises :class:`deepcycle_core.data.fingerprint.StaleInputError`.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import pandas as pd

from ..data import fingerprint as fp
from .cycle_targets import CYCLE_COLUMNS  # the cycle head's columns: one home, torch-free
from ..data.atomic import atomic_write, write_json_atomic, write_parquet_atomic
from .normalise import MODES, frame_norm, normalise_crops
from ..data.runs import RunDir, resolve_run
from ..data.store import CellStore, open_store

__all__ = [
    "CYCLE_COLUMNS", "DESCRIPTORS_NAME", "H5AD_NAME", "PRECISIONS", "SUMMARY_NAME", "chunk_ranges", "collect_outputs", "descriptor_table", "embed",
    "embed_range", "load_inputs", "native_bf16", "read_descriptors", "register_cli", "resolve_inputs",
    "resolve_precision", "run_model", "throughput", "write_h5ad",
]

DESCRIPTORS_NAME = RunDir.DESCRIPTORS_NAME
H5AD_NAME = RunDir.H5AD_NAME
SUMMARY_NAME = RunDir.SUMMARY_NAME
PRECISIONS = ("auto", "bf16", "fp32")


# ----------------------------------------------------------------------------------------------
# inputs: where the store, checkpoint and output folder are
# ----------------------------------------------------------------------------------------------
def resolve_inputs(
    run_or_store: str | os.PathLike | RunDir, checkpoint: str | os.PathLike | None, out_dir: str | os.PathLike | None
) -> tuple[Path, Path, Path]:
    """(store, checkpoint, out_dir) from a run folder (defaults filled in) or a store folder (all given)."""
    store, run = resolve_run(run_or_store)
    if run is None:  # a bare cell store: no run folder to take defaults from
        if checkpoint is None or out_dir is None:
            raise ValueError(f"{store}: is a cell store, not a run folder; give checkpoint and out_dir too")
    else:
        checkpoint = checkpoint if checkpoint is not None else run.checkpoint
        out_dir = out_dir if out_dir is not None else run.embed
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"{checkpoint}: checkpoint not found (train the model first: `deepcycle train`)")
    return store, checkpoint, Path(out_dir)


# ----------------------------------------------------------------------------------------------
# the per-process pieces: model, store, normalisation (cached so Dask tasks reuse them)
# ----------------------------------------------------------------------------------------------
@dataclass
class _Context:
    """What one process needs to embed any range of cells: the model, the store, its normalisation."""

    model: Any
    info: dict[str, Any]
    store: CellStore
    channels: list[int]
    med: np.ndarray  # (n_cells, C) frame medians of the network channels
    std: np.ndarray


@functools.lru_cache(maxsize=2)
def _context(store_path: str, checkpoint: str, stamp: tuple[float, float]) -> _Context:
    """Open the store and the checkpoint once per process (``stamp`` = mtimes, so edits reload)."""
    from .checkpoint import load_model  # torch: imported only when a network is needed

    model, info = load_model(checkpoint)
    model.eval()
    store = open_store(store_path)
    mode = info.get("mode", "both")
    if mode not in MODES:
        raise ValueError(f"{checkpoint}: unknown mode {mode!r} in the checkpoint")
    # channels by ROLE, so a model trained on one store embeds another whose channels are named differently
    roles = info.get("roles") or list(MODES[mode])
    channels = [store.channel_index(r) for r in roles]
    n_in = getattr(model, "config", {}).get("in_channels", len(channels))
    if n_in != len(channels):
        raise ValueError(f"{checkpoint}: the network expects {n_in} channel(s) but mode {mode!r} gives {len(channels)}")
    med, std = frame_norm(store, channels)
    return _Context(model, dict(info), store, channels, med, std)


def _get_context(store_path: str | Path, checkpoint: str | Path) -> _Context:
    stamp = (os.path.getmtime(Path(store_path) / "meta.json"), os.path.getmtime(checkpoint))
    return _context(str(store_path), str(checkpoint), stamp)


def load_inputs(ctx: _Context, start: int, stop: int) -> np.ndarray:
    """Read and normalise cells ``start:stop`` of the network's channels: float32 (n, C, 48, 48)."""
    raw = ctx.store.read(start, stop, channels=ctx.channels)
    return normalise_crops(raw, ctx.med[start:stop], ctx.std[start:stop])


def run_model(
    model: Any, x: np.ndarray, *, batch_size: int, precision: str, features: bool, channels_last: bool = True
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Descriptors (n, 4) float32, optionally pooled features (n, K) float32, and the cycle head's
    (cos, sin) output (n, 2) float32 when the network has that head (else None), batch by batch."""
    import torch

    from .model import descriptor_from_logits

    bf16 = precision == "bf16"
    has_cycle = getattr(model, "cycle", None) is not None
    descs, feats, cycs = [], [], []
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for b in range(0, len(x), batch_size):
            xb = torch.from_numpy(x[b : b + batch_size])
            if channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            if features or hasattr(model, "fc"):
                f = model.features(xb)
                descs.append(descriptor_from_logits(model.fc(f)).float().numpy())
                if features:
                    feats.append(f.float().numpy())
                if has_cycle:
                    cycs.append(model.cycle_vector(model.cycle(f)).float().numpy())
            else:
                descs.append(model.descriptor(xb).float().numpy())
    d = np.concatenate(descs) if descs else np.zeros((0, 4), np.float32)
    c = (np.concatenate(cycs) if cycs else np.zeros((0, 2), np.float32)) if has_cycle else None
    return d, (np.concatenate(feats) if features and feats else None), c


def native_bf16() -> bool:
    """Whether this CPU runs bf16 convolutions natively (oneDNN's own check; False when unknown)."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(precision: str) -> str:
    """``auto`` -> ``bf16`` on CPUs with native bf16, else ``fp32``; explicit choices pass through."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose from {PRECISIONS}")
    if precision == "auto":
        return "bf16" if native_bf16() else "fp32"
    return precision


def _prepare_model(ctx: _Context, channels_last: bool) -> Any:
    """The model in the wanted memory format (in place; a no-op when already there)."""
    import torch

    fmt = torch.channels_last if channels_last else torch.contiguous_format
    return ctx.model.to(memory_format=fmt)


def embed_range(
    store_path: str, checkpoint: str, start: int, stop: int, batch_size: int, precision: str, features: bool,
    channels_last: bool = True, threads: int | None = None,
) -> tuple[int, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Embed cells ``start:stop`` in this process: the unit of work of a Dask task.

    Takes only paths and numbers, opens store and checkpoint itself (cached per process), returns
    ``(start, descriptors, features, cycle)`` -- ~24 bytes a cell back through the scheduler.
    """
    import torch

    if threads:
        torch.set_num_threads(int(threads))
    ctx = _get_context(store_path, checkpoint)
    model = _prepare_model(ctx, channels_last)
    x = load_inputs(ctx, start, stop)
    d, f, c = run_model(model, x, batch_size=batch_size, precision=precision, features=features, channels_last=channels_last)
    return start, d, f, c


def chunk_ranges(n_cells: int, chunk_cells: int, cells_per_task: int | None = None) -> list[tuple[int, int]]:
    """Chunk-aligned ``(start, stop)`` ranges covering ``0..n_cells`` (a task never splits a Zarr chunk)."""
    step = chunk_cells if not cells_per_task else max(1, round(cells_per_task / chunk_cells)) * chunk_cells
    return [(s, min(s + step, n_cells)) for s in range(0, n_cells, step)]


# ----------------------------------------------------------------------------------------------
# the two executors
# ----------------------------------------------------------------------------------------------
def _iter_local(
    store: Path, checkpoint: Path, ranges: list[tuple[int, int]], batch_size: int, precision: str, features: bool,
    channels_last: bool,
) -> Iterator[tuple[int, np.ndarray, np.ndarray | None, np.ndarray | None]]:
    """Embed ranges in order in this process, reading the next range in a thread while the model runs."""
    ctx = _get_context(store, checkpoint)
    model = _prepare_model(ctx, channels_last)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed-reader") as pool:
        pending = pool.submit(load_inputs, ctx, *ranges[0]) if ranges else None
        for i, (start, _stop) in enumerate(ranges):
            x = pending.result()
            pending = pool.submit(load_inputs, ctx, *ranges[i + 1]) if i + 1 < len(ranges) else None
            d, f, c = run_model(model, x, batch_size=batch_size, precision=precision, features=features,
                                channels_last=channels_last)
            yield start, d, f, c


def _iter_dask(
    client: Any, store: Path, checkpoint: Path, ranges: list[tuple[int, int]], batch_size: int, precision: str,
    features: bool, channels_last: bool, threads: int | None,
) -> Iterator[tuple[int, np.ndarray, np.ndarray | None, np.ndarray | None]]:
    """Embed ranges as Dask tasks; yield results in range order as they complete (bounded buffering)."""
    from dask.distributed import as_completed

    futures = [
        client.submit(embed_range, str(store), str(checkpoint), s, e, batch_size, precision, features,
                      channels_last, threads,
                      key=f"deepcycle-embed-{uuid.uuid4().hex[:8]}-{s}", pure=False)
        for s, e in ranges
    ]
    done: dict[int, tuple[int, np.ndarray, np.ndarray | None, np.ndarray | None]] = {}
    order = [s for s, _ in ranges]
    nxt = 0
    for fut in as_completed(futures):
        res = fut.result()
        done[res[0]] = res
        fut.release()
        while nxt < len(order) and order[nxt] in done:
            yield done.pop(order[nxt])
            nxt += 1


@contextlib.contextmanager
def _executor(
    scheduler: str | Any | None, local_cluster: bool, n_workers: int, threads_per_worker: int,
) -> Iterator[tuple[Any, str, int | None]]:
    """(Dask client or None for this process, its name, threads per task), closed after (a given client is not)."""
    cluster = client = None
    try:
        if scheduler is None and not local_cluster:
            yield None, "local", None
            return
        from dask.distributed import Client, LocalCluster

        if scheduler is None:
            cluster = LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker,
                                   processes=True, dashboard_address=None)
            client = Client(cluster)
            yield client, f"dask LocalCluster ({n_workers} x {threads_per_worker} threads)", threads_per_worker
        elif isinstance(scheduler, str):
            client = Client(scheduler)
            yield client, f"dask {scheduler}", None
        else:
            client = scheduler
            yield client, "dask client", None
    finally:
        if client is not None and scheduler is not client:
            client.close()
        if cluster is not None:
            cluster.close()


def collect_outputs(
    results: Iterable[tuple[int, np.ndarray, np.ndarray | None, np.ndarray | None]], n: int, *,
    progress: str | None = None, smoothing: float = 0.3,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """(descriptors (n, 4), features (n, K) or None, cycle head (n, 2) or None) of ``n`` cells from the
    model's ``(start, descriptors, features, cycle)`` chunk by chunk, ``start`` being a chunk's first row.

    The one loop that gathers the network's outputs: the embed stage over a whole store, the validation
    over the cells it samples. ``progress`` is the progress bar's label (None: no bar).
    """
    desc = np.empty((n, 4), dtype=np.float32)
    feats: np.ndarray | None = None
    cyc: np.ndarray | None = None
    bar = None
    if progress is not None:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, unit="cell", desc=progress, smoothing=smoothing)
    for start, d, f, c in results:
        desc[start : start + len(d)] = d
        if c is not None:
            if cyc is None:
                cyc = np.empty((n, 2), dtype=np.float32)
            cyc[start : start + len(c)] = c
        if f is not None:
            if feats is None:
                feats = np.empty((n, f.shape[1]), dtype=np.float32)
            feats[start : start + len(f)] = f
        if bar is not None:
            bar.update(len(d))
    if bar is not None:
        bar.close()
    return desc, feats, cyc


# ----------------------------------------------------------------------------------------------
# writing
# ----------------------------------------------------------------------------------------------
def descriptor_table(desc: np.ndarray, feats: np.ndarray | None = None, cycle: np.ndarray | None = None) -> pd.DataFrame:
    """``cell_id, d0..d3[, cycle_cos, cycle_sin][, f0..fK]`` as float32 columns."""
    cols: dict[str, np.ndarray] = {"cell_id": np.arange(len(desc), dtype=np.int64)}
    cols.update({f"d{i}": desc[:, i].astype(np.float32) for i in range(desc.shape[1])})
    if cycle is not None:
        cols.update({name: cycle[:, i].astype(np.float32) for i, name in enumerate(CYCLE_COLUMNS)})
    if feats is not None:
        cols.update({f"f{i}": feats[:, i].astype(np.float32) for i in range(feats.shape[1])})
    return pd.DataFrame(cols)


def write_h5ad(
    path: Path, cells: pd.DataFrame, desc: np.ndarray, feats: np.ndarray | None, uns: dict[str, Any],
    cycle: np.ndarray | None = None,
) -> None:
    """AnnData export: obs = cell table (strings as categories), obsm = descriptors/features/cycle head."""
    import anndata as ad

    obs = cells.copy(deep=False)  # columns are shared, not copied: the table can be millions of rows
    obs.index = obs["cell_id"].astype(str).to_numpy()
    for col in obs.columns:
        if obs[col].dtype == object:
            obs[col] = obs[col].astype("category")
    obsm = {"X_deepcycle": desc.astype(np.float32)}
    if feats is not None:
        obsm["X_features"] = feats.astype(np.float32)
    if cycle is not None:
        obsm["X_cycle"] = cycle.astype(np.float32)
    adata = ad.AnnData(obs=obs, obsm=obsm, uns={"deepcycle": json.loads(json.dumps(uns, default=str))})
    atomic_write(path, adata.write_h5ad)


# ----------------------------------------------------------------------------------------------
# the stage
# ----------------------------------------------------------------------------------------------
def embed(
    run_or_store: str | os.PathLike | RunDir,
    checkpoint: str | os.PathLike | None = None,
    out_dir: str | os.PathLike | None = None,
    *,
    batch_size: int = 512,
    features: bool = False,
    scheduler: str | Any | None = None,
    local_cluster: bool = False,
    n_workers: int = 2,
    threads_per_worker: int = 1,
    precision: str = "auto",
    channels_last: bool = True,
    cells_per_task: int | None = None,
    h5ad: bool = True,
    reuse: bool = False,
    progress: bool = True,
) -> Path:
    """Embed every cell of a store with a trained checkpoint; return the output folder.

    ``run_or_store``: a run folder (``store/`` and ``train/best.pt`` found there, output to
    ``embed/``) or a store folder (then ``checkpoint`` and ``out_dir`` are required).
    ``scheduler``: a Dask scheduler address (``'tcp://host:8786'``) or a ``distributed.Client``;
    ``local_cluster=True`` starts a ``LocalCluster`` of ``n_workers`` x ``threads_per_worker``.
    ``precision``: ``'auto'`` (bf16 autocast only where the CPU has native bf16), ``'bf16'`` or
    ``'fp32'``; ``channels_last`` lays the tensors out NHWC for the CPU convolution kernels.
    ``reuse=True`` returns at once when ``out_dir`` already holds the embedding of this very
    checkpoint (sha256) and store (creation stamp, size; its ``stamp.json`` also its tables) with the
    same settings. A checkpoint of the run's own ``train/`` that is not current raises StaleInputError.
    """
    requested = precision
    precision = resolve_precision(precision)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    store_path, ckpt, out = resolve_inputs(run_or_store, checkpoint, out_dir)
    memo: dict = {}  # digests shared by the checks and the stamp: every input is hashed once
    # the network must have been trained on this store (when it is this run's) and be unchanged since
    fp.check_checkpoint(RunDir(store_path.parent) if store_path.name == "store" else None, ckpt, memo=memo)
    store = open_store(store_path)
    n = store.n_cells
    ranges = chunk_ranges(n, store.chunk_cells, cells_per_task)
    out.mkdir(parents=True, exist_ok=True)
    fingerprint = {
        "checkpoint_sha256": fp.file_digest(ckpt, memo),
        "store_created": store.meta.get("provenance", {}).get("created"),
        "n_cells": int(n),
        "precision": precision,
        "features": bool(features),
        "h5ad": bool(h5ad),
    }
    params = {"precision": precision, "features": bool(features), "h5ad": bool(h5ad)}
    inputs = {"store": store_path, "checkpoint": ckpt}
    command = _refresh_command(run_or_store, store_path, ckpt, out, requested, features, h5ad)
    stamp = {"inputs": inputs, "params": params, "command": command,
             "root": None if command.startswith("deepcycle embed --store") else store_path.parent}
    if reuse and _up_to_date(out, fingerprint) and _stamp_current(out, stamp, memo):
        return out
    fp.remove_stamp(out)  # an interrupted run must not leave a record vouching for half-written outputs

    t0 = time.perf_counter()
    with _executor(scheduler, local_cluster, n_workers, threads_per_worker) as (client, executor, threads):
        if client is not None:
            results = _iter_dask(client, store_path, ckpt, ranges, batch_size, precision, features, channels_last,
                                 threads)
        else:
            results = _iter_local(store_path, ckpt, ranges, batch_size, precision, features, channels_last)
        desc, feats, cyc = collect_outputs(results, n, progress=f"embed ({executor})" if progress else None,
                                           smoothing=0.1)
    seconds = time.perf_counter() - t0
    if not np.isfinite(desc).all():
        raise RuntimeError(f"{ckpt}: the network produced non-finite descriptors for {int((~np.isfinite(desc)).any(1).sum())} cell(s)")

    summary = {
        "fingerprint": fingerprint,
        "n_cells": int(n),
        "checkpoint": ckpt.name,
        "store": store_path.name,
        "precision": precision,
        "channels_last": bool(channels_last),
        "batch_size": int(batch_size),
        "executor": executor,
        "features": int(feats.shape[1]) if feats is not None else 0,
        "cycle_head": cyc is not None,
        "seconds": round(seconds, 3),
        "cells_per_s": round(n / seconds, 1) if seconds > 0 else None,
    }
    write_parquet_atomic(out / DESCRIPTORS_NAME, descriptor_table(desc, feats, cyc))
    if h5ad:
        write_h5ad(out / H5AD_NAME, store.cells, desc, feats, summary, cyc)
    write_json_atomic(out / SUMMARY_NAME, summary, indent=2)
    fp.write_stamp(out, stage="embed", outputs=[out / DESCRIPTORS_NAME], memo=memo, **stamp)
    return out


def _refresh_command(
    run_or_store: str | os.PathLike | RunDir, store: Path, ckpt: Path, out: Path, precision: str, features: bool,
    h5ad: bool,
) -> str:
    """The ``deepcycle embed`` command line that remakes this embedding (non-default settings spelled out)."""
    root = Path(run_or_store.root if isinstance(run_or_store, RunDir) else run_or_store)
    if os.path.abspath(root) == os.path.abspath(store):
        cmd = ["deepcycle embed --store", fp.display_path(store), "--checkpoint", fp.display_path(ckpt),
               "--out", fp.display_path(out)]
    else:
        run = RunDir(root)
        cmd = ["deepcycle embed --run", fp.display_path(root)]
        if os.path.abspath(ckpt) != os.path.abspath(run.checkpoint):
            cmd += ["--checkpoint", fp.display_path(ckpt)]
        if os.path.abspath(out) != os.path.abspath(run.embed):
            cmd += ["--out", fp.display_path(out)]
    if features:
        cmd.append("--features")
    if precision != "auto":
        cmd += ["--precision", precision]
    if not h5ad:
        cmd.append("--no-h5ad")
    return " ".join(cmd)


def _stamp_current(out: Path, stamp: dict[str, Any], memo: dict) -> bool:
    """Whether ``out``'s stamp vouches for these inputs; an output made before stamps existed (its
    summary fingerprint already matched) gets one now, so the trajectory stage accepts it."""
    if fp.read_stamp(out) is None:
        fp.write_stamp(out, stage="embed", outputs=[out / DESCRIPTORS_NAME], memo=memo, **stamp)
        return True
    try:
        fp.check_stamp(out, outputs=out / DESCRIPTORS_NAME, command=stamp["command"], inputs=stamp["inputs"],
                       params=stamp["params"], memo=memo)
    except fp.StaleInputError:
        return False
    return True


# ----------------------------------------------------------------------------------------------
# throughput (the chapter and benchmarks/embed.py)
# ----------------------------------------------------------------------------------------------
def throughput(
    run_or_store: str | os.PathLike | RunDir,
    checkpoint: str | os.PathLike | None = None,
    *,
    n_cells: int = 4096,
    batch_size: int = 512,
    bf16: bool | None = None,
    repeat: int = 1,
) -> pd.DataFrame:
    """Cells per second of the loader alone, the model alone (several layouts) and the whole pipeline.

    All on the first ``n_cells`` of the store, in this process, best of ``repeat``.  The baseline is
    the plain fp32 contiguous single-process model; ``ratio`` is each line's speed over it.  The
    loader must be faster than the model, or the network waits for data.  ``bf16=None`` includes the
    bf16 line only where the CPU runs bf16 natively.
    """
    import torch

    store_path, ckpt, _ = resolve_inputs(run_or_store, checkpoint, Path(os.devnull))
    ctx = _get_context(store_path, ckpt)
    n = min(int(n_cells), ctx.store.n_cells)
    ranges = [r for r in chunk_ranges(ctx.store.n_cells, ctx.store.chunk_cells) if r[0] < n]
    ranges[-1] = (ranges[-1][0], n)

    def best(fn) -> float:
        times = []
        for _ in range(max(1, repeat)):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return n / min(times)

    rows: list[tuple[str, float]] = []
    rows.append(("loader: read + normalise", best(lambda: [load_inputs(ctx, s, e) for s, e in ranges])))
    x = np.concatenate([load_inputs(ctx, s, e) for s, e in ranges])
    warm = x[: min(len(x), 32)]
    variants = [("model: fp32 contiguous (baseline)", "fp32", False), ("model: fp32 channels-last", "fp32", True)]
    if bf16 or (bf16 is None and native_bf16()):
        variants.append(("model: bf16 autocast channels-last", "bf16", True))
    for name, prec, cl in variants:
        model = _prepare_model(ctx, cl)
        run_model(model, warm, batch_size=batch_size, precision=prec, features=False, channels_last=cl)
        rows.append((name, best(lambda: run_model(model, x, batch_size=batch_size, precision=prec, features=False,
                                                  channels_last=cl))))
    del x
    prec = resolve_precision("auto")
    rows.append((f"pipeline: prefetching reader + model ({prec}, channels-last)",
                 best(lambda: list(_iter_local(store_path, ckpt, ranges, batch_size, prec, False, True)))))
    base = rows[1][1]
    return pd.DataFrame({"what": [r[0] for r in rows], "cells_per_s": [r[1] for r in rows],
                         "ratio_vs_baseline": [r[1] / base for r in rows],
                         "torch_threads": torch.get_num_threads()})


def _sha256(path: Path) -> str:
    return fp.file_digest(path)


def _up_to_date(out: Path, fingerprint: dict[str, Any]) -> bool:
    """Whether ``out`` holds a finished embedding made with exactly these inputs and settings."""
    try:
        old = json.loads((out / SUMMARY_NAME).read_text()).get("fingerprint")
    except (OSError, json.JSONDecodeError):
        return False
    files = [out / DESCRIPTORS_NAME] + ([out / H5AD_NAME] if fingerprint["h5ad"] else [])
    return old == fingerprint and all(f.exists() for f in files)


def read_descriptors(run_or_dir: str | os.PathLike | RunDir) -> pd.DataFrame:
    """The descriptor table of a run (or an embed folder), once its stamp vouches for it.

    A missing file raises FileNotFoundError. The file must be what the embed stage wrote from the
    inputs as they are now (:mod:`deepcycle_core.data.fingerprint`): a run's ``embed/descriptors.parquet``
    from the run's current store and a current checkpoint, an embed folder's from the store and
    checkpoint its stamp records -- else :class:`~deepcycle_core.data.fingerprint.StaleInputError`
    naming the file and the ``deepcycle embed`` command that remakes it (a file edited by hand, or one
    without a stamp, is refused too).
    """
    root = Path(run_or_dir.embed if isinstance(run_or_dir, RunDir) else run_or_dir)
    path = root / DESCRIPTORS_NAME if (root / DESCRIPTORS_NAME).exists() else root / "embed" / DESCRIPTORS_NAME
    if not path.exists():
        raise FileNotFoundError(f"{path}: no descriptors (run `deepcycle embed` first)")
    folder = path.parent
    run = RunDir(folder.parent)
    if os.path.abspath(path) == os.path.abspath(run.descriptors) and (run.store / "meta.json").is_file():
        fp.check_descriptors(run)  # the run's own: its store and checkpoint, most upstream first
    else:
        fp.check_stamp(folder, outputs=path, command=f"deepcycle embed --out {fp.display_path(folder)} "
                       "--store <its store> --checkpoint <its checkpoint>")
    df = pd.read_parquet(path)
    need = ["cell_id", "d0", "d1", "d2", "d3"]
    if list(df.columns[:5]) != need:
        raise ValueError(f"{path}: expected columns {need} first, got {list(df.columns[:5])}")
    return df


# ----------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------
def register_cli(subparsers: Any) -> None:
    from ..__main__ import add_command
    from ..data.values import positive_int

    p = add_command(subparsers, "embed", description=__doc__.splitlines()[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", help="run folder (uses store/, train/best.pt, writes embed/; refuses a stale best.pt)")
    src.add_argument("--store", help="cell store folder (needs --checkpoint and --out)")
    p.add_argument("--checkpoint", help="checkpoint file (default: <run>/train/best.pt)")
    p.add_argument("--out", help="output folder (default: <run>/embed)")
    p.add_argument("--features", action="store_true", help="also store the pooled backbone features f0..fK")
    p.add_argument("--batch-size", type=positive_int, default=512)
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="auto: bf16 only where the CPU has native bf16 (emulated bf16 is ~10x slower)")
    dist = p.add_mutually_exclusive_group()
    dist.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://10.0.0.1:8786")
    dist.add_argument("--local-cluster", action="store_true", help="run on a Dask LocalCluster on this machine")
    p.add_argument("--workers", type=positive_int, default=2, help="LocalCluster workers (default 2)")
    p.add_argument("--no-h5ad", action="store_true", help="skip the AnnData export")
    p.add_argument("--reuse", action="store_true", help="skip when the output already matches checkpoint and store")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cli_embed)


def _cli_embed(args: argparse.Namespace) -> int:
    if args.store and (args.checkpoint is None or args.out is None):
        raise ValueError("--store needs --checkpoint and --out")
    out = embed(
        args.run or args.store, args.checkpoint, args.out, batch_size=args.batch_size, features=args.features,
        scheduler=args.scheduler, local_cluster=args.local_cluster, n_workers=args.workers,
        precision=args.precision, h5ad=not args.no_h5ad, reuse=args.reuse, progress=not args.quiet,
    )
    summary = json.loads((out / SUMMARY_NAME).read_text())
    print(f"embedded {summary['n_cells']} cells in {summary['seconds']} s "
          f"({summary['cells_per_s']} cells/s, {summary['executor']}, {summary['precision']}) -> {out}")
    return 0
