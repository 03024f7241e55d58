"""Builders of the tiny stores and run folders that several test files share.

One home for them (like ingest_synth.py) so that no test module imports another: importing a test
module drags in its fixtures and imports, and a builder changed for one file's tests would silently
change another's. Each builder is moved here verbatim from the test file that first needed it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from deepcycle_core.data import fingerprint
from deepcycle_core.data.runs import RunDir
from deepcycle_core.data.store import CellStore, StoreWriter, open_store

__all__ = [
    "CYCLE_FRAMES",
    "PEAK",
    "class_of_age",
    "era_ages",
    "make_ring_run",
    "make_store",
    "make_tiny_store",
    "softmax_descriptors",
]

TWO_PI = 2 * np.pi


# --- a learnable store of 4 FUCCI classes (dataset, training, fingerprint tests) -----------------
def make_tiny_store(
    path: str | Path, n_tracks: int = 16, frames: int = 12, seed: int = 0, chunk_cells: int = 32,
    n_full: int = 3, labels: Sequence[int] | np.ndarray | None = None,
) -> CellStore:
    """A small learnable store: the class sets the nucleus size (Hoechst) and a halo (brightfield).

    Each frame has its own background level (the per-frame normalisation must remove it). The first
    ``n_full`` tracks are full-cycle tracks.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:48, :48]
    r2 = (yy - 24.0) ** 2 + (xx - 24.0) ** 2
    rows, crops = [], []
    for t in range(n_tracks):
        for f in range(frames):
            cls = int(rng.integers(0, 4)) if labels is None else int(labels[len(rows)])
            bg = 500.0 + 40.0 * f
            nuc = bg + 800.0 * np.exp(-r2 / (2 * (3 + 2 * (cls % 2)) ** 2))
            bf = bg + 300.0 * (cls >= 2) * np.exp(-((np.sqrt(r2) - 12) ** 2) / 8.0)
            img = np.stack([nuc, bf]) + rng.normal(0, 30, (2, 48, 48))
            crops.append(np.clip(img, 0, 65535).astype(np.uint16))
            rows.append(
                dict(
                    track_id=t, parent_track_id=-1, frame=f, time_h=f / 6, x=10.0 + t, y=20.0, field=t % 2,
                    birth_frame=0 if t < n_full else -1, division_frame=frames - 1 if t < n_full else -1,
                    full_cycle=t < n_full, fucci_red=float(cls), fucci_green=float(cls), **{"class": cls},
                )
            )
    frames_df = pd.DataFrame(
        [
            {"field": fld, "frame": f, "hoechst_median": 500.0 + 40.0 * f, "hoechst_std": 100.0,
             "brightfield_median": 500.0 + 40.0 * f, "brightfield_std": 50.0}
            for fld in (0, 1) for f in range(frames)
        ]
    )
    with StoreWriter(
        path,
        channels=[("hoechst", "nuclear"), ("brightfield", "brightfield")],
        meta={"frame_interval_min": 10, "pixel_size_um": 0.5, "provenance": {"source": "test"}},
        chunk_cells=chunk_cells,
    ) as w:
        w.append(np.stack(crops), pd.DataFrame(rows))
        w.set_frames(frames_df)
    return open_store(path)



# --- a store whose crops follow a cycle, with a split (baseline and validation tests) ------------
CYCLE_FRAMES = 24  # one frame an hour: a 24 h cycle


def _phase(a: np.ndarray) -> np.ndarray:
    return np.select([a < 0.37, a < 0.75, a < 0.96], ["G1", "S", "G2"], "M")


def _class(a: np.ndarray) -> np.ndarray:
    return np.select([a < 0.1, a < 0.35, a < 0.45], [0, 1, 3], 2).astype(np.int64)


