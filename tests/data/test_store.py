"""The cell store: round trip, streaming reads, atomic writes and each kind of bad input."""

from __future__ import annotations

import json
import shutil
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deepcycle_core.data import store as st

CHANNELS = [("hoechst", "nuclear"), ("brightfield", "brightfield")]
META = {"frame_interval_min": 10.0, "pixel_size_um": 0.65, "provenance": {"source": "test"}}


def make_rows(n: int, start_frame: int = 0, rng: np.random.Generator | None = None) -> pd.DataFrame:
    rng = rng or np.random.default_rng(0)
    frame = start_frame + np.arange(n) % 5
    return pd.DataFrame(
        {
            "track_id": np.arange(n) // 5,
            "parent_track_id": np.full(n, -1),
            "frame": frame,
            "time_h": frame / 6.0,
            "x": rng.uniform(24, 200, n),
            "y": rng.uniform(24, 200, n),
            "field": np.zeros(n, dtype=int),
            "birth_frame": np.full(n, -1),
            "division_frame": np.full(n, -1),
            "full_cycle": np.zeros(n, dtype=bool),
            "fucci_red": rng.uniform(0, 1, n),
            "fucci_green": rng.uniform(0, 1, n),
            "class": rng.integers(0, 4, n),
        }
    )


def make_frames(n_frames: int = 10) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "field": np.zeros(n_frames, dtype=int),
            "frame": np.arange(n_frames),
            "hoechst_median": np.full(n_frames, 100.0),
            "hoechst_std": np.full(n_frames, 10.0),
            "brightfield_median": np.full(n_frames, 1000.0),
            "brightfield_std": np.full(n_frames, 50.0),
        }
    )


def write_store(path: Path, n: int = 300, chunk: int = 64, pieces: int = 3) -> np.ndarray:
    rng = np.random.default_rng(1)
    crops = rng.integers(0, 65535, size=(n, 2, 48, 48), dtype=np.uint16)
    with st.StoreWriter(path, channels=CHANNELS, meta=META, chunk_cells=chunk) as w:
        for part in np.array_split(np.arange(n), pieces):
            w.append(crops[part], make_rows(len(part), rng=rng))
        w.set_frames(make_frames())
    return crops


def test_round_trip_streams_in_chunks(tmp_path: Path) -> None:
    crops = write_store(tmp_path / "s", n=300, chunk=64)
    s = st.open_store(tmp_path / "s")
    assert s.n_cells == 300 and s.channels == ["hoechst", "brightfield"]
    assert s.chunk_cells == 64
    np.testing.assert_array_equal(s.read(), crops)
    np.testing.assert_array_equal(s.read(10, 20, channels=[1]), crops[10:20, [1]])
    idx = np.array([299, 3, 150, 3, 64])
    np.testing.assert_array_equal(s.take(idx), crops[idx])
    chunks = list(s.iter_chunks())
    assert [c[0] for c in chunks] == [0, 64, 128, 192, 256]
    np.testing.assert_array_equal(np.concatenate([c[1] for c in chunks]), crops)
    assert s.cells["cell_id"].tolist() == list(range(300))
    assert s.channel_index("nuclear") == 0 and s.channel_index("brightfield") == 1
    med, std = s.frame_stats("brightfield")
    assert med.shape == (300,) and np.all(med == 1000.0) and np.all(std == 50.0)
    assert s.meta["schema_version"] == st.SCHEMA_VERSION
    assert s.meta["provenance"]["source"] == "test" and "package_version" in s.meta["provenance"]


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with st.StoreWriter(tmp_path / "s", channels=CHANNELS, meta=META) as w:
            w.append(np.zeros((4, 2, 48, 48), np.uint16), make_rows(4))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_overwrite_replaces_only_when_complete(tmp_path: Path) -> None:
    write_store(tmp_path / "s", n=50)
    with pytest.raises(st.StoreError, match="already exists"):
        st.StoreWriter(tmp_path / "s", channels=CHANNELS, meta=META)
    with pytest.raises(RuntimeError):
        with st.StoreWriter(tmp_path / "s", channels=CHANNELS, meta=META, overwrite=True) as w:
            w.append(np.zeros((4, 2, 48, 48), np.uint16), make_rows(4))
            raise RuntimeError("interrupted")
    assert st.open_store(tmp_path / "s").n_cells == 50  # the old store is untouched
    write_store(tmp_path / "s2", n=20)
    with st.StoreWriter(tmp_path / "s", channels=CHANNELS, meta=META, overwrite=True) as w:
        w.append(np.ones((7, 2, 48, 48), np.uint16), make_rows(7))
        w.set_frames(make_frames())
    assert st.open_store(tmp_path / "s").n_cells == 7
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s", "s2"]


