"""Ingest speed and memory on 1024 x 1024 frames: lazy streaming (what ``ingest`` does) vs eager loading.

Why: a real movie (the paper's: 200 frames x 4 channels of 2048^2 px, ~6 GB) may not fit in memory.
``ingest`` reads one plane at a time, so its memory should not grow with the movie. The baseline,
measured in the same run on the same file, is the obvious alternative: load the whole stack with
``tifffile.imread`` and run the very same pipeline on the in-memory array.

Each mode runs in a fresh child process, so the peak resident memory (``ru_maxrss``) is its own;
``traced peak`` is the numpy/Python allocation peak from ``tracemalloc`` (without the ~0.4 GB of
imported libraries that RSS includes).

Run:  .venv/bin/python benchmarks/ingest.py [--frames 30] [--movie existing.ome.tif]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_movie(folder: Path, frames: int) -> Path:
    """A simulator movie of 1024 x 1024 frames (542 founders at the default spacing fill 1024 px)."""
    from deepcycle_core.simulate import movie_dir, simulate

    store = simulate(folder / "store", cells=542, hours=frames / 6.0, seed=0, movie=True, progress=False, workers=2)
    return movie_dir(store) / "movie.ome.tif"


def child(mode: str, movie: str, out: str) -> None:
    import tracemalloc

    import tifffile

    import deepcycle_core.ingest as ing
    from deepcycle_core import movie_io

    tracemalloc.start()
    t0 = time.perf_counter()
    if mode == "eager":
        real_open = movie_io.open_movie

        def eager_open(path, **kw):
            m = real_open(path, **kw)
            stack = tifffile.imread(path)  # (T, C, Y, X), all in memory
            m._read = lambda t, c: stack[t, c]
            return m

        ing.open_movie = eager_open
    ing.ingest(movie, out, overwrite=True, progress=False)
    dt = time.perf_counter() - t0
    traced = tracemalloc.get_traced_memory()[1]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": dt, "traced_peak": traced, "rss_peak": rss}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--movie", default=None, help="an existing movie to use instead of simulating one")
    ap.add_argument("--child", nargs=3, metavar=("MODE", "MOVIE", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.movie:
            movie = Path(args.movie)
        else:
            t = time.perf_counter()
            movie = make_movie(tmp, args.frames)
            print(f"simulated {movie.name} in {time.perf_counter() - t:.0f} s")
        import tifffile

        with tifffile.TiffFile(movie) as tf:
            shape = tf.series[0].shape
        size = movie.stat().st_size
        print(f"movie: {shape} (T, C, Y, X) uint16, {size / 2**20:.0f} MiB on disk")
        res = {}
        for mode in ("lazy", "eager"):
            r = subprocess.run([sys.executable, __file__, "--child", mode, str(movie), str(tmp / f"store_{mode}")],
                               capture_output=True, text=True, check=True)
            res[mode] = json.loads(r.stdout.strip().splitlines()[-1])
        n = shape[0]
        print(f"{'mode':<8}{'frames/s':>10}{'traced peak MiB':>18}{'RSS peak MiB':>15}")
        for mode, r in res.items():
            print(f"{mode:<8}{n / r['seconds']:>10.2f}{r['traced_peak'] / 2**20:>18.0f}{r['rss_peak'] / 2**20:>15.0f}")
        lz, eg = res["lazy"], res["eager"]
        print(f"ratio eager/lazy: traced memory x{eg['traced_peak'] / lz['traced_peak']:.1f}, "
              f"RSS x{eg['rss_peak'] / lz['rss_peak']:.2f}, time x{eg['seconds'] / lz['seconds']:.2f}")


if __name__ == "__main__":
    main()
