"""Flag values the stages cannot use are refused up front, naming the flag (or parameter) and the value.

Why: the audit of issue 25 found ``ingest --gap-frames -3`` and ``--detect-threshold -1`` accepted
(57 "cells" from noise), ``--detect-threshold nan`` answered "no nuclei found", ``train --batch-size 0``
a ZeroDivisionError traceback, ``--val-cells 0`` a "validation accuracy nan" and ``--heldout-cells -1``
numpy's message. The command line refuses them with argparse's own error (exit 2, the flag named);
the Python functions with a ValueError naming the parameter, before anything is written.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile

sys.path.insert(0, str(Path(__file__).parent))
from ingest_synth import CHANNELS, synthetic_movie  # noqa: E402

from deepcycle_core.__main__ import build_parser, main  # noqa: E402

REQUIRED = {"ingest": ["movie.tif", "--out", "store"], "train": ["--store", "store"], "embed": ["--run", "run"]}


@pytest.mark.parametrize("command, flag, value, rule", [
    ("ingest", "--gap-frames", "-3", "a whole number >= 0"),
    ("ingest", "--gap-frames", "2.5", "a whole number >= 0"),
    ("ingest", "--detect-threshold", "-1", "a positive, finite number"),
    ("ingest", "--detect-threshold", "0", "a positive, finite number"),
    ("ingest", "--detect-threshold", "nan", "a positive, finite number"),
    ("train", "--batch-size", "0", "a whole number >= 1"),
    ("train", "--val-cells", "0", "a whole number >= 1"),
    ("train", "--heldout-cells", "-1", "a whole number >= 1"),
    ("train", "--epochs", "0", "a whole number >= 1"),
    ("train", "--lr", "inf", "a positive, finite number"),
    ("embed", "--batch-size", "0", "a whole number >= 1"),
])
def test_cli_refuses_the_value_naming_flag_and_value(command, flag, value, rule, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, *REQUIRED[command], flag, value])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"deepcycle {command}: error: argument {flag}: must be {rule}, got '{value}'" in err
    assert "Traceback" not in err


def test_cli_accepts_the_edge_values():
    """--gap-frames 0 switches gap closing off (track_spots handles it); 1 is the smallest batch."""
    args = build_parser("ingest").parse_args(["ingest", *REQUIRED["ingest"], "--gap-frames", "0", "--detect-threshold", "0.5"])
    assert args.gap_frames == 0 and args.detect_threshold == 0.5
    args = build_parser("train").parse_args(["train", *REQUIRED["train"], "--batch-size", "1", "--val-cells", "1"])
    assert args.batch_size == 1 and args.val_cells == 1


# -- the Python functions -------------------------------------------------------------------------
@pytest.mark.parametrize("kw, name", [
    ({"batch_size": 0}, "batch_size"), ({"batch_size": -4}, "batch_size"),
    ({"val_cells": 0}, "val_cells"), ({"val_cells": 2.5}, "val_cells"),
    ({"heldout_cells": -1}, "heldout_cells"), ({"heldout_cells": 0}, "heldout_cells"), ({"epochs": 0}, "epochs"),
])
def test_train_refuses_the_value_naming_the_parameter(tmp_path, kw, name):
    from deepcycle_core.net.train import train

    # checked before the store is even looked for: nothing is read or written
    with pytest.raises(ValueError, match=rf"{name} must be a whole number >= 1, got {kw[name]!r}"):
        train(tmp_path / "no_store", tmp_path / "out", progress=False, **kw)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("value", [-1.0, 0.0, math.nan, math.inf])
def test_detect_nuclei_refuses_a_threshold_at_or_below_the_noise(value):
    from deepcycle_core.movies.detect_track import detect_nuclei

    image = np.random.default_rng(0).normal(100, 5, (64, 64))
    with pytest.raises(ValueError, match=rf"threshold must be a positive, finite number, got {value!r}"):
        detect_nuclei(image, 10.0, threshold=value)


@pytest.mark.parametrize("value", [-3, 1.5, math.nan])
def test_track_spots_refuses_a_negative_gap(value):
    from deepcycle_core.movies.detect_track import track_spots

    spots = pd.DataFrame({"frame": [0, 1], "x": [10.0, 11.0], "y": [10.0, 10.5]})
    with pytest.raises(ValueError, match=r"gap_frames must be a whole number >= 0"):
        track_spots(spots, 5.0, gap_frames=value)
    assert (track_spots(spots, 5.0, gap_frames=0)["track_id"] == 0).all()  # 0: no gap closing, one track


@pytest.mark.parametrize("kw, name", [({"detect_threshold": -1.0}, "threshold"), ({"detect_threshold": math.nan}, "threshold"),
                                      ({"gap_frames": -3}, "gap_frames")])
def test_ingest_refuses_them_and_writes_nothing(tmp_path, kw, name):
    from deepcycle_core.movies.ingest import ingest

    mov, _ = synthetic_movie(frames=3, size=96, cells=2, divide_at=None)
    meta = {"axes": "TCYX", "Channel": {"Name": CHANNELS}, "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5,
            "TimeIncrement": 10, "TimeIncrementUnit": "min"}
    tifffile.imwrite(tmp_path / "movie.ome.tif", mov, ome=True, metadata=meta)
    out = tmp_path / "store"
    with pytest.raises(ValueError, match=rf"{name} must be a"):
        ingest(tmp_path / "movie.ome.tif", out, progress=False, **kw)
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".store")]
