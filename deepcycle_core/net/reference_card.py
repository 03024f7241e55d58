"""The reference card, the store it names and the oracle-label outputs, readable without torch.

The torch-free half of :mod:`deepcycle_core.net.reference`, so that validation can read the oracle-label
reference (and check it belongs to the store) without importing torch.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from ..data import fingerprint as fp
from ..data.runs import repo_root

__all__ = ["CARD_NAME", "ORACLE_NAME", "ReferenceError", "oracle_predictions", "read_card", "reference_dir",
           "store_identity"]

CARD_NAME = "card.json"
#: The oracle-label network's outputs on the held-out cells (a reference that uses truth; see
#: :func:`deepcycle_core.net.reference.train_oracle`).
ORACLE_NAME = "oracle_heldout.parquet"
#: Keys of the store's simulation parameters that must match the card for the weights to apply.
_STORE_KEYS = ("sim_version", "seed", "cells", "fields", "hours", "difficulty", "overrides")


class ReferenceError(RuntimeError):
    """The reference weights are missing, or do not belong to this store; the message says what to do."""


def reference_dir() -> Path:
    """``data/reference/`` of the project (where ``make model`` writes and the chapters read)."""
    return repo_root(Path(__file__).resolve().parent) / "data" / "reference"


def read_card(folder: str | os.PathLike | None = None) -> dict[str, Any]:
    """The reference card; ReferenceError naming the file and the command when it is missing."""
    path = Path(folder or reference_dir()) / CARD_NAME
    if not path.is_file():
        raise ReferenceError(f"{path}: no reference card; train the reference networks with `make model`")
    return json.loads(path.read_text())


def store_identity(store: Any) -> dict[str, Any]:
    """What names a simulated movie: simulator version and parameters, and what it produced."""
    params = store.meta.get("provenance", {}).get("parameters", {})
    ident = {k: params.get(k) for k in _STORE_KEYS}
    ident["crops"] = int(store.n_cells)
    ident["tracks"] = int(store.cells["track_id"].nunique())
    return ident


def oracle_predictions(store: Any, folder: str | os.PathLike | None = None) -> pd.DataFrame:
    """``cell_id, cycle_cos, cycle_sin`` of the oracle-label network on the held-out cells of ``store``,
    checked: the card must name this store and the file must be the one it records."""
    folder = Path(folder or reference_dir())
    card = read_card(folder)
    oracle = card.get("oracle")
    if oracle is None:
        raise ReferenceError(f"{folder / CARD_NAME}: no oracle-label run; make it with `deepcycle reference oracle`")
    if card["data"]["store"] != store_identity(store):
        raise ReferenceError(f"{store.path}: the oracle-label run belongs to another movie (the card's store differs)")
    path = folder / oracle["file"]
    if not path.is_file() or fp.file_digest(path) != oracle["sha256"]:
        raise ReferenceError(f"{path}: missing or not the file the card records; remake it with `deepcycle reference oracle`")
    return pd.read_parquet(path)
