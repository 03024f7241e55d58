"""Nuclei without segmentation, tracks with divisions, and how well both match a ground truth.

Detection follows the paper: no segmentation, only nucleus centres found in the nuclear channel.
We use one Laplacian-of-Gaussian scale set by the expected nucleus diameter (a blob of radius r
answers most strongly at sigma = r / sqrt(2)), then local maxima above a noise-relative threshold:
one filter per frame, so it is fast on large frames and has a single physical parameter.
The detector (:func:`detect_nuclei`, :func:`normalise_frame`) and the one-to-one matching
(:func:`match_frame`) live in :mod:`deepcycle_core.data.nuclei`, shared with the simulator; they are
handed on from here.

Tracking is laptrack's LAP linker (Jaqaman et al. 2008) with splitting enabled, so a dividing cell
ends its track and two daughter tracks start with it as parent. We only convert its graph into the
store's lineage columns; no linking is home-made.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from ..data.nuclei import detect_nuclei, match_frame, normalise_frame
from ..data.values import whole_number

__all__ = [
    "normalise_frame",
    "detect_nuclei",
    "track_spots",
    "MatchReport",
    "match_frame",
    "match_truth",
]


# ------------------------------------------------------------------------------------------------
# detection
# ------------------------------------------------------------------------------------------------
# normalise_frame and detect_nuclei live in deepcycle_core.data.nuclei (the simulator cuts crops at
# detected positions too, and the sim wing comes before this one); they are handed on from here.


# ------------------------------------------------------------------------------------------------
# tracking
# ------------------------------------------------------------------------------------------------
def track_spots(
    spots: pd.DataFrame,
    max_step_px: float,
    max_division_px: float | None = None,
    gap_frames: int = 4,
    min_daughter_frames: int = 4,
    max_gap_px: float | None = None,
) -> pd.DataFrame:
    """Link per-frame spots (columns ``frame, x, y``) into tracks with divisions, via laptrack.

    Returns the lineage columns aligned with ``spots``' rows: ``track_id, parent_track_id,
    birth_frame, division_frame, full_cycle``. ``max_step_px`` bounds a frame-to-frame move,
    ``max_division_px`` the distance from a mother to a daughter's first position (default
    1.5 x max_step_px), ``gap_frames`` how many frames a nucleus may be missed (touching nuclei
    merge for a while) and ``max_gap_px`` how far it may move meanwhile (default 2.5 x
    max_step_px). Gap closing must be able to win over splitting, or a nucleus reappearing
    after a merge is taken for a daughter of its neighbour. A split whose
    daughter lives fewer than ``min_daughter_frames`` frames is a detection glitch, not a
    division (unless the movie ends first): it is dropped so that one noisy spot does not cut a
    cell cycle in two.
    """
    with warnings.catch_warnings():  # laptrack imports tqdm.auto, which warns in a notebook without ipywidgets
        warnings.filterwarnings("ignore", message="IProgress not found")
        from laptrack import LapTrack

    gap_frames = whole_number("gap_frames", gap_frames, minimum=0)  # 0: no gap closing
    n = len(spots)
    lineage = pd.DataFrame(
        {
            "track_id": np.full(n, -1, np.int64),
            "parent_track_id": np.full(n, -1, np.int64),
            "birth_frame": np.full(n, -1, np.int64),
            "division_frame": np.full(n, -1, np.int64),
            "full_cycle": np.zeros(n, bool),
        }
    )
    if n == 0:
        return lineage
    frames = spots["frame"].to_numpy(dtype=np.int64)
    xy = spots[["y", "x"]].to_numpy(dtype=np.float64)
    f0, f1 = int(frames.min()), int(frames.max())
    order = np.argsort(frames, kind="stable")
    coords, rows = [], []
    for f in range(f0, f1 + 1):
        sel = order[frames[order] == f]
        coords.append(xy[sel] if len(sel) else np.empty((0, 2)))
        rows.append(sel)
    max_div = max_division_px if max_division_px is not None else 1.5 * max_step_px
    gap_px = max_gap_px if max_gap_px is not None else 2.5 * max_step_px
    tracker = LapTrack(
        cutoff=float(max_step_px) ** 2,
        gap_closing_cutoff=float(gap_px) ** 2 if gap_frames > 0 else False,
        gap_closing_max_frame_count=max(1, int(gap_frames) + 1),
        splitting_cutoff=float(max_div) ** 2,
        merging_cutoff=False,
        # alternative costs at the cutoffs (as TrackMate does): any link within the cutoff beats
        # leaving a spot unlinked; laptrack's percentile estimate is unstable with few spots
        track_start_cost=1.05 * float(max_step_px) ** 2,
        track_end_cost=1.05 * float(max_step_px) ** 2,
        segment_start_cost=1.05 * float(max(max_step_px, max_div)) ** 2,
        segment_end_cost=1.05 * float(max(max_step_px, max_div)) ** 2,
        no_splitting_cost=1.05 * float(max_div) ** 2,
    )
    if len(coords) == 1 or sum(len(c) for c in coords) < 2:
        graph_edges: list = []
        nodes = [(i, j) for i, c in enumerate(coords) for j in range(len(c))]
    else:
        tree = tracker.predict(coords)
        nodes = list(tree.nodes)
        graph_edges = list(tree.edges)

    # successors per node; a node with two successors is a division
    succ: dict[tuple, list[tuple]] = {}
    pred: dict[tuple, tuple] = {}
    for a, b in graph_edges:
        a, b = (a, b) if a[0] < b[0] else (b, a)
        succ.setdefault(a, []).append(b)
        pred[b] = a

    def chain(start: tuple) -> list[tuple]:
        out = [start]
        while len(succ.get(out[-1], [])) == 1:
            out.append(succ[out[-1]][0])
        return out

    # drop glitch divisions (a daughter branch shorter than min_daughter_frames, ending without a
    # division of its own): the short branch becomes its own orphan track, the long one continues
    for node in sorted(n for n in succ if len(succ[n]) == 2):
        kids = succ[node]
        lengths = []
        for k in kids:
            c = chain(k)
            # a branch cut short by the movie's end or still dividing is not a glitch
            lengths.append((len(c), len(succ.get(c[-1], [])) == 2 or c[-1][0] >= len(coords) - 1))
        short = [i for i, (length, divides) in enumerate(lengths) if length < min_daughter_frames and not divides]
        if short:
            drop = kids[short[0]] if len(short) == 1 else min(kids, key=lambda k: len(chain(k)))
            succ[node] = [k for k in kids if k != drop]
            pred.pop(drop, None)

    # segments: starts are nodes without a predecessor or whose predecessor divides
    starts = sorted(n for n in nodes if n not in pred or len(succ.get(pred[n], [])) == 2)
    seg_of: dict[tuple, int] = {}
    segments: list[list[tuple]] = []
    for s in starts:
        c = chain(s)
        for node in c:
            seg_of[node] = len(segments)
        segments.append(c)
    cols = {k: lineage[k].to_numpy().copy() for k in lineage.columns}
    for tid, seg in enumerate(segments):
        first, last = seg[0], seg[-1]
        parent = seg_of[pred[first]] if first in pred else -1
        birth = first[0] + f0 if first in pred else -1
        division = last[0] + f0 if len(succ.get(last, [])) == 2 else -1
        idx = np.array([rows[fr][j] for fr, j in seg])
        cols["track_id"][idx] = tid
        cols["parent_track_id"][idx] = parent
        cols["birth_frame"][idx] = birth
        cols["division_frame"][idx] = division
        cols["full_cycle"][idx] = birth >= 0 and division >= 0
    lineage = pd.DataFrame(cols)
    return lineage


# ------------------------------------------------------------------------------------------------
# agreement with a ground truth
# ------------------------------------------------------------------------------------------------
@dataclass
class MatchReport:
    """How detections and tracks agree with the truth (all fractions in [0, 1])."""

    detection_recall: float
    detection_precision: float
    division_recall: float
    division_precision: float
    full_cycle_intact: float
    n_truth: int
    n_detected: int
    n_truth_divisions: int
    n_detected_divisions: int
    n_truth_full_cycle: int

    def as_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


# match_frame lives in deepcycle_core.data.nuclei as well (handed on from here).


def _divisions(df: pd.DataFrame) -> pd.DataFrame:
    """One row per division: frame the daughters appear and where (mean of daughters' first spots)."""
    kids = df[df["parent_track_id"] >= 0]
    if kids.empty:
        return pd.DataFrame(columns=["parent", "frame", "x", "y"])
    first = kids.sort_values("frame", kind="stable").groupby("track_id", sort=True).first()
    ev = first.groupby("parent_track_id").agg(frame=("frame", "min"), x=("x", "mean"), y=("y", "mean"))
    return ev.reset_index().rename(columns={"parent_track_id": "parent"})


def _lineage_frames(df: pd.DataFrame) -> dict[str, np.ndarray]:
    """birth/division frames from track ids alone: first frame of a child, last frame of a parent."""
    first = df.groupby("track_id")["frame"].transform("min").to_numpy()
    last = df.groupby("track_id")["frame"].transform("max").to_numpy()
    has_kids = df["track_id"].isin(set(df["parent_track_id"][df["parent_track_id"] >= 0])).to_numpy()
    return {
        "birth_frame": np.where(df["parent_track_id"].to_numpy() >= 0, first, -1),
        "division_frame": np.where(has_kids, last, -1),
    }


def match_truth(
    detected: pd.DataFrame,
    truth: pd.DataFrame,
    max_dist_px: float,
    frame_tolerance: int = 2,
    intact_fraction: float = 0.9,
    shape: tuple[int, int] | None = None,
    margin_px: float = 0.0,
) -> MatchReport:
    """Compare detections/tracks with ground truth, both with ``frame, x, y, track_id, parent_track_id``.

    * detection recall/precision: per-frame Hungarian matching within ``max_dist_px``;
    * division recall/precision: divisions matched one to one when their daughters appear within
      ``frame_tolerance`` frames and ``2 x max_dist_px`` of each other;
    * full-cycle intact: fraction of truth tracks born and dividing inside the movie for which one
      detected track covers at least ``intact_fraction`` of its frames and has its birth and division
      within ``frame_tolerance`` frames of the truth.

    With ``shape`` (H, W) and ``margin_px``, only truth and detections at least ``margin_px`` from
    the border count (matching still sees everything, so nothing straddling the line is penalised):
    this scores the region where crops are actually taken.
    """
    det = detected.reset_index(drop=True)
    tru = truth.reset_index(drop=True)
    if "birth_frame" not in det.columns or "division_frame" not in det.columns:
        det = det.assign(**_lineage_frames(det))

    def interior(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        if shape is None:
            return np.ones(len(x), bool)
        h, w = shape
        return (x >= margin_px) & (x <= w - margin_px) & (y >= margin_px) & (y <= h - margin_px)

    det_track_of_truth = np.full(len(tru), -1, np.int64)
    t_hit = np.zeros(len(tru), bool)
    d_hit = np.zeros(len(det), bool)
    det_by_frame = {f: g.index.to_numpy() for f, g in det.groupby("frame")}
    for f, g in tru.groupby("frame"):
        ti = g.index.to_numpy()
        di = det_by_frame.get(f, np.empty(0, np.int64))
        r, c = match_frame(det.loc[di, ["x", "y"]].to_numpy(float), g[["x", "y"]].to_numpy(float), max_dist_px)
        t_hit[ti[c]] = True
        d_hit[di[r]] = True
        det_track_of_truth[ti[c]] = det.loc[di[r], "track_id"].to_numpy()
    t_in = interior(tru["x"].to_numpy(float), tru["y"].to_numpy(float))
    d_in = interior(det["x"].to_numpy(float), det["y"].to_numpy(float))
    recall = float((t_hit & t_in).sum()) / max(int(t_in.sum()), 1)
    precision = float((d_hit & d_in).sum()) / max(int(d_in.sum()), 1)

    tdiv, ddiv = _divisions(tru), _divisions(det)
    tdiv = tdiv[interior(tdiv["x"].to_numpy(float), tdiv["y"].to_numpy(float))] if len(tdiv) else tdiv
    n_div_match = 0
    if len(tdiv) and len(ddiv):
        dt = np.abs(tdiv["frame"].to_numpy()[:, None] - ddiv["frame"].to_numpy()[None, :])
        dd = np.hypot(
            tdiv["x"].to_numpy()[:, None] - ddiv["x"].to_numpy()[None, :],
            tdiv["y"].to_numpy()[:, None] - ddiv["y"].to_numpy()[None, :],
        )
        ok = (dt <= frame_tolerance) & (dd <= 2 * max_dist_px)
        cost = np.where(ok, dd + dt, 1e6)
        r, c = linear_sum_assignment(cost)
        matched = cost[r, c] < 1e6
        n_div_match = int(matched.sum())
        d_div_in = interior(ddiv["x"].to_numpy(float), ddiv["y"].to_numpy(float))
        n_ddiv = int(d_div_in.sum()) + int((matched & ~d_div_in[c]).sum())
    else:
        n_ddiv = len(ddiv)

    # full-cycle truth tracks: born (parent seen) and dividing inside the movie, mostly in the interior
    tdiv_parents = set(_divisions(tru)["parent"].tolist())
    born = tru[tru["parent_track_id"] >= 0]["track_id"].unique()
    full = [t for t in born if t in tdiv_parents]
    inner = tru.assign(_in=t_in).groupby("track_id")["_in"].mean()
    full = [t for t in full if inner[t] >= 0.5]
    track_info = det.groupby("track_id").agg(birth=("birth_frame", "first"), division=("division_frame", "first")) if len(det) else None
    t_first = tru.groupby("track_id")["frame"].min()
    t_last = tru.groupby("track_id")["frame"].max()
    intact = 0
    for t in full:
        sel = (tru["track_id"] == t).to_numpy()
        ids = det_track_of_truth[sel]
        ids = ids[ids >= 0]
        if len(ids) == 0 or track_info is None:
            continue
        vals, counts = np.unique(ids, return_counts=True)
        best = vals[np.argmax(counts)]
        if counts.max() < intact_fraction * sel.sum():
            continue
        b, d = track_info.loc[best, "birth"], track_info.loc[best, "division"]
        if b < 0 or d < 0:
            continue
        if abs(b - t_first[t]) <= frame_tolerance and abs(d - t_last[t]) <= frame_tolerance:
            intact += 1
    return MatchReport(
        detection_recall=recall,
        detection_precision=precision,
        division_recall=n_div_match / max(len(tdiv), 1),
        division_precision=n_div_match / max(n_ddiv, 1),
        full_cycle_intact=intact / max(len(full), 1),
        n_truth=int(t_in.sum()),
        n_detected=int(d_in.sum()),
        n_truth_divisions=int(len(tdiv)),
        n_detected_divisions=int(n_ddiv),
        n_truth_full_cycle=int(len(full)),
    )
