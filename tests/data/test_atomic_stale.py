"""A writer killed mid-write (SIGKILL, SIGTERM) leaves its hidden temporary; the next write to the same
target removes it -- and never the temporary of a writer still at work.

Why: an ingest stopped by SIGTERM or SIGKILL left a hidden ``.<out>.tmp-*`` folder (a whole half-written
store) that nothing ever removed. The temporary's name now records the machine and the writer's PID.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deepcycle_core.data import atomic
from deepcycle_core.data.atomic import remove_stale_temporaries, temporary_name, write_text_atomic

ROOT = Path(__file__).resolve().parents[2]

#: A writer that starts an atomic write of the target (a file, or a folder as the store writes), says
#: where, then waits to be killed.
WRITER = """
import sys, time
from pathlib import Path
from deepcycle_core.data.atomic import atomic_path, temporary_name
target = Path(sys.argv[1])
if sys.argv[2] == "folder":
    tmp = temporary_name(target)
    (tmp / "crops.zarr").mkdir(parents=True)
    (tmp / "crops.zarr" / "0.0").write_bytes(b"half a store")
    print(tmp, flush=True)
    time.sleep(120)
with atomic_path(target) as tmp:
    tmp.write_text("half")
    print(tmp, flush=True)
    time.sleep(120)
"""


def _start_writer(target: Path, kind: str) -> tuple[subprocess.Popen, Path]:
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target), kind], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    tmp = Path(proc.stdout.readline().strip())
    assert tmp.exists(), "the writer did not start its write"
    return proc, tmp


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("kind", ["file", "folder"])
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_the_next_write_removes_a_killed_writers_temporary_not_a_live_ones(tmp_path, sig, kind):
    target = tmp_path / ("out.txt" if kind == "file" else "store")
    dead, dead_tmp = _start_writer(target, kind)
    live, live_tmp = _start_writer(target, kind)
    try:
        dead.send_signal(sig)
        dead.wait(timeout=30)
        assert dead_tmp.exists(), "a killed writer leaves its temporary (nothing can remove it then)"
        if kind == "file":
            write_text_atomic(target, "whole")
            assert target.read_text() == "whole"
        else:
            temporary_name(target)  # what the store's writer asks for before it writes a new store
        assert not dead_tmp.exists(), "the dead writer's temporary is still there"
        assert live_tmp.exists(), "the live writer's temporary was removed under it"
        assert _hidden(tmp_path) == [live_tmp.name]
    finally:
        live.kill()
        live.wait(timeout=30)
        dead.stdout.close()
        live.stdout.close()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_which_temporaries_are_stale(tmp_path):
    target = tmp_path / "x.json"
    host = atomic._HOST
    names = {
        "dead": f".x.json.tmp-{host}-{_dead_pid()}-0123abcd",
        "me": f".x.json.tmp-{host}-{os.getpid()}-0123abcd",
        "other_host_fresh": f".x.json.tmp-{'f' if host[0] != 'f' else 'e'}{host[1:]}-1-0123abcd",
        "old_form_old": ".x.json.tmp-89abcdef",
        "old_form_fresh": ".x.json.tmp-76543210",
        "other_kind": f".x.json.old-{host}-{_dead_pid()}-0123abcd",
        "not_ours": ".x.json.tmp-notes",
        "other_target": f".x.json.tmp-a.tmp-{host}-{_dead_pid()}-0123abcd",  # the temporary of x.json.tmp-a
    }
    for name in names.values():
        (tmp_path / name).write_text("")
    _age(tmp_path / names["old_form_old"], atomic.STALE_AFTER_S + 60)
    removed = remove_stale_temporaries(target)
    assert sorted(p.name for p in removed) == sorted([names["dead"], names["old_form_old"]])
    left = set(_hidden(tmp_path))
    assert left == set(names.values()) - {names["dead"], names["old_form_old"]}
    # another machine's temporary goes once nothing changed in it for STALE_AFTER_S
    _age(tmp_path / names["other_host_fresh"], atomic.STALE_AFTER_S + 60)
    assert [p.name for p in remove_stale_temporaries(target)] == [names["other_host_fresh"]]
    # each kind is cleaned when a temporary of that kind is asked for
    temporary_name(target, "old")
    assert not (tmp_path / names["other_kind"]).exists()


def test_ingest_removes_a_dead_ingests_hidden_store(tmp_path):
    """The store's writer takes its folder's name from temporary_name, so an ingest cleans up after a killed one."""
    sys.path.insert(0, str(ROOT / "tests"))
    import tifffile
    from ingest_synth import CHANNELS, synthetic_movie

    from deepcycle_core.movies.ingest import ingest

    out = tmp_path / "store"
    leftover = tmp_path / f".store.tmp-{atomic._HOST}-{_dead_pid()}-0123abcd"
    (leftover / "crops.zarr").mkdir(parents=True)
    mov, _ = synthetic_movie(frames=3, size=96, cells=2, divide_at=None)
    meta = {"axes": "TCYX", "Channel": {"Name": CHANNELS}, "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5,
            "TimeIncrement": 10, "TimeIncrementUnit": "min"}
    tifffile.imwrite(tmp_path / "movie.ome.tif", mov, ome=True, metadata=meta)
    ingest(tmp_path / "movie.ome.tif", out, progress=False)
    assert out.is_dir() and not leftover.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".store")]
