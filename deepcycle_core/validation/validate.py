"""Validation: does the ring tell real time? Evidence from held-out tracks, ground truth and baselines.

The original paper checked a track-averaged curve on 50 tracks that had also chosen the checkpoint and
fitted the ring. Here every number comes from the **held-out** cells only -- all cells of the
full-cycle tracks (born and divided inside the movie), which training, checkpoint selection, the FUCCI
gates and every ring fit never see, nor do their mothers and daughters (``train/split.parquet``,
:mod:`deepcycle_core.data.split`). Each method is a descriptor table that goes through the *same* ring fit
(:mod:`deepcycle_core.clock.trajectory`) on fitting cells (split train/val) and is then read on the
held-out ones:

===================  =================================================================
method               descriptors (``describe/<method>/descriptors.parquet`` unless said otherwise)
===================  =================================================================
deepcycle            the network, both channels (``trajectory/trajectory.parquet`` of the run)
deepcycle_som        the same ring read as the paper did: 30-node ring SOM, node index
bf_only              the network trained on brightfield only (``train/bf_only/best.pt``)
nuclear_only         the network trained on the nuclear stain only (``train/nuclear_only/best.pt``)
nuclear_area         the data chapter's single-feature read-out: nuclear area's rank among the
                     fitting cells, turned into an age by ERA (no ring; nuclei grow with age)
handmade             integrated Hoechst, nuclear area, brightfield texture (:mod:`.baselines`)
pixels_pca           PCA of the normalised raw crops (:mod:`.baselines`)
supervised_features  radial profiles, integrated stain and area per crop (:mod:`.supervised`), and a
                     regressor fitted on the fitting cells with the clock head's own labels (no ring)
ceiling_crops        a reference that uses truth: stain over its frame median and area from the
                     crops and the true mitotic progress, neighbour regression on the fitting cells'
                     true ages (:mod:`.ceiling`; with ``ceiling_hidden``, the exact variables)
ceiling_crops_phase  the same with the exact phase added
oracle_labels        a reference that uses truth: the ``both`` network trained by the reference recipe
                     on the TRUE ages of every non-held-out cell (``make model`` keeps its outputs)
===================  =================================================================

One policy for every row: a ring is oriented (direction, origin) by the FUCCI classes of its fitting
cells, exactly as the trajectory stage orients the network's ring -- ground truth never orients any
ring. A ring that the classes cannot orient is a result ("no ring", metrics NaN), not something to
rescue. A row whose prediction used ground truth anywhere is flagged ``used_truth`` and can never
PASS a target (:func:`~deepcycle_core.validation.scoring.check_targets`).

This stage only READS descriptors: the describe stage (:mod:`deepcycle_core.validation.describe`, ``deepcycle
describe``) makes them into ``describe/<method>/`` with a stamp, and every file read here is checked
against its stamp -- descriptors made from another store, split or network, or for other cells,
are refused, naming the file and the command that refreshes them. Neither this module nor
:mod:`deepcycle_core.validation.scoring` (the metrics, targets and table) imports torch.

Metrics (one row a method, :data:`~deepcycle_core.validation.scoring.METRIC_COLUMNS`, computed by
:func:`deepcycle_core.validation.scoring.score_predictions`): median per-track Spearman of unwrapped pseudotime
against time since birth (tracks seen over >= 80 % of their cycle); Fisher–Lee circular correlation of 2π·pseudotime
with the true position 2π·true_age; circular MAE in hours (pseudotime error times each cell's own cycle
length) and its worst tenth of the true cycle; the hours MAE against true hours since birth (wrapped
at the cell's cycle length, so "just divided" and "about to divide" are neighbours; position x T for
the clock head, the supervised baseline and the ceilings, ERA for the rings and the single feature);
the 80 % intervals' coverage, median width and width-error rank correlation (rows with intervals:
the clock head); the paper's averaged-curve Spearman and Kendall,
both raw (wrapped values averaged, as the original did) and unwrapped (each track unwrapped like the
per-track statistic; :func:`deepcycle_core.clock.metrics.paper_average_curve`).

Outputs in ``run/validate/``: ``table.csv`` (the table), ``tracks.csv`` (per-track correlations),
``phases.csv`` (per-phase errors), ``confusion.csv`` (true phase x phase read off the clock),
``curves.csv`` (the averaged curves behind the paper's statistic, on the table's tracks),
``heldout.parquet`` (every held-out prediction), each written atomically.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..data import fingerprint
from ..data.atomic import write_csv_atomic, write_parquet_atomic
from ..net.reference_card import ReferenceError  # torch-free: the oracle-label reference's refusal
from .ceiling import crop_variable_predictions, hidden_variable_predictions, oracle_label_predictions
from ..net.cycle_targets import CYCLE_COLUMNS
from ..clock.head import clock_positions, clock_predictions, has_cycle_head, judge_clock
from .describe import (
    DESCRIPTOR_BASE,
    cell_selection,
    check_method_descriptors,
    describe_command,
    descriptor_params,
    descriptor_source,
    hard_preset_run,
    load_split,
    split_methods,
    split_without_training,
)
from ..data.runs import RunDir
from .scoring import (
    INTERVAL_COLUMNS,
    METHOD_LABELS,
    METHODS,
    METRIC_COLUMNS,
    MIN_COVERAGE,
    PHASES,
    check_targets,
    format_table,
    phase_breakdown,
    phase_reference,
    score_predictions,
    track_coverage,
)
from ..data.split import FIT_SPLITS
from ..data.store import CellStore, open_store
from ..clock.orientation import TrackTable
from ..clock.trajectory import descriptor_columns, load_ring

__all__ = [
    "CLOCK_METHODS",
    "USES_TRUTH",
    "RingFitError",
    "clock_verdict",
    "doubling_time",
    "fit_descriptor_ring",
    "load_results",
    "method_predictions",
    "read_method_descriptors",
    "register_cli",
    "ring_settings",
    "run_validation",
    "single_feature_predictions",
    "som_view",
    # used by the validation chapter through this module; defined in .describe and .scoring
    "MIN_COVERAGE",
    "PHASES",
    "check_targets",
    "format_table",
    "hard_preset_run",
    "load_split",
    "track_coverage",
]


#: Rows read from a network's cycle head (deepcycle_core.clock.head), not from a ring.
CLOCK_METHODS: tuple[str, ...] = ("deepcycle_clock", "bf_only_clock", "nuclear_only_clock")

#: Rows that use ground truth (a reference, never a method; they never pass a target).
USES_TRUTH: tuple[str, ...] = ("oracle_labels", "ceiling_crops", "ceiling_crops_phase", "ceiling_hidden")


class RingFitError(ValueError):
    """A method's descriptors do not give a ring (too few cells, a class missing or spread everywhere)."""


