"""Is a treated population's clock distribution different from the control's, and by how much?

Why: cells of one field of view are not independent draws (sisters share their age, a field shares
its focus, stain and crowding), so a test that counts cells as the unit rejects a true null far more
often than its nominal level. The unit that is exchangeable between two conditions is the field (or
the well): the p-value here comes from permuting whole fields between the two groups, exactly when
the number of arrangements is small, by Monte Carlo otherwise; the statistic is Watson's two-sample
U^2, the circular analogue of Cramer-von Mises (invariant to where the circle is cut). Effect sizes
(differences of phase fractions) get percentile confidence intervals from a bootstrap over fields,
resampled within each group.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["watson_u2", "watson_u2_asymptotic_p", "FieldTest", "field_permutation_test", "field_bootstrap"]


def watson_u2(a: np.ndarray, b: np.ndarray) -> float:
    """Watson's two-sample U^2 of circular samples ``a`` and ``b`` (positions in turns, any real)."""
    a = np.mod(np.asarray(a, dtype=float), 1.0)
    b = np.mod(np.asarray(b, dtype=float), 1.0)
    n, m = a.size, b.size
    if n == 0 or m == 0:
        raise ValueError(f"Watson's U2 needs two non-empty samples, got {n} and {m}")
    # ECDF difference at each distinct pooled value, weighted by how many observations sit there
    # (ties between the samples then cancel instead of alternating)
    u, t = np.unique(np.concatenate([a, b]), return_counts=True)
    d = np.searchsorted(np.sort(a), u, side="right") / n - np.searchsorted(np.sort(b), u, side="right") / m
    N = n + m
    return float(n * m / N**2 * ((t * d**2).sum() - (t * d).sum() ** 2 / N))


def watson_u2_asymptotic_p(u2: float) -> float:
    """The large-sample p-value of U^2 for INDEPENDENT observations (Watson 1962); shown beside the
    field permutation p to make the point that cells are not independent, never used to decide."""
    u2 = float(u2)
    if u2 <= 0:
        return 1.0
    k = np.arange(1, 50)
    p = 2.0 * np.sum((-1.0) ** (k - 1) * np.exp(-2.0 * k**2 * math.pi**2 * u2))
    return float(min(1.0, max(0.0, p)))


@dataclass(frozen=True)
class FieldTest:
    """A field-permutation test: the statistic, its p-value, how many arrangements were compared and
    whether they were all of them (exact) or a seeded random draw."""

    statistic: float
    p_value: float
    n_permutations: int
    exact: bool


def _split_by_field(values: np.ndarray, fields: np.ndarray) -> list[np.ndarray]:
    values = np.asarray(values, dtype=float)
    fields = np.asarray(fields)
    if values.shape != fields.shape:
        raise ValueError(f"values {values.shape} and fields {fields.shape} differ in shape")
    return [values[fields == f] for f in np.unique(fields)]


def field_permutation_test(
    a: np.ndarray,
    fields_a: np.ndarray,
    b: np.ndarray,
    fields_b: np.ndarray,
    *,
    statistic: Callable[[np.ndarray, np.ndarray], float] = watson_u2,
    max_exact: int = 5000,
    n_random: int = 1999,
    seed: int = 0,
) -> FieldTest:
    """Permutation test of "same distribution" with whole fields as the exchangeable units.

    ``a``/``b``: per-cell values of the two groups; ``fields_a``/``fields_b``: each cell's field label
    within its group. Every way of dealing the pooled fields into groups of the original sizes is
    tried when there are at most ``max_exact`` (the p-value is then exact, its smallest value
    1 / arrangements); otherwise ``n_random`` seeded random deals plus the observed one.
    """
    ga, gb = _split_by_field(a, fields_a), _split_by_field(b, fields_b)
    if len(ga) < 2 or len(gb) < 2:
        raise ValueError(f"a field permutation test needs at least 2 fields per group, got {len(ga)} and {len(gb)}")
    units = ga + gb
    k, total = len(ga), len(ga) + len(gb)
    observed = statistic(np.concatenate(ga), np.concatenate(gb))

    def stat_of(first: tuple[int, ...]) -> float:
        chosen = set(first)
        return statistic(np.concatenate([units[i] for i in first]),
                         np.concatenate([units[i] for i in range(total) if i not in chosen]))

    n_arr = math.comb(total, k)
    if n_arr <= max_exact:
        stats = np.array([stat_of(c) for c in itertools.combinations(range(total), k)])
        p = float((stats >= observed - 1e-12).mean())
        return FieldTest(float(observed), p, int(n_arr), True)
    rng = np.random.default_rng(seed)
    stats = np.array([stat_of(tuple(rng.permutation(total)[:k])) for _ in range(n_random)])
    p = float((1 + (stats >= observed - 1e-12).sum()) / (n_random + 1))
    return FieldTest(float(observed), p, n_random + 1, False)


def field_bootstrap(
    groups: list[list[np.ndarray]],
    estimate: Callable[..., np.ndarray],
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(estimate, low, high)``: a percentile interval of ``estimate(*pooled groups)`` by resampling
    the fields of each group with replacement (``groups[g]`` is the list of per-field arrays of group g;
    ``estimate`` takes one pooled array per group and returns a vector)."""
    if any(len(g) < 2 for g in groups):
        raise ValueError("a field bootstrap needs at least 2 fields in every group")
    point = np.asarray(estimate(*[np.concatenate(g) for g in groups]), dtype=float)
    rng = np.random.default_rng(seed)
    draws = np.empty((n_boot, point.size))
    for i in range(n_boot):
        pooled = [np.concatenate([g[j] for j in rng.integers(0, len(g), len(g))]) for g in groups]
        draws[i] = np.asarray(estimate(*pooled), dtype=float).ravel()
    lo, hi = np.nanquantile(draws, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return point, lo, hi
