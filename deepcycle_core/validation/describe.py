"""The describe stage: every validation method's descriptors, made once, into the run folder, stamped.

Why a stage of its own: the validation (:mod:`deepcycle_core.validation.validate`) compares the network's ring with
ablations and baselines that all go through the same ring fit. Making their descriptors needs the
networks (torch) and every crop of the cells involved; scoring them needs neither. So this stage makes
them and leaves them as files -- ``describe/<method>/descriptors.parquet`` with a ``stamp.json`` that
records the store, split and checkpoint they were made from and the cells they describe
(:func:`deepcycle_core.data.fingerprint.write_stamp`) -- and the validation only reads those files, refusing
stale ones with the command that refreshes them. torch is imported only inside the functions that run
a network.

===================  ========================================================================
method               descriptors (``describe/<method>/descriptors.parquet``)
===================  ========================================================================
deepcycle            none when the run has the trajectory stage's ring (the validation reads it);
                     else the embed stage's ``embed/descriptors.parquet``; else the network
                     (``train/best.pt``) run here on the cells validated (the hard preset)
deepcycle_som        none (the same ring as ``deepcycle``, read by its SOM nodes)
deepcycle_clock      the network's file above (its cycle head's ``cycle_cos, cycle_sin``)
bf_only_clock        the brightfield-only network's file below (its cycle head)
nuclear_only_clock   the nuclear-only network's file below (its cycle head)
ceiling_hidden       none (the store's hidden variables, :mod:`deepcycle_core.validation.ceiling`)
oracle_labels        none (the oracle-label network's held-out outputs kept by ``make model``)
supervised_features  :func:`deepcycle_core.validation.supervised.crop_measures`: radial profiles of
                     the normalised crops, integrated stain (raw and over its frame's median), area
ceiling_crops        the supervised features' file (its stain over the frame median and its area)
ceiling_crops_phase  the same file as ``ceiling_crops``
bf_only              the network trained on brightfield only (``train/bf_only/best.pt``)
nuclear_only         the network trained on the nuclear stain only (``train/nuclear_only/best.pt``)
nuclear_area         the data chapter's per-crop features
                     (:func:`deepcycle_core.validation.features.measure`)
handmade             :func:`deepcycle_core.validation.baselines.handmade_descriptors`
pixels_pca           :func:`deepcycle_core.validation.baselines.pixel_pca_descriptors`
===================  ========================================================================

Which cells: a seeded sample of ``fit_cells`` fitting cells (split train/val) and every ``heldout_every``-th
frame of each held-out full-cycle track (:func:`cell_selection`) -- the very cells the validation fits
rings on and judges, so both stages compute the selection with the same function and the stamp records
it. The hard-preset data set (:func:`hard_preset_run`) is described with the default run's networks;
its files lie in its own run folder (``validate/hard/describe/``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd

from ..data import fingerprint
from ..data.atomic import write_parquet_atomic
from ..net.cycle_targets import CYCLE_COLUMNS
from ..data.runs import RunDir
from .scoring import HARD_METHODS, METHODS
from ..data.split import FIT_SPLITS, holdout_masks, read_split, track_keys
from ..data.store import CellStore, open_store

__all__ = [
    "DESCRIPTOR_BASE",
    "NETWORK_MODES",
    "NO_DESCRIPTORS",
    "add_arguments",
    "check_method_descriptors",
    "cell_selection",
    "choose_cells",
    "describe_command",
    "describe_method",
    "descriptor_params",
    "descriptor_source",
    "embed_cells",
    "hard_preset_run",
    "ids_key",
    "load_split",
    "options",
    "register_cli",
    "run_describe",
    "split_methods",
    "split_without_training",
    "thin_tracks",
]

#: The network each network method reads: ``train/best.pt`` or ``train/<mode>/best.pt``.
NETWORK_MODES: dict[str, str] = {"deepcycle": "both", "bf_only": "bf_only", "nuclear_only": "nuclear_only"}

#: Rows that read another method's descriptor file: the SOM the ring's, each clock-head row its network's
#: (the file holds the 4 descriptors and the head's ``cycle_cos, cycle_sin``).
DESCRIPTOR_BASE: dict[str, str] = {
    "deepcycle_som": "deepcycle", "deepcycle_clock": "deepcycle", "bf_only_clock": "bf_only",
    "nuclear_only_clock": "nuclear_only", "ceiling_crops": "supervised_features",
    "ceiling_crops_phase": "supervised_features",
}

#: Rows that read no descriptors at all: the ceiling is computed from the store's hidden variables.
NO_DESCRIPTORS: tuple[str, ...] = ("ceiling_hidden", "oracle_labels")

#: Methods whose descriptors depend on the fitting cells (a transform fitted on them), not only on the cells described.
_FIT_DEPENDENT = ("handmade", "pixels_pca")


# ------------------------------------------------------------------------------------------------
# which cells: the split, the fitting sample, the judged frames
# ------------------------------------------------------------------------------------------------
def load_split(run: RunDir) -> pd.DataFrame:
    """``train/split.parquet``: which cells are held out. Without it nothing can be validated honestly.

    Refused (:class:`~deepcycle_core.data.fingerprint.StaleInputError`) unless the training stage wrote it
    from the run's current store.
    """
    if not run.split.exists():
        raise FileNotFoundError(f"{run.split}: missing; run the training stage first (it fixes the held-out tracks)")
    fingerprint.check_split(run)
    return read_split(run.split)


def split_without_training(cells: pd.DataFrame) -> pd.DataFrame:
    """The split of a data set nothing was trained on (the hard preset): held-out full-cycle tracks,
    their relatives excluded, every other cell free to fit a ring (``train``)."""
    heldout, excluded = holdout_masks(cells)
    label = np.where(heldout, "heldout", np.where(excluded, "excluded", "train"))
    return pd.DataFrame({"cell_id": cells["cell_id"].to_numpy(), "split": label})


def choose_cells(
    split: pd.DataFrame, *, fit_cells: int, seed: int, cells: pd.DataFrame | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(fit_ids, heldout_ids)``: a seeded sample of about ``fit_cells`` fitting cells (split train or
    val; never held-out cells or their relatives), and every held-out cell.

    With ``cells`` (the cell table) the sample takes WHOLE tracks (seeded order, until ``fit_cells``
    is reached), so the fitting cells keep the frame-to-frame continuity the movie orientation reads
    (:mod:`deepcycle_core.clock.orientation`); without it, single cells.
    """
    held = np.sort(split.loc[split["split"] == "heldout", "cell_id"].to_numpy(dtype=np.int64))
    pool = np.sort(split.loc[split["split"].isin(FIT_SPLITS), "cell_id"].to_numpy(dtype=np.int64))
    if held.size == 0:
        raise ValueError("the split has no held-out cells (no full-cycle tracks): nothing to validate")
    if pool.size == 0:
        raise ValueError("the split has no cell to fit a ring on (every track is held out or a relative of one)")
    if pool.size > fit_cells:
        rng = np.random.default_rng(seed)
        if cells is None:
            pool = np.sort(rng.choice(pool, size=fit_cells, replace=False))
        else:
            key, _ = track_keys(cells.set_index("cell_id").loc[pool])  # untracked cells: one group each
            groups, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
            order = rng.permutation(groups.size)
            n_take = int(np.searchsorted(np.cumsum(counts[order]), fit_cells) + 1)
            take = np.zeros(groups.size, dtype=bool)
            take[order[:n_take]] = True
            pool = np.sort(pool[take[inverse]])
    return pool, held


