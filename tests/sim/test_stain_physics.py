"""Stain physics as simulator knobs (issue 22): the Hoechst 4N/2N ratio, out-of-focus blur, saturation,
excitation fall-off, and crops cut at detected rather than true nucleus positions.

Every knob is neutral by default (the default store is byte for byte what it was); away from neutral each
one is measured on the store's crops the way a user would measure it. Small simulations (100 founders,
4 h, every 3rd frame kept: ~400 crops, well under a second each).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from deepcycle_core.data.store import open_store
from deepcycle_core.sim.params import SimParams
from deepcycle_core.sim.simulate import simulate

ARGS = dict(cells=100, hours=4.0, seed=3, frame_every=3, progress=False, workers=1)
NEUTRAL = {"dna_4n_ratio": 2.0, "hoechst_blur_px": 0.0, "hoechst_full_well_e": 0.0, "hoechst_falloff": 0.0}

_yy, _xx = np.mgrid[0:48, 0:48] - 24
DISC = (_yy**2 + _xx**2) <= 13**2  # the nucleus and its near surround, clear of most neighbours


def _store(path, **kw):
    return open_store(simulate(path, **{**ARGS, **kw}))


def _hoechst(st) -> np.ndarray:
    return st.read()[:, 0].astype(np.float64)


def _integrated(st) -> tuple[np.ndarray, np.ndarray]:
    """Integrated Hoechst over the central disc above each crop's 5th-percentile background, and that background."""
    h = _hoechst(st)
    bg = np.percentile(h.reshape(len(h), -1), 5, axis=1)
    return ((h - bg[:, None, None]) * DISC).sum(axis=(1, 2)), bg


@pytest.fixture(scope="module")
def default_store(tmp_path_factory):
    return _store(tmp_path_factory.mktemp("default") / "store")


def test_neutral_knobs_give_the_default_store(default_store, tmp_path):
    st = _store(tmp_path / "neutral", overrides=dict(NEUTRAL), positions="true", detect_diameter_px=16.0)
    assert st.read().tobytes() == default_store.read().tobytes()
    assert st.cells.equals(default_store.cells)
    par = default_store.meta["provenance"]["parameters"]
    assert "positions" not in par and "detect_diameter_px" not in par
    assert "detected_matched" not in default_store.cells.columns
    assert {k: par["params"][k] for k in NEUTRAL} == NEUTRAL


def _measured_4n_ratio(st) -> float:
    """Integrated stain regressed on the true DNA content (interphase): fitted 4N over fitted 2N."""
    c = st.cells
    stain, _ = _integrated(st)
    ok = (c["true_phase"] != "M").to_numpy()
    slope, icpt = np.polyfit(c["true_dna"].to_numpy()[ok], stain[ok], 1)
    return float((icpt + 2 * slope) / (icpt + slope))


def test_dna_4n_ratio_sets_the_rendered_g2_over_g1_stain(tmp_path):
    # per-cell staining and vignetting off, so the fit sees the DNA term alone
    clean = {"stain_cv": 0.0, "vignetting": 0.0}
    got = {}
    for r in (2.0, 1.6):
        st = _store(tmp_path / f"r{r}", overrides={**clean, "dna_4n_ratio": r})
        got[r] = _measured_4n_ratio(st)
        assert abs(got[r] - r) < 0.1, got
        assert st.cells["true_dna"].max() > 1.95  # the truth stays the DNA content
    assert got[2.0] - got[1.6] > 0.25, got


def test_blur_lowers_the_peak_but_keeps_the_light(default_store, tmp_path):
    st = _store(tmp_path / "blur", overrides={"hoechst_blur_px": 2.5})
    assert st.cells[["track_id", "frame"]].equals(default_store.cells[["track_id", "frame"]])
    i0, bg0 = _integrated(default_store)
    i1, bg1 = _integrated(st)

    def peak(st_, bg):
        return _hoechst(st_)[:, 20:28, 20:28].reshape(len(bg), -1).max(axis=1) - bg

    assert np.median(peak(st, bg1) / peak(default_store, bg0)) < 0.9
    assert abs(i1.sum() / i0.sum() - 1.0) < 0.04


def test_full_well_flattens_the_top_of_the_hoechst_crops(default_store, tmp_path):
    well = 700.0
    st = _store(tmp_path / "well", overrides={"hoechst_full_well_e": well})  # gain 1, offset 100
    h, h0 = st.read()[:, 0], default_store.read()[:, 0]
    top = 100 + int(well)
    assert h.max() == top and h0.max() > top
    assert (h == top).sum() > 20 * max(1, int((h0 == h0.max()).sum()))
    assert (h0 > top).mean() > 0.001  # it is the saturation that made the plateau
    assert np.array_equal(st.read()[:, 1], default_store.read()[:, 1])  # brightfield untouched


def test_falloff_dims_the_corner_nuclei(default_store, tmp_path):
    st = _store(tmp_path / "falloff", overrides={"hoechst_falloff": 0.6})
    c = default_store.cells
    i0, _ = _integrated(default_store)
    i1, _ = _integrated(st)
    x, y = c["x"].to_numpy(), c["y"].to_numpy()
    side = x.max() + x.min()  # crops span [24, side - 24] in both axes
    r2 = ((x / side - 0.5) ** 2 + (y / side - 0.5) ** 2)
    q = i1 / i0
    centre, corner = r2 < 0.03, r2 > 0.12
    assert centre.sum() > 10 and corner.sum() > 10
    assert np.median(q[centre]) > 0.9
    assert np.median(q[centre]) - np.median(q[corner]) > 0.12


