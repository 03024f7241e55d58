"""The figures and printed tables of the trajectory chapter (``book/04_trajectory.ipynb``): the cycle ring.

Why a module (named ``ring``: the clock wing's :mod:`deepcycle_core.clock.trajectory` has the other
name, and module names are unique across wings): the chapter reads like a methods section and only
calls these functions; each one draws (or formats) exactly what the chapter showed when the drawing was inline, so the book's
figures and printed numbers do not change. The ring, its orientation, its verdict, ERA hours and
the cycle head's read-out are computed in ``deepcycle_core.clock``
(:func:`deepcycle_core.clock.trajectory.run_trajectory`, :mod:`deepcycle_core.clock.head`); this
module draws them with the shared Datashader views of :mod:`deepcycle_core.plots.views` and
formats their summaries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..clock import metrics
from ..clock.orientation import NOT_A_CLOCK
from ..data.fucci import CLASS_NAMES
from .views import crop_gallery, fucci_figure, fucci_profile, prepare_points, ring_image, sample_along

if TYPE_CHECKING:
    from ..clock.trajectory import Ring

__all__ = [
    "arc_rates_figure",
    "class_order_summary",
    "clock_verdict_summary",
    "cycle_head_figure",
    "era_figure",
    "era_summary",
    "fucci_peaks_summary",
    "held_out_clock_summary",
    "interval_figure",
    "interval_summary",
    "no_hours_reason",
    "ring_figure",
    "ring_gallery_figure",
    "ring_summary",
    "ring_table",
    "ring_verdict_summary",
    "som_figure",
    "som_summary",
    "truth_figure",
    "truth_summary",
]

#: Resolution of the chapter's multi-panel matplotlib figures (the book's inline figures).
_DPI = 90
#: Columns of the cell table the chapter's figures read (ground truth only where the store has it).
_CELL_COLUMNS = ["cell_id", "fucci_red", "fucci_green", "class", "track_id", "frame", "full_cycle"]
_TRUTH_COLUMNS = ("true_age", "true_age_h", "true_cycle_h", "true_phase")


def _subplots(*args: Any, **kwargs: Any):
    import matplotlib.pyplot as plt

    return plt.subplots(*args, dpi=_DPI, **kwargs)


def ring_summary(traj: pd.DataFrame, ring: "Ring") -> str:
    """How the ring was fitted and oriented, the movie's verdict and the doubling time's source."""
    info = ring.info
    lines = [f"cells placed on the ring: {len(traj):,}; fitted on {info['n_fit_cells']:,} ({info['split']})",
             f"2-D PCA keeps {sum(info['explained_variance_2d']):.1%} of the descriptor variance",
             f"closed curve: {info['n_harmonics']} harmonics, {info['curve_fit']['iterations']} iterations",
             f"orientation rule: {info['orientation']}; direction: {info['direction_rule']}; origin: {info['origin_rule']}"]
    if info["orientation"] == "movie":
        lines.append(f"  {info['forward_tracks']:.0%} of {info['n_tracks']} fitting tracks advance that way "
                     f"(sign test z = {info['direction_z']:.1f}); origin from {info['n_births']} daughter tracks "
                     f"(spread {info['birth_spread']:.2f} of a turn)")
    else:
        lines.append(f"  FUCCI scores: direction {info['direction_score']:.2f}, division {info['division_score']:.2f}")
    quality = info.get("quality", {})
    lines.append(f"verdict along the fitting tracks: {quality.get('verdict', 'unchecked')}"
                 + (f" -- {quality['reason']}" if quality.get("reason") else ""))
    T_text = "not available" if ring.T_hours is None else f"{ring.T_hours:.3g} h"
    lines.append(f"doubling time T = {T_text}; source: {ring.T_source}")
    return "\n".join(lines)


def ring_table(traj: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """The ring's per-cell table joined with what the figures colour by (FUCCI, class, tracks, truth)."""
    cols = _CELL_COLUMNS + [c for c in _TRUTH_COLUMNS if c in cells.columns]
    return traj.merge(cells[cols], on="cell_id", how="left", validate="one_to_one")