def thin_tracks(cells: pd.DataFrame, ids: np.ndarray, every: int) -> np.ndarray:
    """Every ``every``-th cell (in time) of each track among ``ids``: all tracks, fewer frames."""
    if every < 1:
        raise ValueError(f"heldout_every must be >= 1, got {every}")
    if every == 1:
        return np.asarray(ids, dtype=np.int64)
    sub = cells[cells["cell_id"].isin(ids)].sort_values(["field", "track_id", "frame"], kind="stable")
    keep = sub.groupby(["field", "track_id"], sort=False).cumcount().to_numpy() % every == 0
    return np.sort(sub["cell_id"].to_numpy(dtype=np.int64)[keep])


def cell_selection(
    split: pd.DataFrame, cells: pd.DataFrame, *, fit_cells: int, seed: int, heldout_every: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fit_ids, heldout_ids, judged_ids)``: the fitting sample, every held-out cell (track coverage is
    measured on these), and the held-out cells judged (every ``heldout_every``-th frame of each track).

    The one selection both this stage (which cells to describe) and the validation (which to fit on and
    judge) use, so the descriptors on disk cover exactly the cells the validation reads.
    """
    fit, held = choose_cells(split, fit_cells=fit_cells, seed=seed, cells=cells)
    return fit, held, thin_tracks(cells, held, heldout_every)


def hard_preset_run(run: RunDir, *, cells: int, hours: float, seed: int) -> RunDir:
    """A small hard-preset data set inside ``run/validate/hard``, simulated anew whenever its parameters
    (founders, hours, seed, simulator version) differ from the ones asked for -- never a stale one."""
    from ..sim.simulate import simulate

    hard = RunDir(run.validate / "hard")
    simulate(hard.store, cells=cells, hours=hours, seed=seed, difficulty="hard", reuse=True, progress=False)
    return hard


def split_methods(methods: Sequence[str], hard_run: RunDir | None) -> tuple[list[str], list[str]]:
    """``(methods of the run, methods of the hard preset)``: names ending ``_hard`` are read on ``hard_run``;
    with ``hard_run`` and none of them named, every one of :data:`~deepcycle_core.validation.scoring.HARD_METHODS`."""
    hard = [m for m in methods if m.endswith("_hard")]
    main = [m for m in methods if not m.endswith("_hard")]
    if hard and hard_run is None:
        raise ValueError(f"{', '.join(hard)}: hard-preset methods need a hard-preset run (--hard-run)")
    unknown = [m for m in hard if m not in HARD_METHODS]
    if unknown:
        raise ValueError(f"unknown validation method(s) {unknown}; hard-preset methods: {HARD_METHODS}")
    if hard_run is not None and not hard:
        hard = list(HARD_METHODS)
    return main, hard


# ------------------------------------------------------------------------------------------------
# where a method's descriptors are, and what they must have been made from
# ------------------------------------------------------------------------------------------------
def descriptor_source(method: str, data_run: RunDir, model_run: RunDir) -> Path | None:
    """The file the validation reads for ``method`` (a base method of :data:`METHODS`) on ``data_run``.

    None for the network's own ring when ``data_run`` has the trajectory stage's output (the validation
    reads ``trajectory/trajectory.parquet``); the embed stage's ``embed/descriptors.parquet`` for the
    network when it is this run's own network and there is no ring; else ``describe/<method>/``.
    """
    if method not in METHODS:
        raise ValueError(f"unknown validation method {method!r}; known: {METHODS}")
    if method in NO_DESCRIPTORS:
        return None
    if method in ("deepcycle", "deepcycle_som", "deepcycle_clock"):
        if method != "deepcycle_clock" and data_run.trajectory_table.exists():
            return None
        if data_run == model_run and data_run.descriptors.exists():
            return data_run.descriptors
        return data_run.method_descriptors("deepcycle")
    return data_run.method_descriptors(DESCRIPTOR_BASE.get(method, method))


def ids_key(ids: np.ndarray) -> dict[str, Any]:
    """A short, exact record of a set of cell ids (count and digest), for a stamp's parameters."""
    ids = np.unique(np.asarray(ids, dtype=np.int64))
    return {"n": int(ids.size), "sha256": hashlib.sha256(ids.astype("<i8").tobytes()).hexdigest()[:16]}


