"""The held-out split: by track AND by lineage; FUCCI gates fitted without the evidence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from deepcycle_core.data import fucci
from deepcycle_core.data.split import FIT_SPLITS, SPLITS, fit_mask, holdout_masks, make_split, read_split, write_split


def _lineage_cells() -> pd.DataFrame:
    """Track 1 (a founder) divides into 2 and 3; track 2 is a full cycle and divides into 4 and 5;
    track 6 is an unrelated founder with daughter 7; track 8 lives in field 1 and has the same
    parent number as track 4 in field 0 (ids are per field)."""
    rows = []
    spec = [  # (field, track, parent, full_cycle, n frames)
        (0, 1, -1, False, 5), (0, 2, 1, True, 8), (0, 3, 1, False, 6), (0, 4, 2, False, 4), (0, 5, 2, False, 4),
        (0, 6, -1, False, 7), (0, 7, 6, False, 5), (1, 8, 2, False, 6), (0, -1, -1, False, 3),
    ]
    for field, tid, parent, full, n in spec:
        for f in range(n):
            rows.append({"field": field, "track_id": tid, "parent_track_id": parent, "full_cycle": full, "frame": f})
    cells = pd.DataFrame(rows)
    cells.insert(0, "cell_id", np.arange(len(cells)))
    return cells


def _split_of(cells: pd.DataFrame, split: pd.DataFrame) -> dict[tuple[int, int], set[str]]:
    merged = cells.merge(split, on="cell_id")
    return {k: set(g["split"].astype(str)) for k, g in merged.groupby(["field", "track_id"])}


def test_heldout_tracks_mothers_and_daughters_are_never_trained_on():
    cells = _lineage_cells()
    split = make_split(cells, val_fraction=0.3, seed=0)
    by_track = _split_of(cells, split)
    assert by_track[(0, 2)] == {"heldout"}  # the full-cycle track
    assert by_track[(0, 1)] == {"excluded"}  # its mother
    assert by_track[(0, 4)] == by_track[(0, 5)] == {"excluded"}  # its daughters
    # its sister, an unrelated lineage, and a same-numbered track of another field are free
    for key in [(0, 3), (0, 6), (0, 7), (1, 8), (0, -1)]:
        assert by_track[key] <= set(FIT_SPLITS), key
    # every track stays on one side
    assert all(len(v) == 1 for k, v in by_track.items() if k[1] >= 0)
    assert set(split["split"].astype(str)) <= set(SPLITS)


def test_masks_need_the_lineage_columns_and_agree_with_the_split():
    cells = _lineage_cells()
    heldout, excluded = holdout_masks(cells)
    split = make_split(cells, seed=3)["split"].astype(str).to_numpy()
    np.testing.assert_array_equal(heldout, split == "heldout")
    np.testing.assert_array_equal(excluded, split == "excluded")
    np.testing.assert_array_equal(fit_mask(cells), np.isin(split, FIT_SPLITS))
    with pytest.raises(ValueError, match="full_cycle"):
        holdout_masks(cells.drop(columns="full_cycle"))


def test_split_round_trip_and_bad_files(tmp_path):
    cells = _lineage_cells()
    split = make_split(cells)
    write_split(split, tmp_path / "split.parquet")
    back = read_split(tmp_path / "split.parquet")
    assert back["split"].tolist() == split["split"].astype(str).tolist()
    with pytest.raises(FileNotFoundError, match="missing.parquet"):
        read_split(tmp_path / "missing.parquet")
    pd.DataFrame({"cell_id": [0], "split": ["test"]}).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(ValueError, match="bad.parquet"):
        read_split(tmp_path / "bad.parquet")


def test_fucci_gates_ignore_the_heldout_cells():
    """Changing the held-out cells' FUCCI intensities must not move any other cell's class."""
    rng = np.random.default_rng(0)
    n = 400
    red, green = rng.gamma(2.0, 1.0, n), rng.gamma(2.0, 1.0, n)
    fit = np.arange(n) % 4 != 0
    a = fucci.classify(red, green, fit=fit)
    red2, green2 = red.copy(), green.copy()
    red2[~fit] *= 50.0  # the evidence becomes extreme
    green2[~fit] = 0.0
    b = fucci.classify(red2, green2, fit=fit)
    np.testing.assert_array_equal(a[fit], b[fit])
    # the gates are the fitting cells' medians: half of them are red-high
    assert np.mean(np.isin(a[fit], (1, 3))) == pytest.approx(0.5, abs=0.01)
    # without a mask the paper's rule over every cell is unchanged
    np.testing.assert_array_equal(fucci.classify(red, green), fucci.classify(red, green, fit=np.ones(n, bool)))
    with pytest.raises(ValueError, match="fit mask"):
        fucci.classify(red, green, fit=np.zeros(n, bool))


def test_simulated_store_gates_on_fitting_cells_only(tmp_path):
    """The simulator's class column: medians of the fitting cells, applied to every cell."""
    from deepcycle_core.sim.simulate import simulate
    from deepcycle_core.data.store import open_store

    store = open_store(simulate(tmp_path / "s", cells=12, hours=48.0, seed=1, progress=False, workers=1))
    cells = store.cells
    fit = fit_mask(cells)
    assert fit.sum() > 0 and (~fit).sum() > 0
    expected = fucci.classify(cells["fucci_red"], cells["fucci_green"], fit=fit)
    np.testing.assert_array_equal(cells["class"].to_numpy(), expected)


