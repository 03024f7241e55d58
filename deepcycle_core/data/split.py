"""Which cells train, which choose the checkpoint, which are the evidence: the held-out split.

The split is a data contract between stages (training writes it, trajectory and validation read it),
so it lives here, free of torch.

* **heldout** -- every cell of every *full-cycle* track (born and divided inside the movie). These
  are the validation chapter's evidence: never trained on, never used to pick a checkpoint, never
  used to fit a ring or a FUCCI gate.
* **excluded** -- every cell of a held-out track's **mother** and **daughters**. A mother and its
  daughters share the held-out cell's lineage (cycle lengths are correlated between relatives, and
  a mother's last frames and a daughter's first frames show the very division that bounds the
  held-out cycle), so they would leak information about the evidence; they are used for nothing.
* **train** / **val** -- the remaining tracks, split by track (all crops of one track on one side, so
  near-identical neighbouring frames cannot inflate the validation accuracy), seeded.

How many full-cycle tracks are held out (:func:`lineage_holdout`): full-cycle tracks carry EXACT
positions and their relatives most of the late-cycle labels, so holding out all of them starves
training where the clock is weakest. When a movie has more than :data:`MIN_HELDOUT_TRACKS` of them,
:data:`HELDOUT_SHARE` of them are held out (at least :data:`MIN_HELDOUT_TRACKS`), by whole **family
trees** (a founder and all its descendants; a fixed, data-independent draw over the trees): a held-out
tree's other tracks are excluded, and the other trees train. A movie with fewer holds all of them out
(:func:`holdout_masks`, the rule of the FUCCI gates, which are fitted before any split exists and so
never see a held-out cell whatever share the split holds out).

Only ``train`` and ``val`` cells (:data:`FIT_SPLITS`) may be used to fit anything downstream.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .atomic import write_parquet_atomic

__all__ = [
    "SPLITS",
    "FIT_SPLITS",
    "track_keys",
    "holdout_masks",
    "HELDOUT_SHARE",
    "MIN_HELDOUT_TRACKS",
    "family_trees",
    "lineage_holdout",
    "fit_mask",
    "make_split",
    "write_split",
    "read_split",
]

SPLITS: tuple[str, ...] = ("train", "val", "heldout", "excluded")

#: The splits whose cells may train a network or fit a ring, a gate or a calibration.
FIT_SPLITS: tuple[str, ...] = ("train", "val")


def track_keys(cells: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """``(key, parent_key)`` per cell: integers naming its ``(field, track_id)`` and its mother's.

    Untracked cells (track_id -1) are their own negative key; cells without a mother get -1.
    """
    tid = cells["track_id"].to_numpy().astype(np.int64)
    field = cells["field"].to_numpy().astype(np.int64) if "field" in cells.columns else np.zeros(len(cells), np.int64)
    parent = (cells["parent_track_id"].fillna(-1).to_numpy().astype(np.int64)
              if "parent_track_id" in cells.columns else np.full(len(cells), -1, dtype=np.int64))
    width = int(max(tid.max(initial=0), parent.max(initial=0))) + 1
    key = np.where(tid >= 0, field * width + tid, -1 - np.arange(len(cells), dtype=np.int64))
    parent_key = np.where((tid >= 0) & (parent >= 0), field * width + parent, -1)
    return key, parent_key


def holdout_masks(cells: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """``(heldout, excluded)`` boolean masks over the rows of a cell table.

    Needs ``track_id, full_cycle`` (and ``field``, ``parent_track_id`` when present). A pure
    function of the track structure -- no seed -- so every stage (and the store's FUCCI gating, which
    runs before any split file exists) agrees on it.
    """
    missing = [c for c in ("track_id", "full_cycle") if c not in cells.columns]
    if missing:
        raise ValueError(f"the cell table lacks column(s) {missing} needed to hold out full-cycle tracks")
    key, parent_key = track_keys(cells)
    full = cells["full_cycle"].to_numpy().astype(bool) & (cells["track_id"].to_numpy() >= 0)
    held_keys = np.unique(key[full])
    heldout = np.isin(key, held_keys)
    # relatives: the mothers of held-out tracks, and the tracks whose mother is held out
    mother_keys = np.unique(parent_key[heldout & (parent_key >= 0)])
    relative = np.isin(key, mother_keys) | ((parent_key >= 0) & np.isin(parent_key, held_keys))
    excluded = relative & ~heldout & (key >= 0)
    return heldout, excluded


#: Share of a movie's full-cycle tracks that the split holds out (by whole family trees) ...
HELDOUT_SHARE = 0.5
#: ... but never fewer than this many tracks (a movie with fewer holds every one out).
MIN_HELDOUT_TRACKS = 60
#: The draw of held-out family trees is a property of the data, not of the training seed.
_HOLDOUT_DRAW = 24


def family_trees(cells: pd.DataFrame) -> np.ndarray:
    """Per row, the key (:func:`track_keys`) of the oldest recorded ancestor of its track: rows with the same
    value belong to one family tree (a founder and its descendants). Untracked rows are their own tree."""
    key, parent_key = track_keys(cells)
    tracked = key >= 0
    parent_of = pd.Series(parent_key[tracked], index=key[tracked]).groupby(level=0).first()
    root = pd.Series(parent_of.index.to_numpy(), index=parent_of.index)
    for _ in range(10_000):  # climb one generation a pass; a movie has few generations
        up = parent_of.reindex(root.to_numpy()).to_numpy()
        step = np.isfinite(up) & (up >= 0) & np.isin(up, parent_of.index.to_numpy())
        if not step.any():
            break
        root = root.where(~step, up.astype(np.int64))
    out = key.copy()
    out[tracked] = root.reindex(key[tracked]).to_numpy(dtype=np.int64)
    return out


def lineage_holdout(
    cells: pd.DataFrame, share: float = HELDOUT_SHARE, min_tracks: int = MIN_HELDOUT_TRACKS
) -> tuple[np.ndarray, np.ndarray]:
    """``(heldout, excluded)`` masks: ``share`` of the full-cycle tracks (at least ``min_tracks``) held out
    by whole family trees, the held-out trees' other tracks excluded (see the module docstring). With
    ``share`` >= 1 or too few full-cycle tracks, :func:`holdout_masks` (every full-cycle track)."""
    if not 0.0 < share <= 1.0:
        raise ValueError(f"the held-out share must lie in (0, 1], got {share!r}")
    every, excluded_all = holdout_masks(cells)
    key = track_keys(cells)[0]
    n_full = int(np.unique(key[every]).size)
    n_hold = min(n_full, max(int(min_tracks), int(np.ceil(share * n_full))))
    if n_hold >= n_full:
        return every, excluded_all
    tree = family_trees(cells)
    full_keys = pd.Series(key[every]).groupby(tree[every]).nunique()  # full-cycle tracks per tree
    order = full_keys.index.to_numpy()[np.random.default_rng(_HOLDOUT_DRAW).permutation(len(full_keys))]
    counts = full_keys.reindex(order).to_numpy()
    chosen = order[: int(np.searchsorted(np.cumsum(counts), n_hold) + 1)]
    in_tree = np.isin(tree, chosen) & (key >= 0)
    heldout = every & in_tree
    return heldout, in_tree & ~heldout


def fit_mask(cells: pd.DataFrame) -> np.ndarray:
    """Rows that may be used for fitting anything (neither held out nor a held-out track's relative)."""
    heldout, excluded = holdout_masks(cells)
    return ~(heldout | excluded)


def make_split(
    cells: pd.DataFrame, val_fraction: float = 0.2, seed: int = 0, heldout_share: float = HELDOUT_SHARE
) -> pd.DataFrame:
    """``cell_id, split`` with split in :data:`SPLITS` (see the module docstring).

    Held out: :func:`lineage_holdout` with ``heldout_share`` (1 = every full-cycle track). Of the tracks
    that are neither held out nor excluded, a seeded random set holding about ``val_fraction`` of their
    cells is ``val``; at least one track stays ``train``.
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    heldout, excluded = lineage_holdout(cells, heldout_share)
    groups, inverse, counts = np.unique(track_keys(cells)[0], return_inverse=True, return_counts=True)
    label = np.full(len(cells), "train", dtype=object)
    label[heldout] = "heldout"
    label[excluded] = "excluded"
    free = np.ones(len(groups), dtype=bool)
    np.logical_and.at(free, inverse, ~(heldout | excluded))
    rest = np.nonzero(free)[0]
    rng = np.random.default_rng([int(seed), 9173])
    rest = rest[rng.permutation(len(rest))]
    target = val_fraction * counts[rest].sum()
    n_val = int(np.searchsorted(np.cumsum(counts[rest]), target) + 1) if len(rest) else 0
    n_val = min(n_val, max(len(rest) - 1, 0))  # keep at least one training group
    is_val = np.zeros(len(groups), dtype=bool)
    is_val[rest[:n_val]] = True
    label[is_val[inverse]] = "val"
    return pd.DataFrame({"cell_id": cells["cell_id"].to_numpy(), "split": pd.Categorical(label, SPLITS)})


def write_split(split: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write a split table atomically (temporary name, then rename)."""
    path = Path(path)
    out = split.copy()
    out["split"] = out["split"].astype(str)
    write_parquet_atomic(path, out)


def read_split(path: str | os.PathLike) -> pd.DataFrame:
    """A split table, checked: columns ``cell_id, split`` with known split names."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no split table; run the training stage first (it fixes the held-out tracks)")
    try:
        df = pd.read_parquet(path)
    except Exception as exc:
        raise ValueError(f"{path}: cannot read the split table ({exc})") from exc
    if list(df.columns[:2]) != ["cell_id", "split"] or not df["split"].isin(SPLITS).all():
        raise ValueError(f"{path}: a split table needs columns cell_id, split in {SPLITS}")
    return df