@pytest.mark.parametrize(
    "crops, rows, message",
    [
        (np.zeros((3, 2, 32, 32), np.uint16), make_rows(3), "shape"),
        (np.zeros((3, 2, 48, 48), np.float32), make_rows(3), "dtype"),
        (np.zeros((3, 2, 48, 48), np.uint16), make_rows(2), "3 crops but 2"),
    ],
)
def test_append_rejects_bad_blocks(tmp_path: Path, crops: np.ndarray, rows: pd.DataFrame, message: str) -> None:
    with pytest.raises(st.StoreError, match=message):
        with st.StoreWriter(tmp_path / "s", channels=CHANNELS, meta=META) as w:
            w.append(crops, rows)
    assert not (tmp_path / "s").exists()


def test_writer_rejects_bad_tables(tmp_path: Path) -> None:
    rows = make_rows(5).drop(columns=["fucci_red"])
    with pytest.raises(st.StoreError, match="fucci_red"):
        with st.StoreWriter(tmp_path / "a", channels=CHANNELS, meta=META) as w:
            w.append(np.zeros((5, 2, 48, 48), np.uint16), rows)
            w.set_frames(make_frames())
    rows = make_rows(5)
    rows.loc[2, "x"] = np.nan
    with pytest.raises(st.StoreError, match="'x' contains NaN"):
        with st.StoreWriter(tmp_path / "b", channels=CHANNELS, meta=META) as w:
            w.append(np.zeros((5, 2, 48, 48), np.uint16), rows)
            w.set_frames(make_frames())
    with pytest.raises(st.StoreError, match="frame statistics were never set"):
        with st.StoreWriter(tmp_path / "c", channels=CHANNELS, meta=META) as w:
            w.append(np.zeros((5, 2, 48, 48), np.uint16), make_rows(5))
    with pytest.raises(st.StoreError, match="no cells were written"):
        with st.StoreWriter(tmp_path / "d", channels=CHANNELS, meta=META) as w:
            w.set_frames(make_frames())
    with pytest.raises(st.StoreError, match="role"):
        with st.StoreWriter(tmp_path / "e", channels=[("hoechst", "dapi")], meta=META) as w:
            w.append(np.zeros((5, 1, 48, 48), np.uint16), make_rows(5))
            w.set_frames(make_frames().drop(columns=["brightfield_median", "brightfield_std"]))
    with pytest.raises(st.StoreError, match="frame_interval_min"):
        with st.StoreWriter(tmp_path / "f", channels=CHANNELS, meta={"pixel_size_um": 1.0}) as w:
            w.append(np.zeros((5, 2, 48, 48), np.uint16), make_rows(5))
            w.set_frames(make_frames())
    assert list(tmp_path.iterdir()) == []


