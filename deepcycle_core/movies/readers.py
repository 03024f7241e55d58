"""Movie readers: one lazy (frame, channel) -> 2-D image interface over every supported layout.

Researchers bring movies as OME-TIFF, plain TIFF stacks, folders of per-frame TIFFs, OME-Zarr or the
original DeepCycle layout (``BF/ Cy3/ DAPI/ GFP/`` folders plus a TrackMate spot table). Ingestion
only ever needs one 2-D plane at a time, so every reader here exposes exactly that and never loads
the whole stack: memory stays bounded by one frame for movies larger than memory.

Everything that can be checked without reading pixels (axes, channel names, frame shapes, bit depth,
truncation) is checked when the movie is opened, so bad input fails before any output is written,
with an error naming the file and the problem.
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from ..data.values import positive_number

__all__ = [
    "KNOWN_AXES",
    "DEEPCYCLE_FOLDERS",
    "TRACKMATE_SPOTS",
    "TIFF_SUFFIXES",
    "MovieError",
    "positive",
    "Movie",
    "is_deepcycle_layout",
    "read_trackmate_spots",
    "open_movie",
]

#: Axes letters a movie may carry; any other axis must have length 1 (it is squeezed away).
KNOWN_AXES = "TCZYXS"
#: Channel folders of the original DeepCycle data set and the role each one plays.
DEEPCYCLE_FOLDERS = {"DAPI": "nuclear", "BF": "brightfield", "Cy3": "fucci_red", "GFP": "fucci_green"}
#: TrackMate's spot table in the original layout.
TRACKMATE_SPOTS = "Spots in tracks statistics.csv"
TIFF_SUFFIXES = (".tif", ".tiff")


class MovieError(ValueError):
    """A movie cannot be read as asked; the message names the file and the problem."""


def _fail(path: Path | str, problem: str) -> MovieError:
    return MovieError(f"{path}: {problem}")


def positive(name: str, value: Any, where: Path | str | None = None) -> float | None:
    """``value`` as a float when given; ``None`` stays ``None`` (not given, use the metadata).

    A calibration of 0, a negative or a non-finite number is an error, never "unknown": treating 0
    as unset would silently replace what the user typed with the movie's metadata or a default.
    """
    if value is None:
        return None
    try:
        return positive_number(name, value)
    except ValueError as exc:
        raise MovieError(f"{where}: {exc}" if where is not None else str(exc)) from None


@dataclass
class Movie:
    """A lazily read time-lapse: ``frame(t, c)`` returns one 2-D plane, nothing more is held."""

    source: Path
    channel_names: list[str]
    n_frames: int
    shape: tuple[int, int]
    dtype: np.dtype
    frame_interval_min: float | None
    pixel_size_um: float | None
    _read: Callable[[int, int], np.ndarray] = field(repr=False)
    #: Given spots (and tracks) that replace detection: columns frame, x, y (pixels), track_id.
    spots: pd.DataFrame | None = None
    #: Frame indices in ``0..n_frames-1`` with no image (a gap in a per-frame folder's numbering): they
    #: keep their place in time, so every later frame keeps its own time; reading one raises.
    missing_frames: tuple[int, ...] = ()
    _closers: list[Callable[[], Any]] = field(default_factory=list, repr=False)

    @property
    def n_channels(self) -> int:
        return len(self.channel_names)

    def channel_index(self, name_or_index: str | int) -> int:
        """Index of a channel given by name (case-insensitive) or by index (int or digit string)."""
        if isinstance(name_or_index, (int, np.integer)) or str(name_or_index).isdigit():
            i = int(name_or_index)
            if not 0 <= i < self.n_channels:
                raise _fail(self.source, f"channel index {i} out of range: the movie has {self.n_channels} channel(s) {self.channel_names}")
            return i
        lowered = [n.lower() for n in self.channel_names]
        if str(name_or_index).lower() in lowered:
            return lowered.index(str(name_or_index).lower())
        raise _fail(self.source, f"missing channel {name_or_index!r}; the movie's channels are {self.channel_names}")

    def frame(self, t: int, channel: str | int) -> np.ndarray:
        """Frame ``t`` of ``channel`` as a 2-D uint16 array (read from disk now)."""
        c = self.channel_index(channel)
        if not 0 <= t < self.n_frames:
            raise IndexError(f"frame {t} out of range 0..{self.n_frames - 1}")
        if t in self.missing_frames:
            raise _fail(self.source, f"frame {t} is missing (a gap in the movie's frame numbers): it has no image")
        try:
            img = np.asarray(self._read(t, c))
        except MovieError:
            raise
        except Exception as exc:  # a plane that cannot be decoded means a damaged file
            raise _fail(self.source, f"frame {t}, channel {self.channel_names[c]!r} cannot be read ({exc}); the file may be truncated or corrupt") from exc
        if img.shape != self.shape:
            raise _fail(self.source, f"frame {t} has shape {img.shape}, expected {self.shape}: frames of different shapes")
        return _as_uint16(img, self.dtype)

    def close(self) -> None:
        for close in self._closers:
            close()
        self._closers.clear()

    def __enter__(self) -> "Movie":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _as_uint16(img: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if dtype == np.uint8:  # only reached with allow_8bit=True: spread 0..255 over 0..65535
        return img.astype(np.uint16) * np.uint16(257)
    return img.astype(np.uint16, copy=False)


def _check_dtype(path: Path | str, dtype: np.dtype, allow_8bit: bool) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype == np.uint16:
        return dtype
    if dtype == np.uint8:
        if allow_8bit:
            return dtype
        raise _fail(path, "8-bit images where 16-bit are expected (pass allow_8bit=True / --allow-8bit to rescale them)")
    raise _fail(path, f"pixel type {dtype}, expected 16-bit unsigned integers (uint16)")


# ------------------------------------------------------------------------------------------------
# axes handling shared by the array readers (TIFF stacks and OME-Zarr)
# ------------------------------------------------------------------------------------------------
def _plane_indexer(path: Path | str, axes: str, shape: Sequence[int]) -> tuple[int, int, Callable[[int, int], tuple]]:
    """Check ``axes`` against ``shape``; return (n_frames, n_channels, (t, c) -> index tuple)."""
    axes = axes.upper()
    if len(axes) != len(shape):
        raise _fail(path, f"wrong axes {axes!r}: {len(axes)} letters for an array of {len(shape)} dimensions {tuple(shape)}")
    if len(set(axes)) != len(axes):
        raise _fail(path, f"wrong axes {axes!r}: a letter repeats")
    if "Y" not in axes or "X" not in axes:
        raise _fail(path, f"wrong axes {axes!r}: must contain Y and X")
    for ax, n in zip(axes, shape):
        if ax not in "TCYX" and n != 1:
            raise _fail(path, f"wrong axes {axes!r}: axis {ax!r} has length {n}; only T, C, Y, X may exceed 1 (give axes=... to say which is which)")
    if axes.index("Y") > axes.index("X"):
        raise _fail(path, f"wrong axes {axes!r}: Y must come before X")
    n_t = shape[axes.index("T")] if "T" in axes else 1
    n_c = shape[axes.index("C")] if "C" in axes else 1

    def index(t: int, c: int) -> tuple:
        out: list[Any] = []
        for ax in axes:
            out.append({"T": t, "C": c, "Y": slice(None), "X": slice(None)}.get(ax, 0))
        return tuple(out)

    return n_t, n_c, index


# ------------------------------------------------------------------------------------------------
# TIFF stacks (OME or plain)
# ------------------------------------------------------------------------------------------------
class _LogCatcher(logging.Handler):
    """Collects tifffile's warnings: it logs (rather than raises) when a file is truncated."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _ome_info(xml: str) -> dict[str, Any]:
    """Channel names, pixel size, frame interval and plane count from OME-XML."""
    root = ET.fromstring(xml)
    ns = {"ome": root.tag.split("}")[0].strip("{")} if root.tag.startswith("{") else {}
    pix = root.find(".//ome:Pixels", ns) if ns else root.find(".//Pixels")
    info: dict[str, Any] = {}
    if pix is None:
        return info
    names = [ch.get("Name") for ch in (pix.findall("ome:Channel", ns) if ns else pix.findall("Channel"))]
    if names and all(names):
        info["channel_names"] = [str(n) for n in names]
    size = pix.get("PhysicalSizeX")
    if size is not None:
        unit = pix.get("PhysicalSizeXUnit", "µm")
        factor = {"µm": 1.0, "um": 1.0, "nm": 1e-3, "mm": 1e3}.get(unit)
        if factor is not None:
            info["pixel_size_um"] = float(size) * factor
    dt = pix.get("TimeIncrement")
    if dt is not None:
        unit = pix.get("TimeIncrementUnit", "s")
        factor = {"s": 1 / 60, "min": 1.0, "h": 60.0, "ms": 1 / 60000}.get(unit)
        if factor is not None:
            info["frame_interval_min"] = float(dt) * factor
    try:
        info["n_planes"] = int(pix.get("SizeT", 1)) * int(pix.get("SizeC", 1)) * int(pix.get("SizeZ", 1))
    except ValueError:
        pass
    return info