def descriptor_params(
    method: str, fit_ids: np.ndarray, ids: np.ndarray, *, pca_components: int, pca_pool: int
) -> dict[str, Any]:
    """What ``method``'s descriptors depend on besides the store and the network: recorded in their
    stamp by this stage, and compared key by key by the validation."""
    params: dict[str, Any] = {"method": method, "ids": ids_key(ids)}
    if method in _FIT_DEPENDENT:
        params["fit"] = ids_key(fit_ids)
    if method == "pixels_pca":
        params.update(pca_components=int(pca_components), pca_pool=int(pca_pool))
    return params


def _inputs(method: str, data_run: RunDir, model_run: RunDir) -> dict[str, Path]:
    """The files ``method``'s descriptors on ``data_run`` are made from (recorded in the stamp)."""
    inputs = {"store": data_run.store}
    if data_run == model_run:  # the hard preset has no split file: its split follows from its store
        inputs["split"] = data_run.split
    if method in NETWORK_MODES:
        inputs["checkpoint"] = model_run.train_dir(NETWORK_MODES[method]) / model_run.CHECKPOINT_NAME
    return inputs


def describe_command(
    model_run: RunDir,
    name: str,
    *,
    hard_run: RunDir | None = None,
    fit_cells: int = 20000,
    heldout_every: int = 1,
    seed: int = 0,
    pca_components: int = 8,
    pca_pool: int = 3,
) -> str:
    """The ``deepcycle describe`` command line that (re)makes the descriptors of ``name`` (non-defaults spelled)."""
    cmd = ["deepcycle describe --run", fingerprint.display_path(model_run.root)]
    if name.endswith("_hard"):
        if hard_run is None:
            raise ValueError(f"{name}: a hard-preset method needs the hard-preset run")
        cmd += ["--hard-run", fingerprint.display_path(hard_run.root)]
    cmd += ["--methods", name]
    flags = (("--fit-cells", fit_cells, 20000), ("--heldout-every", heldout_every, 1), ("--seed", seed, 0))
    if name.removesuffix("_hard") == "pixels_pca":
        flags += (("--pca-components", pca_components, 8), ("--pca-pool", pca_pool, 3))
    for flag, value, default in flags:
        if value != default:
            cmd += [flag, str(value)]
    return " ".join(cmd)