@pytest.mark.parametrize("name,value", [
    ("dna_4n_ratio", 1.0), ("dna_4n_ratio", 3.5), ("dna_4n_ratio", float("nan")),
    ("hoechst_blur_px", -0.5), ("hoechst_blur_px", float("inf")),
    ("hoechst_full_well_e", -1.0), ("hoechst_full_well_e", float("nan")),
    ("hoechst_falloff", 1.0), ("hoechst_falloff", -0.1),
])
def test_bad_stain_physics_values_raise_naming_the_field(name, value, tmp_path):
    with pytest.raises(ValueError, match=name):
        SimParams(**{name: value})
    with pytest.raises(ValueError, match=name):
        simulate(tmp_path / "s", overrides={name: value}, **ARGS)


def test_bad_positions_arguments_raise(tmp_path):
    with pytest.raises(ValueError, match="positions"):
        simulate(tmp_path / "a", positions="guessed", **ARGS)
    with pytest.raises(ValueError, match="detect_diameter_px"):
        simulate(tmp_path / "b", positions="detected", detect_diameter_px=0.0, **ARGS)
    with pytest.raises(ValueError, match="movie"):
        simulate(tmp_path / "c", positions="detected", movie=True, **{**ARGS, "frame_every": 1})


@pytest.fixture(scope="module")
def detected_store(tmp_path_factory):
    return _store(tmp_path_factory.mktemp("detected") / "store", positions="detected")


def test_detected_positions_sit_on_the_true_nuclei(default_store, detected_store):
    d, t = detected_store.cells, default_store.cells
    assert d["detected_matched"].dtype == bool and d["detected_matched"].mean() > 0.9
    m = d.merge(t[["track_id", "frame", "x", "y"]], on=["track_id", "frame"], suffixes=("", "_true"))
    dist = np.hypot(m["x"] - m["x_true"], m["y"] - m["y_true"]).to_numpy()
    ok = m["detected_matched"].to_numpy()
    assert ok.sum() > 0.85 * len(t) and dist[ok].max() <= 8.0  # matched within half the diameter
    # interphase nuclei: the detector finds the centre to about a pixel (textured, elongated G2 nuclei
    # a little worse); mitotic figures (two anaphase blobs around the cell's centre) may sit further off
    inter = dist[ok & (m["true_phase"] != "M").to_numpy()]
    assert 0 < np.median(inter) < 1.0 and np.percentile(inter, 90) < 2.0 and inter.max() < 3.5
    # recall: the true store's cells (as track, frame) found and matched by the detector
    found = set(map(tuple, d.loc[d["detected_matched"], ["track_id", "frame"]].to_numpy()))
    want = set(map(tuple, t[["track_id", "frame"]].to_numpy()))
    assert len(found & want) > 0.9 * len(want)
    assert 0.9 < len(d) / len(t) < 1.1
    par = detected_store.meta["provenance"]["parameters"]
    assert (par["positions"], par["detect_diameter_px"]) == ("detected", 16.0)


def test_detected_crops_differ_from_true_crops_by_the_detection_offset(default_store, detected_store):
    """A matched detection a pixel or more from the truth has its crop shifted by exactly the rounded offset."""
    d, t = detected_store.cells, default_store.cells
    m = d.reset_index().merge(t.reset_index()[["index", "track_id", "frame", "x", "y"]],
                              on=["track_id", "frame"], suffixes=("", "_true"))
    dx = np.rint(m["x"]).astype(int) - np.rint(m["x_true"]).astype(int)
    dy = np.rint(m["y"]).astype(int) - np.rint(m["y_true"]).astype(int)
    row = m[(dx == 1) & (dy == 0) & m["detected_matched"]].iloc[0]
    a = detected_store.read()[int(row["index"])]
    b = default_store.read()[int(row["index_true"])]
    assert np.array_equal(a[:, :, :-1], b[:, :, 1:])


def test_reuse_tells_the_positions_apart(tmp_path):
    out = tmp_path / "store"
    small = {**ARGS, "cells": 30, "hours": 1.0, "frame_every": 1}
    simulate(out, positions="detected", **small)
    meta = out / "meta.json"
    stamp = meta.stat().st_mtime_ns
    simulate(out, positions="detected", reuse=True, **small)  # same parameters: reused as it is
    assert meta.stat().st_mtime_ns == stamp
    simulate(out, reuse=True, **small)  # true positions: simulated anew
    par = json.loads(meta.read_text())["provenance"]["parameters"]
    assert "positions" not in par
    assert "detected_matched" not in open_store(out).cells.columns
    simulate(out, positions="detected", detect_diameter_px=14.0, reuse=True, **small)
    par = json.loads(meta.read_text())["provenance"]["parameters"]
    assert (par["positions"], par["detect_diameter_px"]) == ("detected", 14.0)


def test_command_line_positions_flags(tmp_path, capsys):
    from deepcycle_core.__main__ import main

    out = tmp_path / "store"
    rc = main(["simulate", "--out", str(out), "--cells", "20", "--hours", "0.5", "--quiet", "--workers", "1",
               "--positions", "detected", "--detect-diameter-px", "15"])
    assert rc in (0, None)
    par = open_store(out).meta["provenance"]["parameters"]
    assert (par["positions"], par["detect_diameter_px"]) == ("detected", 15.0)