def corrupt(path: Path, how: str) -> None:
    if how == "no_meta":
        (path / st.META_NAME).unlink()
    elif how == "bad_json":
        (path / st.META_NAME).write_text("{not json")
    elif how == "schema":
        meta = json.loads((path / st.META_NAME).read_text())
        meta["schema_version"] = 99
        (path / st.META_NAME).write_text(json.dumps(meta))
    elif how == "channels":
        meta = json.loads((path / st.META_NAME).read_text())
        meta["channels"] = meta["channels"][:1]
        (path / st.META_NAME).write_text(json.dumps(meta))
    elif how == "rows":
        pd.read_parquet(path / st.CELLS_NAME).iloc[:-1].to_parquet(path / st.CELLS_NAME)
    elif how == "column":
        pd.read_parquet(path / st.CELLS_NAME).drop(columns=["track_id"]).to_parquet(path / st.CELLS_NAME)
    elif how == "class":
        cells = pd.read_parquet(path / st.CELLS_NAME)
        cells.loc[0, "class"] = 7
        cells.to_parquet(path / st.CELLS_NAME)
    elif how == "frames":
        pd.read_parquet(path / st.FRAMES_NAME).iloc[:2].to_parquet(path / st.FRAMES_NAME)
    elif how == "crops":
        shutil.rmtree(path / st.CROPS_NAME)


@pytest.mark.parametrize(
    "how, file, message",
    [
        ("no_meta", st.META_NAME, "missing"),
        ("bad_json", st.META_NAME, "not valid JSON"),
        ("schema", st.META_NAME, "schema_version is 99"),
        ("channels", st.CROPS_NAME, "shape"),
        ("rows", st.CELLS_NAME, "rows but the crops array has"),
        ("column", st.CELLS_NAME, "missing required column"),
        ("class", st.CELLS_NAME, "'class' must hold"),
        ("frames", st.FRAMES_NAME, "no statistics for"),
        ("crops", st.CROPS_NAME, "missing"),
    ],
)
def test_open_names_file_and_problem(tmp_path: Path, how: str, file: str, message: str) -> None:
    write_store(tmp_path / "s", n=40)
    corrupt(tmp_path / "s", how)
    with pytest.raises(st.StoreError) as info:
        st.open_store(tmp_path / "s")
    assert message in str(info.value)
    assert file in str(info.value) or how == "channels"


def test_open_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(st.StoreError, match="no cell store here"):
        st.open_store(tmp_path / "nothing")


def test_finalise_cells_hook_sees_the_whole_table(tmp_path: Path) -> None:
    seen: list[int] = []

    def relabel(cells: pd.DataFrame) -> pd.DataFrame:
        seen.append(len(cells))
        cells["class"] = (cells["fucci_red"] > cells["fucci_red"].median()).astype(int)
        return cells

    with st.StoreWriter(tmp_path / "s", channels=CHANNELS, meta=META, finalise_cells=relabel) as w:
        for _ in range(3):
            w.append(np.zeros((10, 2, 48, 48), np.uint16), make_rows(10))
        w.set_frames(make_frames())
    cells = st.open_store(tmp_path / "s").cells
    assert seen == [30]
    assert cells["class"].sum() == 15 and cells["cell_id"].tolist() == list(range(30))


def _chunk_file(path: Path, i: int) -> Path:
    """The file of crop chunk ``i`` (cells i*chunk..), in the array's own key encoding (zarr 3: c/i/0/0/0)."""
    import zarr

    key = zarr.open_array(str(path / st.CROPS_NAME), mode="r").metadata.encode_chunk_key((i, 0, 0, 0))
    return path / st.CROPS_NAME / key


def test_every_chunk_is_on_disk_and_recorded(tmp_path: Path) -> None:
    with st.StoreWriter(tmp_path / "z", channels=CHANNELS, meta=META, chunk_cells=8) as w:
        w.append(np.zeros((20, 2, 48, 48), np.uint16), make_rows(20))  # all-zero chunks get files too
        w.set_frames(make_frames())
    files = [_chunk_file(tmp_path / "z", i) for i in range(3)]
    assert all(f.is_file() for f in files)
    meta = json.loads((tmp_path / "z" / st.META_NAME).read_text())
    assert meta[st.CHUNK_BYTES_KEY] == [f.stat().st_size for f in files]


