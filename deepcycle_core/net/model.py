"""The DeepCycle network: C image channels -> 4 FUCCI-class logits, and the 4-number descriptor.

The architecture follows Rappez et al. (2020): a learned 1x1 convolution maps the C input channels
(Hoechst + brightfield, or one of them) to the 3 channels an ImageNet backbone expects, a torchvision
ResNet (optionally cut after its third stage, as in the paper) extracts features, global average
pooling and one linear layer give 4 logits. The per-cell descriptor is ``log(softmax + 1e-7)``.

ImageNet weights are never downloaded: they are read from the local torch hub cache or from a file
the user names; otherwise the model says so once and starts from random initialisation.
"""

from __future__ import annotations

import math

import logging
import os
import warnings
from collections import OrderedDict
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torchvision import models

__all__ = [
    "BACKBONES", "CYCLE_BINS", "DESCRIPTOR_EPS", "N_CLASSES", "PRESETS", "DeepCycleNet", "Preset", "bin_centres",
    "build_model", "descriptor_from_logits", "distribution_readout", "soft_bin_targets", "get_preset", "imagenet_cache_path", "load_backbone_state", "resolve_pretrained",
    "use_bf16",
]

_log = logging.getLogger(__name__)

N_CLASSES = 4
DESCRIPTOR_EPS = 1e-7

#: backbone name -> (constructor, ImageNet weight enum member)
BACKBONES: dict[str, tuple[Callable[..., models.ResNet], Any]] = {
    "resnet18": (models.resnet18, models.ResNet18_Weights.IMAGENET1K_V1),
    "resnet34": (models.resnet34, models.ResNet34_Weights.IMAGENET1K_V1),
    "resnet50": (models.resnet50, models.ResNet50_Weights.IMAGENET1K_V1),
}


@dataclass(frozen=True)
class Preset:
    """Network + optimisation recipe. ``paper`` is the original; ``default`` fits 2 CPU cores."""

    name: str
    backbone: str = "resnet18"
    truncate: bool = True  # cut after stage 3 (layer3), as the paper did
    optimizer: str = "adamw"  # 'sgd' (Nesterov) or 'adamw'
    lr: float = 3e-3
    momentum: float = 0.9
    weight_decay: float = 1e-4
    schedule: str = "onecycle"  # 'onecycle' or 'constant'
    batch_size: int = 128
    epochs: int = 6
    augment: bool = True  # random flips + 90 degree rotations
    balance: str = "sampler"  # 'sampler' (class-weighted sampling), 'loss' (weighted loss) or 'none'
    bf16: bool | str = "auto"  # bf16 autocast: 'auto' = only where the hardware has native bf16 (see use_bf16)
    channels_last: bool = True
    # weight of the cycle-position loss (deepcycle_core.net.cycle_targets): > 0 adds a second head that
    # regresses (cos, sin) of the cycle position from the movie's partial tracks; 0 = the paper's
    # network, 4 class outputs only.
    cycle_weight: float = 0.0
    # the cycle head's form: 0 = regress (cos, sin) (an L2 fit averages ambiguous cells toward the middle
    # of the positions they could be at); K > 0 = a distribution over K bins of the cycle, learned with
    # soft targets, read by its circular median, with its spread as the cell's confidence
    cycle_bins: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: Bins of the default preset's cycle distribution head.
CYCLE_BINS = 24

PRESETS: dict[str, Preset] = {
    # The original: ResNet34 cut after stage 3, SGD Nesterov momentum 0.95, lr 1e-3, batch 32,
    # no augmentation actually applied and no class balancing (the median gates balance the classes).
    "paper": Preset(
        name="paper",
        backbone="resnet34",
        truncate=True,
        optimizer="sgd",
        lr=1e-3,
        momentum=0.95,
        weight_decay=0.0,
        schedule="constant",
        batch_size=32,
        epochs=10,
        augment=False,
        balance="none",
        bf16=False,
        channels_last=False,
        cycle_weight=0.0,
    ),
    # What trains best in a few minutes on 2 CPU cores: the lighter ResNet18 cut after stage 3
    # (about 2x the paper network's training throughput), AdamW with a one-cycle schedule (converges in
    # few epochs), batch 128, channels-last, bf16 autocast only where the hardware runs it natively
    # (on an AVX2-only CPU bf16 is emulated and ~20x SLOWER; measured in benchmarks/train.py).
    # Besides the 4 classes it learns the cycle position of the cells whose tracks saw a birth or a
    # division (a second head of 2 outputs on the same pooled features; see deepcycle_core.net.cycle_targets).
    # The cycle head predicts a distribution over 24 bins of the cycle (~1.1 h each at a 26 h cycle).
    "default": Preset(name="default", cycle_weight=1.0, cycle_bins=CYCLE_BINS),
}


