"""The figures and tables of the conditions chapter (07): treated populations against a control.

Why: the chapter asks which phase a treatment holds cells in, by how much, and how sure the answer
is; it reads like a methods section, so everything it draws or tabulates for display lives here. The
science (reading populations, the phase and DNA-content read-outs, the comparison and its test) stays
in :mod:`deepcycle_core.conditions`; these functions only lay its results out: the clock-density and
DNA-histogram figures, the dose response, and the tables and printed summaries of shares, verdicts,
the negative control and the robustness grid. Figures are drawn at the chapter's 90 dpi.
"""

from __future__ import annotations

import textwrap
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = [
    "DPI", "arcs_summary", "alignment_summary", "population_table", "ring_tabs", "clock_density_figure", "dna_histograms_figure",
    "shares_table", "verdict_table", "verdict_summary", "dose_table", "dose_figure", "null_summary",
    "GRID_TARGETS", "grid_microscopes", "grid_table", "grid_named", "grid_summary", "dose_monotone", "era_table", "arrest_table", "SHARE_DECIMALS",
]

#: The chapter's figure resolution (the inline figures were drawn at 90 dpi).
DPI = 90

#: Decimals of a share on the page. The networks' outputs differ in their last bits between CPUs (other
#: vector units sum in another order), which moves a share by about 1e-5: a third decimal then flips on
#: some machine, while 0.01 (one cell in a hundred, below the populations' sampling error) holds.
SHARE_DECIMALS = 2


def _points(values: Any) -> np.ndarray:
    """Percentage points rounded to whole points for the page (see :data:`SHARE_DECIMALS`)."""
    return np.round(np.asarray(values, dtype=float)).astype(int)


def _p_text(p: float) -> str:
    """A p-value for the page: below 0.001 only its bound (the digits of a p of 1e-70 hang on the last
    bits of the statistic, which differ between CPUs), else two significant digits."""
    return "<0.001" if p < 1e-3 else f"{p:.2g}"


def _phases() -> tuple[str, ...]:
    from ..conditions.phase_calls import PHASE_GROUPS

    return tuple(PHASE_GROUPS)


def arcs_summary(arcs: Mapping[str, Any]) -> str:
    """One line per network: its clock arcs' cuts and the share of cells read in the arc of their call,
    so the calibration on the ring can be read beside the calls' own table."""
    lines = []
    for mode, a in arcs.items():
        reads = ", ".join(f"{ph} {a.misreading[i, i]:.2f}" for i, ph in enumerate(_phases()))
        lines.append(f"{mode}: clock arcs G1 [0, {a.cuts[0]:.2f}), S [{a.cuts[0]:.2f}, {a.cuts[1]:.2f}), "
                     f"G2/M [{a.cuts[1]:.2f}, 1); cells read in the arc of their call: {reads}")
    return "\n".join(lines)


def alignment_summary(alignment: Any, width: int = 76) -> str:
    """The DNA read-out's alignment report (``DnaContentReadout.alignment``) wrapped to the page's code box."""
    return textwrap.fill(str(alignment), width, subsequent_indent="  ")


def population_table(pops: Mapping[str, Mapping[str, pd.DataFrame]], mode: str) -> pd.DataFrame:
    """Per population (read by network ``mode``): the phase its treatment acts on, cells and fields read,
    and the simulator's truth (share arrested, true phase shares). A name's first word is its condition."""
    from ..conditions.analysis import true_shares
    from ..sim.treatments import CONDITIONS

    rows = []
    for name, p in pops.items():
        t = p[mode]
        rows.append({"population": name, "acts on": CONDITIONS[name.split(" ")[0]].phase, "cells read": len(t),
                     "fields": t["field"].nunique(), "arrested (true)": t["true_arrested"].mean(),
                     **{f"true {ph}": s for ph, s in zip(_phases(), true_shares(t))}})
    return pd.DataFrame(rows).set_index("population")


def ring_tabs(tables: Mapping[str, pd.DataFrame], *, width: int = 420, height: int = 420) -> Any:
    """Every cell of each population on the clock head's plane (cos, sin), one Datashader tab each:
    the angle is the clock, the radius its confidence."""
    import holoviews as hv

    from .views import ring_view

    views = [ring_view(t, "density", x="cycle_cos", y="cycle_sin", dynamic=False, width=width, height=height,
                       title=f"{name}: {len(t):,} cells", xlabel="clock cos", ylabel="clock sin")
             for name, t in tables.items()]
    return hv.Layout(views).cols(1).opts(tabs=True)


