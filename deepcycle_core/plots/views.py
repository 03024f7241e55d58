"""HoloViews/Datashader views shared by the chapters.

Why Datashader: the paper's data set has ~2.6 M cells; a scatter plot of that many markers takes
matplotlib 10-20 s and hides density by overplotting.  Datashader aggregates every point into a
per-pixel count (or mean) in ~0.1 s, and HoloViews' ``rasterize`` re-aggregates on every zoom in a
live kernel.  The rendered (static) book gets the same aggregation twice: as a Bokeh figure (the
initial raster) and as a static PNG made by :func:`ring_image`, so the page is readable even when
no JavaScript runs.

The logic lives here; notebooks only call these functions.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..data import fucci
__all__ = [
    "CLASS_COLORS",
    "COLOR_BY",
    "FUCCI_CMAP",
    "MAX_FIGURE_WIDTH",
    "UNLABELLED",
    "aggregate",
    "class_names",
    "crop_gallery",
    "display_range",
    "fit_column",
    "fucci_figure",
    "fucci_profile",
    "fucci_ratio",
    "fucci_view",
    "padded_ranges",
    "prepare_points",
    "ring_image",
    "ring_view",
    "ring_views",
    "sample_along",
]

#: The name of class code -1 (a cell the FUCCI gates left unlabelled).
UNLABELLED = "unlabelled"


def class_names() -> dict[int, str]:
    """Class code -> name, -1 (unlabelled) included.

    The names come from :data:`deepcycle_core.data.fucci.CLASS_NAMES`, their one home, so a renamed class
    cannot disagree between the labels and the plots.
    """
    return {-1: UNLABELLED, **dict(enumerate(fucci.CLASS_NAMES))}


#: Colour of each class name (in :func:`class_names` order: unlabelled, then codes 0-3).
CLASS_COLORS: dict[str, str] = dict(zip(class_names().values(), ("#bbbbbb", "#4c72b0", "#d62728", "#2ca02c", "#e6a700"), strict=True))
#: Red -> yellow -> green, for the green fraction g / (r + g) of the two FUCCI reporters.
FUCCI_CMAP: list[str] = ["#c0161c", "#f46d43", "#fee08b", "#a6d96a", "#1a9641"]
COLOR_BY = ("fucci_ratio", "class", "density")
#: Widest a Bokeh figure may grow (px): the book's content column is ~700 px at 1280 px and the
#: full screen width on a phone, so figures scale down to their container and never past this.
MAX_FIGURE_WIDTH = 700


def fit_column(width: int, height: int, colorbar: bool = False) -> dict[str, Any]:
    """HoloViews plot options that make a Bokeh figure scale to its container's width.

    Why: a figure of fixed pixel size is cut off (or scrolls the whole page sideways) wherever the
    column is narrower than the figure -- a phone, a narrow JupyterLab panel, the book's content
    column beside its side bars.  ``scale_width`` keeps the figure's aspect and shrinks it with its
    container; it never grows past ``width`` plus room for axes (and a colour bar) nor past
    :data:`MAX_FIGURE_WIDTH`.  The aspect counts that room too, so a ``width`` x ``height`` data frame
    keeps (about) its shape: a ring stays round.  Pass ``colorbar_position="bottom"`` with
    ``colorbar=True``.
    """
    # the colour bar goes below the frame (colorbar_position="bottom"): beside it, it would take
    # ~90 px of a 390-px phone column from the frame
    outer_w, outer_h = width + 60, height + (130 if colorbar else 60)
    # responsive="width" with an aspect is HoloViews' own "scale_width" (so Panel, which wraps the
    # figure in a live notebook, agrees with it and warns of no sizing conflict)
    # (max_width goes to the Bokeh figure directly: HoloViews drops its own inside layouts and tabs)
    return dict(responsive="width", aspect=outer_w / outer_h,
                backend_opts={"plot.max_width": min(outer_w, MAX_FIGURE_WIDTH)})


def fucci_ratio(df: pd.DataFrame) -> np.ndarray:
    """Green fraction ``g / (r + g)`` of the FUCCI reporters in [0, 1]; NaN where both are ~0.

    0 means pure Cdt1 (red, G1), 1 pure Geminin (green, S/G2/M): one number that runs once around
    the cycle's colour wheel.  Negative background-subtracted values are clipped at 0.
    """
    r = np.clip(df["fucci_red"].to_numpy(dtype=np.float64), 0, None)
    g = np.clip(df["fucci_green"].to_numpy(dtype=np.float64), 0, None)
    total = r + g
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(total > 1e-12, g / np.where(total > 0, total, 1.0), np.nan)
    return ratio.astype(np.float32)


_PREPARED = "deepcycle_ring_points"


def prepare_points(df: pd.DataFrame, x: str = "x2d", y: str = "y2d", color_by: str | None = None) -> pd.DataFrame:
    """The narrow table the ring views aggregate: x, y (float32) and the colour column(s).

    ``color_by=None`` keeps every colour (``fucci_ratio``, ``class_name``); a name keeps only what it
    needs.  Aggregation cost scales with the bytes scanned, so a chapter that draws the same cells
    several times prepares them once and passes the result to :func:`ring_view`/:func:`ring_image`.
    The class becomes a Categorical built from integer codes (no per-row string work).
    """
    for col in (x, y):
        if col not in df.columns:
            raise KeyError(f"ring view: the table has no column {col!r} (columns: {list(df.columns)[:12]}...)")
    out = pd.DataFrame({x: df[x].to_numpy(dtype=np.float32), y: df[y].to_numpy(dtype=np.float32)})
    want = {"fucci_ratio", "class"} if color_by is None else {color_by}
    if "fucci_ratio" in want:
        if "fucci_ratio" in df.columns:
            out["fucci_ratio"] = df["fucci_ratio"].to_numpy(dtype=np.float32)
        elif "fucci_red" in df.columns and "fucci_green" in df.columns:
            out["fucci_ratio"] = fucci_ratio(df)
    if "class" in want:
        if "class_name" in df.columns and isinstance(df["class_name"].dtype, pd.CategoricalDtype):
            out["class_name"] = df["class_name"].to_numpy()
        elif "class" in df.columns:
            names = class_names()
            keys = sorted(names)
            codes = df["class"].to_numpy().astype(np.int64) - keys[0]
            codes = np.where((codes >= 0) & (codes < len(keys)), codes, 0).astype(np.int8)  # unknown -> unlabelled
            out["class_name"] = pd.Categorical.from_codes(codes, categories=[names[k] for k in keys])
    extra = [] if color_by is None else [color_by]
    for col in extra:
        if col not in COLOR_BY and col in df.columns:
            out[col] = df[col].to_numpy(dtype=np.float32)
    out.attrs[_PREPARED] = (x, y)
    return out


def _curve_array(curve: Any) -> np.ndarray | None:
    """A closed curve as an (N+1, 2) array from an array, a DataFrame (x, y) or ring.json's dict."""
    if curve is None:
        return None
    if isinstance(curve, dict):
        for key in ("curve", "points", "curve_points"):
            if key in curve:
                return _curve_array(curve[key])
        raise KeyError(f"curve dict has none of the keys 'curve', 'points', 'curve_points': {list(curve)}")
    if isinstance(curve, pd.DataFrame):
        arr = curve.iloc[:, :2].to_numpy(dtype=np.float64)
    else:
        arr = np.asarray(curve, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2 or len(arr) < 3:
        raise ValueError(f"a ring curve must be an (N>=3, 2) array of points, got shape {arr.shape}")
    if not np.allclose(arr[0], arr[-1]):
        arr = np.vstack([arr, arr[:1]])
    return arr


def _ranges(
    pts: pd.DataFrame, x: str, y: str, pad: float = 0.03, square: bool = True
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Padded data ranges (one span for both axes when ``square``) so no point sits on the raster's edge."""
    xs, ys = pts[x].to_numpy(), pts[y].to_numpy()
    return padded_ranges(float(np.nanmin(xs)), float(np.nanmax(xs)), float(np.nanmin(ys)), float(np.nanmax(ys)),
                         pad=pad, square=square)


def padded_ranges(
    x0: float, x1: float, y0: float, y1: float, *, pad: float = 0.03, square: bool = True
) -> tuple[tuple[float, float], tuple[float, float]]:
    """The canvas ranges for data spanning ``x0..x1`` x ``y0..y1`` (shared by the in-memory and Dask paths)."""
    if not square:
        dx, dy = max(x1 - x0, 1e-9), max(y1 - y0, 1e-9)
        return (x0 - pad * dx, x1 + pad * dx), (y0 - pad * dy, y1 + pad * dy)
    # one span for both axes: a square canvas then shows the ring undistorted
    half = 0.5 * max(x1 - x0, y1 - y0, 1e-9) * (1 + 2 * pad)
    cx, cy = 0.5 * (x0 + x1), 0.5 * (y0 + y1)
    return (cx - half, cx + half), (cy - half, cy + half)


def _numeric_cmap(column: str) -> str:
    """A cyclic colour map for cyclic quantities (angle, pseudotime, age, SOM node), else viridis."""
    return "twilight" if any(s in column for s in ("angle", "pseudo", "age", "som", "hours")) else "viridis"


def _points_for(df: pd.DataFrame, color_by: str, x: str, y: str) -> pd.DataFrame:
    """:func:`prepare_points` plus the numeric column to colour by; a clear error when it is missing."""
    col = {"class": "class_name", "density": x}.get(color_by, color_by)
    if df.attrs.get(_PREPARED) == (x, y) and col in df.columns:
        return df  # prepared once by the caller: use as is
    pts = prepare_points(df, x, y, color_by)
    col = {"class": "class_name", "density": x}.get(color_by, color_by)
    if col not in pts.columns:
        raise KeyError(
            f"ring view: cannot colour by {color_by!r}: the table has no column {col!r} "
            f"(choose one of {COLOR_BY} or a numeric column)"
        )
    return pts


def ring_view(
    df: pd.DataFrame,
    color_by: str = "fucci_ratio",
    curve: Any = None,
    *,
    x: str = "x2d",
    y: str = "y2d",
    origin: Sequence[float] | None = None,
    width: int = 400,
    height: int = 400,
    dynamic: bool = True,
    spread_px: int = 2,
    title: str | None = None,
    xlabel: str = "ring x",
    ylabel: str = "ring y",
    square: bool = True,
):
    """Every cell on the 2-D ring, rasterised by Datashader through HoloViews, curve on top.

    ``color_by``: ``'fucci_ratio'`` (mean green fraction per pixel), ``'class'`` (per-class counts
    mixed into colours), ``'density'`` (cell count per pixel, histogram-equalised) or any numeric
    column of ``df`` (mean per pixel, e.g. ``'pseudotime'`` or ``'true_age'``).
    ``dynamic=True`` gives a DynamicMap that re-aggregates on zoom in a live kernel;
    ``dynamic=False`` aggregates once (what the static page and the tests see).
    """
    import datashader as ds
    import holoviews as hv
    from holoviews.operation.datashader import datashade, dynspread, rasterize

    pts = _points_for(df, color_by, x, y)
    vdims = [c for c in pts.columns if c in ("class_name" if color_by == "class" else color_by,)]
    points = hv.Points(pts, kdims=[x, y], vdims=vdims)
    xr, yr = _ranges(pts, x, y, square=square)
    common = dict(dynamic=dynamic, width=width, height=height, x_range=xr, y_range=yr)
    spread = dict(max_px=spread_px, threshold=0.6)
    # every colouring keeps the same outer shape (colour bar or class legend below the frame): Bokeh
    # lays out a tab or column of scale_width figures of different aspects wider than its container
    plot_opts = dict(**fit_column(width, height, colorbar=True), xlabel=xlabel, ylabel=ylabel, tools=["hover"])
    if color_by == "class":
        names = list(pts["class_name"].cat.categories)
        key = {n: CLASS_COLORS.get(n, "#777777") for n in names}
        img = dynspread(datashade(points, aggregator=ds.count_cat("class_name"), color_key=key, **common), **spread)
        # HoloViews gives a datashaded categorical RGB its own legend (one entry per colour-key class,
        # unlabelled included, as drawn); a second, hand-made legend would list every class twice.
        layer = img.opts(legend_position="bottom", legend_cols=3, **{k: v for k, v in plot_opts.items() if k != "tools"})
    elif color_by == "density":
        img = dynspread(rasterize(points, aggregator=ds.count(), **common), **spread)
        layer = img.opts(cmap="fire", cnorm="eq_hist", colorbar=True, colorbar_position="bottom", clabel="cells per pixel", bgcolor="black", **plot_opts)
    else:
        agg = ds.mean(color_by)
        img = dynspread(rasterize(points, aggregator=agg, **common), **spread)
        if color_by == "fucci_ratio":
            layer = img.opts(cmap=FUCCI_CMAP, clim=(0.0, 1.0), colorbar=True, colorbar_position="bottom", clabel="FUCCI green fraction", **plot_opts)
        else:
            layer = img.opts(cmap=_numeric_cmap(color_by), colorbar=True, colorbar_position="bottom", clabel=color_by, **plot_opts)
    arr = _curve_array(curve)
    if arr is not None:
        layer = layer * hv.Curve(arr, x, y, label="fitted ring").opts(color="white" if color_by == "density" else "black", line_width=2)
    if origin is not None:
        layer = layer * hv.Points([tuple(origin)], kdims=[x, y], label="division (origin)").opts(color="magenta", size=10, marker="x")
    return layer.opts(title=title or f"{len(pts):,} cells on the ring, coloured by {color_by}")


def ring_views(
    df: pd.DataFrame,
    color_bys: Sequence[str] = ("fucci_ratio", "class", "density"),
    curve: Any = None,
    *,
    tabs: bool = True,
    titles: Sequence[str] | None = None,
    **kwargs: Any,
):
    """Several :func:`ring_view` of the same cells, one per colouring, as tabs (or stacked in one column).

    Why not side by side: three 300-px rings with colour bars need ~1,200 px, wider than the book's
    content column (~700 px) and far wider than a phone; a row either gets cut off or shrinks every
    ring to a stamp.  Tabs (one ring at a time, a click apart) or one column (``tabs=False``) fit
    any width.
    ``kwargs`` go to :func:`ring_view` (``origin``, ``width``, ``dynamic``, ...).
    """
    import holoviews as hv

    x, y = kwargs.get("x", "x2d"), kwargs.get("y", "y2d")
    # the narrow table once for all views (a numeric colour column is picked from df by each view)
    once = not df.attrs.get(_PREPARED) and set(color_bys) <= set(COLOR_BY)
    pts = prepare_points(df, x, y) if once else df
    titles = list(titles) if titles is not None else [f"coloured by {c.replace('_', ' ')}" for c in color_bys]
    if len(titles) != len(color_bys):
        raise ValueError(f"ring_views: {len(titles)} titles for {len(color_bys)} colourings")
    views = [ring_view(pts, c, curve, title=t, **kwargs) for c, t in zip(color_bys, titles)]
    layout = hv.Layout(views).cols(1)
    return layout.opts(tabs=True) if tabs else layout


def aggregate(
    df: pd.DataFrame,
    color_by: str = "density",
    *,
    x: str = "x2d",
    y: str = "y2d",
    width: int = 400,
    height: int = 400,
    square: bool = True,
):
    """The raw Datashader aggregate (an xarray) behind the static image; for checks and benchmarks."""
    import datashader as ds

    pts = _points_for(df, color_by, x, y)
    xr, yr = _ranges(pts, x, y, square=square)
    canvas = ds.Canvas(plot_width=width, plot_height=height, x_range=xr, y_range=yr)
    if color_by == "density":
        agg = ds.count()
    elif color_by == "class":
        agg = ds.count_cat("class_name")
    else:
        agg = ds.mean(color_by)
    return canvas.points(pts, x, y, agg=agg), (xr, yr)


def ring_image(
    df: pd.DataFrame,
    color_by: str = "fucci_ratio",
    curve: Any = None,
    *,
    x: str = "x2d",
    y: str = "y2d",
    origin: Sequence[float] | None = None,
    width: int = 400,
    height: int = 400,
    ax=None,
    title: str | None = None,
    xlabel: str = "ring x",
    ylabel: str = "ring y",
    square: bool = True,
):
    """The same Datashader aggregation as :func:`ring_view`, as a static matplotlib figure (PNG).

    The book's HTML shows this next to the Bokeh figure so the page is correct even without
    JavaScript (and in PDF).  Returns the matplotlib Figure.
    """
    import datashader.transfer_functions as tf
    import matplotlib.pyplot as plt
    from matplotlib.colors import LinearSegmentedColormap, Normalize
    from matplotlib.lines import Line2D

    agg, (xr, yr) = aggregate(df, color_by, x=x, y=y, width=width, height=height, square=square)
    if color_by == "class":
        key = {n: CLASS_COLORS.get(n, "#777777") for n in agg.coords["class_name"].values}
        shaded = tf.shade(agg, color_key=key, how="eq_hist")
    elif color_by == "density":
        shaded = tf.shade(agg, cmap=["#1a0b00", "#7a1e00", "#e34a00", "#ffb000", "#ffffe0"], how="eq_hist")
    elif color_by == "fucci_ratio":
        shaded = tf.shade(agg, cmap=FUCCI_CMAP, how="linear", span=(0.0, 1.0))
    else:
        shaded = tf.shade(agg, cmap=plt.get_cmap(_numeric_cmap(color_by)), how="linear")
    shaded = tf.dynspread(shaded, threshold=0.6, max_px=2)
    rgba = shaded.to_numpy().view(np.uint8).reshape(height, width, 4)
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.2, 4.6), dpi=100)
    else:
        fig = ax.figure
    if color_by == "density":
        ax.set_facecolor("black")
    ax.imshow(rgba, origin="lower", extent=(xr[0], xr[1], yr[0], yr[1]), interpolation="nearest",
              aspect="equal" if square else "auto")
    arr = _curve_array(curve)
    if arr is not None:
        ax.plot(arr[:, 0], arr[:, 1], color="white" if color_by == "density" else "black", lw=1.5, label="fitted ring")
    if origin is not None:
        ax.plot([origin[0]], [origin[1]], "x", color="magenta", ms=10, mew=2.5, label="division (origin)")
    ax.set_xlim(*xr)
    ax.set_ylim(*yr)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    n = int(np.isfinite(df[x].to_numpy(dtype=float)).sum())
    ax.set_title(title or f"{n:,} cells, coloured by {color_by}", fontsize=10)
    if color_by == "class":
        handles = [Line2D([], [], marker="s", ls="", color=CLASS_COLORS.get(k, "#777"), label=k)
                   for k in agg.coords["class_name"].values if k != UNLABELLED]
        ax.legend(handles=handles, loc="best", fontsize=8, frameon=False)
    elif color_by == "fucci_ratio":
        sm = plt.cm.ScalarMappable(norm=Normalize(0, 1), cmap=LinearSegmentedColormap.from_list("fucci", FUCCI_CMAP))
        fig.colorbar(sm, ax=ax, label="FUCCI green fraction")
    elif color_by != "density":
        lo, hi = float(np.nanmin(agg.values)), float(np.nanmax(agg.values))
        sm = plt.cm.ScalarMappable(norm=Normalize(lo, hi if hi > lo else lo + 1), cmap=plt.get_cmap(_numeric_cmap(color_by)))
        fig.colorbar(sm, ax=ax, label=f"{color_by} (pixel mean)")
    fig.tight_layout()
    return fig


