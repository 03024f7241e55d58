"""Validation: does the ring tell real time? Evidence from held-out tracks, ground truth and baselines.

The original paper checked a track-averaged curve on 50 tracks that had also chosen the checkpoint and
fitted the ring. Here every number comes from the **held-out** cells only -- all cells of the
full-cycle tracks (born and divided inside the movie), which training, checkpoint selection, the FUCCI
gates and every ring fit never see, nor do their mothers and daughters (``train/split.parquet``,
:mod:`deepcycle_core.split`). Each method is a descriptor table that goes through the *same* ring fit
(:mod:`deepcycle_core.trajectory`) on fitting cells (split train/val) and is then read on the
held-out ones:

===============  =====================================================================
method           descriptors
===============  =====================================================================
deepcycle        the network, both channels (``trajectory/trajectory.parquet`` of the run)
deepcycle_som    the same ring read as the paper did: 30-node ring SOM, node index
bf_only          the network trained on brightfield only (``train/bf_only/best.pt``)
nuclear_only     the network trained on the nuclear stain only (``train/nuclear_only/best.pt``)
nuclear_area     the data chapter's single-feature read-out: nuclear area's rank among the
                 fitting cells, turned into an age by ERA (no ring; nuclei grow with age)
handmade         integrated Hoechst, nuclear area, brightfield texture (:mod:`.baselines`)
pixels_pca       PCA of the normalised raw crops (:mod:`.baselines`)
===============  =====================================================================

One policy for every row: a ring is oriented (direction, origin) by the FUCCI classes of its fitting
cells, exactly as the trajectory stage orients the network's ring -- ground truth never orients any
ring. A ring that the classes cannot orient is a result ("no ring", metrics NaN), not something to
rescue. A row whose prediction used ground truth anywhere is flagged ``used_truth`` and can never
PASS a target (:func:`check_targets`).

Metrics (one row a method, :data:`METRIC_COLUMNS`): median per-track Spearman of unwrapped pseudotime
against time since birth (tracks seen over >= 80 % of their cycle); Fisher–Lee and Jammalamadaka–SenGupta circular correlation of 2π·pseudotime
with the true position 2π·true_age; circular MAE in hours (pseudotime error times each cell's own cycle
length); the ERA-hours MAE against true hours since birth (wrapped at the cell's cycle length, so
"just divided" and "about to divide" are neighbours); the paper's averaged-curve Spearman and Kendall,
both raw (wrapped values averaged, as the original did) and unwrapped (each track unwrapped like the
per-track statistic; :func:`deepcycle_core.metrics.paper_average_curve`).

Outputs in ``run/validate/``: ``table.csv`` (the table), ``tracks.csv`` (per-track correlations),
``phases.csv`` (per-phase errors), ``confusion.csv`` (true phase x phase read off the clock),
``curves.csv`` (the averaged curves behind the paper's statistic, on the table's tracks),
``heldout.parquet`` (every held-out prediction), each written atomically.
"""

from __future__ import annotations

import argparse
import json
import os
import uuid
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from . import fingerprint, metrics
from .runs import RunDir
from .split import FIT_SPLITS, holdout_masks, read_split
from .store import CellStore, open_store

TWO_PI = 2.0 * np.pi

#: Every method the validation knows, in table order.
METHODS: tuple[str, ...] = (
    "deepcycle", "deepcycle_som", "bf_only", "nuclear_only", "nuclear_area", "handmade", "pixels_pca",
)

#: Human-readable names for the table.
METHOD_LABELS: dict[str, str] = {
    "deepcycle": "DeepCycle, continuous ring",
    "deepcycle_som": "DeepCycle, 30-node ring SOM (paper)",
    "bf_only": "DeepCycle, brightfield only",
    "nuclear_only": "DeepCycle, nuclear stain only",
    "nuclear_area": "single feature: nuclear area (data chapter)",
    "handmade": "hand-made features",
    "pixels_pca": "raw-pixel PCA",
    "deepcycle_hard": "DeepCycle on the hard preset",
    "handmade_hard": "hand-made features on the hard preset",
}

#: The baselines that the network must beat clearly.
BASELINES: tuple[str, ...] = ("nuclear_area", "handmade", "pixels_pca")

#: Columns of the validation table, after ``method`` and ``label``.
METRIC_COLUMNS: tuple[str, ...] = (
    "n_tracks",
    "n_cells",
    "track_spearman_median",
    "track_pearson_median",
    "fisher_lee",
    "jammalamadaka_sengupta",
    "circ_mae_h",
    "era_mae_h",
    "paper_spearman",
    "paper_kendall",
    "paper_spearman_unwrapped",
    "paper_kendall_unwrapped",
)

#: Targets on the default profile: (column, comparison, value).
TARGETS: tuple[tuple[str, str, float], ...] = (
    ("track_spearman_median", ">=", 0.95),
    ("fisher_lee", ">=", 0.9),
    ("circ_mae_h", "<=", 1.5),
    ("era_mae_h", "<=", 2.0),
)

