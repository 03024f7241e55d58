"""The ring drawn from Parquet on Dask is the same image as the in-memory one, partition by partition."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from deepcycle_core.plots import views as plots
from deepcycle_core.plots.cluster_draw import ring_aggregate_on_cluster


@pytest.fixture(scope="module")
def ring_table(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    rng = np.random.default_rng(0)
    n = 60_000
    theta = rng.uniform(0, 2 * np.pi, n)
    r = 1 + rng.normal(0, 0.1, n)
    df = pd.DataFrame({"x2d": (r * np.cos(theta)).astype("float32"), "y2d": (r * np.sin(theta)).astype("float32"),
                       "pseudotime": (theta / (2 * np.pi)).astype("float32")})
    path = tmp_path_factory.mktemp("draw") / "trajectory.parquet"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, row_group_size=10_000)
    return path, df


@pytest.mark.parametrize("color_by", ["density", "pseudotime"])
def test_cluster_image_equals_the_in_memory_image(ring_table, color_by: str) -> None:
    path, df = ring_table
    image, ranges = ring_aggregate_on_cluster(path, color_by)
    expected, expected_ranges = plots.aggregate(df, color_by)
    np.testing.assert_allclose(np.asarray(ranges), np.asarray(expected_ranges), rtol=1e-6)
    np.testing.assert_allclose(np.nan_to_num(image.values), np.nan_to_num(expected.values), atol=1e-5)
    if color_by == "density":
        assert image.values.sum() == len(df)  # every cell lands on the canvas once


def test_a_distributed_client_reads_the_row_groups_as_partitions(ring_table) -> None:
    from dask.distributed import Client, get_task_stream

    path, df = ring_table
    with Client(processes=False, n_workers=2, threads_per_worker=1, dashboard_address=None) as client:
        with get_task_stream(client) as stream:
            image, _ = ring_aggregate_on_cluster(path, client=client)
    assert image.values.sum() == len(df)
    reads = {t["key"] for t in stream.data if "read" in str(t["key"]).lower()}
    assert len(reads) >= 6, f"the six row groups were not read as separate tasks on the workers: {reads}"


def test_bad_input_names_the_file(tmp_path: Path, ring_table) -> None:
    with pytest.raises(FileNotFoundError, match="missing.parquet"):
        ring_aggregate_on_cluster(tmp_path / "missing.parquet")
    path, _ = ring_table
    with pytest.raises(KeyError, match="no_such_column"):
        ring_aggregate_on_cluster(path, "no_such_column")
