"""Size-blind training: the random zoom keeps each nucleus's integrated stain and changes its size.

Why it matters: a network trained on untreated cells learns that bigger nuclei are later in the cycle,
so a G1-arrested cell that keeps growing is read as S (chapter 07). The zoom must remove size as a cue
without touching the DNA content (the stain's integral), or the network loses the cue it should use.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from builders import make_tiny_store

from deepcycle_core.net import dataset as D
from deepcycle_core.net import normalise as N


def _blob(sigma: float) -> np.ndarray:
    yy, xx = np.mgrid[:48, :48] - 23.5
    return np.exp(-(yy**2 + xx**2) / (2 * sigma**2)).astype(np.float32)


def _radius(img: np.ndarray) -> float:
    yy, xx = np.mgrid[:48, :48] - 23.5
    return float(np.sqrt((img * (yy**2 + xx**2)).sum() / img.sum() / 2))


def test_the_zoom_keeps_the_nuclear_integral_and_scales_size():
    nuc, bf = _blob(5.0), _blob(6.0)
    x = np.stack([np.stack([nuc, bf])] * 3)
    zooms = np.array([1.0, 1.3, 0.75])
    out = D.stain_conserving_zoom(x, np.log(zooms), nuclear=[0])
    # the nuclear channel's integral is kept (to the interpolation's error) ...
    np.testing.assert_allclose(out[:, 0].sum(axis=(1, 2)), nuc.sum(), rtol=2e-3)
    # ... while its size follows the zoom, and the brightfield channel is only zoomed
    np.testing.assert_allclose([_radius(o[0]) for o in out], 5.0 * zooms, rtol=0.02)
    np.testing.assert_allclose(out[:, 1].sum(axis=(1, 2)), bf.sum() * zooms**2, rtol=0.02)
    # a zoom of 1 changes nothing
    np.testing.assert_allclose(out[0], x[0], atol=1e-5)


def test_a_big_g1_and_a_small_g2_nucleus_swap_sizes_but_not_dna():
    """What the drug does and what the zoom teaches: size and stain integral become independent."""
    g1 = _blob(5.0)  # 2N
    g2 = 2.0 * _blob(6.5) * (5.0 / 6.5) ** 2  # 4N: twice the integral, a larger nucleus
    x = np.stack([g1[None], g2[None]])
    out = D.stain_conserving_zoom(x, np.log([1.3, 1 / 1.3]), nuclear=[0])
    assert _radius(out[0, 0]) > _radius(out[1, 0])  # the G1 nucleus is now the larger one
    ratio = out[1, 0].sum() / out[0, 0].sum()
    assert abs(ratio - 2.0) < 0.02  # its DNA content still reads half the G2 one's


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return make_tiny_store(tmp_path_factory.mktemp("sizeblind") / "store")


def test_the_size_blind_mode_sees_both_channels_and_is_zoomed_in_training_only(store):
    assert N.MODES["both_sizeblind"] == N.MODES["both"]
    assert D.SIZE_BLIND_ZOOM["both_sizeblind"] > 0 and "both" not in D.SIZE_BLIND_ZOOM
    data = D.TrainingData.from_store(store, "both_sizeblind")
    assert data.nuclear_positions == [0]
    order = data.indices("train", labelled=False)[:32]
    plain = torch.cat([b[0] for b in data.batches(order, 16)])
    z = D.SIZE_BLIND_ZOOM["both_sizeblind"]
    zoomed = torch.cat([b[0] for b in data.batches(order, 16, zoom=z, nuclear=data.nuclear_positions, seed=2, epoch=1)])
    again = torch.cat([b[0] for b in data.batches(order, 16, zoom=z, nuclear=data.nuclear_positions, seed=2, epoch=1)])
    assert torch.equal(zoomed, again)  # a function of (seed, epoch, batch)
    assert not torch.allclose(zoomed, plain)
    # the nuclear channel's integral is kept, crop by crop (background ~0 after frame normalisation,
    # so only the pixels that slide in at the repeated edge add to it)
    s_plain = plain[:, 0].sum(dim=(1, 2)).numpy()
    s_zoom = zoomed[:, 0].sum(dim=(1, 2)).numpy()
    sig = np.abs(s_plain) > 50
    assert sig.sum() >= 8
    assert np.median(np.abs(s_zoom[sig] / s_plain[sig] - 1)) < 0.2