#: "Clearly worse": a baseline's circular MAE must be at least this many times the network's.
CLEARLY_WORSE_RATIO = 1.25

PHASES: tuple[str, ...] = ("G1", "S", "G2", "M")

TRUTH_NEEDED = ("track_id", "time_h", "true_age", "true_cycle_h", "true_age_h", "true_phase")

#: Per-track statistics use tracks seen in at least this fraction of the frames of their cycle (birth to
#: division): a track whose cell left the field, or lost its detection, for part of its life is judged
#: only by the circular, per-cell metrics.
MIN_COVERAGE = 0.8


class RingFitError(ValueError):
    """A method's descriptors do not give a ring (too few cells, a class missing or spread everywhere)."""


# ------------------------------------------------------------------------------------------------
# metrics of one method
# ------------------------------------------------------------------------------------------------
def _truth_table(pred: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in TRUTH_NEEDED if c not in truth.columns]
    if missing:
        raise ValueError(f"ground truth lacks column(s) {missing}: validation needs a simulated store")
    for col in ("cell_id", "pseudotime"):
        if col not in pred.columns:
            raise ValueError(f"prediction table lacks column {col!r}; has {list(pred.columns)}")
    cols = ["cell_id", "pseudotime"] + (["hours"] if "hours" in pred.columns else [])
    extra = [c for c in ("frame", "birth_frame", "division_frame") if c in truth.columns]
    df = truth[["cell_id", *TRUTH_NEEDED, *extra]].merge(pred[cols], on="cell_id", how="inner", validate="1:1")
    if "hours" not in df.columns:
        df["hours"] = np.nan
    return df.sort_values(["track_id", "time_h"], kind="stable").reset_index(drop=True)


def track_coverage(cells: pd.DataFrame) -> pd.Series:
    """Per track (index ``track_id``): the fraction of the frames of its cycle in which it has a crop.

    Frames SEEN, not the span between the first and last crop: a track that vanished for 12 h of a
    26 h cycle covers about half its cycle even though its crops span all of it. Pass the cell table
    of every frame (not a thinned subset). Needs ``track_id, frame, birth_frame, division_frame``;
    tracks without a known birth and division get 0.
    """
    missing = [c for c in ("track_id", "frame", "birth_frame", "division_frame") if c not in cells.columns]
    if missing:
        raise ValueError(f"track coverage needs column(s) {missing}")
    g = cells.groupby("track_id")
    seen = g["frame"].nunique().astype(float)
    life = (g["division_frame"].first() - g["birth_frame"].first() + 1).astype(float)
    ok = (life > 0) & (g["birth_frame"].first() >= 0)
    cov = (seen / life.where(ok)).clip(upper=1.0).fillna(0.0)
    cov.name = "coverage"
    return cov


def evaluate(
    pred: pd.DataFrame,
    truth: pd.DataFrame,
    *,
    coverage: pd.Series | None = None,
    n_points: int = 100,
    min_coverage: float = MIN_COVERAGE,
) -> tuple[dict[str, float], pd.DataFrame, pd.DataFrame]:
    """Every metric of one method on the cells in ``truth`` (the held-out cells).

    ``pred`` has ``cell_id, pseudotime`` in [0, 1) and optionally ``hours`` (ERA); ``truth`` has the
    cell table's ``cell_id`` and :data:`TRUTH_NEEDED`. The circular metrics use every cell; the
    per-track and averaged-curve statistics use tracks seen in at least ``min_coverage`` of their
    cycle's frames (``n_tracks`` counts those). ``coverage`` is :func:`track_coverage` of the full cell
    table (pass it when ``truth`` holds only every k-th frame); by default it is measured on ``truth``,
    and without frame columns every track counts as seen.
    Returns the metrics row, the per-track correlation table and the averaged curves (raw and
    unwrapped) on the same tracks.
    """
    df = _truth_table(pred, truth)
    if len(df) < 3:
        raise ValueError(f"only {len(df)} held-out cells have a prediction: nothing to validate")
    p = df["pseudotime"].to_numpy(dtype=float)
    a = df["true_age"].to_numpy(dtype=float)
    cyc = df["true_cycle_h"].to_numpy(dtype=float)
    if coverage is None and {"frame", "birth_frame", "division_frame"} <= set(truth.columns):
        coverage = track_coverage(truth)
    if coverage is None:  # no frame numbers: every track counts as seen
        seen = df
    else:
        seen = df[df["track_id"].map(coverage).fillna(0.0).to_numpy() >= min_coverage]
    tracks = metrics.per_track_correlations(seen, pseudotime_col="pseudotime")
    row: dict[str, float] = {
        "n_tracks": int(seen["track_id"].nunique()),
        "n_cells": int(len(df)),
        "track_spearman_median": float(np.nanmedian(tracks["spearman"])) if len(tracks) else np.nan,
        "track_pearson_median": float(np.nanmedian(tracks["pearson"])) if len(tracks) else np.nan,
        "fisher_lee": _safe(metrics.fisher_lee, TWO_PI * p, TWO_PI * a),
        "jammalamadaka_sengupta": _safe(metrics.jammalamadaka_sengupta, TWO_PI * p, TWO_PI * a),
        "circ_mae_h": metrics.circular_mae_hours(p * cyc, a * cyc, cyc),
    }
    h = df["hours"].to_numpy(dtype=float)
    ok = np.isfinite(h)
    row["era_mae_h"] = (
        metrics.circular_mae_hours(h[ok], df["true_age_h"].to_numpy(dtype=float)[ok], cyc[ok]) if ok.any() else np.nan
    )
    curves = pd.DataFrame({"relative_time": np.linspace(0.0, 1.0, n_points)})
    for unwrap, suffix in ((False, ""), (True, "_unwrapped")):
        try:
            curve = metrics.paper_average_curve(seen, n_points=n_points, pseudotime_col="pseudotime", unwrap=unwrap)
        except ValueError:
            row[f"paper_spearman{suffix}"] = row[f"paper_kendall{suffix}"] = np.nan
            curves[f"mean{suffix or '_raw'}"] = curves[f"sd{suffix or '_raw'}"] = np.nan
            continue
        row[f"paper_spearman{suffix}"], row[f"paper_kendall{suffix}"] = curve["spearman"], curve["kendall"]
        curves[f"mean{suffix or '_raw'}"] = curve["mean_curve"]
        curves[f"sd{suffix or '_raw'}"] = curve["std_curve"]
    curves["n_tracks"] = row["n_tracks"]
    return row, tracks, curves