# ------------------------------------------------------------------------------------------------
# the ring fit of a descriptor table (the same code for the network, ablations and baselines)
# ------------------------------------------------------------------------------------------------
def ring_settings(run: RunDir) -> dict[str, Any]:
    """The trajectory stage's ring settings and doubling time (``trajectory/ring.json``), if present.

    Every method is fitted with the same settings and read in hours with the same T, so the
    comparison isolates the descriptors. A ring.json present is read only once its stamp vouches for
    it (:func:`~deepcycle_core.data.fingerprint.current_ring`): one edited by hand (another T) or left
    from another store, split or network raises
    :class:`~deepcycle_core.data.fingerprint.StaleInputError` naming it.
    """
    if not run.ring.exists():
        return {}
    path = fingerprint.current_ring(run)
    d = json.loads(path.read_text())
    info = d.get("info", {})
    out: dict[str, Any] = {}
    for key in ("whiten", "n_harmonics", "smoothing"):
        if key in info:
            out[key] = info[key]
    if "som" in info and "n_nodes" in info["som"]:
        out["som_nodes"] = int(info["som"]["n_nodes"])
    if d.get("T_hours"):
        out["T_hours"] = float(d["T_hours"])
        out["T_source"] = f"as the trajectory stage: {d.get('T_source', '')}"
    return out


