"""Scoring needs no torch: the validation stage, the metrics and the ring import without it.

Why: the validation only reads files the earlier stages wrote (descriptors, rings) and scores them, so
it must run -- and its numbers be checked -- where torch is not installed. Only the stages that run a
network (train, embed, describe) import torch, and describe only inside the functions that do. Each
check runs in a fresh interpreter, so what one test imported cannot hide what another pulls in.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Modules that must import without torch.
TORCH_FREE = (
    "deepcycle_core.validation.validate",
    "deepcycle_core.validation.scoring",
    "deepcycle_core.clock.trajectory",
    "deepcycle_core.clock.metrics",
    "deepcycle_core.validation.baselines",
    "deepcycle_core.validation.describe",
)


def _modules_after(code: str) -> set[str]:
    """The names in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    probe = f"{code}\nimport json as _j, sys as _s\nprint(_j.dumps(sorted(_s.modules)))\n"
    res = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    return set(json.loads(res.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("module", TORCH_FREE)
def test_module_imports_without_torch(module):
    mods = _modules_after(f"import {module}")
    assert "torch" not in mods, f"importing {module} imports torch"


def test_the_validate_cli_registers_without_torch():
    """Building ``deepcycle validate`` and ``deepcycle describe`` imports no network code either."""
    mods = _modules_after(
        "import argparse\n"
        "from deepcycle_core.validation import describe, validate\n"
        "sub = argparse.ArgumentParser().add_subparsers()\n"
        "validate.register_cli(sub)\n"
        "describe.register_cli(sub)\n"
        "assert {'validate', 'describe'} <= set(sub.choices)\n"
    )
    assert "torch" not in mods
