"""Training the DeepCycle network on the 4-class FUCCI proxy task, resumably, on CPU, GPU or DDP.

The classes are only a proxy: a network that must tell the four FUCCI states apart from Hoechst and
brightfield alone is pushed to encode the continuous morphology of the cycle, and its 4 outputs
(``log(softmax + 1e-7)``) become the descriptor the later chapters turn into a ring.

Repeatability is designed in: every random choice (initial weights, the cells of an epoch, their
order, the augmentation of every batch) is a function of ``(seed, epoch, batch)``, and a checkpoint
holds model, optimizer, scheduler, running epoch sums, history and RNG states, so ``resume=True``
continues an interrupted run to the same weights as an uninterrupted one. The checkpoint format
(atomic writes, ``weights_only=True`` reads) is :mod:`deepcycle_core.net.checkpoint`, shared with inference.

Outputs (``out_dir``): ``last.pt`` (every epoch, and every ``checkpoint_every`` batches), ``best.pt``
(best validation accuracy), ``history.csv``, ``split.parquet``, ``summary.json``, and ``stamp.json``
recording the store that ``split.parquet`` and ``best.pt`` were made from, which the later stages
check (see :mod:`deepcycle_core.data.fingerprint`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader

from . import dataset as D
from ..data import fingerprint as fp
from ..data.atomic import write_csv_atomic, write_json_atomic
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .checkpoint import load_model
from .cycle_targets import as_unit_vectors, cycle_targets, doubling_time_of_store_cells
from ..data.fucci import CLASS_NAMES  # the class names live with the gating rule
from .model import PRESETS, Preset, build_model, get_preset, use_bf16
from .normalise import NORMALISATION
from ..data.runs import RunDir, resolve_run
from ..data.store import CellStore, open_store
from ..data.values import non_negative_int, positive_float, positive_int, whole_number

__all__ = [
    "CYCLE_LABELS", "KILL_ENV", "CycleLabels", "confusion_metrics", "evaluate", "refresh_command", "register_cli", "train", "weights_digest",
]

#: Where the cycle head's labels come from: the movie's visible events, or (a reference) the simulator's truth.
CYCLE_LABELS: tuple[str, ...] = ("movie", "oracle")

#: Test hook: SIGKILL this process after this many optimizer steps (simulates a crash mid-epoch).
KILL_ENV = "DEEPCYCLE_TRAIN_KILL_AFTER_STEPS"


# ----------------------------------------------------------------------------------------------
# resumable state
# ----------------------------------------------------------------------------------------------
def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "python": list(random.getstate()[1]),
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state((n[0], np.asarray(n[1], dtype=np.uint32), n[2], n[3], n[4]))
    random.setstate((3, tuple(state["python"]), None))


def weights_digest(model: nn.Module) -> str:
    """sha256 of every parameter and buffer (bit-exact comparison of two models)."""
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


# ----------------------------------------------------------------------------------------------
# devices and processes
# ----------------------------------------------------------------------------------------------
def _setup(device: str) -> tuple[torch.device, int, int, bool]:
    """(device, rank, world, created_group). DDP when WORLD_SIZE > 1 (as set by torchrun)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        device = f"cuda:{local}" if torch.cuda.is_available() else "cpu"
    elif device == "cuda":
        device = f"cuda:{local}"
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' requested but no CUDA device is available")
        torch.cuda.set_device(dev)
    created = False
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
        created = True
    rank = dist.get_rank() if world > 1 else 0
    return dev, rank, world, created


# ----------------------------------------------------------------------------------------------
# evaluation
# ----------------------------------------------------------------------------------------------
def _autocast(dev: torch.device, enabled: bool):
    return torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=enabled)


