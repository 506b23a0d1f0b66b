"""Highest density regions: unimodal, bimodal, histogram-based, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from opslens.cluster.hdr import (
    hdr_from_density,
    hdr_from_histogram,
    highest_density_regions,
    kde_on_grid,
    regions_above,
)
from opslens.errors import DataError


def test_unimodal_normal_90_is_mean_plus_minus_1645_sigma() -> None:
    rng = np.random.default_rng(3)
    mu, sigma = 20.0, 4.0
    hdr = highest_density_regions(rng.normal(mu, sigma, 20_000), 0.9)
    assert len(hdr) == 1
    lo, hi = hdr[0]
    assert lo == pytest.approx(mu - 1.645 * sigma, rel=0.05)
    assert hi == pytest.approx(mu + 1.645 * sigma, rel=0.05)
    assert (hi - lo) == pytest.approx(2 * 1.645 * sigma, rel=0.05)
    (lo50, hi50) = highest_density_regions(rng.normal(mu, sigma, 20_000), 0.5)[0]
    assert (hi50 - lo50) == pytest.approx(2 * 0.6745 * sigma, rel=0.05)


def test_well_separated_bimodal_has_two_intervals() -> None:
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(15, 2, 5_000), rng.normal(45, 3, 5_000)])
    hdr = highest_density_regions(x, 0.9)
    assert len(hdr) == 2
    (a, b), (c, d) = hdr
    assert a < 15 < b < 30 < c < 45 < d
    assert len(highest_density_regions(x, 0.5)) == 2
    assert len(highest_density_regions(x, 0.99)) == 2


def test_skewed_hdr_is_shifted_toward_the_mode() -> None:
    rng = np.random.default_rng(1)
    x = rng.gamma(2.0, 10.0, 20_000)  # mode 10, median ~16.8
    ((lo, hi),) = highest_density_regions(x, 0.5)
    assert lo < 10 < hi and hi < np.median(x) + 5
    # the HDR is the shortest region: shorter than the central 50% interval
    q25, q75 = np.quantile(x, [0.25, 0.75])
    assert hi - lo < q75 - q25


def test_subsampling_is_seeded() -> None:
    x = np.random.default_rng(2).normal(0, 1, 50_000)
    a = highest_density_regions(x, 0.9, max_samples=5_000, random_state=1)
    b = highest_density_regions(x, 0.9, max_samples=5_000, random_state=1)
    assert a == b


def test_regions_above_and_hdr_from_density_exact() -> None:
    xs = np.arange(7.0)
    d = np.array([0.0, 4.0, 0.0, 0.0, 2.0, 2.0, 0.0])
    assert regions_above(xs, d, 1.0) == [(0.25, 1.75), (3.5, 5.5)]
    assert regions_above(np.arange(3.0), np.array([3.0, 1.0, 3.0]), 2.0) == [(0.0, 0.5), (1.5, 2.0)]
    # mass 4 in the peak (50%), 8 in total
    assert hdr_from_density(xs, d, 0.5) == [(1.0, 1.0)]
    assert hdr_from_density(xs, d, 0.9) == [(0.5, 1.5), (4.0, 5.0)]


def test_hdr_from_histogram_exact() -> None:
    edges = np.array([0.0, 10.0, 20.0, 30.0, 40.0, 50.0])
    p = np.array([0.30, 0.05, 0.05, 0.20, 0.40])
    assert hdr_from_histogram(p, edges, 0.4) == [(40.0, 50.0)]
    assert hdr_from_histogram(p, edges, 0.5) == [(0.0, 10.0), (40.0, 50.0)]
    assert hdr_from_histogram(p, edges, 0.7) == [(0.0, 10.0), (40.0, 50.0)]
    assert hdr_from_histogram(p, edges, 0.9) == [(0.0, 10.0), (30.0, 50.0)]
    assert hdr_from_histogram(p * 10, edges, 0.9) == [(0.0, 10.0), (30.0, 50.0)]  # normalized
    # density, not probability: a narrow bin with less mass can be denser
    narrow = np.array([0.0, 1.0, 10.0, 20.0])
    assert hdr_from_histogram(np.array([0.2, 0.4, 0.4]), narrow, 0.2) == [(0.0, 1.0)]


@pytest.mark.parametrize("coverage", [0.0, 1.0, -0.1, 1.5])
def test_coverage_outside_unit_interval(coverage: float) -> None:
    with pytest.raises(DataError, match="coverage"):
        highest_density_regions(np.arange(10.0), coverage)
    with pytest.raises(DataError, match="coverage"):
        hdr_from_histogram(np.array([0.5, 0.5]), np.array([0.0, 1.0, 2.0]), coverage)


def test_bad_inputs() -> None:
    with pytest.raises(DataError, match="two distinct"):
        kde_on_grid(np.full(10, 3.0))
    with pytest.raises(DataError, match="two distinct"):
        highest_density_regions(np.array([np.nan, 1.0]), 0.9)
    with pytest.raises(DataError, match="3 finite, increasing edges"):
        hdr_from_histogram(np.array([0.5, 0.5]), np.array([0.0, 1.0]), 0.9)
    with pytest.raises(DataError, match="non-negative"):
        hdr_from_histogram(np.array([0.0, 0.0]), np.array([0.0, 1.0, 2.0]), 0.9)


def test_sample_hdr_holds_its_coverage_despite_one_extreme_value() -> None:
    """One extreme value neither widens the 90% region nor leaves the support (issue 14)."""
    from opslens.cluster.hdr import sample_hdr

    rng = np.random.default_rng(3)
    x = np.concatenate([rng.gamma(2.0, 5.0, 3000), [5e4]])
    h = sample_hdr(x, (0.5, 0.9), support=(0.0, None))
    for c in (0.5, 0.9):
        inside = np.zeros(x.size, dtype=bool)
        for lo, hi in h.regions[c]:
            assert 0.0 <= lo <= hi <= x.max()
            inside |= (x >= lo) & (x <= hi)
        assert abs(inside.mean() - c) <= 0.02
        assert h.observed[c] == pytest.approx(inside.mean(), abs=2e-3)
    assert h.n_outliers >= 1 and h.outlier_max == 5e4
    assert h.regions[0.9][-1][1] < 100  # the region is not stretched towards the outlier


def test_sample_hdr_is_independent_of_row_order() -> None:
    from opslens.cluster.hdr import sample_hdr

    x = np.random.default_rng(0).normal(10, 2, 30_000)
    a = sample_hdr(x, (0.9,))
    b = sample_hdr(x[::-1].copy(), (0.9,))
    assert a.regions == b.regions and a.mode == b.mode


def test_sample_hdr_finds_two_modes_and_clips_to_the_support() -> None:
    from opslens.cluster.hdr import sample_hdr

    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(15, 2, 2000), rng.normal(45, 3, 2000)])
    assert len(sample_hdr(x, (0.9,)).regions[0.9]) == 2
    near_zero = np.abs(rng.normal(0.0, 1.0, 2000))
    assert sample_hdr(near_zero, (0.9,), support=(0.0, None)).regions[0.9][0][0] >= 0.0


def test_partial_histogram_hdr_holds_exactly_its_coverage() -> None:
    from opslens.cluster.hdr import hdr_from_histogram

    p = np.array([0.1, 0.5, 0.3, 0.1])
    e = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    regions = hdr_from_histogram(p, e, 0.85, partial=True)
    mass = sum(
        p[i] * max(0.0, min(hi, e[i + 1]) - max(lo, e[i])) for lo, hi in regions for i in range(4)
    )
    assert mass == pytest.approx(0.85)
    assert hdr_from_histogram(p, e, 0.85) == [(0.0, 3.0)]  # whole bins hold 90%