# -- FUCCI along pseudotime (the paper's Figure 3 view) ------------------------------------------
def fucci_profile(df: pd.DataFrame, by: str = "pseudotime", bins: int = 40, period: float | None = None) -> pd.DataFrame:
    """Median and quartiles of FUCCI red and green in bins of ``by`` (pseudotime or hours).

    Each reporter is scaled by its 99th percentile over all cells so the two share one axis (the
    paper plots them the same way).  Returns one row per bin: ``center, n, red_q25, red_median,
    red_q75, green_q25, green_median, green_q75``.
    """
    if by not in df.columns:
        raise KeyError(f"fucci_profile: the table has no column {by!r}")
    t = df[by].to_numpy(dtype=np.float64)
    lo, hi = (0.0, float(period)) if period else (float(np.nanmin(t)), float(np.nanmax(t)))
    edges = np.linspace(lo, hi, bins + 1)
    which = np.clip(np.digitize(t, edges) - 1, 0, bins - 1)
    out: dict[str, Any] = {"center": 0.5 * (edges[:-1] + edges[1:]), "n": np.bincount(which, minlength=bins)}
    for name, col in (("red", "fucci_red"), ("green", "fucci_green")):
        v = df[col].to_numpy(dtype=np.float64)
        scale = np.nanpercentile(v, 99) or 1.0
        v = v / scale
        q = np.full((bins, 3), np.nan)
        order = np.argsort(which, kind="stable")
        splits = np.split(v[order], np.cumsum(out["n"])[:-1])
        for b, vals in enumerate(splits):
            vals = vals[np.isfinite(vals)]
            if len(vals):
                q[b] = np.percentile(vals, [25, 50, 75])
        out[f"{name}_q25"], out[f"{name}_median"], out[f"{name}_q75"] = q[:, 0], q[:, 1], q[:, 2]
    return pd.DataFrame(out)


