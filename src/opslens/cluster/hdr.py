"""Highest density regions (HDR) of a one-dimensional distribution.

The ``coverage`` HDR is the smallest set of intervals holding ``coverage`` of
the probability: the region where the density is above a threshold chosen so
the region's mass is ``coverage`` (Hyndman, 1996, "Computing and graphing
highest density regions"). A multimodal shape gives several intervals.

Two estimators: :func:`highest_density_regions` from a Gaussian KDE of raw
values evaluated on a grid, and :func:`hdr_from_histogram` when only a
histogram is known (whole bins, densest first).

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = np.concatenate([rng.normal(0, 1, 2000), rng.normal(10, 1, 2000)])
    >>> len(highest_density_regions(x, 0.9))
    2
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import gaussian_kde

from opslens.errors import DataError

__all__ = [
    "hdr_from_density",
    "hdr_from_histogram",
    "highest_density_regions",
    "kde_on_grid",
    "regions_above",
]


def _check_coverage(coverage: float) -> None:
    if not 0.0 < coverage < 1.0:
        raise DataError(f"HDR coverage {coverage} is not in (0, 1)", fix="use e.g. 0.5 or 0.9")


def kde_on_grid(
    values: np.ndarray,
    *,
    grid: int = 512,
    bandwidth: str | float = "scott",
    max_samples: int = 20_000,
    random_state: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Evaluate a Gaussian KDE of ``values`` on an even grid; return (x, density).

    The grid spans the data plus three bandwidths either side. More than
    ``max_samples`` values are subsampled (seeded) to bound the cost.

    Example:
        >>> x, d = kde_on_grid(np.array([0.0, 1.0, 2.0]), grid=5)
        >>> x.shape, bool(d.argmax() == 2)
        ((5,), True)
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size < 2 or np.ptp(v) == 0.0:
        raise DataError(
            f"a density needs at least two distinct finite values, got {v.size} value(s)",
            fix="check the target column of this cluster",
        )
    if v.size > max_samples:
        v = np.random.default_rng(random_state).choice(v, size=max_samples, replace=False)
    kde = gaussian_kde(v, bw_method=bandwidth)
    bw = float(np.sqrt(kde.covariance[0, 0]))
    xs = np.linspace(v.min() - 3.0 * bw, v.max() + 3.0 * bw, grid)
    return xs, kde(xs)


def _crossing(x0: float, x1: float, f0: float, f1: float, level: float) -> float:
    """Where the line through (x0, f0), (x1, f1) reaches ``level``."""
    if f1 == f0:
        return 0.5 * (x0 + x1)
    return x0 + (level - f0) * (x1 - x0) / (f1 - f0)


def regions_above(xs: np.ndarray, density: np.ndarray, level: float) -> list[tuple[float, float]]:
    """Intervals of the grid where ``density >= level``, ends interpolated linearly.

    Example:
        >>> xs = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
        >>> regions_above(xs, np.array([0.0, 2.0, 0.0, 2.0, 0.0]), 1.0)
        [(0.5, 1.5), (2.5, 3.5)]
    """
    above = density >= level
    padded = np.concatenate([[False], above, [False]]).astype(np.int8)
    starts = np.flatnonzero(np.diff(padded) == 1)
    stops = np.flatnonzero(np.diff(padded) == -1) - 1
    out: list[tuple[float, float]] = []
    for i, j in zip(starts.tolist(), stops.tolist(), strict=True):
        lo = (
            float(xs[i])
            if i == 0
            else _crossing(xs[i - 1], xs[i], density[i - 1], density[i], level)
        )
        last = xs.size - 1
        hi = (
            float(xs[j])
            if j == last
            else _crossing(xs[j], xs[j + 1], density[j], density[j + 1], level)
        )
        out.append((float(lo), float(hi)))
    return out


def highest_density_regions(
    values: np.ndarray,
    coverage: float,
    *,
    grid: int = 512,
    bandwidth: str | float = "scott",
    max_samples: int = 20_000,
    random_state: int = 0,
) -> list[tuple[float, float]]:
    """The ``coverage`` HDR of ``values`` from a Gaussian KDE, as sorted (lo, hi) intervals.

    The threshold is the density level at which the grid points above it hold
    ``coverage`` of the KDE's mass on the grid.

    Example:
        >>> rng = np.random.default_rng(1)
        >>> [(round(lo, 1), round(hi, 1)) for lo, hi in highest_density_regions(rng.normal(0, 1, 5000), 0.9)]
        [(-1.7, 1.6)]
    """
    _check_coverage(coverage)
    xs, dens = kde_on_grid(
        values, grid=grid, bandwidth=bandwidth, max_samples=max_samples, random_state=random_state
    )
    return hdr_from_density(xs, dens, coverage)


def hdr_from_density(
    xs: np.ndarray, density: np.ndarray, coverage: float
) -> list[tuple[float, float]]:
    """The ``coverage`` HDR of a density evaluated on an even grid ``xs``.

    Use it to get several coverages (and the mode) from one KDE evaluation.

    Example:
        >>> xs = np.linspace(-1.0, 1.0, 5)
        >>> hdr_from_density(xs, np.array([0.0, 1.0, 2.0, 1.0, 0.0]), 0.6)
        [(-0.5, 0.5)]
    """
    _check_coverage(coverage)
    d = np.asarray(density, dtype=float)
    order = np.argsort(d)[::-1]
    mass = np.cumsum(d[order])
    mass /= mass[-1]
    k = int(np.searchsorted(mass, coverage))
    level = float(d[order[min(k, d.size - 1)]])
    return regions_above(np.asarray(xs, dtype=float), d, level)


def hdr_from_histogram(
    probabilities: Sequence[float] | np.ndarray, edges: np.ndarray, coverage: float
) -> list[tuple[float, float]]:
    """The ``coverage`` HDR of a histogram: densest whole bins until ``coverage``, merged.

    Density is probability over bin width, so narrow quantile bins are handled.

    Example:
        >>> p = np.array([0.45, 0.05, 0.05, 0.45])
        >>> hdr_from_histogram(p, np.array([0.0, 1.0, 2.0, 3.0, 4.0]), 0.8)
        [(0.0, 1.0), (3.0, 4.0)]
    """
    _check_coverage(coverage)
    p = np.asarray(probabilities, dtype=float)
    e = np.asarray(edges, dtype=float)
    if e.ndim != 1 or e.size != p.size + 1 or not np.all(np.isfinite(e)) or np.any(np.diff(e) <= 0):
        raise DataError(
            f"{p.size} probabilities need {p.size + 1} finite, increasing edges, got {e.size}",
            fix="pass the edges the histogram was built with",
        )
    total = p.sum()
    if not np.isfinite(total) or total <= 0 or np.any(p < 0):
        raise DataError(
            "histogram probabilities must be non-negative with a positive sum",
            fix="check the histogram",
        )
    p = p / total
    density = p / np.diff(e)
    order = np.argsort(-density, kind="stable")
    k = int(np.searchsorted(np.cumsum(p[order]), coverage - 1e-12))
    chosen = np.zeros(p.size, dtype=bool)
    chosen[order[: k + 1]] = True
    padded = np.concatenate([[False], chosen, [False]]).astype(np.int8)
    starts = np.flatnonzero(np.diff(padded) == 1)
    stops = np.flatnonzero(np.diff(padded) == -1)
    return [
        (float(e[i]), float(e[j])) for i, j in zip(starts.tolist(), stops.tolist(), strict=True)
    ]
