"""Drug / treatment conditions of the virtual microscope: the biology each one must show, and the
promise that the untreated simulator is unchanged.

Why these checks: a condition is only worth filming if its ground truth is the phenotype it claims
(a G1 arrest lengthens G1 and leaves S alone, arrested cells sit in late G1 and never divide, an S
slowdown fills S, a G2/M block piles up rounded mitotic cells and cells at the end of G2, and every
drug slows growth), and treatment must never leak into the default store the rest of the book uses.
The stores are small (one field, 4 h) and shared by the module; population-only checks skip rendering.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from deepcycle_core.sim import treatments as cs
from deepcycle_core.sim import simulate as sim
from deepcycle_core.sim.params import n_frames_for, resolve_params
from deepcycle_core.sim.population import ARREST_M_PROGRESS, _new_cell_attrs, _simulate_population
from deepcycle_core.data.store import TRUTH_COLUMNS, open_store

FIXTURES = Path(__file__).parents[1] / "fixtures"
STORE_ARGS = dict(cells=100, hours=4.0, seed=1, progress=False, workers=1)


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """One small store per condition at strength 1, same seed (a few seconds each)."""
    root = tmp_path_factory.mktemp("conditions")
    return {name: open_store(sim.simulate(root / name, condition=name, **STORE_ARGS)) for name in cs.CONDITIONS}


def _phase_hours(attrs) -> dict[str, np.ndarray]:
    """Per-cell hours of each phase from the simulator's per-track timings."""
    cyc = np.asarray(attrs["cycle_h"])
    g1, s_end, m_start = (np.asarray(attrs[k]) for k in ("g1_end", "s_end", "m_start"))
    return {"G1": g1 * cyc, "S": (s_end - g1) * cyc, "G2": (m_start - s_end) * cyc, "M": (1 - m_start) * cyc}


def _twins(name: str, n: int = 2000) -> tuple[dict, dict]:
    """Phase hours of n untreated cells and of the same cells (same draws) under condition ``name``."""
    out = []
    for ov in ({}, cs.condition_overrides(name)):
        p = resolve_params("default", ov)
        rng = np.random.default_rng(42)
        log_t = rng.normal(np.log(27.0), 0.11, n)
        zeros = np.zeros(n)
        out.append(_phase_hours(_new_cell_attrs(rng, p, log_t, zeros, zeros)))
    return out[0], out[1]


def _population(name: str, cells: int = 300, hours: float = 24.0, seed: int = 0, **extra):
    p = resolve_params("default", {**cs.condition_overrides(name), **extra})
    return _simulate_population(cells, n_frames_for(hours), p, np.random.default_rng([seed, 0, 0]),
                                np.random.default_rng([seed, 0, 3]))


def _share(cells, phase: str) -> float:
    return float((cells["true_phase"] == phase).mean())


# ------------------------------------------------------------------------------------------------
# the table and its argument checks
# ------------------------------------------------------------------------------------------------


def test_the_conditions_and_their_doses():
    assert {"control", "g1_arrest", "s_slowdown", "g2m_block"} <= set(cs.CONDITIONS)
    assert cs.DEFAULT_STRENGTH == 1.0
    assert {n: c.phase for n, c in cs.CONDITIONS.items()} == {
        "control": "-", "g1_arrest": "G1", "s_slowdown": "S", "g2m_block": "G2/M"}
    assert cs.condition_overrides("control") == {} == cs.condition_overrides("control", 3.0)
    assert cs.condition_overrides("g1_arrest") == {"g1_extend": 1.0, "g1_arrest_frac": 0.5, "treatment_lead_h": 24.0}
    assert cs.condition_overrides("g1_arrest", 4.0)["g1_arrest_frac"] == 0.95  # capped: some cells divide
    assert cs.condition_overrides("s_slowdown", 2.0) == {"s_extend": 3.0, "treatment_lead_h": 24.0}
    assert cs.condition_overrides("g2m_block", 0.5) == {
        "g2m_block_frac": 0.25, "g2m_block_in_m": 0.5, "g2_extend": 0.15, "treatment_lead_h": 24.0}
    for name in cs.CONDITIONS:
        assert cs.condition_overrides(name, 0) == {}
        resolve_params("default", cs.condition_overrides(name, 10.0))  # a large dose is still valid