def clock_density_figure(control: np.ndarray, treated: Mapping[str, np.ndarray], cuts: Sequence[float], *,
                         bins: int = 40, dpi: int = DPI) -> Any:
    """Density of clock positions per treated population (colour) over the control's (grey), one panel
    each, with the control's phase-arc cuts: where along the cycle a treatment piles cells up."""
    import matplotlib.pyplot as plt

    edges = np.linspace(0, 1, bins + 1)
    fig, axes = plt.subplots(1, len(treated), figsize=(4 * len(treated), 3.2), sharey=True, dpi=dpi)
    axes = np.atleast_1d(axes)
    for ax, (name, clock) in zip(axes, treated.items()):
        ax.hist(control, bins=edges, density=True, color="0.6", alpha=0.6, label="control")
        ax.hist(clock, bins=edges, density=True, histtype="step", lw=2, label=name)
        for c in cuts:
            ax.axvline(c, color="k", ls="--", lw=1)
        ax.set_title(name)
        ax.set_xlabel("clock position (0 = division)")
    axes[0].set_ylabel("density")
    axes[0].legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return fig


def dna_histograms_figure(fits: Mapping[str, tuple[Any, np.ndarray]], *, dpi: int = DPI) -> Any:
    """Each population's DNA-content histogram relative to its fitted 2N peak (log2, so 4N sits at 1),
    with the fitted phase components and their sum; ``fits`` maps a name to ``DnaContentReadout.fit``'s
    (fit, aligned log2 contents)."""
    import matplotlib.pyplot as plt

    grid = np.linspace(-1.0, 2.0, 400)
    fig, axes = plt.subplots(1, len(fits), figsize=(3.2 * len(fits), 3.0), sharey=True, dpi=dpi)
    axes = np.atleast_1d(axes)
    for ax, (name, (fit, aligned)) in zip(axes, fits.items()):
        ax.hist(aligned - fit.g1_log2, bins=np.linspace(-1.0, 2.0, 61), density=True, color="0.8")
        comp = fit.component_densities(grid + fit.g1_log2)
        for j, ph in enumerate(_phases()):
            ax.plot(grid, comp[:, j], lw=1.5, label=ph)
        ax.plot(grid, comp.sum(axis=1), "k--", lw=1, label="fit")
        ax.set_title(f"{name} (CV {fit.cv:.0%})", fontsize=9)
        ax.set_xlabel("log2 DNA content / 2N")
    axes[0].set_ylabel("density")
    axes[0].legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig


def _readout_label(label: str) -> str:
    """A read-out's short column name: the network's mode, or the read-out itself."""
    return label[len("network ("):-1] if label.startswith("network (") else label


def shares_table(results: Mapping[tuple[str, str], Any]) -> pd.DataFrame:
    """Per (condition, read-out, phase) of ``results`` (``conditions.analysis.compare`` outcomes keyed by
    (condition, read-out); a network's read-out is named by its mode, to keep the table narrow): inferred, clock-arc and true shares, the error, and the change from the
    control with its 95 % interval beside the true change, rounded for the page: shares to 0.01 and
    points to 1, what is stable across CPUs (:data:`SHARE_DECIMALS`)."""
    from ..conditions.analysis import comparison_rows

    shares = pd.DataFrame([row for (name, label), r in results.items() for row in comparison_rows(name, label, r)])
    return pd.DataFrame({
        "inferred": shares["inferred"].round(SHARE_DECIMALS).to_numpy(),
        "clock arcs": shares["clock_arcs"].round(SHARE_DECIMALS).to_numpy(),
        "true": shares["true"].round(SHARE_DECIMALS).to_numpy(),
        "error (pp)": _points(shares["error_pp"]),
        "change (pp) [95 % CI]": [f"{c:+d} [{lo:+d}, {hi:+d}]" for c, lo, hi in
                                  zip(*(_points(shares[k]) for k in ("change_pp", "change_low_pp", "change_high_pp")))],
        "true change (pp)": _points(shares["true_change_pp"]),
    }, index=pd.MultiIndex.from_arrays([shares["condition"], shares["read-out"].map(_readout_label), shares["phase"]],
                                       names=["condition", "read-out", "phase"]))


