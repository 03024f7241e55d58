"""The reference networks: trained once by the project's own recipe, shipped with the book, with a card.

Why: a network retrained on another CPU (AVX2, AVX-512, AMX; fp32 or bf16) gives other numbers, and a
budget that nbval can afford is not one that converges. So the default chapters do not train: they
install the reference networks that ``make model`` (``deepcycle reference train``) trained once on the
default profile's simulated movie, and every later number follows from those weights and the data.
The smoke profile and the unit tests still train from scratch; chapter 02 can retrain with
``train_use_reference = False``.

What lives in ``data/reference/`` (committed; weights stored as float16, ~5.6 MB a network):

* ``<mode>.pt`` -- a DeepCycle checkpoint (``weights_only=True``) with the weights and the ``info``
  inference needs;
* ``card.json`` -- the recipe (preset, epochs, seed, threads), the data it was trained on (profile,
  simulator version and parameters, store cells), the command, the commit, the machine, per-epoch
  curves, validation and held-out figures of the stored (float16) weights, training time and images/s.

Installing (:func:`install_reference`) checks that the store is the one the card names (simulator
version, parameters and seed, the number of cells and tracks): weights from another movie would be
judged on cells they were trained on. It writes ``train/<mode>/best.pt``, ``summary.json``,
``history.csv``, ``split.parquet`` and ``stamp.json``, so embedding and the later stages read an
installed reference exactly like a network trained in place.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..data import fingerprint as fp
from ..data.atomic import write_csv_atomic, write_json_atomic, write_parquet_atomic
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .model import get_preset, use_bf16
from .reference_card import (  # the torch-free half: the card, the store check, the oracle outputs
    CARD_NAME, ORACLE_NAME, ReferenceError, oracle_predictions, read_card, reference_dir, store_identity,
)
from ..data.runs import RunDir, repo_root, resolve_run
from ..data.split import make_split, write_split
from ..data.store import open_store

__all__ = [
    "RECIPE", "export_reference", "install_reference", "load_reference", "register_cli", "train_oracle",
    "train_reference",
    # the torch-free half, handed on from .reference_card
    "CARD_NAME", "ORACLE_NAME", "ReferenceError", "oracle_predictions", "read_card", "reference_dir", "store_identity",
]

#: The reference recipe: the default preset (ResNet18 cut after stage 3, AdamW one-cycle, batch 128,
#: class-balanced sampling, dihedral augmentation, the cycle head) for 10 passes over the training cells.
#: ``both_sizeblind`` is the BF + nuclear network trained size-blind (a random zoom that keeps each
#: nucleus's integrated stain, :data:`deepcycle_core.net.dataset.SIZE_BLIND_ZOOM`): chapter 07 reads
#: treated populations with it, whose cells keep growing where the cycle stops.
RECIPE: dict[str, Any] = {
    "preset": "default",
    "epochs": 10,
    "samples_per_epoch": None,  # as many as training cells
    "val_cells": None,  # every validation cell
    "heldout_cells": None,  # every held-out cell, scored once at the end
    "seed": 0,
    "modes": ["both", "bf_only", "nuclear_only", "both_sizeblind"],
}


def _machine() -> dict[str, Any]:
    flags = ""
    try:
        flags = Path("/proc/cpuinfo").read_text().split("flags", 1)[1].split("\n", 1)[0]
    except (OSError, IndexError):
        pass
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "avx512": "avx512f" in flags,
        "amx": "amx_tile" in flags,
        "native_bf16": use_bf16("auto", "cpu"),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }


def _commit() -> str:
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=12"], cwd=repo_root(Path(__file__).parent),
                             capture_output=True, text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def export_reference(train_dir: Path, out: Path, mode: str) -> Path:
    """Write ``<out>/<mode>.pt``: the best checkpoint's weights as float16 (inference reads float32)."""
    ckpt = load_checkpoint(train_dir / RunDir.CHECKPOINT_NAME)
    half = {k: (v.half() if v.is_floating_point() else v) for k, v in ckpt["model"].items()}
    return save_checkpoint(out / f"{mode}.pt", "reference", info=ckpt["info"], config=ckpt.get("config", {}), model=half)


