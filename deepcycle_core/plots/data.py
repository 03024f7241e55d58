"""The figures and printed tables of the data chapter (``book/01_data.ipynb``).

Why a module: the chapter reads like a methods section and only calls these functions; each one
draws (or formats) exactly what the chapter showed when the drawing was inline, so the book's
figures and printed numbers do not change. Everything here is presentation of the simulated store
(crops along the cycle, FUCCI around division, the four classes, growth, the single-feature
baseline); the science it shows is computed by ``deepcycle_core.data`` and
``deepcycle_core.validation``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..data import fucci
from .views import display_range, ring_image

__all__ = [
    "class_balance_table",
    "class_phase_table",
    "crops_along_cycle_figure",
    "feature_age_figure",
    "feature_baseline_summary",
    "fucci_division_figure",
    "fucci_division_table",
    "fucci_class_plane",
    "growth_figure",
    "growth_summary",
    "pick_crops_along_cycle",
    "store_summary",
]

#: Resolution of the chapter's matplotlib figures (the book's inline figures).
_DPI = 90


def _subplots(*args: Any, **kwargs: Any):
    import matplotlib.pyplot as plt

    return plt.subplots(*args, dpi=_DPI, **kwargs)


def _full_cycle_tracks(cells: pd.DataFrame) -> pd.Series:
    """True cycle length of each full-cycle track (born and divided in the movie)."""
    return cells.loc[cells["full_cycle"]].groupby("track_id")["true_cycle_h"].first()


def store_summary(store: Any) -> str:
    """What the store holds: crops, channels, frames, tracks, true cycle lengths, phase shares."""
    cells = store.cells
    par = store.meta["provenance"]["parameters"]
    interval = store.meta["frame_interval_min"]
    n_frames = cells["frame"].max() + 1
    full_tracks = cells.loc[cells["full_cycle"], "track_id"].unique()
    cycle = _full_cycle_tracks(cells)
    shares = {k: round(float(v), 3) for k, v in cells["true_phase"].value_counts(normalize=True).sort_index().items()}
    return "\n".join([
        f"crops: {store.n_cells:,} of {store.channels} ({store.crops.shape[-1]}x{store.crops.shape[-2]} px, uint16)",
        f"fields: {par['fields']}, frames: {n_frames} every {interval:.0f} min "
        f"({n_frames * interval / 60:.1f} h), pixel {store.meta['pixel_size_um']} um",
        f"tracks: {cells['track_id'].nunique():,}; full-cycle tracks (born and divided in the movie): {len(full_tracks)}",
        f"true cycle length of the full-cycle tracks: {cycle.mean():.1f} +/- {cycle.std():.1f} h",
        f"share of crops per true phase: {shares}",
    ])


def pick_crops_along_cycle(cells: pd.DataFrame, seed: int = 0, bins: int = 16, per_bin: int = 2) -> np.ndarray:
    """Row positions of ``per_bin`` random cells from each of ``bins`` equal bins of true age (seeded).

    Why: a gallery that covers the cycle evenly, the same crops for the same seed.
    """
    rng = np.random.default_rng(seed)
    edges = np.linspace(0, 1, bins + 1)
    pick: list[int] = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        idx = np.nonzero(((cells["true_age"] >= lo) & (cells["true_age"] < hi)).to_numpy())[0]
        pick.extend(sorted(rng.choice(idx, per_bin, replace=False)))
    return np.array(pick)


def crops_along_cycle_figure(cells: pd.DataFrame, crops: np.ndarray, pick: np.ndarray):
    """Two crops per column (Hoechst, brightfield), columns by true age, a FUCCI swatch above each.

    ``pick`` comes from :func:`pick_crops_along_cycle` (two cells per column); ``crops`` are their
    crops (cells x channels x h x w). The swatch is each cell's measured FUCCI colour, scaled to the
    population's 99th percentile, so the label the network learns from is visible next to the image.
    """
    n_cols = len(pick) // 2
    scale_r = np.percentile(cells["fucci_red"], 99)
    scale_g = np.percentile(cells["fucci_green"], 99)
    fig, axes = _subplots(5, n_cols, figsize=(16, 5.6), gridspec_kw={"height_ratios": [0.25, 1, 1, 1, 1]})
    for j in range(n_cols):
        for k in range(2):
            i = 2 * j + k
            row = cells.iloc[pick[i]]
            axes[1 + 2 * k, j].imshow(display_range(crops[i, 0]), cmap="gray")
            axes[2 + 2 * k, j].imshow(display_range(crops[i, 1]), cmap="gray")
            if k == 0:
                rgb = np.zeros((1, 2, 3))
                for kk in range(2):
                    rr = cells.iloc[pick[2 * j + kk]]
                    rgb[0, kk] = [np.clip(rr.fucci_red / scale_r, 0, 1), np.clip(rr.fucci_green / scale_g, 0, 1), 0]
                axes[0, j].imshow(rgb, aspect="auto")
                axes[0, j].set_title(f"{row.true_age:.2f}\n{row.true_phase}", fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    for r, name in enumerate(["FUCCI", "Hoechst", "brightfield", "Hoechst", "brightfield"]):
        axes[r, 0].set_ylabel(name, fontsize=8)
    fig.suptitle("crops ordered by true cycle position (age fraction and phase above each column)", fontsize=10)
    fig.tight_layout()
    return fig


def _aligned_on_division(cells: pd.DataFrame, frame_interval_min: float) -> pd.DataFrame:
    """The full-cycle tracks' cells with ``t_div_h``: hours relative to the track's division."""
    full = cells[cells["full_cycle"]].copy()
    full["t_div_h"] = (full["frame"] - full["division_frame"]) * frame_interval_min / 60
    return full


def fucci_division_figure(cells: pd.DataFrame, frame_interval_min: float, n_tracks: int = 40):
    """FUCCI red and green of the full-cycle tracks aligned on division: ``n_tracks`` thin tracks and
    the median over all tracks in 30-minute bins, one panel per reporter."""
    full = _aligned_on_division(cells, frame_interval_min)
    fig, ax = _subplots(1, 2, figsize=(11, 3.4), sharex=True)
    for k, (col, colour) in enumerate([("fucci_red", "tab:red"), ("fucci_green", "tab:green")]):
        for _, tr in list(full.groupby("track_id"))[:n_tracks]:
            ax[k].plot(tr["t_div_h"], tr[col], color=colour, alpha=0.15, lw=0.7)
        med = full.groupby((full["t_div_h"] * 2).round() / 2)[col].median()
        ax[k].plot(med.index, med.values, color="black", lw=2, label="median of tracks")
        ax[k].set_xlabel("hours relative to division")
        ax[k].set_ylabel(f"{col} (background-subtracted)")
        ax[k].legend(fontsize=8)
    fig.tight_layout()
    return fig


def fucci_division_table(cells: pd.DataFrame, frame_interval_min: float) -> pd.DataFrame:
    """Median FUCCI red and green of the full-cycle tracks in 3 h bins before division (rows: reporter)."""
    full = _aligned_on_division(cells, frame_interval_min)
    tbin = (full["t_div_h"] // 3) * 3
    prof = full.groupby(tbin)[["fucci_red", "fucci_green"]].median().round(0)
    prof.index.name = "hours to division (3 h bins)"
    return prof.T


def fucci_class_plane(cells: pd.DataFrame, width: int = 420, height: int = 420):
    """Every cell in the log-red / log-green plane, coloured by its FUCCI class (Datashader)."""
    pts = pd.DataFrame({
        "log_red": np.log10(np.clip(cells["fucci_red"].to_numpy(), 0, None) + 10.0),
        "log_green": np.log10(np.clip(cells["fucci_green"].to_numpy(), 0, None) + 10.0),
        "class": cells["class"].to_numpy(),
    })
    fig = ring_image(pts, color_by="class", x="log_red", y="log_green", width=width, height=height,
                     title=f"{len(pts):,} cells: FUCCI classes (Datashader)")
    ax = fig.axes[0]
    ax.set_xlabel("log10(red + 10)")
    ax.set_ylabel("log10(green + 10)")
    ax.set_aspect("auto")
    return fig


def class_balance_table(cells: pd.DataFrame) -> pd.DataFrame:
    """Cells and share of each FUCCI class (columns ``class``, ``cells``, ``share``)."""
    balance = cells["class"].value_counts().sort_index()
    return pd.DataFrame({"class": [fucci.CLASS_NAMES[i] for i in balance.index], "cells": balance.values,
                         "share": (balance.values / balance.sum()).round(3)})


def class_phase_table(cells: pd.DataFrame) -> pd.DataFrame:
    """Share of each FUCCI class's cells in each true phase (rows: class, columns: G1, S, G2, M)."""
    ct = pd.crosstab(cells["class"].map(dict(enumerate(fucci.CLASS_NAMES))), cells["true_phase"], normalize="index")
    return ct[list(fucci.PHASES)].round(2)