def verdict_table(results: Mapping[tuple[str, str], Any]) -> pd.DataFrame:
    """Per (condition, read-out): the phase named against the phase with the largest true rise, the
    largest share error and whether every share is within 5 pp, and the test's p-values (fields, and
    cells counted as independent for contrast)."""
    rows = []
    for (name, label), r in results.items():
        err = np.abs(r.shares - r.true).max()
        rows.append({"condition": name, "read-out": _readout_label(label), "phase named": r.named_phase,
                     "phase with the largest true rise": r.true_phase, "named right": r.named_phase == r.true_phase,
                     "largest share error (pp)": int(round(100 * err)), "within 5 pp": bool(err <= 0.05),
                     "p (fields)": round(r.test.p_value, 3), "p (cells, naive)": _p_text(r.naive_p)})
    return pd.DataFrame(rows).set_index(["condition", "read-out"])


def verdict_summary(verdict: pd.DataFrame, control: str, modes: Sequence[str]) -> str:
    """The control-vs-control p-values per network, then per read-out how many treatments it named
    right and how many had every share within 5 pp (``verdict`` from :func:`verdict_table`)."""
    lines = [textwrap.fill(f"control vs {control}: p (fields) " + ", ".join(
        f"{mode} {verdict.loc[(control, mode), 'p (fields)']:.3f}" for mode in modes),
        76, subsequent_indent="    ")]
    treated = verdict.drop(index=control, level=0)
    for label in treated.index.get_level_values("read-out").unique():
        v = treated.xs(label, level="read-out")
        name = label if label == "DNA content" else f"network ({label})"
        lines.append(f"{name}: phase named right for {int(v['named right'].sum())} of {len(v)};")
        lines.append(f"  every share within 5 pp for {int(v['within 5 pp'].sum())} of {len(v)} (targets: all)")
    return "\n".join(lines)


def dose_table(dose: Mapping[float, Mapping[str, pd.DataFrame]], phase: str, readouts: Mapping[str, Any],
               dna_readout: Any | None = None, dna_mode: str = "both") -> pd.DataFrame:
    """Per strength: the true share of ``phase`` and the share each network read-out (``readouts``, by
    mode) and the DNA content (when given) infer; the truth comes from the first mode's table."""
    from ..conditions.analysis import true_shares

    k = _phases().index(phase)
    modes = list(readouts)
    rows = []
    for s, p in dose.items():
        row = {"strength": s, "true": true_shares(p[modes[0]])[k]}
        row.update({f"network ({mode})": readouts[mode].shares(p[mode])[k] for mode in modes})
        if dna_readout is not None:
            row["DNA content"] = dna_readout.shares(p[dna_mode])[k]
        rows.append(row)
    return pd.DataFrame(rows).set_index("strength")


def dose_figure(table: pd.DataFrame, condition: str, phase: str, *, dpi: int = DPI) -> Any:
    """The true share of ``phase`` against strength (black) and each read-out's inferred share (dashed),
    from :func:`dose_table`."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.4, 3.4), dpi=dpi)
    ax.plot(table.index, table["true"], "k-o", label="truth")
    for col in table.columns.drop("true"):
        ax.plot(table.index, table[col], "--s", label=f"inferred: {col}")
    ax.set_xlabel(f"{condition} strength")
    ax.set_ylabel(f"share of cells in {phase}")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)  # beside, not over, the lines
    fig.tight_layout()
    return fig


def null_summary(null: Mapping[str, Any]) -> str:
    """The stored negative control (``benchmarks/conditions_null_results.json``) in words: how often
    the tests rejected and the DNA shares' intervals excluded zero over control-vs-control pairs."""
    n = null["pairs"]
    return "\n".join([
        f"{n} control-vs-control pairs ({null['fields']} fields each, network {null['network']}), level {null['alpha']}:",
        f"  the field-permutation test rejected {null['rejected_fields']} (rate {null['rate_fields']:.3f})",
        f"  U2 counting cells as independent rejected {null['rejected_naive']} (rate {null['rate_naive']:.3f})",
        "DNA-content shares, 95 % interval of the change:",
        f"  {null.get('dna_interval', str(null['dna_bootstrap']) + ' refitted draws')}",
        "  excludes 0: " + ", ".join(f"{ph} {k}/{n}" for ph, k in null["dna_ci_excludes_0"].items())
        + f"; any phase {null['dna_ci_any_phase_excludes_0']}/{n}",
        *([f"  (a percentile bootstrap of {null['dna_bootstrap']} refitted draws instead:",
           "   " + ", ".join(f"{ph} {k}/{n}" for ph, k in null["dna_bootstrap_ci_excludes_0"].items()) + ")"]
          if "dna_bootstrap_ci_excludes_0" in null else []),
        f"  mean largest |change| {null['dna_mean_largest_change_pp']:.1f} pp; its mean largest error",
        f"  against the true change {null['dna_mean_largest_change_error_pp']:.1f} pp",
        "command:\n" + textwrap.fill(null["command"], 72, initial_indent="  ", subsequent_indent="      "),
    ])


