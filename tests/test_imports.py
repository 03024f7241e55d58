"""Data flows one way: inference never imports training, and the data contracts never import torch.

Each check runs in a fresh interpreter, so what one test imported cannot hide what another needs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from builders import write_embed_checkpoint as _write_checkpoint  # noqa: E402
from builders import write_embed_store as _write_store  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _modules_after(code: str) -> set[str]:
    """The names in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    probe = f"{code}\nimport json as _j, sys as _s\nprint(_j.dumps(sorted(_s.modules)))\n"
    res = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    return set(json.loads(res.stdout.strip().splitlines()[-1]))


def test_importing_embed_pulls_in_neither_training_nor_torch():
    mods = _modules_after("import deepcycle_core.net.embed")
    assert "deepcycle_core.net.train" not in mods
    assert "deepcycle_core.net.dataset" not in mods
    assert "torch.optim" not in mods and "torch" not in mods  # torch waits until a network is loaded


@pytest.mark.parametrize("module", ["deepcycle_core.net.normalise", "deepcycle_core.data.split"])
def test_data_contracts_are_torch_free(module):
    mods = _modules_after(f"import {module}")
    assert "torch" not in mods, f"{module} imports torch"


def test_embedding_a_store_never_imports_training(tmp_path):
    """The whole inference path (checkpoint, normalisation, network, descriptors) runs without the
    training module or its data loaders. (``torch.optim`` itself arrives with ``import torch``.)"""
    store = _write_store(tmp_path / "store", [("hoechst", "nuclear"), ("brightfield", "brightfield")], n=70)
    ckpt = _write_checkpoint(tmp_path / "best.pt")
    mods = _modules_after(
        "from deepcycle_core.net import embed as E\n"
        f"E.embed({str(store)!r}, {str(ckpt)!r}, {str(tmp_path / 'out')!r}, precision='fp32', h5ad=False,"
        " progress=False, batch_size=32)"
    )
    assert (tmp_path / "out" / "descriptors.parquet").is_file()
    assert {"deepcycle_core.net.checkpoint", "deepcycle_core.net.normalise", "deepcycle_core.net.model"} <= mods
    assert "deepcycle_core.net.train" not in mods
    assert "deepcycle_core.net.dataset" not in mods


def test_train_uses_the_one_checkpoint_loader():
    """Training reloads its best checkpoint with the checkpoint module's loader, not a second one."""
    from deepcycle_core.net import checkpoint
    from deepcycle_core.net import train

    assert train.load_model is checkpoint.load_model
