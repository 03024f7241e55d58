"""Figures and printed tables of the validation chapter (``book/05_validate``).

Why here: the chapter reads like a methods section and only calls the package; the validation
itself (rings, scores, targets) lives in :mod:`deepcycle_core.validation`, and this module only
presents its results: one function per figure (returning the matplotlib ``Figure``) and one per
printed table or summary (returning a ``DataFrame`` or a string the chapter prints).
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..clock.metrics import circular_difference, circular_mean
from ..validation.scoring import MIN_COVERAGE, OURS, PAPER_READOUTS, PHASES, track_coverage

__all__ = [
    "CEILING",
    "CEILINGS",
    "LINE_WIDTH",
    "MAE_TARGET_H",
    "PEER_DECIMALS",
    "PEER_MARGIN",
    "SPEARMAN_TARGET",
    "ceiling_gap",
    "confusion_table",
    "era_error_by_age",
    "era_hexbin",
    "era_hours",
    "example_tracks",
    "held_out_summary",
    "inputs_found",
    "interval_text",
    "mae_bars",
    "misses_explained",
    "paper_curves",
    "paper_statistic_table",
    "peer_figure",
    "peer_lines",
    "peer_summary",
    "peer_table",
    "phase_errors",
    "phase_mae_table",
    "pick_example_tracks",
    "position_profile",
    "summary_text",
    "targets_text",
    "track_spearman_boxes",
    "track_spearman_quantiles",
]

#: The margin by which our clock's G1 vs S/G2 AUROC should beat the best CellCycleNet row (issue 23).
PEER_MARGIN = 0.05

#: The exact-variables ceiling's method name (a reference that uses ground truth, never a method).
CEILING = "ceiling_hidden"
#: Every ceiling row, from what the crops carry to the exact variables (all use ground truth).
CEILINGS: tuple[str, ...] = ("oracle_labels", "ceiling_crops", "ceiling_crops_phase", "ceiling_hidden")
#: The circular-MAE target (h) drawn as the dashed line of :func:`mae_bars`.
MAE_TARGET_H = 1.8
#: Printed lines longer than this are cut by the book's code boxes: the text functions wrap at it.
LINE_WIDTH = 76
#: The per-track Spearman target drawn as the dashed line of :func:`track_spearman_boxes`.
SPEARMAN_TARGET = 0.95


def inputs_found(paths: Mapping[str, str | os.PathLike], root: str | os.PathLike) -> str:
    """One line per input: found or MISSING, relative to ``root``, so a reader sees what the chapter reads."""
    return "\n".join(f"{name:12s} {'found' if Path(p).exists() else 'MISSING'}: {Path(p).relative_to(root)}"
                     for name, p in paths.items())


def held_out_summary(cells: pd.DataFrame, split: pd.DataFrame) -> str:
    """How many held-out tracks and cells the validation rests on, their cycle lengths and coverage."""
    held = cells[cells["cell_id"].isin(split.loc[split["split"] == "heldout", "cell_id"])]
    per_track = held.groupby(["field", "track_id"])["true_cycle_h"].first()
    cov = track_coverage(held)  # per track: the fraction of its cycle's frames in which it has a crop
    counts = ", ".join(f"{k} {n}" for k, n in split["split"].value_counts().sort_index().items())
    return "\n".join([
        f"cells in the store: {len(cells)}; split: " + counts,
        f"held-out full-cycle tracks: {len(per_track)}, {len(held)} cells",
        f"their cycle length: {per_track.mean():.1f} ± {per_track.std():.1f} h (min {per_track.min():.1f}, max {per_track.max():.1f})",
        f"fraction of held-out cells that are full_cycle: {round(float(held['full_cycle'].mean()), 3)}",
        f"tracks with a crop in >= {MIN_COVERAGE:.0%} of the frames of their cycle (the per-track statistics use these): "
        f"{int((cov >= MIN_COVERAGE).sum())}; the others left the field, or were lost, for part of their life",
    ])


def _wrap(lines: Sequence[str], width: int = LINE_WIDTH) -> str:
    """Each line wrapped at ``width`` (continuations indented), so the page shows all of it."""
    return "\n".join(textwrap.fill(line, width=width, subsequent_indent="  ", break_long_words=False) for line in lines)


def targets_text(targets: pd.DataFrame) -> str:
    """The targets, one line each with status, value and gap (a second line where one would be too long
    for the page), and how many are met."""
    lines = []
    for r in targets.itertuples():
        head, nums = f"{r.status:8s} {r.target}", f"value {r.value:.3f}, gap {r.gap:+.3f}"
        lines += [f"{head}  {nums}"] if len(head) + 2 + len(nums) <= LINE_WIDTH else [head, f"{'':9s}{nums}"]
    return "\n".join([*lines, f"{int((targets['status'] == 'PASS').sum())} of {len(targets)} targets met"])


def interval_text(table: pd.DataFrame, method: str = OURS) -> str:
    """Whether ``method``'s 80 % per-cell intervals hold: the share of held-out cells they cover (first
    line, exactly ``80 % intervals cover N % of held-out cells``), their median width in hours, and
    whether the width ranks cells by their error (Spearman of width against absolute error)."""
    t = table.set_index("method")
    if method not in t.index or "interval80_cover" not in t.columns or not np.isfinite(t.at[method, "interval80_cover"]):
        return f"no per-cell intervals for {method} in this run"
    r = t.loc[method]
    rho = float(r.get("width_error_spearman", np.nan))
    says = "wider for worse cells" if rho > 0 else "not wider for worse cells"
    return _wrap([
        f"80 % intervals cover {round(100 * float(r.interval80_cover))} % of held-out cells",
        f"median width {r.interval_width_h:.1f} h (arc x the cell's own cycle length)",
        f"width vs absolute error: Spearman {rho:+.1f} ({says})" if np.isfinite(rho)
        else "width vs absolute error: undefined (no spread)",
    ])


def _shown(table: pd.DataFrame) -> list[str]:
    return [m for m in table["method"] if not m.endswith("_hard")]


def mae_bars(table: pd.DataFrame, target_h: float = MAE_TARGET_H) -> Figure:
    """Circular MAE of every (non-hard) method as bars: ours green, the paper's read-outs orange, the
    ceilings grey and labelled with our clock's gap to each (the headline: what is left to the method)."""
    shown = _shown(table)
    vals = table.set_index("method").loc[shown, "circ_mae_h"]
    ours = float(vals.get(OURS, np.nan))
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(shown) + 0.8))
    colors = ["C2" if m == OURS else "C1" if m in PAPER_READOUTS else "0.5" if m in CEILINGS else "C0" for m in shown]
    ax.barh(range(len(shown)), vals.fillna(0).to_numpy(), color=colors)
    ax.set_yticks(range(len(shown)), shown)
    ax.invert_yaxis()
    ax.axvline(target_h, color="k", ls="--", lw=0.8)
    for k, (m, val) in enumerate(vals.items()):
        text = "no ring" if not np.isfinite(val) else f"{val:.2f}"
        if m in CEILINGS and np.isfinite(val) and np.isfinite(ours):
            text += f" (ours {ours - val:+.2f} h)"
        ax.text(0.1 if not np.isfinite(val) else val + 0.1, k, text, va="center", fontsize=8)
    ax.set_xlabel(f"circular MAE on held-out cells (h); dashed: the {target_h:g} h target")
    fig.tight_layout()
    return fig