@torch.no_grad()
def evaluate(
    model: nn.Module, data: D.TrainingData, idx: np.ndarray, dev: torch.device, preset: Preset, batch_size: int = 256,
    bf16: bool = False, cycle: "CycleLabels | None" = None,
) -> dict[str, Any]:
    """Loss, accuracy, per-class recall and confusion matrices on the cells ``idx`` (no augmentation);
    with ``cycle`` also the cycle head's loss and circular error (hours) on the cells that have a target."""
    model.eval()
    ys, preds, loss_sum = [], [], 0.0
    cyc_err, cyc_loss = [], 0.0
    mf = torch.channels_last if preset.channels_last else torch.contiguous_format
    for x, y, cid in data.batches(np.sort(idx), batch_size):
        x = x.to(dev, memory_format=mf)
        y = y.to(dev)
        with _autocast(dev, bf16):
            logits, cyc = model.heads(x)
        logits = logits.float()
        loss_sum += float(nn.functional.cross_entropy(logits, y, reduction="sum"))
        ys.append(y.cpu().numpy())
        preds.append(logits.argmax(1).cpu().numpy())
        if cycle is not None and cyc is not None:
            tgt, known = cycle.batch(cid, dev)
            if bool(known.any()):
                out = cyc[known]
                cyc_loss += float(model.cycle_loss(out, tgt[known])) * int(known.sum())
                vec = model.cycle_vector(out)
                got = torch.atan2(vec[:, 1], vec[:, 0])
                want = torch.atan2(tgt[known, 1], tgt[known, 0])
                cyc_err.append(torch.abs(torch.remainder(got - want + math.pi, 2 * math.pi) - math.pi).cpu().numpy())
    y = np.concatenate(ys) if ys else np.zeros(0, np.int64)
    p = np.concatenate(preds) if preds else np.zeros(0, np.int64)
    out = confusion_metrics(y, p) | {"loss": loss_sum / max(len(y), 1)}
    if cycle is not None:
        err = np.concatenate(cyc_err) if cyc_err else np.zeros(0)
        out["cycle_n"] = int(len(err))
        out["cycle_loss"] = cyc_loss / max(len(err), 1)
        out["cycle_mae_h"] = float(err.mean() / (2 * math.pi) * cycle.T_hours) if len(err) else float("nan")
    return out


class CycleLabels:
    """The cycle head's targets for every store cell, as tensors looked up by cell id in each batch."""

    def __init__(self, store: CellStore, T_hours: float | None = None, oracle: bool = False) -> None:
        cells = store.cells
        if oracle and "true_age" not in cells.columns:
            raise ValueError(f"{store.path}: oracle cycle labels need the simulator's true_age column")
        if T_hours is not None:
            T = float(T_hours)
        else:
            try:
                T = doubling_time_of_store_cells(cells)
            except ValueError as exc:
                raise ValueError(
                    f"{store.path}: the cycle head needs a cycle length and the growth curve gives none ({exc}); "
                    "give it (cycle_T_hours=..., --cycle-T-hours) or train the 4 classes alone (cycle_weight=0)"
                ) from exc
        dt_h = float(store.meta["frame_interval_min"]) / 60.0
        t = cycle_targets(cells, dt_h, T)
        self.T_hours = float(T)
        self.counts = t.counts()
        self.position = t.position
        if oracle:  # every cell's true position (a reference; never a method)
            self.position = np.mod(cells["true_age"].to_numpy(dtype=np.float64), 1.0)
            self.counts = {"oracle": int(np.isfinite(self.position).sum())}
        vec = as_unit_vectors(self.position)
        self.known = torch.from_numpy(np.isfinite(vec[:, 0]))
        self.vectors = torch.from_numpy(np.nan_to_num(vec))

    def n_known(self, idx: np.ndarray) -> int:
        return int(self.known[torch.from_numpy(np.asarray(idx, np.int64))].sum())

    def batch(self, cell_ids: torch.Tensor, dev: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(targets (B, 2), known (B,) bool) of a batch's cells."""
        return self.vectors[cell_ids].to(dev), self.known[cell_ids].to(dev)


def confusion_metrics(y: np.ndarray, pred: np.ndarray, n_classes: int = 4) -> dict[str, Any]:
    """Accuracy, per-class recall and the confusion matrix (counts and rows normalised to 1)."""
    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(counts, (y, pred), 1)
    rows = counts.sum(1, keepdims=True)
    norm = np.divide(counts, rows, out=np.zeros_like(counts, dtype=float), where=rows > 0)
    return {
        "n": int(len(y)),
        "accuracy": float((y == pred).mean()) if len(y) else float("nan"),
        "recall": np.diag(norm).tolist(),
        "confusion": norm.tolist(),
        "confusion_counts": counts.tolist(),
    }


# ----------------------------------------------------------------------------------------------
# training
# ----------------------------------------------------------------------------------------------
def _make_optimizer(model: nn.Module, p: Preset) -> torch.optim.Optimizer:
    if p.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=p.lr, momentum=p.momentum, nesterov=True, weight_decay=p.weight_decay)
    return torch.optim.AdamW(model.parameters(), lr=p.lr, weight_decay=p.weight_decay)


def _make_scheduler(opt: torch.optim.Optimizer, p: Preset, total_steps: int):
    if p.schedule == "onecycle" and total_steps >= 4:  # OneCycleLR needs >= 2 steps in each phase
        pct = max(0.25, 2.0 / total_steps)
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=p.lr, total_steps=total_steps, pct_start=pct)
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)


