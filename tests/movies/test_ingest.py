"""ingest(): movie -> cell store, end to end; bad input leaves no store; the simulator's movie scores."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile

sys.path.insert(0, str(Path(__file__).parents[1]))
from ingest_synth import CHANNELS, synthetic_movie  # noqa: E402

from deepcycle_core.movies.detect_track import match_truth  # noqa: E402
from deepcycle_core.movies.ingest import ingest, match_store, parse_channels  # noqa: E402
from deepcycle_core.movies.readers import MovieError  # noqa: E402
from deepcycle_core.data.store import StoreError, open_store  # noqa: E402

FIXTURE = Path(__file__).parents[1] / "fixtures" / "deepcycle_tiny"
OME_META = {"axes": "TCYX", "Channel": {"Name": CHANNELS}, "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5,
            "TimeIncrement": 10, "TimeIncrementUnit": "min"}


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    mov, truth = synthetic_movie(frames=12, size=160, cells=8, seed=2)
    path = tmp_path_factory.mktemp("movie") / "movie.ome.tif"
    tifffile.imwrite(path, mov, ome=True, metadata=OME_META)
    return path, mov, truth


def _nothing_left(out: Path) -> None:
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")]


def test_ingest_ome_tiff_writes_a_valid_store(synth, tmp_path):
    path, mov, truth = synth
    out = ingest(path, tmp_path / "store", nucleus_diameter_px=14, spots_out=tmp_path / "spots.parquet", progress=False)
    st = open_store(out)
    assert st.channels == ["hoechst", "brightfield"] and st.roles == ["nuclear", "brightfield"]
    assert st.meta["frame_interval_min"] == 10 and st.meta["pixel_size_um"] == 0.5
    assert st.meta["provenance"]["source"] == "ingest"
    assert len(st.frames) == 12
    # crops are the movie's pixels around each nucleus
    row = st.cells.iloc[5]
    cx, cy = int(np.rint(row.x)), int(np.rint(row.y))
    np.testing.assert_array_equal(st.read(5, 6)[0, 0], mov[int(row.frame), 1, cy - 24 : cy + 24, cx - 24 : cx + 24])
    np.testing.assert_array_equal(st.read(5, 6)[0, 1], mov[int(row.frame), 0, cy - 24 : cy + 24, cx - 24 : cx + 24])
    # per-frame statistics are those of the whole frame
    f0 = st.frames.set_index("frame").loc[0]
    assert f0["hoechst_median"] == pytest.approx(np.median(mov[0, 1]))
    assert f0["brightfield_std"] == pytest.approx(mov[0, 0].std())
    # FUCCI classes: the paper's median splits give four near-equal classes, gated on the fitting cells
    # (this movie has no held-out track: test_fucci_gates_never_see_the_held_out_tracks has them)
    from deepcycle_core.data import fucci
    from deepcycle_core.data.split import fit_mask

    assert set(st.cells["class"]) == {0, 1, 2, 3}
    np.testing.assert_array_equal(st.cells["class"], fucci.classify(st.cells["fucci_red"], st.cells["fucci_green"],
                                                                    fit=fit_mask(st.cells)))
    row_r = fucci.measure(mov[int(row.frame), 2], [row.x], [row.y])[0]
    assert st.cells["fucci_red"].iloc[5] == pytest.approx(row_r)
    # time in hours, lineage columns
    np.testing.assert_allclose(st.cells["time_h"], st.cells["frame"] * 10 / 60)
    rep = match_truth(pd.read_parquet(tmp_path / "spots.parquet"), truth, 4.0)
    assert rep.detection_recall >= 0.95 and rep.detection_precision >= 0.95
    assert rep.division_recall == 1.0
    rep2 = match_store(out, truth, tmp_path / "spots.parquet", max_dist_px=4.0)
    assert rep2.detection_recall >= 0.95


def test_fucci_gates_never_see_the_held_out_tracks(tmp_path):
    """Founder 0's daughters are born and divide inside the movie: full-cycle tracks, held out. The
    FUCCI gates (three medians) are fitted on the other cells only, then applied to every cell -- and
    on this movie that labels cells otherwise than gates fitted on every cell would."""
    from deepcycle_core.data import fucci
    from deepcycle_core.data.split import fit_mask, holdout_masks

    mov, _ = synthetic_movie(frames=14, size=160, cells=8, seed=2, divide_at=3, redivide_at=8)
    path = tmp_path / "movie.ome.tif"
    tifffile.imwrite(path, mov, ome=True, metadata=OME_META)
    cells = open_store(ingest(path, tmp_path / "s", nucleus_diameter_px=14, progress=False)).cells
    held, excluded = holdout_masks(cells)
    assert cells.loc[held, "track_id"].nunique() == 2 and excluded.any()  # the two daughters; mother, granddaughters
    fit = fit_mask(cells)
    red, green = cells["fucci_red"], cells["fucci_green"]
    np.testing.assert_array_equal(cells["class"], fucci.classify(red, green, fit=fit))
    assert (fucci.classify(red, green) != cells["class"]).sum() >= 5  # the test can tell the two rules apart
    assert (cells.loc[held, "class"] >= 0).all()  # gated on the others, labelled like every cell


def test_without_fucci_classes_are_unlabelled(synth, tmp_path):
    path, _, _ = synth
    out = ingest(path, tmp_path / "s", channels="nuclear=hoechst,brightfield=brightfield", nucleus_diameter_px=14, progress=False)
    cells = open_store(out).cells
    assert len(cells) > 50  # not vacuously "all unlabelled" on an empty table
    assert (cells["class"] == -1).all() and cells["fucci_red"].isna().all()


def test_a_gap_in_a_frame_folder_keeps_every_frame_at_its_own_time(tmp_path):
    """movie_T001, T002, T004, T005: the T004 cells are at 0.5 h (three 10-min intervals), not 0.333 h;
    the tracker follows each nucleus across the missing frame; the store records the gap."""
    mov, _ = synthetic_movie(frames=4, size=160, cells=4, seed=1, divide_at=None)
    folder = tmp_path / "frames"
    folder.mkdir()
    for t, number in enumerate((1, 2, 4, 5)):
        tifffile.imwrite(folder / f"movie_T{number:03d}.tif", mov[t], photometric="minisblack")
    st = open_store(ingest(folder, tmp_path / "s", channels="nuclear=1,brightfield=0,fucci_red=2,fucci_green=3",
                           frame_interval_min=10, pixel_size_um=0.5, nucleus_diameter_px=14, progress=False))
    cells = st.cells
    assert sorted(cells["frame"].unique()) == [0, 1, 3, 4] and sorted(st.frames["frame"]) == [0, 1, 3, 4]
    np.testing.assert_allclose(cells["time_h"], cells["frame"] * 10 / 60)
    assert set(cells.loc[cells["frame"] == 3, "time_h"].round(6)) == {0.5}
    assert cells["track_id"].nunique() == 4 and (cells.groupby("track_id").size() == 4).all()
    assert st.meta["ingest"]["missing_frames"] == [2]


def test_a_single_frame_is_refused(synth, tmp_path):
    """One frame has no tracks: no time since birth, no division, nothing for a clock; refused before
    anything is written (it gave 6 one-frame "tracks" before)."""
    mov, _ = synthetic_movie(frames=1, size=160, cells=6, seed=1, divide_at=None)
    path = tmp_path / "one.ome.tif"
    tifffile.imwrite(path, mov, ome=True, metadata=OME_META)
    with pytest.raises(MovieError, match=rf"{path}: the movie has 1 frame\(s\) with an image: not a time-lapse"):
        ingest(path, tmp_path / "s", nucleus_diameter_px=14, progress=False)
    _nothing_left(tmp_path / "s")
    movie, _, _ = synth
    with pytest.raises(MovieError, match=r"max_frames=1 leaves 1 frame\(s\) with an image"):
        ingest(movie, tmp_path / "s", nucleus_diameter_px=14, max_frames=1, progress=False)
    _nothing_left(tmp_path / "s")


def test_border_nuclei_dropped_and_counted(tmp_path):
    mov = np.full((2, 2, 100, 100), 100, np.uint16)
    for t in range(2):
        for x, y in ((50, 50), (10, 50)):  # the second sits 10 px from the left border
            yy, xx = np.mgrid[0:100, 0:100]
            mov[t, 0] += (2000 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / 18)).astype(np.uint16)
    mov = mov + np.random.default_rng(0).integers(0, 20, mov.shape).astype(np.uint16)
    path = tmp_path / "b.tif"
    tifffile.imwrite(path, mov, photometric="minisblack")
    out = ingest(path, tmp_path / "s", axes="TCYX", channels={"nuclear": 0, "brightfield": 1},
                 frame_interval_min=5, pixel_size_um=1, nucleus_diameter_px=12, progress=False)
    st = open_store(out)
    assert len(st.cells) == 2 and np.allclose(st.cells["x"], 50, atol=0.5)
    assert st.meta["ingest"]["n_border_dropped"] == 2
    assert st.channels == ["0", "1"]


def test_cli(synth, tmp_path, capsys):
    """The sub-command as registered (the full ``deepcycle`` parser imports every stage, torch too)."""
    import argparse

    from deepcycle_core.movies.ingest import register_cli

    parser = argparse.ArgumentParser(prog="deepcycle")
    register_cli(parser.add_subparsers(dest="command"))
    path, _, _ = synth
    out = tmp_path / "cli_store"
    args = parser.parse_args(["ingest", str(path), "--out", str(out), "--channels",
                              "nuclear=hoechst,brightfield=brightfield,fucci_red=fucci_red,fucci_green=fucci_green",
                              "--nucleus-diameter-px", "14", "--no-progress"])
    assert args.func(args) == 0 and open_store(out).n_cells > 50
    assert "cells" in capsys.readouterr().out
    args = parser.parse_args(["ingest", str(path), "--out", str(out), "--no-progress"])
    with pytest.raises(StoreError, match="already exists"):  # __main__.main turns this into exit code 2
        args.func(args)


def test_deepcycle_layout_uses_trackmate_tracks(tmp_path):
    out = ingest(FIXTURE, tmp_path / "s", frame_interval_min=10, pixel_size_um=0.65, nucleus_diameter_px=12, progress=False)
    st = open_store(out)
    assert st.meta["provenance"]["parameters"]["given_spots"] is True
    assert st.meta["provenance"]["parameters"]["channels"] == {"nuclear": "DAPI", "brightfield": "BF", "fucci_red": "Cy3", "fucci_green": "GFP"}
    cells = st.cells
    truth = pd.read_csv(FIXTURE / "truth.csv")
    assert len(cells) == len(truth)
    # TrackMate's two lineage trees become 2 mothers + 4 daughters with the right parents
    assert cells["track_id"].nunique() == 6
    kids = cells[cells["parent_track_id"] >= 0]
    assert kids["track_id"].nunique() == 4 and (kids["birth_frame"] == 2).all()
    moms = cells[cells["parent_track_id"] < 0]
    assert (moms["division_frame"] == 1).all()
    assert set(kids["parent_track_id"]) == set(moms["track_id"])


def test_parse_channels():
    assert parse_channels("nuclear=DAPI, brightfield=0") == {"nuclear": "DAPI", "brightfield": 0}
    with pytest.raises(ValueError, match="unknown channel role"):
        parse_channels("nucleus=DAPI")
    with pytest.raises(ValueError, match="needs a 'nuclear'"):
        parse_channels("brightfield=BF")
    with pytest.raises(ValueError, match="both fucci_red and fucci_green"):
        parse_channels("nuclear=0,fucci_red=2")


# -- bad input: a clear error naming the file, and no store left behind ---------------------------
def _write(tmp_path: Path, name: str, arr: np.ndarray, **kw) -> Path:
    path = tmp_path / name
    tifffile.imwrite(path, arr, **kw)
    return path


def test_bad_inputs_leave_no_store(synth, tmp_path):
    path, mov, _ = synth
    out = tmp_path / "store"
    cases = []
    # wrong axes for a plain TIFF
    plain = _write(tmp_path, "plain.tif", mov, photometric="minisblack")
    cases.append((dict(movie=plain, axes="TYX"), "plain.tif: wrong axes"))
    # a missing channel
    cases.append((dict(movie=path, channels="nuclear=dapi"), "movie.ome.tif: missing channel 'dapi'"))
    # frames of different shapes in a frame folder
    folder = tmp_path / "frames"
    folder.mkdir()
    for t in range(3):
        tifffile.imwrite(folder / f"f{t}.tif", mov[t, :, : (100 if t == 2 else 160)], photometric="minisblack")
    cases.append((dict(movie=folder, channels="nuclear=1", frame_interval_min=10, pixel_size_um=1), "f2.tif: frames of different shapes"))
    # 8-bit where 16-bit is expected
    eight = _write(tmp_path, "eight.ome.tif", (mov // 257).astype(np.uint8), ome=True, metadata=OME_META)
    cases.append((dict(movie=eight), "eight.ome.tif: 8-bit"))
    # an empty movie
    (tmp_path / "empty").mkdir()
    cases.append((dict(movie=tmp_path / "empty"), "empty: empty movie"))
    # a truncated TIFF
    trunc = tmp_path / "trunc.ome.tif"
    data = path.read_bytes()
    trunc.write_bytes(data[: len(data) // 2])
    cases.append((dict(movie=trunc), "trunc.ome.tif: truncated"))
    # no calibration anywhere
    cases.append((dict(movie=plain, axes="TCYX", channels="nuclear=1"), "plain.tif: frame interval unknown"))
    for kwargs, message in cases:
        with pytest.raises((MovieError, StoreError, ValueError), match=message):
            ingest(out=out, nucleus_diameter_px=14, progress=False, **kwargs)
        _nothing_left(out)


def test_failure_during_writing_leaves_no_store(synth, tmp_path, monkeypatch):
    path, _, _ = synth
    import deepcycle_core.movies.ingest as ing

    calls = {"n": 0}
    real = ing.crop_at

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] > 5:
            raise OSError("disk full")
        return real(*a, **k)

    monkeypatch.setattr(ing, "crop_at", flaky)
    with pytest.raises(OSError, match="disk full"):
        ingest(path, tmp_path / "store", nucleus_diameter_px=14, progress=False)
    _nothing_left(tmp_path / "store")


def test_existing_store_not_overwritten(synth, tmp_path):
    path, _, _ = synth
    out = ingest(path, tmp_path / "s", nucleus_diameter_px=14, progress=False)
    n = open_store(out).n_cells
    with pytest.raises(StoreError, match="already exists"):
        ingest(path, out, nucleus_diameter_px=14, progress=False)
    ingest(path, out, nucleus_diameter_px=14, max_frames=3, overwrite=True, progress=False)
    assert open_store(out).n_cells < n


# -- the simulator's movie ------------------------------------------------------------------------
def test_simulated_movie_end_to_end(tmp_path):
    from deepcycle_core.sim import simulate  # the project's own module: an import error fails, never skips
    from deepcycle_core.sim.params import PIXEL_SIZE_UM

    # 60 cells over 8 h: 12 divisions in the field with this seed (16 cells over 5 h had only 1)
    store = simulate.simulate(tmp_path / "sim" / "store", cells=60, hours=8, seed=0, movie=True, progress=False)
    mdir = simulate.movie_dir(store)
    out = ingest(mdir / "movie.ome.tif", tmp_path / "ingested", spots_out=tmp_path / "spots.parquet", progress=False)
    st = open_store(out)
    assert st.channels == ["hoechst", "brightfield"]
    assert st.meta["pixel_size_um"] == pytest.approx(PIXEL_SIZE_UM)
    rep = match_store(out, mdir / "truth.parquet", tmp_path / "spots.parquet")
    # the full-size figures are measured in the book chapter; a small movie must come close
    assert rep.detection_recall >= 0.9 and rep.detection_precision >= 0.9, rep
    assert rep.n_truth_divisions >= 3, rep  # the movie must hold divisions for the recall to mean anything
    assert rep.division_recall >= 0.6, rep


@pytest.mark.parametrize("kwargs, name", [({"detect_threshold": -1.0}, "detect_threshold"),
                                          ({"detect_threshold": float("nan")}, "detect_threshold"),
                                          ({"gap_frames": -3}, "gap_frames"), ({"gap_frames": 1.5}, "gap_frames")])
def test_ingest_names_a_bad_detector_or_tracker_setting_before_opening_the_movie(tmp_path, kwargs, name):
    """The API names its own parameter (not the lower function's) and fails before the movie is read."""
    with pytest.raises(ValueError, match=name):
        ingest(tmp_path / "no-such-movie.tif", tmp_path / "store", progress=False, **kwargs)
    assert not (tmp_path / "store").exists()