def _open_tiff_stack(path: Path, axes: str | None, allow_8bit: bool) -> Movie:
    import tifffile
    import zarr

    catcher = _LogCatcher()
    log = logging.getLogger("tifffile")
    log.addHandler(catcher)
    try:
        try:
            tf = tifffile.TiffFile(path)
        except Exception as exc:
            raise _fail(path, f"not a readable TIFF file ({exc}); it may be truncated or corrupt") from exc
        try:
            n_pages = len(tf.pages)
            series = tf.series[0] if tf.series else None
            ome = _ome_info(tf.ome_metadata) if tf.is_ome and tf.ome_metadata else {}
        except Exception as exc:
            tf.close()
            raise _fail(path, f"cannot parse the TIFF structure ({exc}); it may be truncated or corrupt") from exc
    finally:
        log.removeHandler(catcher)
    try:
        # only the messages tifffile logs for a broken IFD chain; benign tag warnings are ignored
        bad = [m for m in catcher.messages if any(k in m.lower() for k in ("page offset", "tifffileerror", "truncat", "corrupt"))]
        if bad:
            raise _fail(path, f"truncated or corrupt TIFF ({bad[0]})")
        if series is None or n_pages == 0:
            raise _fail(path, "empty movie: the TIFF holds no image")
        if "n_planes" in ome and ome["n_planes"] > n_pages:
            raise _fail(path, f"truncated TIFF: the OME metadata declares {ome['n_planes']} planes but only {n_pages} are present")
        size = path.stat().st_size
        for page in tf.pages:
            offs = getattr(page, "dataoffsets", ()) or ()
            counts = getattr(page, "databytecounts", ()) or ()
            if any(o + n > size for o, n in zip(offs, counts)):
                raise _fail(path, f"truncated TIFF: image data runs past the end of the file ({size} bytes)")
        shape = tuple(series.shape)
        if axes is not None:
            use_axes = axes.upper()
            if tf.is_ome and series.axes.upper() != use_axes:
                raise _fail(path, f"wrong axes {axes!r}: the OME metadata says the axes are {series.axes!r}")
        elif tf.is_ome or tf.is_imagej or set(series.axes) <= set(KNOWN_AXES):
            use_axes = series.axes.upper()
            if not set(use_axes) <= set(KNOWN_AXES):
                raise _fail(path, f"axes {series.axes!r} are not understood; give axes=... (e.g. 'TCYX')")
        else:
            raise _fail(path, f"plain TIFF of shape {shape} without axes metadata (tifffile guesses {series.axes!r}); give axes=... (e.g. 'TCYX')")
        n_t, n_c, index = _plane_indexer(path, use_axes, shape)
        if n_t == 0 or n_c == 0 or 0 in shape:
            raise _fail(path, f"empty movie: shape {shape} with axes {use_axes!r}")
        dtype = _check_dtype(path, series.dtype, allow_8bit)
        arr = zarr.open_array(series.aszarr(), mode="r")
    except BaseException:
        tf.close()
        raise
    names = ome.get("channel_names") if ome.get("channel_names") and len(ome["channel_names"]) == n_c else [str(i) for i in range(n_c)]
    return Movie(
        source=path,
        channel_names=names,
        n_frames=n_t,
        shape=(shape[use_axes.index("Y")], shape[use_axes.index("X")]),
        dtype=dtype,
        frame_interval_min=ome.get("frame_interval_min"),
        pixel_size_um=ome.get("pixel_size_um"),
        _read=lambda t, c: arr[index(t, c)],
        _closers=[tf.close],
    )