def check_method_descriptors(
    method: str,
    data_run: RunDir,
    model_run: RunDir,
    path: Path,
    *,
    params: dict[str, Any],
    command: str,
    memo: fingerprint.Memo | None = None,
) -> None:
    """``path`` (``describe/<method>/descriptors.parquet`` of ``data_run``) was made by this stage from the
    store, split and network as they are now, for the cells and settings ``params``; else
    FileNotFoundError or :class:`~deepcycle_core.data.fingerprint.StaleInputError` naming it and ``command``.

    The network is checked first (against its training stamp), so a message names the most upstream
    stale file.
    """
    if not path.exists():
        raise FileNotFoundError(f"{fingerprint.display_path(path)}: missing; run `{command}` first")
    inputs = _inputs(method, data_run, model_run)
    ckpt = inputs.get("checkpoint")
    if ckpt is not None and ckpt.exists():
        fingerprint.check_checkpoint(model_run, ckpt, memo=memo)
    try:
        stamp = fingerprint.check_stamp(path.parent, outputs=path, command=command, inputs=inputs, memo=memo)
    except fingerprint.StaleInputError as exc:  # name the command for the cells and settings asked for now
        raise fingerprint.StaleInputError(exc.outputs, exc.reason, command) from None
    if path.name not in stamp.get("outputs", {}):
        raise fingerprint.StaleInputError(
            path, f"{fingerprint.display_path(path.parent / fingerprint.STAMP_NAME)} does not vouch for it", command)
    have = stamp.get("params", {})
    want = json.loads(json.dumps(params, sort_keys=True))
    diff = sorted(k for k in want if have.get(k, "<unset>") != want[k])
    if diff:
        change = ", ".join(f"{k}={have.get(k, '<unset>')!r} then, {want[k]!r} now" for k in diff)
        raise fingerprint.StaleInputError(path, f"it was made for other cells or settings ({change})", command)


# ------------------------------------------------------------------------------------------------
# making descriptors
# ------------------------------------------------------------------------------------------------
def embed_cells(
    store: CellStore, checkpoint: Path, ids: np.ndarray, *, batch_size: int = 512, precision: str = "auto",
    progress: bool = False,
) -> pd.DataFrame:
    """Descriptors ``cell_id, d0..d3`` (+ ``cycle_cos, cycle_sin`` when the network has the cycle head) of
    the cells ``ids`` only, with the embedding stage's code path.

    The embed stage embeds a whole store; validation needs a seeded sample plus the held-out cells,
    so it reads those crops chunk by chunk and runs the same normalisation and model call.
    """
    from ..net.checkpoint import load_model  # torch: only here, where a network runs
    from ..net.embed import collect_outputs, resolve_precision, run_model
    from ..net.normalise import MODES, frame_norm, mode_channels, normalise_crops

    precision = resolve_precision(precision)
    model, info = load_model(checkpoint)
    mode = info.get("mode", "both")
    if mode not in MODES:
        raise ValueError(f"{checkpoint}: unknown mode {mode!r} in the checkpoint")
    if precision == "bf16":
        import torch

        model = model.to(memory_format=torch.channels_last)
    channels = mode_channels(store, mode)
    med, std = frame_norm(store, channels)
    ids = np.unique(np.asarray(ids, dtype=np.int64))
    step = store.chunk_cells

    def outputs() -> Iterator[tuple[int, np.ndarray, np.ndarray | None, np.ndarray | None]]:
        for lo in range(0, ids.size, step):
            sel = ids[lo : lo + step]
            x = normalise_crops(store.take(sel)[:, channels], med[sel], std[sel])
            yield lo, *run_model(model, x, batch_size=batch_size, precision=precision, features=False)

    label = f"embed {checkpoint.parent.name}" if progress else None
    out, _, cyc = collect_outputs(outputs(), ids.size, progress=label)
    if cyc is None and getattr(model, "cycle", None) is not None:  # no cells, yet the head's columns
        cyc = np.empty((0, 2), dtype=np.float32)
    df = pd.DataFrame(out, columns=[f"d{i}" for i in range(out.shape[1])])
    if cyc is not None:
        for i, name in enumerate(CYCLE_COLUMNS):
            df[name] = cyc[:, i]
    df.insert(0, "cell_id", ids)
    return df


