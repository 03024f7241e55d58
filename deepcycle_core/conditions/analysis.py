"""What a treatment does to the clock: treated populations read by the control's network, with truth.

Why: the point of a label-free clock is to see where a drug holds cells without reporters. The
network is trained once on the untreated movie (the reference network); treated populations are then
read from brightfield + nuclear stain alone. This module puts the pieces together:

* :func:`condition_store` films a treated (or control) population with the virtual microscope's
  conditions (:data:`deepcycle_core.sim.treatments.CONDITIONS`): several fields, the last frame read
  as a snapshot, as a drug screen would image a plate;
* :func:`read_population` runs the networks on those cells (the embed stage's code path) and
  measures each cell's integrated nuclear stain;
* :func:`calibrate_on_control` calls phases on the control movie (FUCCI + DNA,
  :mod:`deepcycle_core.conditions.phase_calls`) on cells the network was not trained on, and fits the phase
  read-out (:mod:`deepcycle_core.conditions.phase_readout`) and the clock's arcs (:mod:`deepcycle_core.conditions.phase_arcs`);
* :class:`~deepcycle_core.conditions.dna_content.DnaContentReadout` reads the shares off each population's own
  DNA-content histogram instead: no network, so no appearance learned on untreated cells;
* :func:`compare` gives a treated population's phase shares against a control's, their differences
  with a bootstrap interval over fields, and Watson's U^2 on the clock positions with a
  field-permutation p-value (:mod:`deepcycle_core.conditions.circular_tests`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .circular_tests import FieldTest, field_bootstrap, field_permutation_test, watson_u2_asymptotic_p
from ..clock.head import clock_positions
from .dna_content import DnaContentReadout
from .phase_arcs import PhaseArcs, calibrate_arcs
from .phase_calls import PHASE_GROUPS, call_phases, phase_group
from .phase_readout import PhaseReadout, fit_phase_readout

__all__ = [
    "Calibration", "Comparison", "condition_store", "read_population", "calibrate_on_control", "compare",
    "true_shares", "comparison_rows", "era_check",
]

#: Truth columns carried along when a store has them (simulated data).
_TRUTH = ("true_phase", "true_age", "true_age_h", "true_cycle_h", "true_arrested", "true_nuc_area")


def condition_store(
    folder: str | os.PathLike, condition: str, *, strength: float | None = None, seed: int, cells: int,
    fields: int, hours: float, frame_every: int = 1, workers: int | None = None, positions: str = "detected",
    detect_diameter_px: float = 16.0,
) -> Path:
    """Film ``condition`` at ``strength`` into ``folder/<condition>[_s<strength>]_seed<seed>/store``,
    reused when already there with the same parameters.

    Crops are cut where the nuclear detector finds nuclei (``positions='detected'``, nucleus diameter
    ``detect_diameter_px``), as a user's ingest cuts them, not at the simulator's true centres: a
    read-out must cope with detection's misses, splits and off-centre crops."""
    from ..sim.simulate import simulate

    tag = condition if strength is None else f"{condition}_s{strength:g}"
    out = Path(folder) / f"{tag}_seed{seed}" / "store"
    return simulate(out, cells=cells, hours=hours, seed=seed, fields=fields, condition=condition,
                    strength=strength, frame_every=frame_every, reuse=True, progress=False, workers=workers,
                    positions=positions, detect_diameter_px=detect_diameter_px)


def read_population(
    store_path: str | os.PathLike, checkpoints: dict[str, Path], *, frame: str | int = "all",
    precision: str = "fp32", batch_size: int = 512,
) -> dict[str, pd.DataFrame]:
    """The network outputs of every cell of the store (``frame='all'``) or of one frame (a number, or
    ``'last'``), per network.

    Returns ``{mode: table}``; each table has ``cell_id, field, frame, clock`` (position in [0, 1)),
    :data:`~deepcycle_core.conditions.phase_readout.READOUT_COLUMNS`, ``dna`` (the integrated nuclear stain,
    :func:`~deepcycle_core.conditions.dna_content.measure_dna`, for the DNA-content read-out) and, for simulated
    data, the truth columns.
    """
    from ..validation.describe import embed_cells
    from .dna_content import measure_dna
    from ..data.store import open_store

    store = open_store(store_path)
    cells = store.cells
    if frame == "all":
        sel = cells
    else:
        f = int(cells["frame"].max()) if frame == "last" else int(frame)
        sel = cells[cells["frame"] == f]
    if sel.empty:
        raise ValueError(f"{store_path}: no cells in frame {frame}")
    keep = ["cell_id", "field", "frame", *[c for c in _TRUTH if c in sel.columns]]
    sel = sel[keep].merge(measure_dna(store, sel["cell_id"].to_numpy()), on="cell_id", validate="one_to_one")
    keep.append("dna")
    out = {}
    for mode, ckpt in checkpoints.items():
        desc = embed_cells(store, Path(ckpt), sel["cell_id"].to_numpy(), batch_size=batch_size, precision=precision)
        table = sel[keep].merge(desc, on="cell_id", how="inner", validate="one_to_one")
        table["clock"] = clock_positions(table)[0]
        out[mode] = table.reset_index(drop=True)
    return out