def _network(ckpt: dict[str, Any]) -> Any:
    """The float32 network (eval, channels-last) of a loaded reference checkpoint."""
    from .model import DeepCycleNet

    info = ckpt["info"]
    net = DeepCycleNet(int(info["in_channels"]), str(info["backbone"]), bool(info["truncate"]), pretrained=None,
                       cycle_head=bool(info.get("cycle_head", False)), cycle_bins=int(info.get("cycle_bins", 0)))
    net.load_state_dict(ckpt["model"])
    return net.eval().to(memory_format=torch.channels_last)


def _load_reference_weights(path: Path) -> dict[str, Any]:
    ckpt = load_checkpoint(path)
    if ckpt.get("kind") != "reference":
        raise CheckpointError(f"{path}: not a reference checkpoint (kind {ckpt.get('kind')!r})")
    ckpt["model"] = {k: (v.float() if v.is_floating_point() else v) for k, v in ckpt["model"].items()}
    return ckpt


def load_reference(mode: str = "both", folder: str | os.PathLike | None = None) -> tuple[Any, dict[str, Any]]:
    """The reference network of ``mode`` (float32, eval mode, channels-last) and its ``info``: for reading
    your own crops without training. The file must be the one the card records."""
    folder = Path(folder or reference_dir())
    ckpt = _checked_weights(folder, read_card(folder), mode)
    return _network(ckpt), ckpt["info"]


def _checked_weights(folder: Path, card: dict[str, Any], mode: str) -> dict[str, Any]:
    """The reference checkpoint of ``mode`` (float32), after checking it is the file the card records."""
    net = card["networks"].get(mode)
    if net is None:
        raise ReferenceError(f"{folder / CARD_NAME}: no reference network for mode {mode!r} (have {sorted(card['networks'])})")
    path = folder / net["file"]
    if not path.is_file() or fp.file_digest(path) != net["sha256"]:
        raise ReferenceError(f"{path}: missing or not the file the card records (sha256); run `make model` again")
    return _load_reference_weights(path)