#: The issue's targets on the robustness grid, per kind of read-out: (named right, share within, of the treated).
GRID_TARGETS = {"best": (0.95, 5.0, 0.80), "network": (0.90, 10.0, 0.80)}


def grid_microscopes(grid: Mapping[str, Any]) -> pd.DataFrame:
    """Per microscope of the stored robustness grid: the 4N/2N ratio it renders (set) and the one fitted
    on its control with its 95 % profile-likelihood interval, and its control's nuclei a field and frame."""
    rows = []
    for m in grid["microscopes"]:
        lo, hi = m.get("ratio_interval", (np.nan, np.nan))
        rows.append({"microscope": m["microscope"], "4N/2N set": m.get("overrides", {}).get("dna_4n_ratio", 2.0),
                     "4N/2N fitted [95 %]": f"{m['fitted_4n_2n_ratio']:.2f} [{lo:.2f}, {hi:.2f}]",
                     "nuclei a field-frame": int(round(m["cells_per_field_frame"]["control"]))})
    return pd.DataFrame(rows).set_index("microscope")


def grid_table(grid: Mapping[str, Any]) -> pd.DataFrame:
    """Per microscope of the stored robustness grid (``benchmarks/robustness_grid_results.json``), one
    column per read-out: of its 3 treated populations, how many were named right, had every share
    within 5 pp and within 10 pp (``named / 5 pp / 10 pp``); the last row sums the grid."""
    rows = pd.DataFrame(grid["rows"])
    rows["within5"] = rows["largest_error_pp"] <= 5.0
    rows["within10"] = rows["largest_error_pp"] <= 10.0

    def cell(g: pd.DataFrame) -> str:
        return f"{int(g['named_right'].sum())} / {int(g['within5'].sum())} / {int(g['within10'].sum())}"

    order = list(dict.fromkeys(rows["microscope"]))
    table = {}
    for label, g in rows.groupby("readout", sort=False):
        col = {m: cell(gm) for m, gm in g.groupby("microscope", sort=False)}
        col["all"] = cell(g)
        table[_readout_label(label)] = pd.Series(col).reindex([*order, "all"])
    out = pd.DataFrame(table)
    out.index.name = "named / 5 pp / 10 pp"
    return out


def grid_named(grid: Mapping[str, Any]) -> pd.DataFrame:
    """Per microscope of the stored robustness grid, one column per read-out: the phase it named for
    each treatment, in the grid's order (the truth is each treatment's own phase, first row)."""
    rows = pd.DataFrame(grid["rows"])
    conds = list(dict.fromkeys(rows["condition"]))
    truth = rows.drop_duplicates("condition").set_index("condition").loc[conds, "true_phase"]
    table = {}
    for label, g in rows.groupby("readout", sort=False):
        col = {"truth": " ".join(truth)}
        col.update({m: " ".join(gm.set_index("condition").loc[conds, "named"]) for m, gm in g.groupby("microscope", sort=False)})
        table[_readout_label(label)] = pd.Series(col)
    out = pd.DataFrame(table)
    out.index.name = " / ".join(conds)
    return out