def true_shares(table: pd.DataFrame) -> np.ndarray:
    """The simulator's share of cells in G1, S and G2/M (needs ``true_phase``)."""
    if "true_phase" not in table.columns:
        raise ValueError("no true_phase column: truth exists only for simulated data")
    g = phase_group(table["true_phase"])
    return np.array([(g == ph).mean() for ph in PHASE_GROUPS])


@dataclass
class Calibration:
    """What the control movie teaches, per network: the phase read-out and the clock's arcs."""

    readout: dict[str, PhaseReadout]
    arcs: dict[str, PhaseArcs]
    cells: pd.DataFrame  # the calibration cells: cell_id, call (+ true_phase when simulated)
    s_phase_hours: float | None = None

    def summary(self) -> pd.DataFrame:
        """Calls per phase and, with truth, how often the calls agree with it."""
        c = self.cells
        called = c[c["call"] != ""]
        rows = {"cells called": called["call"].value_counts().reindex(PHASE_GROUPS).fillna(0).astype(int)}
        if "true_phase" in c.columns:
            agree = called.assign(ok=phase_group(called["true_phase"]) == called["call"]).groupby("call")["ok"].mean()
            rows["calls agreeing with the truth"] = agree.reindex(PHASE_GROUPS).round(3)
        return pd.DataFrame(rows)


def calibrate_on_control(
    run: Any, checkpoints: dict[str, Path], *, max_cells: int = 6000, seed: int = 0, precision: str = "fp32",
    splits: Sequence[str] = ("val", "excluded"),
) -> Calibration:
    """Phase calls on the control movie of ``run`` and, per network, the read-out and arcs fitted on them.

    Only cells the networks were not trained on are used (split ``val`` and ``excluded``: the
    validation cells and the relatives of held-out tracks; never the held-out tracks themselves, which
    stay for chapter 05). Calls need whole tracks, so they are made on all those cells; the networks then
    read a seeded sample of at most ``max_cells`` called cells.
    """
    from ..validation.describe import embed_cells, load_split
    from ..validation.features import measure
    from ..data.runs import RunDir
    from ..data.store import open_store

    run = run if isinstance(run, RunDir) else RunDir(run)
    store = open_store(run.store)
    split = load_split(run)
    cells = store.cells
    use = split["split"].isin(list(splits)).to_numpy()
    sub = cells[use].reset_index(drop=True)
    if sub.empty:
        raise ValueError(f"{run.split}: no cells in splits {list(splits)} to calibrate on")
    dna = measure(store, sub["cell_id"].to_numpy())["nuclear_integrated"].to_numpy()
    calls = call_phases(sub, dna)
    called = np.flatnonzero(calls != "")
    rng = np.random.default_rng(seed)
    if called.size > max_cells:
        called = np.sort(rng.choice(called, max_cells, replace=False))
    base = sub.iloc[called][["cell_id", *[c for c in ("true_phase",) if c in sub.columns]]].copy()
    base["call"] = calls[called]
    readouts, arcs = {}, {}
    for mode, ckpt in checkpoints.items():
        desc = embed_cells(store, Path(ckpt), base["cell_id"].to_numpy(), precision=precision)
        table = base.merge(desc, on="cell_id", how="inner", validate="one_to_one")
        readouts[mode] = fit_phase_readout(table, table["call"].to_numpy())
        arcs[mode] = calibrate_arcs(clock_positions(table)[0], table["call"].to_numpy())
    return Calibration(readouts, arcs, base.reset_index(drop=True))


@dataclass
class Comparison:
    """One treated population against a control, read by one network."""

    shares: np.ndarray  # treated, inferred (G1, S, G2/M)
    control_shares: np.ndarray
    delta: np.ndarray  # treated - control
    delta_low: np.ndarray
    delta_high: np.ndarray
    test: FieldTest
    naive_p: float  # U^2's asymptotic p with cells as independent units (for contrast only)
    true: np.ndarray | None
    control_true: np.ndarray | None
    arc_shares: np.ndarray | None = None  # treated, counted in the clock's arcs (when arcs are given)

    @property
    def named_phase(self) -> str:
        """The phase whose inferred share rises most."""
        return PHASE_GROUPS[int(np.argmax(self.delta))]

    @property
    def true_phase(self) -> str | None:
        if self.true is None or self.control_true is None:
            return None
        return PHASE_GROUPS[int(np.argmax(self.true - self.control_true))]


def _fields_of(table: pd.DataFrame) -> list[np.ndarray]:
    return [np.flatnonzero(table["field"].to_numpy() == f) for f in np.unique(table["field"])]


