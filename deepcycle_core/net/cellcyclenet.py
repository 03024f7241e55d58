"""A released peer: CellCycleNet (Li et al., Life Science Alliance 2025; PyPI ``cellcyclenet`` 0.2.0), fed as
its own pipeline feeds it.

Why: the book compares its clock with the paper's read-outs and with baselines it wrote itself; a user
could instead pick the one cell-cycle network with released weights. CellCycleNet calls G1 vs S/G2 from
one nuclear (DAPI) image of a segmented nucleus; its 2-D network and weights ship inside its wheel.

How it is installed: ``pip install --no-deps -r requirements-peer.txt`` (the Makefile's venv rule). The
wheel pins torch 2.3.1, numpy 2.0.1, scikit-image 0.24 ..., which cannot share our environment, so its
dependencies are not installed; its modules import and run as shipped with ours (torch 2.14, numpy 2.4,
scikit-image 0.26), checked by ``tests/net/test_cellcyclenet.py``. Nothing is downloaded at run time:
the weights are the wheel's ``cellcyclenet/models/pretrained-model_2D.pt``.

Its pipeline (``cellcyclenet.utils.generate_images``, reproduced here on arrays; a test compares the two):

1. per tile (a field of view with an instance mask): the median raw pixel inside the masks and the
   median bounding box of its nuclei; over the data set, the norm factor is the median of the tiles'
   medians, the scale the median box over 37 px (its pretraining nuclei), the canvas 1.05 x the largest
   tile median box;
2. per nucleus: the pixels outside its mask set to 0, cropped to its box, divided by the norm factor,
   resized (``resize_local_mean``) by 1 / scale, padded to the canvas;
3. the network (``UNet2D``): a one-group GroupNorm over the whole canvas, four conv levels, global max
   pool, dropout 0.5, one logit; sigmoid = P(S/G2).

What we change, and say so:

* **the canvas**: the wheel computes it in raw pixels and applies it after rescaling, so nuclei smaller
  than its 37 px (ours are 12-20 px) grow past it and ``np.pad`` fails on a negative width
  (``utils.py:156``). Here the canvas is 1.05 x the largest tile median box **in rescaled pixels**
  (identical to the wheel's when the scale is 1); a nucleus still larger than it is centre-cropped to
  it (counted in the summary). ``fix_canvas=False`` reproduces the shipped rule (and its crash).
* **eval mode**: its ``predict()`` never calls ``model.eval()``, so dropout stays on and predictions
  change from run to run; :func:`predict` runs the network in eval mode (its threshold 0.5 is applied
  by the caller; its ``decision_threshold`` argument is unused anyway).
* **the masks**: ours, from our detection, on each cell's crop (:func:`nucleus_masks`: the crop's
  nucleus and its neighbours as seeds, from the store's centre and
  :func:`deepcycle_core.movies.detect_track.detect_nuclei`, the half-maximum region of the nuclear-area
  baseline split between them by a distance watershed); a tile is one frame of the movie.

Fine-tuning runs its own code, :meth:`cellcyclenet.CellCycleNet.train`, with the settings of its 2-D
fine-tuning demo (10 epochs, batch 4, Adam lr 1e-5, weight decay 0.1, no augmentation), on single-
nucleus TIFFs written to a temporary folder as its pipeline writes them. Two quirks of that code are
kept and named: it never shuffles (so the caller passes the cells in a seeded random order, as its own
``create_dataset`` split would), and its "best" weights are the live state dict, i.e. the last epoch's.

torch is imported inside the functions that run the network, so the preprocessing imports without it.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..data.fingerprint import file_digest
from ..movies.detect_track import detect_nuclei

__all__ = [
    "CANVAS_MARGIN",
    "FINETUNE",
    "PRETRAINED_DIMS",
    "Factors",
    "PeerError",
    "factors_from_tiles",
    "fine_tune",
    "load_peer",
    "nucleus_masks",
    "peer_missing",
    "predict",
    "single_nucleus_image",
    "single_nucleus_images",
    "tile_params",
    "wheel_info",
]

#: The nucleus size (px, y x) the released 2-D weights were trained at (``utils._calc_norm_and_scale_factor``).
PRETRAINED_DIMS: tuple[int, int] = (37, 37)
#: The canvas margin of its pipeline: 1.05 x the largest tile median box.
CANVAS_MARGIN = 1.05
#: Its 2-D fine-tuning demo's settings (notebooks/2D_fine_tune_training_demo.ipynb of the project), which
#: are also :meth:`CellCycleNet.train`'s defaults but the epochs.
FINETUNE: dict[str, Any] = {"n_epochs": 10, "batch_size": 4, "initial_LR": 1e-5}

_INSTALL = "pip install --no-deps -r requirements-peer.txt (the Makefile's venv rule does it)"


class PeerError(RuntimeError):
    """CellCycleNet is not installed, or not the release this comparison was written for."""


def wheel_info() -> dict[str, Any]:
    """The installed release: version, the 2-D weights file inside the wheel and its sha256.

    PeerError naming the install command when the package is missing (nothing is ever downloaded here).
    """
    import importlib.metadata as md
    import importlib.util

    spec = importlib.util.find_spec("cellcyclenet")
    if spec is None or spec.origin is None:
        raise PeerError(f"CellCycleNet is not installed in this environment: {_INSTALL}")
    version = md.version("cellcyclenet")
    if version != "0.2.0":
        raise PeerError(f"CellCycleNet {version} is installed; this comparison reads release 0.2.0: {_INSTALL}")
    weights = Path(spec.origin).parent / "models" / "pretrained-model_2D.pt"
    if not weights.is_file():
        raise PeerError(f"{weights}: the wheel's 2-D weights are missing; reinstall: {_INSTALL}")
    return {"version": version, "weights": str(weights), "weights_sha256": file_digest(weights)}


def peer_missing() -> str:
    """Why the peer cannot run here ('' when it can): a chapter prints this and skips its rows.

    ``make venv`` installs the wheel with ``--no-deps``; an environment built from ``environment.yml``
    (Binder, conda) cannot, because a requirements file cannot say ``--no-deps`` and the wheel's own pins
    (torch 2.3.1, numpy 2.0.1, ...) would conflict with ours."""
    try:
        wheel_info()
    except PeerError as exc:
        return str(exc)
    return ""


# ------------------------------------------------------------------------------------------------
# masks from our detection
# ------------------------------------------------------------------------------------------------
def nucleus_masks(nuclear: np.ndarray, diameter_px: float, threshold: float = 3.0) -> np.ndarray:
    """(n, h, w) bool: the mask of the nucleus at the centre of each crop (empty where the centre's peak
    stands less than ``2 x threshold`` noise units above the crop's background: no nucleus there).

    Seeds: the crop's centre, where the store's detection put its nucleus (snapped to a centre found by
    our detector, :func:`~deepcycle_core.movies.detect_track.detect_nuclei`, within a quarter diameter of
    it), and every other nucleus our detector finds in the crop (one LoG scale set by ``diameter_px``,
    maxima above ``threshold`` noise units), so that touching neighbours are split off. Region: the
    half-maximum rule of the nuclear-area baseline (:func:`deepcycle_core.validation.features.crop_features`:
    the crop smoothed with sigma 1 px, above halfway between its 5th percentile and the brightest
    smoothed pixel within 4 px of the centre), divided between the seeds by a watershed of its distance
    transform (touching nuclei part at their neck); the centre seed's part, holes filled.
    """
    from scipy import ndimage
    from skimage.segmentation import watershed

    stack = np.asarray(nuclear)
    if stack.ndim != 3:
        raise ValueError(f"nucleus_masks needs (n, h, w) crops, got shape {stack.shape}")
    n, h, w = stack.shape
    out = np.zeros(stack.shape, dtype=bool)
    if n == 0:
        return out
    smooth = ndimage.gaussian_filter(stack.astype(np.float32), (0, 1.0, 1.0))
    bg = np.percentile(smooth.reshape(n, -1), 5.0, axis=1)
    cy, cx, r = h // 2, w // 2, 4
    peak = smooth[:, cy - r : cy + r, cx - r : cx + r].reshape(n, -1).max(axis=1)
    centre = np.array([(h - 1) / 2.0, (w - 1) / 2.0])
    # the pixel noise, from what smoothing removes, in smoothed units (a unit Gaussian averages over 4 pi px)
    resid = (stack.astype(np.float32) - smooth).reshape(n, -1)
    mad = np.median(np.abs(resid - np.median(resid, axis=1, keepdims=True)), axis=1)
    noise = 1.4826 * mad / (2.0 * np.sqrt(np.pi))
    for i in range(n):
        if not peak[i] - bg[i] > 2.0 * threshold * noise[i]:  # no nucleus at the centre, only noise
            continue
        found = detect_nuclei(stack[i], diameter_px, threshold=threshold)
        d = np.hypot(*(found - centre).T) if len(found) else np.zeros(0)
        own = found[np.argmin(d)] if len(d) and d.min() <= diameter_px / 4.0 else centre
        others = found[d > diameter_px / 4.0] if len(d) else found
        seeds = np.clip(np.rint(np.vstack([own, others])).astype(int), 0, [h - 1, w - 1])
        markers = np.zeros((h, w), dtype=np.int32)
        markers[seeds[::-1, 0], seeds[::-1, 1]] = np.arange(len(seeds), 0, -1)  # the own seed wins a shared pixel
        fg = smooth[i] > bg[i] + 0.5 * (peak[i] - bg[i])
        labels = watershed(-ndimage.distance_transform_edt(fg), markers, mask=fg)
        out[i] = ndimage.binary_fill_holes(labels == 1)
    return out


# ------------------------------------------------------------------------------------------------
# its pipeline: normalisation, rescaling, canvas
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Factors:
    """The data set's factors (``utils._calc_norm_and_scale_factor``) and the canvas they give."""

    norm: float  # median of the tiles' median mask pixel
    scale: tuple[float, float]  # median tile box / 37 px
    max_dims: tuple[int, int]  # largest tile median box (raw px)
    canvas: tuple[float, float]  # where the padding aims (px of the padded image, before flooring)
    fixed: bool  # canvas in rescaled pixels (True) or the wheel's raw pixels (False)
    tiles: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _box(mask: np.ndarray) -> tuple[int, int]:
    rows, cols = np.nonzero(np.any(mask, axis=1))[0], np.nonzero(np.any(mask, axis=0))[0]
    return int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


def tile_params(images: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> tuple[int, np.ndarray]:
    """``(median mask pixel, median box (y, x))`` of one tile, as ``utils._load_and_calc_params`` (both
    truncated to int as there). A tile is given as its nuclei: one image and one boolean mask each (a
    field of view and its instance mask give the same numbers as the crops of its nuclei)."""
    pixels = np.concatenate([np.asarray(im)[np.asarray(m, bool)] for im, m in zip(images, masks)])
    if pixels.size == 0:
        raise ValueError("a tile without any masked pixel")
    dims = np.array([_box(np.asarray(m, bool)) for m in masks])
    return int(np.median(pixels).astype(int)), np.median(dims, axis=0).astype(int)


def factors_from_tiles(params: Sequence[tuple[int, np.ndarray]], *, fix_canvas: bool = True) -> Factors:
    """The data set's norm factor, scale and canvas from every tile's :func:`tile_params`."""
    if not params:
        raise ValueError("no tile to compute CellCycleNet's factors from")
    medians = [p[0] for p in params]
    dims = np.array([p[1] for p in params])
    scale = np.median(dims, axis=0) / np.array(PRETRAINED_DIMS)
    max_dims = np.max(dims, axis=0)
    canvas = CANVAS_MARGIN * max_dims / (scale if fix_canvas else 1.0)
    return Factors(norm=float(np.median(medians)), scale=tuple(float(s) for s in scale),
                   max_dims=tuple(int(d) for d in max_dims), canvas=tuple(float(c) for c in canvas),
                   fixed=fix_canvas, tiles=len(params))


def single_nucleus_image(image: np.ndarray, mask: np.ndarray, f: Factors) -> tuple[np.ndarray, bool]:
    """``(padded image, cropped)``: one nucleus as ``utils._gen_SNI`` writes it (float64), and whether
    it was larger than the canvas and centre-cropped to it (only with ``f.fixed``; the wheel's own rule
    raises there, as ``np.pad`` does)."""
    from skimage.transform import resize_local_mean

    obj = np.where(np.asarray(mask, bool), image, 0)
    obj_crop = obj[np.any(obj, axis=1)][:, np.any(obj, axis=0)]
    obj_norm = obj_crop / f.norm
    out_dims = np.array([int(d / s) for d, s in zip(obj_crop.shape, f.scale)])
    obj_rescale = resize_local_mean(obj_norm, out_dims)
    cropped = False
    if f.fixed:
        for axis, size in enumerate(f.canvas):
            n = obj_rescale.shape[axis]
            if n > size:
                keep = int(size)
                start = (n - keep) // 2
                obj_rescale = np.take(obj_rescale, np.arange(start, start + keep), axis=axis)
                cropped = True
    (y, x), (obj_y, obj_x) = f.canvas, obj_rescale.shape
    y_pad = (int((y - obj_y) / 2), int((y - obj_y + 1) / 2))
    x_pad = (int((x - obj_x) / 2), int((x - obj_x + 1) / 2))
    return np.pad(obj_rescale, [y_pad, x_pad]), cropped


def single_nucleus_images(images: np.ndarray, masks: np.ndarray, f: Factors) -> tuple[np.ndarray, int]:
    """``((n, H, W) float32, number centre-cropped)``: every nucleus on the canvas (cast to float32 as its
    dataset does when it reads the TIFFs back)."""
    parts, n_cropped = [], 0
    for im, m in zip(images, masks):
        sni, cropped = single_nucleus_image(im, m, f)
        parts.append(sni.astype(np.float32))
        n_cropped += cropped
    if not parts:
        return np.zeros((0, int(f.canvas[0]), int(f.canvas[1])), np.float32), 0
    return np.stack(parts), n_cropped


# ------------------------------------------------------------------------------------------------
# the network: loaded from the wheel, run in eval mode, fine-tuned with its own code
# ------------------------------------------------------------------------------------------------
def load_peer(state_dict: dict[str, Any] | None = None) -> Any:
    """A ``cellcyclenet.CellCycleNet(is_3d=False)``: the wheel's architecture and its released 2-D weights
    (loaded by its own constructor from the wheel; under torch >= 2.6 that ``torch.load`` is
    ``weights_only``), or ``state_dict`` (fine-tuned weights, its own ``module.``-prefixed keys) instead."""
    wheel_info()
    with contextlib.redirect_stdout(io.StringIO()):
        from cellcyclenet import CellCycleNet
        ccn = CellCycleNet(is_3d=False)
    if state_dict is not None:
        ccn.model.load_state_dict(state_dict)
    return ccn


def predict(ccn: Any, images: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
    """(n,) P(S/G2) of each single-nucleus image, the network in **eval** mode (dropout off), fed through
    its own dataset class (``CCN_Dataset``: float32, one channel). The model's mode is restored after."""
    import torch
    from torch.utils.data import DataLoader
    from cellcyclenet.interface import CCN_Dataset

    images = np.asarray(images, dtype=np.float32)
    if len(images) == 0:
        return np.zeros(0)
    loader = DataLoader(CCN_Dataset(images, np.zeros(len(images)), transform=None, lazy_load=False),
                        batch_size=batch_size, shuffle=False)
    was_training = ccn.model.training
    ccn.model.eval()
    out = []
    try:
        with torch.no_grad():
            for x, _ in loader:
                out.append(torch.sigmoid(ccn.model(x)).numpy()[:, 0].astype(np.float64))
    finally:
        ccn.model.train(was_training)
    return np.concatenate(out)


def _write_tiffs(folder: Path, name: str, images: np.ndarray, labels: np.ndarray) -> Any:
    """Its training table (``filename``, ``label`` 'G1' or 'S/G2'), the images written as its pipeline
    writes single-nucleus images (one TIFF a nucleus)."""
    import pandas as pd
    from tifffile import imwrite

    names = []
    for i, im in enumerate(images):
        fn = folder / f"{name}_obj_{i}.tif"
        imwrite(fn, np.asarray(im, dtype=np.float32))
        names.append(str(fn))
    return pd.DataFrame({"filename": names, "label": np.where(np.asarray(labels) == 0, "G1", "S/G2")})


def fine_tune(
    train_images: np.ndarray,
    train_labels: np.ndarray,
    val_images: np.ndarray,
    val_labels: np.ndarray,
    *,
    seed: int = 0,
    threads: int | None = None,
    settings: dict[str, Any] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """``(CellCycleNet, log)``: the released 2-D network fine-tuned by its own ``CellCycleNet.train`` on
    ``train_images`` (labels 0 = G1, 1 = S/G2), its validation pass on ``val_images``.

    ``settings`` overrides :data:`FINETUNE`. The images go in the order given (its code does not shuffle:
    the caller passes them in a seeded random order). torch's seed is set (dropout), and the threads when
    given. The log holds its printed lines and the seconds it took.
    """
    import torch

    kw = {**FINETUNE, **(settings or {})}
    if threads:
        torch.set_num_threads(int(threads))
    torch.manual_seed(seed)
    ccn = load_peer()
    ccn.model.train()  # its constructor leaves the model in training mode; train() relies on it
    printed = io.StringIO()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cellcyclenet-") as tmp:
        train_df = _write_tiffs(Path(tmp), "train", train_images, train_labels)
        val_df = _write_tiffs(Path(tmp), "val", val_images, val_labels)
        with contextlib.redirect_stdout(printed):
            ccn.train(train_df, val_df, verbose=True, transform=None, lazy_load=False, **kw)
    seconds = time.perf_counter() - t0
    ccn.model.eval()
    return ccn, {"settings": kw, "seconds": seconds, "printed": printed.getvalue().splitlines(),
                 "train_cells": int(len(train_images)), "val_cells": int(len(val_images)),
                 "threads": int(torch.get_num_threads())}
