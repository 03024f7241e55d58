"""FUCCI readout: per-cell reporter intensities and the paper's four "virtual classes".

The paper never segments cells; it reads each FUCCI channel as the median of a 20 x 20 px square
centred on the nucleus, minus a background level, and cuts the two intensities into four classes by
median splits. The classes are only a proxy task for the network; the point of this module is that
simulated and real data get exactly the same rule.

Class codes (used everywhere in the project)::

    0  red-low  & green-low    (early G1 after division)
    1  red-high & green-low    (G1)
    2  red-low  & green-high   (S/G2/M)
    3  red-high & green-high   (the G1/S overlap and its neighbourhood)
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "PHASE_GROUPS",
    "CLASS_NAMES",
    "PHASES",
    "BACKGROUND_PERCENTILE",
    "frame_background",
    "measure",
    "classify",
]

#: Names of the four classes, indexed by class code.
CLASS_NAMES: tuple[str, ...] = ("low/low", "red-high", "green-high", "both-high")

#: The cell-cycle phases in cycle order: the simulator's ground truth (``true_phase``) and the rows of
#: the validation's per-phase breakdown. Their one home is here, beside the classes that proxy them,
#: because this module is light (numpy only) and both the simulator and the scoring import it.
PHASES: tuple[str, ...] = ("G1", "S", "G2", "M")

#: The three phases a DNA-content histogram (and FUCCI + DNA) can tell apart: G2 and M share 4N. The
#: phase shares of treated populations (deepcycle_core.conditions.phase_calls / phase_readout) use these.
PHASE_GROUPS: tuple[str, str, str] = (PHASES[0], PHASES[1], f"{PHASES[2]}/{PHASES[3]}")

#: Default per-frame background reference: this percentile of the whole frame. Nuclei cover well
#: under three quarters of any frame, so the 25th percentile lies in the background, yet it is far
#: less sensitive to dark vignetted corners or dead pixels than a minimum or 1st percentile.
BACKGROUND_PERCENTILE = 25.0


def frame_background(image_2d: np.ndarray, percentile: float = BACKGROUND_PERCENTILE) -> float:
    """The per-frame reference subtracted from every cell: a low percentile of the frame."""
    img = _check_image(image_2d)
    return float(np.percentile(img, percentile))


def _check_image(image_2d: np.ndarray) -> np.ndarray:
    img = np.asarray(image_2d)
    if img.ndim != 2:
        raise ValueError(f"FUCCI image must be 2-D (Y, X), got shape {img.shape}")
    if img.size == 0:
        raise ValueError("FUCCI image is empty")
    if img.dtype.kind == "f" and not np.isfinite(img).all():
        raise ValueError("FUCCI image contains NaN or infinite pixels")
    return img


def measure(
    image_2d: np.ndarray,
    xs: np.ndarray,
    ys: np.ndarray,
    half: int = 10,
    background: float | None = None,
) -> np.ndarray:
    """Per-cell FUCCI intensity: median of the ``2*half`` square around (x, y) minus the background.

    The square spans pixels ``[round(y)-half, round(y)+half)`` x ``[round(x)-half, round(x)+half)``
    (20 x 20 px by default, as in the paper) and is clipped at the image edge. ``background`` is a
    number to subtract; ``None`` uses :func:`frame_background` (25th percentile of the frame).
    Returns float64 of length ``len(xs)``.
    """
    img = _check_image(image_2d)
    xs = np.asarray(xs, dtype=np.float64).ravel()
    ys = np.asarray(ys, dtype=np.float64).ravel()
    if len(xs) != len(ys):
        raise ValueError(f"xs and ys differ in length ({len(xs)} vs {len(ys)})")
    if not (np.isfinite(xs).all() and np.isfinite(ys).all()):
        raise ValueError("nucleus coordinates contain NaN or infinite values")
    if half < 1:
        raise ValueError(f"half must be >= 1, got {half}")
    if background is None:
        background = frame_background(img)
    elif not np.isfinite(background):
        raise ValueError(f"background must be finite, got {background}")
    h, w = img.shape
    out = np.empty(len(xs), dtype=np.float64)
    cx = np.rint(xs).astype(np.int64)
    cy = np.rint(ys).astype(np.int64)
    inside = (cx - half >= 0) & (cx + half <= w) & (cy - half >= 0) & (cy + half <= h)
    k = np.nonzero(inside)[0]
    if len(k):  # whole squares: one vectorised gather and median
        g = np.arange(-half, half)
        block = img[cy[k][:, None, None] + g[None, :, None], cx[k][:, None, None] + g[None, None, :]]
        out[k] = np.median(block.reshape(len(k), -1), axis=1)
    for i in np.nonzero(~inside)[0]:  # squares clipped by the image edge
        y0, y1 = max(cy[i] - half, 0), min(cy[i] + half, h)
        x0, x1 = max(cx[i] - half, 0), min(cx[i] + half, w)
        if y0 >= y1 or x0 >= x1:
            raise ValueError(f"nucleus {i} at (x={xs[i]:.1f}, y={ys[i]:.1f}) lies outside the {w}x{h} image")
        out[i] = np.median(img[y0:y1, x0:x1])
    return out - float(background)


def classify(red: np.ndarray, green: np.ndarray, fit: np.ndarray | None = None) -> np.ndarray:
    """The paper's 4-class rule: red median split, then a green median split within each red half.

    A value is "high" when strictly greater than the median of its group, so with distinct values
    each half holds n/2 cells (odd counts put the extra cell in the low half). The green median is
    taken separately among red-low and among red-high cells, which balances the four classes.

    ``fit`` (a boolean mask) chooses the cells the three medians are computed from -- the
    non-held-out cells (:func:`deepcycle_core.data.split.fit_mask`), so that the evidence of the
    validation never shapes the labels; the gates are then applied to every cell. Returns int8 codes
    (see the module docstring).
    """
    r = np.asarray(red, dtype=np.float64).ravel()
    g = np.asarray(green, dtype=np.float64).ravel()
    if len(r) != len(g):
        raise ValueError(f"red and green differ in length ({len(r)} vs {len(g)})")
    if len(r) == 0:
        raise ValueError("cannot classify an empty set of cells")
    if not (np.isfinite(r).all() and np.isfinite(g).all()):
        raise ValueError("FUCCI intensities contain NaN or infinite values (unmeasured cells must be dropped first)")
    use = np.ones(len(r), dtype=bool) if fit is None else np.asarray(fit, dtype=bool).ravel()
    if len(use) != len(r):
        raise ValueError(f"the fit mask has {len(use)} entries for {len(r)} cells")
    if not use.any():
        raise ValueError("no cell to fit the FUCCI gates on (the fit mask is empty)")
    red_gate = np.median(r[use])
    red_high = r > red_gate
    green_high = np.zeros(len(r), dtype=bool)
    for half in (red_high, ~red_high):
        ref = half & use
        if ref.any():
            green_high[half] = g[half] > np.median(g[ref])
        elif half.any():  # no fitting cell on this side: gate it with the fitting cells' green median
            green_high[half] = g[half] > np.median(g[use])
    out = np.zeros(len(r), dtype=np.int8)
    out[red_high & ~green_high] = 1
    out[~red_high & green_high] = 2
    out[red_high & green_high] = 3
    return out
