"""Ingest speed and memory on 1024 x 1024 frames: lazy streaming (what ``ingest`` does) vs eager loading.

Why: a real movie (hundreds of frames x 4 channels of large frames) may not fit in memory. ``ingest``
reads one plane at a time, so its memory should not grow with the movie's pixels. The baseline,
measured in the same run on the same file, is the obvious alternative: load the stack with
``tifffile.imread`` and run the very same pipeline on the in-memory array. Both are run on the first
12 and on all 24 frames, so the table also shows how memory grows with the movie's length (for
streaming: only the spot table and cell rows; the store writer's chunk buffers are a constant).

Each mode runs in a fresh child process, so the peak resident memory (``ru_maxrss``) is its own;
``traced peak`` is the numpy/Python allocation peak from ``tracemalloc`` after a two-frame warm-up
run (so without the libraries' import-time memory, which RSS includes).

Run:  .venv/bin/python benchmarks/ingest.py [--frames 12 24] [--movie existing.ome.tif]
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


def make_movie(folder: Path, frames: int, side: int = 1024) -> Path:
    """A simulator movie of ``side`` x ``side`` frames: enough founders at the preset's spacing to fill it."""
    import math

    from deepcycle_core.sim.params import resolve_params
    from deepcycle_core.sim.simulate import movie_dir, simulate

    cells = math.floor((side / resolve_params("default").spacing_px) ** 2)
    store = simulate(folder / "store", cells=cells, hours=frames / 6.0, seed=0, movie=True, progress=False, workers=2)
    return movie_dir(store) / "movie.ome.tif"


def child(mode: str, movie: str, out: str, n_frames: int) -> None:
    import tracemalloc

    import tifffile

    import deepcycle_core.movies.ingest as ing
    from deepcycle_core.movies import readers as movie_io

    # warm up on two frames first, so that imports (laptrack, sklearn, pyarrow, codecs) are neither
    # timed nor counted in the traced peak: what remains is the data the pipeline holds
    ing.ingest(movie, out + "_warmup", max_frames=2, overwrite=True, progress=False)
    tracemalloc.start()
    t0 = time.perf_counter()
    if mode == "eager":
        real_open = movie_io.open_movie

        def eager_open(path, **kw):
            m = real_open(path, **kw)
            n_c = m.n_channels  # the first n_frames frames, all channels, all in memory at once
            stack = tifffile.imread(path, key=range(n_frames * n_c)).reshape(n_frames, n_c, *m.shape)
            m._read = lambda t, c: stack[t, c]
            return m

        ing.open_movie = eager_open
    ing.ingest(movie, out, max_frames=n_frames, overwrite=True, progress=False)
    dt = time.perf_counter() - t0
    traced = tracemalloc.get_traced_memory()[1]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": dt, "traced_peak": traced, "rss_peak": rss}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, nargs="+", default=[12, 24], help="movie lengths to ingest (frames)")
    ap.add_argument("--movie", default=None, help="an existing movie to use instead of simulating one")
    ap.add_argument("--child", nargs=4, metavar=("MODE", "MOVIE", "OUT", "FRAMES"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child[:3], int(args.child[3]))
        return
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.movie:
            movie = Path(args.movie)
        else:
            t = time.perf_counter()
            movie = make_movie(tmp, max(args.frames))
            print(f"simulated {movie.name} in {time.perf_counter() - t:.0f} s")
        import tifffile

        with tifffile.TiffFile(movie) as tf:
            shape = tf.series[0].shape
        size = movie.stat().st_size
        print(f"movie: {shape} (T, C, Y, X) uint16, {size / 2**20:.0f} MiB on disk")
        res = {}
        for n in sorted(args.frames):
            for mode in ("lazy", "eager"):
                r = subprocess.run([sys.executable, __file__, "--child", mode, str(movie), str(tmp / f"store_{mode}"), str(n)],
                                   capture_output=True, text=True, check=True)
                res[mode, n] = json.loads(r.stdout.strip().splitlines()[-1])
        print(f"{'mode':<8}{'frames':>7}{'frames/s':>10}{'traced peak MiB':>18}{'RSS peak MiB':>15}")
        for (mode, n), r in res.items():
            print(f"{mode:<8}{n:>7}{n / r['seconds']:>10.2f}{r['traced_peak'] / 2**20:>18.0f}{r['rss_peak'] / 2**20:>15.0f}")
        n = max(args.frames)
        lz, eg = res["lazy", n], res["eager", n]
        print(f"ratio eager/lazy at {n} frames: traced memory x{eg['traced_peak'] / lz['traced_peak']:.2f}, "
              f"RSS x{eg['rss_peak'] / lz['rss_peak']:.2f}, time x{eg['seconds'] / lz['seconds']:.2f}")
        if len(args.frames) > 1:
            m = min(args.frames)
            grow = lambda mode: (res[mode, n]["traced_peak"] - res[mode, m]["traced_peak"]) / 2**20  # noqa: E731
            print(f"traced memory added from {m} to {n} frames: lazy {grow('lazy'):+.0f} MiB, eager {grow('eager'):+.0f} MiB")


if __name__ == "__main__":
    main()