def describe_method(
    method: str,
    store: CellStore,
    fit_ids: np.ndarray,
    ids: np.ndarray,
    *,
    model_run: RunDir,
    pca_components: int = 8,
    pca_pool: int = 3,
    progress: bool = False,
) -> pd.DataFrame:
    """``cell_id`` + descriptor columns of ``method`` for ``ids`` (transforms fitted on ``fit_ids`` only).

    Network methods run ``model_run``'s checkpoint (refused when missing or stale); the others are the
    baselines of :mod:`deepcycle_core.validation.baselines` and the features of :mod:`deepcycle_core.validation.features`.
    """
    if method in NETWORK_MODES:
        mode = NETWORK_MODES[method]
        ckpt = model_run.train_dir(mode) / model_run.CHECKPOINT_NAME
        if not ckpt.exists():
            raise FileNotFoundError(f"{ckpt}: missing; train the {mode} network first (02_train / `deepcycle train`)")
        fingerprint.check_checkpoint(model_run, ckpt)
        # fp32 whatever the CPU: the validation's numbers must not depend on whether it has native bf16
        return embed_cells(store, ckpt, ids, precision="fp32", progress=progress)
    if method == "nuclear_area":
        from .features import measure

        return measure(store, ids)
    if method == "handmade":
        from .baselines import handmade_descriptors

        return handmade_descriptors(store, fit_ids, ids)
    if method == "pixels_pca":
        from .baselines import pixel_pca_descriptors

        return pixel_pca_descriptors(store, fit_ids, ids, n_components=pca_components, pool=pca_pool)
    if method == "supervised_features":
        from .supervised import crop_measures

        return crop_measures(store, ids)
    raise ValueError(f"{method!r} has no descriptors of its own; methods with some: "
                     f"{', '.join([*NETWORK_MODES, 'nuclear_area', 'handmade', 'pixels_pca', 'supervised_features'])}")