def refresh_command(
    store_path: Path, out: Path, p: Preset, mode: str, epochs: int, seed: int, samples_per_epoch: int | None,
    val_cells: int | None, heldout_cells: int | None, pretrained: Any = "auto",
) -> str:
    """The ``deepcycle train`` command line that remakes this run (non-default settings spelled out).

    Recorded in ``stamp.json`` so a later stage that finds the split or checkpoint stale can say how to
    refresh it with the settings it was made with, not the CLI defaults.
    """
    is_run = store_path.name == "store"
    source = store_path.parent if is_run else store_path
    cmd = ["deepcycle train --store", fp.display_path(source)]
    default_out = RunDir(source).train_dir(mode) if is_run else None
    if default_out is None or os.path.abspath(out) != os.path.abspath(default_out):
        cmd += ["--out", fp.display_path(out)]
    if p.name != "default":
        cmd += ["--preset", p.name]
    if mode != "both":
        cmd += ["--mode", mode]
    cmd += ["--epochs", str(epochs)]
    if seed != 0:
        cmd += ["--seed", str(seed)]
    for flag, value in (("--samples-per-epoch", samples_per_epoch), ("--val-cells", val_cells),
                        ("--heldout-cells", heldout_cells)):
        if value is not None:
            cmd += [flag, str(int(value))]
    if pretrained != "auto":
        cmd += ["--pretrained", "none" if pretrained in (None, False) else fp.display_path(str(pretrained))]
    base = PRESETS.get(p.name)
    if base is not None:
        for key, flag in (("batch_size", "--batch-size"), ("lr", "--lr"), ("cycle_weight", "--cycle-weight")):
            if getattr(p, key) != getattr(base, key):
                cmd += [flag, str(getattr(p, key))]
        other = {k: v for k, v in p.to_dict().items()
                 if k not in ("name", "batch_size", "lr", "epochs", "cycle_weight") and v != getattr(base, k)}
        if other:
            cmd.append(f"(plus preset overrides {other}: train(..., **overrides) in Python)")
    return " ".join(cmd)


def _stamp_current(out: Path, stamp: dict[str, Any]) -> bool:
    """Whether ``out``'s stamp vouches for a finished run on this very store with this config; a run
    finished before stamps existed (its config already matched) gets one now."""
    outputs = [out / RunDir.SPLIT_NAME, out / RunDir.CHECKPOINT_NAME]
    if fp.read_stamp(out) is None:
        fp.write_stamp(out, stage="train", outputs=outputs, **stamp)
        return True
    try:
        fp.check_stamp(out, outputs=outputs, command=stamp["command"], inputs=stamp["inputs"], params=stamp["params"])
    except fp.StaleInputError:
        return False
    return True


def train(
    source: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    *,
    preset: str | Preset = "default",
    mode: str = "both",
    epochs: int | None = None,
    seed: int = 0,
    resume: bool = False,
    device: str = "auto",
    progress: bool = True,
    samples_per_epoch: int | None = None,
    val_cells: int | None = None,
    heldout_cells: int | None = None,
    val_fraction: float = 0.2,
    num_workers: int = 0,
    buffer_chunks: int = 4,
    pretrained: bool | str | os.PathLike | None = "auto",
    checkpoint_every: int | None = None,
    threads: int | None = None,
    deterministic: bool = True,
    reuse: bool = False,
    cycle_T_hours: float | None = None,
    cycle_labels: str = "movie",
    **overrides: Any,
) -> dict[str, Any]:
    """Train on the store in ``source`` (a run folder or a store folder); return the summary.

    ``samples_per_epoch`` cells are drawn per epoch (class-balanced with replacement under the
    ``sampler`` balance; default: as many as there are training cells) so a small CPU budget still
    sees every class often. ``val_cells``/``heldout_cells`` cap the fixed seeded subsets evaluated
    each epoch / at the end. ``overrides`` change preset fields (e.g. ``batch_size=32``, ``lr=1e-3``).
    ``cycle_T_hours`` sets the cycle length of the cycle head's targets (default: the doubling time of the
    store's growth curve). ``cycle_labels="oracle"`` trains the cycle head on the simulator's TRUE age of
    every non-held-out cell, the excluded relatives included (a reference of what the network could read
    with perfect labels, never a method; needs a simulated store). ``reuse=True`` returns the existing ``summary.json`` without training when ``out_dir`` already
    holds a finished run with exactly these settings on this very store (as the book does on re-runs).
    Under ``torchrun`` (WORLD_SIZE > 1) every rank trains on its slice of each global batch and rank 0
    writes the outputs; every rank returns ``{'rank', 'weights_sha256', ...}``.
    """
    p = get_preset(preset, **overrides)
    if cycle_labels not in CYCLE_LABELS:
        raise ValueError(f"cycle_labels must be one of {CYCLE_LABELS}, got {cycle_labels!r}")
    epochs = whole_number("epochs", epochs if epochs is not None else p.epochs)
    whole_number("batch_size", p.batch_size)  # 0 would divide by zero counting the batches
    # None means "the default"; a 0 (or negative, fractional, non-finite) count is an error, not None.
    # val_cells / heldout_cells of 0 would score nothing: a NaN accuracy, and no best epoch to keep.
    for name, value in (("samples_per_epoch", samples_per_epoch), ("threads", threads), ("checkpoint_every", checkpoint_every),
                        ("val_cells", val_cells), ("heldout_cells", heldout_cells)):
        if value is not None:
            whole_number(name, value)
    if threads is not None:
        torch.set_num_threads(int(threads))
    store_path, run = resolve_run(source)
    # a bare store's default output is beside it, as if its parent were the run folder
    out = Path(out_dir) if out_dir is not None else (run or RunDir(store_path.parent)).train_dir(mode)
    store = open_store(store_path)
    dev, rank, world, created = _setup(device)
    prev_det = torch.are_deterministic_algorithms_enabled()
    if deterministic:
        if dev.type == "cuda":
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        return _train(
            store, out, p, mode, epochs, seed, resume, dev, rank, world, progress, samples_per_epoch, val_cells,
            heldout_cells, val_fraction, num_workers, buffer_chunks, pretrained, checkpoint_every, reuse,
            cycle_T_hours, cycle_labels,
        )
    finally:
        torch.use_deterministic_algorithms(prev_det)
        if created and dist.is_initialized():
            dist.destroy_process_group()