def test_unknown_condition_and_bad_strength_raise(tmp_path):
    with pytest.raises(ValueError, match="unknown condition 'taxol'.*g1_arrest"):
        cs.condition_overrides("taxol")
    for bad in (-0.5, float("nan"), float("inf"), "strong", True):
        with pytest.raises(ValueError, match="strength must be"):
            cs.condition_overrides("g1_arrest", bad)
    with pytest.raises(ValueError, match="unknown condition"):
        sim.simulate(tmp_path / "x", cells=10, hours=1.0, condition="taxol", progress=False)
    with pytest.raises(ValueError, match="strength must be"):
        sim.simulate(tmp_path / "x", cells=10, hours=1.0, condition="g2m_block", strength=-1, progress=False)
    assert not (tmp_path / "x").exists()
    # the treatment knobs themselves are range-checked
    for bad in ({"g1_arrest_frac": 1.5}, {"g2m_block_in_m": -0.1}, {"s_extend": -1.0}, {"treatment_lead_h": np.inf}):
        with pytest.raises(ValueError, match="SimParams"):
            resolve_params("default", bad)


# ------------------------------------------------------------------------------------------------
# the untreated simulator is unchanged
# ------------------------------------------------------------------------------------------------


def test_default_store_identical_to_the_simulator_before_conditions(tmp_path):
    """Crops and every column of a small default store match the reference taken before treatment existed.

    Crops and exact columns by byte digest; float columns by value within ``FLOAT_RTOL``, since their
    last bits follow the CPU's vector units (see tests/fixtures/sim_digest.py)."""
    sys.path.insert(0, str(FIXTURES))
    try:
        from sim_digest import DIGEST, FLOAT_RTOL, FLOATS, SIM_ARGS, store_reference
    finally:
        sys.path.remove(str(FIXTURES))
    ref = json.loads(DIGEST.read_text())
    ref_floats = dict(np.load(FLOATS))
    out = sim.simulate(tmp_path / "store", progress=False, workers=2, **SIM_ARGS)
    got, got_floats = store_reference(out)
    assert got["n_cells"] == ref["n_cells"]
    assert got["crops"] == ref["crops"]
    assert got["cells"] == ref["cells"]
    assert got["frames"] == ref["frames"]
    assert sorted(got_floats) == ref["float_columns"] == sorted(ref_floats)
    for name, values in ref_floats.items():
        np.testing.assert_allclose(got_floats[name], values, rtol=FLOAT_RTOL, atol=0, err_msg=name)
    st = open_store(out)
    assert "true_arrested" in TRUTH_COLUMNS and st.cells["true_arrested"].dtype == bool
    assert not st.cells["true_arrested"].any()
    par = st.meta["provenance"]["parameters"]
    assert "condition" not in par and "strength" not in par


def test_strength_zero_is_the_control(tmp_path):
    args = dict(cells=30, hours=1.0, seed=4, progress=False, workers=1)
    ctl = open_store(sim.simulate(tmp_path / "ctl", **args))
    zero = open_store(sim.simulate(tmp_path / "zero", condition="g1_arrest", strength=0.0, **args))
    assert ctl.read().tobytes() == zero.read().tobytes()
    assert ctl.cells.equals(zero.cells)
    p0, pc = zero.meta["provenance"]["parameters"], ctl.meta["provenance"]["parameters"]
    assert (p0["condition"], p0["strength"]) == ("g1_arrest", 0.0)
    assert p0["params"] == pc["params"]


def test_explicit_overrides_win_and_provenance_records_the_condition(stores, tmp_path):
    par = stores["g2m_block"].meta["provenance"]["parameters"]
    assert (par["condition"], par["strength"]) == ("g2m_block", 1.0)
    assert par["params"]["g2m_block_frac"] == 0.5 and par["overrides"] == {}
    out = sim.simulate(tmp_path / "o", cells=10, hours=1.0, condition="g1_arrest", strength=0.5,
                       overrides={"g1_arrest_frac": 0.0}, progress=False, workers=1)
    par = open_store(out).meta["provenance"]["parameters"]
    assert par["params"]["g1_arrest_frac"] == 0.0 and par["params"]["g1_extend"] == 0.5
    assert par["strength"] == 0.5 and par["overrides"] == {"g1_arrest_frac": 0.0}


