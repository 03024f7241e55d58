"""The distribution head of the cycle: soft targets, a circular median that is not quantised to bins,
a confidence from the spread, and its loss and read-out through the network."""

from __future__ import annotations

import math

import pytest
import torch

from deepcycle_core.net.model import DeepCycleNet, distribution_readout, get_preset, soft_bin_targets


def _angle(v: torch.Tensor) -> torch.Tensor:
    return torch.remainder(torch.atan2(v[:, 1], v[:, 0]), 2 * math.pi)


def test_soft_targets_peak_at_the_label_and_wrap():
    q = soft_bin_targets(torch.tensor([0.0, math.pi]), 24)
    assert torch.allclose(q.sum(1), torch.ones(2))
    # a label at 0 sits between bin 23 and bin 0, which share its mass equally
    assert torch.isclose(q[0, 0], q[0, 23]) and q[0, 0] == q[0].max()
    assert q[1].argmax() in (11, 12)


def test_the_median_reads_positions_between_bin_centres():
    K = 24
    logits = torch.log(soft_bin_targets(torch.tensor([0.1, 1.0, 3.0, 6.2]), K, width_bins=0.7) + 1e-9)
    got = _angle(distribution_readout(logits))
    err = torch.remainder(got - torch.tensor([0.1, 1.0, 3.0, 6.2]) + math.pi, 2 * math.pi) - math.pi
    assert err.abs().max() < 0.05  # bins are 0.26 rad wide: the read-out is far finer


def test_the_median_is_not_pulled_to_the_middle_of_two_modes():
    """A cell the head places either just after division (70 %) or just before it (30 %): the L2 / mean
    read-out falls between them; the median stays with the majority."""
    K = 24
    p = 0.7 * soft_bin_targets(torch.tensor([0.5]), K) + 0.3 * soft_bin_targets(torch.tensor([2.5]), K)
    got = float(_angle(distribution_readout(torch.log(p))))
    assert abs(got - 0.5) < 0.3
    mean = float(torch.atan2((p * torch.sin(torch.arange(K) * 2 * math.pi / K + math.pi / K)).sum(),
                             (p * torch.cos(torch.arange(K) * 2 * math.pi / K + math.pi / K)).sum()))
    assert abs(mean - 0.5) > 0.3  # the mean is pulled away; the median is not


def test_confidence_falls_with_spread():
    sharp = distribution_readout(torch.log(soft_bin_targets(torch.tensor([1.0]), 24, width_bins=0.5)))
    wide = distribution_readout(torch.log(soft_bin_targets(torch.tensor([1.0]), 24, width_bins=4.0)))
    flat = distribution_readout(torch.zeros(1, 24))
    c = [float(v.norm()) for v in (sharp, wide, flat)]
    assert c[0] > 0.9 > c[1] > c[2] and c[2] < 0.02


def test_the_network_trains_its_distribution_head_toward_the_labels():
    torch.manual_seed(0)
    net = DeepCycleNet(in_channels=2, pretrained=None, cycle_head=True, cycle_bins=24)
    assert net.cycle.out_features == 24 and net.config["cycle_bins"] == 24
    target = torch.stack([torch.cos(torch.tensor([1.0, 4.0])), torch.sin(torch.tensor([1.0, 4.0]))], 1)
    out = torch.zeros(2, 24, requires_grad=True)
    opt = torch.optim.SGD([out], lr=5.0)
    for _ in range(60):
        opt.zero_grad()
        loss = net.cycle_loss(out, target)
        loss.backward()
        opt.step()
    got = _angle(net.cycle_vector(out.detach()))
    assert torch.allclose(got, torch.tensor([1.0, 4.0]), atol=0.05)
    # the regression head keeps its squared error and passes its output through
    reg = DeepCycleNet(in_channels=2, pretrained=None, cycle_head=True)
    assert reg.cycle.out_features == 2 and torch.equal(reg.cycle_vector(target), target)
    assert float(reg.cycle_loss(target, target)) == 0.0


def test_presets_check_the_bin_count():
    assert get_preset("default").cycle_bins == 24 and get_preset("paper").cycle_bins == 0
    with pytest.raises(ValueError, match="cycle_bins"):
        get_preset("default", cycle_bins=2)


def test_the_median_moves_continuously_with_the_logits():
    """A last-bit change of the logits (another CPU's convolutions) must not move a cell by a grid step:
    sweep a distribution's centre finely and the read-out follows it without jumps."""
    centres = torch.linspace(1.0, 1.0 + 2 * math.pi / 384 * 3, 301)  # three grid steps in fine steps
    logits = torch.log(soft_bin_targets(centres, 24, width_bins=1.0) + 1e-9)
    got = _angle(distribution_readout(logits)).double()
    steps = (got[1:] - got[:-1]).abs()
    grid_step = 2 * math.pi / 384
    assert steps.max() < 0.2 * grid_step  # the bare grid argmin jumped by a whole grid step
    assert (got - centres.double()).abs().max() < 0.01
    # a perturbation at float32's last bits moves the read-out by far less than a grid step
    noisy = logits * (1 + 1e-6 * torch.randn(logits.shape, generator=torch.Generator().manual_seed(0)))
    moved = torch.remainder(_angle(distribution_readout(noisy)).double() - got + math.pi, 2 * math.pi) - math.pi
    assert moved.abs().max() < 1e-3 * grid_step
