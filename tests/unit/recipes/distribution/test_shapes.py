"""The shape test: blind to location and scale, sharp on shape, permuting combinations."""

from __future__ import annotations

import numpy as np

from opslens.recipes.distribution.shapes import distinct_shapes, shape_test, standardized_counts


def _skewed(rng: np.random.Generator, n: int, loc: float, scale: float) -> np.ndarray:
    return loc + scale * rng.gamma(2.0, 1.0, n)


def _bimodal(rng: np.random.Generator, n: int) -> np.ndarray:
    upper = rng.random(n) < 0.5
    return np.where(upper, rng.normal(42, 3, n), rng.normal(18, 2, n))


def test_location_and_scale_alone_are_not_a_shape() -> None:
    rng = np.random.default_rng(0)
    slow = [_skewed(rng, 120, 20.0, 9.0) for _ in range(12)]
    fast = [_skewed(rng, 120, 6.0, 3.0) for _ in range(12)]  # 3 times faster, same shape
    counts = standardized_counts(slow + fast)
    assert shape_test(counts, np.arange(12), np.arange(12, 24)).p_value > 0.05


def test_a_small_bimodal_group_differs_from_its_skewed_neighbour() -> None:
    """9 combinations of ~13 later rows each (the ferry routes) against 40 skewed ones."""
    rng = np.random.default_rng(1)
    skewed = [_skewed(rng, 40, 6.0, 7.0) for _ in range(40)]
    ferry = [_bimodal(rng, 13) for _ in range(9)]
    counts = standardized_counts(skewed + ferry)
    t = shape_test(counts, np.arange(40), np.arange(40, 49))
    assert t.p_value < 0.001 and t.distance > 0.2
    # a cluster holding both is flagged; one the final clustering keeps apart is not
    coarse = np.zeros(49, dtype=int)
    fine = np.repeat([0, 1], [40, 9])
    [merged] = distinct_shapes(coarse, fine, counts)
    assert merged["distinct"] and merged["sizes"] == [40, 9]
    [apart] = distinct_shapes(coarse, fine, counts, final=fine)
    assert not apart["merged"] and not apart["distinct"]


def test_one_shape_at_jittered_scales_is_not_distinct() -> None:
    """Two groups of 4 combinations of one heavy-tailed shape, each at its own scale."""
    rng = np.random.default_rng(2)
    values = [rng.normal(0, s, 500) ** 3 for s in rng.uniform(0.8, 1.2, 8)]
    counts = standardized_counts(values)
    t = shape_test(counts, np.arange(4), np.arange(4, 8))
    assert t.p_value > 0.05  # 8 combinations: the smallest p-value possible is 1/35
    # groups below the minimum size are not tested at all
    assert distinct_shapes(np.zeros(8, dtype=int), np.repeat([0, 1], [6, 2]), counts) == []


def test_many_pairs_still_reach_the_corrected_level() -> None:
    """7 shapes in one cluster: 21 pairs, Bonferroni level 0.01/21 below 1/2000 (the default floor)."""
    rng = np.random.default_rng(3)
    shapes = rng.dirichlet(np.ones(10) * 0.5, size=7)
    counts = np.vstack([rng.multinomial(400, shapes[g]) for g in range(7) for _ in range(8)])
    tests = distinct_shapes(np.zeros(56, dtype=int), np.repeat(np.arange(7), 8), counts)
    assert len(tests) == 21
    assert all(t["distinct"] for t in tests)
    assert all(t["p_value"] < 0.01 / 21 for t in tests)