def ceiling_gap(table: pd.DataFrame, target_h: float = MAE_TARGET_H) -> str:
    """Our clock's distance to each ceiling present (what better read-outs of these crops can still win)
    and the best crop ceiling's distance to the target (empty without our row or any ceiling)."""
    vals = table.set_index("method")["circ_mae_h"]
    have = [c for c in CEILINGS if c in vals.index and np.isfinite(vals[c])]
    if OURS not in vals.index or not have:
        return ""
    lines = [f"ours {vals[OURS]:.2f} h; {c} {vals[c]:.2f} h: {vals[OURS] - vals[c]:+.2f} h left" for c in have]
    crops = [c for c in have if c != CEILING] or have
    best = min(crops, key=lambda c: vals[c])
    lines.append(f"target {target_h:g} h: {target_h - vals[best]:+.2f} h above {best}")
    return _wrap(lines)


def misses_explained(table: pd.DataFrame, targets: pd.DataFrame, method: str = OURS, tol_h: float = 0.05) -> str:
    """Why each missed accuracy target is missed, from the reference rows of the same table: whether
    perfect labels would help (``oracle_labels``), what the crops with the exact phase and the exact
    hidden variables reach, and whether even those reach the target. Empty when nothing is missed."""
    t = table.set_index("method")
    miss = targets[(targets["status"] == "MISS") & ~targets["target"].str.contains(" x ")]
    lines: list[str] = []
    for target in miss["target"]:
        col, op, goal = target.split(" ")[0], target.split(" ")[1], float(target.split(" ")[2])
        if col not in t.columns or method not in t.index:
            continue
        ours = float(t.at[method, col])
        refs = {m: float(t.at[m, col]) for m in CEILINGS if m in t.index and np.isfinite(t.at[m, col])}
        better = (lambda a, b: a < b) if op == "<=" else (lambda a, b: a > b)
        reached = [m for m, v in refs.items() if (v <= goal if op == "<=" else v >= goal)]
        text = f"{col}: ours {ours:.3g}"
        if "oracle_labels" in refs:
            o = refs["oracle_labels"]
            scale = tol_h if col.endswith("_h") else 0.01
            if not better(o, ours) or abs(o - ours) <= scale:
                text += f"; the same network on TRUE ages {o:.3g}: the labels are not what limits it"
            else:
                text += f"; the same network on TRUE ages {o:.3g}: perfect labels would help"
        others = [f"{m} {v:.3g}" for m, v in refs.items() if m != "oracle_labels"]
        if others:
            text += "; " + ", ".join(others)
        crops = [m for m in reached if m != "ceiling_hidden"]
        if not reached:
            text += "; no reference row reaches the target, not even the exact hidden variables"
        elif not crops:
            text += "; only the exact hidden variables reach the target"
        else:
            text += f"; reached by {', '.join(crops)}"
        lines.append(text)
    if any(ln.startswith("hours_mae_h") and ("not even" in ln or "only the exact" in ln) for ln in lines):
        lines.append("hours from one crop are its position x T: a cell whose own cycle differs from T is off "
                     "in hours however well its position is read")
    return _wrap(lines)


