"""A failed train leaves no split.parquet that no stamp vouches for, and a train that fails its checks
leaves the previous finished run as it was, still vouched for.

Why: the split was written as soon as it was made, before the checks and the training, and the stamp
removed before the model was built; a train that then failed left an unstamped split.parquet (and an
earlier finished run unvouched). Now the split is written with the stamp removed only once every check
has passed, and a run that fails after that takes its split back.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))
from builders import make_tiny_store  # noqa: E402

from deepcycle_core.data import fingerprint as fp  # noqa: E402
from deepcycle_core.net import train as T  # noqa: E402

FAST = dict(
    epochs=1, batch_size=8, samples_per_epoch=16, val_cells=16, heldout_cells=16, pretrained=None,
    progress=False, threads=1, seed=3, cycle_weight=0.0,
)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("split") / "run"
    make_tiny_store(path / "store", n_tracks=20, frames=8, chunk_cells=32)
    return path


def _boom(*args, **kwargs):
    raise RuntimeError("training failed")


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_a_train_that_fails_after_the_split_is_written_takes_it_back(run, tmp_path, monkeypatch, error):
    out = tmp_path / "train"

    def fail(*args, **kwargs):
        assert (out / "split.parquet").is_file()  # the split is on disk while the run trains (for a resume)
        raise error

    monkeypatch.setattr(T, "_train_epochs", fail)
    with pytest.raises(error):
        T.train(run / "store", out, **FAST)
    assert not (out / "split.parquet").exists()
    assert fp.read_stamp(out) is None


def test_a_train_that_fails_its_checks_leaves_the_finished_run_vouched_for(run, monkeypatch):
    T.train(run, **FAST)
    fp.check_split(run)
    before = (run / "train" / "split.parquet").read_bytes()
    monkeypatch.setattr(T, "build_model", _boom)
    with pytest.raises(RuntimeError, match="training failed"):
        T.train(run, **{**FAST, "seed": 4})  # another split would be made
    assert (run / "train" / "split.parquet").read_bytes() == before
    fp.check_split(run)  # still vouched for: nothing was rewritten
    fp.check_checkpoint(run)
