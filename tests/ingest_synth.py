"""A tiny synthetic time-lapse for ingest tests: Gaussian nuclei that drift and divide.

Independent of the simulator on purpose, so the readers, detector and tracker are tested against a
truth we fully control (positions, lineages) in well under a second.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CHANNELS = ["brightfield", "hoechst", "fucci_red", "fucci_green"]


def synthetic_movie(
    frames: int = 12,
    size: int = 160,
    cells: int = 8,
    diameter: float = 14.0,
    seed: int = 0,
    divide_at: int | None = 5,
    redivide_at: int | None = None,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Movie (T, C, Y, X) uint16 with channels :data:`CHANNELS` and its truth table.

    Every founder divides at ``divide_at`` (daughters appear one frame later, 7 px either side),
    so the truth has ``cells`` divisions. With ``redivide_at``, the two daughters of founder 0 divide
    again then (7 px either side, across the first division's axis): born and divided inside the
    movie, they are full-cycle tracks, held out. Truth columns: frame, track_id, parent_track_id, x, y.
    """
    rng = np.random.default_rng(seed)
    margin = 40
    # founders on a jittered grid so that nuclei never overlap
    g = int(np.ceil(np.sqrt(cells)))
    step = (size - 2 * margin) / max(g - 1, 1)
    pos = [(margin + (i % g) * step + rng.uniform(-3, 3), margin + (i // g) * step + rng.uniform(-3, 3)) for i in range(cells)]
    alive = {i: {"x": p[0], "y": p[1], "parent": -1, "red": rng.uniform(0.2, 1), "green": rng.uniform(0.2, 1)} for i, p in enumerate(pos)}
    next_id = cells
    rows = []
    yy, xx = np.mgrid[0:size, 0:size]
    sigma = diameter / 4.0
    movie = np.zeros((frames, len(CHANNELS), size, size), dtype=np.uint16)
    axis: dict[int, tuple[float, float]] = {}  # daughter -> unit vector across its mother's division axis
    for t in range(frames):
        if redivide_at is not None and t == redivide_at + 1:
            new = {}
            for tid, c in alive.items():
                if c["parent"] == 0:
                    ux, uy = axis[tid]
                    for sgn in (-1, 1):
                        new[next_id] = {"x": c["x"] + sgn * 7 * ux, "y": c["y"] + sgn * 7 * uy, "parent": tid,
                                        "red": 0.05, "green": 0.05}
                        next_id += 1
                else:
                    new[tid] = c
            alive = new
        if divide_at is not None and t == divide_at + 1:
            new = {}
            for tid, c in alive.items():
                if c["parent"] == -1:
                    ang = rng.uniform(0, np.pi)
                    for sgn in (-1, 1):
                        new[next_id] = {"x": c["x"] + sgn * 7 * np.cos(ang), "y": c["y"] + sgn * 7 * np.sin(ang),
                                        "parent": tid, "red": 0.05, "green": 0.05}
                        axis[next_id] = (-np.sin(ang), np.cos(ang))
                        next_id += 1
                else:
                    new[tid] = c
            alive = new
        img = np.zeros((4, size, size), np.float64)
        for tid, c in alive.items():
            c["x"] += rng.normal(0, 0.7)
            c["y"] += rng.normal(0, 0.7)
            blob = np.exp(-((xx - c["x"]) ** 2 + (yy - c["y"]) ** 2) / (2 * sigma**2))
            img[1] += 3000 * blob
            img[2] += 2000 * c["red"] * blob
            img[3] += 2000 * c["green"] * blob
            img[0] += 300 * blob
            rows.append((t, tid, c["parent"], c["x"], c["y"]))
        img += np.array([1000, 500, 300, 300])[:, None, None]
        img += rng.normal(0, 40, img.shape)
        movie[t] = np.clip(img, 0, 65535).astype(np.uint16)
    truth = pd.DataFrame(rows, columns=["frame", "track_id", "parent_track_id", "x", "y"])
    return movie, truth