def ring_figure(pts: pd.DataFrame, ring_json: Mapping[str, Any], origin: Sequence[float] | None = None,
                color_bys: Sequence[str] = ("fucci_ratio", "class", "density")):
    """Every cell on the fitted ring, one Datashader panel per colouring (2 x 2, the last one blank)."""
    fig, axes = _subplots(2, 2, figsize=(9, 8.6))
    for ax, color_by in zip(axes.flat, color_bys):
        ring_image(pts, color_by, ring_json, origin=origin, ax=ax, width=360, height=360,
                   title=f"coloured by {color_by.replace('_', ' ')}")
    axes.flat[3].axis("off")
    fig.suptitle(f"{len(pts):,} cells on the fitted ring (Datashader)", fontsize=11)
    fig.tight_layout()
    return fig


def class_order_summary(df: pd.DataFrame) -> str:
    """The circular mean pseudotime of each FUCCI class, in the order they come around the ring."""
    by_class = df[df["class"] >= 0].groupby("class")["angle"].apply(lambda a: metrics.circular_mean(a) / (2 * np.pi))
    lines = ["circular mean pseudotime of each FUCCI class (0 = division):"]
    lines += [f"  {CLASS_NAMES[k]:>10s}: {v:.2f}" for k, v in by_class.sort_values().items()]
    return "\n".join(lines)


def fucci_peaks_summary(prof: pd.DataFrame) -> str:
    """Where the median red and green reporters peak along pseudotime (a :func:`fucci_profile` table)."""
    peak_red = prof["center"][prof["red_median"].idxmax()]
    peak_green = prof["center"][prof["green_median"].idxmax()]
    return f"red (Cdt1) median peaks at pseudotime {peak_red:.2f}, green (Geminin) at {peak_green:.2f}"


def arc_rates_figure(quality: Mapping[str, Any], T_hours: float | None = None):
    """Mean step along the fitting tracks in each arc of the ring (turns per hour; negative in red),
    with one turn per doubling time dashed."""
    arcs = pd.DataFrame(quality["arcs"])
    fig, ax = _subplots(figsize=(6.4, 3.0))
    colors = ["C3" if r < 0 else "C0" for r in arcs["mean_rate"]]
    ax.bar(arcs["arc_start"] + 0.5 / len(arcs), arcs["mean_rate"], width=0.9 / len(arcs), color=colors)
    if T_hours:
        ax.axhline(1.0 / T_hours, color="k", ls="--", lw=0.8)
    ax.axhline(0.0, color="k", lw=0.6)
    ax.set_xlabel("pseudotime arc (0 = division)")
    ax.set_ylabel("mean step, turns per hour")
    ax.set_title(f"verdict: {quality['verdict']} ({quality['n_tracks']} fitting tracks, median "
                 f"Spearman {quality['median_spearman']:.2f})", fontsize=9)
    fig.tight_layout()
    return fig


def ring_verdict_summary(quality: Mapping[str, Any], T_hours: float | None = None) -> str:
    """The movie's verdict on the ring in words (or why there is none)."""
    if "arcs" not in quality:
        return f"no judgement: {quality.get('reason', 'the store has no tracks')}"
    text = (f"verdict: {quality['verdict']}; stretches running clearly backwards: {quality['backward_share']:.0%}; "
            f"median rate {quality['forward_rate_turns_per_h']:.3f} turns/h"
            + (f" (one turn per doubling time: {1 / T_hours:.3f})" if T_hours else ""))
    return text + (f"\n{quality['reason']}" if quality.get("reason") else "")


def no_hours_reason(ring: "Ring") -> str | None:
    """Why the ring gets no ERA hours (no doubling time, or not a clock); None when it gets them."""
    if ring.T_hours is None:
        return "no doubling time: hours are not available (set traj_hours_T)"
    if ring.verdict in NOT_A_CLOCK:  # folded, reversed, undirected
        return (f"no hours: the movie's tracks show this ring is {ring.verdict}, not a clock (see above); "
                f"calibrating its positions in hours would give a confident-looking but wrong time")
    return None


def _hours_profile(df: pd.DataFrame, ring: "Ring") -> pd.DataFrame:
    return fucci_profile(df, "hours", bins=40, period=float(ring.T_hours))


