"""From the cell store to normalised, augmented training batches, streamed chunk by chunk.

* Which channels and how they are normalised (per-frame median and std, as in the paper) is the
  network's input contract, shared with inference: :mod:`deepcycle_core.net.normalise` (torch-free).
* The split (:mod:`deepcycle_core.data.split`) is BY TRACK and BY LINEAGE: every full-cycle track is held
  out, its mother and daughters are excluded, the rest is split by track into train / val.
* Batches are read in store chunks: an epoch's order is shuffled chunk-group by chunk-group, so the
  reader holds a few decoded chunks at a time (memory bounded by chunk size, not data size), and the
  order is a pure function of ``(seed, epoch)`` so an interrupted run resumes exactly.
* Augmentation (the 8 flips/90-degree rotations of the square) and class balancing are applied here,
  and for a size-blind mode (:data:`SIZE_BLIND_ZOOM`) a random zoom that keeps each nucleus's
  integrated stain (:func:`stain_conserving_zoom`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import pandas as pd
import torch
import zarr
from torch.utils.data import IterableDataset, get_worker_info

from .normalise import MODES, frame_norm, mode_channels  # noqa: F401  (the input contract: normalise.py)
from .normalise import normalise_crops as _normalise_np
from ..data.split import SPLITS, make_split, read_split, write_split  # noqa: F401  (the split is a data contract: split.py)
from ..data.store import CROPS_NAME, CellStore

__all__ = [
    "MODES", "SIZE_BLIND_ZOOM", "SPLITS", "CellBatches", "TrainingData", "chunk_order", "class_weights", "dihedral", "epoch_sample",
    "frame_norm", "make_split", "mode_channels", "normalise_crops", "read_split", "stain_conserving_zoom", "write_split",
]

#: Modes trained size-blind -> half-range of the random log zoom (0.3: x0.74 to x1.35, about the growth of
#: a nucleus's radius from birth to mitosis, so any size is seen at any point of the cycle).
SIZE_BLIND_ZOOM: dict[str, float] = {"both_sizeblind": 0.3}


def normalise_crops(crops: np.ndarray | torch.Tensor, med: np.ndarray, std: np.ndarray) -> torch.Tensor:
    """:func:`deepcycle_core.net.normalise.normalise_crops` as a float32 tensor, for torch callers.

    The rule itself is a torch-free data contract (:mod:`deepcycle_core.net.normalise`); this wrapper only
    changes the container, and its name is the one checkpoints record (``NORMALISATION``).
    """
    return torch.from_numpy(_normalise_np(crops, med, std))


# ----------------------------------------------------------------------------------------------
# epoch plans: which cells, in which order
# ----------------------------------------------------------------------------------------------
def class_weights(labels: np.ndarray, n_classes: int = 4) -> np.ndarray:
    """Inverse-frequency weights (mean 1 over the present classes); raises on an empty class."""
    counts = np.bincount(labels, minlength=n_classes)[:n_classes].astype(np.float64)
    if (counts == 0).any():
        raise ValueError(f"class(es) {np.nonzero(counts == 0)[0].tolist()} have no training cells; cannot train 4 classes")
    w = counts.sum() / (n_classes * counts)
    return w.astype(np.float32)


def epoch_sample(
    indices: np.ndarray, labels: np.ndarray, n_samples: int | None, seed: int, epoch: int, balance: str
) -> np.ndarray:
    """The cells of one epoch (pure function of seed and epoch).

    ``balance='sampler'`` draws ``n_samples`` (default: all) with replacement, each class equally
    likely (as torch's WeightedRandomSampler); otherwise a random subset without replacement.
    """
    rng = np.random.default_rng([int(seed), int(epoch), 1])
    n = len(indices) if n_samples is None else int(n_samples)
    if balance == "sampler":
        w = class_weights(labels)[labels].astype(np.float64)
        return indices[rng.choice(len(indices), size=n, replace=True, p=w / w.sum())]
    if n >= len(indices):
        return indices.copy()
    return indices[np.sort(rng.choice(len(indices), size=n, replace=False))]


def chunk_order(sample: np.ndarray, chunk_cells: int, buffer_chunks: int, seed: int, epoch: int) -> np.ndarray:
    """Shuffle ``sample`` so that consecutive runs touch only ``buffer_chunks`` store chunks at a time.

    Chunks are visited in a random order, grouped ``buffer_chunks`` at a time, and the cells of each
    group are shuffled together: a chunked shuffle buffer, deterministic in (seed, epoch).
    """
    rng = np.random.default_rng([int(seed), int(epoch), 2])
    chunk = sample // chunk_cells
    uniq = np.unique(chunk)
    rank = np.empty(int(uniq.max(initial=0)) + 1, dtype=np.int64)
    rank[uniq[rng.permutation(len(uniq))]] = np.arange(len(uniq))
    group = rank[chunk] // max(1, buffer_chunks)
    return sample[np.lexsort((rng.random(len(sample)), group))]


def dihedral(x: np.ndarray, code: np.ndarray) -> np.ndarray:
    """Apply one of the 8 symmetries of the square to each crop: rot90 by code % 4, then flip if code >= 4."""
    out = np.empty_like(x)
    for c in range(8):
        sel = np.nonzero(code == c)[0]
        if len(sel) == 0:
            continue
        y = np.rot90(x[sel], k=c % 4, axes=(2, 3))
        if c >= 4:
            y = y[:, :, :, ::-1]
        out[sel] = y
    return out


def stain_conserving_zoom(x: np.ndarray, log_zoom: np.ndarray, nuclear: Sequence[int]) -> np.ndarray:
    """Zoom each normalised crop (n, C, h, w) about its centre by ``exp(log_zoom)`` (bilinear, edges
    repeated), dividing the ``nuclear`` channels by the zoom squared so that each nucleus keeps its
    integrated stain over the background (0 after frame normalisation).

    Why: on untreated cells nuclear size rises with the cycle, so a network learns size; a drug that
    holds cells in G1 while they grow then reads them as S. Zoomed this way, size says nothing about
    the class, while the DNA content (the stain's integral), chromatin texture and mitotic shapes
    still do.
    """
    import torch.nn.functional as F

    z = np.exp(np.asarray(log_zoom, dtype=np.float64))
    n = len(x)
    theta = np.zeros((n, 2, 3), dtype=np.float32)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0 / z  # the output samples the input 1/z as far out: a zoom by z
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    grid = F.affine_grid(torch.from_numpy(theta), list(t.shape), align_corners=False)
    out = F.grid_sample(t, grid, mode="bilinear", padding_mode="border", align_corners=False).numpy()
    if len(nuclear):
        out[:, list(nuclear)] /= (z * z).astype(np.float32)[:, None, None, None]
    return out


# ----------------------------------------------------------------------------------------------
# the streaming batch reader
# ----------------------------------------------------------------------------------------------
@dataclass
class CellBatches(IterableDataset):
    """Yields ``(x float32 (B,C,48,48), y int64 (B,), cell_ids int64 (B,))`` in the order ``order``.

    Reads whole store chunks into a small cache and evicts a chunk once the order has passed its last
    use, so memory stays <= 2 * buffer_chunks chunks per reader (two groups while a batch spans their edge). ``rank``/``world`` shard each global
    batch of ``batch_size * world`` cells (DDP: every rank gets its own ``batch_size`` slice of the same
    global batch, like DistributedSampler); DataLoader workers take every n-th batch, so the batch
    order is the same with or without workers. Augmentation codes are drawn per (seed, epoch, batch),
    so they do not depend on workers or on where a resumed run started.
    """

    crops_path: str
    order: np.ndarray
    labels: np.ndarray  # per store cell (class, -1 unlabelled)
    med: np.ndarray  # (n_cells, C) for the network channels
    std: np.ndarray
    channels: Sequence[int]
    batch_size: int
    chunk_cells: int
    augment: bool = False
    zoom: float = 0.0  # > 0: size-blind training, random log zoom in [-zoom, zoom] (stain_conserving_zoom)
    nuclear: Sequence[int] = ()  # positions of the nuclear channels among ``channels`` (for the zoom)
    seed: int = 0
    epoch: int = 0
    start_batch: int = 0
    drop_last: bool = False
    rank: int = 0
    world: int = 1

    def __post_init__(self) -> None:
        super().__init__()
        self.order = np.asarray(self.order, dtype=np.int64)

    @property
    def n_batches(self) -> int:
        g = self.batch_size * self.world
        return len(self.order) // g if self.drop_last else math.ceil(len(self.order) / g)

    def __len__(self) -> int:
        return max(0, self.n_batches - self.start_batch)

    def batch_cells(self, b: int) -> np.ndarray:
        """Store indices of this rank's part of global batch ``b``."""
        g = self.batch_size * self.world
        glob = self.order[b * g : (b + 1) * g]
        if self.world == 1:
            return glob
        per = math.ceil(len(glob) / self.world)
        return glob[self.rank * per : (self.rank + 1) * per]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        info = get_worker_info()
        wid, nw = (0, 1) if info is None else (info.id, info.num_workers)
        crops = zarr.open_array(self.crops_path, mode="r")
        n_total = int(crops.shape[0])
        chunk_of = self.order // self.chunk_cells
        last_use = np.full(int(chunk_of.max(initial=0)) + 1, -1, dtype=np.int64)
        np.maximum.at(last_use, chunk_of, np.arange(len(chunk_of)))
        cache: dict[int, np.ndarray] = {}
        self.max_cached_chunks = 0  # observable in-process (tests check the memory bound)
        chans = list(self.channels)
        g = self.batch_size * self.world
        for b in range(self.start_batch, self.n_batches):
            if (b - self.start_batch) % nw != wid:
                continue
            for c in [c for c in cache if last_use[c] < b * g]:
                del cache[c]
            idx = self.batch_cells(b)
            if len(idx) == 0:
                continue
            raw = np.empty((len(idx), len(chans), *crops.shape[2:]), dtype=np.uint16)
            idx_chunk = idx // self.chunk_cells
            for c in np.unique(idx_chunk):
                c = int(c)
                if c not in cache:
                    block = np.asarray(crops[c * self.chunk_cells : min((c + 1) * self.chunk_cells, n_total)])
                    cache[c] = np.ascontiguousarray(block[:, chans])
                sel = idx_chunk == c
                raw[sel] = cache[c][idx[sel] - c * self.chunk_cells]
            self.max_cached_chunks = max(self.max_cached_chunks, len(cache))
            x = _normalise_np(raw, self.med[idx], self.std[idx])
            if self.augment:
                rng = np.random.default_rng([int(self.seed), int(self.epoch), int(b), 3])
                x = dihedral(x, rng.integers(0, 8, size=len(idx)))
            if self.zoom > 0:
                rng_z = np.random.default_rng([int(self.seed), int(self.epoch), int(b), 5])
                x = stain_conserving_zoom(x, rng_z.uniform(-self.zoom, self.zoom, size=len(idx)), self.nuclear)
            yield (
                torch.from_numpy(np.ascontiguousarray(x)),
                torch.from_numpy(self.labels[idx].astype(np.int64)),
                torch.from_numpy(idx.astype(np.int64)),
            )


@dataclass
class TrainingData:
    """Everything the training loop needs from a store, for one mode: split, labels, normalisation."""

    store: CellStore
    mode: str
    channels: list[int]
    split: pd.DataFrame
    labels: np.ndarray
    med: np.ndarray
    std: np.ndarray

    @classmethod
    def from_store(
        cls, store: CellStore, mode: str = "both", val_fraction: float = 0.2, seed: int = 0, split: pd.DataFrame | None = None
    ) -> "TrainingData":
        channels = mode_channels(store, mode)
        if split is None:
            split = make_split(store.cells, val_fraction=val_fraction, seed=seed)
        elif len(split) != store.n_cells or not np.array_equal(split["cell_id"].to_numpy(), np.arange(store.n_cells)):
            raise ValueError(f"the split table does not match the store {store.path} ({len(split)} rows, {store.n_cells} cells)")
        labels = store.cells["class"].to_numpy().astype(np.int64)
        med, std = frame_norm(store, channels)
        return cls(store, mode, channels, split, labels, med, std)

    def indices(self, which: str, labelled: bool = True) -> np.ndarray:
        """Store indices of a split (only labelled cells by default)."""
        sel = self.split["split"].to_numpy() == which
        if labelled:
            sel &= self.labels >= 0
        return np.nonzero(sel)[0]

    def subset(self, which: str, max_cells: int | None, seed: int) -> np.ndarray:
        """A fixed (seeded) subset of a split, sorted for chunk-friendly reading."""
        idx = self.indices(which)
        if max_cells is not None and len(idx) > max_cells:
            rng = np.random.default_rng([int(seed), 4, SPLITS.index(which)])
            idx = np.sort(rng.choice(idx, size=int(max_cells), replace=False))
        return idx

    @property
    def nuclear_positions(self) -> list[int]:
        """Positions of the nuclear channels in this mode's input (what the size-blind zoom rescales)."""
        return [i for i, role in enumerate(MODES[self.mode]) if role == "nuclear"]

    def batches(self, order: np.ndarray, batch_size: int, **kw) -> CellBatches:
        return CellBatches(
            crops_path=str(self.store.path / CROPS_NAME),
            order=order,
            labels=self.labels,
            med=self.med,
            std=self.std,
            channels=self.channels,
            batch_size=batch_size,
            chunk_cells=self.store.chunk_cells,
            **kw,
        )
