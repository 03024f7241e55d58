"""The smoke path (`make smoke`, what a Binder session runs) gives a ring whatever the CPU, and under bf16 never
stops the book.

On a CPU with native bf16 (AVX-512 + AMX) ``auto`` trains in bf16, and the old smoke budget (2 epochs x 512
crops) gave descriptors that ordered nothing there: chapter 04 stopped. Two legs, on the smoke profile's own
movie and settings (book/params/smoke.yaml), as chapters 02-04 call the package:

* fp32: the profile as it is, on a CPU that CLAIMS native bf16 (oneDNN's check forced True, as on AMX):
  the profile pins fp32, so training and embedding run fp32 and the ring is there (oriented by the movie
  or the FUCCI classes);
* bf16: training forced to bf16 (emulated on a CPU without it: ~8x slower, so one small epoch): whatever
  the descriptors, the chapter's call returns a ring or "no ring" with its reason -- it never raises.
"""

from __future__ import annotations

import pytest
import torch

from deepcycle_core.book.profiles import load_profile, train_bf16
from deepcycle_core.clock.trajectory import try_trajectory
from deepcycle_core.data.runs import RunDir
from deepcycle_core.net import embed as E
from deepcycle_core.net import train as T
from deepcycle_core.sim import simulate as sim

SMOKE = load_profile("smoke")


@pytest.fixture(scope="module")
def smoke_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("smoke") / "store"
    sim.simulate(path, cells=SMOKE["sim_cells"], hours=SMOKE["sim_hours"], seed=SMOKE["seed"],
                 difficulty=SMOKE["sim_difficulty"], fields=SMOKE["sim_fields"], progress=False)
    return path


def _run(tmp_path, store) -> RunDir:
    run = RunDir(tmp_path / "run")
    run.root.mkdir()
    (run.root / "store").symlink_to(store)
    return run


def _train_kwargs(profile: dict) -> dict:
    """Chapter 02's call (book/02_train.ipynb), from a profile."""
    return dict(preset=profile["train_preset"], epochs=profile["train_epochs"], seed=profile["seed"],
                samples_per_epoch=profile["train_samples_per_epoch"], val_cells=profile["train_val_cells"],
                heldout_cells=profile["train_heldout_cells"], num_workers=profile["train_workers"],
                reuse=False, progress=False, device="cpu", bf16=train_bf16(profile["train_precision"]))


def _chapters_02_to_04(run: RunDir, profile: dict):
    torch.set_num_threads(profile["train_threads"])
    summary = T.train(run.root, mode="both", **_train_kwargs(profile))
    E.embed(run, batch_size=profile["embed_batch_size"], precision=profile["embed_precision"], reuse=False,
            progress=False)
    result = try_trajectory(run, T_hours=profile["traj_hours_T"], n_harmonics=profile["traj_harmonics"],
                            smoothing=profile["traj_smoothing"], som_nodes=profile["traj_som_nodes"],
                            seed=profile["seed"])
    return summary, result


def test_the_smoke_profile_pins_fp32():
    assert SMOKE["train_precision"] == "fp32" and SMOKE["embed_precision"] == "fp32"
    assert train_bf16("fp32") is False and train_bf16("auto") == "auto" and train_bf16("bf16") is True
    with pytest.raises(ValueError, match="train_precision 'fp16'"):
        train_bf16("fp16")


def test_smoke_gives_a_ring_in_fp32_on_a_cpu_with_native_bf16(tmp_path, smoke_store, monkeypatch):
    from deepcycle_core.net.model import use_bf16

    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)  # as on AVX-512 + AMX
    assert use_bf16("auto", "cpu") is True and E.resolve_precision("auto") == "bf16"  # auto WOULD pick bf16 here
    assert E.resolve_precision(SMOKE["embed_precision"]) == "fp32"
    run = _run(tmp_path, smoke_store)
    summary, result = _chapters_02_to_04(run, SMOKE)
    assert summary["bf16"] is False
    assert result.ring is not None, result.no_ring
    assert result.ring.info["orientation"] in ("movie", "fucci")


def test_smoke_trained_in_bf16_reports_a_ring_or_none_and_never_stops(tmp_path, smoke_store):
    profile = {**SMOKE, "train_precision": "bf16", "train_epochs": 1, "train_samples_per_epoch": 256}
    run = _run(tmp_path, smoke_store)
    summary, result = _chapters_02_to_04(run, profile)  # no exception, whatever the descriptors order
    assert summary["bf16"] is True
    assert (result.ring is None) == bool(result.no_ring)
    assert result.ring is not None or result.message.startswith("no ring: ")
    assert (run.trajectory / ("ring.json" if result.ring is not None else "no_ring.json")).exists()
