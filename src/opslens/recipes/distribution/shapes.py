"""Whether clusters of combinations differ in *shape*, not only in location or scale.

Each combination's training values are standardised by its own median and
interquartile range, so a combination that is only faster, slower or more spread
than another has the same standardised values; the standardised values are counted
in common quantile bins (one row of counts per combination). The groups are formed on
one part of the rows and tested on another (the recipe clusters the earlier training
rows and tests with the later ones): a test on the rows that formed the groups would
find the differences the clustering selected (so each combination's later rows are
standardised by their own median and IQR, not by statistics of the earlier ones). Two groups of
combinations differ in shape when the Jensen-Shannon distance between their pooled
standardised histograms is larger than under random relabelling of the
*combinations* (``scipy.stats.permutation_test``): rows of one combination move
together, so the combinations, not the rows, are the unit that is permuted.

Example:
    >>> rng = np.random.default_rng(0)
    >>> one = [rng.normal(0, 1, 200) for _ in range(6)]
    >>> two = [np.concatenate([rng.normal(-2, .5, 100), rng.normal(2, .5, 100)]) for _ in range(6)]
    >>> counts = standardized_counts(one + two)
    >>> round(shape_test(counts, np.arange(6), np.arange(6, 12)).p_value, 4) < 0.01
    True
    >>> shape_test(counts, np.arange(3), np.arange(3, 6)).p_value > 0.05
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np

__all__ = [
    "ALPHA",
    "MIN_GROUP",
    "ShapeTest",
    "distinct_shapes",
    "shape_test",
    "standardized_counts",
]

ALPHA = 0.01
"""Significance level of the shape test, Bonferroni-corrected over the pairs tested at one K."""
MIN_GROUP = 3
"""Groups of fewer combinations are not tested (a shape of one or two combinations is not a pattern)."""
N_RESAMPLES = 1999
"""Permutations of the combinations per test (the smallest p-value is 1/2000); a pair close to
the corrected level when many pairs are tested gets enough more to reach 1/5 of that level."""
N_BINS = 20


def standardized_counts(values: Sequence[np.ndarray], n_bins: int = N_BINS) -> np.ndarray:
    """Counts of each combination's values, standardised by their median and IQR, in common bins.

    The bins are quantiles of all standardised values, so each holds about as many rows.

    Example:
        >>> c = standardized_counts([np.array([1.0, 2.0, 3.0, 4.0]), np.array([10.0, 20, 30, 40])], 2)
        >>> c.tolist()
        [[2, 2], [2, 2]]
    """
    z = []
    for raw in values:
        v = np.asarray(raw, dtype=float)
        q1, med, q3 = np.quantile(v, [0.25, 0.5, 0.75]) if v.size else (0.0, 0.0, 1.0)
        spread = q3 - q1
        if spread <= 0:
            spread = float(np.std(v)) or 1.0
        z.append((v - med) / spread)
    pooled = np.concatenate(z) if z else np.zeros(0)
    edges: np.ndarray = (
        np.unique(np.quantile(pooled, np.linspace(0, 1, n_bins + 1)[1:-1])) if z else np.zeros(0)
    )
    out = np.zeros((len(z), len(edges) + 1), dtype=np.int64)
    for i, zi in enumerate(z):
        out[i] = np.bincount(np.searchsorted(edges, zi, side="right"), minlength=len(edges) + 1)
    return out


@dataclass(frozen=True)
class ShapeTest:
    """The Jensen-Shannon distance of two groups' pooled standardised histograms and its p-value."""

    distance: float
    p_value: float


def shape_test(
    counts: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    *,
    random_state: int = 0,
    n_resamples: int = N_RESAMPLES,
) -> ShapeTest:
    """Permutation test (over combinations) of the shape difference between groups ``a`` and ``b``.

    ``a`` and ``b`` index rows of ``counts`` (see :func:`standardized_counts`).

    Example:
        >>> c = np.array([[10, 0], [9, 1], [10, 0], [0, 10], [1, 9], [0, 10]])
        >>> t = shape_test(c, np.array([0, 1, 2]), np.array([3, 4, 5]))
        >>> round(t.distance, 2), t.p_value
        (0.89, 0.1)
    """
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import permutation_test

    counts = np.asarray(counts, dtype=float)

    def distance(x: np.ndarray, y: np.ndarray, axis: int = -1) -> Any:
        px = counts[np.moveaxis(x, axis, -1).astype(np.int64)].sum(axis=-2)
        py = counts[np.moveaxis(y, axis, -1).astype(np.int64)].sum(axis=-2)
        return jensenshannon(px, py, axis=-1, base=2)

    res = permutation_test(
        (np.asarray(a, dtype=float), np.asarray(b, dtype=float)),
        distance,
        vectorized=True,
        n_resamples=n_resamples,
        alternative="greater",
        rng=np.random.default_rng(random_state),
    )
    return ShapeTest(distance=float(res.statistic), p_value=float(res.pvalue))


def distinct_shapes(
    coarse: np.ndarray,
    fine: np.ndarray,
    counts: np.ndarray,
    *,
    final: np.ndarray | None = None,
    random_state: int = 0,
) -> list[dict[str, Any]]:
    """The pairs of ``fine`` clusters that ``coarse`` merges, each tested for a shape difference.

    Within each coarse cluster, its members are grouped by their fine cluster; every
    pair of groups of at least :data:`MIN_GROUP` combinations is tested, and is
    ``distinct`` when its p-value is below :data:`ALPHA` divided by the number of pairs
    and (given ``final``, another labelling of the same combinations) the two groups'
    most common ``final`` labels are the same: a pair ``final`` already keeps apart is
    not merged there (``merged`` says which).

    Example:
        >>> c = np.array([[10, 0], [9, 1]] * 4 + [[0, 10], [1, 9]] * 4)
        >>> out = distinct_shapes(np.zeros(16, int), np.repeat([0, 1], 8), c)
        >>> [(r["cluster"], r["sizes"], r["distinct"]) for r in out]
        [(0, [8, 8], True)]
    """
    pairs: list[tuple[int, np.ndarray, np.ndarray]] = []
    for c in np.unique(coarse):
        inside = coarse == c
        groups = [
            np.flatnonzero(inside & (fine == f))
            for f in np.unique(fine[inside])
            if int((inside & (fine == f)).sum()) >= MIN_GROUP
        ]
        pairs.extend((int(c), g, h) for g, h in combinations(groups, 2))
    out = []
    level = ALPHA / max(len(pairs), 1)
    for c, g, h in pairs:
        t = shape_test(counts, g, h, random_state=random_state)
        if t.p_value < 10 * level and 1 / (N_RESAMPLES + 1) > level / 5:
            # near the corrected level and too few permutations to go below it: more of them
            more = int(np.ceil(5 / level))
            t = shape_test(counts, g, h, random_state=random_state, n_resamples=more)
        merged = final is None or _mode(final[g]) == _mode(final[h])
        out.append(
            {
                "cluster": c,
                "sizes": [int(g.size), int(h.size)],
                "distance": t.distance,
                "p_value": t.p_value,
                "merged": merged,
                "distinct": merged and t.p_value < ALPHA / len(pairs),
            }
        )
    return out


def _mode(labels: np.ndarray) -> int:
    values, n = np.unique(labels, return_counts=True)
    return int(values[np.argmax(n)])