def pick_example_tracks(tracks: pd.DataFrame, n: int, method: str = OURS) -> pd.DataFrame:
    """``n`` tracks of ``method`` spread evenly over the range of their per-track Spearman (best to worst)."""
    mine = tracks[tracks["method"] == method].sort_values("spearman", ignore_index=True)
    if mine.empty:
        return mine
    return mine.iloc[np.unique(np.linspace(0, max(len(mine) - 1, 0), n).round().astype(int))]


def example_tracks(pick: pd.DataFrame, pred: pd.DataFrame, cells: pd.DataFrame, method: str = OURS) -> Figure:
    """The clock's unwrapped position against hours since birth, one panel per picked track; dashed: a perfect clock."""
    dc = pred[pred["method"] == method].merge(cells[["cell_id", "track_id", "time_h", "true_cycle_h"]], on="cell_id")
    fig, axes = plt.subplots(1, max(len(pick), 1), figsize=(2.6 * max(len(pick), 1), 2.8), sharey=True)
    for ax, r in zip(np.atleast_1d(axes), pick.itertuples()):
        g = dc[dc["track_id"] == r.track_id].sort_values("time_h")
        t = g["time_h"].to_numpy() - g["time_h"].iloc[0]
        u = np.unwrap(2 * np.pi * g["pseudotime"].to_numpy()) / (2 * np.pi)
        ax.plot(t, u, ".", ms=2, color="C0")
        ax.plot([0, g["true_cycle_h"].iloc[0]], [0, 1], "k--", lw=0.8)
        ax.set_title(f"track {r.track_id}\nρ = {r.spearman:.3f}", fontsize=9)
        ax.set_xlabel("hours since birth")
    np.atleast_1d(axes)[0].set_ylabel("clock position (unwrapped)")
    fig.tight_layout()
    return fig


def _order(table: pd.DataFrame, tracks: pd.DataFrame) -> list[str]:
    return [m for m in table["method"] if m in set(tracks["method"])]