def _fresh_sums() -> list[float | int]:
    """This rank's running sums over an epoch: loss sum, correct, count, cycle loss sum, cycle count."""
    return [0.0, 0, 0, 0.0, 0]


@dataclass
class _Run:
    """A training run under way, handed between the steps of :func:`_train`.

    The first fields are fixed by the call; ``data`` .. ``steps`` by :func:`_load_data` (which writes nothing); ``model`` ..
    ``amp`` by :func:`_build_model`; the last ones are the state that ``last.pt`` carries across a resume.
    """

    store: CellStore
    out: Path
    p: Preset
    mode: str
    epochs: int
    seed: int
    dev: torch.device
    rank: int
    world: int
    progress: bool
    data: Any = None
    split: Any = None  # the split table, and whether this run made it (to be written) or read it from disk
    new_split: bool = False
    train_idx: Any = None
    val_idx: Any = None
    heldout_idx: Any = None
    n_epoch: int = 0
    steps: int = 0
    model: Any = None
    net: Any = None  # the model, or its DDP wrapper under torchrun
    opt: Any = None
    sched: Any = None
    criterion: Any = None
    cycle: CycleLabels | None = None
    cycle_labels: str = "movie"  # or "oracle" (the simulator's true ages; a reference, never a method)
    info: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    mf: Any = None
    amp: bool = False
    start_epoch: int = 0
    start_batch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best_acc: float = -1.0
    best_epoch: int = -1
    running: list[float | int] = field(default_factory=_fresh_sums)

    @property
    def last_path(self) -> Path:
        return self.out / RunDir.LAST_CHECKPOINT_NAME

    @property
    def best_path(self) -> Path:
        return self.out / RunDir.CHECKPOINT_NAME


def _train(
    store: CellStore, out: Path, p: Preset, mode: str, epochs: int, seed: int, resume: bool, dev: torch.device,
    rank: int, world: int, progress: bool, samples_per_epoch: int | None, val_cells: int | None,
    heldout_cells: int | None, val_fraction: float, num_workers: int, buffer_chunks: int,
    pretrained: Any, checkpoint_every: int | None, reuse: bool = False, cycle_T_hours: float | None = None,
    cycle_labels: str = "movie",
) -> dict[str, Any]:
    t_start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    run = _Run(store, out, p, mode, epochs, seed, dev, rank, world, progress)
    run.cycle_labels = cycle_labels
    last_path, best_path = run.last_path, run.best_path
    split_path, summary_path = out / RunDir.SPLIT_NAME, out / RunDir.SUMMARY_NAME
    ckpt = load_checkpoint(last_path) if resume and last_path.exists() else None
    if resume and ckpt is None and rank == 0 and progress:
        print(f"resume: no {last_path.name} in {out.name}/, starting from scratch")

    _load_data(run, split_path, ckpt is not None, val_fraction, val_cells, heldout_cells, samples_per_epoch)
    config = run.config = _run_config(run, val_fraction, buffer_chunks, val_cells, heldout_cells, cycle_T_hours)
    stamp = {
        "inputs": {"store": store.path}, "params": config,
        "command": refresh_command(store.path, out, p, mode, epochs, seed, samples_per_epoch, val_cells, heldout_cells,
                                   pretrained) + (f" --cycle-T-hours {cycle_T_hours:g}" if cycle_T_hours is not None else ""),
        "root": store.path.parent if store.path.name == "store" else None,  # the run folder the command names
    }
    if reuse and world == 1 and summary_path.exists() and last_path.exists():
        done = load_checkpoint(last_path)
        if (done.get("config") == config and int(done["epoch"]) == epochs and best_path.exists()
                and _stamp_current(out, stamp)):
            return json.loads(summary_path.read_text()) | {"reused": True}

    _build_model(run, None if ckpt is not None else pretrained, cycle_T_hours)
    if ckpt is not None:
        _resume_from(run, ckpt)
    # every check has passed: from here best.pt and the split are rewritten, so no record vouches for
    # them until the stamp at the end; a run that fails takes back the split it wrote (a resume remakes
    # the same one from the store and the seed), so no unstamped split outlives a failed run
    wrote_split = rank == 0 and _commit_split(run, split_path)
    try:
        _train_epochs(run, num_workers, buffer_chunks, checkpoint_every)
        digest = weights_digest(run.model)
        if rank != 0:
            return {"rank": rank, "weights_sha256": digest}
        summary = _summary(run, digest, t_start)
        write_json_atomic(summary_path, summary, indent=2)
        fp.write_stamp(out, stage="train", outputs=[split_path, best_path], **stamp)
    except BaseException:  # Ctrl-C too (a killed run leaves it, beside last.pt, for the resume to read)
        if wrote_split:
            split_path.unlink(missing_ok=True)
        raise
    return summary


