"""Highest density regions (HDR) of a one-dimensional distribution.

The ``coverage`` HDR is the smallest set of intervals holding ``coverage`` of
the probability: the region where the density is above a threshold chosen so
the region's mass is ``coverage`` (Hyndman, 1996, "Computing and graphing
highest density regions"). A multimodal shape gives several intervals.

Three estimators: :func:`sample_hdr` (the robust one the distribution recipe
uses: values far out are set aside and reported, the KDE uses a robust
bandwidth, the density threshold is the sample quantile of the density at the
values themselves, so the stated coverage holds on the values described, and
bounds stay inside the observed range and a declared support);
:func:`highest_density_regions` from a Gaussian KDE of raw values evaluated on
a grid; and :func:`hdr_from_histogram` when only a histogram is known (densest
bins first).

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = np.concatenate([rng.normal(0, 1, 2000), rng.normal(10, 1, 2000)])
    >>> len(highest_density_regions(x, 0.9))
    2
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import gaussian_kde

from opslens.errors import DataError

__all__ = [
    "SampleHDR",
    "far_out",
    "hdr_from_density",
    "hdr_from_histogram",
    "highest_density_regions",
    "kde_on_grid",
    "regions_above",
    "sample_hdr",
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


def _merge(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def hdr_from_histogram(
    probabilities: Sequence[float] | np.ndarray,
    edges: np.ndarray,
    coverage: float,
    *,
    partial: bool = False,
) -> list[tuple[float, float]]:
    """The ``coverage`` HDR of a histogram: densest bins until ``coverage``, merged.

    Density is probability over bin width, so narrow quantile bins are handled.
    With ``partial`` the last bin taken is cut to the mass still needed (from
    the side of a chosen neighbour, the left one when both are), so the region
    holds ``coverage``, not more.

    Example:
        >>> p = np.array([0.45, 0.05, 0.05, 0.45])
        >>> hdr_from_histogram(p, np.array([0.0, 1.0, 2.0, 3.0, 4.0]), 0.8)
        [(0.0, 1.0), (3.0, 4.0)]
        >>> hdr_from_histogram(np.array([0.6, 0.4]), np.array([0.0, 1.0, 2.0]), 0.8, partial=True)
        [(0.0, 1.5)]
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
    cum = np.cumsum(p[order])
    k = int(np.searchsorted(cum, coverage - 1e-12))
    k = min(k, p.size - 1)
    chosen = np.zeros(p.size, dtype=bool)
    chosen[order[: k + 1]] = True
    pieces = [(float(e[i]), float(e[i + 1])) for i in np.flatnonzero(chosen).tolist()]
    last = int(order[k])
    need = coverage - (cum[k - 1] if k else 0.0)
    if partial and p[last] > 0 and need < p[last]:
        left = last > 0 and chosen[last - 1]
        right = last < p.size - 1 and chosen[last + 1]
        width = (e[last + 1] - e[last]) * need / p[last]
        pieces.remove((float(e[last]), float(e[last + 1])))
        if left:
            lo = float(e[last])
        elif right:
            lo = float(e[last + 1] - width)
        else:
            lo = float(0.5 * (e[last] + e[last + 1]) - 0.5 * width)
        pieces.append((lo, lo + float(width)))
    return _merge(pieces)


def far_out(values: np.ndarray, *, k: float = 3.0) -> np.ndarray:
    """Mask of values beyond ``k`` interquartile ranges outside the quartiles (none when IQR is 0).

    Example:
        >>> far_out(np.array([1.0, 2.0, 3.0, 4.0, 100.0])).tolist()
        [False, False, False, False, True]
    """
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return np.zeros(0, dtype=bool)
    q1, q3 = np.quantile(v, [0.25, 0.75])
    iqr = q3 - q1
    if iqr <= 0:
        return np.zeros(v.size, dtype=bool)
    mask: np.ndarray = (v < q1 - k * iqr) | (v > q3 + k * iqr)
    return mask


