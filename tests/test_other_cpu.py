"""`make other-cpu` runs the chapters on the x86-64 baseline code paths; this checks that the libraries
really took the forced paths, so that pass cannot silently run on the machine's own vector units.

Skipped outside that pass (the variables unset): on the native paths there is nothing to check."""

from __future__ import annotations

import os

import pytest

FORCED = os.environ.get("ATEN_CPU_CAPABILITY") == "default" and "X86_V3" in os.environ.get(
    "NPY_DISABLE_CPU_FEATURES", "").split()


@pytest.mark.skipif(not FORCED, reason="only under `make other-cpu` (x86-64 baseline forced)")
def test_numpy_and_torch_run_on_the_baseline_paths():
    import torch
    from numpy._core._multiarray_umath import __cpu_features__

    assert __cpu_features__["X86_V3"] is False and __cpu_features__["X86_V4"] is False
    assert torch.backends.cpu.get_cpu_capability() == "DEFAULT"
