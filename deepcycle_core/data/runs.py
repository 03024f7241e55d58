"""The run folder: where each stage finds its inputs and leaves its outputs.

Stages talk only through this layout (and the cell store format), never through each other's
internals. ``data/runs/<profile>/`` holds::

    store/                 the cell store (see deepcycle_core.data.store)
    movie/movie.ome.tif    optional simulated full-field movie + movie/truth.parquet
    train/                 checkpoints (last.pt, best.pt), history.csv, split.parquet, summary.json, stamp.json
    embed/                 descriptors.parquet, cells.h5ad, summary.json, stamp.json
    trajectory/            trajectory.parquet, ring.json, stamp.json
    describe/<method>/     descriptors of each validation method (ablations, baselines), stamp.json
    validate/              table.csv, tracks.csv, phases.csv, confusion.csv, curves.csv, heldout.parquet

The file names live here only, as properties of :class:`RunDir` (and its ``*_NAME`` constants for
stages writing to a folder of the caller's choice), so no stage spells another stage's file names.
``stamp.json`` records what a stage's outputs were made from (see deepcycle_core.data.fingerprint).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

__all__ = ["RunDir", "repo_root", "resolve_run", "run_dir"]


def repo_root(start: str | os.PathLike | None = None) -> Path:
    """The project root: the first folder upward from ``start`` (default: cwd) holding ``_config.yml``.

    ``DEEPCYCLE_ROOT`` overrides the search (for running the notebooks from elsewhere).
    """
    env = os.environ.get("DEEPCYCLE_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "_config.yml").exists() and (folder / "deepcycle_core").is_dir():
            return folder
    raise FileNotFoundError(f"no DeepCycle project root (a folder with _config.yml) above {here}")


@dataclass(frozen=True)
class RunDir:
    """Paths of one run folder: every stage finds its inputs and outputs through these properties."""

    root: Path

    # file names inside a stage folder (for stages writing to an ``out_dir`` of the caller's choice)
    SPLIT_NAME: ClassVar[str] = "split.parquet"
    CHECKPOINT_NAME: ClassVar[str] = "best.pt"
    LAST_CHECKPOINT_NAME: ClassVar[str] = "last.pt"
    HISTORY_NAME: ClassVar[str] = "history.csv"
    SUMMARY_NAME: ClassVar[str] = "summary.json"
    DESCRIPTORS_NAME: ClassVar[str] = "descriptors.parquet"
    H5AD_NAME: ClassVar[str] = "cells.h5ad"
    TRAJECTORY_NAME: ClassVar[str] = "trajectory.parquet"
    RING_NAME: ClassVar[str] = "ring.json"
    VALIDATE_TABLE_NAME: ClassVar[str] = "table.csv"
    STAMP_NAME: ClassVar[str] = "stamp.json"

    @property
    def store(self) -> Path:
        return self.root / "store"

    @property
    def movie(self) -> Path:
        return self.root / "movie"

    @property
    def train(self) -> Path:
        return self.root / "train"

    @property
    def embed(self) -> Path:
        return self.root / "embed"

    @property
    def trajectory(self) -> Path:
        return self.root / "trajectory"

    @property
    def validate(self) -> Path:
        return self.root / "validate"

    # -- train/ -----------------------------------------------------------------------------------
    def train_dir(self, mode: str = "both") -> Path:
        """``train/`` for the two-channel network, ``train/<mode>/`` for an ablation (e.g. ``bf_only``)."""
        return self.train if mode == "both" else self.train / mode

    @property
    def split(self) -> Path:
        """Which cells are train / val / held out (``train/split.parquet``)."""
        return self.train / self.SPLIT_NAME

    @property
    def checkpoint(self) -> Path:
        """The trained network the later stages use (``train/best.pt``)."""
        return self.train / self.CHECKPOINT_NAME

    @property
    def last_checkpoint(self) -> Path:
        return self.train / self.LAST_CHECKPOINT_NAME

    @property
    def history(self) -> Path:
        return self.train / self.HISTORY_NAME

    @property
    def train_summary(self) -> Path:
        return self.train / self.SUMMARY_NAME

    # -- embed/ -----------------------------------------------------------------------------------
    @property
    def descriptors(self) -> Path:
        return self.embed / self.DESCRIPTORS_NAME

    @property
    def h5ad(self) -> Path:
        return self.embed / self.H5AD_NAME

    @property
    def embed_summary(self) -> Path:
        return self.embed / self.SUMMARY_NAME

    # -- trajectory/ ------------------------------------------------------------------------------
    @property
    def trajectory_table(self) -> Path:
        return self.trajectory / self.TRAJECTORY_NAME

    @property
    def ring(self) -> Path:
        return self.trajectory / self.RING_NAME

    # -- validate/ --------------------------------------------------------------------------------
    @property
    def validate_table(self) -> Path:
        return self.validate / self.VALIDATE_TABLE_NAME

    def stamp(self, stage: str, mode: str = "both") -> Path:
        """The record of what ``stage``'s outputs were made from (``<stage folder>/stamp.json``)."""
        folders = {"embed": self.embed, "trajectory": self.trajectory, "validate": self.validate}
        folder = self.train_dir(mode) if stage == "train" else folders.get(stage)
        if folder is None:
            raise ValueError(f"unknown stage {stage!r}; stages with a folder: train, {', '.join(folders)}")
        return folder / self.STAMP_NAME

    # -- describe/ --------------------------------------------------------------------------------
    @property
    def describe(self) -> Path:
        """Every validation method's descriptors (``describe/<method>/``, deepcycle_core.validation.describe)."""
        return self.root / "describe"

    def describe_dir(self, method: str) -> Path:
        """``describe/<method>/``: one method's descriptors and the stamp of what they were made from."""
        return self.describe / method

    def method_descriptors(self, method: str) -> Path:
        """``describe/<method>/descriptors.parquet``: the descriptors the validation reads for ``method``."""
        return self.describe_dir(method) / self.DESCRIPTORS_NAME


def resolve_run(run_or_store: str | os.PathLike | RunDir) -> tuple[Path, RunDir | None]:
    """(cell store, run folder) of a run folder holding ``store/``, or (store, None) of a bare store.

    Every stage that accepts either goes through this one rule, so what counts as a run folder cannot
    drift between stages. A folder is a store when it holds ``meta.json``; a run folder when its
    ``store/`` does. The caller decides what a bare store's defaults are (its stage's outputs have
    no run folder to go to).
    """
    root = Path(run_or_store.root if isinstance(run_or_store, RunDir) else run_or_store)
    if (root / "meta.json").is_file():
        return root, None
    run = RunDir(root)
    if not (run.store / "meta.json").is_file():
        raise FileNotFoundError(f"{root}: neither a cell store nor a run folder holding store/ (no meta.json in either)")
    return run.store, run


def run_dir(profile: str, root: str | os.PathLike | None = None) -> RunDir:
    """``data/runs/<profile>`` under the project root (created if missing)."""
    base = Path(root) if root is not None else repo_root() / "data" / "runs"
    path = base / profile
    path.mkdir(parents=True, exist_ok=True)
    return RunDir(path)