def _commit_split(run: _Run, split_path: Path) -> bool:
    """Remove the old stamp, then write the split when this run made it; whether it wrote one."""
    fp.remove_stamp(run.out)
    if run.new_split:
        D.write_split(run.split, split_path)
    return run.new_split


def _load_data(
    run: _Run, split_path: Path, resumed: bool, val_fraction: float, val_cells: int | None,
    heldout_cells: int | None, samples_per_epoch: int | None,
) -> None:
    """The split (the one on disk when resuming), the labelled cells of each part, and the steps per epoch."""
    store = run.store
    run.new_split = not (resumed and split_path.exists())
    if run.new_split:  # written only once every check has passed (_commit_split)
        split = D.make_split(store.cells, val_fraction=val_fraction, seed=run.seed)
    else:
        split = D.read_split(split_path)
    run.split = split
    data = D.TrainingData.from_store(store, run.mode, split=split)
    train_idx = data.indices("train")
    if run.cycle_labels == "oracle":  # the oracle reference trains on every non-held-out cell
        train_idx = np.sort(np.concatenate([train_idx, data.indices("excluded")]))
    if len(train_idx) == 0:
        raise ValueError(f"{store.path}: no labelled training cells (class >= 0) outside the held-out tracks")
    D.class_weights(data.labels[train_idx])  # raises naming the empty class
    run.data, run.train_idx = data, train_idx
    run.val_idx = data.subset("val", val_cells, run.seed)
    run.heldout_idx = data.subset("heldout", heldout_cells, run.seed)
    run.n_epoch = int(samples_per_epoch or len(train_idx))
    global_batch = run.p.batch_size * run.world
    run.steps = run.n_epoch // global_batch
    if run.steps < 1:
        raise ValueError(
            f"{store.path}: {run.n_epoch} training samples per epoch is fewer than one batch of {global_batch}"
        )


def _run_config(
    run: _Run, val_fraction: float, buffer_chunks: int, val_cells: int | None, heldout_cells: int | None,
    cycle_T_hours: float | None,
) -> dict[str, Any]:
    """The settings a resume must find unchanged (and a reuse identical) in ``last.pt``."""
    store = run.store
    config = {
        "preset": run.p.to_dict(), "mode": run.mode, "seed": int(run.seed), "epochs": run.epochs,
        "samples_per_epoch": run.n_epoch, "val_fraction": float(val_fraction), "world_size": run.world,
        "n_cells": store.n_cells, "channels": _channel_names(run),
        "buffer_chunks": int(buffer_chunks), "store_created": str(store.meta.get("provenance", {}).get("created")),
        "val_cells": val_cells, "heldout_cells": heldout_cells,
    }
    if cycle_T_hours is not None:
        config["cycle_T_hours"] = float(cycle_T_hours)
    if run.cycle_labels != "movie":
        config["cycle_labels"] = run.cycle_labels
    return config


def _channel_names(run: _Run) -> list[str]:
    """The store's names of the channels the network reads."""
    return [run.store.channels[c] for c in run.data.channels]


