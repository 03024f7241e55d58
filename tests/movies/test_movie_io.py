"""Movie readers: every layout gives the same frames lazily, and every bad input names its file."""

from __future__ import annotations

import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr

sys.path.insert(0, str(Path(__file__).parents[1]))
from ingest_synth import CHANNELS, synthetic_movie  # noqa: E402

from deepcycle_core.movies.readers import MovieError, open_movie, read_trackmate_spots  # noqa: E402

FIXTURE = Path(__file__).parents[1] / "fixtures" / "deepcycle_tiny"
OME_META = {"axes": "TCYX", "Channel": {"Name": CHANNELS}, "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5,
            "TimeIncrement": 10, "TimeIncrementUnit": "min"}


@pytest.fixture(scope="module")
def movie_array() -> np.ndarray:
    return synthetic_movie(frames=4, size=64, cells=2, divide_at=None)[0]


def test_ome_tiff_axes_channels_and_calibration_from_metadata(tmp_path, movie_array):
    path = tmp_path / "m.ome.tif"
    tifffile.imwrite(path, movie_array, ome=True, metadata=OME_META)
    with open_movie(path) as m:
        assert m.channel_names == CHANNELS
        assert (m.n_frames, m.shape) == (4, (64, 64))
        assert m.pixel_size_um == pytest.approx(0.5) and m.frame_interval_min == pytest.approx(10)
        np.testing.assert_array_equal(m.frame(2, "hoechst"), movie_array[2, 1])
        np.testing.assert_array_equal(m.frame(3, 3), movie_array[3, 3])


def test_compressed_ome_tiff_reads_plane_by_plane(tmp_path, movie_array):
    path = tmp_path / "c.ome.tif"
    tifffile.imwrite(path, movie_array, ome=True, metadata=OME_META, compression="zlib")
    with open_movie(path) as m:
        np.testing.assert_array_equal(m.frame(1, "fucci_red"), movie_array[1, 2])


def test_plain_tiff_needs_axes(tmp_path, movie_array):
    path = tmp_path / "p.tif"
    tifffile.imwrite(path, movie_array, photometric="minisblack")
    with pytest.raises(MovieError, match="p.tif.*axes"):
        open_movie(path)
    with open_movie(path, axes="TCYX") as m:
        assert m.channel_names == ["0", "1", "2", "3"]
        np.testing.assert_array_equal(m.frame(3, 1), movie_array[3, 1])
    # other axis orders are understood too
    tifffile.imwrite(path, np.moveaxis(movie_array, 1, 0).copy(), photometric="minisblack")
    with open_movie(path, axes="CTYX") as m:
        np.testing.assert_array_equal(m.frame(3, 1), movie_array[3, 1])


@pytest.mark.parametrize("axes, problem", [("TYX", "wrong axes"), ("TCXY", "Y must come before X"), ("QCYX", "axis 'Q'")])
def test_wrong_axes_named(tmp_path, movie_array, axes, problem):
    path = tmp_path / "p.tif"
    tifffile.imwrite(path, movie_array, photometric="minisblack")
    with pytest.raises(MovieError, match=f"p.tif.*{problem}"):
        open_movie(path, axes=axes)


def test_axes_contradicting_ome_metadata(tmp_path, movie_array):
    path = tmp_path / "m.ome.tif"
    tifffile.imwrite(path, movie_array, ome=True, metadata=OME_META)
    with pytest.raises(MovieError, match="m.ome.tif: wrong axes 'CTYX'.*TCYX"):
        open_movie(path, axes="CTYX")


def test_missing_channel_named(tmp_path, movie_array):
    path = tmp_path / "m.ome.tif"
    tifffile.imwrite(path, movie_array, ome=True, metadata=OME_META)
    with open_movie(path) as m, pytest.raises(MovieError, match="m.ome.tif: missing channel 'dapi'"):
        m.channel_index("dapi")