def track_spearman_boxes(tracks: pd.DataFrame, table: pd.DataFrame, target: float = SPEARMAN_TARGET) -> Figure:
    """Per-track Spearman of every method (in the table's order) as box plots; dashed: the target."""
    order = _order(table, tracks)
    fig, ax = plt.subplots(figsize=(7, 3))
    data = [tracks.loc[tracks["method"] == m, "spearman"].dropna().to_numpy() for m in order]
    ax.boxplot(data, vert=False, showfliers=True, flierprops={"markersize": 2})
    ax.set_yticks(range(1, len(order) + 1), order)
    ax.axvline(target, color="k", ls="--", lw=0.8)
    ax.set_xlabel("per-track Spearman: pseudotime vs time since birth")
    fig.tight_layout()
    return fig


def track_spearman_quantiles(tracks: pd.DataFrame, table: pd.DataFrame, target: float = SPEARMAN_TARGET) -> pd.DataFrame:
    """Per method: q10, median and q90 of the per-track Spearman and the share of tracks at the target or above.

    NaN for a row whose ring the movie judged no clock (folded, reversed, undirected): its per-track
    correlations measure a direction the tracks do not agree on, and swing with the last bits of the fit."""
    from ..clock.orientation import NOT_A_CLOCK

    order = _order(table, tracks)
    q = tracks.groupby("method")["spearman"].quantile([0.1, 0.5, 0.9]).unstack().reindex(order)
    q.columns = ["q10", "median", "q90"]
    q[f"share >= {target:g}"] = tracks.assign(ok=tracks["spearman"] >= target).groupby("method")["ok"].mean().reindex(order)
    if "ring" in table.columns:
        no_clock = table.loc[table["ring"].isin(NOT_A_CLOCK), "method"]
        q.loc[q.index.isin(no_clock)] = np.nan
    return q


def era_hours(pred: pd.DataFrame, cells: pd.DataFrame, method: str = OURS) -> pd.DataFrame:
    """The held-out cells of ``method`` that have hours, with their true age (empty frame with ``hours`` if none).

    (Named for history: the clock head's hours are position x T, not ERA; rings' hours are ERA.)"""
    era = pred[pred["method"] == method].merge(cells[["cell_id", "true_age_h", "true_cycle_h", "true_age"]], on="cell_id")
    era = era[np.isfinite(era["hours"])]
    return cells.iloc[:0].assign(hours=np.nan) if era.empty else era


def era_hexbin(era: pd.DataFrame, ylabel: str = "hours = position x T (clock head)") -> Figure:
    """A method's hours against true hours since birth as a hexbin density; dashed white: the diagonal."""
    fig, ax = plt.subplots(figsize=(4.2, 3.8))
    hb = ax.hexbin(era["true_age_h"], era["hours"], gridsize=40, mincnt=1, cmap="viridis")
    lim = float(max(era["true_age_h"].max(), era["hours"].max())) if len(era) else 30.0
    ax.plot([0, lim], [0, lim], "w--", lw=1)
    ax.set_xlabel("true hours since birth")
    ax.set_ylabel(ylabel)
    fig.colorbar(hb, ax=ax, label="cells")
    fig.tight_layout()
    return fig


def era_error_by_age(era: pd.DataFrame, bins: int = 5) -> pd.DataFrame:
    """Cells, signed bias and MAE of the hours (wrapped at each cell's cycle) per true-age bin."""
    err = era.assign(err_h=circular_difference(era["hours"], era["true_age_h"], era["true_cycle_h"]),
                     age_bin=pd.cut(era["true_age"], np.linspace(0, 1, bins + 1), include_lowest=True))
    return err.groupby("age_bin", observed=True)["err_h"].agg(cells="size", bias_h="mean", mae_h=lambda e: np.abs(e).mean())


def paper_curves(curves: pd.DataFrame, table: pd.DataFrame, methods: Sequence[str] = (OURS, "deepcycle", "handmade")) -> Figure:
    """The paper's averaged pseudotime curves (mean ± sd), raw and unwrapped, for ``methods`` found in ``curves``."""
    shown = [m for m in methods if m in set(curves["method"])]
    fig, axes = plt.subplots(1, 2, figsize=(8.4, 3.4), sharex=True)
    for ax, kind, title in [(axes[0], "raw", "raw pseudotime (as the paper)"), (axes[1], "unwrapped", "unwrapped along each track")]:
        for m in shown:
            c = curves[curves["method"] == m]
            col = "paper_spearman" if kind == "raw" else "paper_spearman_unwrapped"
            rho = float(table.set_index("method").at[m, col])
            ax.plot(c["relative_time"], c[f"mean_{kind}"], label=f"{m}: ρ = {rho:.3f}")
            ax.fill_between(c["relative_time"], c[f"mean_{kind}"] - c[f"sd_{kind}"], c[f"mean_{kind}"] + c[f"sd_{kind}"], alpha=0.15)
        ax.plot([0, 1], [0, 1], "k--", lw=0.8)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("relative time (birth = 0, division = 1)")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("mean pseudotime ± sd")
    fig.tight_layout()
    return fig