def train_reference(
    run: str | os.PathLike = "data/runs/default", out: str | os.PathLike | None = None, modes: list[str] | None = None,
    threads: int | None = None, epochs: int | None = None, progress: bool = True,
) -> dict[str, Any]:
    """Train the reference networks on the run's store by :data:`RECIPE`, export them and write the card.

    The figures on the card are measured on the exported float16 weights (the ones the book uses).
    """
    from .train import evaluate, train  # torch training code only when training
    from . import dataset as D
    from .train import CycleLabels

    store_path, rd = resolve_run(run)
    rd = rd or RunDir(store_path.parent)
    out = Path(out) if out is not None else reference_dir()
    out.mkdir(parents=True, exist_ok=True)
    recipe = dict(RECIPE) | ({"epochs": int(epochs)} if epochs else {})
    modes = list(modes or recipe["modes"])
    if threads:
        torch.set_num_threads(int(threads))
    store = open_store(store_path)
    old = json.loads((out / CARD_NAME).read_text()) if (out / CARD_NAME).is_file() else {}
    card: dict[str, Any] = {
        "what": "reference networks of the DeepCycle Book (trained once; the default chapters install them)",
        "recipe": recipe | {"modes": modes},
        "preset": get_preset(recipe["preset"]).to_dict(),
        "data": {"run": str(rd.root), "store": store_identity(store),
                 "simulation": store.meta.get("provenance", {}).get("parameters", {})},
        "command": "make model  (= deepcycle reference train --run data/runs/default)",
        "commit": _commit(),
        "machine": _machine(),
        "trained": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "networks": {},
    }
    if old.get("data", {}).get("store") == card["data"]["store"] and old.get("recipe", {}).get("epochs") == recipe["epochs"]:
        card["networks"] = dict(old.get("networks", {}))  # modes trained by an earlier (or parallel) call
        card["recipe"]["modes"] = sorted(set(old["recipe"].get("modes", [])) | set(modes))
    for mode in modes:
        tdir = rd.root / "reference_train" / mode
        t0 = time.perf_counter()
        summary = train(
            rd.root, tdir, preset=recipe["preset"], mode=mode, epochs=recipe["epochs"], seed=recipe["seed"],
            samples_per_epoch=recipe["samples_per_epoch"], val_cells=recipe["val_cells"],
            heldout_cells=recipe["heldout_cells"], progress=progress, reuse=True, device="cpu",
        )
        seconds = time.perf_counter() - t0
        path = export_reference(tdir, out, mode)
        # figures of the weights as stored (float16 -> float32), in fp32
        ckpt = _load_reference_weights(path)
        info = ckpt["info"]
        net = _network(ckpt)
        data = D.TrainingData.from_store(store, mode, split=D.read_split(tdir / RunDir.SPLIT_NAME))
        p = get_preset(recipe["preset"])
        cyc = CycleLabels(store) if info.get("cycle_head") else None
        figures = {}
        for which in ("val", "heldout"):
            ev = evaluate(net, data, data.indices(which), torch.device("cpu"), p, cycle=cyc)
            figures[which] = {k: ev[k] for k in ("n", "accuracy", "recall", "confusion", "cycle_n", "cycle_mae_h") if k in ev}
        hist = pd.read_csv(tdir / RunDir.HISTORY_NAME)
        images = int(hist["train_samples"].sum())
        card["networks"][mode] = {
            "file": path.name,
            "commit": card["commit"],  # per network: modes may be trained by separate calls
            "bytes": path.stat().st_size,
            "sha256": fp.file_digest(path),
            "channels": summary["channels"],
            "best_epoch": summary["best_epoch"],
            "train_seconds": round(float(summary.get("train_seconds", seconds)), 1),
            "train_images": images,
            "train_images_per_s": round(images / max(float(summary.get("train_seconds", seconds)), 1e-9), 1),
            "bf16": summary["bf16"],
            "cycle": summary.get("cycle"),
            "figures": figures,
            "history": hist.round(5).to_dict(orient="list"),
        }
        if (out / CARD_NAME).is_file():  # a parallel call may have added its mode meanwhile
            now = json.loads((out / CARD_NAME).read_text())
            if now.get("data", {}).get("store") == card["data"]["store"]:
                card["networks"] = {**now.get("networks", {}), **card["networks"]}
                card["recipe"]["modes"] = sorted(set(now["recipe"].get("modes", [])) | set(card["recipe"]["modes"]))
        write_json_atomic(out / CARD_NAME, card, indent=1)
    return card


