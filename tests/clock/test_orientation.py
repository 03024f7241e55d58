"""Orientation from the movie: direction from the tracks, origin from the births, folds reported."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from deepcycle_core.clock.orientation import TrackTable, orient_by_tracks, ring_quality, track_steps

FRAME_H = 1.0 / 6.0  # 10-min frames


def _movie(profile, n_tracks: int = 60, cycle_h: float = 24.0, noise: float = 0.01, seed: int = 0):
    """Partial tracks (half born in the movie, half present from its start) of cells whose ring position
    is ``profile(age)``; returns the positions and the cell table."""
    rng = np.random.default_rng(seed)
    rows, pos = [], []
    for k in range(n_tracks):
        born = k % 2 == 0
        a0 = 0.0 if born else rng.uniform(0.05, 0.95)
        n = int(rng.integers(40, 100))
        birth_frame = 5 if born else -1
        for i in range(n):
            age = a0 + i * FRAME_H / cycle_h
            if age >= 1.0:
                break
            frame = (5 if born else 0) + i
            rows.append({"field": 0, "track_id": k, "frame": frame, "time_h": frame * FRAME_H,
                         "birth_frame": birth_frame, "true_age": age})
            pos.append(profile(age) + rng.normal(0, noise))
    cells = pd.DataFrame(rows)
    return np.mod(pos, 1.0), cells


def test_track_table_reads_time_since_birth():
    _, cells = _movie(lambda a: a)
    tt = TrackTable.from_cells(cells)
    born = cells["birth_frame"].to_numpy() >= 0
    np.testing.assert_allclose(tt.since_birth_h[born], (cells["frame"] - cells["birth_frame"])[born] * FRAME_H)
    assert np.isnan(tt.since_birth_h[~born]).all()
    with pytest.raises(ValueError, match="track_id"):
        TrackTable.from_cells(cells.drop(columns="track_id"))


def test_steps_pair_cells_an_hour_apart_and_skip_gaps():
    pos = np.linspace(0, 0.5, 30)
    cells = pd.DataFrame({"track_id": 0, "frame": np.arange(30), "time_h": np.arange(30) * FRAME_H})
    cells.loc[15:, "time_h"] += 5.0  # a 5 h gap after frame 14: no pair may straddle it
    st = track_steps(pos, TrackTable.from_cells(cells), lag_h=1.0)
    assert len(st) == (15 - 6) + (15 - 6)
    np.testing.assert_allclose(st.dt_h, 1.0)
    np.testing.assert_allclose(st.step, 6 * 0.5 / 29)


@pytest.mark.parametrize("direction", [1, -1])
@pytest.mark.parametrize("origin", [0.0, 0.3, 0.85])
def test_a_clock_is_oriented_from_the_movie(direction, origin):
    """Raw ring positions run either way from an arbitrary origin; the tracks and births recover both."""
    raw, cells = _movie(lambda a: origin + direction * a)
    ori = orient_by_tracks(raw, TrackTable.from_cells(cells))
    assert ori.direction == direction
    assert abs(((ori.origin - origin) + 0.5) % 1.0 - 0.5) < 0.02
    assert ori.forward_tracks > 0.95 and ori.z > 5 and ori.n_births >= 10
    p = ori.apply(raw)
    err = np.abs(((p - cells["true_age"].to_numpy()) + 0.5) % 1.0 - 0.5)
    assert err.mean() < 0.03
    q = ring_quality(p, TrackTable.from_cells(cells))
    assert q.verdict == "clock" and q.backward_share == 0.0
    assert q.forward_rate == pytest.approx(1 / 24.0, rel=0.2)


def test_no_motion_is_no_orientation():
    rng = np.random.default_rng(1)
    raw, cells = _movie(lambda a: 0.0, noise=0.0)
    raw = rng.uniform(0, 1, len(raw))  # positions unrelated to time
    with pytest.raises(ValueError, match="do not move consistently"):
        orient_by_tracks(raw, TrackTable.from_cells(cells))


def test_too_few_births_is_an_error():
    raw, cells = _movie(lambda a: a)
    cells["birth_frame"] = -1
    with pytest.raises(ValueError, match="too few divisions"):
        orient_by_tracks(raw, TrackTable.from_cells(cells))


def test_a_folded_ring_is_reported():
    """A ring that runs forward for most of the cycle, then back over part of the same arc before
    division: oriented by the majority of the tracks, it is still not called a clock."""

    def folded(a):
        return np.interp(a, [0.0, 0.7, 1.0], [0.0, 0.8, 0.55])

    raw, cells = _movie(folded, n_tracks=120)
    tt = TrackTable.from_cells(cells)
    ori = orient_by_tracks(raw, tt)
    assert ori.direction == 1
    q = ring_quality(ori.apply(raw), tt)
    assert q.verdict == "folded" and not q.is_clock and q.backward_share > 0.15
    assert "backwards" in q.reason
    d = q.to_dict()
    assert d["verdict"] == "folded" and len(d["arcs"]["arc_start"]) == 12 and d["n_tracks"] == len(q.tracks)


def test_a_stalling_clock_is_still_a_clock():
    """Positions that barely move through G1 (the descriptor changes little there) and advance after:
    slow, not folded."""
    raw, cells = _movie(lambda a: np.interp(a, [0.0, 0.4, 1.0], [0.0, 0.02, 1.0]), n_tracks=120, noise=0.03)
    tt = TrackTable.from_cells(cells)
    q = ring_quality(orient_by_tracks(raw, tt).apply(raw), tt)
    assert q.verdict == "clock" and q.backward_share < 0.05


def test_a_crescent_cannot_be_oriented():
    """Out along an arc and back along the same arc: positions do not wind with time at all."""
    raw, cells = _movie(lambda a: np.interp(a, [0.0, 0.5, 1.0], [0.0, 0.5, 0.0]), n_tracks=120, noise=0.005)
    with pytest.raises(ValueError, match="do not move consistently"):
        orient_by_tracks(raw, TrackTable.from_cells(cells))


def test_a_reversed_orientation_is_reported():
    raw, cells = _movie(lambda a: a)
    tt = TrackTable.from_cells(cells)
    q = ring_quality((1.0 - raw) % 1.0, tt)
    assert q.verdict == "reversed" and q.median_spearman < -0.9


def test_a_weakly_reversed_orientation_is_reversed_not_a_clock():
    """Time runs backwards along most tracks, but noisily (median per-track Spearman about -0.3): any
    median below zero is "reversed", not only a strongly negative one; the same noise running forward
    is a clock."""
    raw, cells = _movie(lambda a: 0.1 * a, noise=0.03, seed=3)  # a slow clock under noise
    tt = TrackTable.from_cells(cells)
    q = ring_quality((1.0 - raw) % 1.0, tt, max_backward_share=1.0)
    assert -0.5 < q.median_spearman < 0 and q.verdict == "reversed" and not q.is_clock
    assert "backwards along most tracks" in q.reason
    q = ring_quality(raw, tt, max_backward_share=1.0)
    assert 0 < q.median_spearman < 0.5 and q.verdict == "clock"


# ------------------------------------------------------------------------------------------------
# the ring fit of the trajectory stage, oriented by the movie
# ------------------------------------------------------------------------------------------------
def _descriptors(pos: np.ndarray, seed: int = 0) -> np.ndarray:
    """2-D descriptors on a circle at the given ring positions (turns), with a little noise."""
    rng = np.random.default_rng(seed)
    ang = 2 * np.pi * pos
    return np.column_stack([np.cos(ang), np.sin(ang)]) + rng.normal(0, 0.02, (len(pos), 2))


def test_fit_ring_orients_by_the_movie_and_judges_the_clock():
    from deepcycle_core.clock.trajectory import fit_ring

    raw, cells = _movie(lambda a: 0.4 - a, n_tracks=120)  # runs the "wrong" way from an arbitrary point
    ring = fit_ring(_descriptors(raw), tracks=TrackTable.from_cells(cells), T_hours=24.0)
    assert ring.info["orientation"] == "movie" and ring.verdict == "clock"
    p = ring.transform(_descriptors(raw, seed=1))["pseudotime"].to_numpy()
    err = np.abs(((p - cells["true_age"].to_numpy()) + 0.5) % 1.0 - 0.5)
    assert err.mean() < 0.03
    assert np.isfinite(ring.hours(p)).all()
    # the paper's SOM nodes are walked in the same direction from the same origin
    node = ring.transform(_descriptors(raw))["som_node"].to_numpy()
    som_err = np.abs((((node + 0.5) / len(ring.som_nodes) - cells["true_age"].to_numpy()) + 0.5) % 1.0 - 0.5)
    assert som_err.mean() < 0.06  # a node is 1/30 of a turn wide; reversed or shifted would be ~0.25


def test_fit_ring_gives_no_hours_for_a_folded_ring():
    from deepcycle_core.clock.trajectory import fit_ring

    raw, cells = _movie(lambda a: np.interp(a, [0.0, 0.7, 1.0], [0.0, 0.8, 0.55]), n_tracks=120)
    ring = fit_ring(_descriptors(raw), tracks=TrackTable.from_cells(cells), T_hours=24.0)
    assert ring.verdict == "folded" and "backwards" in ring.info["quality"]["reason"]
    assert np.isnan(ring.hours(np.array([0.1, 0.5]))).all()


def test_fit_ring_falls_back_to_fucci_classes_without_enough_movie():
    """A snapshot-like table (no births seen): the FUCCI classes orient the ring, and it says so."""
    from deepcycle_core.clock.trajectory import fit_ring

    raw, cells = _movie(lambda a: a, n_tracks=120)
    cells["birth_frame"] = -1
    a = cells["true_age"].to_numpy()
    classes = np.select([a < 0.1, a < 0.35, a < 0.45], [0, 1, 3], 2)
    ring = fit_ring(_descriptors(raw), classes, tracks=TrackTable.from_cells(cells))
    assert ring.info["orientation"] == "fucci" and "could not orient" in ring.info["orientation_note"]
    with pytest.raises(ValueError, match="too few divisions"):
        fit_ring(_descriptors(raw), classes, tracks=TrackTable.from_cells(cells), orientation="movie")


@pytest.fixture(scope="module")
def preset_cells(tmp_path_factory):
    """A small movie of each FUCCI dynamic (same seed), simulated once for the tests below."""
    from deepcycle_core.sim.simulate import simulate
    from deepcycle_core.data.store import open_store

    root = tmp_path_factory.mktemp("presets")
    return {preset: open_store(simulate(root / preset, cells=30, hours=27.0, seed=2, difficulty=preset,
                                        progress=False)).cells
            for preset in ("default", "overlap")}


@pytest.mark.parametrize("preset", ["default", "overlap"])
def test_both_fucci_dynamics_orient_an_ideal_ring_by_either_rule(preset_cells, preset):
    """Descriptors that ARE the true clock (running the other way from an arbitrary point): the movie
    rule and the FUCCI snapshot rule both recover it, with a low/low gap at G1/S (default) and with
    the reporters overlapping instead (overlap). Nothing tuned to one dynamic."""
    from deepcycle_core.clock.trajectory import fit_ring

    cells = preset_cells[preset]
    a = cells["true_age"].to_numpy()
    raw = (0.3 - a + np.random.default_rng(0).normal(0, 0.01, len(a))) % 1.0
    for rule in ("movie", "fucci"):
        ring = fit_ring(_descriptors(raw), cells["class"].to_numpy(), tracks=TrackTable.from_cells(cells),
                        orientation=rule)
        p = ring.transform(_descriptors(raw))["pseudotime"].to_numpy()
        assert ring.info["orientation"] == rule and ring.verdict == "clock"
        assert np.mean(np.abs(((p - a) + 0.5) % 1.0 - 0.5)) < 0.04, rule


def test_the_presets_differ_in_early_s(preset_cells):
    """The two dynamics differ where they should: a few hours into S the default's cells are mostly
    low/low (red gone, green still below its median), the overlap preset's are not (both-high)."""
    low, both = {}, {}
    for preset, c in preset_cells.items():
        early_s = c["true_age"].between(0.45, 0.55) & c["true_phase"].eq("S")
        assert early_s.sum() > 100
        low[preset] = float((c.loc[early_s, "class"] == 0).mean())
        both[preset] = float((c.loc[early_s, "class"] == 3).mean())
    assert low["default"] > 0.6 and low["overlap"] < 0.1
    assert both["overlap"] > 0.6 and both["default"] < 0.2