def paper_statistic_table(table: pd.DataFrame, curves: pd.DataFrame) -> str:
    """The paper's averaged-curve statistics next to the per-track and per-cell ones, with the paper's own figures."""
    cols = ["paper_spearman", "paper_spearman_unwrapped", "paper_kendall", "paper_kendall_unwrapped", "track_spearman_median", "circ_mae_h"]
    return "\n".join([
        f"tracks averaged: {int(curves.groupby('method')['n_tracks'].first().max())} (the table's n_tracks)",
        table.set_index("method")[cols].round(3).to_string(),
        "paper (its own tracks, not held out, raw statistic): Spearman 0.96, Kendall 0.84; BF-only 0.91/0.80; Hoechst-only 0.87/0.70",
    ])


def phase_errors(phases: pd.DataFrame, method: str = OURS) -> pd.DataFrame:
    """Per true phase: cells, MAE and signed bias (h) of ``method``."""
    return phases[phases["method"] == method].drop(columns="method")


def confusion_table(confusion: pd.DataFrame, method: str = OURS) -> pd.DataFrame:
    """True phase (rows) against the phase read off ``method``'s clock (columns), rows summing to 1."""
    return confusion[confusion["method"] == method].drop(columns="method").set_index("true_phase")


def position_profile(pred: pd.DataFrame, cells: pd.DataFrame, method: str = OURS, bins: int = 10) -> pd.DataFrame:
    """Circular mean predicted position per true-age bin: where along the true cycle the clock stalls or runs back."""
    dc = pred[pred["method"] == method].merge(cells[["cell_id", "true_age"]], on="cell_id")
    dc["true_age_tenth"] = pd.cut(dc["true_age"], np.linspace(0, 1, bins + 1), include_lowest=True)
    return dc.groupby("true_age_tenth", observed=True)["pseudotime"].agg(
        mean_pseudotime=lambda p: circular_mean(2 * np.pi * p) / (2 * np.pi), cells="size")


def phase_mae_table(phases: pd.DataFrame, methods: Sequence[str]) -> pd.DataFrame:
    """Circular MAE (h) by true phase (columns, in cycle order) for every method in ``methods`` (rows)."""
    wide = phases.pivot(index="method", columns="phase", values="mae_h").reindex(list(methods))
    return wide[[p for p in PHASES if p in set(phases["phase"])]]