def grid_summary(grid: Mapping[str, Any]) -> str:
    """Per read-out: ``N of M named right, K of M within 5 pp`` (and within 10 pp) over the grid, with
    the targets and whether each is met; says so when the grid was not read whole."""
    lines = [] if grid.get("complete", False) else [
        f"NOTE: only {grid['microscopes_read']} of {len(grid['grid'])} microscopes were read: not the grid's result"]
    for label, c in grid["summary"].items():
        m = c["treated"]
        kind = "network" if label.startswith("network") else "best"
        named, pp, within = GRID_TARGETS[kind]
        k = c["within_5pp"] if pp == 5.0 else c["within_10pp"]
        ok = c["named_right"] >= named * m and k >= within * m
        lines.append(f"{label}: {c['named_right']} of {m} named right, {c['within_5pp']} of {m} within 5 pp, "
                     f"{c['within_10pp']} of {m} within 10 pp -- target {named:.0%} named and {within:.0%} within "
                     f"{pp:g} pp: {'met' if ok else 'MISSED'}")
    return "\n".join(textwrap.fill(line, 76, subsequent_indent="    ") for line in lines)


def dose_monotone(table: pd.DataFrame) -> str:
    """Whether each read-out's share rises with the dose where the truth does (``table`` from
    :func:`dose_table`), with the shares in dose order."""
    def rises(v: np.ndarray) -> bool:
        return bool(np.all(np.diff(v) > 0))

    truth = table["true"].to_numpy()
    lines = [f"truth: {', '.join(f'{v:.2f}' for v in truth)} ({'rises' if rises(truth) else 'does not rise'} with the dose)"]
    for col in table.columns.drop("true"):
        v = table[col].to_numpy()
        lines.append(f"{col}: {', '.join(f'{x:.2f}' for x in v)} -- "
                     f"{'monotone with the truth' if rises(v) == rises(truth) and rises(v) else 'NOT monotone'}")
    return "\n".join(lines)


def era_table(tables: Mapping[str, pd.DataFrame], T_hours: float) -> pd.DataFrame:
    """Per population: the mean error of ERA hours and of the clock's hours against the truth, and the
    true mean cycle (``conditions.analysis.era_check`` with the control's doubling time)."""
    from ..conditions.analysis import era_check

    era = pd.DataFrame({name: era_check(t, T_hours) for name, t in tables.items()}).T
    era.columns = ["ERA hours: MAE (h)", "clock hours: MAE (h)", "true mean cycle (h)"]
    return era


def arrest_table(control: pd.DataFrame | Mapping[str, pd.DataFrame], arrested: pd.DataFrame | Mapping[str, pd.DataFrame],
                 readouts: Mapping[str, Any], dna_readout: Any, names: tuple[str, str] = ("control", "g1_arrest"),
                 dna_mode: str = "both") -> pd.DataFrame:
    """Untreated G1 and S cells against G1 cells of an arrested population (not arrested / arrested):
    cells, median true nuclear area, and each read-out's mean probability of S (columns named by the
    network's mode, and DNA for the DNA content, to keep the table narrow), which shows why a
    network trained on untreated cells reads a large arrested G1 cell as S. ``control`` and ``arrested``
    map a network mode to that network's table (one table: every read-out reads it); ``readouts`` map a
    mode to its phase read-out."""
    c, a = names

    def table(p: Any, mode: str) -> pd.DataFrame:
        return p[mode] if isinstance(p, Mapping) else p

    base_c, base_a = table(control, dna_mode), table(arrested, dna_mode)
    p_dna = {c: dna_readout.probabilities(base_c), a: dna_readout.probabilities(base_a)}
    groups = {f"{c}, G1": (c, lambda t: t["true_phase"] == "G1"), f"{c}, S": (c, lambda t: t["true_phase"] == "S"),
              f"{a}, G1 not arrested": (a, lambda t: (t["true_phase"] == "G1") & ~t["true_arrested"].astype(bool)),
              f"{a}, G1 arrested": (a, lambda t: t["true_arrested"].astype(bool))}
    rows = {}
    for label, (pop, select) in groups.items():
        src = control if pop == c else arrested
        base = base_c if pop == c else base_a
        m = select(base).to_numpy()
        g = base[m]
        row = {"cells": len(g), "nuclear area (px)": int(g["true_nuc_area"].median())}
        for mode, readout in readouts.items():
            t = table(src, mode)
            row[f"P(S) {mode}"] = readout.probabilities(t[select(t).to_numpy()])[:, 1].mean()
        row["P(S) DNA"] = p_dna[pop][m, 1].mean()
        rows[label] = row
    return pd.DataFrame(rows).T.astype({"cells": int, "nuclear area (px)": int}).round(SHARE_DECIMALS)
