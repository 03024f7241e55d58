"""A released peer on the same cells: CellCycleNet beside our clock, G1 vs S/G2 on the held-out cells.

Why: every other row of the validation is either this project's method or a baseline it wrote itself.
CellCycleNet (:mod:`deepcycle_core.net.cellcyclenet`) is what a user could pick instead: released
weights that call G1 vs S/G2 from a nuclear stain. Its question is narrower than a clock's, so the
comparison is on its terms: G1 vs S/G2, AUROC and accuracy, on the validation's judged held-out cells
(every ``heldout_every``-th frame of each held-out full-cycle track, :func:`.describe.cell_selection`)
whose true phase is G1, S or G2 (mitoses are outside its question) and whose nucleus our detection
masks (the peer needs a mask; every row is scored on the same cells).

The rows (:data:`ROWS`):

* **CellCycleNet zero-shot** -- the released 2-D weights, eval mode, fed by its own pipeline (masks from
  our detection; the canvas fixed, see the net module); its P(S/G2), its threshold 0.5;
* **CellCycleNet fine-tuned** -- the same network fine-tuned by its own training code on OUR training
  cells only (split ``train``; its validation pass on split ``val``), labelled by FUCCI; the held-out
  nuclei are put on the canvas with the factors of those training cells (its demo predicts a split of
  the data set it fine-tuned on, with one set of factors);
* **our clock** / **our nuclear-only network** -- the cycle heads' positions (chapter 04), measured from
  where the FUCCI-labelled fitting cells put the S/G2 -> G1 turn (:func:`cycle_origin`, near the head's
  division at 0), called S/G2 above a cut fitted on the same cells (:func:`best_cut`);
* **integrated DNA** / **nuclear area** -- the hand-made features (:mod:`.features`), cut the same way.

Labels: FUCCI's single-positive classes (:func:`fucci_phase`: red-high/green-low = G1, red-low/green-high
= S/G2); low/low (early G1 and, in reporters with a gap, early S) and both-high (the G1/S overlap) are
left unlabelled. Nothing is fitted on a held-out cell; every row is scored against the TRUE phase, and
the FUCCI cut's own error against the truth is reported beside them (:func:`fucci_error`), since every
trained or cut row inherits it.

The peer's probabilities come from the ``peer`` stage (:func:`run_peer`, ``deepcycle peer``), which
writes ``RUN/peer/`` -- the probabilities, the fine-tuned weights, a summary -- with a stamp of the
store, split, wheel and recipe it was made from: a chapter reads them while they are current (a network
fine-tuned on another CPU gives other last digits) and makes them again when they are not. torch-free
here; the network runs in :mod:`deepcycle_core.net.cellcyclenet`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..data import fingerprint
from ..data.atomic import atomic_write, write_json_atomic, write_parquet_atomic
from ..data.runs import RunDir
from ..data.store import CellStore, open_store
from .describe import cell_selection, ids_key, load_split, run_describe, thin_tracks

__all__ = [
    "PEER_ROWS",
    "RECIPE",
    "ROWS",
    "SCORES_NAME",
    "STAGE_VERSION",
    "SUMMARY_NAME",
    "WEIGHTS_NAME",
    "auroc",
    "best_cut",
    "compare",
    "cycle_origin",
    "fucci_error",
    "fucci_phase",
    "load_peer_scores",
    "peer_dir",
    "peer_params",
    "register_cli",
    "run_peer",
    "truth_phase",
]

#: The rows of the comparison, in the order printed.
ROWS: tuple[str, ...] = ("CellCycleNet zero-shot", "CellCycleNet fine-tuned", "our clock",
                         "our nuclear-only network", "integrated DNA", "nuclear area")
#: The peer's rows (read from the peer stage's file).
PEER_ROWS: dict[str, str] = {"CellCycleNet zero-shot": "zero_shot", "CellCycleNet fine-tuned": "fine_tuned"}
SCORES_NAME = "cellcyclenet.parquet"
#: Bumped when what the stage computes changes, so a file made by an older version is made again.
STAGE_VERSION = 1
WEIGHTS_NAME = "finetuned.pt"
SUMMARY_NAME = RunDir.SUMMARY_NAME
#: FUCCI class code -> label (0 = G1, 1 = S/G2): the single-positive classes (deepcycle_core.data.fucci).
_FUCCI_LABEL = {1: 0, 2: 1}
#: The stage's recipe: cells fine-tuned on (a seeded sample of the FUCCI-labelled split-train cells, and of
#: split-val cells for its validation pass), its demo's 10 epochs, the detector's scale, one thread (batch-4 training on two shared
#: cores ran 10x slower with two threads than with one).
RECIPE: dict[str, Any] = {"train_cells": 1200, "val_cells": 300, "epochs": 10, "diameter_px": 16.0, "threads": 1}


def _run(run: RunDir | str | Path) -> RunDir:
    return run if isinstance(run, RunDir) else RunDir(Path(run))


def peer_dir(run: RunDir | str | Path) -> Path:
    """``RUN/peer/``: the peer stage's outputs and stamp."""
    return _run(run).root / "peer"


