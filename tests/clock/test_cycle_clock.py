"""The cycle head end to end: targets from partial tracks, the head, its read-out, the ceiling, the
reference networks' export/install, on known answers and on a small simulated movie."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from deepcycle_core.net import cycle_targets as CT
from deepcycle_core.validation.ceiling import hidden_variable_predictions
from deepcycle_core.net.checkpoint import load_model
from deepcycle_core.net.cycle_targets import CYCLE_COLUMNS
from deepcycle_core.clock.head import clock_positions, clock_predictions, has_cycle_head
from deepcycle_core.net.model import DeepCycleNet, build_model, get_preset
from deepcycle_core.data.runs import RunDir


# ------------------------------------------------------------------------------------------------
# targets: known answers
# ------------------------------------------------------------------------------------------------
def _table(rows):
    return pd.DataFrame(rows, columns=["frame", "birth_frame", "division_frame"])


def test_targets_count_from_birth_from_division_and_exactly_on_full_cycles():
    dt, T = 0.5, 10.0
    cells = _table([
        (4, 0, -1),  # born: (4 - 0 + 0.5) * 0.5 / 10 = 0.225
        (30, 0, -1),  # born 15.25 h ago > T: no target (a cell that has not divided is younger than 1)
        (10, -1, 12),  # divides: 1 - (12 - 10 + 0.5) * 0.5 / 10 = 0.875
        (0, -1, 40),  # divides in 20.25 h > T: no target
        (5, 0, 9),  # full cycle: 5.5 / (5.5 + 4.5) = 0.55
        (3, -1, -1),  # neither seen: no target
    ])
    t = CT.cycle_targets(cells, dt, T, visible_only=False)
    expect = [0.225, np.nan, 0.875, np.nan, 0.55, np.nan]
    np.testing.assert_allclose(t.position, expect, atol=1e-12)
    assert t.source.tolist() == [1, 0, 2, 0, 3, 0]
    assert t.counts() == {"none": 3, "birth": 1, "division": 1, "full_cycle": 1}
    vec = CT.as_unit_vectors(t.position)
    np.testing.assert_allclose(vec[0], [np.cos(2 * np.pi * 0.225), np.sin(2 * np.pi * 0.225)], atol=1e-6)
    assert np.isnan(vec[1]).all()


@pytest.mark.parametrize("kw, match", [
    (dict(frame_interval_h=0.0, T_hours=10.0), "frame interval"),
    (dict(frame_interval_h=0.5, T_hours=float("nan")), "cycle length"),
    (dict(frame_interval_h=0.5, T_hours=-3.0), "cycle length"),
])
def test_targets_refuse_bad_numbers(kw, match):
    with pytest.raises(ValueError, match=match):
        CT.cycle_targets(_table([(0, 0, -1)]), **kw, visible_only=False)


def test_targets_name_missing_columns():
    with pytest.raises(ValueError, match="birth_frame"):
        CT.cycle_targets(pd.DataFrame({"frame": [0]}), 0.5, 10.0)


# ------------------------------------------------------------------------------------------------
# the read-out and the ceiling: known answers
# ------------------------------------------------------------------------------------------------
def test_clock_positions_are_the_angle_and_hours_come_from_fitting_ranks_only():
    pos = np.array([0.05, 0.3, 0.55, 0.8, 0.9, 0.1])
    table = pd.DataFrame({"cell_id": np.arange(6), "cycle_cos": 2 * np.cos(2 * np.pi * pos),
                          "cycle_sin": 2 * np.sin(2 * np.pi * pos)})
    got, conf = clock_positions(table)
    np.testing.assert_allclose(got, pos, atol=1e-9)
    np.testing.assert_allclose(conf, 2.0)
    assert has_cycle_head(table.columns) and not has_cycle_head(["cell_id", "d0"])
    # hours = position x T; ERA hours of cells 4, 5 from the ranks among fitting cells 0-3 only
    pred = clock_predictions(table, fit_ids=[0, 1, 2, 3], eval_ids=[4, 5], T_hours=20.0)
    assert pred["cell_id"].tolist() == [4, 5]
    F = np.array([1.0 - 0.5 / 4, 1.0 / 4])  # 0.9 lies above all four (clipped); 0.1 above one
    np.testing.assert_allclose(pred["hours_era"], -20.0 * np.log2(1 - F / 2), atol=1e-9)
    np.testing.assert_allclose(pred["hours"], pos[4:] * 20.0)
    with pytest.raises(ValueError, match="cycle-head columns"):
        clock_positions(table.drop(columns="cycle_sin"))


def _hidden_cells(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.random(n)
    g1, s_end, m0 = 0.37, 0.8, 0.96
    phase = np.where(a < g1, "G1", np.where(a < s_end, "S", np.where(a < m0, "G2", "M")))
    return pd.DataFrame({
        "cell_id": np.arange(n), "true_age": a,
        "true_dna": np.clip(1 + (a - g1) / (s_end - g1), 1, 2),
        "true_nuc_area": 180 * (1 + 0.8 * np.clip(a / m0, 0, 1)) * rng.normal(1, 0.03, n),
        "true_m_progress": np.where(phase == "M", (a - m0) / (1 - m0), -1.0), "true_phase": phase,
    })


def test_ceiling_reads_age_from_the_hidden_variables_and_names_what_is_missing():
    cells = _hidden_cells(4000, 0)
    pred = hidden_variable_predictions(cells, np.arange(3000), np.arange(3000, 4000), T_hours=26.0)
    err = np.angle(np.exp(2j * np.pi * (pred["pseudotime"].to_numpy() - cells["true_age"].to_numpy()[3000:])))
    assert np.abs(err).mean() / (2 * np.pi) * 26 < 1.0  # hours: variables that carry the age give it back
    with pytest.raises(ValueError, match="true_nuc_area"):
        hidden_variable_predictions(cells.drop(columns="true_nuc_area"), np.arange(100), np.arange(100, 200), 26.0)


# ------------------------------------------------------------------------------------------------
# the network's head
# ------------------------------------------------------------------------------------------------
def test_default_preset_has_the_head_and_the_paper_preset_does_not():
    net = build_model("default", 2, pretrained=None)
    logits, cyc = net.heads(torch.zeros(3, 2, 48, 48))
    # the default head is a distribution over the cycle's bins, read as (n, 2) confidence x (cos, sin)
    assert logits.shape == (3, 4) and cyc.shape == (3, get_preset("default").cycle_bins)
    assert net.cycle_vector(cyc).shape == (3, 2)
    assert net(torch.zeros(1, 2, 48, 48)).shape == (1, 4)  # plain forward: the class logits, as before
    paper = build_model("paper", 2, pretrained=None)
    assert paper.cycle is None and paper.heads(torch.zeros(1, 2, 48, 48))[1] is None
    with pytest.raises(ValueError, match="cycle_weight"):
        get_preset("default", cycle_weight=-1.0)


# ------------------------------------------------------------------------------------------------
# on a small simulated movie: training the head, embedding it, reference export and install
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sim_run(tmp_path_factory):
    from deepcycle_core.sim.simulate import simulate

    root = tmp_path_factory.mktemp("cycle") / "run"
    simulate(root / "store", cells=10, hours=40.0, seed=2, progress=False)
    return RunDir(root)


@pytest.fixture(scope="module")
def trained_head(sim_run):
    from deepcycle_core.net.train import train

    summary = train(sim_run.root, epochs=2, samples_per_epoch=64, batch_size=16, val_cells=64, heldout_cells=64,
                    pretrained=None, progress=False, threads=1, seed=1, device="cpu")
    return summary


def test_training_the_head_records_its_targets_curves_and_error(sim_run, trained_head):
    s = trained_head
    assert s["cycle_head"] is True
    assert s["cycle"]["T_hours"] > 10 and s["cycle"]["targets"]["birth"] > 0 and s["cycle"]["targets"]["division"] > 0
    # only births/divisions the field shows label cells: this tiny movie's validation tracks may have none
    assert s["cycle"]["val_n"] >= 0
    if s["cycle"]["val_n"]:
        assert 0 <= s["cycle"]["val_mae_h"] <= s["cycle"]["T_hours"] / 2
    else:
        assert np.isnan(s["cycle"]["val_mae_h"])
    hist = pd.read_csv(sim_run.train / "history.csv")
    assert {"train_cycle_loss", "val_cycle_loss", "val_cycle_mae_h"} <= set(hist.columns) and len(hist) == 2
    model, info = load_model(sim_run.checkpoint)
    assert info["cycle_head"] is True and model.cycle is not None and info["cycle_T_hours"] == s["cycle"]["T_hours"]


def test_embedding_writes_the_heads_outputs_and_they_read_as_a_clock(sim_run, trained_head):
    from deepcycle_core.clock.head import read_clock
    from deepcycle_core.net.embed import embed

    embed(sim_run.root, progress=False, precision="fp32")
    desc = pd.read_parquet(sim_run.descriptors)
    assert list(desc.columns[:5]) == ["cell_id", "d0", "d1", "d2", "d3"] and has_cycle_head(desc.columns)
    clock = read_clock(sim_run)
    assert len(clock) == len(desc) and clock["clock"].between(0, 1).all()


def test_the_head_needs_a_cycle_length(tmp_path):
    from builders import make_tiny_store
    from deepcycle_core.net.train import train

    make_tiny_store(tmp_path / "store")  # constant cell count: no growth curve, and no partial track
    with pytest.raises(ValueError, match="cycle_T_hours"):
        train(tmp_path, epochs=1, samples_per_epoch=16, batch_size=8, pretrained=None, progress=False, threads=1)
    with pytest.raises(ValueError, match="no training cell has a cycle target"):
        train(tmp_path, epochs=1, samples_per_epoch=16, batch_size=8, pretrained=None, progress=False, threads=1,
              cycle_T_hours=2.0)


def test_reference_export_install_and_refusal(sim_run, trained_head, tmp_path):
    from deepcycle_core.data import fingerprint
    from deepcycle_core.net import reference as R
    from deepcycle_core.sim.simulate import simulate

    ref = tmp_path / "reference"
    card = R.train_reference(sim_run.root, ref, modes=["both"], epochs=1, progress=False, threads=1)
    net = card["networks"]["both"]
    assert (ref / "both.pt").stat().st_size == net["bytes"] and card["data"]["store"]["seed"] == 2
    ckpt = torch.load(ref / "both.pt", weights_only=True)  # plain weights-only file
    assert all(v.dtype == torch.float16 for v in ckpt["model"].values() if v.is_floating_point())
    assert {"val", "heldout"} <= set(net["figures"]) and net["history"]["epoch"] == [1]

    # install into a copy of the run: the later stages accept it as a trained network
    other = RunDir(tmp_path / "copy")
    shutil.copytree(sim_run.store, other.store)
    done = R.install_reference(other.root, ["both"], folder=ref)
    assert done["both"]["reference"]["sha256"] == net["sha256"]
    fingerprint.check_checkpoint(other, other.checkpoint)  # stamped like a trained network
    model, info = load_model(other.checkpoint)
    assert all(v.dtype == torch.float32 for v in model.state_dict().values() if v.is_floating_point())

    # another movie (another seed) is refused, naming what differs
    stranger = RunDir(tmp_path / "stranger")
    simulate(stranger.store, cells=10, hours=40.0, seed=3, progress=False)
    with pytest.raises(R.ReferenceError, match="seed"):
        R.install_reference(stranger.root, ["both"], folder=ref)
    # a tampered weight file is refused
    with open(ref / "both.pt", "ab") as f:
        f.write(b"x")
    with pytest.raises(R.ReferenceError, match="sha256"):
        R.install_reference(other.root, ["both"], folder=ref)
    assert json.loads((ref / R.CARD_NAME).read_text())["recipe"]["modes"] == ["both"]


def test_the_reference_network_reads_the_same_clock_in_fp32_and_bf16(sim_run):
    """The committed reference weights, read on another movie's crops in fp32 and in bf16 autocast (the
    precision a CPU with native bf16 would pick): the same positions to within a few minutes."""
    from deepcycle_core.net import reference as R
    from deepcycle_core.net.embed import run_model
    from deepcycle_core.net.normalise import frame_norm, mode_channels, normalise_crops
    from deepcycle_core.data.store import open_store

    net, info = R.load_reference("both")
    assert info["cycle_head"] and net.cycle is not None
    store = open_store(sim_run.store)
    ids = np.arange(0, store.n_cells, max(1, store.n_cells // 64))[:64]
    ch = mode_channels(store, "both")
    med, std = frame_norm(store, ch)
    x = normalise_crops(store.take(ids)[:, ch], med[ids], std[ids])
    d32, _, c32 = run_model(net, x, batch_size=64, precision="fp32", features=False)
    d16, _, c16 = run_model(net, x, batch_size=64, precision="bf16", features=False)
    p32 = np.arctan2(c32[:, 1], c32[:, 0])
    p16 = np.arctan2(c16[:, 1], c16[:, 0])
    gap_h = np.abs(np.angle(np.exp(1j * (p32 - p16)))) / (2 * np.pi) * info["cycle_T_hours"]
    assert np.median(gap_h) < 0.25 and np.percentile(gap_h, 90) < 1.0, gap_h
    assert np.abs(d32 - d16).max() < 0.5


def test_oracle_labels_are_the_true_ages_of_every_non_held_out_cell(sim_run, tmp_path):
    """The oracle-label reference (a row that uses truth): the head learns true ages, relatives included."""
    from deepcycle_core.data.store import open_store
    from deepcycle_core.net.train import CycleLabels, train

    store = open_store(sim_run.store)
    lab = CycleLabels(store, oracle=True)
    np.testing.assert_allclose(lab.position, np.mod(store.cells["true_age"].to_numpy(), 1.0))
    assert lab.counts == {"oracle": store.n_cells}
    s = train(sim_run.root, tmp_path / "oracle", epochs=1, samples_per_epoch=32, batch_size=16, val_cells=32,
              heldout_cells=32, pretrained=None, progress=False, threads=1, seed=1, device="cpu", cycle_labels="oracle")
    assert s["cycle"]["targets"] == {"oracle": store.n_cells}
    with pytest.raises(ValueError, match="cycle_labels"):
        train(sim_run.root, tmp_path / "bad", epochs=1, cycle_labels="truth")
