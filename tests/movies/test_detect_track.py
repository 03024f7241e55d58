"""Detection, tracking with divisions, and truth matching on a synthetic movie we fully control."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))
from ingest_synth import synthetic_movie  # noqa: E402

from deepcycle_core.movies.detect_track import detect_nuclei, match_frame, match_truth, normalise_frame, track_spots  # noqa: E402


@pytest.fixture(scope="module")
def movie():
    return synthetic_movie(frames=12, size=160, cells=8, seed=1)


def test_detects_every_nucleus_with_subpixel_accuracy(movie):
    mov, truth = movie
    g = truth[truth["frame"] == 0]
    yx = detect_nuclei(mov[0, 1], diameter_px=14)
    assert len(yx) == len(g)
    r, c = match_frame(yx[:, ::-1], g[["x", "y"]].to_numpy(), 3.0)
    assert len(r) == len(g)
    err = np.hypot(*(yx[r, ::-1] - g[["x", "y"]].to_numpy()[c]).T)
    assert err.max() < 1.0


def test_no_nuclei_in_pure_noise():
    rng = np.random.default_rng(0)
    img = rng.normal(500, 20, (128, 128)).astype(np.uint16)
    assert len(detect_nuclei(img, 14)) <= 1


def test_detection_independent_of_exposure(movie):
    mov, _ = movie
    a = detect_nuclei(mov[3, 1], 14)
    b = detect_nuclei(mov[3, 1].astype(np.float64) * 3 + 1000, 14)
    np.testing.assert_allclose(np.sort(a, axis=0), np.sort(b, axis=0), atol=1e-6)
    z = normalise_frame(mov[3, 1])
    assert abs(np.median(z)) < 1e-6


def test_tracks_and_divisions_from_perfect_spots(movie):
    _, truth = movie
    lin = track_spots(truth[["frame", "x", "y"]], max_step_px=5, max_division_px=12)
    both = pd.concat([truth.reset_index(drop=True), lin.add_prefix("d_")], axis=1)
    # one detected track per true track, and each daughter's parent is its mother's track
    assert both.groupby("track_id")["d_track_id"].nunique().eq(1).all()
    mother_of = both.groupby("d_track_id")["track_id"].first()
    for _, row in both[both["parent_track_id"] >= 0].drop_duplicates("track_id").iterrows():
        assert mother_of[row["d_parent_track_id"]] == row["parent_track_id"]
        assert row["d_birth_frame"] == 6  # daughters appear one frame after divide_at=5
    founders = both[both["parent_track_id"] < 0]
    assert (founders["d_division_frame"] == 5).all() and (founders["d_birth_frame"] == -1).all()
    assert not both["d_full_cycle"].any()  # nobody is both born and dividing in this movie


def test_full_cycle_track_flagged():
    # one cell born at frame 3 (mother divides at 2), dividing at 8 (daughters at 9)
    rows = [(f, 50.0 + 0.2 * f, 50.0) for f in range(3)]
    rows += [(f, 58.0, 50.0) for f in range(3, 9)] + [(f, 42.0, 50.0) for f in range(3, 12)]
    rows += [(f, 64.0, 44.0) for f in range(9, 12)] + [(f, 52.0, 56.0) for f in range(9, 12)]
    spots = pd.DataFrame(rows, columns=["frame", "x", "y"])
    lin = track_spots(spots, max_step_px=4, max_division_px=12, min_daughter_frames=2)
    cyc = lin[(spots["x"] == 58.0).to_numpy()]
    assert cyc["full_cycle"].all()
    assert (cyc["birth_frame"] == 3).all() and (cyc["division_frame"] == 8).all()
    assert lin["track_id"].nunique() == 5


def test_one_frame_glitch_is_not_a_division():
    rows = [(f, 50.0 + 0.3 * f, 50.0) for f in range(10)] + [(4, 60.0, 50.0)]
    spots = pd.DataFrame(rows, columns=["frame", "x", "y"])
    lin = track_spots(spots, max_step_px=5, max_division_px=12)
    main = lin.iloc[:10]
    assert main["track_id"].nunique() == 1 and (main["division_frame"] == -1).all()
    assert (lin["parent_track_id"] == -1).all()


def test_match_truth_perfect_and_degraded(movie):
    _, truth = movie
    det = truth.copy()
    rep = match_truth(det, truth, 3.0)
    assert rep.detection_recall == 1 and rep.detection_precision == 1 and rep.division_recall == 1
    fewer = det.drop(index=det.index[::10])
    rep2 = match_truth(fewer, truth, 3.0)
    assert rep2.detection_recall == pytest.approx(len(fewer) / len(truth))
    assert rep2.detection_precision == 1
    shifted = det.assign(x=det["x"] + 10)
    assert match_truth(shifted, truth, 3.0).detection_recall == 0


def test_match_truth_interior_only(movie):
    _, truth = movie
    rep = match_truth(truth, truth, 3.0, shape=(160, 160), margin_px=60)
    inner = truth[(truth.x.between(60, 100)) & (truth.y.between(60, 100))]
    assert rep.n_truth == len(inner)
