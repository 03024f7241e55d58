"""Your own movies -> the cell store: nuclei, tracks with divisions, crops, FUCCI classes.

The original needed Fiji/TrackMate and manual curation before any Python ran. Here one call takes a
raw time-lapse to the same cell store the simulator writes, so every later chapter runs unchanged
on real data:

1. open the movie lazily (:mod:`deepcycle_core.movies.readers`; OME-TIFF, TIFF, frame folders, OME-Zarr,
   the original ``BF/ Cy3/ DAPI/ GFP/`` layout);
2. pass 1, frame by frame: find nuclei in the nuclear channel (:func:`detect_track.detect_nuclei`;
   or take a TrackMate spot table) and read the FUCCI reporters (:mod:`deepcycle_core.data.fucci`);
3. link the spots into tracks with divisions (:func:`detect_track.track_spots`, laptrack);
4. the 4 FUCCI classes from median splits (the paper's rule), gated on the non-held-out cells;
5. pass 2, frame by frame: 48 x 48 crops of the network channels around every nucleus not too close
   to the border, plus the per-frame median/std the network normalises with, streamed into a
   :class:`~deepcycle_core.data.store.StoreWriter` (atomic: any error leaves no store behind).

Memory is bounded by one frame plus the spot table, whatever the movie's length.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ..data import fucci
from .detect_track import MatchReport, detect_nuclei, match_truth, track_spots
from .readers import DEEPCYCLE_FOLDERS, Movie, MovieError, is_deepcycle_layout, open_movie, positive
from ..data.split import fit_mask
from ..data.store import CROP_SIZE, StoreError, StoreWriter
from ..data.values import positive_number, whole_number

__all__ = [
    "ROLES",
    "DEFAULT_CHANNELS",
    "DEFAULT_DIAMETER_PX",
    "parse_channels",
    "crop_at",
    "inside",
    "ingest",
    "match_store",
    "register_cli",
]

#: Channel roles ingest understands; the first two become network channels of the store.
ROLES = ("nuclear", "brightfield", "fucci_red", "fucci_green")
#: Channel names looked for when none are given (the simulator's names).
DEFAULT_CHANNELS = {"nuclear": "hoechst", "brightfield": "brightfield", "fucci_red": "fucci_red", "fucci_green": "fucci_green"}
DEFAULT_DIAMETER_PX = 16.0
_HALF = CROP_SIZE // 2


def parse_channels(spec: str | Mapping[str, str | int] | None) -> dict[str, str | int] | None:
    """``'nuclear=hoechst,brightfield=1'`` or a mapping -> {role: name or index}; unknown roles fail."""
    if spec is None:
        return None
    if isinstance(spec, str):
        pairs: dict[str, str | int] = {}
        for item in filter(None, (s.strip() for s in spec.split(","))):
            if "=" not in item:
                raise ValueError(f"channel spec {item!r} must look like role=name (e.g. nuclear=hoechst)")
            role, name = (s.strip() for s in item.split("=", 1))
            pairs[role] = int(name) if name.isdigit() else name
        spec = pairs
    out = dict(spec)
    unknown = [r for r in out if r not in ROLES]
    if unknown:
        raise ValueError(f"unknown channel role(s) {unknown}; roles are {list(ROLES)}")
    if "nuclear" not in out:
        raise ValueError("the channel map needs a 'nuclear' channel (the stain nuclei are found in)")
    if ("fucci_red" in out) != ("fucci_green" in out):
        raise ValueError("give both fucci_red and fucci_green, or neither")
    return out


def _resolve_channels(movie: Movie, channels: dict[str, str | int] | None) -> dict[str, int]:
    """{role: channel index}; defaults use the simulator's names, or the DeepCycle folders."""
    if channels is None:
        if is_deepcycle_layout(movie.source):
            wanted = {role: name for name, role in DEEPCYCLE_FOLDERS.items() if name in movie.channel_names}
        else:
            lowered = [n.lower() for n in movie.channel_names]
            wanted = {r: n for r, n in DEFAULT_CHANNELS.items() if n in lowered}
            if "nuclear" not in wanted:
                raise MovieError(
                    f"{movie.source}: no channel named {DEFAULT_CHANNELS['nuclear']!r} among {movie.channel_names}; "
                    "say which is which, e.g. channels='nuclear=0,brightfield=1,fucci_red=2,fucci_green=3'"
                )
        if ("fucci_red" in wanted) != ("fucci_green" in wanted):
            wanted.pop("fucci_red", None)
            wanted.pop("fucci_green", None)
        channels = parse_channels(wanted)
    return {role: movie.channel_index(name) for role, name in channels.items()}