def run_describe(
    run: RunDir | str | os.PathLike,
    *,
    methods: Sequence[str] = METHODS,
    hard_run: RunDir | str | os.PathLike | None = None,
    fit_cells: int = 20000,
    heldout_every: int = 1,
    seed: int = 0,
    pca_components: int = 8,
    pca_pool: int = 3,
    reuse: bool = True,
    progress: bool = False,
) -> dict[str, Path]:
    """Write the descriptors of every method of ``methods`` (and, with ``hard_run``, of the hard-preset
    methods) that the validation will read; return ``{method: file}`` of those it reads.

    Takes the arguments of :func:`deepcycle_core.validation.validate.run_validation`, so both select the same cells.
    With ``reuse``, descriptors whose stamp shows they were made from the current store, split and
    network for these very cells are kept as they are. Methods read from another stage's output (the
    network's ring from ``trajectory/``, its descriptors from ``embed/``) are left to that stage.
    """
    run = run if isinstance(run, RunDir) else RunDir(Path(run))
    hard = None if hard_run is None else hard_run if isinstance(hard_run, RunDir) else RunDir(Path(hard_run))
    main, hard_methods = split_methods(methods, hard)
    unknown = [m for m in main if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown validation method(s) {unknown}; known: {METHODS}")
    opts = dict(fit_cells=fit_cells, heldout_every=heldout_every, seed=seed, pca_components=pca_components,
                pca_pool=pca_pool)
    written: dict[str, Path] = {}
    jobs: list[tuple[RunDir, list[str]]] = [(run, main)] + ([(hard, hard_methods)] if hard is not None else [])
    for data_run, names in jobs:
        if not names:
            continue
        store = open_store(data_run.store)
        split = load_split(data_run) if data_run is run else split_without_training(store.cells)
        fit, _, judged = cell_selection(split, store.cells, fit_cells=fit_cells, seed=seed, heldout_every=heldout_every)
        ids = np.union1d(fit, judged)
        memo: fingerprint.Memo = {}
        for name in names:
            method = name.removesuffix("_hard") if data_run is not run else name
            path = descriptor_source(method, data_run, run)
            if path is None or path == data_run.descriptors:
                continue  # another stage's output: the validation checks it there
            done, written[name] = path in written.values(), path
            if done:  # deepcycle_som reads the network's descriptors, made for deepcycle
                continue
            method = DESCRIPTOR_BASE.get(method, method)
            params = descriptor_params(method, fit, ids, pca_components=pca_components, pca_pool=pca_pool)
            command = describe_command(run, name, hard_run=hard, **opts)
            if reuse:
                try:
                    check_method_descriptors(method, data_run, run, path, params=params, command=command, memo=memo)
                    continue
                except (FileNotFoundError, fingerprint.StaleInputError):
                    pass
            df = describe_method(method, store, fit, ids, model_run=run, pca_components=pca_components,
                                 pca_pool=pca_pool, progress=progress)
            folder = path.parent
            fingerprint.remove_stamp(folder)  # an interrupted write must not leave a record vouching for old files
            write_parquet_atomic(path, df, parents=True)
            record = {**params, "fit_cells": int(fit_cells), "heldout_every": int(heldout_every), "seed": int(seed)}
            # no memo: it holds the digest of the file just replaced
            fingerprint.write_stamp(folder, stage="describe", outputs=[path], inputs=_inputs(method, data_run, run),
                                    params=record, command=command, root=run.root)
    return written


# ------------------------------------------------------------------------------------------------
# command line
# ------------------------------------------------------------------------------------------------
def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options ``deepcycle describe`` and ``deepcycle validate`` share (they must select the same cells)."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("--run", help="run folder (data/runs/<profile>)")
    g.add_argument("--profile", default="default", help="profile name when --run is not given")
    p.add_argument("--methods", default="", help=f"comma-separated subset of {','.join(METHODS)} "
                   f"(and of {','.join(HARD_METHODS)} with --hard-run)")
    p.add_argument("--hard-run", default=None, help="run folder with a hard-preset store to read the network on")
    p.add_argument("--fit-cells", type=int, default=20000, help="non-held-out cells the baseline rings are fitted on")
    p.add_argument("--heldout-every", type=int, default=1, help="judge every k-th frame of each held-out track")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pca-components", type=int, default=8, help="raw-pixel baseline: principal components kept")
    p.add_argument("--pca-pool", type=int, default=3, help="raw-pixel baseline: mean-pooling of the crops")
    p.add_argument("--no-cache", action="store_true", help="remake the descriptors even when they are current")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def options(args: argparse.Namespace) -> tuple[RunDir, dict[str, Any]]:
    """The run folder and the keyword arguments shared by :func:`run_describe` and ``run_validation``."""
    from ..data.runs import run_dir

    run = RunDir(Path(args.run)) if args.run else run_dir(args.profile)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else list(METHODS)
    return run, dict(methods=methods, hard_run=args.hard_run, fit_cells=args.fit_cells,
                     heldout_every=args.heldout_every, seed=args.seed, pca_components=args.pca_components,
                     pca_pool=args.pca_pool)


def _cli_describe(args: argparse.Namespace) -> int:
    run, kw = options(args)
    written = run_describe(run, **kw, reuse=not args.no_cache, progress=not args.quiet)
    for name, path in written.items():
        print(f"{name:15s} {fingerprint.display_path(path)}")
    return 0


def register_cli(subparsers: Any) -> None:
    """Add ``deepcycle describe``."""
    from ..__main__ import add_command

    p = add_command(subparsers, "describe")
    add_arguments(p)
    p.set_defaults(func=_cli_describe)
