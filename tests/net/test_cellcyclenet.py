"""The released peer (CellCycleNet 0.2.0, installed from its wheel with --no-deps): it imports and loads its
own weights with our torch/numpy/scikit-image, our re-implementation of its preprocessing gives the images
its own pipeline writes, its canvas crash on small nuclei is fixed, inference is in eval mode, and its own
fine-tuning code runs. A few crops and tiles each; no weights are downloaded (they are in the wheel)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from deepcycle_core.net import cellcyclenet as C

# No skip when it is missing: `make venv` installs it (requirements-peer.txt), and the first test then fails
# with C.wheel_info()'s message naming the install command.


def _tile(rng: np.random.Generator, size: int, radii: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """A field of view (uint16) with elliptical nuclei on a grid and its instance mask."""
    image = rng.poisson(100.0, (size, size)).astype(np.float64)
    labels = np.zeros((size, size), np.int32)
    yy, xx = np.mgrid[:size, :size]
    step = size // 2
    for k, r in enumerate(radii):
        cy, cx = step // 2 + (k // 2) * step, step // 2 + (k % 2) * step
        inside = ((yy - cy) / r) ** 2 + ((xx - cx) / (0.85 * r)) ** 2 <= 1.0
        labels[inside] = k + 1
        image[inside] += rng.uniform(300, 900) * (1.0 + 0.2 * rng.standard_normal(inside.sum()))
    return np.clip(image, 0, 65535).astype(np.uint16), labels


def _write_tiles(folder: Path, tiles):
    from tifffile import imwrite

    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    for i, (image, labels) in enumerate(tiles):
        imwrite(folder / "images" / f"tile_{i}.tif", image)
        imwrite(folder / "masks" / f"mask_{i}.tif", labels)


def _ours(tiles, fix_canvas):
    params = [C.tile_params([im] * lab.max(), [lab == k for k in range(1, lab.max() + 1)]) for im, lab in tiles]
    f = C.factors_from_tiles(params, fix_canvas=fix_canvas)
    return f, {(i, k): C.single_nucleus_image(im, lab == k, f)[0]
               for i, (im, lab) in enumerate(tiles) for k in range(1, lab.max() + 1)}


def test_the_wheel_imports_as_shipped_and_its_weights_come_from_the_wheel():
    import torch

    info = C.wheel_info()
    assert info["version"] == "0.2.0"
    weights = Path(info["weights"])
    assert weights.parent.parent.name == "cellcyclenet" and weights.is_file()
    ccn = C.load_peer()
    released = torch.load(weights, map_location="cpu", weights_only=True)
    mine = ccn.model.state_dict()
    assert set(mine) == set(released)
    assert all(torch.equal(mine[k], released[k]) for k in released)
    assert type(ccn.model.module).__name__ == "UNet2D"


def test_preprocessing_matches_its_own_pipeline_where_that_runs(tmp_path, monkeypatch):
    """Nuclei near its pretraining size and alike (so that none outgrows its canvas): its generate_images and
    ours write the same images."""
    from cellcyclenet import utils
    from tifffile import imread

    rng = np.random.default_rng(0)
    tiles = [_tile(rng, 120, [21, 21, 20.5, 21]), _tile(rng, 120, [21, 20.5, 21, 21])]
    _write_tiles(tmp_path, tiles)
    monkeypatch.chdir(tmp_path)  # it writes its table into the working directory
    utils.generate_images(str(tmp_path / "images"), str(tmp_path / "masks"), str(tmp_path / "out"), is_3d=False)
    f, ours = _ours(tiles, fix_canvas=False)
    for (i, k), img in ours.items():
        theirs = imread(tmp_path / "out" / f"tile_{i}_obj_{k}.tif")
        assert theirs.shape == img.shape
        np.testing.assert_allclose(img, theirs, rtol=1e-12, atol=1e-12)


def test_its_canvas_crashes_on_small_nuclei_and_ours_does_not(tmp_path, monkeypatch):
    """Nuclei of 12-18 px: its canvas (raw pixels, applied after rescaling) gives a negative padding;
    ours is the same margin in rescaled pixels, so every nucleus lands on one canvas."""
    from cellcyclenet import utils

    rng = np.random.default_rng(1)
    tiles = [_tile(rng, 48, [6, 7, 8, 9]), _tile(rng, 48, [7, 8, 6, 9])]
    _write_tiles(tmp_path, tiles)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError):
        utils.generate_images(str(tmp_path / "images"), str(tmp_path / "masks"), str(tmp_path / "out"), is_3d=False)
    f, ours = _ours(tiles, fix_canvas=True)
    assert f.scale[0] < 1  # our nuclei are smaller than its 37 px: they are enlarged
    shape = (math.floor(f.canvas[0]), math.floor(f.canvas[1]))
    assert {img.shape for img in ours.values()} == {shape}
    assert all(img.max() > 0.5 for img in ours.values())  # divided by the median masked pixel: ~1 inside


def test_nucleus_masks_take_the_centre_nucleus_and_split_off_a_touching_neighbour():
    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[:48, :48]
    crop = rng.poisson(100.0, (48, 48)).astype(np.float64)
    centre = (yy - 24) ** 2 + (xx - 24) ** 2 <= 7.5 ** 2
    neighbour = (yy - 24) ** 2 + (xx - 39) ** 2 <= 7.5 ** 2
    crop[centre] += 600
    crop[neighbour] += 600
    empty = rng.poisson(100.0, (48, 48)).astype(np.float64)
    masks = C.nucleus_masks(np.stack([crop, empty]).astype(np.uint16), 16.0)
    m = masks[0]
    assert m[24, 24] and not m[24, 40]
    assert abs(int(m.sum()) - int(centre.sum())) < 0.25 * centre.sum()
    assert (m & neighbour).sum() < 0.1 * neighbour.sum()
    assert not masks[1].any()  # no nucleus, nothing masked


def _images(n=12, seed=3):
    rng = np.random.default_rng(seed)
    tiles = [_tile(rng, 48, list(rng.uniform(6, 9, 4))) for _ in range(n // 4)]
    f, ours = _ours(tiles, fix_canvas=True)
    return np.stack(list(ours.values())).astype(np.float32)


def test_predict_runs_in_eval_mode_and_cannot_see_absolute_intensity():
    """Dropout off: the same images give the same probabilities; the model's mode is restored. Its first layer
    (a one-group GroupNorm over the canvas) makes it blind to the stain's scale, i.e. to DNA content."""
    ccn = C.load_peer()
    x = _images()
    assert ccn.model.training
    p1, p2 = C.predict(ccn, x), C.predict(ccn, x, batch_size=5)
    assert ccn.model.training
    np.testing.assert_allclose(p1, p2, atol=1e-6)
    assert ((p1 > 0) & (p1 < 1)).all()
    for factor in (3.0, 1.0 / 3.0):
        assert np.abs(C.predict(ccn, x * factor) - p1).max() < 1e-3


def test_its_own_fine_tuning_code_runs_and_moves_the_weights():
    import torch

    x = _images(16)
    y = np.arange(len(x)) % 2
    before = {k: v.clone() for k, v in C.load_peer().model.state_dict().items()}
    tuned, log = C.fine_tune(x[:12], y[:12], x[12:], y[12:], seed=0, threads=1, settings={"n_epochs": 1})
    after = tuned.model.state_dict()
    assert not tuned.model.training
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert log["settings"] == {**C.FINETUNE, "n_epochs": 1} and log["train_cells"] == 12
    assert any("Finished training" in line for line in log["printed"])


def test_peer_missing_says_why_and_how_to_install_without_raising(monkeypatch):
    """An environment built from environment.yml (Binder) has no peer: the chapter prints this and goes on."""
    import importlib.util

    assert C.peer_missing() == ""  # make venv installed it
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "cellcyclenet" else real(name, *a))
    why = C.peer_missing()
    assert "not installed" in why and "--no-deps" in why and "requirements-peer.txt" in why
