"""describe.embed_cells: the validation's sampled cells get exactly the embed stage's numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
from builders import write_embed_checkpoint, write_embed_store

from deepcycle_core.data import fingerprint
from deepcycle_core.data.runs import RunDir
from deepcycle_core.data.store import open_store
from deepcycle_core.net import embed as E
from deepcycle_core.validation.describe import embed_cells


def test_embed_cells_equals_the_embed_stage_on_the_same_cells(tmp_path):
    store = write_embed_store(tmp_path / "run" / "store", [("hoechst", "nuclear"), ("brightfield", "brightfield")])
    (tmp_path / "run" / "train").mkdir()
    ckpt = write_embed_checkpoint(tmp_path / "run" / "train" / "best.pt")
    fingerprint.adopt(RunDir(tmp_path / "run"), "train")
    full = pd.read_parquet(E.embed(tmp_path / "run", batch_size=50, precision="fp32", progress=False, h5ad=False)
                           / E.DESCRIPTORS_NAME)
    s = open_store(store)
    ids = np.random.default_rng(1).choice(s.n_cells, 60, replace=False)
    part = embed_cells(s, ckpt, ids, batch_size=16, precision="fp32")
    assert part["cell_id"].tolist() == sorted(ids.tolist())
    want = full.set_index("cell_id").loc[part["cell_id"], ["d0", "d1", "d2", "d3"]].to_numpy()
    np.testing.assert_allclose(part[["d0", "d1", "d2", "d3"]].to_numpy(), want, rtol=1e-5, atol=1e-6)
    assert list(embed_cells(s, ckpt, np.zeros(0, np.int64), precision="fp32").columns) == ["cell_id", "d0", "d1", "d2", "d3"]
