"""Fingerprints and stamps: no stage reads an earlier stage's output that no longer matches its inputs.

Why: the stages talk through files (see :mod:`deepcycle_core.data.runs`). Re-simulate the store, retrain the
network or rewrite the split, and every file made from the old ones is silently wrong: a ring fitted
on descriptors of another store still draws, and the validation still prints numbers. So each stage
leaves a *stamp* (``stamp.json`` next to its outputs) recording what the outputs were made from --
the content digests of its inputs, its parameters and the command that remakes them -- and every
stage that reads an earlier stage's file checks that stamp against the files on disk now. A mismatch
raises :class:`StaleInputError` naming the stale file, the input that changed and the command that
refreshes it.

Fingerprints are cheap: a file is its streamed sha256; a cell store is its ``meta.json``
(provenance: creation stamp, simulation parameters and seed), ``cells.parquet`` and
``frames.parquet`` -- never the crops (2.6 M of them at paper scale). A re-simulated or re-ingested
store gets a new creation stamp and a new cell table, so the fingerprint changes.

Paths in a stamp are relative to the stamp's folder, so a run folder can be moved or copied whole.

The checks of a run folder (what :mod:`deepcycle_core.validation.validate` calls):

* :func:`check_stage` ``(run, stage)`` -- ``stage``'s outputs and everything upstream of them are current;
* :func:`check_trajectory_inputs` ``(run)`` -- what the trajectory stage reads (split, descriptors);
* :func:`current_ring` ``(run)`` -- ``trajectory/ring.json`` after :func:`check_stage` ``(run, "trajectory")``:
  what every reader of the ring's settings or doubling time goes through (validation, chapter 07).

This module imports no torch: the checks run where only the light stages are installed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

from .atomic import write_json_atomic
from .runs import RunDir

__all__ = [
    "STAMP_FORMAT",
    "STAMP_VERSION",
    "STAMP_NAME",
    "STAGES",
    "STORE_FILES",
    "Memo",
    "StaleInputError",
    "display_path",
    "file_digest",
    "store_fingerprint",
    "input_fingerprint",
    "write_stamp",
    "remove_stamp",
    "read_stamp",
    "recorded_command",
    "check_stamp",
    "refresh_command",
    "check_checkpoint",
    "check_split",
    "check_descriptors",
    "check_trajectory_inputs",
    "check_stage",
    "current_ring",
    "adopt",
]

STAMP_FORMAT = "deepcycle-stamp"
STAMP_VERSION = 1
STAMP_NAME = RunDir.STAMP_NAME
#: The stages that leave a stamp, in pipeline order.
STAGES = ("train", "embed", "trajectory")
#: The parts of a cell store its fingerprint reads (never crops.zarr); names as in deepcycle_core.data.store.
STORE_FILES = ("meta.json", "cells.parquet", "frames.parquet")

#: A memo of digests within one check, so a file read by several checks is hashed once.
Memo = dict


class StaleInputError(ValueError):
    """An output no longer matches what it was made from.

    ``outputs``: the stale file(s); ``reason``: which input changed and how; ``command``: what remakes them.
    """

    def __init__(self, outputs: Path | Sequence[Path], reason: str, command: str) -> None:
        self.outputs = [Path(outputs)] if isinstance(outputs, (str, os.PathLike)) else [Path(p) for p in outputs]
        self.reason = reason
        self.command = command
        names = ", ".join(display_path(p) for p in self.outputs)
        super().__init__(f"{names}: stale, {reason}. Refresh with `{command}` (and rerun the stages after it)")


# ----------------------------------------------------------------------------------------------
# fingerprints
# ----------------------------------------------------------------------------------------------
def display_path(path: str | os.PathLike) -> str:
    """``path`` relative to the working directory when it lies below it (as a user would type it)."""
    p = Path(path)
    try:
        return Path(os.path.abspath(p)).relative_to(Path.cwd()).as_posix() or "."
    except ValueError:
        return str(p)


def file_digest(path: str | os.PathLike, memo: Memo | None = None) -> str:
    """sha256 (hex) of a file's bytes, read in 1 MiB blocks (memory stays flat for any size)."""
    key = ("file", os.path.abspath(path))
    if memo is not None and key in memo:
        return memo[key]
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    digest = h.hexdigest()
    if memo is not None:
        memo[key] = digest
    return digest