# ------------------------------------------------------------------------------------------------
# OME-Zarr (NGFF 0.4 with zarr v2 attributes, 0.5 with the ``ome`` key of zarr v3)
# ------------------------------------------------------------------------------------------------
def _open_ome_zarr(path: Path, axes: str | None, allow_8bit: bool) -> Movie:
    import zarr

    try:
        group = zarr.open_group(str(path), mode="r")
    except Exception as exc:
        raise _fail(path, f"not a readable Zarr group ({exc})") from exc
    attrs = dict(group.attrs)
    ome = attrs.get("ome", attrs)
    multiscales = ome.get("multiscales")
    if not multiscales:
        raise _fail(path, "not an OME-Zarr image: no 'multiscales' metadata")
    ms = multiscales[0]
    datasets = ms.get("datasets") or []
    if not datasets:
        raise _fail(path, "OME-Zarr 'multiscales' lists no datasets")
    level0 = datasets[0]["path"]
    try:
        arr = group[level0]
    except KeyError as exc:
        raise _fail(path / level0, "missing: the level-0 array named by the OME-Zarr metadata does not exist") from exc
    meta_axes = "".join(a["name"] if isinstance(a, str) else a.get("name", "?") for a in ms.get("axes", [])).upper()
    if axes is not None and meta_axes and axes.upper() != meta_axes:
        raise _fail(path, f"wrong axes {axes!r}: the OME-Zarr metadata says the axes are {meta_axes!r}")
    use_axes = (axes or meta_axes).upper()
    if not use_axes:
        raise _fail(path, "OME-Zarr without axes metadata; give axes=... (e.g. 'TCYX')")
    n_t, n_c, index = _plane_indexer(path, use_axes, arr.shape)
    if n_t == 0 or n_c == 0 or 0 in arr.shape:
        raise _fail(path, f"empty movie: shape {arr.shape}")
    dtype = _check_dtype(path, arr.dtype, allow_8bit)
    pixel_size = interval = None
    for tr in datasets[0].get("coordinateTransformations", []) + ms.get("coordinateTransformations", []):
        if tr.get("type") == "scale" and len(tr.get("scale", [])) == len(use_axes):
            sc = tr["scale"]
            units = {a.get("name", "").upper(): a.get("unit") for a in ms.get("axes", []) if isinstance(a, dict)}
            xu = {"micrometer": 1.0, "nanometer": 1e-3, "millimeter": 1e3, None: 1.0}.get(units.get("X"), None)
            tu = {"minute": 1.0, "second": 1 / 60, "hour": 60.0, "millisecond": 1 / 60000, None: 1.0}.get(units.get("T"), None)
            if xu is not None:
                pixel_size = float(sc[use_axes.index("X")]) * xu
            if "T" in use_axes and tu is not None and units.get("T") is not None:
                interval = float(sc[use_axes.index("T")]) * tu
    names = [str(i) for i in range(n_c)]
    labels = [c.get("label") for c in (ome.get("omero") or {}).get("channels", [])]
    if len(labels) == n_c and all(labels):
        names = [str(x) for x in labels]
    return Movie(
        source=path,
        channel_names=names,
        n_frames=n_t,
        shape=(arr.shape[use_axes.index("Y")], arr.shape[use_axes.index("X")]),
        dtype=dtype,
        frame_interval_min=interval,
        pixel_size_um=pixel_size,
        _read=lambda t, c: arr[index(t, c)],
    )