def _build_model(run: _Run, pretrained: Any, cycle_T_hours: float | None) -> None:
    """Seeded initial weights, optimiser, scheduler, losses and the checkpoints' ``info``."""
    p, dev, data = run.p, run.dev, run.data
    torch.manual_seed(run.seed)
    model = build_model(p, len(data.channels), pretrained=pretrained)
    run.mf = torch.channels_last if p.channels_last else torch.contiguous_format
    run.amp = use_bf16(p.bf16, dev)
    run.model = run.net = model.to(dev, memory_format=run.mf)
    run.opt = _make_optimizer(run.model, p)
    run.sched = _make_scheduler(run.opt, p, run.epochs * run.steps)
    loss_w = torch.as_tensor(D.class_weights(data.labels[run.train_idx])).to(dev) if p.balance == "loss" else None
    run.criterion = nn.CrossEntropyLoss(weight=loss_w)
    cycle = run.cycle = CycleLabels(run.store, cycle_T_hours, oracle=run.cycle_labels == "oracle") if p.cycle_weight > 0 else None
    if cycle is not None and cycle.n_known(run.train_idx) == 0:
        raise ValueError(
            f"{run.store.path}: no training cell has a cycle target (no track born or dividing in the movie outside "
            "the held-out ones); train the 4 classes alone with cycle_weight=0"
        )
    run.info = {
        "in_channels": len(data.channels), "backbone": p.backbone, "truncate": p.truncate, "n_classes": 4,
        "cycle_head": cycle is not None, "cycle_bins": int(p.cycle_bins) if cycle is not None else 0,
        "mode": run.mode, "channels": _channel_names(run), "roles": list(D.MODES[run.mode]), "preset": p.name,
        "class_names": list(CLASS_NAMES), "crop_size": int(run.store.crops.shape[-1]), "normalisation": NORMALISATION,
        "pretrained_from": model.pretrained_from, "seed": int(run.seed),
    }
    if cycle is not None:
        run.info["cycle_T_hours"] = cycle.T_hours
        run.info["cycle_targets"] = cycle.counts


def _resume_from(run: _Run, ckpt: dict[str, Any]) -> None:
    """Carry on from ``last.pt``: weights, optimiser, scheduler, RNG states, position, sums, history, best."""
    config = run.config
    old = ckpt.get("config", {})
    diff = sorted(k for k in config if old.get(k) != config[k])
    if diff:
        raise CheckpointError(
            f"{run.last_path}: cannot resume, the run was started with different {diff} "
            f"({ {k: old.get(k) for k in diff} } vs { {k: config[k] for k in diff} })"
        )
    run.model.load_state_dict(ckpt["model"])
    run.opt.load_state_dict(ckpt["optimizer"])
    run.sched.load_state_dict(ckpt["scheduler"])
    _set_rng_state(ckpt["rng"])
    run.start_epoch, run.start_batch = int(ckpt["epoch"]), int(ckpt["batch"])
    run.history = list(ckpt["history"])
    run.best_acc, run.best_epoch = float(ckpt["best_acc"]), int(ckpt["best_epoch"])
    run.running = list(ckpt["running"]) + [0.0, 0][: max(0, 5 - len(ckpt["running"]))]
    run.info["pretrained_from"] = ckpt["info"].get("pretrained_from")


def _save_last(run: _Run, epoch: int, batch: int) -> None:
    """``last.pt``: everything a resume at (``epoch``, ``batch``) needs."""
    save_checkpoint(
        run.last_path, "last", info=run.info, config=run.config,
        model={k: v.detach().cpu() for k, v in run.model.state_dict().items()},
        optimizer=run.opt.state_dict(), scheduler=run.sched.state_dict(), epoch=epoch, batch=batch,
        running=run.running, history=run.history, best_acc=run.best_acc, best_epoch=run.best_epoch, rng=_rng_state(),
    )


def _train_epochs(run: _Run, num_workers: int, buffer_chunks: int, checkpoint_every: int | None) -> None:
    """Every epoch from where the run stands: its batches, then sync, evaluate, checkpoint."""
    if run.world > 1:
        dev = run.dev
        run.net = nn.parallel.DistributedDataParallel(run.model, device_ids=[dev.index] if dev.type == "cuda" else None)
    kill_after = int(os.environ.get(KILL_ENV, "0") or 0)
    step = run.start_epoch * run.steps + run.start_batch
    for epoch in range(run.start_epoch, run.epochs):
        step = _train_epoch(run, epoch, step, kill_after, num_workers, buffer_chunks, checkpoint_every)
        run.start_batch = 0
        _end_epoch(run, epoch)