def _forest(n_trees: int) -> pd.DataFrame:
    """``n_trees`` family trees, each: founder (full cycle) -> two daughters (one full cycle, one not) ->
    a granddaughter of the full-cycle daughter; 2 full-cycle tracks a tree."""
    rows, tid = [], 0
    for t in range(n_trees):
        founder, d1, d2, g = tid, tid + 1, tid + 2, tid + 3
        tid += 4
        for track, parent, full in ((founder, -1, True), (d1, founder, True), (d2, founder, False), (g, d1, False)):
            for f in range(3):
                rows.append({"field": 0, "track_id": track, "parent_track_id": parent, "full_cycle": full,
                             "frame": f, "tree": t})
    cells = pd.DataFrame(rows)
    cells.insert(0, "cell_id", np.arange(len(cells)))
    return cells


def test_a_share_of_the_full_cycle_tracks_is_held_out_by_whole_family_trees():
    from deepcycle_core.data.split import MIN_HELDOUT_TRACKS, family_trees, lineage_holdout

    cells = _forest(100)  # 200 full-cycle tracks
    tree = family_trees(cells)
    assert pd.Series(tree).groupby(cells["tree"].to_numpy()).nunique().eq(1).all()  # one key a tree
    assert len(np.unique(tree)) == 100
    heldout, excluded = lineage_holdout(cells, share=0.5)
    held_tracks = cells.loc[heldout, "track_id"].nunique()
    assert held_tracks == 100  # half of the 200 (trees hold 2 each)
    # a tree is all on one side: held-out trees' other tracks excluded, the other trees free (train/val)
    side = pd.Series(np.where(heldout | excluded, "out", "fit")).groupby(cells["tree"].to_numpy()).nunique()
    assert side.eq(1).all()
    assert not (heldout & ~cells["full_cycle"].to_numpy()).any()
    split = make_split(cells, seed=0)
    m = cells.merge(split, on="cell_id")
    assert m.loc[m["split"].isin(FIT_SPLITS), "full_cycle"].any()  # full-cycle tracks now train (exact labels)
    # never below the minimum, and a small movie keeps every full-cycle track out
    few = _forest(20)  # 40 full-cycle tracks < MIN_HELDOUT_TRACKS
    np.testing.assert_array_equal(lineage_holdout(few, 0.5)[0], holdout_masks(few)[0])
    h, _ = lineage_holdout(_forest(40), 0.5)  # 80 full-cycle tracks: 40 would be too few
    assert _forest(40).loc[h, "track_id"].nunique() >= MIN_HELDOUT_TRACKS
    # the draw is a property of the data: the same trees whatever the training seed
    assert make_split(cells, seed=5)["split"].eq("heldout").equals(split["split"].eq("heldout"))
    with pytest.raises(ValueError, match="share"):
        lineage_holdout(cells, share=0.0)
