"""Chapter 04 on descriptors that order nothing: it says "no ring" with the reason and runs to its end.

The chapter itself is executed (papermill, through the project's pipeline) in a scratch checkout on a tiny run
whose descriptors are noise, so that neither the tracks nor the FUCCI classes can orient a ring; every
later cell that draws the ring must skip, and the cycle head's section must still run. About 20 s.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from builders import make_ring_run

from deepcycle_core.data import fingerprint

ROOT = Path(__file__).resolve().parents[2]


def test_chapter_04_reports_no_ring_and_goes_on(tmp_path):
    pytest.importorskip("papermill")
    from deepcycle_core.book.pipeline import run_book

    project = tmp_path / "project"
    (project / "book").mkdir(parents=True)
    for item in ROOT.iterdir():
        if item.name not in ("book", "data", ".git", "_build") and not item.name.startswith(".pytest"):
            os.symlink(item, project / item.name)
    for item in (ROOT / "book").iterdir():
        if item.name == "params":
            (project / "book" / "params").mkdir()
        elif item.name != "_build":
            os.symlink(item, project / "book" / item.name)
    shutil.copy(ROOT / "book" / "params" / "smoke.yaml", project / "book" / "params" / "noring.yaml")
    text = (project / "book" / "params" / "noring.yaml").read_text().replace("profile: smoke", "profile: noring")
    (project / "book" / "params" / "noring.yaml").write_text(text)

    run, X, _ = make_ring_run(project / "data" / "runs" / "tmp", np.random.default_rng(12))
    shutil.move(str(run.root), project / "data" / "runs" / "noring")
    runs = project / "data" / "runs" / "noring"
    noise = np.random.default_rng(5).normal(0, 1, X.shape)
    pd.DataFrame({"cell_id": np.arange(len(X)), **{f"d{k}": noise[:, k] for k in range(4)}}).to_parquet(
        runs / "embed" / "descriptors.parquet")
    fingerprint.adopt(runs, "train")
    fingerprint.adopt(runs, "embed")

    done = run_book("noring", ["04_trajectory"], root=project, progress=False)
    nb = json.loads(done[0].output.read_text())  # papermill's executed copy (a profile other than default)
    printed = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", [])
                      if o.get("name") == "stdout")
    assert printed.startswith("no ring: cannot tell the ring's direction"), printed[:500]
    assert "no cycle head" in printed  # the cycle head's section ran (this network has none)
    assert (runs / "trajectory" / "no_ring.json").exists() and not (runs / "trajectory" / "ring.json").exists()
    assert not any(o.get("output_type") == "error" for c in nb["cells"] for o in c.get("outputs", []))
