"""Atomic file writes: a reader sees the old file or the whole new one, never half of one.

Every stage writes its outputs the same way: to a hidden temporary name in the target's folder
(``.<name>.tmp-<8 hex>``, the same file system, so the rename is atomic), then ``os.replace`` onto the
target; on any failure the temporary is removed and the target is left as it was. This module is
the one home of that rule; it imports nothing beyond the standard library (no torch, no pandas), so
every stage, light or heavy, can use it.

* :func:`atomic_path` -- a context manager yielding the temporary path, for writers that need one;
* :func:`atomic_write` -- the same for a function ``write(tmp)``;
* :func:`write_text_atomic`, :func:`write_json_atomic` -- text and JSON;
* :func:`write_parquet_atomic`, :func:`write_csv_atomic` -- a data frame (anything with ``to_parquet`` /
  ``to_csv``; pandas is not imported here);
* :func:`temporary_name` -- the hidden name itself (the store's folder finalisation uses it too).
"""

from __future__ import annotations

import json
import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

__all__ = [
    "atomic_path", "atomic_write", "temporary_name",
    "write_csv_atomic", "write_json_atomic", "write_parquet_atomic", "write_text_atomic",
]


def temporary_name(path: str | os.PathLike, kind: str = "tmp") -> Path:
    """A fresh hidden name next to ``path``: ``.<name>.<kind>-<8 hex>`` (unique per call)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{kind}-{uuid.uuid4().hex[:8]}")


@contextmanager
def atomic_path(path: str | os.PathLike, *, parents: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write; on a clean exit it replaces ``path``, on an error it is removed.

    ``parents=True`` creates the target's folder first.
    """
    path = Path(path)
    if parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write(path: str | os.PathLike, write: Callable[[Path], Any], *, parents: bool = False) -> Path:
    """Call ``write(tmp)`` on a temporary path, then rename it onto ``path``; return ``path``."""
    path = Path(path)
    with atomic_path(path, parents=parents) as tmp:
        write(tmp)
    return path


def write_text_atomic(path: str | os.PathLike, text: str, *, parents: bool = False) -> Path:
    """Write ``text`` to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text), parents=parents)


def write_json_atomic(path: str | os.PathLike, obj: Any, *, parents: bool = False, **dumps: Any) -> Path:
    """Write ``json.dumps(obj, **dumps)`` to ``path`` atomically (serialised before any file is made)."""
    return write_text_atomic(path, json.dumps(obj, **dumps), parents=parents)


def write_parquet_atomic(path: str | os.PathLike, df: Any, *, parents: bool = False) -> Path:
    """Write the data frame ``df`` to ``path`` as Parquet (without its index) atomically."""
    return atomic_write(path, lambda tmp: df.to_parquet(tmp, index=False), parents=parents)


def write_csv_atomic(path: str | os.PathLike, df: Any, *, parents: bool = False, **to_csv: Any) -> Path:
    """Write the data frame ``df`` to ``path`` as CSV (``df.to_csv(tmp, **to_csv)``) atomically."""
    return atomic_write(path, lambda tmp: df.to_csv(tmp, **to_csv), parents=parents)