# ------------------------------------------------------------------------------------------------
# biology
# ------------------------------------------------------------------------------------------------


def test_g1_arrest_lengthens_g1_and_not_s(stores):
    ctl, trt = _twins("g1_arrest")
    assert np.allclose(trt["G1"], 2.0 * ctl["G1"])  # g1_extend 1.0: G1 hours doubled
    for ph in ("S", "G2", "M"):
        assert np.allclose(trt[ph], ctl[ph]), ph  # the other phases keep their hours
    c0, c1 = stores["control"].cells, stores["g1_arrest"].cells
    assert _share(c1, "G1") > _share(c0, "G1") + 0.2
    assert _share(c1, "S") < _share(c0, "S")
    cyc0 = c0.groupby("track_id")["true_cycle_h"].first().mean()
    cyc1 = c1.groupby("track_id")["true_cycle_h"].first().mean()
    assert 6.0 < cyc1 - cyc0 < 14.0  # about one untreated G1 (0.37 x 27 h = 10 h) longer


def test_g1_arrested_cells_sit_in_late_g1_and_never_divide(stores):
    c = stores["g1_arrest"].cells
    held = c[c["true_arrested"]]
    assert len(held) > 0.15 * len(c)
    assert (held["true_phase"] == "G1").all()
    # late G1: older than most cycling G1 cells, Cdt1-red at its peak, no Geminin
    cycling_g1 = c[(c["true_phase"] == "G1") & ~c["true_arrested"]]
    assert held["true_age"].median() > cycling_g1["true_age"].quantile(0.75)
    assert held["true_red"].median() > 0.5 and held["true_green"].max() < 0.05
    # held: the age stands still and the track never divides
    per = held.groupby("track_id")["true_age_h"].agg(["min", "max"])
    assert (per["max"] == per["min"]).all()
    assert (c[c["track_id"].isin(per.index)]["division_frame"] == -1).all()
    # exactly at g1_arrest_at (0.8) of the cell's own G1, in the whole dish
    fld = _population("g1_arrest", cells=100, hours=4.0)
    rows = fld.rows.join(fld.tracks, on="tidx")
    stuck = rows[rows["age_h"] >= rows["arrest_h"]]
    assert len(stuck) and np.allclose(stuck["age_h"], 0.8 * stuck["g1_end"] * stuck["cycle_h"])
    assert (fld.tracks.loc[np.isfinite(fld.tracks["arrest_h"]), "division_frame"] == -1).all()


def test_s_slowdown_fills_s_and_leaves_g1_alone(stores):
    ctl, trt = _twins("s_slowdown")
    assert np.allclose(trt["S"], 2.5 * ctl["S"])
    for ph in ("G1", "G2", "M"):
        assert np.allclose(trt[ph], ctl[ph]), ph
    c0, c1 = stores["control"].cells, stores["s_slowdown"].cells
    assert _share(c1, "S") > _share(c0, "S") + 0.15
    assert _share(c1, "G1") < _share(c0, "G1")
    assert not c1["true_arrested"].any()  # slowed, not stopped


def test_g2m_block_piles_up_rounded_mitoses_and_late_g2_cells(stores):
    ctl, trt = _twins("g2m_block")
    assert np.allclose(trt["G2"], 1.3 * ctl["G2"]) and np.allclose(trt["M"], ctl["M"])
    c0, c1 = stores["control"].cells, stores["g2m_block"].cells
    assert _share(c0, "M") < 0.06
    assert _share(c1, "M") > max(0.10, 3 * _share(c0, "M"))
    held = c1[c1["true_arrested"]]
    assert set(held["true_phase"]) == {"G2", "M"}
    in_m = held[held["true_phase"] == "M"]
    assert 0.25 < len(in_m) / len(held) < 0.75  # g2m_block_in_m 0.5
    # held in metaphase (rounded, one bright bar), so metaphases dominate the mitoses
    assert np.allclose(in_m["true_m_progress"], ARREST_M_PROGRESS)
    mit1 = c1.loc[c1["true_phase"] == "M", "true_m_progress"]
    assert mit1.between(0.3, 0.65).mean() > 0.8
    # the others at the very end of G2: one mitosis (M keeps its 1.05 h) short of their cycle length
    in_g2 = held[held["true_phase"] == "G2"]
    assert np.allclose(in_g2["true_cycle_h"] - in_g2["true_age_h"], 1.05, atol=0.01)
    assert (c1[c1["track_id"].isin(held["track_id"])]["division_frame"] == -1).all()


