"""Drawing millions of cells: the chapter's HoloViews/Datashader ring vs matplotlib, same points, same run.

What is timed (best of ``--repeat`` after one warm-up call that compiles Datashader's numba kernels):

* ``prepare points`` -- ``plots.prepare_points(df)``: the narrow float32 table (x, y, FUCCI ratio,
  class as a Categorical) the chapter makes once and reuses for every colouring;
* ``hv ring (aggregate)`` -- ``plots.ring_view(pts, color_by, curve, dynamic=False)``: exactly what the
  chapter calls per view (HoloViews ``rasterize`` + ``dynspread``, the curve overlay), ending in the
  aggregated per-pixel image; ``hv ring from raw table`` is the same without preparing first;
* ``hv ring (+ bokeh figure)`` -- the same plus ``hv.render`` to a Bokeh figure (what the page embeds);
  (a zoom on a live kernel re-runs this same aggregation over the new ranges, so it costs the same);
* ``datashader alone`` -- ``Canvas.points`` on the same frame, the floor;
* ``matplotlib scatter`` -- ``ax.scatter(x, y, s=1)`` + ``canvas.draw()`` (what the original notebooks did);
* ``matplotlib plot ','`` -- pixel markers, matplotlib's fastest way; overplotted, so it shows no density.

Run:  .venv/bin/python benchmarks/draw.py [--sizes 2.6e6 1e7] [--skip-scatter-above 3e6]
"""

from __future__ import annotations

import argparse
import os
import time

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd


def ring_points(n: int, seed: int = 0) -> pd.DataFrame:
    """n cells on a noisy ring with FUCCI columns and classes, like a trajectory table."""
    rng = np.random.default_rng(seed)
    p = rng.random(n, dtype=np.float32)
    a = np.float32(2 * np.pi) * p
    r = 1 + np.float32(0.08) * rng.standard_normal(n, dtype=np.float32)
    return pd.DataFrame({
        "x2d": r * np.cos(a), "y2d": r * np.sin(a),
        "fucci_red": np.clip(np.sin(np.pi * p / 0.45), 0, None) * (p < 0.45),
        "fucci_green": np.clip(np.sin(np.pi * (p - 0.35) / 0.65), 0, None) * (p > 0.35),
        "class": rng.integers(0, 4, n).astype(np.int8),
    })


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=float, nargs="+", default=[2.6e6, 1e7])
    ap.add_argument("--color-by", default="density", help="density | fucci_ratio | class")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-scatter-above", type=float, default=float("inf"),
                    help="skip matplotlib scatter above this many points (it takes ~1 min at 10 M)")
    args = ap.parse_args(argv)

    import datashader as ds
    import holoviews as hv
    import matplotlib.pyplot as plt

    from deepcycle_core.plots import views as plots

    hv.extension("bokeh")
    t = np.linspace(0, 2 * np.pi, 512, endpoint=False)
    curve = np.c_[np.cos(t), np.sin(t)]
    print(f"cores: {os.cpu_count()}, load average at start: {os.getloadavg()[0]:.2f} "
          "(other processes share these cores; figures are wall-clock)")
    print(f"colour by: {args.color_by}; raster 400x400 px; matplotlib figure 400x400 px at 100 dpi")
    warm = ring_points(10_000)
    plots.ring_view(warm, args.color_by, curve, dynamic=False)  # numba compile, once per process
    hv.render(plots.ring_view(warm, args.color_by, curve, dynamic=False))

    for size in args.sizes:
        n = int(size)
        df = ring_points(n)
        res: dict[str, float] = {}
        res["prepare points (once a table)"] = best_of(lambda: plots.prepare_points(df), args.repeat)
        pts = plots.prepare_points(df)
        res["hv ring (aggregate)"] = best_of(lambda: plots.ring_view(pts, args.color_by, curve, dynamic=False), args.repeat)
        res["hv ring (+ bokeh figure)"] = best_of(
            lambda: hv.render(plots.ring_view(pts, args.color_by, curve, dynamic=False)), args.repeat)
        res["hv ring from raw table"] = best_of(lambda: plots.ring_view(df, args.color_by, curve, dynamic=False), args.repeat)
        canvas = ds.Canvas(plot_width=400, plot_height=400)
        res["datashader alone"] = best_of(lambda: canvas.points(df, "x2d", "y2d", agg=ds.count()), args.repeat)
        def mpl(kind: str) -> None:
            fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
            if kind == "scatter":
                ax.scatter(df["x2d"].to_numpy(), df["y2d"].to_numpy(), s=1, linewidths=0)
            else:
                ax.plot(df["x2d"].to_numpy(), df["y2d"].to_numpy(), ",")
            fig.canvas.draw()
            plt.close(fig)

        res["matplotlib plot ','"] = best_of(lambda: mpl("pixel"), 1)
        if n <= args.skip_scatter_above:
            res["matplotlib scatter"] = best_of(lambda: mpl("scatter"), 1)

        print(f"\n== {n:,} points ==")
        for k, v in res.items():
            print(f"  {k:28s} {v:8.3f} s")
        hvt = res["hv ring (aggregate)"]
        for k in ("matplotlib plot ','", "matplotlib scatter", "hv ring (+ bokeh figure)", "hv ring from raw table",
                  "datashader alone"):
            if k in res:
                print(f"  ratio {k} / hv ring (aggregate): {res[k] / hvt:6.2f}x")
        if "matplotlib scatter" in res:
            print(f"  ratio matplotlib scatter / hv ring (+ bokeh figure): {res['matplotlib scatter'] / res['hv ring (+ bokeh figure)']:6.2f}x")
        pixel = res["matplotlib plot ','"]
        print(f"  ratio matplotlib plot ',' / hv ring (+ bokeh figure): {pixel / res['hv ring (+ bokeh figure)']:6.2f}x")
        if n <= 3_000_000:
            print(f"  target < 0.3 s for the aggregate: {'met' if hvt < 0.3 else 'NOT met'} ({hvt:.3f} s)")
        print(f"  load average now: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
