"""The supervised baseline: radial profiles of crops, and a regressor on the clock head's own labels that
never fits the cells it is judged on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from builders import make_store

from deepcycle_core.data.store import open_store
from deepcycle_core.net.cycle_targets import cycle_targets
from deepcycle_core.validation import supervised as sv

CYCLE = 24  # frames (1 h each) from birth to division


def _lineages(n_chains: int = 40, n_frames: int = 96, seed: int = 0) -> pd.DataFrame:
    """Chains of mother -> daughter tracks in one field, each cell's age known: the movie shows every
    birth and division inside it (a mother's last frame is followed by her daughter's first)."""
    rng = np.random.default_rng(seed)
    rows, tid = [], 0
    for chain in range(n_chains):
        birth, parent = -int(rng.integers(1, CYCLE)), -1
        while birth < n_frames:
            div = birth + CYCLE - 1
            for f in range(max(birth, 0), min(div, n_frames - 1) + 1):
                rows.append({"cell_id": len(rows), "field": 0, "track_id": tid, "parent_track_id": parent,
                             "frame": f, "time_h": float(f), "birth_frame": birth if birth >= 0 else -1,
                             "division_frame": div if div < n_frames else -1, "chain": chain,
                             "true_age": (f - birth + 0.5) / CYCLE})
            parent, tid, birth = tid, tid + 1, div + 1
    return pd.DataFrame(rows)


def _features(cells: pd.DataFrame, noise: float = 0.05, seed: int = 1) -> pd.DataFrame:
    """Two features that carry the age (a cos/sin pair, noisy) and three that carry nothing."""
    rng = np.random.default_rng(seed)
    a = 2 * np.pi * cells["true_age"].to_numpy()
    n = len(cells)
    return pd.DataFrame({"cell_id": cells["cell_id"], "f_cos": np.cos(a) + rng.normal(0, noise, n),
                         "f_sin": np.sin(a) + rng.normal(0, noise, n), **{f"junk{k}": rng.normal(size=n) for k in range(3)}})


def _split(cells: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    held = cells["chain"].to_numpy() % 4 == 0  # whole lineages held out
    return cells.loc[~held, "cell_id"].to_numpy(), cells.loc[held, "cell_id"].to_numpy()


def test_the_regressor_recovers_the_position_the_features_carry():
    cells = _lineages()
    fit, held = _split(cells)
    assert np.isfinite(cycle_targets(cells, 1.0, float(CYCLE)).position).mean() > 0.5  # the head's labels exist
    pred = sv.supervised_predictions(_features(cells), cells, fit, held, frame_interval_h=1.0, T_hours=float(CYCLE))
    assert pred.attrs["n_fit"] > 1000
    out = pred.set_index("cell_id").loc[held]
    truth = cells.set_index("cell_id").loc[held, "true_age"].to_numpy()
    err = np.abs((out["pseudotime"].to_numpy() - truth + 0.5) % 1.0 - 0.5)
    assert err.mean() < 0.03  # turns: well under an hour of a 24 h cycle
    np.testing.assert_allclose(out["hours"], out["pseudotime"] * CYCLE)  # hours = position x T
    # features that carry nothing give nothing
    junk = _features(cells).drop(columns=["f_cos", "f_sin"])
    bad = sv.supervised_predictions(junk, cells, fit, held, frame_interval_h=1.0, T_hours=float(CYCLE))
    err = np.abs((bad.set_index("cell_id").loc[held, "pseudotime"].to_numpy() - truth + 0.5) % 1.0 - 0.5)
    assert err.mean() > 0.15


def test_held_out_cells_are_never_in_the_fit():
    """Garbage features (and garbage truth) on held-out cells change nothing about the fit: the readings of
    the fitting cells are identical; a cell both fitted and judged is refused; a seed gives one answer."""
    cells = _lineages()
    fit, held = _split(cells)
    feats = _features(cells)
    ref = sv.supervised_predictions(feats, cells, fit, held, frame_interval_h=1.0, T_hours=float(CYCLE), seed=3)
    garbage = feats.copy()
    garbage.loc[garbage["cell_id"].isin(held), ["f_cos", "f_sin"]] = 99.0
    other = cells.copy()
    other.loc[other["cell_id"].isin(held), ["birth_frame", "division_frame"]] = -1  # their labels gone
    again = sv.supervised_predictions(garbage, other, fit, held, frame_interval_h=1.0, T_hours=float(CYCLE), seed=3)
    a, b = ref.set_index("cell_id"), again.set_index("cell_id")
    np.testing.assert_array_equal(a.loc[fit, "pseudotime"], b.loc[fit, "pseudotime"])
    assert not np.allclose(a.loc[held, "pseudotime"], b.loc[held, "pseudotime"])
    same = sv.supervised_predictions(feats, cells, fit, held, frame_interval_h=1.0, T_hours=float(CYCLE), seed=3)
    np.testing.assert_array_equal(same["pseudotime"], ref["pseudotime"])
    with pytest.raises(ValueError, match="both fitting and evaluated"):
        sv.supervised_predictions(feats, cells, fit, np.union1d(held, fit[:2]), frame_interval_h=1.0, T_hours=24.0)
    with pytest.raises(ValueError, match="have no features"):
        sv.supervised_predictions(feats.iloc[5:], cells, fit, held, frame_interval_h=1.0, T_hours=24.0)
    with pytest.raises(sv.TooFewLabels, match="cycle target"):
        sv.supervised_predictions(feats, cells.assign(birth_frame=-1, division_frame=-1), fit, held,
                                  frame_interval_h=1.0, T_hours=24.0)


def test_radial_profile_of_a_disc_and_its_rotation():
    yy, xx = np.mgrid[:48, :48] - 23.5
    disc = (np.hypot(yy, xx) < 6).astype(float) * 10.0
    crops = np.stack([np.stack([disc, np.ones((48, 48))])])
    prof = sv.radial_profile(crops)
    assert prof.shape == (1, 2 * sv.N_RADII)
    np.testing.assert_allclose(prof[0, :6], 10.0)  # rings 0..5 lie inside the disc
    np.testing.assert_allclose(prof[0, 6:sv.N_RADII], 0.0)
    np.testing.assert_allclose(prof[0, sv.N_RADII:], 1.0)  # a flat channel is flat at every radius
    np.testing.assert_allclose(sv.radial_profile(np.rot90(crops, axes=(2, 3))), prof)
    with pytest.raises(ValueError, match="square crops"):
        sv.radial_profile(np.zeros((2, 48, 48)))
    with pytest.raises(ValueError, match="non-finite"):
        sv.radial_profile(np.full((1, 1, 48, 48), np.nan))


def test_crop_measures_of_a_store(tmp_path):
    store = open_store(make_store(tmp_path / "s", n_tracks=12)[0])
    ids = np.arange(0, store.n_cells, 2)
    m = sv.crop_measures(store, ids)
    assert list(m["cell_id"]) == list(ids)
    assert [c for c in m.columns if c.startswith("r_")] == [f"r_{ch}_{k}" for ch in store.channels for k in range(sv.N_RADII)]
    assert set(sv.MEASURE_COLUMNS) <= set(m.columns)
    # the stain over the median of EVERY cell of its frame (described or not): 1 at that median
    every = sv.crop_measures(store, np.arange(store.n_cells))
    frames = store.cells.set_index("cell_id").loc[every["cell_id"], "frame"].to_numpy()
    med = pd.Series(every["nuclear_integrated_frame"].to_numpy()).groupby(frames).median()
    np.testing.assert_allclose(med, 1.0)
    pd.testing.assert_frame_equal(every.set_index("cell_id").loc[ids].reset_index(), m)  # the same numbers
    # and it grows with age (DNA doubles through S), as does the area
    age = store.cells.set_index("cell_id").loc[ids, "true_age"].to_numpy()
    assert np.corrcoef(m["nuclear_integrated_frame"], age)[0, 1] > 0.5
    assert np.corrcoef(m["nuclear_area"], age)[0, 1] > 0.5
    with pytest.raises(ValueError, match="no cells"):
        sv.crop_measures(store, [])