def era_figure(ring: "Ring", df: pd.DataFrame):
    """Left: the ERA time axis against uniform speed; right: the FUCCI reporters along ERA hours."""
    p = np.linspace(0, 1, 201)
    fig, ax = _subplots(1, 2, figsize=(12, 3.4))
    ax[0].plot(p, ring.hours(p), color="black", lw=2, label="ERA")
    ax[0].plot([0, 1], [0, ring.T_hours], color="grey", ls="--", lw=1, label="uniform speed")
    ax[0].set_xlabel("pseudotime")
    ax[0].set_ylabel("hours since division")
    ax[0].legend(frameon=False, fontsize=8)
    ax[0].set_title(f"ERA time axis (T = {ring.T_hours:.3g} h)", fontsize=10)
    fucci_figure(_hours_profile(df, ring), "hours since division (ERA)", ax=ax[1])
    fig.tight_layout()
    return fig


def era_summary(ring: "Ring", df: pd.DataFrame) -> str:
    """The median ERA hour and where the green reporter peaks in hours."""
    prof_h = _hours_profile(df, ring)
    return (f"median ERA hours: {np.nanmedian(df['hours']):.3g} h; "
            f"green peaks at {prof_h['center'][prof_h['green_median'].idxmax()]:.3g} h of {ring.T_hours:.3g} h")


def ring_gallery_figure(store: Any, df: pd.DataFrame, n: int = 12, seed: int = 0):
    """One random cell from each of ``n`` arcs of the ring, labelled by its ERA hour (pseudotime without hours)."""
    sample = sample_along(df, n=n, by="pseudotime", seed=seed)
    use_hours = bool(np.isfinite(df["hours"]).any())
    return crop_gallery(store, sample, by="hours" if use_hours else "pseudotime",
                        fmt="{:.1f} h" if use_hours else "{:.2f}",
                        label="cells sampled along the ring, from division (left) to mitosis (right)")


def truth_figure(df: pd.DataFrame, ring_json: Mapping[str, Any], origin: Sequence[float] | None = None):
    """Every cell on the ring coloured by its true age fraction (simulated data only)."""
    return ring_image(df, "true_age", ring_json, origin=origin, width=360, height=360,
                      title="coloured by the TRUE age fraction")


def truth_summary(df: pd.DataFrame) -> str:
    """Fisher-Lee correlation and circular error of pseudotime against the true age (simulated data)."""
    r = metrics.fisher_lee(df["angle"].to_numpy(), 2 * np.pi * df["true_age"].to_numpy())
    mae = metrics.circular_mae(df["pseudotime"].to_numpy(), df["true_age"].to_numpy())
    return (f"Fisher-Lee correlation pseudotime vs true age (all cells): {r:.2f}\n"
            f"circular mean absolute error: {mae:.3f} of a cycle")


def som_figure(df: pd.DataFrame, som_nodes: np.ndarray):
    """Every cell coloured by its ring-SOM node, the nodes drawn as a closed polygon."""
    return ring_image(df, "som_node", som_nodes, width=360, height=360,
                      title=f"coloured by ring-SOM node (0..{len(som_nodes) - 1})")


def som_summary(df: pd.DataFrame, n_nodes: int) -> str:
    """How well the discrete SOM clock (node index) agrees with the curve's pseudotime."""
    som_t = (df["som_node"].to_numpy() + 0.5) / n_nodes
    agree = metrics.fisher_lee(2 * np.pi * som_t, df["angle"].to_numpy())
    gap = metrics.circular_mae(som_t, df["pseudotime"].to_numpy())
    return f"SOM nodes: {n_nodes}; Fisher-Lee SOM vs curve pseudotime: {agree:.2f}; mean gap {gap:.3f} of a cycle"


def cycle_head_figure(dc: pd.DataFrame):
    """Left: every cell in the plane of the cycle head's two outputs, coloured by FUCCI, on the unit
    circle; right: the FUCCI reporters along the head's clock position."""
    circle = np.c_[np.cos(np.linspace(0, 2 * np.pi, 121)), np.sin(np.linspace(0, 2 * np.pi, 121))]
    fig, axes = _subplots(1, 2, figsize=(10, 4.6))
    ring_image(prepare_points(dc, x="cycle_cos", y="cycle_sin"), "fucci_ratio", circle,
               x="cycle_cos", y="cycle_sin", origin=(1.0, 0.0), ax=axes[0], width=360, height=360,
               title="cycle head: coloured by FUCCI", xlabel="cos output", ylabel="sin output")
    fucci_figure(fucci_profile(dc, "clock", bins=40, period=1.0), "clock position (0 = division)", ax=axes[1])
    fig.tight_layout()
    return fig