def install_reference(run: str | os.PathLike, modes: list[str], folder: str | os.PathLike | None = None) -> dict[str, dict[str, Any]]:
    """Put the reference networks in ``run/train/<mode>/`` as if trained there; return their summaries.

    Refuses (ReferenceError) a store that is not the card's movie, naming what differs.
    """
    folder = Path(folder or reference_dir())
    card = read_card(folder)
    store_path, rd = resolve_run(run)
    rd = rd or RunDir(store_path.parent)
    store = open_store(store_path)
    have, want = store_identity(store), card["data"]["store"]
    diff = {k: (have.get(k), want.get(k)) for k in want if have.get(k) != want.get(k)}
    if diff:
        raise ReferenceError(
            f"{store_path}: this store is not the movie the reference networks were trained on "
            f"({', '.join(f'{k}: {a!r} here, {b!r} on the card' for k, (a, b) in diff.items())}); "
            "train on it instead (train_use_reference = False, or `deepcycle train`)"
        )
    split = make_split(store.cells, seed=int(card["recipe"]["seed"]))
    out: dict[str, dict[str, Any]] = {}
    for mode in modes:
        ckpt = _checked_weights(folder, card, mode)
        net = card["networks"][mode]
        tdir = rd.train_dir(mode)
        if tdir.exists():
            shutil.rmtree(tdir)
        tdir.mkdir(parents=True)
        write_split(split, tdir / RunDir.SPLIT_NAME)
        best = save_checkpoint(tdir / RunDir.CHECKPOINT_NAME, "best", info=ckpt["info"], config=ckpt["config"], model=ckpt["model"])
        write_csv_atomic(tdir / RunDir.HISTORY_NAME, pd.DataFrame(net["history"]), index=False)
        val, held = net["figures"]["val"], net["figures"]["heldout"]
        summary = {
            "mode": mode, "preset": card["recipe"]["preset"], "channels": net["channels"], "epochs": card["recipe"]["epochs"],
            "best_epoch": net["best_epoch"], "seed": card["recipe"]["seed"], "bf16": net["bf16"],
            "accuracy": val["accuracy"], "recall": val["recall"], "confusion": val["confusion"], "n_val_evaluated": val["n"],
            "heldout": held, "cycle": net.get("cycle"), "cycle_head": net.get("cycle") is not None,
            "reference": {"card": str(folder / CARD_NAME), "commit": card["commit"], "sha256": net["sha256"],
                          "train_seconds": net["train_seconds"], "train_images_per_s": net["train_images_per_s"]},
            "train_seconds": net["train_seconds"],
        }
        write_json_atomic(tdir / RunDir.SUMMARY_NAME, summary, indent=2)
        fp.write_stamp(
            tdir, stage="train", outputs=[tdir / RunDir.SPLIT_NAME, best], inputs={"store": store.path},
            params={"reference": net["sha256"], "mode": mode},
            command=f"deepcycle reference install --run {rd.root}",
            root=rd.root,
        )
        out[mode] = summary
    return out


def train_oracle(
    run: str | os.PathLike = "data/runs/default", out: str | os.PathLike | None = None, threads: int | None = None,
    epochs: int | None = None, progress: bool = True,
) -> dict[str, Any]:
    """What this network reads with PERFECT labels: the ``both`` network trained by the recipe with the
    simulator's true age of every non-held-out cell as the cycle head's label (``cycle_labels="oracle"``),
    its cycle-head outputs on the held-out cells written to ``<out>/oracle_heldout.parquet`` and its
    figures to the card (``oracle``). A reference that uses truth, never a method; the validation chapter
    scores it like any clock, flagged. Only outputs are kept (~0.2 MB), not the weights.
    """
    from .embed import run_model
    from .normalise import frame_norm, mode_channels, normalise_crops
    from .train import train

    store_path, rd = resolve_run(run)
    rd = rd or RunDir(store_path.parent)
    out = Path(out) if out is not None else reference_dir()
    card = read_card(out)
    store = open_store(store_path)
    if card["data"]["store"] != store_identity(store):
        raise ReferenceError(f"{store_path}: not the store of the reference card {out / CARD_NAME}; train the networks first")
    if threads:
        torch.set_num_threads(int(threads))
    recipe = card["recipe"] | ({"epochs": int(epochs)} if epochs else {})
    tdir = rd.root / "reference_train" / "oracle"
    summary = train(rd.root, tdir, preset=recipe["preset"], mode="both", epochs=recipe["epochs"], seed=recipe["seed"],
                    samples_per_epoch=recipe["samples_per_epoch"], val_cells=recipe["val_cells"],
                    heldout_cells=recipe["heldout_cells"], progress=progress, reuse=True, device="cpu",
                    cycle_labels="oracle")
    ckpt = load_checkpoint(tdir / RunDir.CHECKPOINT_NAME)
    net = _network(ckpt)
    split = pd.read_parquet(tdir / RunDir.SPLIT_NAME)
    held = np.sort(split.loc[split["split"] == "heldout", "cell_id"].to_numpy(dtype=np.int64))
    cid = store.cells["cell_id"].to_numpy(dtype=np.int64)
    rows = np.searchsorted(cid, held) if np.all(np.diff(cid) > 0) else pd.Index(cid).get_indexer(held)
    channels = mode_channels(store, "both")
    med, std = frame_norm(store, channels)
    x = normalise_crops(store.take(rows)[:, channels], med[rows], std[rows])
    _, _, cyc = run_model(net.to(memory_format=torch.contiguous_format), x, batch_size=512, precision="fp32",
                          features=False, channels_last=False)
    table = pd.DataFrame({"cell_id": held, "cycle_cos": cyc[:, 0], "cycle_sin": cyc[:, 1]})
    path = out / ORACLE_NAME
    write_parquet_atomic(path, table)
    hist = pd.read_csv(tdir / RunDir.HISTORY_NAME)
    card = read_card(out)
    card["oracle"] = {
        "what": "the both network trained with the simulator's TRUE ages (uses truth: a reference, never a method)",
        "file": path.name, "sha256": fp.file_digest(path), "commit": _commit(), "epochs": recipe["epochs"],
        "train_cells": int(len(pd.read_parquet(tdir / RunDir.SPLIT_NAME).query("split in ['train', 'excluded']"))),
        "train_seconds": round(float(summary["train_seconds"]), 1),
        "train_images_per_s": round(int(hist["train_samples"].sum()) / max(float(summary["train_seconds"]), 1e-9), 1),
        "cycle": summary.get("cycle"), "bf16": summary["bf16"],
    }
    write_json_atomic(out / CARD_NAME, card, indent=1)
    return card["oracle"]