def test_a_ring_the_tracks_give_no_direction_is_drawn_but_no_clock():
    """Out and back along one arc: the tracks agree on no direction. The stage still gives a ring (the
    FUCCI rule orients it, for drawing and comparison) but calls it undirected and gives no hours; with
    orientation="movie" it refuses."""
    from deepcycle_core.clock.trajectory import fit_ring

    raw, cells = _movie(lambda a: np.interp(a, [0.0, 0.5, 1.0], [0.0, 0.5, 0.0]), n_tracks=120, noise=0.005)
    # half the crescent's cells sit on the far side of the ring: a closed curve, but no clock
    raw = np.where(cells["track_id"].to_numpy() % 4 < 2, raw, (1.0 - raw) % 1.0)
    classes = np.select([raw < 0.1, raw < 0.35, raw < 0.45], [0, 1, 3], 2)  # FUCCI that follows the ring
    ring = fit_ring(_descriptors(raw), classes, tracks=TrackTable.from_cells(cells), T_hours=24.0)
    assert ring.verdict == "undirected" and ring.info["orientation"] == "fucci"
    assert "do not move consistently" in ring.info["quality"]["reason"]
    assert np.isnan(ring.hours(np.array([0.2, 0.7]))).all()
    with pytest.raises(ValueError, match="do not move consistently"):
        fit_ring(_descriptors(raw), classes, tracks=TrackTable.from_cells(cells), orientation="movie")