@pytest.mark.parametrize("name", ["g1_arrest", "s_slowdown", "g2m_block"])
def test_every_condition_slows_growth(name):
    """Cells in the last frame over the first, over a day, in the whole dish (the field crops add noise)."""

    def growth(fld):
        n = fld.rows.groupby("frame").size()
        return n.iloc[-1] / n.iloc[0]

    control = _population("control")
    treated = _population(name)
    assert growth(treated) < 0.85 * growth(control)
    # and during the unfilmed lead: fewer cells at frame 0 than an untreated day of growth gives
    untreated_lead = _population("control", hours=1.0, treatment_lead_h=24.0)
    n_first = lambda fld: (fld.rows["frame"] == 0).sum()  # noqa: E731
    assert n_first(untreated_lead) > 1.7 * 300  # 2^(24/27)= 1.85
    assert n_first(_population(name, hours=1.0)) < 0.9 * n_first(untreated_lead)


def test_the_lead_is_unfilmed_and_lineage_stays_consistent(stores):
    fld = _population("g2m_block", cells=100, hours=4.0)
    t, rows = fld.tracks, fld.rows
    assert rows["frame"].min() == 0 and rows["frame"].max() == n_frames_for(4.0) - 1
    assert set(rows["tidx"]) == set(range(len(t)))  # only tracks the movie saw
    kids = t[t["parent"] >= 0]
    assert len(kids) and (kids["birth_frame"].to_numpy() == t.loc[kids["parent"], "division_frame"].to_numpy() + 1).all()
    lead_born = t[(t["parent"] < 0) & (t["generation"] > 0)]  # mothers lived only in the lead
    assert len(lead_born) > 0.3 * len(t) and (lead_born["birth_frame"] == -1).all()
    c = stores["g2m_block"].cells
    assert c["frame"].min() == 0 and (c["birth_frame"].isin([-1]) | (c["birth_frame"] >= 1)).all()


def test_cli_lists_the_conditions_and_simulates_one(tmp_path, capsys):
    from deepcycle_core.__main__ import main

    with pytest.raises(SystemExit) as exc:
        main(["simulate", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name, cond in cs.CONDITIONS.items():
        line = next(ln for ln in out.splitlines() if ln.strip().startswith(name + " "))
        assert f"[{cond.phase}]" in line
    rc = main(["simulate", "--out", str(tmp_path / "st"), "--cells", "10", "--hours", "1", "--quiet",
               "--workers", "1", "--condition", "s_slowdown", "--strength", "0.5"])
    assert rc == 0
    par = json.loads((tmp_path / "st" / "meta.json").read_text())["provenance"]["parameters"]
    assert (par["condition"], par["strength"], par["params"]["s_extend"]) == ("s_slowdown", 0.5, 0.75)


def test_frame_every_keeps_every_nth_frame_as_filmed(tmp_path):
    full = sim.simulate(tmp_path / "full" / "store", cells=30, hours=2.0, seed=5, progress=False, workers=1)
    part = sim.simulate(tmp_path / "part" / "store", cells=30, hours=2.0, seed=5, frame_every=4, progress=False, workers=1)
    a, b = open_store(full), open_store(part)
    assert sorted(b.cells["frame"].unique()) == [0, 4, 8]
    keep = np.flatnonzero(a.cells["frame"].isin([0, 4, 8]).to_numpy())
    assert np.array_equal(a.take(keep), b.read(0, b.n_cells))  # bleaching and drift as if every frame was filmed
    assert open_store(part).meta["provenance"]["parameters"]["frame_every"] == 4
    with pytest.raises(ValueError, match="frame_every"):
        sim.simulate(tmp_path / "bad" / "store", cells=8, hours=2.0, frame_every=0, progress=False)
    with pytest.raises(ValueError, match="movie"):
        sim.simulate(tmp_path / "bad2" / "store", cells=8, hours=2.0, frame_every=2, movie=True, progress=False)
