"""The one atomic-write helper: the target is the old file or the whole new one, and no temporary is left."""

from __future__ import annotations

import json
import os
import re

import pandas as pd
import pytest

from deepcycle_core.data.atomic import (
    atomic_path,
    atomic_write,
    temporary_name,
    write_csv_atomic,
    write_json_atomic,
    write_parquet_atomic,
    write_text_atomic,
)


def test_temporary_name_is_hidden_unique_and_beside_the_target(tmp_path):
    a, b = temporary_name(tmp_path / "x.json"), temporary_name(tmp_path / "x.json")
    assert a != b
    assert a.parent == tmp_path and a.name.startswith(".x.json.tmp-")
    assert re.fullmatch(rf"\.x\.json\.tmp-[0-9a-f]{{6}}-{os.getpid()}-[0-9a-f]{{8}}", a.name)  # host, writer, random
    assert temporary_name(tmp_path / "store", "old").name.startswith(".store.old-")


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "t.txt"
    target.write_text("old")

    def half(tmp):
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")

    with pytest.raises(RuntimeError):
        atomic_write(target, half)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.txt"]


def test_writes_replace_the_target(tmp_path):
    assert write_text_atomic(tmp_path / "a.txt", "hi") == tmp_path / "a.txt"
    assert (tmp_path / "a.txt").read_text() == "hi"
    write_json_atomic(tmp_path / "sub" / "b.json", {"k": 1}, parents=True, indent=1)
    assert (tmp_path / "sub" / "b.json").read_text() == json.dumps({"k": 1}, indent=1)
    df = pd.DataFrame({"a": [1, 2], "b": [0.5, 1.5]})
    write_parquet_atomic(tmp_path / "c.parquet", df)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "c.parquet"), df)
    write_csv_atomic(tmp_path / "d.csv", df, index=False)
    assert (tmp_path / "d.csv").read_text() == df.to_csv(index=False)
    with atomic_path(tmp_path / "e.bin") as tmp:
        tmp.write_bytes(b"\x00\x01")
    assert (tmp_path / "e.bin").read_bytes() == b"\x00\x01"
    assert not [p for p in tmp_path.rglob(".*")]  # no temporary left anywhere


def test_without_parents_a_missing_folder_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        write_text_atomic(tmp_path / "missing" / "a.txt", "hi")
    assert not (tmp_path / "missing").exists()