def make_store(
    path: Path, *, n_tracks: int = 60, n_frames: int = 36, seed: int = 0, scramble_heldout: bool = False
) -> tuple[Path, pd.DataFrame]:
    """A tiny cell store whose crops follow a cycle: a nucleus growing and doubling its DNA, and a
    brightfield that turns granular around mitosis. Returns the store path and a split table in which
    the full-cycle tracks are held out (as the training stage does).

    ``scramble_heldout`` replaces the held-out crops by noise, to prove that nothing fitted sees them.
    """
    rng = np.random.default_rng(seed)
    rows, crops = [], []
    yy, xx = np.mgrid[:48, :48] - 23.5
    rr = np.hypot(yy, xx)
    cell_rng = np.random.default_rng(seed + 1)
    for tid in range(n_tracks):
        # every 3rd track is born at frame 2 and divides inside the movie: a full-cycle track
        # the others are cut by the movie: born before it starts, or dividing after it ends
        full = tid % 3 == 0
        cyc = CYCLE_FRAMES + int(rng.integers(-2, 3))
        if full:
            birth = 2 + (tid % 5)
        elif tid % 2:
            birth = -int(rng.integers(1, cyc))
        else:
            birth = n_frames - int(rng.integers(1, cyc))
        div = birth + cyc
        for f in range(max(birth, 0), min(div, n_frames)):
            a = (f - birth) / cyc
            rows.append({
                "track_id": tid, "parent_track_id": -1, "frame": f, "time_h": float(f), "x": 100.0, "y": 100.0,
                "field": 0, "birth_frame": birth if birth >= 0 else -1,
                "division_frame": div if div < n_frames else -1,
                "full_cycle": bool(full and div < n_frames), "fucci_red": 0.0, "fucci_green": 0.0,
                "class": int(_class(np.array([a]))[0]), "true_age": a, "true_phase": str(_phase(np.array([a]))[0]),
                "true_cycle_h": float(cyc), "true_age_h": float(f - birth), "generation": 1,
            })
            radius = 5.0 + 4.0 * a
            dna = 1.0 + np.clip((a - 0.37) / 0.38, 0, 1)
            nuc = 100 + (dna * 600 / radius**2 * 25) * (rr < radius) + cell_rng.normal(0, 10, (48, 48))
            grain = 200.0 if (a > 0.9 or a < 0.06) else 20.0
            bf = 1000 + cell_rng.normal(0, grain, (48, 48))
            crops.append(np.stack([nuc, bf]))
    cells = pd.DataFrame(rows)
    arr = np.clip(np.stack(crops), 0, 65535).astype(np.uint16)
    split = pd.DataFrame({
        "cell_id": np.arange(len(cells)),
        "split": np.where(cells["full_cycle"], "heldout", np.where(cells["track_id"] % 3 == 1, "val", "train")),
    })
    if scramble_heldout:
        held = split["split"].to_numpy() == "heldout"
        arr[held] = np.random.default_rng(99).integers(0, 4000, arr[held].shape).astype(np.uint16)
    frames = pd.DataFrame({
        "field": 0, "frame": np.arange(n_frames),
        "hoechst_median": 100.0, "hoechst_std": 50.0, "brightfield_median": 1000.0, "brightfield_std": 100.0,
    })
    with StoreWriter(path, channels=[("hoechst", "nuclear"), ("brightfield", "brightfield")],
                     meta={"frame_interval_min": 60, "pixel_size_um": 0.5}, chunk_cells=128) as w:
        w.append(arr, cells)
        w.set_frames(frames)
    return path, split



# --- descriptors of a 4-class network along the cycle, and a run folder of them (trajectory tests) --
# where each class's descriptor peaks along the cycle (age in [0, 1), 0 = division)
PEAK = {0: 0.07, 1: 0.25, 3: 0.45, 2: 0.75}


def class_of_age(a: np.ndarray) -> np.ndarray:
    """FUCCI classes by cycle age: low/low early G1, red-high G1, both-high G1/S, green-high S/G2/M."""
    c = np.full(a.shape, 2)
    c[a < 0.5] = 3
    c[a < 0.4] = 1
    c[a < 0.15] = 0
    return c


def era_ages(rng: np.random.Generator, n: int) -> np.ndarray:
    """Ages (fraction of T) of a steadily exponentially growing population: density ∝ 2^(−a)."""
    return -np.log2(1.0 - rng.uniform(0, 1, n) / 2.0)


def softmax_descriptors(a: np.ndarray, rng: np.random.Generator, kappa: float = 6.0, noise: float = 0.3) -> np.ndarray:
    """log(softmax + 1e-7) of a 4-class 'network' whose class scores peak in cycle order."""
    logits = np.stack([kappa * np.cos(TWO_PI * (a - PEAK[k])) for k in range(4)], axis=1)
    logits += rng.normal(0, noise, logits.shape)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return np.log(p + 1e-7)