# ----------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------
def register_cli(subparsers: argparse._SubParsersAction) -> None:
    from ..__main__ import add_command

    p = add_command(subparsers, "reference")
    sub = p.add_subparsers(dest="action", required=True)
    t = sub.add_parser("train", help="train the reference networks by the recipe and write data/reference/")
    t.add_argument("--run", default="data/runs/default", help="run folder holding the default profile's store/")
    t.add_argument("--out", default=None, help="output folder (default: data/reference)")
    t.add_argument("--modes", default=None, help="comma-separated modes (default: every mode of the recipe)")
    t.add_argument("--threads", type=int, default=None)
    t.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs (for a quick check only)")
    t.set_defaults(func=_cli_train)
    o = sub.add_parser("oracle", help="train the both network on TRUE ages (a reference using truth) and keep "
                                      "its held-out outputs in data/reference/")
    o.add_argument("--run", default="data/runs/default")
    o.add_argument("--threads", type=int, default=None)
    o.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs (for a quick check only)")
    o.set_defaults(func=_cli_oracle)
    i = sub.add_parser("install", help="put the reference networks in <run>/train/<mode>/")
    i.add_argument("--run", default="data/runs/default")
    i.add_argument("--modes", default="both,bf_only,nuclear_only")
    i.set_defaults(func=_cli_install)


def _cli_train(args: argparse.Namespace) -> int:
    modes = args.modes.split(",") if args.modes else None
    card = train_reference(args.run, args.out, modes=modes, threads=args.threads, epochs=args.epochs)
    for mode, net in card["networks"].items():
        f = net["figures"]
        print(f"{mode}: val accuracy {f['val']['accuracy']:.3f}, held-out {f['heldout']['accuracy']:.3f}, "
              f"{net['train_seconds']:.0f} s, {net['train_images_per_s']:.0f} img/s -> {net['file']}")
    return 0


def _cli_oracle(args: argparse.Namespace) -> int:
    o = train_oracle(args.run, threads=args.threads, epochs=args.epochs)
    print(f"oracle labels: {o['train_cells']:,} cells, {o['train_seconds']:.0f} s, {o['train_images_per_s']:.0f} img/s -> {o['file']}")
    return 0


def _cli_install(args: argparse.Namespace) -> int:
    done = install_reference(args.run, args.modes.split(","))
    print(f"installed {sorted(done)} into {args.run}/train/")
    return 0