# ------------------------------------------------------------------------------------------------
# folders: one TIFF per frame, and the original DeepCycle layout
# ------------------------------------------------------------------------------------------------
def _natural_key(p: Path) -> list[Any]:
    return [int(s) if s.isdigit() else s.lower() for s in re.split(r"(\d+)", p.name)]


def _tiff_files(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.suffix.lower() in TIFF_SUFFIXES and not p.name.startswith(".")), key=_natural_key)


def _tiff_header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of a single TIFF without reading its pixels."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tf:
            if not tf.series:
                raise _fail(path, "empty TIFF: no image")
            s = tf.series[0]
            return tuple(s.shape), np.dtype(s.dtype)
    except MovieError:
        raise
    except Exception as exc:
        raise _fail(path, f"not a readable TIFF ({exc}); it may be truncated or corrupt") from exc


def _read_tiff(path: Path) -> np.ndarray:
    import tifffile

    try:
        return tifffile.imread(path)
    except Exception as exc:
        raise _fail(path, f"cannot be read ({exc}); it may be truncated or corrupt") from exc


def _frame_numbers(files: Sequence[Path]) -> list[int] | None:
    """The frame number in each file name, or None when the names do not carry one.

    The names must differ in exactly one run of digits, the rest being the same (``movie_T001.tif``,
    ``movie_T002.tif``, ...); that run is the frame number. Otherwise the order of the names is the
    order of the frames, one interval apart.
    """
    parts = [re.split(r"(\d+)", f.name) for f in files]
    if len(files) < 2 or len({len(p) for p in parts}) != 1 or len(parts[0]) < 3:
        return None
    if any(p[0::2] != parts[0][0::2] for p in parts):  # the text around the numbers differs
        return None
    varying = [i for i in range(1, len(parts[0]), 2) if len({int(p[i]) for p in parts}) > 1]
    return [int(p[varying[0]]) for p in parts] if len(varying) == 1 else None


