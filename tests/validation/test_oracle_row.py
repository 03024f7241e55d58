"""The oracle-label row: the kept held-out outputs of the network trained on true ages, read only for the
store the reference card names, only from the file the card records."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from deepcycle_core.data import fingerprint as fp
from deepcycle_core.net.reference_card import ORACLE_NAME, ReferenceError, store_identity
from deepcycle_core.validation.ceiling import oracle_label_predictions


def _store(seed: int = 0) -> SimpleNamespace:
    cells = pd.DataFrame({"cell_id": np.arange(6), "track_id": [1, 1, 2, 2, 3, 3]})
    meta = {"provenance": {"parameters": {"sim_version": 4, "seed": seed, "cells": 3, "fields": 1, "hours": 2.0,
                                          "difficulty": "default", "overrides": {}}}}
    return SimpleNamespace(cells=cells, meta=meta, n_cells=6, path="store")


def _reference(tmp_path, store) -> None:
    pos = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    table = pd.DataFrame({"cell_id": np.arange(6), "cycle_cos": 0.9 * np.cos(2 * np.pi * pos),
                          "cycle_sin": 0.9 * np.sin(2 * np.pi * pos)})
    table.to_parquet(tmp_path / ORACLE_NAME)
    card = {"data": {"store": store_identity(store)},
            "oracle": {"file": ORACLE_NAME, "sha256": fp.file_digest(tmp_path / ORACLE_NAME)}}
    (tmp_path / "card.json").write_text(json.dumps(card))


def test_the_oracle_row_reads_the_kept_outputs_of_its_own_store(tmp_path):
    store = _store()
    _reference(tmp_path, store)
    pred = oracle_label_predictions(store, [1, 4], 20.0, folder=tmp_path)
    assert pred["cell_id"].tolist() == [1, 4]
    np.testing.assert_allclose(pred["pseudotime"], [0.2, 0.5], atol=1e-9)
    np.testing.assert_allclose(pred["hours"], [4.0, 10.0], atol=1e-7)
    with pytest.raises(ValueError, match="lack 1 held-out"):
        oracle_label_predictions(store, [1, 99], 20.0, folder=tmp_path)


def test_the_oracle_row_refuses_another_store_or_an_edited_file(tmp_path):
    _reference(tmp_path, _store())
    with pytest.raises(ReferenceError, match="another movie"):
        oracle_label_predictions(_store(seed=1), [1], 20.0, folder=tmp_path)
    pd.DataFrame({"cell_id": [1], "cycle_cos": [1.0], "cycle_sin": [0.0]}).to_parquet(tmp_path / ORACLE_NAME)
    with pytest.raises(ReferenceError, match="not the file the card records"):
        oracle_label_predictions(_store(), [1], 20.0, folder=tmp_path)
    (tmp_path / "card.json").write_text(json.dumps({"data": {"store": store_identity(_store())}}))
    with pytest.raises(ReferenceError, match="no oracle-label run"):
        oracle_label_predictions(_store(), [1], 20.0, folder=tmp_path)
