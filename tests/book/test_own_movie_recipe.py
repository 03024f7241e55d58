"""The README's "Your own data" recipe, run exactly as written on a movie ingested like a user's.

The commands are read from the README's own code block (nothing is copied here, so the README cannot
drift from what is tested). They run in a scratch project (the chapters, profiles and the package of
this checkout; its own data/runs), from the project's folder as the README assumes, on a small movie of
the virtual microscope exported as OME-TIFF. The one step the README leaves to the user -- "then edit
any parameter" -- is done here as a user on a laptop would: a small training budget in fp32.
About 1.5-2 min on 2 cores (simulate and ingest ~15 s, chapters 02-04 through papermill the rest).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from deepcycle_core.book.profiles import ParameterError, load_profile

ROOT = Path(__file__).resolve().parents[2]
SECTION = "## Your own data"

#: The user's edit of the copied template (the README: "then edit any parameter"): a budget for a test.
SMALL = {"train_epochs": 2, "train_samples_per_epoch": 512, "train_val_cells": 128, "train_heldout_cells": 128,
         "train_precision": "fp32", "train_threads": 1, "embed_precision": "fp32", "embed_throughput_cells": 512}


def readme_recipe(text: str | None = None) -> list[str]:
    """The shell commands of the first ``bash`` block of the README's "Your own data" section, one string
    each (continuation lines joined, comments dropped)."""
    text = text if text is not None else (ROOT / "README.md").read_text()
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, f"README: no bash block under {SECTION!r}"
    joined = re.sub(r"\\\n\s*", " ", block.group(1))
    commands = [re.sub(r"\s+#.*$", "", line).strip() for line in joined.splitlines()]
    return [c for c in commands if c and not c.startswith("#")]


def test_the_recipe_starts_from_the_template_for_ones_own_movie():
    commands = readme_recipe()
    assert len(commands) == 3
    assert commands[0].startswith("cp book/params/own_movie.yaml book/params/")
    profile = Path(commands[0].split()[-1]).stem
    assert f"--out data/runs/{profile}/store" in commands[1] and f"--profile {profile}" in commands[2]
    own = load_profile("own_movie", root=ROOT)
    assert own["train_use_reference"] is False and "profile" not in own


def test_a_copied_profile_that_names_another_run_is_refused(tmp_path):
    """A copy of default.yaml still says ``profile: default``: it would run in (and overwrite) the default run."""
    (tmp_path / "book" / "params").mkdir(parents=True)
    for name in ("_toc.yml",):
        shutil.copy(ROOT / name, tmp_path / name)
    os.symlink(ROOT / "book" / "intro.md", tmp_path / "book" / "intro.md")
    for nb in ROOT.glob("book/0*.ipynb"):
        os.symlink(nb, tmp_path / "book" / nb.name)
    os.symlink(ROOT / "book" / "api", tmp_path / "book" / "api")
    (tmp_path / "book" / "params" / "mymovie.yaml").write_text((ROOT / "book/params/default.yaml").read_text())
    with pytest.raises(ParameterError, match=r"says 'profile: default'.*data/runs/default/"):
        load_profile("mymovie", root=tmp_path)


def _scratch_project(base: Path) -> Path:
    """A project folder the commands can run in, as a user's checkout: this one's files (linked), its own
    book/params/ (the recipe writes there) and its own data/ (no run of this checkout is touched)."""
    project = base / "project"
    (project / "book").mkdir(parents=True)
    for item in ROOT.iterdir():
        if item.name not in ("book", "data", ".git", "_build") and not item.name.startswith(".pytest"):
            os.symlink(item, project / item.name)
    for item in (ROOT / "book").iterdir():
        if item.name == "params":
            shutil.copytree(item, project / "book" / "params")
        elif item.name != "_build":
            os.symlink(item, project / "book" / item.name)  # read only: a non-default profile never writes them
    return project


def test_the_readme_recipe_runs_on_an_ingested_movie(tmp_path):
    from deepcycle_core.sim import simulate as sim

    if not (ROOT / ".venv" / "bin" / "deepcycle").exists():
        pytest.skip("no .venv/bin/deepcycle (make venv)")
    project = _scratch_project(tmp_path)
    # "your movie": the virtual microscope's, exported as OME-TIFF (TCYX, channel names in the metadata)
    sim.simulate(tmp_path / "sim" / "store", cells=60, hours=36.0, seed=1, movie=True, progress=False)
    shutil.copy(sim.movie_dir(tmp_path / "sim" / "store") / sim.MOVIE_NAME, project / "movie.ome.tif")

    commands = readme_recipe()
    env = {k: v for k, v in os.environ.items() if k != "DEEPCYCLE_ROOT"}
    for i, command in enumerate(commands):
        done = subprocess.run(["bash", "-c", command], cwd=project, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"README command {command!r} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        if i == 0:  # the user's edit of the copy
            path = project / command.split()[-1]
            profile = yaml.safe_load(path.read_text())
            path.write_text(yaml.safe_dump({**profile, **SMALL}, sort_keys=False))

    name = Path(commands[0].split()[-1]).stem
    run = project / "data" / "runs" / name
    summary = json.loads((run / "train" / "summary.json").read_text())
    assert summary["bf16"] is False  # the edit (train_precision: fp32) reached the chapter
    assert (run / "embed" / "descriptors.parquet").exists()
    # chapter 04 ends with a ring or says why there is none; either way the cycle head was read
    assert (run / "trajectory" / "ring.json").exists() != (run / "trajectory" / "no_ring.json").exists()
    nb = json.loads((run / "notebooks" / "04_trajectory.ipynb").read_text())
    printed = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))
    assert "cells placed on the ring" in printed or "no ring: " in printed
    assert "verdict along the fitting tracks" in printed
    # a profile other than default never writes the executed chapters back into book/
    assert all((project / "book" / nb.name).is_symlink() for nb in ROOT.glob("book/0*.ipynb"))