def test_eight_bit_refused_unless_allowed(tmp_path, movie_array):
    path = tmp_path / "b.ome.tif"
    tifffile.imwrite(path, (movie_array // 257).astype(np.uint8), ome=True, metadata=OME_META)
    with pytest.raises(MovieError, match="b.ome.tif: 8-bit"):
        open_movie(path)
    with open_movie(path, allow_8bit=True) as m:
        assert m.frame(0, 0).dtype == np.uint16
        assert m.frame(0, 0).max() == (movie_array[0, 0] // 257).max() * 257


def test_float_refused(tmp_path, movie_array):
    path = tmp_path / "f.tif"
    tifffile.imwrite(path, movie_array.astype(np.float32), photometric="minisblack")
    with pytest.raises(MovieError, match="f.tif: pixel type float32"):
        open_movie(path, axes="TCYX")


def test_truncated_tiff_named(tmp_path, movie_array):
    path = tmp_path / "t.ome.tif"
    tifffile.imwrite(path, movie_array, ome=True, metadata=OME_META)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(MovieError, match="t.ome.tif: truncated"):
        open_movie(path)


def test_not_a_tiff(tmp_path):
    path = tmp_path / "x.tif"
    path.write_bytes(b"hello, not an image")
    with pytest.raises(MovieError, match="x.tif"):
        open_movie(path)


def test_frame_folder_and_different_shapes(tmp_path, movie_array):
    folder = tmp_path / "frames"
    folder.mkdir()
    for t in range(4):
        tifffile.imwrite(folder / f"img_t{t + 1}.tif", movie_array[t], photometric="minisblack")
    with open_movie(folder) as m:
        assert (m.n_frames, m.n_channels) == (4, 4)
        np.testing.assert_array_equal(m.frame(2, 1), movie_array[2, 1])
    tifffile.imwrite(folder / "img_t5.tif", movie_array[0, :, :32], photometric="minisblack")
    with pytest.raises(MovieError, match="img_t5.tif: frames of different shapes"):
        open_movie(folder)


def test_empty_inputs(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(MovieError, match="empty movie"):
        open_movie(tmp_path / "empty")
    g = zarr.open_group(str(tmp_path / "e.zarr"), mode="w")
    g.create_array("0", shape=(0, 2, 64, 64), dtype="uint16")
    g.attrs["ome"] = {"version": "0.5", "multiscales": [{"axes": [{"name": a} for a in "tcyx"], "datasets": [{"path": "0"}]}]}
    with pytest.raises(MovieError, match="e.zarr: empty movie"):
        open_movie(tmp_path / "e.zarr")
    with pytest.raises(MovieError, match="no such file"):
        open_movie(tmp_path / "nothing.tif")


@pytest.mark.parametrize("fmt", [2, 3])
def test_ome_zarr_level0_and_metadata(tmp_path, movie_array, fmt):
    path = tmp_path / "m.zarr"
    g = zarr.open_group(str(path), mode="w", zarr_format=fmt)
    g.create_array("0", shape=movie_array.shape, chunks=(1, 1, 64, 64), dtype="uint16")[:] = movie_array
    ms = [{"version": "0.4", "axes": [{"name": "t", "type": "time", "unit": "minute"}, {"name": "c", "type": "channel"},
                                       {"name": "y", "type": "space", "unit": "micrometer"}, {"name": "x", "type": "space", "unit": "micrometer"}],
           "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [15.0, 1, 0.65, 0.65]}]}]}]
    omero = {"channels": [{"label": n} for n in CHANNELS]}
    if fmt == 2:
        g.attrs.update({"multiscales": ms, "omero": omero})
    else:
        g.attrs["ome"] = {"version": "0.5", "multiscales": ms, "omero": omero}
    with open_movie(path) as m:
        assert m.channel_names == CHANNELS
        assert m.pixel_size_um == pytest.approx(0.65) and m.frame_interval_min == pytest.approx(15)
        np.testing.assert_array_equal(m.frame(1, "fucci_green"), movie_array[1, 3])


def test_deepcycle_layout_with_trackmate_spots():
    with open_movie(FIXTURE) as m:
        assert set(m.channel_names) == {"BF", "DAPI", "Cy3", "GFP"}
        assert m.n_frames == 4 and m.shape == (96, 96)
        assert m.spots is not None and len(m.spots) == 12  # 2 cells, then 4 daughters, over 4 frames
        assert set(m.spots.columns) >= {"frame", "x", "y", "track_id"}
        assert m.frame(0, "DAPI").dtype == np.uint16


def test_trackmate_units_and_missing_columns(tmp_path):
    spots = read_trackmate_spots(FIXTURE / "Spots in tracks statistics.csv", pixel_size_um=0.5, units="um")
    px = read_trackmate_spots(FIXTURE / "Spots in tracks statistics.csv", pixel_size_um=None)
    np.testing.assert_allclose(spots["x"], px["x"] * 2)
    bad = tmp_path / "s.csv"
    bad.write_text("ID,TRACK_ID,POSITION_X\n1,1,3.0\n")
    with pytest.raises(MovieError, match="s.csv: missing TrackMate column"):
        read_trackmate_spots(bad, None)


def test_frames_are_read_lazily(tmp_path):
    """Reading every frame of a 20 MB movie never holds more than a few frames in memory."""
    arr = np.zeros((40, 2, 256, 512), np.uint16)
    arr[:, :, 10, 10] = np.arange(40)[:, None]
    path = tmp_path / "big.ome.tif"
    tifffile.imwrite(path, arr, ome=True, metadata={"axes": "TCYX"})
    with open_movie(path) as m:
        tracemalloc.start()
        total = 0
        for t in range(m.n_frames):
            total += int(m.frame(t, 1)[10, 10])
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert total == sum(range(40))
    assert peak < 6 * arr[0, 0].nbytes, f"peak {peak} bytes for a {arr.nbytes} byte movie"


def _copy_fixture(tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(FIXTURE, tmp_path / "deepcycle"))


def test_deepcycle_layout_gap_in_frame_numbers_named(tmp_path):
    """T001, T002, T004: every frame after the gap would shift against the TrackMate table, so it fails."""
    movie = _copy_fixture(tmp_path)
    for folder in ("BF", "Cy3", "DAPI", "GFP"):
        (movie / folder / f"MDCK_{folder}_T003.tif").unlink()
    for with_spots in (True, False):  # without the spot table the shift used to pass unnoticed
        if not with_spots:
            (movie / "Spots in tracks statistics.csv").unlink()
        with pytest.raises(MovieError) as info:
            open_movie(movie)
        msg = str(info.value)
        assert f"{movie / 'DAPI'}: missing frame T003 (MDCK_DAPI_T003.tif)" in msg  # the folder and the file
        assert "T001..T004" in msg


def test_deepcycle_layout_gap_in_one_channel_named(tmp_path):
    movie = _copy_fixture(tmp_path)
    (movie / "GFP" / "MDCK_GFP_T002.tif").unlink()
    with pytest.raises(MovieError, match=r"GFP: missing frame T002 \(MDCK_GFP_T002\.tif\)"):
        open_movie(movie)


def test_deepcycle_layout_numbering_must_start_at_t0_or_t1(tmp_path):
    movie = _copy_fixture(tmp_path)
    for folder in ("BF", "Cy3", "DAPI", "GFP"):
        (movie / folder / f"MDCK_{folder}_T001.tif").unlink()
    with pytest.raises(MovieError, match=r"DAPI: missing frame T001 \(MDCK_DAPI_T001\.tif\)"):
        open_movie(movie)
    # numbering from T000 is fine
    for folder in ("BF", "Cy3", "DAPI", "GFP"):
        for t in (2, 3, 4):
            (movie / folder / f"MDCK_{folder}_T{t:03d}.tif").rename(movie / folder / f"MDCK_{folder}_T{t - 2:03d}.tif")
    (movie / "Spots in tracks statistics.csv").unlink()
    with open_movie(movie) as m:
        assert m.n_frames == 3


def test_frame_folder_with_a_gap_keeps_each_frame_at_its_own_time(tmp_path, movie_array):
    """movie_T001, T002, T004, T005: T004 is frame 3 (three intervals in), not the third frame; the
    missing frame 2 has no image and says so when read."""
    folder = tmp_path / "frames"
    folder.mkdir()
    for t, number in enumerate((1, 2, 4, 5)):
        tifffile.imwrite(folder / f"movie_T{number:03d}.tif", movie_array[t], photometric="minisblack")
    with open_movie(folder) as m:
        assert m.n_frames == 5 and m.missing_frames == (2,)
        np.testing.assert_array_equal(m.frame(3, 1), movie_array[2, 1])  # T004
        np.testing.assert_array_equal(m.frame(4, 1), movie_array[3, 1])  # T005
        with pytest.raises(MovieError, match=rf"{folder}: frame 2 is missing \(a gap"):
            m.frame(2, 1)
    # names without a frame number keep their order, one interval apart
    other = tmp_path / "plain"
    other.mkdir()
    for t, name in enumerate(("first", "second", "third")):
        tifffile.imwrite(other / f"{name}.tif", movie_array[t], photometric="minisblack")
    with open_movie(other) as m:
        assert m.n_frames == 3 and m.missing_frames == ()
    # the same number twice is refused, naming both files
    tifffile.imwrite(folder / "movie_T0004.tif", movie_array[0], photometric="minisblack")
    with pytest.raises(MovieError, match=r"movie_T00?04\.tif: frame number 4 appears twice \(also movie_T00?04\.tif\)"):
        open_movie(folder)


def test_frame_folder_with_a_gap_and_a_spot_table_is_refused(tmp_path, movie_array):
    """TrackMate numbers the frames it was given: with a gap its FRAME column is ambiguous."""
    folder = tmp_path / "frames"
    folder.mkdir()
    for t, number in enumerate((1, 2, 4)):
        tifffile.imwrite(folder / f"movie_T{number:03d}.tif", movie_array[t], photometric="minisblack")
    csv = FIXTURE / "Spots in tracks statistics.csv"
    with pytest.raises(MovieError, match=rf"{folder}: frame\(s\) \[2\] missing from the numbering, with a spot table"):
        open_movie(folder, spots_csv=csv)