def make_ring_run(tmp_path: Path, rng: np.random.Generator) -> tuple[RunDir, np.ndarray, np.ndarray]:
    """A run folder ready for the trajectory stage: a store of a population doubling every 20 h, the
    descriptors of a 4-class network along the cycle and a split whose held-out cells (tracks 0-9)
    carry garbage descriptors. Returns the run, the descriptors and the held-out mask.
    """
    times = np.arange(0, 30, 2.0)
    per_frame = np.round(40 * 2 ** (times / 20.0)).astype(int)  # doubling time 20 h
    n = int(per_frame.sum())
    frame = np.repeat(np.arange(times.size), per_frame)
    a = era_ages(rng, n)
    track = np.arange(n) % 150  # tracks 0..9 are the held-out ones
    rows = pd.DataFrame(
        {
            "track_id": track,
            "parent_track_id": -1,
            "frame": frame,
            "time_h": times[frame],
            "x": rng.uniform(0, 100, n),
            "y": rng.uniform(0, 100, n),
            "field": 0,
            "birth_frame": -1,
            "division_frame": -1,
            "full_cycle": track < 10,
            "fucci_red": np.nan,
            "fucci_green": np.nan,
            "class": class_of_age(a),
        }
    )
    run = RunDir(tmp_path / "run")
    frames = pd.DataFrame({"field": 0, "frame": np.arange(times.size), "hoechst_median": 0.0, "hoechst_std": 1.0})
    with StoreWriter(run.store, channels=[("hoechst", "nuclear")], meta={"frame_interval_min": 120, "pixel_size_um": 0.5}) as w:
        w.append(np.zeros((n, 1, 48, 48), np.uint16), rows)
        w.set_frames(frames)
    X = softmax_descriptors(a, rng)
    held = track < 10
    X[held] = rng.normal(-8, 4, (held.sum(), 4))  # garbage: must not influence the fit
    run.embed.mkdir(parents=True)
    pd.DataFrame({"cell_id": np.arange(n), **{f"d{k}": X[:, k] for k in range(4)}}).to_parquet(
        run.embed / "descriptors.parquet"
    )
    run.train.mkdir(parents=True)
    pd.DataFrame({"cell_id": np.arange(n), "split": np.where(held, "heldout", "train")}).to_parquet(
        run.train / "split.parquet"
    )
    # made by hand, not by the stages: vouch for them, or the trajectory stage refuses them as unrecorded
    fingerprint.adopt(run, "train")
    fingerprint.adopt(run, "embed")
    return run, X, held


EMBED_N_CELLS = 300
EMBED_CHUNK = 64  # 5 chunk-aligned ranges, the last one partial


def write_embed_store(path: Path, channels, n: int = EMBED_N_CELLS, seed: int = 0) -> Path:
    """A store of random crops whose chunks do not divide its cells (the embed tests' store)."""
    rng = np.random.default_rng(seed)
    frame = np.arange(n) % 5
    rows = pd.DataFrame({
        "track_id": np.arange(n) // 10, "parent_track_id": -1, "frame": frame, "time_h": frame / 6.0,
        "x": rng.uniform(0, 500, n), "y": rng.uniform(0, 500, n), "field": 0, "birth_frame": -1,
        "division_frame": -1, "full_cycle": False, "fucci_red": rng.random(n), "fucci_green": rng.random(n),
        "class": rng.integers(0, 4, n),
    })
    frames = pd.DataFrame({"field": 0, "frame": np.arange(5)})
    for name, _ in channels:
        frames[f"{name}_median"] = 100.0 + 10 * np.arange(5)
        frames[f"{name}_std"] = 20.0 + np.arange(5)
    crops = rng.integers(50, 400, (n, len(channels), 48, 48), dtype=np.uint16)
    with StoreWriter(path, channels=channels, meta={"frame_interval_min": 10, "pixel_size_um": 0.5},
                     chunk_cells=EMBED_CHUNK) as w:
        w.append(crops, rows)
        w.set_frames(frames)
    return path


def write_embed_checkpoint(path: Path, mode: str = "both") -> Path:
    """A tiny untrained network saved in the checkpoint format training writes."""
    from deepcycle_core.net.checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_VERSION
    from deepcycle_core.net.model import DeepCycleNet
    from deepcycle_core.net.normalise import MODES

    import torch

    torch.manual_seed(0)
    roles = list(MODES[mode])
    net = DeepCycleNet(in_channels=len(roles), backbone="resnet18", truncate=True, pretrained=None).eval()
    info = {"in_channels": len(roles), "backbone": "resnet18", "truncate": True, "n_classes": 4, "mode": mode,
            "roles": roles, "channels": ["hoechst", "brightfield"][: len(roles)]}
    torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "info": info,
                "model": net.state_dict()}, path)
    return path