def get_preset(preset: str | Preset, **overrides: Any) -> Preset:
    """Resolve a preset by name and apply overrides (unknown keys raise a clear error)."""
    if isinstance(preset, Preset):
        base = preset
    else:
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; known presets: {sorted(PRESETS)}")
        base = PRESETS[preset]
    fields = set(Preset.__dataclass_fields__)
    bad = sorted(k for k in overrides if k not in fields)
    if bad:
        raise ValueError(f"unknown preset parameter(s) {bad}; known: {sorted(fields)}")
    out = replace(base, **{k: v for k, v in overrides.items() if v is not None})
    if out.backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {out.backbone!r}; choose from {sorted(BACKBONES)}")
    if out.optimizer not in ("sgd", "adamw"):
        raise ValueError(f"unknown optimizer {out.optimizer!r}; choose 'sgd' or 'adamw'")
    if out.schedule not in ("onecycle", "constant"):
        raise ValueError(f"unknown schedule {out.schedule!r}; choose 'onecycle' or 'constant'")
    if not (np.isfinite(out.cycle_weight) and out.cycle_weight >= 0):
        raise ValueError(f"cycle_weight must be a finite number >= 0, got {out.cycle_weight!r}")
    if not (isinstance(out.cycle_bins, (int, np.integer)) and (out.cycle_bins == 0 or out.cycle_bins >= 4)):
        raise ValueError(f"cycle_bins must be 0 (a (cos, sin) head) or a whole number >= 4, got {out.cycle_bins!r}")
    if out.balance not in ("sampler", "loss", "none"):
        raise ValueError(f"unknown balance {out.balance!r}; choose 'sampler', 'loss' or 'none'")
    return out


# ----------------------------------------------------------------------------------------------
# pretrained weights (offline only)
# ----------------------------------------------------------------------------------------------
_WARNED: set[str] = set()


def imagenet_cache_path(backbone: str) -> Path:
    """Where torchvision would keep this backbone's ImageNet weights in the local torch hub cache."""
    _, weights = BACKBONES[backbone]
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)


def _say_once(key: str, message: str) -> None:
    if key in _WARNED:
        return
    _WARNED.add(key)
    warnings.warn(message, stacklevel=3)  # shown once by us (not once per warnings-registry location)


def resolve_pretrained(backbone: str, pretrained: bool | str | os.PathLike | None) -> Path | None:
    """The weight file to load, or None for random initialisation. Never touches the network.

    ``pretrained``: ``"auto"``/``True`` = the local torch cache if the file is there (else say so once
    and use random init); ``None``/``False``/``"none"`` = random init; a path = that file (must exist).
    """
    if pretrained is None or pretrained is False or (isinstance(pretrained, str) and pretrained.lower() == "none"):
        return None
    if pretrained is True or (isinstance(pretrained, str) and pretrained.lower() == "auto"):
        path = imagenet_cache_path(backbone)
        if path.is_file():
            return path
        _say_once(
            backbone,
            f"ImageNet weights for {backbone} are not in the local torch cache ({path}); "
            "training from random initialisation (no download is attempted; put the file there "
            "or pass pretrained=<file> to use them).",
        )
        return None
    path = Path(pretrained)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: pretrained weight file not found")
    return path