def growth_figure(hours: np.ndarray, counts: np.ndarray, slope: float, intercept: float, doubling_h: float):
    """Cells per frame on a log axis with the fitted line ``2 ** (intercept + slope * hours)``."""
    fig, ax = _subplots(figsize=(6, 3.2))
    ax.semilogy(hours, counts, ".", ms=3, label="cells in the imaged area")
    ax.semilogy(hours, 2 ** (intercept + slope * hours), "k-", label=f"fit: doubling {doubling_h:.1f} h")
    ax.set_xlabel("time (h)")
    ax.set_ylabel("cells per frame")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def growth_summary(counts: pd.Series, hours: np.ndarray, doubling_h: float, cells: pd.DataFrame) -> str:
    """One line: first and last counts, the fitted doubling time, the mean true cycle length."""
    mean_cycle = cells.groupby("track_id")["true_cycle_h"].first().mean()
    return (f"cells per frame: {counts.iloc[0]} at 0 h -> {counts.iloc[-1]} at {hours[-1]:.1f} h; "
            f"fitted doubling time {doubling_h:.1f} h; mean true cycle length {mean_cycle:.1f} h")


def feature_baseline_summary(table: pd.DataFrame, cells: pd.DataFrame) -> str:
    """The single-feature table (3 decimals) and a line naming the best feature against no information."""
    best = table.drop(index="no information")["mae_h"].idxmin()
    return (table.round(3).to_string()
            + f"\n\nbest single feature: {best}, circular MAE {table.loc[best, 'mae_h']:.2f} h "
            f"(no information: {table.loc['no information', 'mae_h']:.2f} h; cycle ~{cells['true_cycle_h'].mean():.0f} h)")


def feature_age_figure(feats: pd.DataFrame, cells: pd.DataFrame):
    """Integrated Hoechst and nuclear area against true cycle position (log hexbin, binned median)."""
    df = feats.merge(cells[["cell_id", "true_age", "true_phase"]], on="cell_id")
    fig, axes = _subplots(1, 2, figsize=(11, 3.6))
    for ax, col, label in [(axes[0], "nuclear_integrated", "integrated Hoechst (counts)"),
                           (axes[1], "nuclear_area", "nuclear area (px)")]:
        ax.hexbin(df["true_age"], df[col], gridsize=60, bins="log", cmap="magma",
                  extent=(0, 1, 0, np.percentile(df[col], 99.5)))
        med = df.groupby((df["true_age"] * 40).astype(int) / 40)[col].median()
        ax.plot(med.index + 1 / 80, med.values, color="cyan", lw=1.5, label="median")
        ax.set_xlabel("true cycle position (0 = division)")
        ax.set_ylabel(label)
        ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig
