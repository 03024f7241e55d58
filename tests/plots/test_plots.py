"""The shared views: right element types, and Datashader counts every cell exactly once."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import holoviews as hv
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from deepcycle_core.plots import views as plots

hv.extension("bokeh")


@pytest.fixture(scope="module")
def ring_df() -> pd.DataFrame:
    """A noisy ring whose FUCCI colours turn once around it, with 4 classes and one unlabelled group."""
    rng = np.random.default_rng(0)
    n = 20_000
    p = rng.random(n)
    a = 2 * np.pi * p
    r = 1 + 0.08 * rng.normal(size=n)
    red = np.clip(np.sin(np.pi * p / 0.45), 0, None) * (p < 0.45)
    green = np.clip(np.sin(np.pi * (p - 0.35) / 0.65), 0, None) * (p > 0.35)
    cls = np.where(p < 0.1, 0, np.where(p < 0.35, 1, np.where(p < 0.45, 3, 2)))
    cls[:50] = -1
    return pd.DataFrame(
        {
            "cell_id": np.arange(n),
            "x2d": r * np.cos(a),
            "y2d": r * np.sin(a),
            "fucci_red": red + 0.02 * rng.random(n),
            "fucci_green": green + 0.02 * rng.random(n),
            "class": cls,
            "pseudotime": p,
            "hours": 27 * p,
        }
    )


@pytest.fixture(scope="module")
def curve() -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    return np.c_[np.cos(t), np.sin(t)]


def _image_of(view) -> hv.Element:
    """The raster element inside a (static) ring overlay."""
    imgs = [el for el in view.traverse(lambda e: e, [hv.Image, hv.RGB])]
    assert imgs, f"no raster in {view}"
    return imgs[0]


@pytest.mark.parametrize("color_by", ["fucci_ratio", "class", "density", "pseudotime"])
def test_ring_view_types(ring_df, curve, color_by):
    view = plots.ring_view(ring_df, color_by, curve, dynamic=False, origin=(1.0, 0.0))
    assert isinstance(view, hv.Overlay)
    img = _image_of(view)
    assert isinstance(img, hv.RGB if color_by == "class" else hv.Image)
    curves = [el for el in view.traverse(lambda e: e, [hv.Curve])]
    assert len(curves) == 1 and len(curves[0]) == len(curve) + 1  # closed: first point repeated
    fig = hv.render(view)
    assert type(fig).__name__ == "figure"


def test_ring_view_is_dynamic_by_default(ring_df, curve):
    view = plots.ring_view(ring_df, "density", curve)
    assert isinstance(view, hv.DynamicMap), "live kernels need a DynamicMap to re-rasterise on zoom"


def test_rasterised_count_equals_points(ring_df):
    view = plots.ring_view(ring_df, "density", None, dynamic=False, spread_px=0)
    img = _image_of(view)
    counts = img.dimension_values(2)
    assert int(np.nansum(counts)) == len(ring_df)
    agg, _ = plots.aggregate(ring_df, "density", width=123, height=77)
    assert agg.shape == (77, 123)
    assert int(agg.sum()) == len(ring_df)
    cat, _ = plots.aggregate(ring_df, "class")
    per_class = cat.sum(dim=("y2d", "x2d")).to_series()
    assert int(per_class.sum()) == len(ring_df)
    assert int(per_class["unlabelled"]) == 50


def test_fucci_ratio_range(ring_df):
    r = plots.fucci_ratio(ring_df)
    assert r.dtype == np.float32 and len(r) == len(ring_df)
    assert np.nanmin(r) >= 0 and np.nanmax(r) <= 1
    df = pd.DataFrame({"fucci_red": [0.0, 1.0, -1.0], "fucci_green": [0.0, 3.0, 1.0]})
    out = plots.fucci_ratio(df)
    assert np.isnan(out[0]) and out[1] == pytest.approx(0.75) and out[2] == pytest.approx(1.0)


def test_ring_image_static(ring_df, curve, tmp_path):
    for color_by in ("fucci_ratio", "class", "density"):
        fig = plots.ring_image(ring_df, color_by, {"curve": curve.tolist()}, origin=(1.0, 0.0))
        assert isinstance(fig, matplotlib.figure.Figure)
        out = tmp_path / f"{color_by}.png"
        fig.savefig(out)
        assert out.stat().st_size > 5_000
        plt.close(fig)


def test_unknown_colour_names_the_column(ring_df):
    with pytest.raises(KeyError, match="no_such"):
        plots.ring_view(ring_df, "no_such", None, dynamic=False)
    with pytest.raises(KeyError, match="x2d"):
        plots.ring_view(ring_df.drop(columns="x2d"), "density", None)
    with pytest.raises(ValueError, match="curve"):
        plots.ring_view(ring_df, "density", np.zeros((5, 3)), dynamic=False)


def test_fucci_profile_follows_the_cycle(ring_df):
    prof = plots.fucci_profile(ring_df, "pseudotime", bins=20, period=1.0)
    assert len(prof) == 20 and prof["n"].sum() == len(ring_df)
    # red peaks before green, as FUCCI does (Cdt1 in G1, Geminin in S/G2/M)
    assert prof["center"][prof["red_median"].idxmax()] < prof["center"][prof["green_median"].idxmax()]
    assert (prof["red_q25"] <= prof["red_median"] + 1e-12).all()
    view = plots.fucci_view(prof)
    assert isinstance(view, hv.Overlay) and len(view) == 4
    fig = plots.fucci_figure(prof, "pseudotime")
    assert isinstance(fig, matplotlib.figure.Figure)
    plt.close(fig)


def test_sample_along_covers_bins(ring_df):
    sample = plots.sample_along(ring_df, n=10, by="pseudotime", seed=1)
    assert len(sample) == 10
    bins = np.floor(sample["pseudotime"].to_numpy() * 10).astype(int)
    assert list(bins) == list(range(10))
    again = plots.sample_along(ring_df, n=10, by="pseudotime", seed=1)
    assert list(again.index) == list(sample.index)


def test_crop_gallery(tmp_path, ring_df):
    from deepcycle_core.data.store import StoreWriter, open_store

    n = 12
    rng = np.random.default_rng(0)
    rows = pd.DataFrame({
        "track_id": np.arange(n), "parent_track_id": -1, "frame": 0, "time_h": 0.0, "x": 10.0, "y": 10.0,
        "field": 0, "birth_frame": -1, "division_frame": -1, "full_cycle": False,
        "fucci_red": 1.0, "fucci_green": 1.0, "class": 0,
    })
    frames = pd.DataFrame({"field": [0], "frame": [0], "hoechst_median": [100.0], "hoechst_std": [10.0],
                           "brightfield_median": [100.0], "brightfield_std": [10.0]})
    with StoreWriter(tmp_path / "s", channels=[("hoechst", "nuclear"), ("brightfield", "brightfield")],
                     meta={"frame_interval_min": 10, "pixel_size_um": 0.5}, chunk_cells=8) as w:
        w.append(rng.integers(0, 1000, (n, 2, 48, 48), dtype=np.uint16), rows)
        w.set_frames(frames)
    store = open_store(tmp_path / "s")
    cells = pd.DataFrame({"cell_id": [3, 11, 0], "pseudotime": [0.1, 0.5, 0.9]})
    fig = plots.crop_gallery(store, cells)
    assert len(fig.axes) == 2 * 3
    plt.close(fig)


def test_class_names_come_from_fucci_and_colour_every_class():
    from deepcycle_core.data import fucci

    names = plots.class_names()
    assert names == {-1: plots.UNLABELLED, **dict(enumerate(fucci.CLASS_NAMES))}
    assert list(plots.CLASS_COLORS) == list(names.values())  # one colour per class, unlabelled included
    assert not hasattr(plots, "CLASS_NAMES")  # fucci.CLASS_NAMES is the one home of the names


def test_display_range_stretches_between_percentiles():
    img = np.arange(1000, dtype=np.uint16).reshape(25, 40)
    img[0, 0] = 60000  # one hot pixel must not flatten the rest
    out = plots.display_range(img)
    assert out.shape == img.shape
    assert out.min() == 0.0 and out.max() == 1.0
    lo, hi = np.percentile(img, [1, 99.5])
    mid = img[12, 20]
    assert out[12, 20] == pytest.approx((mid - lo) / (hi - lo), rel=1e-6)
    assert np.all(plots.display_range(np.full((4, 4), 7.0)) == 0.0)  # a flat crop: no division by zero


def _legend_entries(fig) -> list[str]:
    """Every entry a Bokeh figure's legends show, a field-driven item expanded into its factors."""
    from bokeh.models import Legend

    entries = []
    for legend in fig.select(type=Legend):
        for item in legend.items:
            label = item.label
            if getattr(label, "value", None) is not None:
                entries.append(label.value)
                continue
            # a field label (HoloViews' categorical legend): one entry per factor of the colour mapper
            glyph = item.renderers[0].glyph
            mapper = getattr(getattr(glyph, "fill_color", None), "transform", None)
            assert mapper is not None, f"legend item {label} has neither a value nor a colour mapper"
            entries.extend(mapper.factors)
    return entries


@pytest.mark.parametrize("dynamic", [False, True])
def test_class_legend_lists_each_class_once(ring_df, curve, dynamic):
    view = plots.ring_view(ring_df, "class", curve, dynamic=dynamic, origin=(1.0, 0.0))
    entries = _legend_entries(hv.render(view))
    assert len(entries) == len(set(entries)), f"legend entries repeat: {entries}"
    for name in plots.class_names().values():
        assert entries.count(name) == 1, f"class {name!r} appears {entries.count(name)} times in {entries}"
    assert {"fitted ring", "division (origin)"} <= set(entries)


def test_ring_views_fit_a_column(ring_df, curve):
    """Several colourings come as tabs or one column, each figure scaling to its container's width."""
    from bokeh.models import Tabs

    tabs = hv.render(plots.ring_views(ring_df, curve=curve, dynamic=False, origin=(1.0, 0.0)))
    assert isinstance(tabs, Tabs) and len(tabs.tabs) == 3
    assert [t.title for t in tabs.tabs] == ["coloured by fucci ratio", "coloured by class", "coloured by density"]
    figures = [t.child for t in tabs.tabs]
    column = hv.render(plots.ring_views(ring_df, ["fucci_ratio", "pseudotime"], curve, tabs=False, dynamic=False))
    figures += [child[0] for child in column.children]
    assert len(figures) == 5
    for fig in figures:
        assert fig.sizing_mode == "scale_width", fig.sizing_mode
        assert fig.max_width is not None and fig.max_width <= plots.MAX_FIGURE_WIDTH
    # one shape for every figure of a layout: mixed aspects make Bokeh lay a tab out wider than its box
    assert len({round(f.aspect_ratio, 6) for f in figures}) == 1
    with pytest.raises(ValueError, match="titles"):
        plots.ring_views(ring_df, ["density"], titles=["a", "b"])