def compare(
    treated: pd.DataFrame, control: pd.DataFrame, readout: PhaseReadout | DnaContentReadout, *,
    arcs: PhaseArcs | None = None, n_boot: int = 1000, n_boot_refit: int = 200, seed: int = 0,
    dna_method: str = "jackknife",
) -> Comparison:
    """Phase shares of ``treated`` vs ``control`` (tables from :func:`read_population`, one network).

    ``readout`` is the network read-out calibrated on the control movie or the DNA-content read-out
    (fitted on each population's own histogram). Differences get 95 % intervals over fields: for a
    network read-out (calibrated once, on the control movie) a percentile bootstrap of ``n_boot`` draws,
    each group resampled within itself with the cells' phase probabilities held; for the DNA read-out
    (whose fit is part of its error) a delete-one-field jackknife with a t quantile, each replicate
    refitting the histogram (:meth:`DnaContentReadout.change_interval`; ``n_boot_refit`` draws only if
    ``dna_method='bootstrap'``, which undercovers with 4 fields a population). The
    distributions of clock positions are compared by Watson's U^2 with whole fields permuted between
    the groups. With ``arcs``, the treated cells are also counted in the clock's phase arcs.
    """
    if isinstance(readout, DnaContentReadout):
        d, lo, hi = readout.change_interval(treated, control, n_boot=n_boot_refit, seed=seed, method=dna_method)
        shares_t, shares_c = readout.fit(treated)[0].shares, readout.fit(control)[0].shares
    else:
        p_t = readout.probabilities(treated)
        p_c = readout.probabilities(control)
        groups = [[p_t[i] for i in _fields_of(treated)], [p_c[i] for i in _fields_of(control)]]

        def delta(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            return a.mean(axis=0) - b.mean(axis=0)

        d, lo, hi = field_bootstrap(groups, delta, n_boot=n_boot, seed=seed)
        shares_t, shares_c = p_t.mean(axis=0), p_c.mean(axis=0)
    test = field_permutation_test(treated["clock"].to_numpy(), treated["field"].to_numpy(),
                                  control["clock"].to_numpy(), control["field"].to_numpy(), seed=seed)
    has_truth = "true_phase" in treated.columns and "true_phase" in control.columns
    return Comparison(
        shares=shares_t, control_shares=shares_c, delta=d, delta_low=lo, delta_high=hi, test=test,
        naive_p=watson_u2_asymptotic_p(test.statistic),
        true=true_shares(treated) if has_truth else None, control_true=true_shares(control) if has_truth else None,
        arc_shares=None if arcs is None else arcs.raw_shares(treated["clock"].to_numpy()),
    )


def comparison_rows(name: str, readout: str, r: Comparison) -> list[dict[str, Any]]:
    """One row per phase of a comparison, for a table: inferred and true shares, the inferred change
    with its interval, and the test (repeated on each row of the same comparison). ``readout`` names
    how the shares were read (a network's read-out, the DNA content)."""
    rows = []
    for i, ph in enumerate(PHASE_GROUPS):
        rows.append({
            "condition": name, "read-out": readout, "phase": ph,
            "inferred": r.shares[i], "clock_arcs": np.nan if r.arc_shares is None else r.arc_shares[i],
            "true": np.nan if r.true is None else r.true[i],
            "error_pp": np.nan if r.true is None else 100 * (r.shares[i] - r.true[i]),
            "change_pp": 100 * r.delta[i], "change_low_pp": 100 * r.delta_low[i], "change_high_pp": 100 * r.delta_high[i],
            "true_change_pp": np.nan if r.true is None else 100 * (r.true[i] - r.control_true[i]),
            "U2": r.test.statistic, "p_fields": r.test.p_value, "p_cells_naive": r.naive_p,
        })
    return rows


def era_check(table: pd.DataFrame, T_hours: float) -> dict[str, float]:
    """How far ERA hours and the clock's hours are from the truth in one population (simulated data).

    ERA ranks the population's own clock positions and maps rank F to ``T * -log2(1 - F/2)``: right for
    an unsynchronised, exponentially growing population with doubling time ``T``, which an arrested
    population is not. The clock's hours are ``position x T`` (the control cycle's hours at which an
    untreated cell looks like this one). Errors are circular in each cell's true cycle length.
    """
    from ..clock.metrics import circular_mae_hours
    from ..data.growth import era_hours

    need = {"clock", "true_age_h", "true_cycle_h"}
    if not need <= set(table.columns):
        raise ValueError(f"the ERA check needs columns {sorted(need)} (truth exists only for simulated data)")
    pos = table["clock"].to_numpy(dtype=float)
    truth = table["true_age_h"].to_numpy(dtype=float)
    cyc = table["true_cycle_h"].to_numpy(dtype=float)
    era = era_hours(pos, T_hours)
    return {
        "era_mae_h": circular_mae_hours(era, truth, cyc),
        "clock_mae_h": circular_mae_hours(pos * T_hours, truth, cyc),
        "true_mean_cycle_h": float(np.mean(cyc)),
    }