def load_backbone_state(body: nn.Module, path: Path) -> list[str]:
    """Load a torchvision ResNet state dict into the (possibly truncated) body; return skipped keys."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"{path}: cannot be read as a weights-only torch state dict ({exc})") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: not a state dict of tensors (a torchvision ResNet state dict is expected)")
    own = body.state_dict()
    use = {k: v for k, v in state.items() if k in own}
    missing = sorted(k for k in own if k not in use)
    if missing:
        raise ValueError(f"{path}: does not fit this backbone; {len(missing)} missing key(s) e.g. {missing[:3]}")
    bad = [k for k, v in use.items() if tuple(v.shape) != tuple(own[k].shape)]
    if bad:
        raise ValueError(f"{path}: tensor shapes do not fit this backbone, e.g. {bad[0]}")
    body.load_state_dict(use, strict=True)
    return sorted(k for k in state if k not in own)


# ----------------------------------------------------------------------------------------------
# the network
# ----------------------------------------------------------------------------------------------
class DeepCycleNet(nn.Module):
    """1x1 conv (C -> 3) -> ResNet body (optionally cut after layer3) -> global avg pool -> Linear(4),
    and optionally a second head Linear(2) beside it: (cos, sin) of the cycle position."""

    def __init__(
        self,
        in_channels: int = 2,
        backbone: str = "resnet18",
        truncate: bool = True,
        n_classes: int = N_CLASSES,
        pretrained: bool | str | os.PathLike | None = "auto",
        cycle_head: bool = False,
        cycle_bins: int = 0,
    ) -> None:
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {backbone!r}; choose from {sorted(BACKBONES)}")
        if in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, got {in_channels}")
        self.config = {
            "in_channels": int(in_channels),
            "backbone": backbone,
            "truncate": bool(truncate),
            "n_classes": int(n_classes),
            "cycle_head": bool(cycle_head),
            "cycle_bins": int(cycle_bins) if cycle_head else 0,
        }
        self.adapter = nn.Conv2d(in_channels, 3, kernel_size=1)
        ctor, _ = BACKBONES[backbone]
        net = ctor(weights=None)  # never download; weights come from resolve_pretrained below
        stages: list[tuple[str, nn.Module]] = [
            ("conv1", net.conv1),
            ("bn1", net.bn1),
            ("relu", net.relu),
            ("maxpool", net.maxpool),
            ("layer1", net.layer1),
            ("layer2", net.layer2),
            ("layer3", net.layer3),
        ]
        if not truncate:
            stages.append(("layer4", net.layer4))
        self.body = nn.Sequential(OrderedDict(stages))
        last = stages[-1][1][-1]
        self.n_features = int(last.bn3.num_features if hasattr(last, "bn3") else last.bn2.num_features)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(self.n_features, n_classes)
        self.cycle_bins = int(cycle_bins) if cycle_head else 0
        self.cycle = nn.Linear(self.n_features, self.cycle_bins or 2) if cycle_head else None
        self.pretrained_from: str | None = None
        path = resolve_pretrained(backbone, pretrained)
        if path is not None:
            load_backbone_state(self.body, path)
            self.pretrained_from = path.name
            _log.info("loaded ImageNet weights for %s from %s", backbone, path)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled backbone features (n, n_features): the richer latent space behind the descriptor."""
        return torch.flatten(self.pool(self.body(self.adapter(x))), 1)

    def forward(self, x: torch.Tensor, heads: bool = False) -> Any:
        """Class logits (n, 4); with ``heads=True`` the pair (logits, cycle output (n, 2) or None), so a
        DDP wrapper sees both heads in one forward."""
        f = self.features(x)
        if not heads:
            return self.fc(f)
        return self.fc(f), (self.cycle(f) if self.cycle is not None else None)

    def heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Class logits (n, 4) and the cycle head's (n, 2) output (None without that head), one pass."""
        return self(x, heads=True)

    def descriptor(self, x: torch.Tensor) -> torch.Tensor:
        """The paper's per-cell descriptor: log(softmax(logits) + 1e-7), 4 numbers per cell."""
        return descriptor_from_logits(self(x))

    def cycle_vector(self, out: torch.Tensor) -> torch.Tensor:
        """The cycle head's raw output as (n, 2) = confidence x (cos, sin) of the position: the regression
        head's output as it is, the distribution head's circular median and spread
        (:func:`distribution_readout`)."""
        return distribution_readout(out) if self.cycle_bins else out.float()

    def cycle_loss(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean loss of the head's raw output against target unit vectors (n, 2): squared error for the
        regression head, cross-entropy against soft bin targets (:func:`soft_bin_targets`) for the
        distribution head."""
        if not self.cycle_bins:
            return ((out.float() - target) ** 2).sum(1).mean()
        q = soft_bin_targets(torch.atan2(target[:, 1], target[:, 0]), self.cycle_bins)
        return -(q * torch.log_softmax(out.float(), dim=1)).sum(1).mean()


def bin_centres(n_bins: int, sub: int = 1) -> torch.Tensor:
    """Angles (radians) of the centres of ``n_bins`` equal bins of the cycle, from 0; with ``sub`` > 1,
    ``sub`` evenly spaced points inside each bin (shape (n_bins, sub))."""
    k = torch.arange(n_bins, dtype=torch.float64)[:, None]
    s = (torch.arange(sub, dtype=torch.float64)[None, :] + 0.5) / sub
    out = 2 * math.pi * (k + s) / n_bins
    return out[:, 0] if sub == 1 else out


def _wrap(a: torch.Tensor) -> torch.Tensor:
    return torch.remainder(a + math.pi, 2 * math.pi) - math.pi


def soft_bin_targets(angle: torch.Tensor, n_bins: int, width_bins: float = 1.0) -> torch.Tensor:
    """(n, n_bins) target distributions: a wrapped Gaussian of ``width_bins`` bins' sd around each angle,
    so a label near a bin edge teaches both neighbours and the head learns positions, not bin ids."""
    d = _wrap(bin_centres(n_bins).to(angle.device, torch.float32)[None, :] - angle.float()[:, None])
    w = torch.exp(-0.5 * (d / (width_bins * 2 * math.pi / n_bins)) ** 2)
    return w / w.sum(1, keepdim=True)


def distribution_readout(logits: torch.Tensor, grid_per_bin: int = 16, sub: int = 8) -> torch.Tensor:
    """(n, 2) = confidence x (cos, sin) of the circular median of each cell's bin distribution.

    The median is the angle with the least expected circular distance to the distribution, each bin's
    mass spread evenly over the bin (so the read-out is not quantised to bin centres), searched on a grid
    of ``grid_per_bin`` points a bin and refined between the grid's neighbours where the expected
    distance's slope crosses zero (linear in the slope). The refinement keeps the read-out continuous in
    the logits: a bare grid argmin jumps a whole grid step when two neighbours tie, so the last-bit
    differences between CPUs' convolutions would move cells by minutes and re-rank them within a track.
    Confidence = 1 - (the least expected distance on the grid) / (pi / 2): 1 for all mass at one point,
    0 for a uniform distribution (whose expected distance is pi / 2).
    """
    p = torch.softmax(logits.float(), dim=1)
    n_bins = p.shape[1]
    pts = bin_centres(n_bins, sub).to(p.device)  # (K, sub)
    grid = (torch.arange(n_bins * grid_per_bin, dtype=torch.float64, device=p.device) + 0.5) * (
        2 * math.pi / (n_bins * grid_per_bin))
    dist = _wrap(grid[:, None, None] - pts[None]).abs().mean(2).float()  # (G, K) expected distance per bin
    expected = p @ dist.T  # (n, G)
    best, g = expected.min(1)
    n_grid = grid.numel()
    step = 2 * math.pi / n_grid
    below = expected.gather(1, ((g - 1) % n_grid)[:, None])[:, 0]
    above = expected.gather(1, ((g + 1) % n_grid)[:, None])[:, 0]
    # slope at the midpoints g - 1/2 (<= 0) and g + 1/2 (>= 0); its zero, linearly interpolated, lies in
    # [g - 1/2, g + 1/2] and is the same point whichever of two tied neighbours the argmin picked
    s_lo, s_hi = best - below, above - best
    span = s_hi - s_lo
    frac = torch.where(span > 0, -s_lo / span.clamp_min(torch.finfo(span.dtype).tiny), torch.full_like(span, 0.5))
    angle = grid.float()[g] + step * (frac.clamp(0.0, 1.0) - 0.5)
    conf = (1.0 - best / (math.pi / 2)).clamp(0.0, 1.0)
    return torch.stack([conf * torch.cos(angle), conf * torch.sin(angle)], dim=1)


def descriptor_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """log(softmax + 1e-7) in float32 (stable under bf16 autocast)."""
    return torch.log(torch.softmax(logits.float(), dim=1) + DESCRIPTOR_EPS)


def use_bf16(setting: bool | str, device: torch.device | str) -> bool:
    """Resolve a preset's ``bf16``: ``'auto'`` = CUDA with bf16 support, or a CPU with native bf16
    (AVX512-BF16/AMX); on other CPUs oneDNN emulates bf16 and training gets many times slower."""
    if isinstance(setting, bool):
        return setting
    if setting != "auto":
        raise ValueError(f"bf16 must be True, False or 'auto', got {setting!r}")
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # pragma: no cover - older/other builds
        return False


def build_model(preset: str | Preset, in_channels: int, pretrained: bool | str | os.PathLike | None = "auto") -> DeepCycleNet:
    """The network a preset describes, for ``in_channels`` input channels."""
    p = get_preset(preset)
    return DeepCycleNet(
        in_channels=in_channels, backbone=p.backbone, truncate=p.truncate, pretrained=pretrained,
        cycle_head=p.cycle_weight > 0, cycle_bins=p.cycle_bins,
    )