def summary_text(table: pd.DataFrame, targets: pd.DataFrame, phases: pd.DataFrame, confusion: pd.DataFrame) -> str:
    """The chapter's numbers in one place: ours, its intervals, the paper's read-outs, the supervised baseline,
    the ceilings, failures, targets, the hard rows; wrapped to the page."""
    t = table.set_index("method")
    ours = t.loc[OURS]
    out = [f"ours ({OURS}): median per-track Spearman {ours.track_spearman_median:.3f}, Fisher-Lee {ours.fisher_lee:.3f}, "
           f"circular MAE {ours.circ_mae_h:.2f} h (worst tenth of the cycle {ours.get('worst_tenth_mae_h', np.nan):.2f} h), "
           f"hours MAE {ours.hours_mae_h:.2f} h; judged along the fitting tracks: {ours.ring}"]
    if np.isfinite(ours.get("interval80_cover", np.nan)):
        out.append(f"its 80 % intervals cover {round(100 * float(ours.interval80_cover))} % of held-out cells, median "
                   f"width {ours.interval_width_h:.1f} h, width-error Spearman {ours.width_error_spearman:+.1f}")
    out += [f"the paper's read-out {m}: median per-track Spearman {t.at[m, 'track_spearman_median']:.3f}, "
            f"circular MAE {t.at[m, 'circ_mae_h']:.2f} h, ring {t.at[m, 'ring']}" for m in PAPER_READOUTS if m in t.index]
    if "supervised_features" in t.index:
        sup = t.at["supervised_features", "circ_mae_h"]
        out.append(f"the supervised baseline (radial profiles + regressor, the head's labels): circular MAE {sup:.2f} h, "
                   f"{sup / ours.circ_mae_h:.2f} x ours")
    out += [f"{c} (uses truth): circular MAE {t.at[c, 'circ_mae_h']:.2f} h, hours MAE {t.at[c, 'hours_mae_h']:.2f} h; "
            f"ours is {ours.circ_mae_h - t.at[c, 'circ_mae_h']:+.2f} h from it" for c in CEILINGS if c in t.index]
    if OURS in set(phases["method"]):
        worst = phases[phases["method"] == OURS].sort_values("mae_h").iloc[-1]
        cm = confusion_table(confusion)
        offdiag = cm.where(~np.eye(len(cm), dtype=bool)).stack()
        a, b = offdiag.idxmax()
        out.append(f"largest error in phase {worst.phase}: {worst.mae_h:.2f} h (bias {worst.bias_h:+.2f} h); "
                   f"most frequent confusion: {offdiag.max():.0%} of true {a} cells are read as {b}.")
    better = [m for m in t.index if m != OURS and m not in CEILINGS and not m.endswith("_hard")
              and np.isfinite(t.at[m, "circ_mae_h"]) and t.at[m, "circ_mae_h"] < ours.circ_mae_h]
    out.append("methods with a smaller circular MAE than ours: " + (", ".join(better) if better else "none"))
    out.append(f"the paper's averaged-curve statistic for ours: Spearman {ours.paper_spearman:.3f} raw, "
               f"{ours.paper_spearman_unwrapped:.3f} unwrapped")
    missed = targets[targets["status"] != "PASS"]
    out.append("targets not met: " + ("none" if missed.empty else "; ".join(
        f"{r.target} ({r.status}" + (f", by {-r.gap:.3f})" if np.isfinite(r.gap) and r.gap < 0 else ")") for r in missed.itertuples())))
    out += [f"{m}: circular MAE {t.at[m, 'circ_mae_h']:.2f} h, Fisher-Lee {t.at[m, 'fisher_lee']:.3f}, "
            f"median track Spearman {t.at[m, 'track_spearman_median']:.3f}, {t.at[m, 'ring']}"
            for m in ("deepcycle_clock_hard", "deepcycle_hard", "handmade_hard") if m in t.index]
    return _wrap(out)


# ------------------------------------------------------------------------------------------------
# a released peer: CellCycleNet, G1 vs S/G2 (deepcycle_core.validation.peer)
# ------------------------------------------------------------------------------------------------
#: What each row of the peer comparison reads, for the printed table.
_PEER_READS = {
    "CellCycleNet zero-shot": "nucleus only (mask), one-group GroupNorm: shape and texture, not intensity",
    "CellCycleNet fine-tuned": "the same, fine-tuned on our training cells' FUCCI labels",
    "our clock": "both channels, per-frame normalised: intensity, size, texture, brightfield",
    "our nuclear-only network": "the nuclear channel, per-frame normalised",
    "integrated DNA": "one number: background-subtracted Hoechst summed over the nucleus",
    "nuclear area": "one number: the nucleus's area",
}


#: Rows printed to 2 decimals: a network fine-tuned on another CPU gives other 4th decimals (measured: AUROC
#: 0.95515 vs 0.95529 on the smoke run with numpy/ATen/oneDNN forced to the x86-64 baseline), so a fresh
#: run on another machine must not move a printed digit. Inference-only rows keep 3.
PEER_DECIMALS: dict[str, int] = {"CellCycleNet fine-tuned": 2}


def _digits(row: str) -> int:
    return PEER_DECIMALS.get(row, 3)


def peer_table(table: pd.DataFrame) -> pd.DataFrame:
    """The comparison as printed: AUROC, accuracy at the row's own cut, share called S/G2, what it reads
    (numbers as text, each row to its :data:`PEER_DECIMALS`)."""
    t = table.set_index("row")
    out = pd.DataFrame(index=t.index)
    for col, name in (("auroc", "AUROC"), ("accuracy", "accuracy"), ("called_sg2", "called S/G2")):
        out[name] = [f"{v:.{_digits(r)}f}" for r, v in t[col].items()]
    out["reads"] = [_PEER_READS.get(r, "") for r in out.index]
    return out