@dataclass(frozen=True)
class SampleHDR:
    """What :func:`sample_hdr` found: regions per coverage, their coverage on the values, outliers."""

    regions: dict[float, list[tuple[float, float]]]
    observed: dict[float, float]
    mode: float
    n_outliers: int
    outlier_max: float | None
    outlier_min: float | None
    inliers: np.ndarray = field(repr=False)


def _robust_bandwidth(v: np.ndarray) -> float:
    """Silverman's rule with min(std, IQR/1.34): one extreme value cannot widen it."""
    q1, q3 = np.quantile(v, [0.25, 0.75])
    spread = min(float(v.std()), float(q3 - q1) / 1.34) or float(v.std())
    return float(0.9 * spread * v.size ** (-0.2))


def sample_hdr(
    values: np.ndarray,
    coverages: Sequence[float] = (0.5, 0.9),
    *,
    support: tuple[float | None, float | None] = (None, None),
    grid: int = 512,
    max_samples: int = 5_000,
    random_state: int = 0,
) -> SampleHDR:
    """HDRs whose stated coverage holds on ``values``, inside their observed range and ``support``.

    Values :func:`far_out` are set aside (counted, and outside every region);
    a Gaussian KDE with a robust bandwidth is fitted to the rest (a seeded
    sample of at most ``max_samples``, drawn from the sorted values, so row
    order does not matter) and evaluated on a grid spanning the inliers; the
    threshold for coverage ``c`` is the density the top ``c`` share of all
    values reach (Hyndman, 1996), so the region holds ``c`` of the values.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = np.concatenate([rng.exponential(5.0, 4000), [1e4]])
        >>> h = sample_hdr(x, (0.9,), support=(0.0, None))
        >>> h.regions[0.9][0][0] >= 0.0, round(h.observed[0.9], 2), h.n_outliers > 0, h.outlier_max
        (True, 0.9, True, 10000.0)
    """
    for c in coverages:
        _check_coverage(c)
    v = np.sort(np.asarray(values, dtype=float))
    v = v[np.isfinite(v)]
    if v.size == 0:
        raise DataError("no finite values to describe", fix="check the target column")
    out = far_out(v)
    inl = v[~out]
    lo_s, hi_s = support
    lo = max(float(inl[0]), lo_s) if lo_s is not None else float(inl[0])
    hi = min(float(inl[-1]), hi_s) if hi_s is not None else float(inl[-1])
    outliers = v[out]
    extra = {
        "n_outliers": int(out.sum()),
        "outlier_max": float(outliers.max()) if outliers.size else None,
        "outlier_min": float(outliers.min()) if outliers.size else None,
        "inliers": inl,
    }
    if inl.size < 2 or np.ptp(inl) == 0.0 or hi <= lo:
        c0 = float(np.median(inl))
        share = float(np.mean(v == c0))
        return SampleHDR(
            regions={c: [(c0, c0)] for c in coverages},
            observed={c: share for c in coverages},
            mode=c0,
            **extra,  # type: ignore[arg-type]
        )
    fit = inl
    if fit.size > max_samples:
        pick = np.random.default_rng(random_state).choice(fit.size, size=max_samples, replace=False)
        fit = fit[np.sort(pick)]
    bw = _robust_bandwidth(fit)
    kde = gaussian_kde(fit, bw_method=bw / float(fit.std()) if bw > 0 else "scott")
    xs = np.linspace(lo, hi, grid)
    dens = kde(xs)
    at_values = np.interp(v, xs, dens, left=0.0, right=0.0)
    at_values[out] = 0.0
    ranked = np.sort(at_values)[::-1]
    regions: dict[float, list[tuple[float, float]]] = {}
    observed: dict[float, float] = {}
    for c in coverages:
        level = float(ranked[min(int(np.ceil(c * v.size)) - 1, v.size - 1)])
        level = max(level, 1e-300)
        regions[c] = regions_above(xs, dens, level)
        observed[c] = float(np.mean(at_values >= level))
    return SampleHDR(
        regions=regions,
        observed=observed,
        mode=float(xs[int(np.argmax(dens))]),
        **extra,  # type: ignore[arg-type]
    )
