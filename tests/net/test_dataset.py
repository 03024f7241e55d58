"""Store -> normalised batches: per-frame normalisation, split by track, chunked order, augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from builders import make_tiny_store
from torch.utils.data import DataLoader

from deepcycle_core.net import dataset as D
from deepcycle_core.net import normalise as N


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return make_tiny_store(tmp_path_factory.mktemp("ds") / "store")


def test_normalise_crops_formula():
    crops = np.arange(2 * 2 * 48 * 48, dtype=np.uint16).reshape(2, 2, 48, 48)
    med = np.array([[10, 20], [30, 40]], np.float32)
    std = np.array([[2, 4], [5, 10]], np.float32)
    x = N.normalise_crops(crops, med, std)
    assert x.dtype == np.float32 and x.shape == (2, 2, 48, 48)
    np.testing.assert_allclose(x[1, 0], (crops[1, 0].astype(np.float32) - 30) / 5)
    x1 = N.normalise_crops(crops, med[0], std[0])  # one value per channel
    np.testing.assert_allclose(x1[1, 1], (crops[1, 1].astype(np.float32) - 20) / 4)
    with pytest.raises(ValueError, match=r"\(n, C, H, W\)"):
        N.normalise_crops(crops[0], med[0], std[0])


def test_torch_wrapper_is_the_numpy_rule_bit_for_bit():
    """dataset.normalise_crops (the name checkpoints record) only changes the container: same bits as
    the torch-free rule and as the torch arithmetic it replaced, on awkward values."""
    rng = np.random.default_rng(1)
    crops = rng.integers(0, 65535, (16, 2, 48, 48)).astype(np.uint16)
    med = rng.uniform(0, 3000, (16, 2)).astype(np.float32)
    std = rng.uniform(0.1, 700, (16, 2)).astype(np.float32)
    x = D.normalise_crops(crops, med, std)
    assert x.dtype == torch.float32 and x.shape == (16, 2, 48, 48)
    np.testing.assert_array_equal(x.numpy(), N.normalise_crops(crops, med, std))
    t = torch.as_tensor(crops.astype(np.float32))
    ref = (t - torch.as_tensor(med)[:, :, None, None]) / torch.as_tensor(std)[:, :, None, None]
    assert torch.equal(x, ref)
    np.testing.assert_array_equal(N.normalise_crops(torch.as_tensor(crops), med, std), x.numpy())  # a tensor in


def test_frame_norm_and_modes(store):
    assert N.mode_channels(store, "both") == [0, 1]
    assert N.mode_channels(store, "bf_only") == [1]
    assert N.mode_channels(store, "nuclear_only") == [0]
    med, std = N.frame_norm(store, [1, 0])
    assert med.shape == (store.n_cells, 2)
    np.testing.assert_allclose(med[:, 0], 500 + 40 * store.cells["frame"].to_numpy())
    np.testing.assert_allclose(std[:, 1], 100.0)
    with pytest.raises(ValueError, match="unknown mode"):
        N.mode_channels(store, "fucci_only")


def test_split_by_track_with_heldout_full_cycles(store):
    cells = store.cells
    split = D.make_split(cells, val_fraction=0.25, seed=0)
    assert list(split.columns) == ["cell_id", "split"] and len(split) == len(cells)
    merged = cells.assign(split=split["split"].to_numpy())
    per_track = merged.groupby(["field", "track_id"])["split"].nunique()
    assert (per_track == 1).all(), "a track was split across train/val/heldout"
    assert set(merged.loc[merged.full_cycle, "split"]) == {"heldout"}
    assert set(merged.loc[~merged.full_cycle, "split"]) == {"train", "val"}
    frac = (merged.split == "val").sum() / (~merged.full_cycle).sum()
    assert 0.15 < frac < 0.4
    assert split.equals(D.make_split(cells, val_fraction=0.25, seed=0))
    assert not split.equals(D.make_split(cells, val_fraction=0.25, seed=1))


def test_balanced_sampling_and_chunked_order():
    labels = np.array([0] * 700 + [1] * 100 + [2] * 150 + [3] * 50)
    idx = np.arange(len(labels))
    s = D.epoch_sample(idx, labels, 4000, seed=0, epoch=0, balance="sampler")
    freq = np.bincount(labels[s], minlength=4) / len(s)
    assert np.all(np.abs(freq - 0.25) < 0.03), freq
    np.testing.assert_array_equal(s, D.epoch_sample(idx, labels, 4000, seed=0, epoch=0, balance="sampler"))
    assert not np.array_equal(s, D.epoch_sample(idx, labels, 4000, seed=0, epoch=1, balance="sampler"))
    sub = D.epoch_sample(idx, labels, 300, seed=0, epoch=0, balance="none")
    assert len(np.unique(sub)) == 300
    order = D.chunk_order(sub, chunk_cells=100, buffer_chunks=2, seed=0, epoch=0)
    assert sorted(order) == sorted(sub)
    # walking the order, the set of chunks in use changes group by group: never more than 2 at a time
    chunks = order // 100
    groups = [set()]
    for c in chunks:
        if c not in groups[-1] and len(groups[-1]) == 2:
            groups.append(set())
        groups[-1].add(c)
    assert len(groups) == len(np.unique(chunks)) // 2 + len(np.unique(chunks)) % 2
    with pytest.raises(ValueError, match="no training cells"):
        D.class_weights(np.array([0, 1, 1, 2]))


def test_batches_stream_normalised_cells_with_bounded_memory(store):
    data = D.TrainingData.from_store(store, "both", seed=0)
    order = D.chunk_order(np.arange(store.n_cells), store.chunk_cells, 2, seed=0, epoch=0)
    ds = data.batches(order, batch_size=20)
    got = list(ds)
    assert len(got) == ds.n_batches == int(np.ceil(store.n_cells / 20))
    ids = torch.cat([b[2] for b in got]).numpy()
    np.testing.assert_array_equal(ids, order)
    x = torch.cat([b[0] for b in got])
    ref = D.normalise_crops(store.take(ids), data.med[ids], data.std[ids])
    assert torch.equal(x, ref)
    assert torch.equal(torch.cat([b[1] for b in got]), torch.as_tensor(store.cells["class"].to_numpy()[ids]))
    assert ds.max_cached_chunks <= 4, ds.max_cached_chunks  # 2 chunk groups of 2 while a batch spans their edge
    assert ds.max_cached_chunks < store.n_cells / store.chunk_cells
    # per-frame normalisation removed the frame-dependent background
    assert abs(float(x[:, 1].median())) < 1.0


def test_augmentation_is_dihedral_and_deterministic(store):
    data = D.TrainingData.from_store(store, "nuclear_only")
    order = np.arange(64)
    plain = torch.cat([b[0] for b in data.batches(order, 16)])
    aug = torch.cat([b[0] for b in data.batches(order, 16, augment=True, seed=3, epoch=1)])
    aug2 = torch.cat([b[0] for b in data.batches(order, 16, augment=True, seed=3, epoch=1)])
    assert torch.equal(aug, aug2)
    changed = 0
    for p, a in zip(plain, aug):
        variants = [torch.rot90(p, k, (1, 2)) for k in range(4)]
        variants += [torch.flip(v, (2,)) for v in variants]
        assert any(torch.equal(a, v) for v in variants)
        changed += not torch.equal(a, p)
    assert changed > 32  # 7 of 8 codes change a crop


def test_workers_resume_and_ddp_shards_keep_the_order(store):
    data = D.TrainingData.from_store(store, "both")
    order = D.chunk_order(np.arange(store.n_cells), store.chunk_cells, 2, seed=1, epoch=0)
    ds = data.batches(order, 16, augment=True, seed=1, drop_last=True)
    ref = list(ds)
    with_workers = list(DataLoader(data.batches(order, 16, augment=True, seed=1, drop_last=True), batch_size=None, num_workers=2))
    assert len(with_workers) == len(ref)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[2], b[2]) for a, b in zip(ref, with_workers))
    tail = list(data.batches(order, 16, augment=True, seed=1, drop_last=True, start_batch=5))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(ref[5:], tail)) and len(tail) == len(ref) - 5
    r0 = list(data.batches(order, 8, rank=0, world=2, drop_last=True))
    r1 = list(data.batches(order, 8, rank=1, world=2, drop_last=True))
    assert len(r0) == len(r1) == store.n_cells // 16
    for b, (a0, a1) in enumerate(zip(r0, r1)):
        both = torch.cat([a0[2], a1[2]]).numpy()
        np.testing.assert_array_equal(both, order[b * 16 : (b + 1) * 16])