def doubling_time(cells: pd.DataFrame) -> float | None:
    """Doubling time from the store's growth curve, as the trajectory stage computes it (None if none)."""
    from ..data.growth import doubling_time_from_counts

    counts = cells.groupby("time_h").size()
    try:
        return doubling_time_from_counts(counts.index.to_numpy(), counts.to_numpy())
    except ValueError:
        return None


def fit_descriptor_ring(
    descriptors: pd.DataFrame,
    cells: pd.DataFrame,
    fit_ids: np.ndarray,
    *,
    seed: int = 0,
    **ring_kwargs: Any,
) -> pd.DataFrame:
    """The trajectory module's ring, fitted on the rows of ``fit_ids`` only, read on every row.

    ``descriptors`` is ``cell_id`` + numeric columns (any method). The ring is oriented exactly as the
    trajectory stage orients the network's: by the fitting cells' tracks (the movie) when the store
    has them, else by their FUCCI classes -- never by ground truth -- and judged along those tracks
    (``attrs['verdict']``: clock, folded, reversed). A ring that cannot be oriented raises
    :class:`RingFitError`. Returns the trajectory columns (cell_id, x2d, y2d, angle, pseudotime,
    hours, som_node).
    """
    from ..clock import trajectory
    cols = [c for c in descriptors.columns if c != "cell_id" and c not in CYCLE_COLUMNS]
    cid = descriptors["cell_id"].to_numpy(dtype=np.int64)
    X = descriptors[cols].to_numpy(dtype=float)
    fit_mask = np.isin(cid, np.asarray(fit_ids, dtype=np.int64))
    if not fit_mask.any():
        raise ValueError("no fitting cell among the descriptors")
    rows = cells.set_index("cell_id").loc[cid[fit_mask]]
    classes = rows["class"].to_numpy(dtype=np.int64)
    tracks = TrackTable.from_cells(rows.reset_index()) if {"track_id", "frame", "time_h"} <= set(rows.columns) else None
    kw = dict(ring_kwargs)
    T = kw.pop("T_hours", None)
    if T is None:
        T = doubling_time(cells)
    kw.pop("T_source", None)
    try:
        ring = trajectory.fit_ring(X[fit_mask], classes, seed=seed, T_hours=T, tracks=tracks, **kw)
    except ValueError as exc:
        raise RingFitError(str(exc)) from exc
    out = ring.transform(X)
    out.insert(0, "cell_id", cid)
    out.attrs["ring_info"] = ring.info
    out.attrs["verdict"] = ring.verdict
    return out


def som_view(traj: pd.DataFrame, fit_ids: np.ndarray, T_hours: float | None, n_nodes: int = 30) -> pd.DataFrame:
    """The paper's reading of a ring: pseudotime = SOM node, hours by ERA on the node ranks.

    A node covers an arc, so its cells are placed at the node's middle, (k + ½) / n_nodes. ERA hours use
    the mid-rank fraction F of the node among the fitting cells (cells in earlier nodes plus half of
    the node's own), so the discrete clock is not biased by half a node.
    """
    from ..data.growth import era_age_fraction

    node = traj["som_node"].to_numpy(dtype=np.int64)
    ref = node[np.isin(traj["cell_id"].to_numpy(), fit_ids)]
    counts = np.bincount(ref, minlength=n_nodes).astype(float)
    frac = counts / max(counts.sum(), 1.0)
    F = np.cumsum(frac) - frac / 2.0
    out = traj[["cell_id"]].copy()
    out["pseudotime"] = (node + 0.5) / n_nodes
    out["hours"] = T_hours * era_age_fraction(F[node]) if T_hours is not None else np.nan
    return out


def single_feature_predictions(
    values: pd.DataFrame, fit_ids: np.ndarray, eval_ids: np.ndarray, feature: str, T_hours: float | None
) -> pd.DataFrame:
    """The data chapter's single-feature read-out, fitted on ``fit_ids`` only: an evaluated cell's
    position is the fraction F of FITTING cells with a smaller feature value, mapped to an age by the
    steady-state age distribution of a growing population, ``a = -log2(1 - F/2)``; hours = ``a * T``.

    The direction is a biological prior (the feature grows with age: nuclei grow through interphase,
    DNA doubles in S), not fitted on anything; there is no origin to choose.
    """
    from ..data.growth import era_age_fraction

    v = values.set_index("cell_id")[feature]
    ref = np.sort(v.loc[np.asarray(fit_ids, dtype=np.int64)].to_numpy(dtype=float))
    if ref.size == 0 or not np.isfinite(ref).all():
        raise RingFitError(f"{feature}: no finite value among the fitting cells")
    ids = np.asarray(eval_ids, dtype=np.int64)
    x = v.loc[ids].to_numpy(dtype=float)
    F = (np.searchsorted(ref, x, side="left") + np.searchsorted(ref, x, side="right")) / (2.0 * ref.size)
    age = era_age_fraction(np.clip(F, 0.5 / ref.size, 1.0 - 0.5 / ref.size))
    return pd.DataFrame({"cell_id": ids, "pseudotime": np.mod(age, 1.0),
                         "hours": age * T_hours if T_hours is not None else np.nan})


# ------------------------------------------------------------------------------------------------
# reading a method's descriptors and predictions
# ------------------------------------------------------------------------------------------------
def read_method_descriptors(
    method: str,
    run: RunDir,
    model_run: RunDir,
    fit_ids: np.ndarray,
    ids: np.ndarray,
    *,
    pca_components: int = 8,
    pca_pool: int = 3,
    refresh: str | None = None,
    memo: fingerprint.Memo | None = None,
) -> pd.DataFrame:
    """``cell_id`` + descriptor columns of ``method`` on ``run``'s store for ``ids``, read from the file
    :func:`deepcycle_core.validation.describe.descriptor_source` names, after checking its stamp.

    The embed stage's ``embed/descriptors.parquet`` must be current (:func:`fingerprint.check_descriptors`);
    a ``describe/<method>/`` file must have been made from the current store, split and network for
    these very cells (``fit_ids``, ``ids``) and settings -- else FileNotFoundError or
    :class:`~deepcycle_core.data.fingerprint.StaleInputError` naming the file and ``refresh`` (the command that
    remakes it; default: ``deepcycle describe`` for ``method`` with default settings).
    """
    ids = np.union1d(fit_ids, ids)
    path = descriptor_source(method, run, model_run)
    if path is None:
        raise ValueError(f"{method}: reads no descriptors ({run.trajectory_table} holds its ring, or it needs none)")
    if path == run.descriptors:  # the embed stage's, with its own stamp
        fingerprint.check_descriptors(run, memo=memo)  # and the checkpoint they were embedded with
        desc = pd.read_parquet(path)
        desc = desc[["cell_id", *descriptor_columns(desc.columns), *[c for c in CYCLE_COLUMNS if c in desc.columns]]]
        return desc[desc["cell_id"].isin(ids)].reset_index(drop=True)
    base = DESCRIPTOR_BASE.get(method, method)
    params = descriptor_params(base, fit_ids, ids, pca_components=pca_components, pca_pool=pca_pool)
    command = refresh or describe_command(model_run, base)
    check_method_descriptors(base, run, model_run, path, params=params, command=command, memo=memo)
    return pd.read_parquet(path)


