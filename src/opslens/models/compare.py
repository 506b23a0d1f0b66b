"""Paired comparison of a model and a baseline on the same held-out units.

:func:`paired_interval` gives the mean difference per row (model − baseline) and a
95% paired bootstrap interval of that same mean, resampling whole *units* (a device, a
day, a user: whatever rows share ``groups``) so correlated rows are not counted as
independent (a cluster bootstrap: each resample's figure is its rows' mean, so the
interval is about the figure shown beside it); :func:`paired_p_value` a two-sided
sign-flip permutation test of the same difference, flipping whole units. Both are
seeded, so the same losses give the same figures.

Example:
    >>> import numpy as np
    >>> model = np.array([1.0, 1.0, 2.0, 1.0, 0.5, 1.0])
    >>> base = model + 1.0
    >>> diff, (lo, hi) = paired_interval(model, base)
    >>> diff, lo, hi
    (-1.0, -1.0, -1.0)
    >>> paired_p_value(model, base) < 0.05
    True
    >>> # a large unit weighs by its rows: the interval holds the per-row mean it goes with
    >>> d, (lo, hi) = paired_interval(np.r_[np.zeros(90), np.ones(10)], np.zeros(100),
    ...                               groups=np.r_[np.zeros(90), np.arange(1, 11)])
    >>> round(d, 3), lo <= d <= hi
    (0.1, True)
"""

from __future__ import annotations

import numpy as np

from opslens.errors import DataError

__all__ = ["paired_interval", "paired_p_value"]


def _unit_differences(
    model: np.ndarray, baseline: np.ndarray, groups: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Per unit: the sum of the row differences and the number of rows."""
    a = np.asarray(model, dtype=float)
    b = np.asarray(baseline, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise DataError(
            f"paired scores need two 1-d arrays of one length (got {a.shape} and {b.shape})",
            fix="score the model and the baseline on the same held-out rows",
        )
    keep = np.isfinite(a) & np.isfinite(b)
    d: np.ndarray = a[keep] - b[keep]
    if groups is None:
        return d, np.ones(d.size)
    g = np.asarray(groups)[keep]
    _, inverse = np.unique(g, return_inverse=True)
    sums: np.ndarray = np.bincount(inverse, weights=d)
    counts: np.ndarray = np.bincount(inverse).astype(float)
    return sums, counts


def paired_interval(
    model: np.ndarray,
    baseline: np.ndarray,
    *,
    groups: np.ndarray | None = None,
    n_boot: int = 1000,
    level: float = 0.95,
    random_state: int = 0,
) -> tuple[float, tuple[float, float]]:
    """Mean of (model − baseline) per row and its paired bootstrap interval.

    ``model`` and ``baseline`` are per-row scores or losses on the same rows; with
    ``groups`` whole units are resampled (each resample's mean is over its rows).
    """
    sums, counts = _unit_differences(model, baseline, groups)
    if sums.size == 0:
        return float("nan"), (float("nan"), float("nan"))
    rng = np.random.default_rng(random_state)
    idx = rng.integers(0, sums.size, size=(n_boot, sums.size))
    means = sums[idx].sum(axis=1) / counts[idx].sum(axis=1)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return float(sums.sum() / counts.sum()), (float(lo), float(hi))


def paired_p_value(
    model: np.ndarray,
    baseline: np.ndarray,
    *,
    groups: np.ndarray | None = None,
    n_perm: int = 2000,
    random_state: int = 0,
) -> float:
    """Two-sided sign-flip permutation p-value of the mean paired difference per row, each
    unit's rows flipped together."""
    sums, counts = _unit_differences(model, baseline, groups)
    if sums.size == 0:
        return float("nan")
    total = counts.sum()
    observed = abs(sums.sum()) / total
    rng = np.random.default_rng(random_state)
    signs = rng.choice(np.array([-1.0, 1.0]), size=(n_perm, sums.size))
    flipped = np.abs(signs @ sums) / total
    return float((1 + np.sum(flipped >= observed - 1e-15)) / (n_perm + 1))