def peer_lines(table: pd.DataFrame, fucci: Mapping[str, float], margin: float = PEER_MARGIN) -> str:
    """One line a row (``<row>: G1 vs S/G2 AUROC 0.xxx``), FUCCI's own error, and the target's verdict."""
    lines = [f"{r.row}: G1 vs S/G2 AUROC {r.auroc:.{_digits(r.row)}f}" for r in table.itertuples()]
    lines.append(f"FUCCI phase cut vs truth (the labels of every fitted row): labels {fucci['labelled']:.1%} of these "
                 f"cells (red-high/green-low = G1, red-low/green-high = S/G2), error {fucci['error_labelled']:.3f} on "
                 f"them; the red split that labels every cell: error {fucci['error_red_split']:.3f}")
    auc = table.set_index("row")["auroc"]
    peers = auc[[r for r in auc.index if r.startswith("CellCycleNet")]]
    best = peers.idxmax()
    d = min(_digits(best), _digits("our clock"))
    gap = auc["our clock"] - (peers.max() + margin)
    verdict = "MET" if gap >= 0 else "MISSED"
    lines.append(f"target: our clock >= best CellCycleNet row + {margin:.2f}: {verdict} (our clock "
                 f"{auc['our clock']:.{d}f}, {best} {peers.max():.{d}f}, gap {gap:+.{d}f})")
    return "\n".join(lines)


def peer_summary(summary: Mapping[str, Any]) -> str:
    """The peer stage's record (``peer/summary.json``): masks, canvas, fine-tuning cells and time (a machine
    fact: the chapter prints it where nbval does not compare)."""
    f, ft = summary["factors_heldout"], summary["finetune"]
    return "\n".join([
        f"held-out cells judged: {summary['judged_cells']}, masked by our detection: {summary['masked']}; "
        f"nuclei larger than the canvas (centre-cropped): {summary['cropped_to_canvas']}",
        f"its factors on the held-out frames ({f['tiles']} tiles): norm {f['norm']:.0f}, scale {f['scale'][0]:.3f} "
        f"(median nucleus {f['scale'][0] * 37:.1f} px -> 37 px), canvas {int(f['canvas'][0])} x {int(f['canvas'][1])} px",
        f"fine-tuned on {summary['finetune_cells']['train']} training cells (its validation pass: "
        f"{summary['finetune_cells']['val']} cells), {ft['settings']['n_epochs']} epochs, batch {ft['settings']['batch_size']}, "
        f"lr {ft['settings']['initial_LR']:g}, {ft['threads']} thread(s): {ft['seconds']:.0f} s; the stage took {summary['seconds']:.0f} s",
    ])


def peer_figure(per_cell: pd.DataFrame, table: pd.DataFrame) -> Figure:
    """Each row's score against the true cycle position, coloured by true phase, with the row's cut (dashed):
    what each method can see along the cycle."""
    rows = list(table["row"])
    cuts = table.set_index("row")["cut"]
    ncol = 3
    fig, axes = plt.subplots(int(np.ceil(len(rows) / ncol)), ncol, figsize=(12, 6.8), sharex=True)
    colours = {"G1": "tab:red", "S": "tab:green", "G2": "tab:blue"}
    ylabels = {"our clock": "position from the G1 arc's start", "our nuclear-only network": "position from the G1 arc's start",
               "integrated DNA": "integrated Hoechst (a.u.)", "nuclear area": "nuclear area (px)"}
    for ax, row in zip(np.ravel(axes), rows):
        for phase, colour in colours.items():
            sel = per_cell["true_phase"] == phase
            ax.scatter(per_cell.loc[sel, "true_age"], per_cell.loc[sel, row], s=2, alpha=0.35, color=colour,
                       label=phase, rasterized=True)
        ax.axhline(cuts[row], color="k", lw=1, ls="--")
        auc = table.set_index("row").loc[row, "auroc"]
        ax.set(title=f"{row} (AUROC {auc:.2f})", ylabel=ylabels.get(row, "P(S/G2)"))
    for ax in np.ravel(axes)[len(rows):]:
        ax.axis("off")
    for ax in np.ravel(axes)[-ncol:]:
        ax.set_xlabel("true cycle position (0 = division)")
    np.ravel(axes)[0].legend(markerscale=5, loc="center right", fontsize=8)
    fig.tight_layout()
    return fig