def _frame_positions(path: Path, files: Sequence[Path]) -> tuple[list[int], int, tuple[int, ...]]:
    """(frame index of each file, n_frames, missing frame indices) of a per-frame folder.

    A gap in the numbering (``T001, T002, T004``) is kept: T004 is frame 3, at three intervals, and
    frame 2 is missing. A time-lapse with a dropped frame is still a time-lapse; closing the gap
    would give every later frame an earlier time and make the tracker link cells across two
    intervals as if it were one.
    """
    numbers = _frame_numbers(files)
    if numbers is None:
        return list(range(len(files))), len(files), ()
    seen: dict[int, Path] = {}
    for f, n in zip(files, numbers):
        if n in seen:
            raise _fail(f, f"frame number {n} appears twice (also {seen[n].name})")
        seen[n] = f
    first = min(numbers)
    index = [n - first for n in numbers]
    n_frames = max(index) + 1
    return index, n_frames, tuple(sorted(set(range(n_frames)) - set(index)))


def _open_frame_folder(path: Path, axes: str | None, allow_8bit: bool) -> Movie:
    files = _tiff_files(path)
    if not files:
        raise _fail(path, "empty movie: the folder holds no .tif/.tiff files")
    index, n_frames, missing = _frame_positions(path, files)
    by_frame = dict(zip(index, files))
    shapes = {}
    dtype = None
    for f in files:
        shape, dt = _tiff_header(f)
        shapes[f] = shape
        _check_dtype(f, dt, allow_8bit)
        dtype = dtype or dt
        if dt != dtype:
            raise _fail(f, f"pixel type {dt} differs from {dtype} of {files[0].name}")
    first = shapes[files[0]]
    for f, s in shapes.items():
        if s != first:
            raise _fail(f, f"frames of different shapes: {s} here but {first} in {files[0].name}")
    use_axes = (axes or {2: "YX", 3: "CYX"}.get(len(first), "")).upper()
    if "T" in use_axes:
        raise _fail(path, f"wrong axes {use_axes!r} for one file per frame: each file holds one time point (use 'YX' or 'CYX')")
    if not use_axes:
        raise _fail(files[0], f"each frame has shape {first}; give axes=... for one file (e.g. 'CYX')")
    _, n_c, plane = _plane_indexer(files[0], use_axes, first)
    return Movie(
        source=path,
        channel_names=[str(i) for i in range(n_c)],
        n_frames=n_frames,
        shape=(first[use_axes.index("Y")], first[use_axes.index("X")]),
        dtype=np.dtype(dtype),
        frame_interval_min=None,
        pixel_size_um=None,
        _read=lambda t, c: _read_tiff(by_frame[t])[plane(0, c)],
        missing_frames=missing,
    )