# ------------------------------------------------------------------------------------------------
# labels
# ------------------------------------------------------------------------------------------------
def fucci_phase(classes: Sequence[int] | np.ndarray) -> np.ndarray:
    """(n,) 0 = G1 (red-high, green-low), 1 = S/G2 (red-low, green-high), -1 = unlabelled (low/low, both-high)."""
    c = np.asarray(classes, dtype=np.int64)
    out = np.full(c.shape, -1, dtype=np.int64)
    for code, label in _FUCCI_LABEL.items():
        out[c == code] = label
    return out


def truth_phase(true_phase: Sequence[str] | np.ndarray) -> np.ndarray:
    """(n,) 0 = G1, 1 = S or G2, -1 = M (outside a G1 vs S/G2 call)."""
    ph = np.asarray(true_phase).astype(str)
    return np.where(ph == "G1", 0, np.where(np.isin(ph, ("S", "G2")), 1, -1))


def fucci_error(classes: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """The FUCCI cut against the truth on cells with a true G1/S/G2 phase: the share it labels, its error
    there, and the error of the coarsest cut that labels every cell (red-high = G1)."""
    lab, t = fucci_phase(classes), np.asarray(truth)
    ok = t >= 0
    have = ok & (lab >= 0)
    every = np.where(np.isin(np.asarray(classes), (1, 3)), 0, 1)
    return {"cells": int(ok.sum()), "labelled": float(have.sum() / max(ok.sum(), 1)),
            "error_labelled": float(np.mean(lab[have] != t[have])) if have.any() else float("nan"),
            "error_red_split": float(np.mean(every[ok] != t[ok])) if ok.any() else float("nan")}


# ------------------------------------------------------------------------------------------------
# scores, cuts, AUROC
# ------------------------------------------------------------------------------------------------
def auroc(score: np.ndarray, label: np.ndarray) -> float:
    """P(score of an S/G2 cell > score of a G1 cell), ties counted half (label 1 = S/G2)."""
    from scipy.stats import rankdata

    s, y = np.asarray(score, dtype=float), np.asarray(label).astype(bool)
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    r = rankdata(s)
    return float((r[y].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


def best_cut(score: np.ndarray, label: np.ndarray, ridge: float = 1e-3) -> float:
    """The score at which a class-balanced logistic fit of ``label`` (0 = G1, 1 = S/G2) on ``score`` crosses
    one half: S/G2 is called at or above it.

    A smooth optimum (Newton's method on the standardised score, a small ridge on the slope so that
    separable labels still give a finite cut), so a change in the last bits of the scores -- another CPU's
    network outputs -- moves the cut by as little, unlike the arg-max of an accuracy, which jumps between
    near-equal cuts wherever the labels leave a gap (FUCCI's do, at G1/S).
    """
    s, y = np.asarray(score, dtype=float), np.asarray(label).astype(float)
    if not (y.any() and (1 - y).any()):
        raise ValueError("a cut needs cells of both labels")
    mu, sd = float(s.mean()), float(s.std()) or 1.0
    x = (s - mu) / sd
    w = np.where(y > 0, 0.5 / y.sum(), 0.5 / (1 - y).sum())  # each label weighs one half
    X = np.stack([np.ones_like(x), x], axis=1)
    beta = np.zeros(2)
    for _ in range(200):
        p = 1.0 / (1.0 + np.exp(-(X @ beta)))
        grad = X.T @ (w * (p - y)) + np.array([0.0, ridge * beta[1]])
        hess = (X * (w * p * (1 - p))[:, None]).T @ X + np.diag([0.0, ridge])
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.abs(step).max() < 1e-13:
            break
    if not beta[1] > 0:
        raise ValueError("the score does not rise from G1 to S/G2 on the fitting cells")
    return float(mu - sd * beta[0] / beta[1])


def cycle_origin(position: np.ndarray, label: np.ndarray) -> float:
    """Where S/G2 ends and G1 begins on the cycle, from labelled positions in [0, 1): halfway forward from
    the circular mean of the S/G2 cells to that of the G1 cells. A smooth function of the positions (no
    arg-max), so the last bits of another CPU cannot move it by more than they move the means."""
    pos, y = np.asarray(position, dtype=float), np.asarray(label).astype(bool)
    if y.all() or not y.any():
        raise ValueError("an origin needs cells of both labels")
    mean = [np.mod(np.angle(np.exp(2j * np.pi * pos[sel]).mean()) / (2 * np.pi), 1.0) for sel in (~y, y)]
    return float(np.mod(mean[1] + 0.5 * np.mod(mean[0] - mean[1], 1.0), 1.0))


# ------------------------------------------------------------------------------------------------
# the peer stage: CellCycleNet's probabilities on the judged held-out cells, zero-shot and fine-tuned
# ------------------------------------------------------------------------------------------------
def _peer_cells(split: pd.DataFrame, cells: pd.DataFrame, *, heldout_every: int, train_cells: int, val_cells: int,
                seed: int) -> dict[str, np.ndarray]:
    """The judged held-out cells (as the validation judges them) and seeded samples of the FUCCI-labelled
    split-train and split-val cells, in a seeded random order (its training code does not shuffle)."""
    held = np.sort(split.loc[split["split"] == "heldout", "cell_id"].to_numpy(dtype=np.int64))
    if held.size == 0:
        raise ValueError("the split has no held-out cells: nothing to compare the peer on")
    labelled = cells.loc[fucci_phase(cells["class"].to_numpy()) >= 0, "cell_id"].to_numpy(dtype=np.int64)
    rng = np.random.default_rng(seed)
    out = {"judged": thin_tracks(cells, held, heldout_every)}
    for part, n in (("train", train_cells), ("val", val_cells)):
        pool = np.intersect1d(split.loc[split["split"] == part, "cell_id"].to_numpy(dtype=np.int64), labelled)
        if pool.size == 0:
            raise ValueError(f"no FUCCI-labelled cell in split {part!r} to fine-tune CellCycleNet on")
        out[part] = rng.permutation(pool)[: int(n)]
    return out


def _inputs(store: CellStore, ids: np.ndarray, diameter_px: float) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """(nuclear crops, masks, tiles): each tile the indices of the masked cells of one frame."""
    from ..net.cellcyclenet import nucleus_masks

    crops = store.take(ids)[:, store.channel_index("nuclear")]
    masks = nucleus_masks(crops, diameter_px)
    ok = masks.any(axis=(1, 2))
    rows = store.cells.set_index("cell_id").loc[ids]
    key = rows["field"].astype(str).to_numpy() + "/" + rows["frame"].astype(str).to_numpy()
    tiles = [np.nonzero(ok & (key == k))[0] for k in np.unique(key[ok])]
    return crops, masks, tiles


def _pipeline(crops: np.ndarray, masks: np.ndarray, tiles: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, Any, int]:
    """(single-nucleus images, which cells have one, factors, centre-cropped count): its pipeline on a data set."""
    from ..net.cellcyclenet import factors_from_tiles, single_nucleus_images, tile_params

    factors = factors_from_tiles([tile_params(crops[t], masks[t]) for t in tiles])
    ok = masks.any(axis=(1, 2))
    images, cropped = single_nucleus_images(crops[ok], masks[ok], factors)
    return images, ok, factors, cropped


def peer_params(run: RunDir, *, heldout_every: int, seed: int, recipe: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the peer stage's outputs depend on besides the store and the split (recorded in its stamp)."""
    from ..net.cellcyclenet import FINETUNE, wheel_info

    info = wheel_info()
    return {"stage_version": STAGE_VERSION, "cellcyclenet": info["version"], "weights_sha256": info["weights_sha256"], "finetune": dict(FINETUNE),
            **{**RECIPE, **(recipe or {})}, "heldout_every": int(heldout_every), "seed": int(seed)}


def _command(run: RunDir, heldout_every: int, seed: int) -> str:
    return f"deepcycle peer --run {fingerprint.display_path(run.root)} --heldout-every {heldout_every} --seed {seed}"


def load_peer_scores(run: RunDir | str | Path, *, heldout_every: int = 3, seed: int = 0,
                     recipe: dict[str, Any] | None = None) -> pd.DataFrame:
    """The peer stage's ``cellcyclenet.parquet`` after checking its stamp (StaleInputError naming the command)."""
    run = _run(run)
    folder = peer_dir(run)
    path = folder / SCORES_NAME
    fingerprint.check_stamp(folder, outputs=path, command=_command(run, heldout_every, seed),
                            inputs={"store": run.store, "split": run.split},
                            params=peer_params(run, heldout_every=heldout_every, seed=seed, recipe=recipe))
    return pd.read_parquet(path)


def run_peer(run: RunDir | str | Path, *, heldout_every: int = 3, seed: int = 0, recipe: dict[str, Any] | None = None,
             reuse: bool = True) -> pd.DataFrame:
    """CellCycleNet's P(S/G2) on the judged held-out cells, zero-shot and fine-tuned; written to ``RUN/peer/``.

    Kept as it is while its stamp shows it was made from the current store, split, wheel and recipe
    (``reuse``). Columns: ``cell_id, masked, cropped_to_canvas, zero_shot, fine_tuned`` (NaN where our
    detection gave no mask).
    """
    run = _run(run)
    if reuse:
        try:
            return load_peer_scores(run, heldout_every=heldout_every, seed=seed, recipe=recipe)
        except (FileNotFoundError, fingerprint.StaleInputError):
            pass
    import torch  # the stage runs the network; torch's threads are restored after

    from ..net import cellcyclenet as ccn

    rec = {**RECIPE, **(recipe or {})}
    params = peer_params(run, heldout_every=heldout_every, seed=seed, recipe=recipe)
    store, split = open_store(run.store), load_split(run)
    ids = _peer_cells(split, store.cells, heldout_every=heldout_every, train_cells=rec["train_cells"],
                      val_cells=rec["val_cells"], seed=seed)
    t0, threads = time.perf_counter(), torch.get_num_threads()
    torch.set_num_threads(int(rec["threads"]))
    try:
        crops, masks, tiles = _inputs(store, ids["judged"], rec["diameter_px"])
        judged, ok, f_judged, cropped = _pipeline(crops, masks, tiles)
        zero = ccn.predict(ccn.load_peer(), judged)
        # its fine-tuning data set: the labelled training and validation cells, with their own factors
        fit_ids = np.concatenate([ids["train"], ids["val"]])
        fcrops, fmasks, ftiles = _inputs(store, fit_ids, rec["diameter_px"])
        fit_images, fit_ok, f_fit, fit_cropped = _pipeline(fcrops, fmasks, ftiles)
        labels = fucci_phase(store.cells.set_index("cell_id").loc[fit_ids[fit_ok], "class"].to_numpy())
        n_train = int(fit_ok[: len(ids["train"])].sum())
        tuned, log = ccn.fine_tune(fit_images[:n_train], labels[:n_train], fit_images[n_train:], labels[n_train:],
                                   seed=seed, threads=int(rec["threads"]), settings={"n_epochs": int(rec["epochs"])})
        # the held-out nuclei on the fine-tuning data set's factors and canvas (its demo predicts a split of
        # the data set it fine-tuned on; here the factors come from the training cells alone)
        fine = ccn.predict(tuned, ccn.single_nucleus_images(crops[ok], masks[ok], f_fit)[0])
    finally:
        torch.set_num_threads(threads)
    scores = pd.DataFrame({"cell_id": ids["judged"], "masked": ok})
    scores["cropped_to_canvas"] = False
    scores.loc[ok, "cropped_to_canvas"] = _cropped_flags(crops[ok], masks[ok], f_judged)
    for name, values in (("zero_shot", zero), ("fine_tuned", fine)):
        scores[name] = np.nan
        scores.loc[ok, name] = values
    summary = {"judged_cells": int(len(ok)), "masked": int(ok.sum()), "cropped_to_canvas": int(cropped),
               "factors_heldout": f_judged.as_dict(), "factors_finetune": f_fit.as_dict(),
               "finetune_cells": {"train": n_train, "val": int(fit_ok.sum()) - n_train,
                                  "cropped_to_canvas": int(fit_cropped)},
               "finetune": {k: v for k, v in log.items() if k != "printed"}, "finetune_printed": log["printed"][-8:],
               "seconds": round(time.perf_counter() - t0, 1), "params": params}
    _write(run, scores, summary, tuned, params, heldout_every, seed)
    return scores


def _cropped_flags(crops: np.ndarray, masks: np.ndarray, factors: Any) -> np.ndarray:
    from ..net.cellcyclenet import single_nucleus_image

    return np.array([single_nucleus_image(c, m, factors)[1] for c, m in zip(crops, masks)], dtype=bool)


def _write(run: RunDir, scores: pd.DataFrame, summary: dict[str, Any], tuned: Any, params: dict[str, Any],
           heldout_every: int, seed: int) -> None:
    import torch

    folder = peer_dir(run)
    fingerprint.remove_stamp(folder)
    paths = [folder / SCORES_NAME, folder / WEIGHTS_NAME, folder / SUMMARY_NAME]
    write_parquet_atomic(paths[0], scores, parents=True)
    atomic_write(paths[1], lambda tmp: torch.save(tuned.model.state_dict(), tmp))
    write_json_atomic(paths[2], summary, indent=1)
    fingerprint.write_stamp(folder, stage="peer", outputs=paths, inputs={"store": run.store, "split": run.split},
                            params=params, command=_command(run, heldout_every, seed), root=run.root)


# ------------------------------------------------------------------------------------------------
# the comparison
# ------------------------------------------------------------------------------------------------
def _scores_of_ours(run: RunDir, fit: np.ndarray, judged: np.ndarray, fit_label: np.ndarray) -> dict[str, tuple[np.ndarray, float, np.ndarray]]:
    """Our rows: ``row -> (score of the judged cells, cut, score of the fitting cells)``."""
    from ..clock.head import clock_positions
    from .validate import read_method_descriptors

    out = {}
    for row, method in (("our clock", "deepcycle_clock"), ("our nuclear-only network", "nuclear_only_clock")):
        desc = read_method_descriptors(method, run, run, fit, judged).set_index("cell_id")
        pos_fit = clock_positions(desc.loc[fit].reset_index())[0]
        lab = fit_label >= 0
        origin = cycle_origin(pos_fit[lab], fit_label[lab])  # S/G2 -> G1, near the head's 0 (division)
        score_fit = np.mod(pos_fit - origin, 1.0)
        cut = best_cut(score_fit[lab], fit_label[lab])
        out[row] = (np.mod(clock_positions(desc.loc[judged].reset_index())[0] - origin, 1.0), cut, score_fit)
    feats = read_method_descriptors("nuclear_area", run, run, fit, judged).set_index("cell_id")
    for row, col in (("integrated DNA", "nuclear_integrated"), ("nuclear area", "nuclear_area")):
        f = feats.loc[fit, col].to_numpy(dtype=float)
        out[row] = (feats.loc[judged, col].to_numpy(dtype=float), best_cut(f[fit_label >= 0], fit_label[fit_label >= 0]), f)
    return out


def compare(run: RunDir | str | Path, *, fit_cells: int = 10000, heldout_every: int = 3, seed: int = 0,
            recipe: dict[str, Any] | None = None) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, float]]:
    """``(table, per-cell scores, FUCCI's own error)`` of every row of :data:`ROWS` on the same held-out cells.

    Reads the peer stage's current file (:func:`load_peer_scores`) and the describe stage's descriptors for
    the validation's cell selection (``fit_cells``, ``heldout_every``, ``seed`` as chapter 05 passes them).
    Table columns: ``row, auroc, accuracy, called_sg2, cells, cut`` (S/G2 called at or above ``cut``); the scores table has ``cell_id, true_age,
    true_phase, truth`` and one score column a row (S/G2 high; the peer's are probabilities).
    """
    run = _run(run)
    store, split = open_store(run.store), load_split(run)
    cells = store.cells.set_index("cell_id")
    fit, _, judged = cell_selection(split, store.cells, fit_cells=fit_cells, seed=seed, heldout_every=heldout_every)
    peer = load_peer_scores(run, heldout_every=heldout_every, seed=seed, recipe=recipe).set_index("cell_id")
    if not np.array_equal(np.sort(peer.index.to_numpy()), judged):
        raise fingerprint.StaleInputError(peer_dir(run) / SCORES_NAME, "it covers other held-out cells than the "
                                          "validation judges", _command(run, heldout_every, seed))
    fit_label = fucci_phase(cells.loc[fit, "class"].to_numpy())
    ours = _scores_of_ours(run, fit, judged, fit_label)
    truth = truth_phase(cells.loc[judged, "true_phase"].to_numpy())
    keep = (truth >= 0) & peer.loc[judged, "masked"].to_numpy(dtype=bool)
    per_cell = pd.DataFrame({"cell_id": judged, "true_age": cells.loc[judged, "true_age"].to_numpy(),
                             "true_phase": cells.loc[judged, "true_phase"].to_numpy(), "truth": truth})
    rows = []
    for row in ROWS:
        if row in PEER_ROWS:
            score, cut = peer.loc[judged, PEER_ROWS[row]].to_numpy(dtype=float), 0.5
        else:
            score, cut, _ = ours[row]
        per_cell[row] = score
        s, y = score[keep], truth[keep]
        call = s >= cut
        rows.append({"row": row, "auroc": auroc(s, y), "accuracy": float(np.mean(call == y.astype(bool))),
                     "called_sg2": float(call.mean()), "cells": int(keep.sum()), "cut": float(cut)})
    fucci = fucci_error(cells.loc[judged, "class"].to_numpy()[keep], truth[keep])
    fucci["not_masked"] = int(((truth >= 0) & ~keep).sum())
    return pd.DataFrame(rows), per_cell[keep].reset_index(drop=True), fucci


# ------------------------------------------------------------------------------------------------
# command line
# ------------------------------------------------------------------------------------------------
def _cli_peer(args: argparse.Namespace) -> int:
    from ..data.runs import run_dir

    run = RunDir(Path(args.run)) if args.run else run_dir(args.profile)
    select = dict(fit_cells=args.fit_cells, heldout_every=args.heldout_every, seed=args.seed)
    run_peer(run, heldout_every=args.heldout_every, seed=args.seed, reuse=not args.no_cache)
    run_describe(run, methods=["deepcycle_clock", "nuclear_only_clock", "nuclear_area"], **select)
    table, _, fucci = compare(run, **select)
    for r in table.itertuples():
        print(f"{r.row}: G1 vs S/G2 AUROC {r.auroc:.3f} (accuracy {r.accuracy:.3f}, {r.cells} held-out cells)")
    print(f"FUCCI phase cut vs truth: labels {fucci['labelled']:.0%} of these cells, error {fucci['error_labelled']:.3f}"
          f" on them; red split on every cell: error {fucci['error_red_split']:.3f}")
    print(f"wrote {fingerprint.display_path(peer_dir(run))}/ (the peer's probabilities, fine-tuned weights, summary, stamp)")
    return 0


def register_cli(subparsers: Any) -> None:
    """Add ``deepcycle peer``."""
    from ..__main__ import add_command

    p = add_command(subparsers, "peer")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--run", help="run folder (data/runs/<profile>)")
    g.add_argument("--profile", default="default", help="profile name when --run is not given")
    p.add_argument("--fit-cells", type=int, default=10000, help="fitting cells of the validation (chapter 05: 10000)")
    p.add_argument("--heldout-every", type=int, default=3, help="judge every k-th frame of each held-out track")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-cache", action="store_true", help="fine-tune and predict again even when current")
    p.set_defaults(func=_cli_peer)
