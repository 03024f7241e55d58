"""The checkpoint file: how a trained network is written and safely read back.

Training writes checkpoints and every later stage (embedding, validation) reads them, so the format
lives next to the network and not in the training loop: inference imports this module and never the
optimiser or the data loaders.

A checkpoint is a dict ``{format, version, kind, info, config, model, ...}`` saved with ``torch.save``.
It is written atomically (:mod:`deepcycle_core.data.atomic`: temporary file, then rename), so a crash never
leaves a half-written ``best.pt``, and read only with ``torch.load(weights_only=True)``, so a malicious file cannot run code.
Every failure raises :class:`CheckpointError` naming the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..data.atomic import atomic_write
from .model import DeepCycleNet

__all__ = [
    "CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "CheckpointError", "load_checkpoint", "load_model", "save_checkpoint",
]

CHECKPOINT_FORMAT = "deepcycle-checkpoint"
CHECKPOINT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, foreign or incompatible; the message names the file."""


def save_checkpoint(path: str | os.PathLike, kind: str, **fields: Any) -> Path:
    """Write ``{format, version, kind, **fields}`` to ``path`` atomically; return the path.

    ``fields`` must hold ``info`` (what inference needs, see :func:`load_model`) and ``model`` (the
    state dict, on CPU); a training run adds optimiser, scheduler and RNG state to resume from.
    """
    path = Path(path)
    obj = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "kind": kind, **fields}
    return atomic_write(path, lambda tmp: torch.save(obj, tmp))


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a DeepCycle checkpoint with ``weights_only=True``; anything else raises CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: not a readable checkpoint (corrupt, truncated or not weights-only): {exc}") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a DeepCycle checkpoint (foreign file; expected format {CHECKPOINT_FORMAT!r})")
    if ckpt.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: checkpoint version {ckpt.get('version')!r}, this package reads {CHECKPOINT_VERSION}")
    for key in ("model", "info"):
        if key not in ckpt:
            raise CheckpointError(f"{path}: checkpoint lacks {key!r}")
    return ckpt


def load_model(checkpoint: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[DeepCycleNet, dict[str, Any]]:
    """The trained network (eval mode, on ``device``) and its ``info`` from ``best.pt``/``last.pt``.

    ``info`` holds what inference needs: ``channels`` (store channel names in input order), ``roles``,
    ``mode``, ``in_channels``, ``backbone``, ``truncate``, ``class_names``, ``normalisation``, and
    ``cycle_head`` (+ ``cycle_T_hours``) when the network also reads the cycle position.
    """
    ckpt = load_checkpoint(checkpoint)
    info = dict(ckpt["info"])
    try:
        net = DeepCycleNet(
            in_channels=int(info["in_channels"]),
            backbone=str(info["backbone"]),
            truncate=bool(info["truncate"]),
            n_classes=int(info.get("n_classes", 4)),
            pretrained=None,
            cycle_head=bool(info.get("cycle_head", False)),
            cycle_bins=int(info.get("cycle_bins", 0)),
        )
        net.load_state_dict(ckpt["model"], strict=True)
    except (KeyError, RuntimeError, ValueError) as exc:
        raise CheckpointError(f"{checkpoint}: model weights do not match the recorded network ({exc})") from exc
    return net.to(device).eval(), info