def is_deepcycle_layout(path: Path) -> bool:
    """True for a folder with the original data set's channel folders (at least DAPI and BF)."""
    return path.is_dir() and all((path / d).is_dir() for d in ("DAPI", "BF"))


def _frame_number(path: Path) -> int:
    m = re.search(r"T(\d+)", path.name)
    if not m:
        raise _fail(path, "no frame number 'T<digits>' in the file name")
    return int(m.group(1))


def _check_consecutive(folder: Path, by_frame: dict[int, Path]) -> None:
    """Frame numbers must run T000/T001, T002, ... without a gap.

    Frames are matched to TrackMate's 0-based FRAME column by their position in the folder, so one
    missing file would silently shift every later frame against the spot table (and its time).
    """
    numbers = sorted(by_frame)
    start = 0 if numbers[0] == 0 else 1
    missing = sorted(set(range(start, numbers[-1] + 1)) - set(numbers))
    if not missing:
        return
    like = by_frame[numbers[0]]
    m = re.search(r"T(\d+)", like.name)
    width = len(m.group(1)) if m else 3

    def name(t: int) -> str:
        return f"T{t:0{width}d}"

    files = [like.name[: m.start()] + name(t) + like.name[m.end() :] for t in missing[:5]] if m else []
    more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
    raise _fail(
        folder,
        f"missing frame{'s' if len(missing) > 1 else ''} {', '.join(name(t) for t in missing[:5])}{more} "
        f"({', '.join(files)}{more}): frames must be numbered from T0 or T1 without gaps (found "
        f"{len(numbers)} files {name(numbers[0])}..{name(numbers[-1])}), else every later frame is matched to "
        "the wrong TrackMate frame and time",
    )


def read_trackmate_spots(csv: Path, pixel_size_um: float | None, units: str = "px") -> pd.DataFrame:
    """TrackMate's spot table as (frame, x, y, track_id, spot_id); ``units='um'`` divides by pixel size.

    TrackMate writes up to three extra header rows (short names, dimensions, units) below the
    column names; rows whose ID is not a number are skipped.
    """
    try:
        df = pd.read_csv(csv, low_memory=False)
    except Exception as exc:
        raise _fail(csv, f"cannot be read as CSV ({exc})") from exc
    need = ["ID", "TRACK_ID", "POSITION_X", "POSITION_Y", "FRAME"]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise _fail(csv, f"missing TrackMate column(s) {missing}; found {list(df.columns)[:12]}")
    df = df[need].apply(pd.to_numeric, errors="coerce")
    df = df[df["ID"].notna() & df["FRAME"].notna()]
    if df.empty:
        raise _fail(csv, "no spots in the table")
    if df[["POSITION_X", "POSITION_Y"]].isna().any().any():
        raise _fail(csv, "spot positions contain empty or non-numeric values")
    scale = 1.0
    if units == "um":
        if pixel_size_um is None:
            raise _fail(csv, "spot positions in microns need the pixel size (pixel_size_um)")
        scale = 1.0 / positive("pixel_size_um", pixel_size_um, csv)
    elif units != "px":
        raise _fail(csv, f"spot units must be 'px' or 'um', got {units!r}")
    out = pd.DataFrame(
        {
            "frame": df["FRAME"].astype(np.int64).to_numpy(),
            "x": df["POSITION_X"].to_numpy(dtype=float) * scale,
            "y": df["POSITION_Y"].to_numpy(dtype=float) * scale,
            "track_id": df["TRACK_ID"].fillna(-1).astype(np.int64).to_numpy(),
            "spot_id": df["ID"].astype(np.int64).to_numpy(),
        }
    )
    return out.sort_values(["frame", "spot_id"], kind="stable").reset_index(drop=True)


