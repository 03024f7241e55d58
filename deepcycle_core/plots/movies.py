"""Figures and printed tables of the your-own-movies chapter (``book/06_your_movies``).

Why here: the chapter only calls the package; ingestion and its scoring against the truth live in
:mod:`deepcycle_core.movies`, and this module only presents them: the detections and tracks drawn over
one frame, what the ingestion stored, and the match against the truth as a table.
"""

from __future__ import annotations

from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..movies.detect_track import MatchReport

__all__ = ["CROP_PX", "detections_figure", "ingest_summary", "match_table"]

#: Side of the crop windows drawn on the brightfield panel (the store's crops are 48 x 48 px).
CROP_PX = 48


def detections_figure(nuclear: np.ndarray, brightfield: np.ndarray, spots: pd.DataFrame, frame: int, tail: int = 12) -> Figure:
    """One frame: the nuclear channel with detections, recent track paths and new daughters; the brightfield with crop windows.

    ``spots`` is the ingestion's spot table (``spots_out``: x, y, frame, track_id, birth_frame, in_store);
    ``tail`` is how many frames of each track's history are drawn behind its nucleus.
    """
    now = spots[spots["frame"] == frame]
    past = spots[(spots["frame"] <= frame) & (spots["frame"] > frame - tail) & spots["track_id"].isin(now["track_id"])]
    newborn = now[(now["birth_frame"] >= 0) & (now["birth_frame"] > frame - tail)]
    cmap = matplotlib.colormaps["tab20"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 6))
    axes[0].imshow(nuclear, cmap="gray", vmin=np.percentile(nuclear, 1), vmax=np.percentile(nuclear, 99.7))
    for tid, g in past.groupby("track_id"):
        axes[0].plot(g["x"], g["y"], "-", color=cmap(tid % 20), lw=1.5)
    axes[0].plot(now["x"], now["y"], "+", color="yellow", ms=6)
    axes[0].plot(newborn["x"], newborn["y"], "o", mfc="none", mec="red", ms=12)
    axes[0].set_title(f"Hoechst, frame {frame}: detections, tracks, new daughters (red)")
    axes[1].imshow(brightfield, cmap="gray")
    kept = now[now["in_store"]]
    half = CROP_PX / 2 + 0.5
    for x, y in zip(kept["x"], kept["y"]):
        cx, cy = round(x), round(y)
        axes[1].add_patch(plt.Rectangle((cx - half, cy - half), CROP_PX, CROP_PX, fill=False, ec="cyan", lw=0.6))
    axes[1].set_title("brightfield with the crop windows of the stored cells")
    for ax in axes:
        ax.set_axis_off()
    fig.tight_layout()
    return fig


def ingest_summary(cells: pd.DataFrame, meta: dict[str, Any]) -> str:
    """What the ingestion stored: spots, border drops, cells, tracks, full-cycle tracks, channels, FUCCI classes.

    ``cells`` is the store's cell table and ``meta`` its metadata (``store.meta``, with its ``ingest`` record).
    """
    info = meta["ingest"]
    tracks = cells.drop_duplicates("track_id")
    return "\n".join([
        f"spots detected: {info['n_spots']}; too close to the border for a crop: {info['n_border_dropped']}",
        f"cells in the store: {len(cells)} in {cells['track_id'].nunique()} tracks, "
        f"{int(tracks['full_cycle'].sum())} of them full-cycle",
        f"channels: {[(c['name'], c['role']) for c in meta['channels']]}",
        f"FUCCI classes: {cells['class'].value_counts().sort_index().to_dict()}",
    ])


def match_table(rep: MatchReport) -> pd.DataFrame:
    """The match against the truth as a table: each rate (3 significant digits) and how many it is out of."""
    table = pd.DataFrame(
        {
            "value": [rep.detection_recall, rep.detection_precision, rep.division_recall, rep.division_precision, rep.full_cycle_intact],
            "out of": [rep.n_truth, rep.n_detected, rep.n_truth_divisions, rep.n_detected_divisions, rep.n_truth_full_cycle],
        },
        index=["detection recall", "detection precision", "division recall", "division precision", "full-cycle tracks intact"],
    )
    table["value"] = table["value"].map(lambda v: f"{v:.3g}")
    return table