def _safe(fn: Callable[..., float], *args: Any) -> float:
    """A correlation, or NaN when it is undefined (e.g. a method that puts every cell at one point)."""
    try:
        return float(fn(*args))
    except ValueError:
        return float("nan")


def phase_reference(cells: pd.DataFrame, n_bins: int = 100) -> np.ndarray:
    """The majority true phase in each of ``n_bins`` cycle-position bins, from the given cells.

    Used to read a phase off a predicted position ("the clock says S"); computed from NON-held-out
    cells so the held-out ones are judged against an independent map. Empty bins borrow the nearest.
    """
    b = np.minimum((cells["true_age"].to_numpy(dtype=float) * n_bins).astype(int), n_bins - 1)
    tab = pd.crosstab(b, cells["true_phase"].astype(str))
    ref = np.full(n_bins, "", dtype=object)
    ref[tab.index.to_numpy()] = tab.idxmax(axis=1).to_numpy()
    filled = np.nonzero(ref != "")[0]
    if filled.size == 0:
        raise ValueError("phase reference needs cells with true_phase")
    for i in np.nonzero(ref == "")[0]:
        d = np.abs(filled - i)
        d = np.minimum(d, n_bins - d)
        ref[i] = ref[filled[np.argmin(d)]]
    return ref


def phase_breakdown(
    pred: pd.DataFrame, truth: pd.DataFrame, reference: np.ndarray
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per true phase: cell count, circular MAE and signed bias in hours; and the phase confusion.

    The confusion matrix (rows: true phase, columns: the phase at the predicted position according
    to ``reference``, rows sum to 1) shows which phases the clock mixes up.
    """
    df = _truth_table(pred, truth)
    p = df["pseudotime"].to_numpy(dtype=float)
    cyc = df["true_cycle_h"].to_numpy(dtype=float)
    err = metrics.circular_difference(p * cyc, df["true_age"].to_numpy(dtype=float) * cyc, cyc)
    df["err_h"] = err
    n_bins = len(reference)
    df["pred_phase"] = reference[np.minimum((np.mod(p, 1.0) * n_bins).astype(int), n_bins - 1)]
    phases = [ph for ph in PHASES if ph in set(df["true_phase"])] + sorted(
        set(df["true_phase"].astype(str)) - set(PHASES)
    )
    rows = []
    for ph in phases:
        e = df.loc[df["true_phase"] == ph, "err_h"].to_numpy()
        rows.append({"phase": ph, "n_cells": int(e.size), "mae_h": float(np.abs(e).mean()), "bias_h": float(e.mean())})
    conf = pd.crosstab(df["true_phase"], df["pred_phase"], normalize="index")
    conf = conf.reindex(index=phases, columns=phases, fill_value=0.0)
    conf.index.name, conf.columns.name = "true_phase", "clock_phase"
    return pd.DataFrame(rows), conf


# ------------------------------------------------------------------------------------------------
# the ring fit of a descriptor table (the same code for the network, ablations and baselines)
# ------------------------------------------------------------------------------------------------
def ring_settings(run: RunDir) -> dict[str, Any]:
    """The trajectory stage's ring settings and doubling time (``trajectory/ring.json``), if present.

    Every method is fitted with the same settings and read in hours with the same T, so the
    comparison isolates the descriptors.
    """
    path = run.ring
    if not path.exists():
        return {}
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
    from .trajectory import doubling_time_from_counts

    counts = cells.groupby("time_h").size()
    try:
        return doubling_time_from_counts(counts.index.to_numpy(), counts.to_numpy())
    except ValueError:
        return None


def fit_ring(
    descriptors: pd.DataFrame,
    cells: pd.DataFrame,
    fit_ids: np.ndarray,
    *,
    seed: int = 0,
    **ring_kwargs: Any,
) -> pd.DataFrame:
    """The trajectory module's ring, fitted on the rows of ``fit_ids`` only, read on every row.

    ``descriptors`` is ``cell_id`` + numeric columns (any method). The ring is oriented by the FUCCI
    classes of the fitting cells, exactly as the trajectory stage does -- never by ground truth; a
    ring they cannot orient raises :class:`RingFitError`. Returns the trajectory columns (cell_id,
    x2d, y2d, angle, pseudotime, hours, som_node).
    """
    from . import trajectory

    cols = [c for c in descriptors.columns if c != "cell_id"]
    cid = descriptors["cell_id"].to_numpy(dtype=np.int64)
    X = descriptors[cols].to_numpy(dtype=float)
    fit_mask = np.isin(cid, np.asarray(fit_ids, dtype=np.int64))
    if not fit_mask.any():
        raise ValueError("no fitting cell among the descriptors")
    rows = cells.set_index("cell_id").loc[cid[fit_mask]]
    classes = rows["class"].to_numpy(dtype=np.int64)
    kw = dict(ring_kwargs)
    T = kw.pop("T_hours", None)
    if T is None:
        T = doubling_time(cells)
    kw.pop("T_source", None)
    try:
        ring = trajectory.fit_ring(X[fit_mask], classes, seed=seed, T_hours=T, **kw)
    except ValueError as exc:
        raise RingFitError(str(exc)) from exc
    out = ring.transform(X)
    out.insert(0, "cell_id", cid)
    out.attrs["ring_info"] = ring.info
    return out


def som_view(traj: pd.DataFrame, fit_ids: np.ndarray, T_hours: float | None, n_nodes: int = 30) -> pd.DataFrame:
    """The paper's reading of a ring: pseudotime = SOM node, hours by ERA on the node ranks.

    A node covers an arc, so its cells are placed at the node's middle, (k + ½) / n_nodes. ERA hours use
    the mid-rank fraction F of the node among the fitting cells (cells in earlier nodes plus half of
    the node's own), so the discrete clock is not biased by half a node.
    """
    from .trajectory import era_age_fraction

    node = traj["som_node"].to_numpy(dtype=np.int64)
    ref = node[np.isin(traj["cell_id"].to_numpy(), fit_ids)]
    counts = np.bincount(ref, minlength=n_nodes).astype(float)
    frac = counts / max(counts.sum(), 1.0)
    F = np.cumsum(frac) - frac / 2.0
    out = traj[["cell_id"]].copy()
    out["pseudotime"] = (node + 0.5) / n_nodes
    out["hours"] = T_hours * era_age_fraction(F[node]) if T_hours is not None else np.nan
    return out


# ------------------------------------------------------------------------------------------------
# the whole validation of a run
# ------------------------------------------------------------------------------------------------
def load_split(run: RunDir) -> pd.DataFrame:
    """``train/split.parquet``: which cells are held out. Without it nothing can be validated honestly.

    Refused (:class:`~deepcycle_core.fingerprint.StaleInputError`) unless the training stage wrote it
    from the run's current store.
    """
    if not run.split.exists():
        raise FileNotFoundError(f"{run.split}: missing; run the training stage first (it fixes the held-out tracks)")
    fingerprint.check_split(run)
    return read_split(run.split)


def split_without_training(cells: pd.DataFrame) -> pd.DataFrame:
    """The split of a data set nothing was trained on (the hard preset): held-out full-cycle tracks,
    their relatives excluded, every other cell free to fit a ring (``train``)."""
    heldout, excluded = holdout_masks(cells)
    label = np.where(heldout, "heldout", np.where(excluded, "excluded", "train"))
    return pd.DataFrame({"cell_id": cells["cell_id"].to_numpy(), "split": label})


def choose_cells(split: pd.DataFrame, *, fit_cells: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(fit_ids, heldout_ids)``: a seeded sample of at most ``fit_cells`` fitting cells (split train or
    val; never held-out cells or their relatives), and every held-out cell."""
    held = np.sort(split.loc[split["split"] == "heldout", "cell_id"].to_numpy(dtype=np.int64))
    pool = np.sort(split.loc[split["split"].isin(FIT_SPLITS), "cell_id"].to_numpy(dtype=np.int64))
    if held.size == 0:
        raise ValueError("the split has no held-out cells (no full-cycle tracks): nothing to validate")
    if pool.size == 0:
        raise ValueError("the split has no cell to fit a ring on (every track is held out or a relative of one)")
    if pool.size > fit_cells:
        pool = np.sort(np.random.default_rng(seed).choice(pool, size=fit_cells, replace=False))
    return pool, held


def thin_tracks(cells: pd.DataFrame, ids: np.ndarray, every: int) -> np.ndarray:
    """Every ``every``-th cell (in time) of each track among ``ids``: all tracks, fewer frames."""
    if every < 1:
        raise ValueError(f"heldout_every must be >= 1, got {every}")
    if every == 1:
        return np.asarray(ids, dtype=np.int64)
    sub = cells[cells["cell_id"].isin(ids)].sort_values(["field", "track_id", "frame"], kind="stable")
    keep = sub.groupby(["field", "track_id"], sort=False).cumcount().to_numpy() % every == 0
    return np.sort(sub["cell_id"].to_numpy(dtype=np.int64)[keep])


def hard_preset_run(run: RunDir, *, cells: int, hours: float, seed: int) -> RunDir:
    """A small hard-preset data set inside ``run/validate/hard``, simulated anew whenever its parameters
    (founders, hours, seed, simulator version) differ from the ones asked for -- never a stale one."""
    from .simulate import simulate

    hard = RunDir(run.validate / "hard")
    simulate(hard.store, cells=cells, hours=hours, seed=seed, difficulty="hard", reuse=True, progress=False)
    return hard


def _atomic_write(df: pd.DataFrame, path: Path, **kwargs: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        if path.suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, **kwargs)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _cached_descriptors(
    out_dir: Path, key: dict[str, Any], make: Callable[[], pd.DataFrame], use_cache: bool
) -> pd.DataFrame:
    """Descriptors from ``out_dir`` when made with the same ``key``, else made now and saved there."""
    path, key_path = out_dir / "descriptors.parquet", out_dir / "cache_key.json"
    if use_cache and path.exists() and key_path.exists():
        try:
            if json.loads(key_path.read_text()) == key:
                return pd.read_parquet(path)
        except (json.JSONDecodeError, OSError):
            pass
    df = make()
    _atomic_write(df, path)
    key_path.write_text(json.dumps(key, sort_keys=True))
    return df


def _file_key(path: Path) -> dict[str, Any]:
    st = path.stat()
    return {"file": str(path.name), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _store_key(store: CellStore) -> dict[str, Any]:
    return {"n_cells": int(store.n_cells), "created": store.meta.get("provenance", {}).get("created")}


def embed_cells(
    store: CellStore, checkpoint: Path, ids: np.ndarray, *, batch_size: int = 512, precision: str = "auto",
    progress: bool = False,
) -> pd.DataFrame:
    """Descriptors ``cell_id, d0..d3`` of the cells ``ids`` only, with the embedding stage's code path.

    The embed stage embeds a whole store; validation needs a seeded sample plus the held-out cells,
    so it reads those crops chunk by chunk and runs the same normalisation and model call.
    """
    from .dataset import MODES, frame_norm, mode_channels, normalise_crops
    from .embed import resolve_precision, run_model
    from .train import load_model

    precision = resolve_precision(precision)
    model, info = load_model(checkpoint)
    mode = info.get("mode", "both")
    if mode not in MODES:
        raise ValueError(f"{checkpoint}: unknown mode {mode!r} in the checkpoint")
    if precision == "bf16":
        import torch

        model = model.to(memory_format=torch.channels_last)
    channels = mode_channels(store, mode)
    med, std = frame_norm(store, channels)
    ids = np.unique(np.asarray(ids, dtype=np.int64))
    out = np.empty((ids.size, 4), dtype=np.float32)
    step = store.chunk_cells
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=ids.size, unit="cell", desc=f"embed {checkpoint.parent.name}")
    for lo in range(0, ids.size, step):
        sel = ids[lo : lo + step]
        x = normalise_crops(store.take(sel)[:, channels], med[sel], std[sel]).numpy()
        out[lo : lo + sel.size], _ = run_model(model, x, batch_size=batch_size, precision=precision, features=False)
        if bar is not None:
            bar.update(sel.size)
    if bar is not None:
        bar.close()
    df = pd.DataFrame(out, columns=[f"d{i}" for i in range(out.shape[1])])
    df.insert(0, "cell_id", ids)
    return df


def single_feature_predictions(
    values: pd.DataFrame, fit_ids: np.ndarray, eval_ids: np.ndarray, feature: str, T_hours: float | None
) -> pd.DataFrame:
    """The data chapter's single-feature read-out, fitted on ``fit_ids`` only: an evaluated cell's
    position is the fraction F of FITTING cells with a smaller feature value, mapped to an age by the
    steady-state age distribution of a growing population, ``a = -log2(1 - F/2)``; hours = ``a * T``.

    The direction is a biological prior (the feature grows with age: nuclei grow through interphase,
    DNA doubles in S), not fitted on anything; there is no origin to choose.
    """
    from .trajectory import era_age_fraction

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


def _network_descriptors(
    run: RunDir, model_run: RunDir, store: CellStore, ids: np.ndarray, mode: str, *, use_cache: bool, progress: bool
) -> pd.DataFrame:
    """The network's descriptors of ``ids``: the embed stage's file when it covers this very store and
    network, else embedded here (and cached under ``run/validate/<mode>``)."""
    if mode == "both" and run == model_run and run.descriptors.exists():
        fingerprint.check_descriptors(run)  # and the checkpoint they were embedded with
        desc = pd.read_parquet(run.descriptors)
        desc = desc[["cell_id"] + [c for c in desc.columns if c[:1] == "d" and c[1:].isdigit()]]
        return desc[desc["cell_id"].isin(ids)].reset_index(drop=True)
    ckpt = model_run.train_dir(mode) / model_run.CHECKPOINT_NAME
    if not ckpt.exists():
        raise FileNotFoundError(f"{ckpt}: missing; train the {mode} network first (02_train / `deepcycle train`)")
    fingerprint.check_checkpoint(model_run, ckpt)
    key = {"mode": mode, "checkpoint": _file_key(ckpt), "ids": _ids_key(ids), "store": _store_key(store)}
    return _cached_descriptors(
        run.validate / ("deepcycle" if mode == "both" else mode), key,
        lambda: embed_cells(store, ckpt, ids, progress=progress), use_cache,
    )


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
    use_cache: bool = True,
    progress: bool = False,
    ring_kwargs: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """``cell_id, pseudotime, hours`` of one method for ``eval_ids`` (rings fitted on ``fit_ids`` only).

    ``run`` holds the store read here; ``model_run`` the networks (default: ``run``; the hard-preset
    check reads another run's store with the default run's networks). Every ring is oriented by the
    FUCCI classes of its fitting cells -- never by ground truth; one they cannot orient raises
    :class:`RingFitError`. ``deepcycle``/``deepcycle_som`` read the trajectory stage's output when
    ``run`` has one (its ring was fitted on every fitting cell); otherwise the network's ring is
    fitted here on ``fit_ids`` with the same code, and ``df.attrs['note']`` says so.
    ``df.attrs['used_truth']`` is False for every method here (none uses ground truth).
    """
    model_run = run if model_run is None else model_run
    kw = dict(ring_kwargs or {})
    if kw.get("T_hours") is None:
        kw["T_hours"] = doubling_time(store.cells)
    n_nodes = int(kw.get("som_nodes", 30))
    cells = store.cells
    ids = np.union1d(fit_ids, eval_ids)
    note = ""
    if method in ("deepcycle", "deepcycle_som"):
        path = run.trajectory_table
        if path.exists():
            fingerprint.check_stage(run, "trajectory")
            traj = pd.read_parquet(path)
            split = load_split(run)
            fitting = split.loc[split["split"].isin(FIT_SPLITS), "cell_id"].to_numpy()
            som_ref = traj["cell_id"].to_numpy()[traj["cell_id"].isin(fitting).to_numpy()]
        else:
            desc = _network_descriptors(run, model_run, store, ids, "both", use_cache=use_cache, progress=progress)
            traj = fit_ring(desc, cells, fit_ids, seed=seed, **kw)
            note = "no trajectory stage output for this store: the network's ring was fitted here, on the fitting cells"
            som_ref = fit_ids
        if method == "deepcycle_som":
            if "som_node" not in traj.columns:
                raise ValueError(f"{path}: no som_node column for the paper's SOM variant")
            traj = som_view(traj, som_ref, kw["T_hours"], n_nodes)
    elif method in ("bf_only", "nuclear_only"):
        desc = _network_descriptors(run, model_run, store, ids, method, use_cache=use_cache, progress=progress)
        traj = fit_ring(desc, cells, fit_ids, seed=seed, **kw)
    elif method == "nuclear_area":
        from .features import measure

        key = {"method": method, "ids": _ids_key(ids), "store": _store_key(store)}
        feats = _cached_descriptors(run.validate / method, key, lambda: measure(store, ids), use_cache)
        traj = single_feature_predictions(feats, fit_ids, eval_ids, "nuclear_area", kw["T_hours"])
    elif method == "handmade":
        from .baselines import handmade_descriptors

        key = {"method": method, "ids": _ids_key(ids), "fit": _ids_key(fit_ids), "store": _store_key(store)}
        desc = _cached_descriptors(run.validate / method, key, lambda: handmade_descriptors(store, fit_ids, ids), use_cache)
        traj = fit_ring(desc, cells, fit_ids, seed=seed, **kw)
    elif method == "pixels_pca":
        from .baselines import pixel_pca_descriptors

        key = {"method": method, "ids": _ids_key(ids), "fit": _ids_key(fit_ids), "k": pca_components,
               "pool": pca_pool, "store": _store_key(store)}
        desc = _cached_descriptors(
            run.validate / method, key,
            lambda: pixel_pca_descriptors(store, fit_ids, ids, n_components=pca_components, pool=pca_pool), use_cache,
        )
        traj = fit_ring(desc, cells, fit_ids, seed=seed, **kw)
    else:
        raise ValueError(f"unknown validation method {method!r}; known: {METHODS}")
    out = traj[traj["cell_id"].isin(eval_ids)][["cell_id", "pseudotime", "hours"]].reset_index(drop=True)
    out.attrs["note"] = note
    out.attrs["used_truth"] = False
    return out


def _ids_key(ids: np.ndarray) -> dict[str, Any]:
    ids = np.asarray(ids, dtype=np.int64)
    return {"n": int(ids.size), "sum": int(ids.sum()), "xor": int(np.bitwise_xor.reduce(ids)) if ids.size else 0}


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
    use_cache: bool = True,
    progress: bool = False,
    ring_kwargs: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Validate every method of ``methods`` on the held-out full-cycle tracks of ``run``.

    Rings of ablations and baselines are fitted on a seeded sample of ``fit_cells`` fitting cells;
    the network's own ring is the trajectory stage's (fitted on all fitting cells). With ``hard_run``
    (a run folder holding a store simulated with the hard preset, :func:`hard_preset_run`), the
    default network and the hand-made baseline are also read on that data by the very same code
    (rings fitted on its partial tracks, judged on its full-cycle tracks). Returns the table (also
    written to ``run/validate/table.csv``); a method whose inputs are missing raises, naming the
    file. ``heldout_every`` > 1 judges every k-th frame of each held-out track only (all tracks kept;
    fewer crops to embed and describe; track coverage is still measured on every frame).
    """
    run = run if isinstance(run, RunDir) else RunDir(Path(run))
    store = open_store(run.store)
    if not store.has_truth:
        raise ValueError(f"{run.store}: the store has no ground truth (true_age ...): validation needs simulated data")
    kw = {**ring_settings(run), **(ring_kwargs or {})}
    opts = dict(seed=seed, pca_components=pca_components, pca_pool=pca_pool, use_cache=use_cache, progress=progress)

    rows, track_tabs, phase_tabs, conf_tabs, curve_tabs, preds = [], [], [], [], [], []

    def judge(name: str, data_run: RunDir, data: CellStore, split: pd.DataFrame, ring_kw: dict[str, Any]) -> None:
        """One method on one data set; a ring that cannot be fitted is a result (a row of NaN with the reason)."""
        cells = data.cells
        fit, held = choose_cells(split, fit_cells=fit_cells, seed=seed)
        coverage = track_coverage(cells[cells["cell_id"].isin(held)])
        held = thin_tracks(cells, held, heldout_every)
        method = name.removesuffix("_hard") if data_run is not run else name
        label = METHOD_LABELS.get(name, name)
        try:
            pred = method_predictions(method, data_run, data, fit, held, model_run=run, ring_kwargs=ring_kw, **opts)
        except RingFitError as exc:
            rows.append({"method": name, "label": label, "used_truth": False, "note": f"no ring: {exc}"})
            return
        truth = cells[cells["cell_id"].isin(held)]
        row, tracks, curves = evaluate(pred, truth, coverage=coverage)
        rows.append({"method": name, "label": label, **row, "used_truth": bool(pred.attrs.get("used_truth", False)),
                     "note": pred.attrs.get("note", "")})
        track_tabs.append(tracks.assign(method=name))
        curve_tabs.append(curves.assign(method=name))
        ph, conf = phase_breakdown(pred, truth, phase_reference(cells[cells["cell_id"].isin(fit)]))
        phase_tabs.append(ph.assign(method=name))
        conf_tabs.append(conf.reset_index().assign(method=name))
        preds.append(pred.assign(method=name))

    split = load_split(run)
    for name in methods:
        judge(name, run, store, split, kw)

    if hard_run is not None:
        hard = hard_run if isinstance(hard_run, RunDir) else RunDir(Path(hard_run))
        hstore = open_store(hard.store)
        if not hstore.has_truth:
            raise ValueError(f"{hard.store}: the hard-preset store has no ground truth")
        # nothing of the hard data was trained on: its full-cycle tracks are the evidence, the rest fits the ring
        hsplit = split_without_training(hstore.cells)
        hkw = {k: v for k, v in kw.items() if k not in ("T_hours", "T_source")}
        hkw["T_hours"] = doubling_time(hstore.cells)
        for name in ("deepcycle_hard", "handmade_hard"):
            judge(name, hard, hstore, hsplit, hkw)

    table = pd.DataFrame(rows, columns=["method", "label", *METRIC_COLUMNS, "used_truth", "note"])
    out = run.validate
    _atomic_write(table, out / "table.csv", index=False)
    _atomic_write(_concat(track_tabs, ["track_id", "n", "duration_h", "spearman", "pearson", "method"]),
                  out / "tracks.csv", index=False)
    _atomic_write(_concat(phase_tabs, ["phase", "n_cells", "mae_h", "bias_h", "method"]), out / "phases.csv", index=False)
    _atomic_write(_concat(conf_tabs, ["true_phase", *PHASES, "method"]), out / "confusion.csv", index=False)
    _atomic_write(_concat(curve_tabs, ["relative_time", "mean_raw", "sd_raw", "mean_unwrapped", "sd_unwrapped",
                                       "n_tracks", "method"]), out / "curves.csv", index=False)
    _atomic_write(_concat(preds, ["cell_id", "pseudotime", "hours", "method"]), out / "heldout.parquet")
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


def check_targets(table: pd.DataFrame, method: str = "deepcycle") -> pd.DataFrame:
    """PASS/MISS of every target for ``method`` and of "every baseline clearly worse on MAE".

    ``gap`` is signed so that a positive number is the margin by which the target is met and a
    negative one the amount it is missed by. A row that used ground truth (``used_truth``) never
    PASSes: its targets read ``TRUTH`` whatever the numbers. A baseline without a ring reads
    ``NO RING``: it gave no clock to compare with, which is neither a pass nor a miss of the network.
    """
    t = table.set_index("method")
    if method not in t.index:
        raise ValueError(f"method {method!r} is not in the table ({list(t.index)})")
    used = t["used_truth"].fillna(False).astype(bool) if "used_truth" in t.columns else pd.Series(False, index=t.index)
    ours_truth = bool(used.get(method, False))
    rows = []
    for col, op, goal in TARGETS:
        v = float(t.at[method, col])
        gap = v - goal if op == ">=" else goal - v
        status = "TRUTH" if ours_truth else ("PASS" if gap >= 0 else "MISS")
        rows.append({"target": f"{col} {op} {goal:g}", "value": v, "gap": gap, "status": status})
    ours = float(t.at[method, "circ_mae_h"])
    for b in BASELINES:
        if b not in t.index:
            continue
        v = float(t.at[b, "circ_mae_h"])
        goal = CLEARLY_WORSE_RATIO * ours
        gap = v - goal
        if ours_truth:
            status = "TRUTH"
        elif np.isnan(v):
            status = "NO RING"
        else:
            status = "PASS" if gap >= 0 else "MISS"
        rows.append({"target": f"{b} circ_mae_h >= {CLEARLY_WORSE_RATIO:g} x {method}", "value": v, "gap": gap,
                     "status": status})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------
# command line
# ------------------------------------------------------------------------------------------------
def format_table(table: pd.DataFrame, digits: int = 3) -> str:
    """The table as fixed-width text with numbers to ``digits`` significant digits."""
    show = table.drop(columns=["label", "note", "used_truth"], errors="ignore").copy()
    for col in show.columns:
        if col in ("n_tracks", "n_cells"):
            show[col] = show[col].map(lambda v: "-" if not np.isfinite(v) else f"{int(v)}")
        elif show[col].dtype.kind == "f":
            show[col] = show[col].map(lambda v: "nan" if not np.isfinite(v) else f"{v:.{digits}g}")
    text = show.to_string(index=False)
    if "note" in table.columns:
        used = table["used_truth"] if "used_truth" in table.columns else pd.Series(False, index=table.index)
        notes = [f"  {m}: " + "; ".join(x for x in (("USED GROUND TRUTH (never passes a target)" if u is True or u is np.True_ else ""),
                                                    n if isinstance(n, str) else "") if x)
                 for m, n, u in zip(table["method"], table["note"], used)
                 if (isinstance(n, str) and n) or u is True or u is np.True_]
        if notes:
            text += "\nnotes:\n" + "\n".join(notes)
    return text


def _cli_validate(args: argparse.Namespace) -> int:
    from .runs import run_dir

    run = RunDir(Path(args.run)) if args.run else run_dir(args.profile)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else list(METHODS)
    table = run_validation(
        run, methods=methods, hard_run=args.hard_run, fit_cells=args.fit_cells, heldout_every=args.heldout_every,
        seed=args.seed,
        use_cache=not args.no_cache, progress=not args.quiet,
    )
    print(format_table(table))
    print(f"wrote {run.validate / 'table.csv'}")
    return 0


def register_cli(subparsers: Any) -> None:
    p = subparsers.add_parser("validate", help="validate the ring on held-out full-cycle tracks against truth and baselines")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--run", help="run folder (data/runs/<profile>)")
    g.add_argument("--profile", default="default", help="profile name when --run is not given")
    p.add_argument("--methods", default="", help=f"comma-separated subset of {','.join(METHODS)}")
    p.add_argument("--hard-run", default=None, help="run folder with a hard-preset store to read the network on")
    p.add_argument("--fit-cells", type=int, default=20000, help="non-held-out cells the baseline rings are fitted on")
    p.add_argument("--heldout-every", type=int, default=1, help="judge every k-th frame of each held-out track")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-cache", action="store_true", help="recompute ablation and baseline descriptors")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cli_validate)