def _open_deepcycle(path: Path, allow_8bit: bool, spots_csv: Path | None, spot_units: str, pixel_size_um: float | None) -> Movie:
    names = [d for d in DEEPCYCLE_FOLDERS if (path / d).is_dir()]
    per_channel: dict[str, dict[int, Path]] = {}
    for name in names:
        files = _tiff_files(path / name)
        if not files:
            raise _fail(path / name, "empty movie: the channel folder holds no .tif/.tiff files")
        by_frame: dict[int, Path] = {}
        for f in files:
            t = _frame_number(f)
            if t in by_frame:
                raise _fail(f, f"frame T{t} appears twice (also {by_frame[t].name})")
            by_frame[t] = f
        _check_consecutive(path / name, by_frame)
        per_channel[name] = by_frame
    frames = sorted(per_channel[names[0]])
    for name in names[1:]:
        if sorted(per_channel[name]) != frames:
            diff = sorted(set(frames) ^ set(per_channel[name]))[:5]
            raise _fail(path / name, f"frame numbers differ from {names[0]}/ (e.g. T{diff})")
    first = None
    for name in names:
        for t in frames:
            f = per_channel[name][t]
            shape, dt = _tiff_header(f)
            _check_dtype(f, dt, allow_8bit)
            if len(shape) != 2:
                raise _fail(f, f"expected one 2-D 16-bit image per file, got shape {shape}")
            if first is None:
                first = (shape, dt, f)
            elif shape != first[0]:
                raise _fail(f, f"frames of different shapes: {shape} here but {first[0]} in {first[2]}")
    csv = spots_csv or (path / TRACKMATE_SPOTS if (path / TRACKMATE_SPOTS).exists() else None)
    spots = None
    if csv is not None:
        spots = read_trackmate_spots(Path(csv), pixel_size_um, spot_units)
        # TrackMate counts frames from 0; the files may start at T001, so frame = position in the list
        if spots["frame"].max() >= len(frames) or spots["frame"].min() < 0:
            raise _fail(csv, f"spot frames {spots['frame'].min()}..{spots['frame'].max()} outside the movie's {len(frames)} frames")
    return Movie(
        source=path,
        channel_names=names,
        n_frames=len(frames),
        shape=first[0],
        dtype=np.dtype(first[1]),
        frame_interval_min=None,
        pixel_size_um=None,
        _read=lambda t, c: _read_tiff(per_channel[names[c]][frames[t]]),
        spots=spots,
    )


# ------------------------------------------------------------------------------------------------
def open_movie(
    path: str | Path,
    *,
    axes: str | None = None,
    allow_8bit: bool = False,
    spots_csv: str | Path | None = None,
    spot_units: str = "px",
    pixel_size_um: float | None = None,
) -> Movie:
    """Open any supported movie lazily; see the module docstring for the layouts.

    ``axes`` (e.g. ``'TCYX'``) is needed only where the file does not say (plain TIFF); where it
    does (OME), a different ``axes`` is an error. ``spots_csv`` gives a TrackMate spot table whose
    spots and tracks replace detection (found automatically in the DeepCycle layout).
    """
    path = Path(path)
    pixel_size_um = positive("pixel_size_um", pixel_size_um, path)
    if not path.exists():
        raise _fail(path, "no such file or folder")
    if path.is_dir():
        if (path / "zarr.json").exists() or (path / ".zattrs").exists() or (path / ".zgroup").exists():
            movie = _open_ome_zarr(path, axes, allow_8bit)
        elif is_deepcycle_layout(path):
            return _open_deepcycle(path, allow_8bit, Path(spots_csv) if spots_csv else None, spot_units, pixel_size_um)
        else:
            movie = _open_frame_folder(path, axes, allow_8bit)
    elif path.suffix.lower() in TIFF_SUFFIXES:
        movie = _open_tiff_stack(path, axes, allow_8bit)
    else:
        raise _fail(path, "unknown movie format: expected a .tif/.tiff file, an OME-Zarr folder or a folder of TIFFs")
    if spots_csv is not None:
        if movie.missing_frames:  # TrackMate numbers the frames it was given: with a gap, by position
            raise _fail(path, f"frame(s) {list(movie.missing_frames)[:5]} missing from the numbering, with a spot "
                              f"table {spots_csv}: its FRAME column cannot be matched to the files unambiguously; "
                              "give the tracks of a gap-free folder, or let ingest detect and track the nuclei")
        px = pixel_size_um if pixel_size_um is not None else movie.pixel_size_um
        movie.spots = read_trackmate_spots(Path(spots_csv), px, spot_units)
    return movie
