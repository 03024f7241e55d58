"""The cell store: the one on-disk format shared by simulated and real data.

A store is a folder holding

* ``crops.zarr`` -- a chunked, compressed Zarr array ``(n_cells, n_channels, 48, 48)`` uint16,
  chunked along cells so that any consumer streams it with memory bounded by the chunk size;
* ``cells.parquet`` -- one row per crop (the cell table, see :data:`REQUIRED_COLUMNS`);
* ``frames.parquet`` -- per (field, frame) normalisation statistics of every network channel
  (``<channel>_median`` and ``<channel>_std`` of the whole frame), as the paper normalises each
  channel per frame;
* ``meta.json`` -- channel names and roles, pixel size, frame interval, provenance, schema version,
  and the size in bytes and the CRC-32 of every crop chunk file as sealed (``crops_chunk_bytes``,
  ``crops_chunk_crc32``).

Writers build the store under a temporary sibling name and rename it into place only when every
part is written, so an interrupted run never leaves a folder that opens as a whole store.

A store cannot lie about its crops. Zarr reads a missing chunk back as zeros and Blosc decodes a
truncated chunk into garbage without complaint, so opening checks that every chunk file the array's
shape implies is present and has the size it was sealed with (``crops_chunk_bytes``; a stat call a
chunk, no chunk is read; older stores without the record: the size in each chunk's Blosc header).
A chunk corrupted without changing its size (one flipped bit) still decodes, into other pixels, so
every chunk file read is checked against the CRC-32 of its stored bytes recorded at sealing
(``zlib.crc32``: a few ms for a ~10 MB chunk, next to ~10x that to decompress it); a chunk that fails
its checksum or fails to decode raises naming that chunk, its cells and the store. Stores sealed
before checksums were recorded still open and read (their sizes and headers are checked as before),
with a :class:`StoreWarning` saying that a flipped bit would go unnoticed and that writing the
store again (re-ingest, re-simulate) adds the checksums: refusing them would make every existing
store, a user's hours-long ingest included, unreadable for a check they never had.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import json
import math
import os
import shutil
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import zarr

from .. import __version__
from .atomic import temporary_name

__all__ = [
    "SCHEMA_VERSION",
    "CROP_SIZE",
    "CROPS_NAME",
    "CELLS_NAME",
    "FRAMES_NAME",
    "META_NAME",
    "CHUNK_BYTES_KEY",
    "CHUNK_CRC_KEY",
    "ROWS_STREAM_NAME",
    "NETWORK_ROLES",
    "REQUIRED_COLUMNS",
    "TRUTH_COLUMNS",
    "StoreError",
    "StoreWarning",
    "CellStore",
    "chunk_sizes",
    "chunk_checksums",
    "validate_cells",
    "validate_meta",
    "open_store",
    "StoreWriter",
]

SCHEMA_VERSION = 1
CROP_SIZE = 48
CROPS_NAME = "crops.zarr"
CELLS_NAME = "cells.parquet"
FRAMES_NAME = "frames.parquet"
META_NAME = "meta.json"
#: meta.json key: bytes of every crop chunk file at sealing, in chunk order (absent in older stores).
CHUNK_BYTES_KEY = "crops_chunk_bytes"
#: meta.json key: CRC-32 (zlib) of every crop chunk file's stored bytes at sealing, in chunk order
#: (absent in older stores); checked each time a chunk is read.
CHUNK_CRC_KEY = "crops_chunk_crc32"
#: The writer's temporary cell rows inside the temporary store folder (never in a sealed store).
ROWS_STREAM_NAME = "cells.stream.parquet"

#: Channel roles a network input channel may have.
NETWORK_ROLES = ("nuclear", "brightfield")

#: Columns every cell table must have, with the numpy kind they must be ('i' int, 'f' float, 'b' bool).
REQUIRED_COLUMNS: dict[str, str] = {
    "cell_id": "i",  # row index, 0..n-1, also the crop index
    "track_id": "i",  # -1 when the cell is not tracked
    "parent_track_id": "i",  # -1 when unknown / founder
    "frame": "i",
    "time_h": "f",
    "x": "f",  # nucleus centre in the full frame, pixels
    "y": "f",
    "field": "i",  # field of view / position
    "birth_frame": "i",  # frame the track was born in (observed division), -1 when not seen
    "division_frame": "i",  # frame the track divides in, -1 when not seen
    "full_cycle": "b",  # track born and divided inside the movie
    "fucci_red": "f",  # NaN when the data has no FUCCI channels
    "fucci_green": "f",
    "class": "i",  # 4-class FUCCI label 0..3, -1 when unlabelled
}

#: Optional ground-truth columns written by the simulator (prefix ``true_``) and ``generation``.
TRUTH_COLUMNS: tuple[str, ...] = (
    "true_age",  # cycle position in [0, 1)
    "true_phase",  # 'G1', 'S', 'G2', 'M'
    "true_dna",  # DNA content in units of 2N (1..2)
    "true_red",  # noise-free FUCCI levels
    "true_green",
    "true_cycle_h",  # the cell's own cycle length in hours
    "true_age_h",  # hours since birth
    "true_nuc_area",  # rendered nuclear area in px^2 (the hidden size behind the crop)
    "true_m_progress",  # progress through mitosis in [0, 1) (prophase .. telophase), -1 outside M
    "true_arrested",  # bool: held for good at a treatment's arrest point (always False untreated)
    "generation",
)


class StoreError(ValueError):
    """A cell store is missing, incomplete or malformed; the message names the file and problem."""


class StoreWarning(UserWarning):
    """A cell store opens but lacks a protection newer stores have (it names the store and the fix)."""


@dataclass
class CellStore:
    """An opened, validated cell store. Crops stay on disk; read them by slices or chunks."""

    path: Path
    crops: zarr.Array
    cells: pd.DataFrame
    frames: pd.DataFrame
    meta: dict[str, Any]

    @property
    def n_cells(self) -> int:
        return int(self.crops.shape[0])

    @property
    def channels(self) -> list[str]:
        return [c["name"] for c in self.meta["channels"]]

    @property
    def roles(self) -> list[str]:
        return [c["role"] for c in self.meta["channels"]]

    @property
    def chunk_cells(self) -> int:
        return int(self.crops.chunks[0])

    @property
    def has_truth(self) -> bool:
        return "true_age" in self.cells.columns

    def channel_index(self, role_or_name: str) -> int:
        """Index of the channel with this role (``nuclear``/``brightfield``) or name."""
        for i, c in enumerate(self.meta["channels"]):
            if role_or_name in (c["role"], c["name"]):
                return i
        raise StoreError(
            f"{self.path / META_NAME}: no channel with role or name {role_or_name!r}; "
            f"channels are {self.meta['channels']}"
        )

    def read(self, start: int = 0, stop: int | None = None, channels: Sequence[int] | None = None) -> np.ndarray:
        """Crops ``start:stop`` as a uint16 array (n, C, 48, 48)."""
        stop = self.n_cells if stop is None else min(stop, self.n_cells)
        block = self._block(start, stop)
        return block if channels is None else block[:, list(channels)]

    def _block(self, start: int, stop: int) -> np.ndarray:
        """Crops ``start:stop``, every chunk file checked against its sealed CRC-32 first (where the
        store records them); a chunk that fails its checksum or cannot be decoded raises naming that
        chunk, its cells and the store."""
        per_file = int((getattr(self.crops, "shards", None) or self.crops.chunks)[0])  # cells a file
        files = range(start // per_file, max(start, stop - 1) // per_file + 1) if stop > start else range(0)
        crcs = self.meta.get(CHUNK_CRC_KEY)
        if crcs is not None and _plain_blosc(self.crops):  # this package's stores: decode the verified bytes
            parts = []
            for c in files:
                lo, hi = c * per_file, min((c + 1) * per_file, self.n_cells)
                key = _chunk_files_of(self.crops, c)[0][1]
                whole = _decode_chunk(self.crops, self.path / CROPS_NAME / key,
                                      _verify_crc(self.path, key, crcs[c], lo, hi), lo, hi)
                parts.append(whole[max(start, lo) - lo: min(stop, hi) - lo])
            if not parts:
                return np.empty((0,) + tuple(self.crops.shape[1:]), dtype=np.uint16)
            return parts[0] if len(parts) == 1 else np.concatenate(parts)
        if crcs is not None:
            for c in files:
                for flat, key in _chunk_files_of(self.crops, c):
                    _verify_crc(self.path, key, crcs[flat], c * per_file, min((c + 1) * per_file, self.n_cells))
        try:
            return np.asarray(self.crops[start:stop])
        except Exception as exc:  # blosc/zstd and zarr raise several types for a damaged chunk
            for c in files:  # which chunk: decode each on its own (only on this failure path)
                lo, hi = c * per_file, min((c + 1) * per_file, self.n_cells)
                try:
                    self.crops[lo:hi]
                except Exception as one:
                    key = _chunk_files_of(self.crops, c)[0][1]
                    raise _fail(
                        self.path / CROPS_NAME / key,
                        f"cannot decode the chunk of cells {lo}..{hi - 1}: {type(one).__name__}: {one}; the chunk "
                        "is truncated or corrupt (write the store again)",
                    ) from exc
            raise _fail(self.path / CROPS_NAME, f"cannot read the crops of cells {start}..{stop - 1}: "
                                                f"{type(exc).__name__}: {exc}") from exc

    def take(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Crops at arbitrary cell indices, read chunk by chunk (memory ~ one chunk + the result)."""
        idx = np.asarray(indices, dtype=np.int64)
        out = np.empty((len(idx),) + tuple(self.crops.shape[1:]), dtype=np.uint16)
        if len(idx) == 0:
            return out
        chunk = self.chunk_cells
        order = np.argsort(idx, kind="stable")
        sorted_idx = idx[order]
        chunk_of = sorted_idx // chunk
        for c in np.unique(chunk_of):
            sel = np.nonzero(chunk_of == c)[0]
            block = self._block(int(c) * chunk, min((int(c) + 1) * chunk, self.n_cells))
            out[order[sel]] = block[sorted_idx[sel] - c * chunk]
        return out

    def iter_selected(self, ids: Sequence[int] | np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(cell_ids, crops)`` for the sorted unique ``ids``, one store chunk at a time, so that
        measuring a subset holds one chunk in memory, never the subset's crops."""
        want = np.unique(np.asarray(ids, dtype=np.int64))
        if want.size and (want[0] < 0 or want[-1] >= self.n_cells):
            raise ValueError(f"{self.path}: cell ids outside 0..{self.n_cells - 1}")
        chunk = self.chunk_cells
        chunk_of = want // chunk
        for c in np.unique(chunk_of):
            sel = want[chunk_of == c]
            start = int(c) * chunk
            yield sel, self.read(start, min(start + chunk, self.n_cells))[sel - start]

    def iter_chunks(self, chunk_cells: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(start, crops)`` over the whole store, one chunk at a time."""
        step = chunk_cells or self.chunk_cells
        for start in range(0, self.n_cells, step):
            yield start, self.read(start, start + step)

    def frame_stats(self, channel: str) -> tuple[np.ndarray, np.ndarray]:
        """Per-cell (median, std) of ``channel`` in the cell's own frame, for per-frame normalisation."""
        key = self.frames.set_index(["field", "frame"])
        idx = pd.MultiIndex.from_arrays([self.cells["field"].to_numpy(), self.cells["frame"].to_numpy()])
        med = key[f"{channel}_median"].reindex(idx).to_numpy(dtype=np.float32)
        std = key[f"{channel}_std"].reindex(idx).to_numpy(dtype=np.float32)
        return med, std


def _fail(path: Path, problem: str) -> StoreError:
    return StoreError(f"{path}: {problem}")


def _chunk_grid(crops: zarr.Array) -> tuple[int, ...]:
    """Chunk files along each axis (a sharded array stores one file per shard)."""
    per_file = getattr(crops, "shards", None) or crops.chunks
    return tuple(math.ceil(n / c) for n, c in zip(crops.shape, per_file))


def _chunk_key(crops: zarr.Array, index: int | tuple[int, ...]) -> str:
    """Storage key (path inside the array folder) of a chunk, in the array's own key encoding."""
    coords = (index,) + (0,) * (crops.ndim - 1) if isinstance(index, (int, np.integer)) else tuple(index)
    return crops.metadata.encode_chunk_key(tuple(int(i) for i in coords))


def _chunk_files_of(crops: zarr.Array, c: int) -> list[tuple[int, str]]:
    """``(position in C order, key)`` of every chunk file holding cells of chunk row ``c``."""
    grid = _chunk_grid(crops)
    inner = math.prod(grid[1:])
    return [(c * inner + i, _chunk_key(crops, (c, *rest)))
            for i, rest in enumerate(itertools.product(*(range(n) for n in grid[1:])))]


def chunk_checksums(array_dir: Path, keys: Sequence[str]) -> list[int]:
    """CRC-32 (zlib) of each chunk file's stored bytes, in the order of ``keys``."""
    return [zlib.crc32((array_dir / key).read_bytes()) for key in keys]


def _plain_blosc(crops: zarr.Array) -> bool:
    """Whether each chunk file is one little-endian Blosc frame of one whole chunk (this package's
    stores: zarr 3, bytes -> Blosc, no sharding), which :func:`_decode_chunk` decodes directly."""
    md = crops.metadata
    if getattr(md, "zarr_format", 3) != 3 or getattr(crops, "shards", None) or not _blosc_only(crops):
        return False
    return str(getattr(md.codecs[0].endian, "value", md.codecs[0].endian)) == "little"


def _decode_chunk(crops: zarr.Array, file: Path, data: bytes, lo: int, hi: int) -> np.ndarray:
    """The chunk stored as ``data`` (already checked against its CRC-32), decoded as zarr would."""
    from numcodecs import blosc

    out = np.empty(crops.chunks, dtype="<u2")  # writable, as zarr returns it
    try:
        blosc.decompress(data, out)
        return out.astype(np.uint16, copy=False)
    except Exception as exc:  # a chunk that passed its checksum but does not decode was sealed broken
        raise _fail(file, f"cannot decode the chunk of cells {lo}..{hi - 1}: {type(exc).__name__}: {exc}; "
                          "the chunk is corrupt (write the store again)") from exc


def _verify_crc(path: Path, key: str, want: int, lo: int, hi: int) -> bytes:
    """The chunk file ``key`` holds the bytes it was sealed with (its CRC-32), else StoreError naming it;
    returns the bytes."""
    file = path / CROPS_NAME / key
    try:
        data = file.read_bytes()
        got = zlib.crc32(data)
    except OSError as exc:
        raise _fail(file, f"chunk of cells {lo}..{hi - 1} cannot be read ({exc})") from exc
    if got != want:
        raise _fail(
            file,
            f"chunk of cells {lo}..{hi - 1} fails its checksum (CRC-32 {got:08x}, sealed with {want:08x} in "
            f"{META_NAME} {CHUNK_CRC_KEY!r}): the chunk file is truncated or corrupt; its crops would read back "
            "as other pixels (write the store again)",
        )
    return data


def chunk_sizes(array_dir: Path, crops: zarr.Array) -> tuple[list[str], list[int | None]]:
    """Every chunk key the array's shape implies, in C order, and its file size (None: missing)."""
    keys = [_chunk_key(crops, idx) for idx in itertools.product(*(range(n) for n in _chunk_grid(crops)))]
    sizes: list[int | None] = []
    for key in keys:
        try:
            sizes.append((array_dir / key).stat().st_size)
        except FileNotFoundError:
            sizes.append(None)
    return keys, sizes


def _blosc_only(crops: zarr.Array) -> bool:
    """Whether each chunk file is one Blosc frame (this package's stores: bytes -> Blosc, no sharding)."""
    md = crops.metadata
    if getattr(md, "zarr_format", 3) == 2:
        return not md.filters and md.compressor is not None and md.compressor.codec_id == "blosc"
    return [type(c).__name__ for c in md.codecs] == ["BytesCodec", "BloscCodec"]


def _blosc_header_problem(file: Path, size: int, expected_nbytes: int) -> str | None:
    """Read the 16-byte Blosc header: the frame must fill the file and hold a whole chunk.

    Blosc decodes a truncated frame of incompressible data without complaint (garbage follows), so a
    store without recorded sizes is checked here, at the cost of 16 bytes a chunk.
    """
    with open(file, "rb") as fh:
        head = fh.read(16)
    if len(head) < 16:
        return f"is {size} bytes, shorter than a Blosc header: the chunk file is truncated"
    nbytes, cbytes = int.from_bytes(head[4:8], "little"), int.from_bytes(head[12:16], "little")
    if nbytes != expected_nbytes:
        return f"has a corrupt Blosc header ({nbytes} bytes uncompressed, expected {expected_nbytes})"
    if cbytes != size:
        return f"is {size} bytes but its Blosc header says {cbytes}: the chunk file is {'truncated' if size < cbytes else 'corrupt'}"
    return None


def _check_chunks(path: Path, crops: zarr.Array, meta: dict[str, Any]) -> None:
    """Every chunk file present, with its sealed size where meta.json records it (stat calls only;
    older stores: each chunk's 16-byte Blosc header)."""
    root = path / CROPS_NAME
    keys, sizes = chunk_sizes(root, crops)
    per_chunk = int((getattr(crops, "shards", None) or crops.chunks)[0])
    n = int(crops.shape[0])

    def cells(key: str) -> str:
        c = keys.index(key) // math.prod(_chunk_grid(crops)[1:])
        return f"cells {c * per_chunk}..{min((c + 1) * per_chunk, n) - 1}"

    missing = [k for k, size in zip(keys, sizes) if size is None]
    if missing:
        shown = ", ".join(f"{k} ({cells(k)})" for k in missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise _fail(
            root,
            f"{len(missing)} of {len(keys)} chunk file(s) missing: {shown}; Zarr would read them back as all-zero "
            "crops, so the store is incomplete or damaged (write it again)",
        )
    crcs = meta.get(CHUNK_CRC_KEY)
    if crcs is None:
        warnings.warn(
            f"{path}: no per-chunk checksums ({META_NAME} {CHUNK_CRC_KEY!r}; written by an older version): a crop "
            "chunk corrupted without changing its size would read back as other pixels unnoticed. Write the "
            "store again (re-ingest the movie or re-simulate) to add them.", StoreWarning, stacklevel=4)
    elif not isinstance(crcs, list) or len(crcs) != len(keys) or not all(
            isinstance(c, int) and not isinstance(c, bool) and 0 <= c < 2**32 for c in crcs):
        raise _fail(
            path / META_NAME,
            f"{CHUNK_CRC_KEY!r} must list the CRC-32 of each of the {len(keys)} crop chunks, "
            f"got {len(crcs) if isinstance(crcs, list) else type(crcs).__name__} entries",
        )
    recorded = meta.get(CHUNK_BYTES_KEY)
    if recorded is None:  # sealed before the sizes were recorded: check each chunk's Blosc header instead
        expected = math.prod(crops.chunks) * crops.dtype.itemsize
        if _blosc_only(crops):
            for key, size in zip(keys, sizes):
                problem = _blosc_header_problem(root / key, size, expected)
                if problem:
                    raise _fail(root / key, f"chunk of {cells(key)} {problem}")
        return
    if not isinstance(recorded, list) or len(recorded) != len(keys) or not all(isinstance(b, int) for b in recorded):
        raise _fail(
            path / META_NAME,
            f"{CHUNK_BYTES_KEY!r} must list the byte size of each of the {len(keys)} crop chunks, "
            f"got {len(recorded) if isinstance(recorded, list) else type(recorded).__name__} entries",
        )
    for key, size, want in zip(keys, sizes, recorded):
        if size != want:
            raise _fail(
                root / key,
                f"chunk of {cells(key)} is {size} bytes but was sealed with {want} (meta.json {CHUNK_BYTES_KEY!r}): "
                f"the chunk file is {'truncated' if size < want else 'modified'}",
            )


def validate_cells(cells: pd.DataFrame, where: Path | str, n_cells: int | None = None, start: int = 0) -> None:
    """Check the cell table's columns, kinds and values; raise :class:`StoreError` naming ``where``.

    ``start``: the table is the block of rows ``start..`` of a larger one (the writer validates the
    table block by block as it seals it, so its ``cell_id`` must run ``start..start+len-1``).
    """
    where = Path(where)
    missing = [c for c in REQUIRED_COLUMNS if c not in cells.columns]
    if missing:
        raise _fail(where, f"missing required column(s) {missing}")
    for col, kind in REQUIRED_COLUMNS.items():
        actual = cells[col].dtype.kind
        ok = actual == kind or (kind == "f" and actual in "iuf") or (kind == "i" and actual in "iu")
        if not ok:
            raise _fail(where, f"column {col!r} has dtype {cells[col].dtype}, expected kind {kind!r}")
    if n_cells is not None and len(cells) != n_cells:
        raise _fail(where, f"has {len(cells)} rows but the crops array has {n_cells} cells")
    if not np.array_equal(cells["cell_id"].to_numpy(), np.arange(start, start + len(cells))):
        raise _fail(where, "column 'cell_id' must equal the row number 0..n-1")
    for col in ("time_h", "x", "y"):
        if not np.isfinite(cells[col].to_numpy(dtype=float)).all():
            raise _fail(where, f"column {col!r} contains NaN or infinite values")
    cls = cells["class"].to_numpy()
    if ((cls < -1) | (cls > 3)).any():
        raise _fail(where, "column 'class' must hold -1 (unlabelled) or 0..3")


def validate_meta(meta: dict[str, Any], where: Path | str) -> None:
    where = Path(where)
    if meta.get("schema_version") != SCHEMA_VERSION:
        raise _fail(where, f"schema_version is {meta.get('schema_version')!r}, this package reads {SCHEMA_VERSION}")
    chans = meta.get("channels")
    if not isinstance(chans, list) or not chans:
        raise _fail(where, "'channels' must be a non-empty list of {name, role}")
    names = [c.get("name") for c in chans]
    if len(set(names)) != len(names):
        raise _fail(where, f"duplicate channel names {names}")
    for c in chans:
        if c.get("role") not in NETWORK_ROLES:
            raise _fail(where, f"channel {c.get('name')!r} has role {c.get('role')!r}; roles are {NETWORK_ROLES}")
    for key in ("frame_interval_min", "pixel_size_um"):
        value = meta.get(key)
        # a bool is an int to Python and NaN compares false with everything: both are refused by name
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise _fail(where, f"{key!r} must be a positive, finite number, got {json.dumps(value)}"
                               f"{'' if key in meta else ' (missing)'}")


def open_store(path: str | os.PathLike) -> CellStore:
    """Open and validate a cell store; every problem raises :class:`StoreError` naming the file."""
    path = Path(path)
    meta, crops = _open_meta_crops(path)
    try:
        cells = pd.read_parquet(path / CELLS_NAME)
        frames = pd.read_parquet(path / FRAMES_NAME)
    except Exception as exc:
        raise _fail(path, f"cannot read the cell or frame table ({exc})") from exc
    validate_cells(cells, path / CELLS_NAME, n_cells=int(crops.shape[0]))
    _check_frames(path, frames, meta, set(zip(cells["field"].to_numpy(), cells["frame"].to_numpy())))
    return CellStore(path=path, crops=crops, cells=cells, frames=frames, meta=meta)


def _open_meta_crops(path: Path) -> tuple[dict[str, Any], zarr.Array]:
    """Every part present, meta.json valid, the crops array of the right shape with every chunk whole."""
    if not path.is_dir():
        raise _fail(path, "no cell store here (not a folder)")
    for name in (META_NAME, CELLS_NAME, FRAMES_NAME, CROPS_NAME):
        if not (path / name).exists():
            raise _fail(path / name, "missing: not a complete cell store")
    try:
        meta = json.loads((path / META_NAME).read_text())
    except json.JSONDecodeError as exc:
        raise _fail(path / META_NAME, f"not valid JSON ({exc})") from exc
    validate_meta(meta, path / META_NAME)
    try:
        crops = zarr.open_array(str(path / CROPS_NAME), mode="r")
    except Exception as exc:  # zarr raises several types for a broken array
        raise _fail(path / CROPS_NAME, f"cannot be opened as a Zarr array ({exc})") from exc
    n_ch = len(meta["channels"])
    if crops.ndim != 4 or tuple(crops.shape[1:]) != (n_ch, CROP_SIZE, CROP_SIZE):
        raise _fail(path / CROPS_NAME, f"shape {crops.shape}, expected (n, {n_ch}, {CROP_SIZE}, {CROP_SIZE})")
    if crops.dtype != np.uint16:
        raise _fail(path / CROPS_NAME, f"dtype {crops.dtype}, expected uint16")
    _check_chunks(path, crops, meta)
    return meta, crops


def _check_frames(path: Path, frames: pd.DataFrame, meta: dict[str, Any], used: set[tuple[Any, Any]]) -> None:
    """The frame table has every channel's statistics for every (field, frame) pair the cells use."""
    need = ["field", "frame"] + [f"{c}_{s}" for c in [ch["name"] for ch in meta["channels"]] for s in ("median", "std")]
    lacking = [c for c in need if c not in frames.columns]
    if lacking:
        raise _fail(path / FRAMES_NAME, f"missing column(s) {lacking}")
    have = set(zip(frames["field"].to_numpy(), frames["frame"].to_numpy()))
    if not used <= have:
        raise _fail(path / FRAMES_NAME, f"no statistics for {len(used - have)} (field, frame) pair(s) used by cells")


@dataclass
class StoreWriter:
    """Stream crops and cell rows into a new store; it becomes visible only on a clean close.

    Use as a context manager::

        with StoreWriter(out, channels=[("hoechst", "nuclear"), ("brightfield", "brightfield")],
                         meta={"frame_interval_min": 10, "pixel_size_um": 0.5}) as w:
            w.append(crops, rows)          # as many times as needed
            w.set_frames(frame_stats)      # per (field, frame) medians and stds
        # now ``out`` exists and validates; on an exception nothing is left behind.

    Memory stays bounded by the batch, not the store: crops go to Zarr a chunk at a time, and cell
    rows go to a temporary Parquet file inside the temporary store folder, one row group per
    ``row_group_cells`` rows (a paper-scale table of 2.6 M rows is ~0.5 GB in pandas). Every batch
    must have the first batch's columns, in order, with the same types. Sealing reads the rows back
    one row group at a time, adds ``cell_id``, validates each block and writes ``cells.parquet``.
    """

    path: Path
    channels: Sequence[tuple[str, str]]
    meta: dict[str, Any] = field(default_factory=dict)
    chunk_cells: int = 2048
    overwrite: bool = False
    #: Called once, at sealing, for columns that need every cell (e.g. the paper's median-split FUCCI
    #: classes over the whole data set). With ``finalise_columns`` it gets only those columns of
    #: every cell (one narrow table) and returns a table of the same rows whose columns replace the
    #: same-named columns in place or are appended after them (in its order); without, it gets the
    #: whole table and returns the whole table (the whole table is then in memory once).
    finalise_cells: Callable[[pd.DataFrame], pd.DataFrame] | None = None
    #: The columns ``finalise_cells`` reads (None: it needs the whole table).
    finalise_columns: Sequence[str] | None = None
    #: Cell rows held in memory before they are written out as one Parquet row group.
    row_group_cells: int = 65536

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if self.path.exists() and not self.overwrite:
            raise _fail(self.path, "already exists (pass overwrite=True / --overwrite to replace it)")
        self._tmp = temporary_name(self.path)  # the whole folder is written here, then renamed (_finalise)
        self._rows: list[pd.DataFrame] = []  # cell rows not yet written (fewer than row_group_cells + one batch)
        self._rows_buffered = 0
        self._schema: pa.Schema | None = None  # the cell rows' schema, fixed by the first batch
        self._rows_writer: pq.ParquetWriter | None = None
        self._buffer: list[np.ndarray] = []
        self._buffered = 0
        self._n = 0
        self._frames: pd.DataFrame | None = None
        self._array: zarr.Array | None = None

    @property
    def _rows_file(self) -> Path:
        """The temporary cell rows, in row groups as appended (removed when the store is sealed)."""
        return self._tmp / ROWS_STREAM_NAME

    # -- context management -------------------------------------------------------------------
    def __enter__(self) -> "StoreWriter":
        self._tmp.parent.mkdir(parents=True, exist_ok=True)
        self._tmp.mkdir()
        from zarr.codecs import BloscCodec

        self._array = zarr.create_array(
            store=str(self._tmp / CROPS_NAME),
            shape=(0, len(self.channels), CROP_SIZE, CROP_SIZE),
            chunks=(self.chunk_cells, len(self.channels), CROP_SIZE, CROP_SIZE),
            dtype="uint16",
            compressors=BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle"),
            # every chunk gets a file, all-zero ones too: a missing file then always means damage
            config={"write_empty_chunks": True},
        )
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self._close_rows()
            shutil.rmtree(self._tmp, ignore_errors=True)
            return
        try:
            self._finalise()
        except BaseException:
            self._close_rows()
            shutil.rmtree(self._tmp, ignore_errors=True)
            raise

    # -- writing ------------------------------------------------------------------------------
    def append(self, crops: np.ndarray, rows: pd.DataFrame) -> None:
        """Add ``crops`` (n, C, 48, 48) uint16 and their ``rows`` (without ``cell_id``)."""
        if self._array is None:
            raise RuntimeError("StoreWriter.append outside its `with` block")
        crops = np.asarray(crops)
        shape = (len(self.channels), CROP_SIZE, CROP_SIZE)
        if crops.ndim != 4 or crops.shape[1:] != shape:
            raise _fail(self.path, f"crops of shape {crops.shape}, expected (n, {', '.join(map(str, shape))})")
        if crops.dtype != np.uint16:
            raise _fail(self.path, f"crops of dtype {crops.dtype}, expected uint16")
        if len(rows) != len(crops):
            raise _fail(self.path, f"{len(crops)} crops but {len(rows)} cell rows")
        if len(rows) == 0:
            return  # nothing to store (an empty batch's object columns have no type to check)
        self._check_rows(rows)
        self._buffer.append(crops)
        self._buffered += len(crops)
        self._rows.append(rows.reset_index(drop=True))
        self._rows_buffered += len(rows)
        self._n += len(crops)
        if self._buffered >= self.chunk_cells:
            self._flush(final=False)
        if self._rows_buffered >= self.row_group_cells:
            self._flush_rows()

    def set_frames(self, frames: pd.DataFrame) -> None:
        """Per-(field, frame) statistics: ``field, frame, <channel>_median, <channel>_std``."""
        self._frames = frames.reset_index(drop=True)

    def _check_rows(self, rows: pd.DataFrame) -> None:
        """The batch's Arrow types (inferred, nothing converted) must be the first batch's."""
        try:
            got = pa.Schema.from_pandas(rows, preserve_index=False)
        except (pa.ArrowException, ValueError, TypeError) as exc:
            raise _fail(self.path / CELLS_NAME, f"cell rows cannot be stored as Parquet ({exc})") from exc
        if self._schema is None:
            self._schema = got
            return
        want = self._schema
        if want.names != got.names:
            extra = [c for c in got.names if c not in want.names]
            lacking = [c for c in want.names if c not in got.names]
            problem = (f"has column(s) {extra} the first batch lacks" if extra else
                       f"lacks column(s) {lacking} of the first batch" if lacking else
                       f"has the columns in another order ({got.names} vs {want.names})")
            raise _fail(self.path / CELLS_NAME, f"a batch of cell rows {problem}: every batch needs the same columns")
        for name in want.names:
            if want.field(name).type != got.field(name).type:
                raise _fail(
                    self.path / CELLS_NAME,
                    f"column {name!r} is {got.field(name).type} (pandas {rows[name].dtype}) in this batch of "
                    f"cell rows but {want.field(name).type} in the first: every batch needs the same column types",
                )

    def _flush_rows(self) -> None:
        """Write the buffered cell rows to the temporary Parquet file as one row group."""
        if not self._rows:
            return
        # the batches are pandas until here: Arrow may share their buffers, and dropping such a table
        # here, at once, keeps their lifetime simple
        table = pa.Table.from_pandas(pd.concat(self._rows, ignore_index=True), schema=self._schema, preserve_index=False)
        if self._rows_writer is None:
            self._rows_writer = pq.ParquetWriter(self._rows_file, self._schema)
        self._rows_writer.write_table(table, row_group_size=len(table))
        self._rows = []
        self._rows_buffered = 0

    def _close_rows(self) -> None:
        if self._rows_writer is not None:
            self._rows_writer.close()
            self._rows_writer = None

    def _flush(self, final: bool) -> None:
        if not self._buffer:
            return
        block = np.concatenate(self._buffer)
        # write whole chunks only (aligned appends), keep the remainder buffered
        n_write = len(block) if final else (len(block) // self.chunk_cells) * self.chunk_cells
        if n_write:
            self._array.append(block[:n_write], axis=0)
        rest = block[n_write:]
        self._buffer = [rest] if len(rest) else []
        self._buffered = len(rest)

    def _finalised(self, source: pq.ParquetFile) -> pd.DataFrame | None:
        """``finalise_cells`` applied to the columns it declares (all when it declares none)."""
        if self.finalise_cells is None:
            return None
        cols = None if self.finalise_columns is None else list(self.finalise_columns)
        if cols is not None:
            unknown = [c for c in cols if c not in source.schema_arrow.names]
            if unknown:
                raise _fail(self.path / CELLS_NAME, f"finalise_columns names column(s) {unknown} the cell rows lack")
        result = self.finalise_cells(source.read(columns=cols).to_pandas())
        if len(result) != self._n:
            raise _fail(self.path / CELLS_NAME, f"finalise_cells returned {len(result)} rows for {self._n} cells")
        return result.reset_index(drop=True)

    def _write_cells(self) -> set[tuple[Any, Any]]:
        """Second pass: the temporary rows, one row group at a time, finalised, numbered, validated and
        written to ``cells.parquet``. Returns the (field, frame) pairs the cells use."""
        self._flush_rows()
        self._close_rows()
        source = pq.ParquetFile(self._rows_file)
        patch = self._finalised(source)
        whole = patch is not None and self.finalise_columns is None
        where = self.path / CELLS_NAME
        used: set[tuple[Any, Any]] = set()
        out: pq.ParquetWriter | None = None
        start = 0
        try:
            for g in range(source.num_row_groups):
                stop = start + source.metadata.row_group(g).num_rows
                if whole:  # finalise returned the whole table: it replaces the rows
                    block = patch.iloc[start:stop].reset_index(drop=True)
                else:
                    block = source.read_row_group(g).to_pandas()
                    if patch is not None:
                        for col in patch.columns:
                            block[col] = patch[col].iloc[start:stop].reset_index(drop=True)  # keeps its dtype
                block.insert(0, "cell_id", np.arange(start, stop, dtype=np.int64))
                validate_cells(block, where, start=start)
                used |= set(zip(block["field"].to_numpy(), block["frame"].to_numpy()))
                if out is None:
                    table = pa.Table.from_pandas(block, preserve_index=False)
                    out = pq.ParquetWriter(self._tmp / CELLS_NAME, table.schema)
                else:
                    table = pa.Table.from_pandas(block, schema=out.schema, preserve_index=False)
                out.write_table(table, row_group_size=len(table))
                start = stop
        finally:
            if out is not None:
                out.close()
        if start != self._n:
            raise _fail(where, f"has {start} rows but the crops array has {self._n} cells")
        self._rows_file.unlink()
        return used

    def _finalise(self) -> None:
        self._flush(final=True)
        if self._n == 0:
            raise _fail(self.path, "no cells were written: refusing to create an empty store")
        used = self._write_cells()
        if self._frames is None:
            raise _fail(self.path / FRAMES_NAME, "frame statistics were never set (StoreWriter.set_frames)")
        meta = {
            "schema_version": SCHEMA_VERSION,
            "channels": [{"name": n, "role": r} for n, r in self.channels],
            "crop_size": CROP_SIZE,
            "n_cells": self._n,
            **self.meta,
        }
        keys, sizes = chunk_sizes(self._tmp / CROPS_NAME, self._array)
        meta[CHUNK_BYTES_KEY] = sizes  # open_store checks these sizes (a truncated chunk fails at open)
        meta[CHUNK_CRC_KEY] = chunk_checksums(self._tmp / CROPS_NAME, keys)  # every read checks these
        meta.setdefault("provenance", {})
        meta["provenance"].setdefault("package_version", __version__)
        meta["provenance"].setdefault("created", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
        validate_meta(meta, self.path / META_NAME)
        self._frames.to_parquet(self._tmp / FRAMES_NAME, index=False)
        (self._tmp / META_NAME).write_text(json.dumps(meta, indent=2, default=_json_default))
        # validate the finished folder before it becomes visible: what open_store checks, with the
        # cell table checked block by block above instead of read back whole
        meta, crops = _open_meta_crops(self._tmp)
        if pq.ParquetFile(self._tmp / CELLS_NAME).metadata.num_rows != int(crops.shape[0]):
            raise _fail(self._tmp / CELLS_NAME, f"does not hold the {int(crops.shape[0])} rows of the crops array")
        try:
            frames = pd.read_parquet(self._tmp / FRAMES_NAME)
        except Exception as exc:
            raise _fail(self._tmp, f"cannot read the cell or frame table ({exc})") from exc
        _check_frames(self._tmp, frames, meta, used)
        if self.path.exists():
            trash = temporary_name(self.path, "old")
            os.rename(self.path, trash)
            os.rename(self._tmp, self.path)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.rename(self._tmp, self.path)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, (np.ndarray,)):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj)}")