def _train_epoch(
    run: _Run, epoch: int, step: int, kill_after: int, num_workers: int, buffer_chunks: int,
    checkpoint_every: int | None,
) -> int:
    """One epoch's optimizer steps on this rank (from ``start_batch`` when resuming into it); the step count after."""
    from tqdm.auto import tqdm

    p, dev, steps, cycle = run.p, run.dev, run.steps, run.cycle
    sample = D.epoch_sample(run.train_idx, run.data.labels[run.train_idx], run.n_epoch, run.seed, epoch, p.balance)
    order = D.chunk_order(sample, run.store.chunk_cells, buffer_chunks, run.seed, epoch)
    first = run.start_batch if epoch == run.start_epoch else 0
    if first == 0:
        run.running = _fresh_sums()
    running = run.running
    ds = run.data.batches(
        order, p.batch_size, augment=p.augment, seed=run.seed, epoch=epoch, start_batch=first, drop_last=True,
        rank=run.rank, world=run.world, zoom=D.SIZE_BLIND_ZOOM.get(run.mode, 0.0), nuclear=run.data.nuclear_positions,
    )
    loader = DataLoader(ds, batch_size=None, num_workers=num_workers, pin_memory=dev.type == "cuda")
    run.net.train()
    bar = tqdm(total=steps, initial=first, desc=f"{run.mode} epoch {epoch + 1}/{run.epochs}",
               disable=not run.progress or run.rank != 0, leave=True)
    for b, (x, y, cid) in enumerate(loader, start=first):
        x = x.to(dev, non_blocking=True, memory_format=run.mf)
        y = y.to(dev, non_blocking=True)
        with _autocast(dev, run.amp):
            logits, cyc = run.net(x, heads=True)  # through the DDP wrapper when there is one
        logits = logits.float()
        ce = run.criterion(logits, y)
        loss = ce
        if cycle is not None:
            tgt, known = cycle.batch(cid, dev)
            n_known = int(known.sum())
            if n_known:
                cyc_loss = run.model.cycle_loss(cyc[known], tgt[known])
                running[3] += float(cyc_loss.detach()) * n_known
                running[4] += n_known
            else:  # keep the head in the graph (DDP needs every parameter to get a gradient)
                cyc_loss = cyc.float().sum() * 0.0
            loss = loss + p.cycle_weight * cyc_loss
        run.opt.zero_grad(set_to_none=True)
        loss.backward()
        run.opt.step()
        run.sched.step()
        step += 1
        running[0] += float(ce.detach()) * len(y)
        running[1] += int((logits.argmax(1) == y).sum())
        running[2] += len(y)
        bar.update(1)
        if b % 5 == 0 or b == steps - 1:
            bar.set_postfix(loss=f"{running[0] / running[2]:.3f}", acc=f"{running[1] / running[2]:.3f}")
        if kill_after and step >= kill_after:
            os.kill(os.getpid(), signal.SIGKILL)  # test hook: a hard crash, nothing flushed
        if checkpoint_every and (b + 1) % checkpoint_every == 0 and b + 1 < steps and run.rank == 0:
            _save_last(run, epoch, b + 1)
    bar.close()
    return step


def _end_epoch(run: _Run, epoch: int) -> None:
    """End of epoch: sync the ranks, then on rank 0 evaluate, keep the best, checkpoint and log."""
    p, cycle = run.p, run.cycle
    totals = torch.tensor(run.running, dtype=torch.float64)
    if run.world > 1:
        dist.all_reduce(totals)
        for buf in run.model.buffers():  # DDP syncs parameters; make BN statistics identical too
            dist.broadcast(buf, 0)
    if run.rank == 0:
        ev = evaluate(run.model, run.data, run.val_idx, run.dev, p, bf16=run.amp, cycle=cycle)
        row = {
            "epoch": epoch + 1,
            "train_loss": float(totals[0] / totals[2]),
            "train_accuracy": float(totals[1] / totals[2]),
            "train_samples": int(totals[2]),
            "val_loss": ev["loss"],
            "val_accuracy": ev["accuracy"],
            "lr": float(run.opt.param_groups[0]["lr"]),
        }
        if cycle is not None:
            row |= {
                "train_cycle_loss": float(totals[3] / max(float(totals[4]), 1.0)),
                "val_cycle_loss": ev["cycle_loss"],
                "val_cycle_mae_h": ev["cycle_mae_h"],
            }
        run.history.append(row)
        # best = highest validation accuracy for the 4 classes alone; with the cycle head, the lowest
        # validation value of the objective trained (class loss + weight x cycle loss), negated
        score = ev["accuracy"] if cycle is None else -(ev["loss"] + p.cycle_weight * ev["cycle_loss"])
        if score > run.best_acc or run.best_epoch < 0:
            run.best_acc, run.best_epoch = score, epoch + 1
            save_checkpoint(
                run.best_path, "best", info=run.info | {"epoch": epoch + 1, "val_accuracy": ev["accuracy"]},
                config=run.config, model={k: v.detach().cpu() for k, v in run.model.state_dict().items()},
            )
        run.running = _fresh_sums()
        _save_last(run, epoch + 1, 0)
        write_csv_atomic(run.out / RunDir.HISTORY_NAME, pd.DataFrame(run.history), index=False)
        if run.progress:
            extra = f" | val cycle error {row['val_cycle_mae_h']:.2f} h" if cycle is not None else ""
            print(
                f"{run.mode} epoch {epoch + 1}/{run.epochs}: train loss {row['train_loss']:.3f} acc {row['train_accuracy']:.3f}"
                f" | val loss {row['val_loss']:.3f} acc {row['val_accuracy']:.3f}{extra}",
                flush=True,
            )
    else:
        run.running = _fresh_sums()
    if run.world > 1:
        dist.barrier()


