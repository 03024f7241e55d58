"""What the network is fed: the store channels of a mode (by role) and their per-frame normalisation.

This is a data contract shared by training, embedding, validation and the raw-pixel baseline, so it
lives here, free of torch: every consumer must see exactly the numbers the network was trained on.

* **Channels** -- a training *mode* names channel *roles* (:data:`MODES`), not channel names, so a
  network trained on one store embeds another whose channels are named differently.
* **Normalisation** (as in the paper) -- every channel of every crop becomes ``(x - frame median) /
  frame std``, with the statistics of the whole frame the crop was cut from
  (``CellStore.frame_stats``), so bleaching and illumination drift between frames do not leak into
  the classes. The arithmetic is float32 throughout (one subtraction, one division per pixel).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..data.store import CellStore, StoreError

__all__ = ["MODES", "NORMALISATION", "frame_norm", "mode_channels", "normalise_crops"]

#: Training modes -> the channel roles the network sees, in this order.
MODES: dict[str, tuple[str, ...]] = {
    "both": ("nuclear", "brightfield"),
    "bf_only": ("brightfield",),
    "nuclear_only": ("nuclear",),
    # the same channels as "both", trained size-blind (deepcycle_core.net.dataset.SIZE_BLIND_ZOOM): each
    # training crop is zoomed at random with its nuclear stain's integral kept, so the network must read
    # the cycle from DNA content, chromatin and shape, not from size -- for treated cells that keep growing
    "both_sizeblind": ("nuclear", "brightfield"),
}

#: The record of this rule that training writes into every checkpoint's ``info`` and its summary.
#: Its text is part of those files' bytes, so it is kept verbatim (the ``deepcycle_core.net.dataset``
#: names it gives still work: dataset re-exports :func:`frame_norm` and wraps :func:`normalise_crops`).
NORMALISATION: dict[str, str] = {
    "method": "frame_median_std",
    "formula": "(x - median of the crop's whole frame) / std of that frame, per channel",
    "function": "deepcycle_core.net.dataset.normalise_crops(crops, *deepcycle_core.net.dataset.frame_norm(store, channels))",
}


def mode_channels(store: CellStore, mode: str) -> list[int]:
    """Store channel indices the network reads in ``mode`` (raises naming the store if one is missing)."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose from {sorted(MODES)}")
    return [store.channel_index(role) for role in MODES[mode]]


def frame_norm(store: CellStore, channels: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell, per-channel frame (median, std), each float32 (n_cells, len(channels)).

    Refuses missing, non-finite or non-positive statistics: a NaN here would silently poison every
    crop of that frame downstream.
    """
    meds, stds = [], []
    for ci in channels:
        name = store.channels[ci]
        med, std = store.frame_stats(name)
        bad = ~np.isfinite(med) | ~np.isfinite(std) | (std <= 0)
        if bad.any():
            raise StoreError(
                f"{store.path / 'frames.parquet'}: channel {name!r} has {int(bad.sum())} cell(s) whose frame "
                "median/std is missing, not finite or std <= 0; cannot normalise"
            )
        meds.append(med)
        stds.append(std)
    return np.stack(meds, 1).astype(np.float32), np.stack(stds, 1).astype(np.float32)


def normalise_crops(crops: np.ndarray, med: np.ndarray, std: np.ndarray) -> np.ndarray:
    """The network input: ``(crops - med) / std`` as a float32 array (n, C, 48, 48).

    ``crops``: uint16 (or any numeric, a CPU tensor too) array (n, C, 48, 48) holding only the
    network channels in the model's order; ``med``/``std``: (n, C) per-cell frame statistics of those
    channels (from :func:`frame_norm`), or (C,) to use one value per channel.
    """
    x = np.asarray(crops, dtype=np.float32)
    if x.ndim != 4:
        raise ValueError(f"crops must be (n, C, H, W), got shape {tuple(x.shape)}")
    m = np.asarray(med, dtype=np.float32)
    s = np.asarray(std, dtype=np.float32)
    if m.ndim == 1:
        m, s = m[None], s[None]
    return (x - m[:, :, None, None]) / s[:, :, None, None]
