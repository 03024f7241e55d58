"""The run folder: where each stage finds its inputs and leaves its outputs.

Stages talk only through this layout (and the cell store format), never through each other's
internals. ``data/runs/<profile>/`` holds::

    store/                 the cell store (see deepcycle_core.store)
    movie/movie.ome.tif    optional simulated full-field movie + movie/truth.parquet
    train/                 checkpoints (last.pt, best.pt), history.csv, split.parquet, summary.json
    embed/                 descriptors.parquet, cells.h5ad
    trajectory/            trajectory.parquet, ring.json
    validate/              table.csv
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


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
    """Paths of one run folder."""

    root: Path

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


def run_dir(profile: str, root: str | os.PathLike | None = None) -> RunDir:
    """``data/runs/<profile>`` under the project root (created if missing)."""
    base = Path(root) if root is not None else repo_root() / "data" / "runs"
    path = base / profile
    path.mkdir(parents=True, exist_ok=True)
    return RunDir(path)


def load_profile(profile: str, root: str | os.PathLike | None = None) -> dict[str, Any]:
    """Read ``book/params/<profile>.yaml``; a missing or malformed profile raises naming the file."""
    path = Path(root or repo_root()) / "book" / "params" / f"{profile}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise FileNotFoundError(f"{path}: no such parameter profile; known profiles: {known}")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a profile must be a mapping of parameter names to values")
    return data
