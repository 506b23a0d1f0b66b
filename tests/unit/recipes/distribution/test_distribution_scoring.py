"""The distribution recipe's held-out scoring: the shrinkage strength and the baseline comparisons.

Planted: combinations whose true distribution is their pattern (own histograms of a few
rows are noise: the pattern should win), or far from it with many rows (the own histogram
should win); a known per-combination gain of the model over a baseline.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from opslens.recipes.distribution.evaluate import (
    RowScores,
    baseline_scores,
    choose_strength,
    row_scores,
)

EDGES = {"all": np.linspace(0.0, 10.0, 11)}


def _own(rng: np.random.Generator, truth: np.ndarray, n_rows: int) -> np.ndarray:
    counts = rng.multinomial(n_rows, truth)
    out: np.ndarray = counts / n_rows
    return out


def _case(
    rng: np.random.Generator, *, own_rows: int, own_is_truth: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """200 combinations × 20 later rows: own histograms, their row counts, the pattern, bins."""
    pattern = np.full(10, 0.1)
    pattern_rows, own_rows_list, bins = [], [], []
    for _ in range(200):
        truth = rng.dirichlet(np.full(10, 0.5)) if own_is_truth else pattern
        own = _own(rng, truth, own_rows)
        later = rng.choice(10, size=20, p=truth)
        own_rows_list += [own] * 20
        pattern_rows += [pattern] * 20
        bins += later.tolist()
    n = np.full(len(bins), float(own_rows))
    return np.array(own_rows_list), n, np.array(pattern_rows), np.array(bins)


def test_few_rows_per_combination_shrink_to_the_pattern() -> None:
    own, n, pattern, bins = _case(np.random.default_rng(0), own_rows=5, own_is_truth=False)
    strength, scan = choose_strength(
        own, n, pattern, bins=bins, segment=np.full(bins.size, "all"), edges=EDGES
    )
    assert strength >= 300 or math.isinf(strength)
    by = {r["strength"]: r["log_score"] for r in scan}
    assert by[math.inf] == pytest.approx(math.log(0.1))  # the pattern is the truth
    assert by[math.inf] - by[0.0] > 3.0  # an own histogram of 5 rows floors unseen bins


def test_many_rows_of_a_distinct_combination_keep_its_own_histogram() -> None:
    own, n, pattern, bins = _case(np.random.default_rng(1), own_rows=5000, own_is_truth=True)
    strength, scan = choose_strength(
        own, n, pattern, bins=bins, segment=np.full(bins.size, "all"), edges=EDGES
    )
    assert strength <= 30
    by = {r["strength"]: r["log_score"] for r in scan}
    assert by[strength] - by[math.inf] > 0.3


def test_row_scores_are_those_of_each_row_on_its_segment() -> None:
    edges = {"x": np.array([0.0, 1.0, 2.0]), "y": np.array([0.0, 10.0, 20.0, 30.0])}
    pred = np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
    r = row_scores(
        pred,
        observed=np.array([0.5, 25.0]),
        bins=np.array([0, 2]),
        segment=np.array(["x", "y"]),
        edges=edges,
        coverages=[0.5],
    )
    assert r.log.tolist() == pytest.approx([math.log(0.5), math.log(0.5)])
    assert r.summary()["log_score"] == pytest.approx(math.log(0.5))
    # uniform on [0, 2] at 0.5: E|X - 0.5| - E|X - X'| / 2 = 0.625 - 1/3
    assert r.crps[0] == pytest.approx(0.625 - 1 / 3)
    assert r.covered[0.5].tolist() == [True, True]


def test_baseline_scores_pair_the_rows_and_resample_combinations() -> None:
    rng = np.random.default_rng(2)
    groups = np.repeat(np.arange(40), 25)
    base = rng.normal(-2.5, 0.5, groups.size)
    gain = np.repeat(rng.normal(0.2, 0.05, 40), 25)  # a per-combination gain of 0.2 nats
    model = RowScores(log=base + gain, crps=np.full(groups.size, 3.0), covered={})
    baseline = RowScores(log=base, crps=np.full(groups.size, 3.5), covered={})
    log, crps = baseline_scores(
        model, {"own": ("its own histogram", baseline)}, groups=groups, unit="min", random_state=7
    )
    assert (log.metric, log.gate, log.higher_is_better, log.n) == ("log_score", True, True, 1000)
    assert (crps.metric, crps.gate, crps.higher_is_better) == ("crps", False, False)
    assert crps.metric_label == "mean CRPS in min" and crps.model_wins
    assert log.model - log.value == pytest.approx(gain.mean())
    assert log.interval is not None and 0.17 < log.interval[0] < 0.2 < log.interval[1] < 0.23
    assert log.p_value is not None and log.p_value < 0.01
    again = baseline_scores(
        model, {"own": ("its own histogram", baseline)}, groups=groups, unit="min", random_state=7
    )
    assert again[0].interval == log.interval  # seeded
    # two combinations, one gaining and one losing: the interval spans both, no win is certain
    two = np.repeat([0, 1], 500)
    split = RowScores(log=base + np.where(two == 0, 0.3, -0.2), crps=model.crps, covered={})
    [wide, _] = baseline_scores(split, {"own": ("own", baseline)}, groups=two)
    assert wide.interval is not None and wide.interval[0] < 0 < wide.interval[1]
