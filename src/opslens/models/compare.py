"""Paired comparison of a model and a baseline on the same held-out units.

:func:`paired_interval` gives the mean per-unit difference (model − baseline) and a
95% paired bootstrap interval of it, resampling *units* (a device, a day, a user:
whatever rows share ``groups``) so correlated rows are not counted as independent;
:func:`paired_p_value` a two-sided sign-flip permutation test of the same difference.
Both are seeded, so the same losses give the same figures.

Example:
    >>> import numpy as np
    >>> model = np.array([1.0, 1.0, 2.0, 1.0, 0.5, 1.0])
    >>> base = model + 1.0
    >>> diff, (lo, hi) = paired_interval(model, base)
    >>> diff, lo, hi
    (-1.0, -1.0, -1.0)
    >>> paired_p_value(model, base) < 0.05
    True
"""

from __future__ import annotations

import numpy as np

from opslens.errors import DataError

__all__ = ["paired_interval", "paired_p_value"]


def _unit_differences(
    model: np.ndarray, baseline: np.ndarray, groups: np.ndarray | None
) -> np.ndarray:
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
        return d
    g = np.asarray(groups)[keep]
    _, inverse = np.unique(g, return_inverse=True)
    sums = np.bincount(inverse, weights=d)
    counts = np.bincount(inverse)
    out: np.ndarray = sums / counts
    return out


def paired_interval(
    model: np.ndarray,
    baseline: np.ndarray,
    *,
    groups: np.ndarray | None = None,
    n_boot: int = 1000,
    level: float = 0.95,
    random_state: int = 0,
) -> tuple[float, tuple[float, float]]:
    """Mean of (model − baseline) per unit and its paired bootstrap interval.

    ``model`` and ``baseline`` are per-row scores or losses on the same rows; with
    ``groups`` the rows of a unit are averaged first and units are resampled.
    """
    d = _unit_differences(model, baseline, groups)
    if d.size == 0:
        return float("nan"), (float("nan"), float("nan"))
    rng = np.random.default_rng(random_state)
    idx = rng.integers(0, d.size, size=(n_boot, d.size))
    means = d[idx].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return float(d.mean()), (float(lo), float(hi))


def paired_p_value(
    model: np.ndarray,
    baseline: np.ndarray,
    *,
    groups: np.ndarray | None = None,
    n_perm: int = 2000,
    random_state: int = 0,
) -> float:
    """Two-sided sign-flip permutation p-value of the mean paired difference (per unit)."""
    d = _unit_differences(model, baseline, groups)
    if d.size == 0:
        return float("nan")
    observed = abs(d.mean())
    rng = np.random.default_rng(random_state)
    signs = rng.choice(np.array([-1.0, 1.0]), size=(n_perm, d.size))
    flipped = np.abs((signs * d).mean(axis=1))
    return float((1 + np.sum(flipped >= observed - 1e-15)) / (n_perm + 1))
