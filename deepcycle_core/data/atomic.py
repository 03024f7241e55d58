"""Atomic file writes: a reader sees the old file or the whole new one, never half of one.

Every stage writes its outputs the same way: to a hidden temporary name in the target's folder
(``.<name>.tmp-<host>-<pid>-<8 hex>``, the same file system, so the rename is atomic), then
``os.replace`` onto the target; on any failure the temporary is removed and the target is left as it
was. A writer killed outright (SIGKILL, SIGTERM, a power cut) cannot remove its temporary, so the
name records the machine and the process that wrote it: the next write to the same target removes
the temporaries of writers no longer running (:func:`remove_stale_temporaries`), and never one of a
writer still at work. This module is the one home of that rule; it imports nothing beyond the
standard library (no torch, no pandas), so every stage, light or heavy, can use it.

* :func:`atomic_path` -- a context manager yielding the temporary path, for writers that need one;
* :func:`atomic_write` -- the same for a function ``write(tmp)``;
* :func:`write_text_atomic`, :func:`write_json_atomic` -- text and JSON;
* :func:`write_parquet_atomic`, :func:`write_csv_atomic` -- a data frame (anything with ``to_parquet`` /
  ``to_csv``; pandas is not imported here);
* :func:`temporary_name` -- the hidden name itself (the store's folder finalisation uses it too);
* :func:`remove_stale_temporaries` -- what :func:`temporary_name` calls first: dead writers' leftovers go.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

__all__ = [
    "STALE_AFTER_S", "atomic_path", "atomic_write", "remove_stale_temporaries", "temporary_name",
    "write_csv_atomic", "write_json_atomic", "write_parquet_atomic", "write_text_atomic",
]


#: A temporary whose writer cannot be asked -- written on another machine sharing the folder, or named
#: before names carried the writer -- is stale once nothing in it has changed for this long (seconds).
STALE_AFTER_S = 24 * 3600

#: This machine, as a temporary name spells it (a short digest of the host name: no dashes, no dots).
_HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:6]


def temporary_name(path: str | os.PathLike, kind: str = "tmp") -> Path:
    """A fresh hidden name next to ``path``: ``.<name>.<kind>-<host>-<pid>-<8 hex>`` (unique per call).

    Stale temporaries of the same kind beside it, left by writers that died, are removed first.
    """
    path = Path(path)
    remove_stale_temporaries(path, kind)
    return path.with_name(f".{path.name}.{kind}-{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def remove_stale_temporaries(path: str | os.PathLike, kind: str = "tmp", *, max_age_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove the hidden temporaries of ``path`` (files or folders) whose writers are gone; return them.

    One written on this machine is stale when its process is no longer running; one from another
    machine, or in the older ``.<name>.<kind>-<8 hex>`` form, when nothing in it changed for
    ``max_age_s`` seconds. A temporary of a live writer is never touched; other names are left alone.
    """
    path = Path(path)
    prefix = f".{path.name}.{kind}-"
    try:
        entries = [e for e in os.scandir(path.parent) if e.name.startswith(prefix)]
    except (FileNotFoundError, NotADirectoryError):
        return []
    removed = []
    for entry in entries:
        rest = entry.name[len(prefix):]
        mine = re.fullmatch(r"([0-9a-f]{6})-([0-9]+)-[0-9a-f]{8}", rest)
        if mine and mine[1] == _HOST:
            stale = not _running(int(mine[2]))
        elif mine or re.fullmatch(r"[0-9a-f]{8}", rest):
            stale = time.time() - _last_change(entry) > max_age_s
        else:
            continue
        if stale:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                Path(entry.path).unlink(missing_ok=True)
            removed.append(Path(entry.path))
    return removed


def _running(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (a zombie or another user's process counts)."""
    if pid == os.getpid():
        return True
    if os.name == "nt":  # os.kill would end the process there: never call it a corpse
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it runs, as another user
        return True
    return True


def _last_change(entry: os.DirEntry) -> float:
    """The newest modification time of ``entry`` and, for a folder, of what it directly holds."""
    try:
        times = [entry.stat(follow_symlinks=False).st_mtime]
        if entry.is_dir(follow_symlinks=False):
            times += [e.stat(follow_symlinks=False).st_mtime for e in os.scandir(entry.path)]
    except OSError:
        return time.time()  # vanished or unreadable meanwhile: not ours to judge
    return max(times)


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
