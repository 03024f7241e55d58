"""Calibrations and counts: 0, negative or non-finite is an error, never "use the default".

``x or default`` reads a typed 0 as "not given" and silently swaps in the movie's metadata or a
default; every such value must instead fail with a message naming the parameter, before anything is
written.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

sys.path.insert(0, str(Path(__file__).parent))
from ingest_synth import CHANNELS, synthetic_movie  # noqa: E402

from deepcycle_core.movies.ingest import ingest  # noqa: E402
from deepcycle_core.movies.readers import MovieError, open_movie, read_trackmate_spots  # noqa: E402

FIXTURE = Path(__file__).parent / "fixtures" / "deepcycle_tiny"
BAD = [0, 0.0, -1.5, math.nan, math.inf, -math.inf]


def _movie(tmp_path: Path, time_increment: float = 10, pixel: float = 0.5) -> Path:
    mov, _ = synthetic_movie(frames=3, size=96, cells=2, divide_at=None)
    meta = {"axes": "TCYX", "Channel": {"Name": CHANNELS}, "PhysicalSizeX": pixel, "PhysicalSizeY": pixel,
            "TimeIncrement": time_increment, "TimeIncrementUnit": "min"}
    path = tmp_path / "movie.ome.tif"
    tifffile.imwrite(path, mov, ome=True, metadata=meta)
    return path


@pytest.fixture(scope="module")
def movie(tmp_path_factory) -> Path:
    """A movie whose metadata holds a valid calibration: a 0 typed by the user must not fall back to it."""
    return _movie(tmp_path_factory.mktemp("movie"))


def _nothing_written(out: Path) -> None:
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")]


@pytest.mark.parametrize("value", BAD)
@pytest.mark.parametrize("name", ["frame_interval_min", "pixel_size_um", "nucleus_diameter_px", "max_step_px"])
def test_ingest_refuses_zero_negative_and_non_finite(movie: Path, tmp_path: Path, name: str, value: float) -> None:
    out = tmp_path / "store"
    with pytest.raises(ValueError, match=f"{name} must be a positive, finite number, got {value!r}"):
        ingest(movie, out, progress=False, **{name: value})
    _nothing_written(out)


@pytest.mark.parametrize("field, value, flag", [("TimeIncrement", 0, "frame_interval_min"), ("PhysicalSizeX", 0, "pixel_size_um")])
def test_ingest_refuses_a_zero_calibration_in_the_metadata(tmp_path: Path, field: str, value: float, flag: str) -> None:
    path = _movie(tmp_path, **({"time_increment": value} if field == "TimeIncrement" else {"pixel": value}))
    with pytest.raises(MovieError, match=f"movie.ome.tif: the movie's metadata gives the .* as 0.0; pass {flag}"):
        ingest(path, tmp_path / "store", progress=False)
    _nothing_written(tmp_path / "store")


def test_ingest_cli_zero_is_an_error(movie: Path, tmp_path: Path, capsys) -> None:
    from deepcycle_core.__main__ import main

    out = tmp_path / "store"
    for flag in ("--frame-interval-min", "--pixel-size-um"):
        assert main(["ingest", str(movie), "--out", str(out), flag, "0", "--no-progress"]) == 2
        assert f"{flag[2:].replace('-', '_')} must be a positive, finite number, got 0.0" in capsys.readouterr().err
    _nothing_written(out)


@pytest.mark.parametrize("value", BAD)
def test_movie_pixel_size_must_be_positive(value: float) -> None:
    with pytest.raises(MovieError, match=f"deepcycle_tiny: pixel_size_um must be a positive, finite number, got {value!r}"):
        open_movie(FIXTURE, pixel_size_um=value, spot_units="um")
    csv = FIXTURE / "Spots in tracks statistics.csv"
    with pytest.raises(MovieError, match=f"statistics.csv: pixel_size_um must be a positive, finite number, got {value!r}"):
        read_trackmate_spots(csv, pixel_size_um=value, units="um")


@pytest.mark.parametrize("value", [0, -3, 2.5, math.nan, math.inf])
@pytest.mark.parametrize("name", ["samples_per_epoch", "threads", "checkpoint_every"])
def test_train_counts_must_be_whole_and_positive(tmp_path: Path, name: str, value: float) -> None:
    from deepcycle_core.net.train import train

    # checked before the store is even looked for: nothing is read or written
    with pytest.raises(ValueError, match=f"{name} must be a whole number >= 1"):
        train(tmp_path / "no_store", tmp_path / "out", progress=False, **{name: value})
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kw", [{"hours": 0}, {"hours": -2.0}, {"hours": math.nan}, {"hours": math.inf}, {"workers": 0}])
def test_simulate_refuses_zero_and_non_finite(tmp_path: Path, kw: dict) -> None:
    from deepcycle_core.sim.simulate import simulate

    name = next(iter(kw))
    with pytest.raises(ValueError, match=f"{name} must be"):
        simulate(tmp_path / "store", cells=2, progress=False, **kw)
    _nothing_written(tmp_path / "store")


def test_valid_values_still_accepted(movie: Path) -> None:
    with open_movie(FIXTURE, pixel_size_um=0.5, spot_units="um") as m:
        assert m.spots is not None and np.isfinite(m.spots["x"]).all()