def test_fucci_view_scales_to_its_container(ring_df):
    fig = hv.render(plots.fucci_view(plots.fucci_profile(ring_df, "pseudotime", bins=10, period=1.0)))
    assert fig.sizing_mode == "scale_width" and fig.max_width <= plots.MAX_FIGURE_WIDTH


def test_fit_column_keeps_the_aspect_and_caps_the_width():
    """The options scale a figure with its container: aspect of the frame plus room for the axes, never
    wider than the book's column."""
    opts = plots.fit_column(400, 400)
    assert opts["responsive"] == "width" and opts["aspect"] == pytest.approx(1.0)
    assert opts["backend_opts"]["plot.max_width"] == 460
    wide = plots.fit_column(1200, 300, colorbar=True)
    assert wide["backend_opts"]["plot.max_width"] == plots.MAX_FIGURE_WIDTH
    assert wide["aspect"] == pytest.approx(1260 / 430)


def test_prepare_points_keeps_only_what_the_colour_needs(ring_df):
    pts = plots.prepare_points(ring_df, color_by="fucci_ratio")
    assert list(pts.columns) == ["x2d", "y2d", "fucci_ratio"] and pts["x2d"].dtype == np.float32
    assert np.allclose(pts["fucci_ratio"], plots.fucci_ratio(ring_df), equal_nan=True)
    both = plots.prepare_points(ring_df)
    assert set(both.columns) == {"x2d", "y2d", "fucci_ratio", "class_name"}
    assert isinstance(both["class_name"].dtype, pd.CategoricalDtype)
    assert set(both["class_name"].cat.categories) == set(plots.class_names().values())
    with pytest.raises(KeyError, match="no column 'nope'"):
        plots.prepare_points(ring_df, x="nope")


def test_padded_ranges_square_and_free():
    (x0, x1), (y0, y1) = plots.padded_ranges(0.0, 2.0, 0.0, 1.0, pad=0.05)
    assert x1 - x0 == pytest.approx(y1 - y0) == pytest.approx(2.0 * 1.1)  # one span: the ring stays round
    assert (x0 + x1) / 2 == pytest.approx(1.0) and (y0 + y1) / 2 == pytest.approx(0.5)
    (x0, x1), (y0, y1) = plots.padded_ranges(0.0, 2.0, 0.0, 1.0, pad=0.05, square=False)
    assert (x0, x1) == pytest.approx((-0.1, 2.1)) and (y0, y1) == pytest.approx((-0.05, 1.05))