def _summary(run: _Run, digest: str, t_start: float) -> dict[str, Any]:
    """``summary.json``: the best checkpoint evaluated on the validation and held-out cells, and the run's settings."""
    p, dev, data, cycle = run.p, run.dev, run.data, run.cycle
    best, _ = load_model(run.best_path, device=dev)
    best = best.to(memory_format=run.mf)
    val = evaluate(best, data, run.val_idx, dev, p, bf16=run.amp, cycle=cycle)
    held = evaluate(best, data, run.heldout_idx, dev, p, bf16=run.amp, cycle=cycle) if len(run.heldout_idx) else None
    cyc_keys = ("cycle_n", "cycle_mae_h")
    return {
        "mode": run.mode, "preset": p.name, "backbone": p.backbone, "truncate": p.truncate,
        "channels": _channel_names(run), "roles": list(D.MODES[run.mode]), "epochs": run.epochs,
        "size_blind_zoom": D.SIZE_BLIND_ZOOM.get(run.mode, 0.0), "best_epoch": run.best_epoch, "seed": int(run.seed), "samples_per_epoch": run.n_epoch,
        "batch_size": p.batch_size, "world_size": run.world, "device": dev.type, "bf16": run.amp,
        "n_labelled": {s: int(len(data.indices(s))) for s in D.SPLITS},
        "accuracy": val["accuracy"], "recall": val["recall"], "confusion": val["confusion"],
        "confusion_counts": val["confusion_counts"], "n_val_evaluated": val["n"],
        "heldout": None if held is None else {k: held[k] for k in ("n", "accuracy", "recall", "confusion") + cyc_keys if k in held},
        "cycle_head": cycle is not None,
        "cycle": None if cycle is None else {
            "T_hours": cycle.T_hours, "targets": cycle.counts, "weight": p.cycle_weight,
            "val_mae_h": val["cycle_mae_h"], "val_n": val["cycle_n"],
        },
        "class_names": list(CLASS_NAMES), "normalisation": NORMALISATION, "pretrained_from": run.info["pretrained_from"],
        "weights_sha256": digest, "train_seconds": round(time.perf_counter() - t_start, 1),
    }


# ----------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------
def register_cli(subparsers: argparse._SubParsersAction) -> None:
    from ..__main__ import add_command

    p = add_command(subparsers, "train")
    p.add_argument("--store", required=True, help="cell store folder, or a run folder holding store/")
    p.add_argument("--out", default=None, help="output folder (default: <run>/train[/<mode>])")
    p.add_argument("--preset", default="default", help="network + optimiser recipe: default or paper")
    p.add_argument("--mode", default="both", choices=sorted(D.MODES), help="input channels")
    p.add_argument("--epochs", type=positive_int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from <out>/last.pt")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--samples-per-epoch", type=positive_int, default=None)
    p.add_argument("--val-cells", type=positive_int, default=None,
                   help="validation cells scored each epoch to pick the best one (default: all)")
    p.add_argument("--heldout-cells", type=positive_int, default=None, help="held-out cells scored at the end (default: all)")
    p.add_argument("--batch-size", type=positive_int, default=None)
    p.add_argument("--lr", type=positive_float, default=None)
    p.add_argument("--cycle-weight", type=float, default=None, help="weight of the cycle head's loss (0: the 4 classes only)")
    p.add_argument("--cycle-T-hours", type=positive_float, default=None, help="cycle length of the cycle head's targets "
                   "(default: the doubling time of the store's growth curve)")
    p.add_argument("--workers", type=non_negative_int, default=0, help="DataLoader worker processes")
    p.add_argument("--pretrained", default="auto", help="auto (torch cache if present), none, or a weight file")
    p.add_argument("--checkpoint-every", type=positive_int, default=None, help="also save last.pt every N batches")
    p.add_argument("--threads", type=positive_int, default=None)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cli_train)


def _cli_train(args: argparse.Namespace) -> int:
    summary = train(
        args.store, args.out, preset=args.preset, mode=args.mode, epochs=args.epochs, seed=args.seed,
        resume=args.resume, device=args.device, progress=not args.no_progress,
        samples_per_epoch=args.samples_per_epoch, val_cells=args.val_cells, heldout_cells=args.heldout_cells,
        num_workers=args.workers, pretrained=args.pretrained, checkpoint_every=args.checkpoint_every,
        threads=args.threads, batch_size=args.batch_size, lr=args.lr, cycle_weight=args.cycle_weight,
        cycle_T_hours=args.cycle_T_hours,
    )
    if "accuracy" in summary:
        print(f"validation accuracy {summary['accuracy']:.3f} (best epoch {summary['best_epoch']})")
    return 0
