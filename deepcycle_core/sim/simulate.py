"""The virtual microscope: a FUCCI time-lapse of a growing epithelial population, with ground truth.

Why: no real data can be fetched on a fresh machine, and the paper never had the true cycle position
of a cell. This stage films a simulated population the way the paper filmed MDCKII-FUCCI cells
(Hoechst + brightfield + two FUCCI reporters, a frame every 10 min) and writes the same cell store that
movie ingestion writes, plus the truth the paper lacked.

The model, in the order it is computed:

* **Population** (per field of view, sequential in time). Founders get ages from the steady-state age
  density of an exponentially growing population, ``p(a) = 2 ln2 · 2^-a``; every cell has its own
  log-normal cycle length (mean 27 h, sd 3 h), daughters' lengths are correlated with the mother's
  (and sisters' with each other). Phases: G1 ≈ 37 %, S ≈ 33 %, G2 the rest, M ≈ 1 h (≈ 4 %).
  Cells migrate slowly (persistent random walk, halted in mitosis), repel each other on contact
  (crowding) and are confined to a dish region a little larger than the imaged field, so cells enter
  and leave the field. Division places two daughters along the spindle axis where the telophase
  nuclei were; they carry the mother's track id as ``parent_track_id``.
* **Reporters**. FUCCI red (Cdt1) rises in G1 (logistic, centre ≈ 0.45 of G1), peaks at G1/S and is
  degraded within ≈ 1 h of S onset; FUCCI green (Geminin) switches on ≈ 0.8 h before G1/S, accumulates
  through S/G2 to a maximum at M and is degraded at anaphase. Each cell has its own expression level
  (log-normal, CV 30 %), inherited with correlation by its daughters.
* **Hoechst**. DNA content 1 (2N) in G1, linear to 2 (4N) through S; nuclear area grows through
  interphase; texture: dark nucleoli (G1 most), fine speckle (S), granular condensed chromatin in
  prophase, a bright bar at metaphase, two bars in anaphase, two small compact nuclei in telophase that
  become the (compact, expanding) early-G1 daughters. Per-cell staining varies (``stain_cv``), the stain
  bleaches frame by frame.
* **Brightfield**. A flat textured cell with a faint dark edge, spreading with age; mitotic rounding
  with a bright halo; two rounded daughters at cytokinesis; neighbours overlap; per-frame defocus (blur)
  and illumination drift (gain and a slowly turning gradient).
* **Camera**. Background, vignetting, Poisson–Gaussian noise (shot noise in its Gaussian form, exact in
  the photon counts used here, plus read noise), offset, 16-bit clipping.

Outputs. The cell store (channels ``hoechst``/nuclear and ``brightfield``/brightfield): one 48 x 48
uint16 crop per nucleus per frame, ``img[round(y)-24 : round(y)+24, round(x)-24 : round(x)+24]`` of the
field (x = column, y = row, pixel centres at integers); nuclei closer than 24 px to the field edge are
dropped. ``birth_frame`` is the first frame of a daughter track, ``division_frame`` the last frame of a
mother (its daughters appear in the next frame), both ``-1`` when outside the movie; ``full_cycle`` =
both seen. FUCCI columns are :func:`deepcycle_core.data.fucci.measure` on the rendered FUCCI frames and
``class`` is :func:`deepcycle_core.data.fucci.classify` over all cells of the store. With ``movie=True``:
``movie/movie.ome.tif`` next to the store folder (field 0 only; TCYX uint16, channels
:data:`MOVIE_CHANNELS`, OME pixel size in um and time increment in min) and ``movie/truth.parquet``
with :data:`TRUTH_TABLE_COLUMNS`, one row per nucleus whose centre lies inside the field, per frame.

Treatment conditions. A drug is a few more parameters, neutral by default (an untreated preset simulates
byte for byte as before they existed): ``g1_extend``/``s_extend``/``g2_extend`` stretch a phase's
hours (the cycle grows, the other phases keep their hours); ``g1_arrest_frac`` of the cells stop for
good at the restriction point (``g1_arrest_at`` of G1, like a CDK4/6 inhibitor) and ``g2m_block_frac``
stop for good at the end of G2 or, ``g2m_block_in_m`` of them, in metaphase (rounded mitotic cells
pile up); an arrested cell's age stops at its arrest point, so it never divides, and the store's
``true_arrested`` says which cells are held. ``treatment_lead_h`` hours of unfilmed, unrendered
population growth under the drug come before frame 0, so the movie opens on a treated steady state
(founders met the drug at a random age; one already past its arrest point escapes it). Which cells
arrest is drawn from a generator of its own, ``(seed, field, 3)``, only when a knob is away from
neutral. :mod:`deepcycle_core.sim.treatments` names the conditions (``g1_arrest``, ``s_slowdown``,
``g2m_block``) as dose-scaled overrides: ``simulate(..., condition=, strength=)``.

Stain physics. Four knobs of the Hoechst channel make its stain behave like a real widefield one, all
neutral by default (the default store is byte for byte what it was before they existed):
``dna_4n_ratio`` (2.0) is the rendered integrated stain of a 4N nucleus over a 2N one (out-of-focus
light and thicker G2 nuclei give ~1.7-1.9 on a real widefield; the stain follows
``1 + (dna - 1)(ratio - 1)``, ``true_dna`` stays the DNA content); ``hoechst_blur_px`` (0) the sd of
an extra out-of-focus blur of the Hoechst plane (total light kept, spread beyond the nucleus);
``hoechst_full_well_e`` (0: none) the photo-electrons at which a Hoechst pixel saturates (flat at the
top, after the noise); ``hoechst_falloff`` (0) how far the Hoechst excitation falls off towards the
field corners (stain x ``1 - falloff * 2 r^2``, on top of the camera's vignetting). Pass them as
``overrides``.

Crops at detected positions. ``positions="detected"`` cuts each crop where
:func:`deepcycle_core.data.nuclei.detect_nuclei` (``detect_diameter_px``) finds a nucleus in the
rendered Hoechst frame, as a user's ingest would, instead of at the true nucleus: each detection is
matched one to one (Hungarian, within half the diameter) to a true nucleus whose row (lineage, truth)
it takes, FUCCI is measured at the detected position, a detection left over takes its nearest cell's
row with ``detected_matched`` False, and cells the detector misses are not in the store.

Difficulty is a parameter set (:data:`deepcycle_core.sim.params.PRESETS`), never a code path. Every random draw comes from a
generator seeded by ``(seed, field, ...)`` so the output is byte-identical for a seed, whatever the
number of worker processes. Memory is bounded by one field of view: fields are simulated one after
the other and crops stream into the store chunk by chunk.

Where each part lives: the knobs and presets in :mod:`deepcycle_core.sim.params`, the population (the
first bullet above, and each cell's phase and reporter levels) in :mod:`deepcycle_core.sim.population`,
the rendering (reporters, Hoechst, brightfield, camera, crops and FUCCI read-out) in
:mod:`deepcycle_core.sim.render`, the drug conditions in :mod:`deepcycle_core.sim.treatments`. This
module is the stage: :func:`simulate` checks its arguments, records the provenance, runs the fields
one after the other, streams their frames into the store and the movie, and holds the command line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd

from ..data import fucci
from ..data.atomic import atomic_path
from ..data.split import fit_mask
from ..data.store import CHUNK_CRC_KEY, StoreWriter
from ..data.values import positive_float, positive_number
from .params import (FRAME_INTERVAL_MIN, MAX_CELLS_PER_FIELD, PIXEL_SIZE_UM, PRESETS, SIM_VERSION, SimParams,
                     n_frames_for, resolve_params)
from .population import _simulate_population
from .render import _field_jobs, _FrameResult, _render
from .treatments import CONDITIONS, condition_overrides, describe_conditions, resolve_strength

__all__ = [
    "CHANNELS",
    "MOVIE_CHANNELS",
    "MOVIE_NAME",
    "TRUTH_NAME",
    "TRUTH_TABLE_COLUMNS",
    "POSITIONS",
    "movie_dir",
    "simulate",
    "register_cli",
]

CHANNELS: list[tuple[str, str]] = [("hoechst", "nuclear"), ("brightfield", "brightfield")]
MOVIE_CHANNELS: tuple[str, ...] = ("brightfield", "hoechst", "fucci_red", "fucci_green")
MOVIE_NAME = "movie.ome.tif"
TRUTH_NAME = "truth.parquet"
TRUTH_TABLE_COLUMNS = (
    "frame", "track_id", "parent_track_id", "x", "y", "generation",
    "birth_frame", "division_frame", "true_age", "true_phase",
)
#: Where :func:`simulate` cuts the crops: at the true nuclei or at the nuclei the detector finds.
POSITIONS: tuple[str, ...] = ("true", "detected")


#: The columns :func:`_label_classes` reads (FUCCI levels, and the lineage :func:`fit_mask` needs): the
#: store writer hands it only these, so the whole cell table never has to be in memory at once.
_LABEL_COLUMNS: tuple[str, ...] = ("fucci_red", "fucci_green", "track_id", "parent_track_id", "field", "full_cycle")


def _label_classes(cells: pd.DataFrame) -> pd.DataFrame:
    """Apply the FUCCI class rule just before the store is sealed.

    The paper's median splits need every cell's intensities, which only exist after the last frame.
    The gates are fitted on the cells that may be fitted on (not the held-out full-cycle tracks nor
    their mothers and daughters, :func:`deepcycle_core.data.split.fit_mask`) and applied to every cell.
    Gets the :data:`_LABEL_COLUMNS` of every cell and returns them with ``class`` added.
    """
    cells["class"] = fucci.classify(
        cells["fucci_red"].to_numpy(), cells["fucci_green"].to_numpy(), fit=fit_mask(cells)
    ).astype(np.int64)
    return cells


def _same_parameters(out: Path, parameters: dict[str, Any]) -> bool:
    """Whether ``out`` is a sealed store whose provenance records exactly ``parameters`` and that
    carries its chunk checksums (a store sealed before them is written again rather than reused)."""
    try:
        meta = json.loads((out / "meta.json").read_text())
        got = meta["provenance"]["parameters"]
    except (OSError, KeyError, TypeError, ValueError):
        return False
    return json.loads(json.dumps(parameters)) == got and CHUNK_CRC_KEY in meta


def movie_dir(out: str | os.PathLike) -> Path:
    """Where ``simulate(out, movie=True)`` puts the movie: ``<out parent>/movie``."""
    return Path(out).parent / "movie"



def simulate(
    out: str | os.PathLike,
    *,
    cells: int = 100,
    hours: float = 33.3,
    seed: int = 0,
    difficulty: str = "default",
    fields: int = 1,
    movie: bool = False,
    overwrite: bool = False,
    reuse: bool = False,
    progress: bool = True,
    workers: int | None = None,
    overrides: dict[str, Any] | None = None,
    condition: str = "control",
    strength: float | None = None,
    frame_every: int = 1,
    positions: str = "true",
    detect_diameter_px: float = 16.0,
) -> Path:
    """Film a simulated FUCCI population and write its cell store at ``out``; returns ``out``.

    ``cells`` founders in total, shared evenly among ``fields`` fields of view (more fields are added
    so that none holds over :data:`MAX_CELLS_PER_FIELD`); each field is a square sized for the
    preset's founder spacing. ``hours`` of movie at one frame every 10 min. With ``movie=True`` the
    first field is also written as ``<out parent>/movie/movie.ome.tif`` (TCYX uint16; channels
    brightfield, hoechst, fucci_red, fucci_green) with ``truth.parquet`` (one row per nucleus centred
    inside the field per frame). ``workers`` > 1 renders frames in parallel processes (default: up to
    2, one per core); the output is identical whatever the number of workers. ``reuse=True`` returns
    at once when ``out`` already holds a sealed store simulated with exactly these parameters (same
    simulator version, preset values and seed; and the movie, when asked for); otherwise it is
    simulated anew (replacing an outdated store, as with ``overwrite``).

    ``condition`` names a treatment of :data:`CONDITIONS` (:mod:`deepcycle_core.sim.treatments`) at
    ``strength`` (a dose; None: 1.0, 0: untreated); its overrides go on top of the ``difficulty`` preset
    and explicit ``overrides`` win over them. A treated store records ``condition`` and the resolved
    ``strength`` in its provenance parameters; the control's provenance has neither key, so a control
    store's parameters are what they were before conditions existed (plus the neutral treatment knobs).

    ``frame_every`` > 1 keeps only every n-th frame (0, n, 2n, ...) in the store, with its true frame
    number and time: the movie is filmed (and its stains bleach) frame by frame as always, but only a
    sample of frames is analysed, as a screen reads a few time points of a time-lapse. Not with
    ``movie=True``.

    ``positions="detected"`` cuts the crops where the nucleus detector (``detect_diameter_px``) finds
    nuclei in the rendered Hoechst frames, as a user's ingest would, instead of at the true nuclei (see
    the module docstring); such a store records ``positions`` and ``detect_diameter_px`` in its
    provenance parameters and has a bool column ``detected_matched``. Not with ``movie=True``.
    """
    out = Path(out)
    _check_arguments(cells, fields, hours, workers, frame_every, movie)
    detect_diameter_px = _check_positions(positions, detect_diameter_px, movie)
    merged = {**condition_overrides(condition, strength), **(overrides or {})}
    params = resolve_params(difficulty, merged)
    n_frames = n_frames_for(hours)
    fields = max(fields, math.ceil(cells / MAX_CELLS_PER_FIELD))
    if cells < fields:
        raise ValueError(f"{cells} cells cannot fill {fields} fields")
    per_field = [cells // fields + (1 if i < cells % fields else 0) for i in range(fields)]
    mdir = movie_dir(out)
    parameters = {
        "sim_version": SIM_VERSION,
        "cells": int(cells),
        "hours": float(hours),
        "seed": int(seed),
        "difficulty": difficulty if isinstance(difficulty, str) else "custom",
        "fields": int(fields),
        "n_frames": n_frames,
        "overrides": dict(overrides or {}),
        "params": dataclasses.asdict(params),
    }
    if condition != "control":
        parameters["condition"] = condition
        parameters["strength"] = resolve_strength(strength)
    if frame_every > 1:
        parameters["frame_every"] = int(frame_every)
    if positions != "true":
        parameters["positions"] = positions
        parameters["detect_diameter_px"] = detect_diameter_px
    if reuse:
        if _same_parameters(out, parameters) and (not movie or (mdir / MOVIE_NAME).exists()):
            return out
        overwrite = True
    if movie and (mdir / MOVIE_NAME).exists() and not overwrite:
        raise FileExistsError(f"{mdir / MOVIE_NAME}: already exists (pass overwrite=True / --overwrite)")
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out}: already exists (pass overwrite=True / --overwrite to replace it)")
    meta = {
        "frame_interval_min": FRAME_INTERVAL_MIN,
        "pixel_size_um": PIXEL_SIZE_UM,
        "provenance": {"source": "simulate", "parameters": parameters},
    }
    _film(out, meta, overwrite, per_field, n_frames, params, seed, mdir if movie else None, frame_every,
          progress, workers, positions, detect_diameter_px)
    return out


def _check_positions(positions: str, detect_diameter_px: float, movie: bool) -> float:
    """Refuse an unknown crop placement, a bad detector diameter or detected crops with a movie."""
    if positions not in POSITIONS:
        raise ValueError(f"positions must be one of {list(POSITIONS)}, got {positions!r}")
    d = positive_number("detect_diameter_px", detect_diameter_px)
    if movie and positions != "true":
        raise ValueError("movie=True cuts the crops at the true nuclei: positions must be 'true'")
    return float(d)


def _check_arguments(cells: int, fields: int, hours: float, workers: int | None, frame_every: int,
                     movie: bool) -> None:
    """Refuse arguments that would simulate nothing or something other than asked, before any work."""
    if cells < 1:
        raise ValueError(f"cells must be >= 1, got {cells}")
    if fields < 1:
        raise ValueError(f"fields must be >= 1, got {fields}")
    if isinstance(hours, bool) or not isinstance(hours, (int, float, np.number)) or not math.isfinite(hours) or hours <= 0:
        raise ValueError(f"hours must be a positive, finite number, got {hours!r}")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1 (or None: up to 2), got {workers}")
    if isinstance(frame_every, bool) or not isinstance(frame_every, (int, np.integer)) or frame_every < 1:
        raise ValueError(f"frame_every must be an integer >= 1, got {frame_every!r}")
    if movie and frame_every > 1:
        raise ValueError("movie=True writes every frame: frame_every must be 1")


def _film(out: Path, meta: dict[str, Any], overwrite: bool, per_field: list[int], n_frames: int, params: SimParams,
          seed: int, mdir: Path | None, frame_every: int, progress: bool, workers: int | None,
          positions: str = "true", detect_diameter_px: float = 16.0) -> None:
    """Simulate and render the fields one after the other, streaming their crops into the store at ``out``.

    ``mdir``: where field 0 is also written as the movie (None: no movie). Each field's population is
    drawn from ``(seed, field, 0)`` (treatment: ``(seed, field, 3)``) before any of its frames is
    rendered, so the output is the same whatever the number of ``workers``.
    """
    fields = len(per_field)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(range(0, n_frames, frame_every)) * fields, desc="simulate", unit="frame", file=sys.stderr)
    if workers is None:
        workers = min(2, os.cpu_count() or 1)
    pool = ProcessPoolExecutor(max_workers=workers) if workers > 1 else None
    frames_rows: list[dict[str, Any]] = []
    track_offset = 0
    try:
        with StoreWriter(out, channels=CHANNELS, meta=meta, overwrite=overwrite,
                         finalise_cells=_label_classes, finalise_columns=_LABEL_COLUMNS) as writer:
            for field in range(fields):
                fld = _simulate_population(per_field[field], n_frames, params,
                                           np.random.default_rng([seed, field, 0]),
                                           np.random.default_rng([seed, field, 3]))
                want_movie = mdir is not None and field == 0
                jobs = _field_jobs(field, fld, track_offset, seed, params, n_frames, want_movie, frame_every,
                                   positions, detect_diameter_px)
                track_offset += len(fld.tracks)
                results = pool.map(_render, jobs, chunksize=4) if pool else map(_render, jobs)

                def consume(res: _FrameResult) -> None:
                    if len(res.crops):
                        writer.append(res.crops, res.rows)
                    frames_rows.append({"field": res.field, "frame": res.frame, **res.stats})
                    if bar is not None:
                        bar.update(1)

                if want_movie:
                    _write_movie(mdir, fld.side, n_frames, results, consume)
                else:
                    for res in results:
                        consume(res)
            writer.set_frames(pd.DataFrame(frames_rows))
    finally:
        if pool is not None:
            pool.shutdown()
        if bar is not None:
            bar.close()


def _write_movie(mdir: Path, side: int, n_frames: int, results: Iterator[_FrameResult],
                 consume: Callable[[_FrameResult], None]) -> None:
    """Stream one field into an OME-TIFF (TCYX) and its truth table, under temporary names."""
    import tifffile

    mdir.mkdir(parents=True, exist_ok=True)
    truths: list[pd.DataFrame] = []

    def pages() -> Iterator[np.ndarray]:
        for res in results:
            consume(res)
            truths.append(res.truth)
            for plane in res.images:
                yield plane

    # the inner block leaves first: the movie is renamed onto its name, then the truth table
    with atomic_path(mdir / TRUTH_NAME) as tmp_truth, atomic_path(mdir / MOVIE_NAME) as tmp_tif:
        with tifffile.TiffWriter(tmp_tif, bigtiff=True, ome=True) as tw:
            tw.write(
                pages(),
                shape=(n_frames, len(MOVIE_CHANNELS), side, side),
                dtype=np.uint16,
                photometric="minisblack",
                metadata={
                    "axes": "TCYX",
                    "Channel": {"Name": list(MOVIE_CHANNELS)},
                    "PhysicalSizeX": PIXEL_SIZE_UM,
                    "PhysicalSizeXUnit": "µm",
                    "PhysicalSizeY": PIXEL_SIZE_UM,
                    "PhysicalSizeYUnit": "µm",
                    "TimeIncrement": FRAME_INTERVAL_MIN,
                    "TimeIncrementUnit": "min",
                },
            )
        truth = pd.concat(truths, ignore_index=True)[list(TRUTH_TABLE_COLUMNS)]
        truth.to_parquet(tmp_truth, index=False)


# ---------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    from ..__main__ import add_command

    p = add_command(
        subparsers, "simulate",
        description="Film the virtual microscope into a cell store, optionally under a drug condition.",
        epilog="conditions (--condition NAME, dose --strength X; 1.0 nominal, 0 untreated):\n"
        + describe_conditions(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", required=True, help="cell store folder to create (e.g. data/runs/default/store)")
    p.add_argument("--cells", type=int, default=100, help="founder cells in total (default 100)")
    p.add_argument("--hours", type=float, default=33.3, help="movie length in hours (default 33.3 = 200 frames)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--difficulty", choices=sorted(PRESETS), default="default")
    p.add_argument("--condition", choices=list(CONDITIONS), default="control",
                   help="drug / treatment condition on top of the preset (default control; listed below)")
    p.add_argument("--strength", type=float, default=None,
                   help="the condition's dose (default 1.0; 0 = untreated; ignored for control)")
    p.add_argument("--fields", type=int, default=1, help="fields of view (default 1)")
    p.add_argument("--movie", action="store_true", help="also write <out parent>/movie/movie.ome.tif + truth.parquet")
    p.add_argument("--workers", type=int, default=None, help="render processes (default: up to 2; output identical)")
    p.add_argument("--positions", choices=list(POSITIONS), default="true",
                   help="cut the crops at the true nuclei (default) or where the detector finds nuclei")
    p.add_argument("--detect-diameter-px", type=positive_float, default=16.0,
                   help="the detector's nucleus diameter in px with --positions detected (default 16)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing store / movie")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cli_simulate)


def _cli_simulate(args: argparse.Namespace) -> int:
    try:
        path = simulate(args.out, cells=args.cells, hours=args.hours, seed=args.seed, difficulty=args.difficulty,
                        fields=args.fields, movie=args.movie, overwrite=args.overwrite, progress=not args.quiet,
                        workers=args.workers, condition=args.condition, strength=args.strength,
                        positions=args.positions, detect_diameter_px=args.detect_diameter_px)
    except FileExistsError as exc:
        raise ValueError(str(exc)) from exc
    from ..data.store import open_store

    st = open_store(path)
    c = st.cells
    print(f"wrote {path}: {st.n_cells} crops, {c['track_id'].nunique()} tracks, "
          f"{c.loc[c['full_cycle'], 'track_id'].nunique()} full-cycle tracks")
    return 0
