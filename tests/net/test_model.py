"""The network: shapes, descriptor, presets, and the offline / local-file ImageNet weight paths."""

from __future__ import annotations

import socket
import warnings

import pytest
import torch
from torchvision import models

from deepcycle_core.net import model as M


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Any attempt to open a socket fails the test: weights must never be downloaded."""

    def refuse(*args, **kwargs):
        raise AssertionError("the model tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


@pytest.mark.parametrize(
    "backbone,truncate,n_feat", [("resnet18", True, 256), ("resnet18", False, 512), ("resnet50", True, 1024)]
)
def test_shapes_and_descriptor(backbone, truncate, n_feat):
    torch.manual_seed(0)
    net = M.DeepCycleNet(in_channels=2, backbone=backbone, truncate=truncate, pretrained=None).eval()
    x = torch.randn(3, 2, 48, 48)
    with torch.no_grad():
        logits = net(x)
        feats = net.features(x)
        desc = net.descriptor(x)
    assert logits.shape == (3, 4)
    assert feats.shape == (3, n_feat) and net.n_features == n_feat
    assert desc.shape == (3, 4)
    # descriptor is log(softmax + 1e-7): exp sums to 1 (+ 4e-7) and every value <= 0
    assert torch.allclose(desc.exp().sum(1), torch.full((3,), 1 + 4e-7), atol=1e-5)
    assert (desc <= 0).all()
    assert torch.allclose(desc, torch.log(torch.softmax(logits, 1) + 1e-7))
    assert "layer4" in dict(net.body.named_children()) or truncate


def test_single_channel_modes():
    net = M.DeepCycleNet(in_channels=1, pretrained=None)
    assert net.adapter.in_channels == 1 and net.adapter.out_channels == 3
    assert net(torch.randn(2, 1, 48, 48)).shape == (2, 4)


def test_offline_path_warns_once_and_uses_random_init(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_cache"))
    M._WARNED.clear()
    with pytest.warns(UserWarning, match="not in the local torch cache"):
        a = M.DeepCycleNet(backbone="resnet34", pretrained="auto")
    assert a.pretrained_from is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second model must not warn again
        M.DeepCycleNet(backbone="resnet34", pretrained="auto")


def _write_resnet18_state(path, seed=123):
    torch.manual_seed(seed)
    ref = models.resnet18(weights=None)
    torch.save(ref.state_dict(), path)
    return ref


def test_loads_weights_from_named_file(tmp_path):
    ref = _write_resnet18_state(tmp_path / "my_weights.pth")
    net = M.DeepCycleNet(backbone="resnet18", truncate=True, pretrained=tmp_path / "my_weights.pth")
    assert net.pretrained_from == "my_weights.pth"
    assert torch.equal(net.body.conv1.weight, ref.conv1.weight)
    assert torch.equal(net.body.layer3[1].bn2.running_var, ref.layer3[1].bn2.running_var)


def test_loads_weights_from_torch_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    path = M.imagenet_cache_path("resnet18")
    assert path.name == "resnet18-f37072fd.pth"
    path.parent.mkdir(parents=True)
    ref = _write_resnet18_state(path, seed=7)
    net = M.DeepCycleNet(backbone="resnet18", truncate=False, pretrained="auto")
    assert net.pretrained_from == path.name
    assert torch.equal(net.body.layer4[0].conv1.weight, ref.layer4[0].conv1.weight)


def test_bad_weight_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        M.DeepCycleNet(pretrained=tmp_path / "nope.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pth"):
        M.DeepCycleNet(pretrained=junk)
    _write_resnet18_state(tmp_path / "r18.pth")
    with pytest.raises(ValueError, match="r18.pth"):  # resnet18 weights do not fit resnet50
        M.DeepCycleNet(backbone="resnet50", pretrained=tmp_path / "r18.pth")


def test_presets():
    paper = M.get_preset("paper")
    assert (paper.backbone, paper.truncate, paper.optimizer, paper.lr, paper.momentum, paper.batch_size) == (
        "resnet34",
        True,
        "sgd",
        1e-3,
        0.95,
        32,
    )
    assert M.get_preset("default", batch_size=16).batch_size == 16
    with pytest.raises(ValueError, match="unknown preset"):
        M.get_preset("fancy")
    with pytest.raises(ValueError, match="unknown preset parameter"):
        M.get_preset("default", colour="red")


def test_checkpoint_round_trip_without_training(tmp_path):
    """The checkpoint format lives with the network: save_checkpoint -> load_model gives the same weights,
    the dict starts with format, version, kind (its key order is part of the file's bytes), the write is
    atomic and a network that does not fit the recorded info is refused naming the file."""
    from deepcycle_core.net import checkpoint as C

    torch.manual_seed(0)
    net = M.DeepCycleNet(in_channels=1, backbone="resnet18", truncate=True, pretrained=None).eval()
    info = {**net.config, "mode": "bf_only", "roles": ["brightfield"]}
    path = C.save_checkpoint(tmp_path / "best.pt", "best", info=info, config={}, model=net.state_dict())
    assert path == tmp_path / "best.pt" and [p.name for p in tmp_path.iterdir()] == ["best.pt"]  # no temp file left
    ckpt = C.load_checkpoint(path)
    assert list(ckpt)[:6] == ["format", "version", "kind", "info", "config", "model"] and ckpt["kind"] == "best"
    loaded, got = C.load_model(path)
    assert got == info and not loaded.training
    for k, v in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    C.save_checkpoint(tmp_path / "wrong.pt", "best", info={**info, "in_channels": 2}, model=net.state_dict())
    with pytest.raises(C.CheckpointError, match=r"wrong\.pt.*do not match"):
        C.load_model(tmp_path / "wrong.pt")