def crop_at(image: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """48 x 48 crops centred on (round(x), round(y)); every centre must lie >= 24 px from the border."""
    cx = np.rint(xs).astype(np.int64)
    cy = np.rint(ys).astype(np.int64)
    out = np.empty((len(cx), CROP_SIZE, CROP_SIZE), dtype=image.dtype)
    for i in range(len(cx)):
        out[i] = image[cy[i] - _HALF : cy[i] + _HALF, cx[i] - _HALF : cx[i] + _HALF]
    return out


def inside(xs: np.ndarray, ys: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """True where a whole 48 x 48 crop fits around the nucleus."""
    cx = np.rint(xs).astype(np.int64)
    cy = np.rint(ys).astype(np.int64)
    h, w = shape
    return (cx - _HALF >= 0) & (cx + _HALF <= w) & (cy - _HALF >= 0) & (cy + _HALF <= h)


def _progress(iterable: Any, enabled: bool, desc: str, total: int) -> Any:
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total)


def _lineage_from_given_tracks(spots: pd.DataFrame, max_step_px: float, max_division_px: float) -> pd.DataFrame:
    """Lineage columns for spots whose tracks are given (TrackMate): keep each track, and split the
    ones that branch (a TrackMate track holds a whole lineage tree) into mother and daughters."""
    parts = []
    next_id = 0
    for tid, grp in spots.groupby("track_id", sort=True):
        if tid < 0:
            lin = pd.DataFrame(
                {"track_id": -1, "parent_track_id": -1, "birth_frame": -1, "division_frame": -1, "full_cycle": False},
                index=grp.index,
            )
        elif grp["frame"].duplicated().any():
            lin = track_spots(grp.reset_index(drop=True), max_step_px, max_division_px, min_daughter_frames=1)
            lin.index = grp.index
            ok = lin["track_id"] >= 0
            lin.loc[ok, "track_id"] += next_id
            lin.loc[lin["parent_track_id"] >= 0, "parent_track_id"] += next_id
            next_id = int(lin["track_id"].max()) + 1
        else:
            lin = pd.DataFrame(
                {"track_id": next_id, "parent_track_id": -1, "birth_frame": -1, "division_frame": -1, "full_cycle": False},
                index=grp.index,
            )
            next_id += 1
        parts.append(lin)
    return pd.concat(parts).loc[spots.index]


def _interval_and_pixel(mov: Movie, frame_interval_min: float | None, pixel_size_um: float | None) -> tuple[float, float]:
    """The frame interval (min) and pixel size (um): as given, else the movie's metadata, which must be valid."""
    interval = frame_interval_min if frame_interval_min is not None else mov.frame_interval_min
    px = pixel_size_um if pixel_size_um is not None else mov.pixel_size_um
    if interval is None:
        raise MovieError(f"{mov.source}: frame interval unknown (no metadata); pass frame_interval_min / --frame-interval-min")
    if px is None:
        raise MovieError(f"{mov.source}: pixel size unknown (no metadata); pass pixel_size_um / --pixel-size-um")
    for what, value, flag in (("frame interval", interval, "frame_interval_min / --frame-interval-min"),
                              ("pixel size", px, "pixel_size_um / --pixel-size-um")):
        if not (np.isfinite(value) and value > 0):  # only metadata gets here: arguments were checked above
            raise MovieError(f"{mov.source}: the movie's metadata gives the {what} as {value!r}; pass {flag}")
    return interval, px


def _check_time_lapse(mov: Movie, n_frames: int, max_frames: int | None) -> None:
    """At least two frames with an image: the clock is read along tracks, and one frame has none."""
    present = [t for t in range(n_frames) if t not in mov.missing_frames]
    if len(present) < 2:
        which = f"max_frames={max_frames} leaves" if max_frames is not None and mov.n_frames > n_frames else "the movie has"
        raise MovieError(
            f"{mov.source}: {which} {len(present)} frame(s) with an image: not a time-lapse. A cell store needs "
            "cells followed over at least two frames (tracks, divisions, the time of every crop); ingest the "
            "whole movie, or check its axes (a T axis read as Z or C gives one frame)")


def _spots_with_lineage(
    mov: Movie, roles: dict[str, int], n_frames: int, diam: float, detect_threshold: float, step: float, div: float,
    gap: float, gap_frames: int, progress: bool,
) -> pd.DataFrame:
    """Every spot of the first ``n_frames`` (given, or detected on the nuclear channel) with its lineage columns."""
    if mov.spots is not None:
        spots = mov.spots[mov.spots["frame"] < n_frames].reset_index(drop=True)
        lineage = _lineage_from_given_tracks(spots, step, div)
    else:
        found = []
        for t in _progress(range(n_frames), progress, "detect", n_frames):
            if t in mov.missing_frames:  # a gap: no image, no nuclei; the tracker bridges it (gap_frames)
                continue
            yx = detect_nuclei(mov.frame(t, roles["nuclear"]), diam, threshold=detect_threshold)
            found.append(pd.DataFrame({"frame": t, "x": yx[:, 1], "y": yx[:, 0]}))
        spots = pd.concat(found, ignore_index=True)
        if spots.empty:
            raise MovieError(f"{mov.source}: no nuclei found in {n_frames} frame(s) (check the nuclear channel and nucleus diameter)")
        lineage = track_spots(spots, step, div, gap_frames=gap_frames, max_gap_px=gap)
    return pd.concat([spots[["frame", "x", "y"]].reset_index(drop=True), lineage.reset_index(drop=True)], axis=1)


def _fucci_of_spots(
    mov: Movie, roles: dict[str, int], spots: pd.DataFrame, by_frame: dict[int, np.ndarray], progress: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(red, green, class) of every spot; NaN and -1 when the movie has no FUCCI channels."""
    red = np.full(len(spots), np.nan)
    green = np.full(len(spots), np.nan)
    if "fucci_red" not in roles:
        return red, green, np.full(len(spots), -1, np.int64)
    for t in _progress(sorted(by_frame), progress, "fucci", len(by_frame)):
        idx = by_frame[t]
        xs, ys = spots.loc[idx, "x"].to_numpy(), spots.loc[idx, "y"].to_numpy()
        red[idx] = fucci.measure(mov.frame(t, roles["fucci_red"]), xs, ys)
        green[idx] = fucci.measure(mov.frame(t, roles["fucci_green"]), xs, ys)
    # gates fitted on the cells that are neither held-out full-cycle tracks nor their relatives
    return red, green, fucci.classify(red, green, fit=fit_mask(spots)).astype(np.int64)


def _write_crops(
    out: Path, mov: Movie, roles: dict[str, int], spots: pd.DataFrame, by_frame: dict[int, np.ndarray], n_frames: int,
    field: int, meta: dict[str, Any], overwrite: bool, progress: bool,
) -> None:
    """The store: every spot's nuclear and brightfield crops and cell row, and each frame's statistics."""
    net_roles = [r for r in ("nuclear", "brightfield") if r in roles]
    net = [(mov.channel_names[roles[r]], r) for r in net_roles]
    cols = ["track_id", "parent_track_id", "frame", "time_h", "x", "y", "field", "birth_frame", "division_frame", "full_cycle", "fucci_red", "fucci_green", "class"]
    stats = []
    with StoreWriter(out, channels=net, meta=meta, overwrite=overwrite) as writer:
        for t in _progress(range(n_frames), progress, "crops", n_frames):
            if t in mov.missing_frames:  # a gap: no image, so no cells and no statistics
                continue
            images = [mov.frame(t, roles[r]) for r in net_roles]
            row = {"field": int(field), "frame": t}
            for (name, _), img in zip(net, images):
                row[f"{name}_median"] = float(np.median(img))
                row[f"{name}_std"] = float(img.std())
            stats.append(row)
            idx = by_frame.get(t)
            if idx is None:
                continue
            xs, ys = spots.loc[idx, "x"].to_numpy(), spots.loc[idx, "y"].to_numpy()
            crops = np.stack([crop_at(img, xs, ys) for img in images], axis=1)
            writer.append(crops.astype(np.uint16, copy=False), spots.loc[idx, cols])
        writer.set_frames(pd.DataFrame(stats))


def ingest(
    movie: str | os.PathLike,
    out: str | os.PathLike,
    *,
    channels: str | Mapping[str, str | int] | None = None,
    axes: str | None = None,
    frame_interval_min: float | None = None,
    pixel_size_um: float | None = None,
    nucleus_diameter_px: float | None = None,
    nucleus_diameter_um: float | None = None,
    detect_threshold: float = 3.0,
    max_step_px: float | None = None,
    max_division_px: float | None = None,
    max_gap_px: float | None = None,
    gap_frames: int = 4,
    spots_csv: str | os.PathLike | None = None,
    spot_units: str = "px",
    allow_8bit: bool = False,
    field: int = 0,
    max_frames: int | None = None,
    spots_out: str | os.PathLike | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Ingest a time-lapse movie into a cell store at ``out``; returns ``out``.

    ``channels`` maps roles (nuclear, brightfield, fucci_red, fucci_green) to channel names or
    indices (a dict or ``'nuclear=hoechst,brightfield=1'``); FUCCI is optional (then no classes).
    ``frame_interval_min`` and ``pixel_size_um`` override the metadata and are required where the
    movie has none. The nucleus diameter (pixels, or microns with a known pixel size; default 16 px)
    sets the detector's scale and, unless given, the tracker's largest step (0.5 x diameter),
    largest mother-daughter distance (0.75 x diameter) and largest move across a gap of up to
    ``gap_frames`` missed frames (1.25 x diameter); these defaults were set on the simulator's
    default movie (nuclei move ~1 px per frame, daughters appear ~8 px from the mother). ``max_frames`` ingests only the first frames.
    ``spots_out`` also saves every spot with its lineage, border spots included (parquet), for
    scoring against a ground truth or inspecting the tracks. Nothing is written unless the whole
    movie ingests cleanly.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise StoreError(f"{out}: already exists (pass overwrite=True / --overwrite to replace it)")
    # None means "not given"; 0, negative or non-finite values are errors, never "use the default"
    frame_interval_min = positive("frame_interval_min", frame_interval_min)
    pixel_size_um = positive("pixel_size_um", pixel_size_um)
    nucleus_diameter_px = positive("nucleus_diameter_px", nucleus_diameter_px)
    nucleus_diameter_um = positive("nucleus_diameter_um", nucleus_diameter_um)
    max_step_px = positive("max_step_px", max_step_px)
    max_division_px = positive("max_division_px", max_division_px)
    max_gap_px = positive("max_gap_px", max_gap_px)
    detect_threshold = positive_number("detect_threshold", detect_threshold)
    gap_frames = whole_number("gap_frames", gap_frames, minimum=0)
    if max_frames is not None and (isinstance(max_frames, bool) or int(max_frames) != max_frames or max_frames < 1):
        raise ValueError(f"max_frames must be a whole number >= 1 (or None for all frames), got {max_frames!r}")
    chan_spec = parse_channels(channels)
    with open_movie(movie, axes=axes, allow_8bit=allow_8bit, spots_csv=spots_csv, spot_units=spot_units, pixel_size_um=pixel_size_um) as mov:
        roles = _resolve_channels(mov, chan_spec)
        interval, px = _interval_and_pixel(mov, frame_interval_min, pixel_size_um)
        if nucleus_diameter_px is None:
            nucleus_diameter_px = nucleus_diameter_um / px if nucleus_diameter_um is not None else DEFAULT_DIAMETER_PX
        diam = float(nucleus_diameter_px)
        step = max_step_px if max_step_px is not None else 0.5 * diam
        div = max_division_px if max_division_px is not None else 0.75 * diam
        gap = max_gap_px if max_gap_px is not None else 1.25 * diam
        n_frames = mov.n_frames if max_frames is None else min(mov.n_frames, int(max_frames))
        _check_time_lapse(mov, n_frames, max_frames)
        if mov.shape[0] < CROP_SIZE or mov.shape[1] < CROP_SIZE:
            raise MovieError(f"{mov.source}: frames of {mov.shape} are smaller than one {CROP_SIZE}x{CROP_SIZE} crop")

        # -- pass 1: spots and FUCCI ---------------------------------------------------------
        spots = _spots_with_lineage(mov, roles, n_frames, diam, detect_threshold, step, div, gap, gap_frames, progress)
        all_spots = spots
        keep = inside(spots["x"].to_numpy(), spots["y"].to_numpy(), mov.shape)
        n_border = int((~keep).sum())
        spots = spots[keep].reset_index(drop=True)
        if spots.empty:
            raise MovieError(f"{mov.source}: every nucleus lies within {_HALF} px of the border; no crop fits")
        by_frame = {int(f): g.index.to_numpy() for f, g in spots.groupby("frame")}
        spots["fucci_red"], spots["fucci_green"], spots["class"] = _fucci_of_spots(mov, roles, spots, by_frame, progress)
        spots["time_h"] = spots["frame"] * float(interval) / 60.0
        spots["field"] = int(field)

        # -- pass 2: crops and frame statistics into the store --------------------------------
        meta: dict[str, Any] = {
            "frame_interval_min": float(interval), "pixel_size_um": float(px),
            "provenance": {
                "source": "ingest",
                "movie": Path(mov.source).name,
                "parameters": {
                    "channels": {r: mov.channel_names[i] for r, i in roles.items()},
                    "nucleus_diameter_px": diam, "detect_threshold": float(detect_threshold), "max_step_px": step,
                    "max_division_px": div, "max_gap_px": gap, "gap_frames": int(gap_frames),
                    "given_spots": mov.spots is not None, "n_frames": n_frames,
                },
            },
            "ingest": {"n_spots": int(keep.size), "n_border_dropped": n_border, "n_cells": int(len(spots)),
                       "frame_shape": [int(mov.shape[0]), int(mov.shape[1])],
                       "missing_frames": [int(t) for t in mov.missing_frames if t < n_frames]},
        }
        _write_crops(out, mov, roles, spots, by_frame, n_frames, field, meta, overwrite, progress)
    if spots_out is not None:
        all_spots.assign(in_store=keep).to_parquet(spots_out, index=False)
    return out


def match_store(
    store: str | os.PathLike,
    truth: str | os.PathLike | pd.DataFrame,
    spots: str | os.PathLike | pd.DataFrame | None = None,
    max_dist_px: float = 5.0,
) -> MatchReport:
    """Score an ingestion against a ground-truth table (e.g. the simulator's ``truth.parquet``).

    Only the region where crops fit (24 px from the border) is scored, since the store holds no
    cell outside it. With ``spots`` (the ``spots_out`` table of :func:`ingest`) tracks and
    divisions are judged on every spot, so that a daughter starting in the border strip does not
    count as a tracking error; see :func:`detect_track.match_truth` for the figures.
    """
    from ..data.store import open_store

    st = open_store(store)
    tru = pd.read_parquet(truth) if not isinstance(truth, pd.DataFrame) else truth
    shape = st.meta.get("ingest", {}).get("frame_shape")
    if shape is None:
        raise StoreError(f"{st.path}: not written by ingest (no frame_shape in meta.json)")
    frames = set(st.frames["frame"].tolist())
    tru = tru[tru["frame"].isin(frames)]
    det = st.cells if spots is None else (pd.read_parquet(spots) if not isinstance(spots, pd.DataFrame) else spots)
    return match_truth(det, tru, max_dist_px, shape=tuple(shape), margin_px=_HALF)


# ------------------------------------------------------------------------------------------------
# command line
# ------------------------------------------------------------------------------------------------
def register_cli(subparsers: argparse._SubParsersAction) -> None:
    from ..__main__ import add_command
    from ..data.values import non_negative_int, positive_float

    p = add_command(subparsers, "ingest", description=__doc__.splitlines()[0])
    p.add_argument("movie", help="movie file or folder")
    p.add_argument("--out", required=True, help="cell store folder to create")
    p.add_argument("--channels", default=None, help="role=name-or-index list, e.g. nuclear=hoechst,brightfield=brightfield,fucci_red=fucci_red,fucci_green=fucci_green")
    p.add_argument("--axes", default=None, help="axes of a plain TIFF / OME-Zarr without metadata, e.g. TCYX")
    p.add_argument("--frame-interval-min", type=float, default=None)
    p.add_argument("--pixel-size-um", type=float, default=None)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--nucleus-diameter-px", type=float, default=None, help=f"expected nucleus diameter in pixels (default {DEFAULT_DIAMETER_PX})")
    g.add_argument("--nucleus-diameter-um", type=float, default=None, help="expected nucleus diameter in microns")
    p.add_argument("--detect-threshold", type=positive_float, default=3.0, help="LoG peak threshold in background-noise units")
    p.add_argument("--max-step-px", type=float, default=None)
    p.add_argument("--max-division-px", type=float, default=None)
    p.add_argument("--max-gap-px", type=float, default=None)
    p.add_argument("--gap-frames", type=non_negative_int, default=4,
                   help="frames a nucleus may be missed and its track still closed (default 4; 0: no gap closing)")
    p.add_argument("--spots", default=None, help="TrackMate 'Spots in tracks statistics.csv' to use instead of detection")
    p.add_argument("--spot-units", choices=("px", "um"), default="px")
    p.add_argument("--allow-8bit", action="store_true", help="accept 8-bit images (rescaled to 16 bit)")
    p.add_argument("--field", type=int, default=0)
    p.add_argument("--max-frames", type=int, default=None)
    p.add_argument("--spots-out", default=None, help="also save every spot with its lineage (parquet)")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cli_ingest)


def _cli_ingest(args: argparse.Namespace) -> int:
    out = ingest(
        args.movie,
        args.out,
        channels=args.channels,
        axes=args.axes,
        frame_interval_min=args.frame_interval_min,
        pixel_size_um=args.pixel_size_um,
        nucleus_diameter_px=args.nucleus_diameter_px,
        nucleus_diameter_um=args.nucleus_diameter_um,
        detect_threshold=args.detect_threshold,
        max_step_px=args.max_step_px,
        max_division_px=args.max_division_px,
        max_gap_px=args.max_gap_px,
        gap_frames=args.gap_frames,
        spots_csv=args.spots,
        spot_units=args.spot_units,
        allow_8bit=args.allow_8bit,
        field=args.field,
        max_frames=args.max_frames,
        spots_out=args.spots_out,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    from ..data.store import open_store

    store = open_store(out)
    info = store.meta.get("ingest", {})
    print(f"wrote {out}: {store.n_cells} cells, {store.cells['track_id'].nunique()} tracks, "
          f"{int(store.cells.drop_duplicates('track_id')['full_cycle'].sum())} full-cycle tracks, "
          f"{info.get('n_border_dropped', 0)} border spots dropped")
    return 0
