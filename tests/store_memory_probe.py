"""Child process for test_store's memory test: write ``n`` rows in batches and print the peak RSS.

Run as ``python tests/store_memory_probe.py narrow|wide N GROUP``. A separate process because
tracemalloc, started and stopped inside pytest, races with the native threads of zarr/pyarrow on
Python 3.11 (it crashed CI with a segfault); peak RSS of a fresh process needs no hooks at all.
"""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent / "data"))
from test_store import META, _label_like_simulate, make_frames, make_rows  # noqa: E402

from deepcycle_core.data import store as st  # noqa: E402

BATCH, EXTRA_COLUMNS = 200, 120


def protos(rng: np.random.Generator) -> dict[str, pd.DataFrame]:
    """A narrow batch and the same batch with 120 float columns more, like the simulator's truth."""
    narrow = make_rows(BATCH, rng=rng)
    extra = pd.DataFrame({f"extra_{k}": rng.normal(size=BATCH) for k in range(EXTRA_COLUMNS)})
    return {"narrow": narrow, "wide": pd.concat([narrow, extra], axis=1)}


def main(kind: str, n: int, group: int, out: Path) -> dict:
    proto = protos(np.random.default_rng(0))[kind]
    crops = np.zeros((BATCH, 1, 48, 48), np.uint16)
    frames = make_frames().drop(columns=["brightfield_median", "brightfield_std"])
    most = 0
    with st.StoreWriter(out, channels=[("hoechst", "nuclear")], meta=META, chunk_cells=128,
                        row_group_cells=group, finalise_cells=_label_like_simulate,
                        finalise_columns=("fucci_red",)) as w:
        for _ in range(n // BATCH):
            w.append(crops, proto.copy())  # fresh buffers, as a real batch has
            most = max(most, w._rows_buffered)
        w.set_frames(frames)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # before reading anything back
    cells = st.open_store(out).cells
    return {"peak_rss_bytes": peak, "most_rows_buffered": most, "rows": len(cells),
            "check": float(cells["extra_3"].iloc[BATCH + 5]) if "extra_3" in cells else None}


if __name__ == "__main__":
    kind, n, group = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    with TemporaryDirectory() as tmp:
        print(json.dumps(main(kind, n, group, Path(tmp) / "store")))