def clock_verdict_summary(judged: Any, dc: pd.DataFrame) -> str:
    """The movie's verdict on the cycle head (:func:`deepcycle_core.clock.head.judge_clock`) and its confidence."""
    return (f"verdict along the fitting tracks: {judged.verdict} ({len(judged.tracks)} tracks, median Spearman "
            f"{judged.median_spearman:.2f}, stretches running clearly backwards {judged.backward_share:.0%})\n"
            f"confidence (length of the output vector): median {dc['confidence'].median():.2f}, "
            f"10th percentile {dc['confidence'].quantile(0.1):.2f}")


def held_out_clock_summary(dc: pd.DataFrame, split: pd.DataFrame) -> str:
    """The cycle head on the held-out full-cycle cells against the true age (simulated data), and how
    many of them their 80 % interval holds."""
    from ..clock.uncertainty import on_forward_arc

    h = dc[(split["split"] == "heldout").to_numpy()]
    r = metrics.fisher_lee(2 * np.pi * h["clock"].to_numpy(), 2 * np.pi * h["true_age"].to_numpy())
    mae = metrics.circular_mae(h["clock"].to_numpy(), h["true_age"].to_numpy())
    text = (f"held-out cells: {len(h):,}; Fisher-Lee clock vs true age {r:.2f};\n"
            f"circular error {mae:.3f} of a cycle = {mae * h['true_cycle_h'].mean():.2f} h at their mean "
            "cycle length")
    if "interval_lo" in h.columns and h["interval_lo"].notna().all() and len(h):
        cover = on_forward_arc(h["true_age"], h["interval_lo"], h["interval_hi"]).mean()
        text += f"\n80 % intervals cover {100 * cover:.0f} % of held-out cells"
    return text


def interval_summary(dc: pd.DataFrame) -> str:
    """How the clock's intervals were calibrated and how wide they are (no truth needed)."""
    note = dc.attrs.get("intervals", "")
    w = dc["interval_h"].dropna()
    if w.empty:
        return note or "no intervals"
    q10, q50, q90 = w.quantile([0.1, 0.5, 0.9])
    return f"{note}\ninterval length: median {q50:.1f} h (10th-90th percentile {q10:.1f}-{q90:.1f} h)"


def interval_figure(dc: pd.DataFrame):
    """Left: the cycle head's plane, each hexagon coloured by its cells' median interval length (h);
    right: the interval length along the clock position (median and 10-90 % band)."""
    fig, axes = _subplots(1, 2, figsize=(10, 4.4))
    ok = dc["interval_h"].notna().to_numpy()
    d = dc[ok]
    hb = axes[0].hexbin(d["cycle_cos"], d["cycle_sin"], C=d["interval_h"], reduce_C_function=np.median,
                        gridsize=45, cmap="viridis", mincnt=3)
    fig.colorbar(hb, ax=axes[0], label="80 % interval (h)")
    axes[0].set(xlabel="cos output", ylabel="sin output", aspect="equal",
                title="cycle head: interval length")
    bins = np.linspace(0, 1, 21)
    which = np.clip(np.digitize(d["clock"], bins) - 1, 0, 19)
    g = d.groupby(which)["interval_h"]
    mid = 0.5 * (bins[:-1] + bins[1:])[g.median().index]
    axes[1].fill_between(mid, g.quantile(0.1), g.quantile(0.9), alpha=0.3, label="10-90 %")
    axes[1].plot(mid, g.median(), "o-", label="median")
    axes[1].set(xlabel="clock position (0 = division)", ylabel="80 % interval (h)",
                title="where the clock is unsure", xlim=(0, 1))
    axes[1].legend(loc="upper right", frameon=False)
    fig.tight_layout()
    return fig
