"""Drawing the ring from Parquet on a Dask cluster: the workers read, only the image comes back.

At paper scale the trajectory table (``trajectory/trajectory.parquet``: x2d, y2d, pseudotime, hours
for every cell) is tens of MB, which one process aggregates in well under a second
(:func:`deepcycle_core.plots.views.aggregate`). Past that -- many movies, tens of millions of cells, a
table on a cluster's shared file system -- this is the same Datashader aggregation over a Dask
DataFrame: each worker reads its own Parquet row groups and aggregates them, and the scheduler sums
the per-partition rasters, so no process ever holds the table. The result is the same xarray image
as the in-memory path (the unit test checks they agree), ready for ``datashader.transfer_functions``
or a HoloViews ``Image``.
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Sequence

__all__ = ["ring_aggregate_on_cluster"]


def _ranges(ddf: Any, x: str, y: str, pad: float, square: bool, scheduler: Any) -> tuple[tuple[float, float], tuple[float, float]]:
    """Padded data ranges from one pass over the table (the in-memory path's rule)."""
    import dask

    from .views import padded_ranges

    x0, x1, y0, y1 = (float(v) for v in dask.compute(ddf[x].min(), ddf[x].max(), ddf[y].min(), ddf[y].max(),
                                                      scheduler=scheduler))
    return padded_ranges(x0, x1, y0, y1, pad=pad, square=square)


def ring_aggregate_on_cluster(
    parquet: str | os.PathLike | Sequence[str | os.PathLike],
    color_by: str = "density",
    *,
    x: str = "x2d",
    y: str = "y2d",
    width: int = 400,
    height: int = 400,
    square: bool = True,
    ranges: tuple[tuple[float, float], tuple[float, float]] | None = None,
    client: Any = None,
    pad: float = 0.03,
):
    """Datashader aggregate of Parquet table(s) computed on Dask; returns ``(image, (x_range, y_range))``.

    ``color_by``: ``'density'`` (cells per pixel) or a numeric column (its mean per pixel, e.g.
    ``pseudotime``). ``client``: a ``distributed.Client`` (its scheduler address may be anywhere;
    the workers must see ``parquet`` at the same path), or None for the current Dask scheduler.
    ``ranges`` skips the pass that finds the data's extent (give them to draw several tables on one
    canvas).
    """
    import dask
    import dask.dataframe as dd
    import datashader as ds

    paths = [str(p) for p in parquet] if isinstance(parquet, (list, tuple)) else str(parquet)
    for p in [paths] if isinstance(paths, str) else paths:
        if not Path(p).exists():
            raise FileNotFoundError(f"{p}: no such Parquet table or folder to draw")
    columns = [x, y] + ([] if color_by == "density" else [color_by])
    try:
        ddf = dd.read_parquet(paths, columns=columns, split_row_groups=True)  # a partition per row group
    except (KeyError, ValueError) as exc:
        raise KeyError(f"{paths}: cannot read columns {columns} ({exc})") from exc
    scheduler = client.get if client is not None else None
    if ranges is None:
        ranges = _ranges(ddf, x, y, pad, square, scheduler)
    canvas = ds.Canvas(plot_width=width, plot_height=height, x_range=ranges[0], y_range=ranges[1])
    agg = ds.count() if color_by == "density" else ds.mean(color_by)
    with dask.config.set(scheduler=scheduler) if scheduler is not None else nullcontext():
        image = canvas.points(ddf, x, y, agg=agg)
    return image, ranges