def method_predictions(
    method: str,
    run: RunDir,
    store: CellStore,
    fit_ids: np.ndarray,
    eval_ids: np.ndarray,
    *,
    model_run: RunDir | None = None,
    seed: int = 0,
    pca_components: int = 8,
    pca_pool: int = 3,
    refresh: str | None = None,
    ring_kwargs: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """``cell_id, pseudotime, hours`` of one method for ``eval_ids`` (rings fitted on ``fit_ids`` only).

    ``run`` holds the store read here; ``model_run`` the networks (default: ``run``; the hard-preset
    check reads another run's store with the default run's networks). Every ring is oriented by the
    FUCCI classes of its fitting cells -- never by ground truth; one they cannot orient raises
    :class:`RingFitError`. ``deepcycle``/``deepcycle_som`` read the trajectory stage's output when
    ``run`` has one (its ring was fitted on every fitting cell); otherwise the network's ring is
    fitted here on ``fit_ids`` with the same code, and ``df.attrs['note']`` says so. Descriptors are
    read by :func:`read_method_descriptors` (``refresh``: the command named when they are stale).
    ``df.attrs['used_truth']`` is False for every method but the ceiling (:mod:`deepcycle_core.validation.ceiling`),
    and the crop ceilings, references that read the simulator's hidden variables and the fitting cells'
    true ages, never methods.
    """
    if method not in METHODS:
        raise ValueError(f"unknown validation method {method!r}; known: {METHODS}")
    model_run = run if model_run is None else model_run
    kw = dict(ring_kwargs or {})
    if kw.get("T_hours") is None:
        kw["T_hours"] = doubling_time(store.cells)
    n_nodes = int(kw.get("som_nodes", 30))
    cells = store.cells

    def descriptors() -> pd.DataFrame:
        return read_method_descriptors(method, run, model_run, fit_ids, eval_ids, pca_components=pca_components,
                                       pca_pool=pca_pool, refresh=refresh)

    note = ""
    if method in ("deepcycle", "deepcycle_som"):
        path = run.trajectory_table
        if path.exists():
            fingerprint.check_stage(run, "trajectory")
            traj = pd.read_parquet(path)
            verdict = load_ring(run.ring).verdict
            split = load_split(run)
            fitting = split.loc[split["split"].isin(FIT_SPLITS), "cell_id"].to_numpy()
            som_ref = traj["cell_id"].to_numpy()[traj["cell_id"].isin(fitting).to_numpy()]
        else:
            traj = fit_descriptor_ring(descriptors(), cells, fit_ids, seed=seed, **kw)
            verdict = traj.attrs["verdict"]
            note = "no trajectory stage output for this store: the network's ring was fitted here, on the fitting cells"
            som_ref = fit_ids
        if method == "deepcycle_som":
            if "som_node" not in traj.columns:
                raise ValueError(f"{path}: no som_node column for the paper's SOM variant")
            traj = som_view(traj, som_ref, kw["T_hours"], n_nodes)
    elif method == "nuclear_area":
        traj = single_feature_predictions(descriptors(), fit_ids, eval_ids, "nuclear_area", kw["T_hours"])
        verdict = "no ring"
    elif method in CLOCK_METHODS:
        desc = descriptors()
        if not has_cycle_head(desc.columns):
            raise RingFitError(f"the {DESCRIPTOR_BASE[method]} network has no cycle head (trained with cycle_weight=0)")
        calib = _clock_calibration(method, desc, run, model_run, store, fit_ids)
        traj = clock_predictions(desc, fit_ids, eval_ids, kw["T_hours"], calibration=calib)
        verdict = clock_verdict(desc, cells, fit_ids)
    elif method == "oracle_labels":
        traj = oracle_label_predictions(store, eval_ids, kw["T_hours"])
        verdict = "no ring"
    elif method == "ceiling_hidden":
        traj = hidden_variable_predictions(cells, fit_ids, eval_ids, kw["T_hours"])
        verdict = "no ring"
    elif method in ("ceiling_crops", "ceiling_crops_phase"):
        traj = crop_variable_predictions(cells, descriptors(), fit_ids, eval_ids, kw["T_hours"],
                                         with_phase=method == "ceiling_crops_phase")
        verdict = "no ring"
    elif method == "supervised_features":
        traj, verdict, note = _supervised(descriptors(), store, fit_ids, eval_ids, seed, kw["T_hours"])
    else:  # bf_only, nuclear_only, handmade, pixels_pca: a ring through the method's descriptors
        traj = fit_descriptor_ring(descriptors(), cells, fit_ids, seed=seed, **kw)
        verdict = traj.attrs["verdict"]
    keep = ["cell_id", "pseudotime", "hours", *[c for c in INTERVAL_COLUMNS if c in traj.columns]]
    out = traj[traj["cell_id"].isin(eval_ids)][keep].reset_index(drop=True)
    out.attrs["note"] = note
    out.attrs["verdict"] = verdict
    out.attrs["used_truth"] = method in USES_TRUTH
    return out


def _supervised(desc: pd.DataFrame, store: CellStore, fit_ids: np.ndarray, eval_ids: np.ndarray,
                seed: int, T_run: float | None) -> tuple[pd.DataFrame, str, str]:
    """The supervised baseline's predictions (:mod:`.supervised`) with the head's labels and T (the
    doubling time of the store's cells, as training uses; the run's T where the growth curve gives none,
    said in the note), the movie's verdict on its positions along the fitting tracks (in-sample there,
    as the clock head's own verdict is) and the note."""
    from ..net.cycle_targets import doubling_time_of_store_cells
    from .supervised import TooFewLabels, supervised_predictions

    cells = store.cells
    note = ""
    try:
        T = doubling_time_of_store_cells(cells)
    except ValueError as exc:
        if T_run is None:
            raise RingFitError(f"no doubling time for the supervised baseline's labels: {exc}") from exc
        T, note = float(T_run), f"labels with the run's T = {float(T_run):.3g} h (the growth curve gives none)"
    dt_h = float(store.meta["frame_interval_min"]) / 60.0
    try:
        traj = supervised_predictions(desc, cells, fit_ids, eval_ids, frame_interval_h=dt_h, T_hours=T, seed=seed)
    except TooFewLabels as exc:  # a result for this movie, like a ring that cannot be oriented
        raise RingFitError(str(exc)) from exc
    fit = traj[traj["cell_id"].isin(np.asarray(fit_ids, dtype=np.int64))]
    rows = cells.set_index("cell_id").loc[fit["cell_id"].to_numpy()].reset_index()
    try:
        verdict = judge_clock(fit["pseudotime"].to_numpy(), rows).verdict
    except (ValueError, KeyError):
        verdict = "unjudged"
    return traj, verdict, note


def _clock_calibration(
    method: str, desc: pd.DataFrame, run: RunDir, model_run: RunDir, store: CellStore, fit_ids: np.ndarray
) -> Any:
    """The 80 % interval calibration of a clock head (:func:`deepcycle_core.clock.head.calibrate_clock`) on the
    validation-split cells (never trained on, never held out), with the head's labels and T: every one of
    them when the head's outputs are the embed stage's (every cell; the trajectory stage calibrates on
    the same cells, so 04 and 05 state the same intervals), else those among ``desc``. None (no interval
    columns, the interval metrics NaN) for a run without a split file (the hard preset), without a
    doubling time, or with too few labelled validation cells."""
    from ..clock.head import calibrate_clock, calibration_cells
    from ..net.cycle_targets import doubling_time_of_store_cells

    if not run.split.exists():
        return None
    val = calibration_cells(load_split(run))
    if descriptor_source(method, run, model_run) == run.descriptors:
        desc = read_method_descriptors(method, run, model_run, fit_ids, val)
    calib = np.intersect1d(val, desc["cell_id"].to_numpy(dtype=np.int64))
    try:
        T = doubling_time_of_store_cells(store.cells)
        dt_h = float(store.meta["frame_interval_min"]) / 60.0
        return calibrate_clock(desc, store.cells, calib, dt_h, T)
    except ValueError:
        return None


def clock_verdict(desc: pd.DataFrame, cells: pd.DataFrame, fit_ids: np.ndarray) -> str:
    """The movie's check of a clock head: its positions run along the fitting cells' tracks
    (:func:`deepcycle_core.clock.orientation.ring_quality`), as every ring is judged."""
    fit = desc[desc["cell_id"].isin(np.asarray(fit_ids, dtype=np.int64))]
    pos, _ = clock_positions(fit)
    rows = cells.set_index("cell_id").loc[fit["cell_id"].to_numpy()].reset_index()
    if not {"track_id", "frame", "time_h"} <= set(rows.columns):
        return "unjudged"
    try:
        return judge_clock(pos, rows).verdict
    except ValueError:
        return "unjudged"


# ------------------------------------------------------------------------------------------------
# the whole validation of a run
# ------------------------------------------------------------------------------------------------
def run_validation(
    run: RunDir | str | os.PathLike,
    *,
    methods: Sequence[str] = METHODS,
    hard_run: RunDir | str | os.PathLike | None = None,
    fit_cells: int = 20000,
    heldout_every: int = 1,
    seed: int = 0,
    pca_components: int = 8,
    pca_pool: int = 3,
    ring_kwargs: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Validate every method of ``methods`` on the held-out full-cycle tracks of ``run``.

    Reads the descriptors the describe stage wrote with the same arguments
    (:func:`deepcycle_core.validation.describe.run_describe`; a missing or stale file raises, naming it and the
    ``deepcycle describe`` command that remakes it). Rings of ablations and baselines are fitted on a
    seeded sample of ``fit_cells`` fitting cells; the network's own ring is the trajectory stage's
    (fitted on all fitting cells). With ``hard_run`` (a run folder holding a store simulated with the
    hard preset, :func:`~deepcycle_core.validation.describe.hard_preset_run`), the default network and the
    hand-made baseline are also read on that data by the very same code (rings fitted on its partial
    tracks, judged on its full-cycle tracks). Returns the table (also written to
    ``run/validate/table.csv``). ``heldout_every`` > 1 judges every k-th frame of each held-out track
    only (all tracks kept; track coverage is still measured on every frame).
    """
    run = run if isinstance(run, RunDir) else RunDir(Path(run))
    hard = None if hard_run is None else hard_run if isinstance(hard_run, RunDir) else RunDir(Path(hard_run))
    main_methods, hard_methods = split_methods(methods, hard)
    unknown = [m for m in main_methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown validation method(s) {unknown}; known: {METHODS}")
    store = open_store(run.store)
    if not store.has_truth:
        raise ValueError(f"{run.store}: the store has no ground truth (true_age ...): validation needs simulated data")
    kw = {**ring_settings(run), **(ring_kwargs or {})}
    select = dict(fit_cells=fit_cells, heldout_every=heldout_every, seed=seed)
    pca = dict(pca_components=pca_components, pca_pool=pca_pool)

    rows, track_tabs, phase_tabs, conf_tabs, curve_tabs, preds = [], [], [], [], [], []

    def judge(name: str, data_run: RunDir, data: CellStore, split: pd.DataFrame, ring_kw: dict[str, Any]) -> None:
        """One method on one data set; a ring that cannot be fitted is a result (a row of NaN with the reason)."""
        cells = data.cells
        fit, held_all, held = cell_selection(split, cells, **select)
        coverage = track_coverage(cells[cells["cell_id"].isin(held_all)])
        method = name.removesuffix("_hard") if data_run is not run else name
        label = METHOD_LABELS.get(name, name)
        refresh = describe_command(run, name, hard_run=hard, **select, **pca)
        try:
            pred = method_predictions(method, data_run, data, fit, held, model_run=run, seed=seed, refresh=refresh,
                                      ring_kwargs=ring_kw, **pca)
        except RingFitError as exc:
            rows.append({"method": name, "label": label, "used_truth": False, "note": f"no ring: {exc}"})
            return
        except ReferenceError as exc:  # the oracle-label reference exists only for the reference store
            rows.append({"method": name, "label": label, "used_truth": True, "note": f"not available: {exc}"})
            return
        truth = cells[cells["cell_id"].isin(held)]
        row, tracks, curves = score_predictions(pred, truth, coverage=coverage)
        rows.append({"method": name, "label": label, **row, "ring": pred.attrs.get("verdict", ""),
                     "used_truth": bool(pred.attrs.get("used_truth", False)), "note": pred.attrs.get("note", "")})
        track_tabs.append(tracks.assign(method=name))
        curve_tabs.append(curves.assign(method=name))
        ph, conf = phase_breakdown(pred, truth, phase_reference(cells[cells["cell_id"].isin(fit)]))
        phase_tabs.append(ph.assign(method=name))
        conf_tabs.append(conf.reset_index().assign(method=name))
        preds.append(pred.assign(method=name))

    split = load_split(run)
    for name in main_methods:
        judge(name, run, store, split, kw)

    if hard is not None:
        hstore = open_store(hard.store)
        if not hstore.has_truth:
            raise ValueError(f"{hard.store}: the hard-preset store has no ground truth")
        # nothing of the hard data was trained on: its full-cycle tracks are the evidence, the rest fits the ring
        hsplit = split_without_training(hstore.cells)
        hkw = {k: v for k, v in kw.items() if k not in ("T_hours", "T_source")}
        hkw["T_hours"] = doubling_time(hstore.cells)
        for name in hard_methods:
            judge(name, hard, hstore, hsplit, hkw)

    table = pd.DataFrame(rows, columns=["method", "label", *METRIC_COLUMNS, "ring", "used_truth", "note"])
    out = run.validate
    out.mkdir(parents=True, exist_ok=True)
    write_csv_atomic(run.validate_table, table, index=False)
    write_csv_atomic(out / "tracks.csv", _concat(track_tabs, ["track_id", "n", "duration_h", "spearman", "pearson",
                                                              "method"]), index=False)
    write_csv_atomic(out / "phases.csv", _concat(phase_tabs, ["phase", "n_cells", "mae_h", "bias_h", "method"]),
                     index=False)
    write_csv_atomic(out / "confusion.csv", _concat(conf_tabs, ["true_phase", *PHASES, "method"]), index=False)
    write_csv_atomic(out / "curves.csv", _concat(curve_tabs, ["relative_time", "mean_raw", "sd_raw", "mean_unwrapped",
                                                              "sd_unwrapped", "n_tracks", "method"]), index=False)
    write_parquet_atomic(out / "heldout.parquet", _concat(preds, ["cell_id", "pseudotime", "hours", "method"]))
    return table


def _concat(parts: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    """Concatenate per-method tables; an empty table with ``columns`` when no method gave one."""
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


def load_results(run: RunDir | str | os.PathLike) -> dict[str, pd.DataFrame]:
    """The tables written by :func:`run_validation`: table, tracks, phases, confusion, curves, heldout."""
    run = run if isinstance(run, RunDir) else RunDir(Path(run))
    out = {}
    for name in ("table", "tracks", "phases", "confusion", "curves"):
        path = run.validate / f"{name}.csv"
        if not path.exists():
            raise FileNotFoundError(f"{path}: missing; run `deepcycle validate --run {run.root}` first")
        out[name] = pd.read_csv(path)
    out["heldout"] = pd.read_parquet(run.validate / "heldout.parquet")
    return out


# ------------------------------------------------------------------------------------------------
# command line
# ------------------------------------------------------------------------------------------------
def _cli_validate(args: argparse.Namespace) -> int:
    from .describe import options, run_describe

    run, kw = options(args)
    run_describe(run, **kw, reuse=not args.no_cache, progress=not args.quiet)  # current descriptors are kept
    table = run_validation(run, **kw)
    print(format_table(table))
    print(f"wrote {run.validate_table}")
    return 0


def register_cli(subparsers: Any) -> None:
    """Add ``deepcycle validate`` (which runs the describe stage first, with the same options)."""
    from ..__main__ import add_command
    from . import describe

    p = add_command(subparsers, "validate")
    describe.add_arguments(p)
    p.set_defaults(func=_cli_validate)