def test_missing_chunk_fails_at_open(tmp_path: Path) -> None:
    """Zarr reads a deleted chunk back as zeros: the store must refuse to open instead."""
    write_store(tmp_path / "s", n=300, chunk=64)
    _chunk_file(tmp_path / "s", 2).unlink()
    with pytest.raises(st.StoreError) as info:
        st.open_store(tmp_path / "s")
    msg = str(info.value)
    assert str(tmp_path / "s" / st.CROPS_NAME) in msg
    assert "1 of 5 chunk file(s) missing" in msg and "cells 128..191" in msg


def test_truncated_chunk_fails_at_open(tmp_path: Path) -> None:
    write_store(tmp_path / "s", n=300, chunk=64)
    chunk = _chunk_file(tmp_path / "s", 4)
    data = chunk.read_bytes()
    chunk.write_bytes(data[: len(data) // 2])
    with pytest.raises(st.StoreError) as info:
        st.open_store(tmp_path / "s")
    msg = str(info.value)
    assert str(chunk) in msg and "cells 256..299" in msg and "truncated" in msg


def test_store_without_size_record_still_checked(tmp_path: Path) -> None:
    """Stores sealed before the sizes were recorded still open; a missing or truncated chunk still
    fails at open (the truncated one by its Blosc header), naming the chunk and the store."""
    crops = write_store(tmp_path / "s", n=300, chunk=64)
    meta = json.loads((tmp_path / "s" / st.META_NAME).read_text())
    del meta[st.CHUNK_BYTES_KEY]
    (tmp_path / "s" / st.META_NAME).write_text(json.dumps(meta))
    np.testing.assert_array_equal(st.open_store(tmp_path / "s").read(), crops)
    chunk = _chunk_file(tmp_path / "s", 1)
    data = chunk.read_bytes()
    for cut, problem in ((len(data) // 2, "truncated"), (10, "shorter than a Blosc header")):
        chunk.write_bytes(data[:cut])
        with pytest.raises(st.StoreError) as info:
            st.open_store(tmp_path / "s")
        assert str(chunk) in str(info.value) and "cells 64..127" in str(info.value) and problem in str(info.value)
    chunk.unlink()
    with pytest.raises(st.StoreError, match=r"chunk file\(s\) missing.*cells 64\.\.127"):
        st.open_store(tmp_path / "s")


def test_chunk_damaged_after_open_fails_on_read(tmp_path: Path) -> None:
    """A chunk that no longer decodes raises a StoreError naming the chunk and the store, never zeros."""
    crops = write_store(tmp_path / "s", n=300, chunk=64)
    s = st.open_store(tmp_path / "s")
    chunk = _chunk_file(tmp_path / "s", 1)
    chunk.write_bytes(b"\0" * 32)
    np.testing.assert_array_equal(s.read(0, 64), crops[:64])  # the intact chunks still read
    for read in (lambda: s.read(), lambda: s.take([3, 70]), lambda: list(s.iter_chunks())):
        with pytest.raises(st.StoreError) as info:
            read()
        msg = str(info.value)
        assert str(tmp_path / "s" / st.CROPS_NAME) in msg and "truncated or corrupt" in msg
        _names_only_chunk(msg, tmp_path / "s", 1, n_chunks=5)


def _names_only_chunk(msg: str, store: Path, damaged: int, n_chunks: int) -> None:
    """The message names the damaged chunk's file and cells, and no other chunk of the store."""
    root = store / st.CROPS_NAME
    assert str(_chunk_file(store, damaged)) in msg, msg
    assert f"cells {damaged * 64}..{damaged * 64 + 63}" in msg, msg
    for other in set(range(n_chunks)) - {damaged}:
        assert _chunk_file(store, other).relative_to(root).as_posix() not in msg, (other, msg)


def _flip_one_bit(file: Path, at: float = 0.5) -> None:
    """Corrupt a chunk without changing its size: one bit of its compressed stream."""
    data = bytearray(file.read_bytes())
    i = int(len(data) * at)
    data[i] ^= 0x10
    file.write_bytes(bytes(data))


def test_a_flipped_bit_is_caught_on_read_naming_the_chunk(tmp_path: Path) -> None:
    """A chunk with one bit flipped keeps its size (so it opens) and may still decode, into other
    pixels: its sealed CRC-32 catches it on every read path, naming that chunk alone; the other
    chunks still read."""
    crops = write_store(tmp_path / "s", n=300, chunk=64)
    meta = json.loads((tmp_path / "s" / st.META_NAME).read_text())
    files = [_chunk_file(tmp_path / "s", i) for i in range(5)]
    assert meta[st.CHUNK_CRC_KEY] == [zlib.crc32(f.read_bytes()) for f in files]
    _flip_one_bit(files[2])
    s = st.open_store(tmp_path / "s")  # sizes unchanged: opening reads no chunk, so it opens
    np.testing.assert_array_equal(s.read(0, 128), crops[:128])
    np.testing.assert_array_equal(s.take([5, 290]), crops[[5, 290]])
    for read in (lambda: s.read(), lambda: s.read(100, 200), lambda: s.take([3, 130]),
                 lambda: list(s.iter_chunks()), lambda: list(s.iter_selected([1, 150]))):
        with pytest.raises(st.StoreError, match="fails its checksum") as info:
            read()
        _names_only_chunk(str(info.value), tmp_path / "s", 2, n_chunks=5)


def test_a_flipped_bit_in_a_stored_blosc_frame_decodes_silently_without_the_checksum(tmp_path: Path) -> None:
    """Why the checksum: without it the flipped chunk reads back as other pixels, and nothing says so.
    A store sealed before checksums opens and reads with a StoreWarning naming it and the fix."""
    crops = write_store(tmp_path / "s", n=300, chunk=64)
    path = tmp_path / "s" / st.META_NAME
    meta = json.loads(path.read_text())
    del meta[st.CHUNK_CRC_KEY]
    path.write_text(json.dumps(meta))
    _flip_one_bit(_chunk_file(tmp_path / "s", 2), at=0.6)
    with pytest.warns(st.StoreWarning, match=rf"{tmp_path / 's'}: no per-chunk checksums.*re-ingest the movie or "
                                             "re-simulate"):
        s = st.open_store(tmp_path / "s")
    got = s.read(128, 192)  # decodes: only the checksum could have told
    assert not np.array_equal(got, crops[128:192])


def test_a_malformed_checksum_record_is_refused(tmp_path: Path) -> None:
    write_store(tmp_path / "s", n=300, chunk=64)
    path = tmp_path / "s" / st.META_NAME
    meta = json.loads(path.read_text())
    for bad in (meta[st.CHUNK_CRC_KEY][:4], "abc", [True] * 5, [-1] * 5, [2**32] * 5):
        path.write_text(json.dumps({**meta, st.CHUNK_CRC_KEY: bad}))
        with pytest.raises(st.StoreError, match=rf"{path}: 'crops_chunk_crc32' must list the CRC-32 of each of the 5"):
            st.open_store(tmp_path / "s")


def test_open_does_not_read_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Opening checks chunk files by their sizes only: cheap for a 2.6-million-cell store."""
    write_store(tmp_path / "s", n=300, chunk=64)
    import zarr

    def no_reads(self, *a, **k):
        raise AssertionError("open_store read crop data")

    monkeypatch.setattr(zarr.Array, "__getitem__", no_reads)
    assert st.open_store(tmp_path / "s").n_cells == 300


# -- the streaming cell table ------------------------------------------------------------------

def _label_like_simulate(cells: pd.DataFrame) -> pd.DataFrame:
    """A finalise step that needs every cell (a median split), like the simulator's FUCCI gating."""
    cells["class"] = (cells["fucci_red"].to_numpy() > np.median(cells["fucci_red"].to_numpy())).astype(np.int64)
    cells["red_rank"] = cells["fucci_red"].rank().to_numpy()  # an appended column
    return cells


def _rows_with_text(n: int, rng: np.random.Generator) -> pd.DataFrame:
    rows = make_rows(n, rng=rng)
    rows["true_phase"] = rng.choice(["G1", "S", "G2", "M"], n).astype(object)
    rows["true_arrested"] = np.zeros(n, dtype=bool)
    return rows


@pytest.mark.parametrize("declared", [None, ("fucci_red",)])
def test_many_small_batches_seal_the_same_table_as_one_batch(tmp_path: Path, declared) -> None:
    """Row groups, their size and the finalise pass (narrow or whole) do not change the sealed table."""
    n = 1000
    rows = _rows_with_text(n, np.random.default_rng(3))
    crops = np.random.default_rng(4).integers(0, 9, (n, 2, 48, 48), dtype=np.uint16)
    tables = {}
    for name, cuts, group in [("one", [n], 65536), ("many", [1, 7] + list(range(20, 600, 13)) + [900, n], 64)]:
        with st.StoreWriter(tmp_path / name, channels=CHANNELS, meta=META, chunk_cells=128, row_group_cells=group,
                            finalise_cells=_label_like_simulate, finalise_columns=declared) as w:
            for a, b in zip([0] + cuts[:-1], cuts):
                w.append(crops[a:b], rows.iloc[a:b])
            w.set_frames(make_frames())
        s = st.open_store(tmp_path / name)
        np.testing.assert_array_equal(s.read(), crops)
        tables[name] = s.cells
        assert sorted(p.name for p in (tmp_path / name).iterdir()) == sorted(
            [st.CROPS_NAME, st.CELLS_NAME, st.FRAMES_NAME, st.META_NAME])  # no temporary rows left
    import pyarrow.parquet as pq

    assert pq.ParquetFile(tmp_path / "many" / st.CELLS_NAME).metadata.num_row_groups > 5
    pd.testing.assert_frame_equal(tables["many"], tables["one"], check_exact=True)
    # what the writer that held the whole table produced: concat, finalise, cell_id first
    expected = _label_like_simulate(rows.reset_index(drop=True).copy())
    expected.insert(0, "cell_id", np.arange(n, dtype=np.int64))
    pd.testing.assert_frame_equal(tables["many"], expected, check_exact=True)
    assert list(tables["many"].columns)[-1] == "red_rank"


@pytest.mark.parametrize(
    "change, column",
    [
        (lambda r: r.assign(x=r["x"].round().astype(np.int64)), "x"),  # float then int
        (lambda r: r.assign(true_phase=np.zeros(len(r))), "true_phase"),  # text then number
        (lambda r: r.drop(columns=["fucci_green"]), "fucci_green"),
        (lambda r: r.assign(extra=1.0), "extra"),
    ],
)
def test_a_batch_that_does_not_match_the_first_raises_naming_the_column(tmp_path: Path, change, column) -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(st.StoreError, match=column) as info:
        with st.StoreWriter(tmp_path / "s", channels=CHANNELS, meta=META) as w:
            w.append(np.zeros((5, 2, 48, 48), np.uint16), _rows_with_text(5, rng))
            w.append(np.zeros((5, 2, 48, 48), np.uint16), change(_rows_with_text(5, rng)))
    assert str(tmp_path / "s") in str(info.value)
    assert list(tmp_path.iterdir()) == []  # nothing that could open as a store


def test_an_interrupted_write_after_row_groups_leaves_nothing(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(RuntimeError, match="killed"):
        with st.StoreWriter(tmp_path / "s", channels=CHANNELS, meta=META, chunk_cells=8, row_group_cells=8) as w:
            for _ in range(5):
                w.append(np.zeros((6, 2, 48, 48), np.uint16), _rows_with_text(6, rng))
            assert w._rows_file.exists()
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def _write_peak(kind: str, n: int, group: int) -> dict:
    """Peak RSS of a fresh process writing ``n`` rows of the ``kind`` batch (see store_memory_probe).

    The allocators are made to give memory back (a fixed glibc mmap threshold, Arrow on the system
    allocator): with their defaults, freed row groups stay in the process as retained heap, which
    grows with the run's churn and would be counted as held rows.
    """
    import os
    import subprocess
    import sys

    probe = Path(__file__).parents[1] / "store_memory_probe.py"
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "ARROW_DEFAULT_MEMORY_POOL": "system"}
    done = subprocess.run([sys.executable, str(probe), kind, str(n), str(group)],
                          capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_writer_holds_o_batch_rows_not_the_table() -> None:
    """Memory: at most ``row_group_cells`` + one batch of rows is buffered, and a table 120 columns wider
    raises the peak RSS of the whole write (sealing with a narrow finalise included) by far less than
    those columns' size -- a writer holding the table would add all of it (and more, in copies)."""
    from store_memory_probe import BATCH, EXTRA_COLUMNS

    n, group = 60_000, 3_000
    extra_bytes = EXTRA_COLUMNS * 8 * n
    narrow = _write_peak("narrow", n, group)
    wide = _write_peak("wide", n, group)
    assert wide["rows"] == narrow["rows"] == n
    assert max(wide["most_rows_buffered"], narrow["most_rows_buffered"]) < group + BATCH
    grew = wide["peak_rss_bytes"] - narrow["peak_rss_bytes"]
    assert grew < extra_bytes / 3, f"peak grew {grew / 1e6:.1f} MB for {extra_bytes / 1e6:.1f} MB more table"
    rng = np.random.default_rng(0)
    make_rows(BATCH, rng=rng)  # the probe's draws, in order: the narrow rows, then the extra columns
    assert wide["check"] == pytest.approx(rng.normal(size=(4, BATCH))[3, 5])


@pytest.mark.parametrize("key", ["frame_interval_min", "pixel_size_um"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf"), True, False, 0, 0.0, -10.0, "10", None])
def test_meta_with_a_bad_interval_or_pixel_size_is_refused(tmp_path: Path, key: str, bad) -> None:
    """A frame interval or pixel size of NaN, inf, true, 0, negative or text would turn every time or
    size into nonsense: the store does not open, and the message names meta.json and the key."""
    write_store(tmp_path / "s", n=70, chunk=64)
    path = tmp_path / "s" / st.META_NAME
    meta = json.loads(path.read_text())
    meta[key] = bad
    path.write_text(json.dumps(meta))  # NaN and Infinity as Python's json writes (and reads) them
    with pytest.raises(st.StoreError, match=rf"{path}: '{key}' must be a positive, finite number, got "
                                            rf"{json.dumps(bad)}"):
        st.open_store(tmp_path / "s")
    del meta[key]
    path.write_text(json.dumps(meta))
    with pytest.raises(st.StoreError, match=rf"{path}: '{key}' must be a positive, finite number.*\(missing\)"):
        st.open_store(tmp_path / "s")


def test_an_old_store_names_only_the_chunk_that_fails_to_decode(tmp_path: Path) -> None:
    """Without checksums (an older store) a chunk that no longer decodes is still found and named alone."""
    crops = write_store(tmp_path / "s", n=300, chunk=64)
    path = tmp_path / "s" / st.META_NAME
    meta = json.loads(path.read_text())
    del meta[st.CHUNK_CRC_KEY]
    path.write_text(json.dumps(meta))
    with pytest.warns(st.StoreWarning):
        s = st.open_store(tmp_path / "s")
    _chunk_file(tmp_path / "s", 3).write_bytes(b"\0" * 32)
    np.testing.assert_array_equal(s.read(0, 192), crops[:192])
    for read in (lambda: s.read(), lambda: s.take([3, 200]), lambda: list(s.iter_chunks())):
        with pytest.raises(st.StoreError, match="truncated or corrupt") as info:
            read()
        _names_only_chunk(str(info.value), tmp_path / "s", 3, n_chunks=5)