def fucci_view(profile: pd.DataFrame, xlabel: str = "pseudotime", width: int = 560, height: int = 300):
    """HoloViews overlay of the binned FUCCI medians with their interquartile bands."""
    import holoviews as hv

    layers = []
    for name, color in (("red", "#d62728"), ("green", "#2ca02c")):
        band = hv.Area(
            (profile["center"], profile[f"{name}_q25"], profile[f"{name}_q75"]),
            xlabel, [f"{name} q25", f"{name} q75"], label=f"FUCCI {name} IQR",
        ).opts(color=color, alpha=0.2, line_alpha=0)
        line = hv.Curve((profile["center"], profile[f"{name}_median"]), xlabel, "FUCCI (scaled)",
                        label=f"FUCCI {name} median").opts(color=color, line_width=2)
        layers += [band, line]
    return hv.Overlay(layers).opts(**fit_column(width, height), legend_position="top_right",
                                   ylabel="FUCCI (scaled to 99th pct.)", xlabel=xlabel)


def fucci_figure(profile: pd.DataFrame, xlabel: str = "pseudotime", ax=None):
    """The same profile as a static matplotlib figure."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(6.4, 3.2), dpi=100)
    else:
        fig = ax.figure
    for name, color in (("red", "#d62728"), ("green", "#2ca02c")):
        ax.fill_between(profile["center"], profile[f"{name}_q25"], profile[f"{name}_q75"], color=color, alpha=0.2, lw=0)
        ax.plot(profile["center"], profile[f"{name}_median"], color=color, lw=2, label=f"FUCCI {name} (median, IQR)")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("FUCCI (scaled to 99th pct.)")
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


# -- crops sampled along the ring -----------------------------------------------------------------
def sample_along(df: pd.DataFrame, n: int = 12, by: str = "pseudotime", seed: int = 0, period: float = 1.0) -> pd.DataFrame:
    """One random cell from each of ``n`` equal bins of ``by`` (rows of ``df``, in bin order).

    Random within a bin (seeded) rather than the cell nearest the bin centre, so the gallery shows
    typical cells, not the ones the ring fit happens to place exactly.
    """
    rng = np.random.default_rng(seed)
    t = df[by].to_numpy(dtype=np.float64)
    edges = np.linspace(0.0, period, n + 1)
    rows = []
    for b in range(n):
        idx = np.nonzero((t >= edges[b]) & (t < edges[b + 1]))[0]
        if len(idx):
            rows.append(int(rng.choice(idx)))
    return df.iloc[rows]


def display_range(img: np.ndarray) -> np.ndarray:
    """``img`` stretched to [0, 1] between its 1st and 99.5th percentiles, for showing one crop.

    Percentiles rather than min/max so a few hot or dead pixels do not flatten the rest of the crop.
    """
    lo, hi = np.percentile(img, [1, 99.5])
    return np.clip((img.astype(np.float32) - lo) / max(hi - lo, 1e-6), 0, 1)


def crop_gallery(store, cells: pd.DataFrame, *, by: str = "pseudotime", label: str | None = None, fmt: str = "{:.2f}"):
    """Crops of ``cells`` (rows with ``cell_id`` and ``by``) from ``store``, one column each, a row per channel.

    Each crop is contrast-stretched on its own (1st-99.5th percentile) so texture is visible;
    brightness is therefore not comparable between crops -- the FUCCI profile is for that.
    """
    import matplotlib.pyplot as plt

    ids = cells["cell_id"].to_numpy()
    crops = store.take(ids)
    names = store.channels
    n, c = len(ids), crops.shape[1]
    fig, axes = plt.subplots(c, n, figsize=(1.05 * n, 1.1 * c + 0.4), dpi=100, squeeze=False)
    for j in range(n):
        for i in range(c):
            ax = axes[i, j]
            ax.imshow(display_range(crops[j, i]), cmap="gray", interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(names[i], fontsize=8)
        axes[0, j].set_title(fmt.format(float(cells[by].iloc[j])), fontsize=8)
    fig.suptitle(label or f"cells sampled along the ring ({by} above each column)", fontsize=9)
    fig.tight_layout()
    return fig