def store_fingerprint(path: str | os.PathLike, memo: Memo | None = None) -> dict[str, Any]:
    """``{kind, created, n_cells, sha256}`` of a cell store from its metadata and tables, not its crops.

    ``created`` (``meta.json`` provenance) and ``n_cells`` are kept readable for error messages; the
    sha256 covers ``meta.json`` (simulation parameters, seed, channels), ``cells.parquet`` and
    ``frames.parquet``, so it changes whenever the store is rewritten with other data.
    """
    path = Path(path)
    missing = [n for n in STORE_FILES if not (path / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{path}: not a complete cell store (missing {', '.join(missing)})")
    key = ("store", os.path.abspath(path))
    if memo is not None and key in memo:
        return dict(memo[key])
    try:
        meta = json.loads((path / STORE_FILES[0]).read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path / STORE_FILES[0]}: not valid JSON ({exc})") from exc
    h = hashlib.sha256()
    for name in STORE_FILES:
        h.update(f"{name}:{file_digest(path / name)}\n".encode())
    n_cells = meta.get("n_cells")
    fp = {
        "kind": "store",
        "created": (meta.get("provenance") or {}).get("created"),
        "n_cells": int(n_cells) if isinstance(n_cells, int) else None,
        "sha256": h.hexdigest(),
    }
    if memo is not None:
        memo[key] = dict(fp)
    return fp


def input_fingerprint(path: str | os.PathLike, memo: Memo | None = None) -> dict[str, Any]:
    """The fingerprint of one input as it is now: a store, a file, or ``{exists: False}``."""
    p = Path(path)
    if p.is_dir():
        return store_fingerprint(p, memo)
    if p.is_file():
        return {"kind": "file", "sha256": file_digest(p, memo)}
    return {"kind": "absent"}


# ----------------------------------------------------------------------------------------------
# stamps
# ----------------------------------------------------------------------------------------------
def _rel(path: str | os.PathLike, folder: Path) -> str:
    return Path(os.path.relpath(os.path.abspath(path), os.path.abspath(folder))).as_posix()


def _jsonable(obj: Any) -> Any:
    """``obj`` as it reads back from JSON (tuples become lists, numpy scalars numbers), for comparison."""
    def default(o: Any) -> Any:
        for cast in (int, float):
            try:
                if cast(o) == o:
                    return cast(o)
            except (TypeError, ValueError):
                pass
        return str(o)

    return json.loads(json.dumps(obj, default=default, sort_keys=True))


def write_stamp(
    folder: str | os.PathLike,
    *,
    stage: str,
    outputs: Sequence[str | os.PathLike],
    inputs: Mapping[str, str | os.PathLike],
    params: Mapping[str, Any] | None = None,
    command: str,
    root: str | os.PathLike | None = None,
    memo: Memo | None = None,
) -> Path:
    """Record next to ``outputs`` that they were made from ``inputs`` with ``params``; atomic.

    ``outputs``: files the stage wrote (their digests let a reader notice a file replaced afterwards);
    ``inputs``: name -> path of what they were made from (a store folder, a file, or a path that does
    not exist, recorded as absent: a split the stage ran without); ``command``: what remakes them.
    ``root``: the run folder as ``command`` spells it; it is recorded relative to the stamp, so the
    command still names the right folder after the run folder is moved or copied.
    """
    folder = Path(folder)
    template, root_rel = command, None
    if root is not None:
        spelled = display_path(root)
        template = re.sub(r"(?<!\S)" + re.escape(spelled) + r"(?=$|[\s/])", "{root}", command)
        root_rel = _rel(root, folder)
    stamp = {
        "format": STAMP_FORMAT,
        "version": STAMP_VERSION,
        "stage": stage,
        "command": template,
        "command_root": root_rel,
        "outputs": {_rel(p, folder): {"sha256": file_digest(p, memo)} for p in outputs},
        "inputs": {name: {"path": _rel(p, folder), **input_fingerprint(p, memo)} for name, p in inputs.items()},
        "params": _jsonable(dict(params or {})),
    }
    folder.mkdir(parents=True, exist_ok=True)
    return write_json_atomic(folder / STAMP_NAME, stamp, indent=1)


def remove_stamp(folder: str | os.PathLike) -> None:
    """Forget what ``folder``'s outputs were made from (a stage does this before it overwrites them,
    so an interrupted run leaves no record vouching for half-written outputs)."""
    try:
        (Path(folder) / STAMP_NAME).unlink()
    except FileNotFoundError:
        pass


def read_stamp(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The stamp in ``folder``, or None when there is none (or it is unreadable or foreign)."""
    path = Path(folder) / STAMP_NAME
    try:
        stamp = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(stamp, dict) or stamp.get("format") != STAMP_FORMAT or stamp.get("version") != STAMP_VERSION:
        return None
    return stamp


def recorded_command(folder: str | os.PathLike, stamp: Mapping[str, Any] | None = None) -> str | None:
    """The command recorded in ``folder``'s stamp, with the run folder spelled as it is found now."""
    stamp = read_stamp(folder) if stamp is None else stamp
    if not stamp or not stamp.get("command"):
        return None
    command = str(stamp["command"])
    if stamp.get("command_root") is not None:
        root = os.path.normpath(Path(folder) / stamp["command_root"])
        command = command.replace("{root}", display_path(root))
    return command


def _describe(name: str, path: Path, old: dict[str, Any], new: dict[str, Any]) -> str:
    """Why input ``name`` at ``path`` no longer matches its record, in words."""
    where = display_path(path)
    if new.get("kind") == "absent":
        return f"it was made from {name} {where}, which is gone"
    if old.get("kind") == "absent":
        return f"it was made without {name} {where}, which exists now"
    if old.get("kind") == "store" or new.get("kind") == "store":
        then = f"created {old.get('created')} with {old.get('n_cells')} cells"
        now = f"created {new.get('created')} with {new.get('n_cells')} cells"
        if then == now:
            return f"it was made from another version of the cell store {where} (its metadata or cell table changed)"
        return f"it was made from another cell store ({where}: {then} then, {now} now)"
    return (f"it was made from another {name}: {where} has changed since "
            f"(sha256 {str(old.get('sha256'))[:12]}... then, {str(new.get('sha256'))[:12]}... now)")


def check_stamp(
    folder: str | os.PathLike,
    *,
    outputs: Path | Sequence[Path],
    command: str,
    inputs: Mapping[str, str | os.PathLike] | None = None,
    params: Mapping[str, Any] | None = None,
    memo: Memo | None = None,
) -> dict[str, Any]:
    """Check that ``folder``'s outputs still match what they were made from; return the stamp.

    Every output the stamp lists must be unchanged and every input it lists must fingerprint as
    recorded now. ``inputs`` (name -> path) names the CURRENT inputs where they must be specific
    files (e.g. the run's store): an input recorded elsewhere or not at all is stale. ``params``
    compares only the parameters given. ``outputs`` and ``command`` are the stale file(s) to name
    and the command that remakes them when there is no stamp. Raises :class:`StaleInputError`.
    """
    folder = Path(folder)
    stamp = read_stamp(folder)
    if stamp is None:
        raise StaleInputError(
            outputs,
            f"there is no record of what it was made from ({display_path(folder / STAMP_NAME)} is missing or "
            "unreadable: made by hand, by an older version, or its stage did not finish)",
            command,
        )
    command = recorded_command(folder, stamp) or command
    stage = stamp.get("stage", "its")
    for name, rec in stamp.get("outputs", {}).items():
        p = folder / name
        if not p.is_file():
            raise StaleInputError(p, f"it is missing although the {stage} stage wrote it", command)
        if file_digest(p, memo) != rec.get("sha256"):
            raise StaleInputError(p, f"it was changed after the {stage} stage wrote it "
                                     f"(it no longer matches {display_path(folder / STAMP_NAME)})", command)
    recorded = stamp.get("inputs", {})
    current = {name: Path(os.path.normpath(folder / rec.get("path", ""))) for name, rec in recorded.items()}
    for name, path in (inputs or {}).items():
        if name not in recorded:
            raise StaleInputError(outputs, f"it was made without {name} {display_path(path)}", command)
        if os.path.abspath(path) != os.path.abspath(current[name]) and Path(path).exists():
            old = {k: v for k, v in recorded[name].items() if k != "path"}
            new = input_fingerprint(path, memo)
            if old != new:
                raise StaleInputError(outputs, f"it was made from {name} {display_path(current[name])}, "
                                               f"not {display_path(path)}", command)
        current[name] = Path(path)
    for name, path in current.items():
        old = {k: v for k, v in recorded[name].items() if k != "path"}
        new = input_fingerprint(path, memo)
        if old != new:
            raise StaleInputError(outputs, _describe(name, path, old, new), command)
    if params:
        have = stamp.get("params", {})
        want = _jsonable(dict(params))
        diff = sorted(k for k in want if have.get(k, "<unset>") != want[k])
        if diff:
            change = ", ".join(f"{k}={have.get(k, '<unset>')!r} then, {want[k]!r} now" for k in diff)
            raise StaleInputError(outputs, f"it was made with other parameters ({change})", command)
    return stamp


# ----------------------------------------------------------------------------------------------
# the commands that refresh a stage of a run folder
# ----------------------------------------------------------------------------------------------
def refresh_command(run: RunDir, stage: str, mode: str = "both") -> str:
    """The plain command that remakes ``stage`` of ``run`` (used when no stamp recorded a better one)."""
    root = display_path(run.root)
    if stage == "train":
        return f"deepcycle train --store {root}" + (f" --mode {mode}" if mode != "both" else "")
    if stage in ("embed", "trajectory", "validate"):
        return f"deepcycle {stage} --run {root}"
    raise ValueError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}, validate")


def _recorded_command(folder: Path, default: str) -> str:
    return recorded_command(folder) or default


# ----------------------------------------------------------------------------------------------
# the checks of a run folder
# ----------------------------------------------------------------------------------------------
def _as_run(run: RunDir | str | os.PathLike) -> RunDir:
    return run if isinstance(run, RunDir) else RunDir(Path(run))


def _inside(path: Path, folder: Path) -> bool:
    try:
        Path(os.path.abspath(path)).relative_to(os.path.abspath(folder))
        return True
    except ValueError:
        return False


def check_checkpoint(
    run: RunDir | str | os.PathLike | None, checkpoint: str | os.PathLike | None = None, *, memo: Memo | None = None
) -> None:
    """A checkpoint the run uses is current: trained on the run's store, unchanged since.

    The run's own network (a ``best.pt`` under its ``train/`` folder) must carry its training stamp;
    any other checkpoint (another run's network, weights from elsewhere, ``last.pt``, any checkpoint
    when ``run`` is None) is checked against its own stamp when that lists it, else taken as given
    (its digest is recorded wherever it is used).
    """
    if run is None and checkpoint is None:
        raise ValueError("check_checkpoint needs a run folder or a checkpoint")
    run = _as_run(run) if run is not None else None
    ckpt = Path(checkpoint) if checkpoint is not None else run.checkpoint
    folder = ckpt.parent
    own = run is not None and ckpt.name == run.CHECKPOINT_NAME and _inside(ckpt, run.train)
    stamp = read_stamp(folder)
    if not own and (stamp is None or ckpt.name not in stamp.get("outputs", {})):
        return  # external weights: recorded by digest wherever they are used
    if run is not None:
        mode = "both" if os.path.abspath(folder) == os.path.abspath(run.train) else folder.name
        default = refresh_command(run, "train", mode)
    else:
        default = f"deepcycle train --out {display_path(folder)} --store <the store it was trained on>"
    check_stamp(folder, outputs=ckpt, command=default, inputs={"store": run.store} if own else None, memo=memo)
    if own and ckpt.name not in (stamp or {}).get("outputs", {}):
        raise StaleInputError(ckpt, f"{display_path(folder / STAMP_NAME)} does not vouch for it",
                              _recorded_command(folder, default))


def check_split(run: RunDir | str | os.PathLike, *, memo: Memo | None = None) -> None:
    """``train/split.parquet`` was written by the train stage from the run's current store, unchanged since."""
    run = _as_run(run)
    default = refresh_command(run, "train")
    check_stamp(run.train, outputs=run.split, command=default, inputs={"store": run.store}, memo=memo)
    if run.SPLIT_NAME not in (read_stamp(run.train) or {}).get("outputs", {}):
        raise StaleInputError(run.split, f"{display_path(run.stamp('train'))} does not vouch for it",
                              _recorded_command(run.train, default))


def check_descriptors(
    run: RunDir | str | os.PathLike, descriptors: str | os.PathLike | None = None, *, memo: Memo | None = None
) -> None:
    """Descriptors were embedded from the run's current store with a current checkpoint.

    The run's own ``embed/descriptors.parquet`` must carry the embed stamp; its checkpoint (when it is
    the run's own) must be current too, and is checked first so the message names the most upstream
    stale file. Descriptors from elsewhere are checked against their own stamp when they have one.
    """
    run = _as_run(run)
    dpath = Path(descriptors) if descriptors is not None else run.descriptors
    folder = dpath.parent
    own = os.path.abspath(dpath) == os.path.abspath(run.descriptors)
    stamp = read_stamp(folder)
    if not own and (stamp is None or dpath.name not in stamp.get("outputs", {})):
        return  # descriptors made outside the pipeline: recorded by digest in the trajectory stamp
    ckpt_rec = (stamp or {}).get("inputs", {}).get("checkpoint")
    if ckpt_rec is not None and ckpt_rec.get("kind") != "absent":
        ckpt = Path(os.path.normpath(folder / ckpt_rec["path"]))
        if ckpt.exists():
            check_checkpoint(run, ckpt, memo=memo)
    elif own and run.checkpoint.exists():
        check_checkpoint(run, memo=memo)
    default = refresh_command(run, "embed")
    check_stamp(folder, outputs=dpath, command=default, inputs={"store": run.store} if own else None, memo=memo)
    if dpath.name not in (read_stamp(folder) or {}).get("outputs", {}):
        raise StaleInputError(dpath, f"{display_path(folder / STAMP_NAME)} does not vouch for it",
                              _recorded_command(folder, default))


def check_trajectory_inputs(
    run: RunDir | str | os.PathLike, descriptors: str | os.PathLike | None = None, *, memo: Memo | None = None
) -> None:
    """What the trajectory stage reads is current: the split (when there is one) and the descriptors.

    ``descriptors``: the descriptor file the stage reads (default ``embed/descriptors.parquet``).
    Raises :class:`StaleInputError` naming the most upstream stale file and its refresh command.
    """
    run = _as_run(run)
    memo = {} if memo is None else memo
    if run.split.exists():
        check_split(run, memo=memo)
    check_descriptors(run, descriptors, memo=memo)


def check_stage(
    run: RunDir | str | os.PathLike,
    stage: str,
    *,
    mode: str = "both",
    params: Mapping[str, Any] | None = None,
    memo: Memo | None = None,
) -> dict[str, Any]:
    """``stage``'s outputs in ``run`` and everything upstream of them are current; return its stamp.

    * ``train``: ``train[/<mode>]/split.parquet`` and ``best.pt`` were made from the run's store;
    * ``embed``: ``embed/descriptors.parquet`` from the run's store and a current checkpoint;
    * ``trajectory``: ``trajectory/trajectory.parquet`` and ``ring.json`` from the current
      descriptors, split and store (and those are current themselves).

    ``params`` (optional) must equal the parameters the stage recorded, key by key (e.g. the
    trajectory's ``whiten``, ``n_harmonics``, ``smoothing``, ``som_nodes``, ``max_fit_cells``, ``seed``,
    ``T_hours``). A missing output raises FileNotFoundError; anything stale raises
    :class:`StaleInputError` naming the stale file, the changed input and the refresh command.
    """
    run = _as_run(run)
    memo = {} if memo is None else memo
    if stage == "train":
        folder = run.train_dir(mode)
        need = [folder / run.CHECKPOINT_NAME] + ([run.split] if mode == "both" else [])
        primary = need
    elif stage == "embed":
        folder, need, primary = run.embed, [run.descriptors], run.descriptors
    elif stage == "trajectory":
        folder, need, primary = run.trajectory, [run.trajectory_table, run.ring], run.trajectory_table
    else:
        raise ValueError(f"unknown stage {stage!r}; stages with a stamp: {', '.join(STAGES)}")
    default = refresh_command(run, stage, mode)
    missing = [p for p in need if not p.exists()]
    if missing:
        raise FileNotFoundError(f"{', '.join(display_path(p) for p in missing)}: missing (run `{default}`)")

    if stage == "train":
        if mode == "both":
            check_split(run, memo=memo)
        check_checkpoint(run, folder / run.CHECKPOINT_NAME, memo=memo)
        return check_stamp(folder, outputs=primary, command=default, inputs={"store": run.store}, params=params,
                           memo=memo)
    if stage == "embed":
        check_descriptors(run, memo=memo)
        return check_stamp(folder, outputs=primary, command=default, params=params, memo=memo)
    # trajectory: its inputs first (most upstream first), then its own record of them
    stamp = read_stamp(folder)
    drec = (stamp or {}).get("inputs", {}).get("descriptors")
    dpath = Path(os.path.normpath(folder / drec["path"])) if drec and drec.get("kind") != "absent" else None
    check_trajectory_inputs(run, dpath, memo=memo)
    return check_stamp(folder, outputs=primary, command=default, inputs={"store": run.store, "split": run.split},
                       params=params, memo=memo)


def current_ring(run: RunDir | str | os.PathLike, *, memo: Memo | None = None) -> Path:
    """``trajectory/ring.json`` of ``run``, once the trajectory stage's outputs and inputs are current.

    The ring's settings and doubling time steer every later reading (validation fits every method
    with them, chapter 07 reads hours with its T), so a ring.json edited by hand or left from
    another store, split or network is refused -- :class:`StaleInputError` naming the file and the
    command that refreshes it; FileNotFoundError when the stage has not run.
    """
    run = _as_run(run)
    check_stage(run, "trajectory", memo=memo)
    return run.ring


def adopt(run: RunDir | str | os.PathLike, stage: str, *, mode: str = "both", command: str | None = None) -> Path:
    """Stamp ``stage``'s existing outputs as made from the run's CURRENT inputs, without checking.

    For outputs made by hand (tests) or by a version before stamps, when you know they are current:
    this vouches for them, so the later stages stop refusing them. Returns the stamp path.
    """
    run = _as_run(run)
    cmd = command or refresh_command(run, stage, mode)
    if stage == "train":
        folder = run.train_dir(mode)
        outs = [p for p in (folder / run.SPLIT_NAME, folder / run.CHECKPOINT_NAME) if p.exists()]
        return write_stamp(folder, stage="train", outputs=outs, inputs={"store": run.store}, command=cmd, root=run.root)
    if stage == "embed":
        inputs: dict[str, Path] = {"store": run.store}
        if run.checkpoint.exists():
            inputs["checkpoint"] = run.checkpoint
        return write_stamp(run.embed, stage="embed", outputs=[run.descriptors], inputs=inputs, command=cmd,
                           root=run.root)
    if stage == "trajectory":
        return write_stamp(run.trajectory, stage="trajectory", outputs=[run.trajectory_table, run.ring],
                           inputs={"store": run.store, "descriptors": run.descriptors, "split": run.split},
                           command=cmd, root=run.root)
    raise ValueError(f"unknown stage {stage!r}; stages with a stamp: {', '.join(STAGES)}")
