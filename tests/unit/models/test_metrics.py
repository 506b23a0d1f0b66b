"""classification_metrics: exact numbers, binary and missing-class cases, agreement with sklearn."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from opslens.errors import DataError
from opslens.models.metrics import ClassificationMetrics, classification_metrics


def test_exact_multiclass_numbers() -> None:
    y = np.array([0, 0, 1, 1, 2, 2])
    proba = np.array(
        [
            [0.7, 0.2, 0.1],
            [0.3, 0.6, 0.1],  # wrong: predicted 1
            [0.1, 0.8, 0.1],
            [0.2, 0.5, 0.3],
            [0.1, 0.1, 0.8],
            [0.2, 0.2, 0.6],
        ]
    )
    m = classification_metrics(y, proba, [0, 1, 2])
    assert isinstance(m, ClassificationMetrics)
    assert m.n == 6 and m.classes == [0, 1, 2]
    assert m.accuracy == pytest.approx(5 / 6)
    assert m.confusion == [[1, 1, 0], [0, 2, 0], [0, 0, 2]]
    # per-class AUROC: class 0 -> 1.0, class 1 -> 0.875, class 2 -> 1.0; equal weights
    assert m.auroc_weighted == pytest.approx((1.0 + 0.875 + 1.0) / 3)
    assert m.auroc_weighted == pytest.approx(
        roc_auc_score(y, proba, multi_class="ovr", average="weighted")
    )
    assert m.per_class["0"] == pytest.approx(
        {"precision": 1.0, "recall": 0.5, "f1-score": 2 / 3, "support": 2}
    )
    assert m.per_class["1"]["precision"] == pytest.approx(2 / 3)
    assert m.per_class["1"]["support"] == 2 and isinstance(m.per_class["1"]["support"], int)
    d = json.loads(json.dumps(m.to_dict()))
    assert d["confusion"] == m.confusion and d["auroc_weighted"] == m.auroc_weighted


def test_support_weights_the_auroc() -> None:
    rng = np.random.default_rng(0)
    y = rng.choice(["a", "b", "c"], size=400, p=[0.6, 0.3, 0.1])
    proba = rng.dirichlet([1, 1, 1], size=400)
    proba[y == "a", 0] += 1.0
    proba /= proba.sum(axis=1, keepdims=True)
    m = classification_metrics(y, proba, ["a", "b", "c"])
    per_class = [roc_auc_score(y == c, proba[:, j]) for j, c in enumerate("abc")]
    weights = [np.sum(y == c) for c in "abc"]
    assert m.auroc_weighted == pytest.approx(np.average(per_class, weights=weights))


def test_binary_uses_the_second_class() -> None:
    y = np.array(["fast", "slow", "slow", "fast", "slow"])
    proba = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.9, 0.1], [0.2, 0.8]])
    m = classification_metrics(y, proba, ["fast", "slow"])
    assert m.auroc_weighted == pytest.approx(1.0)
    assert m.accuracy == pytest.approx(0.8)
    assert m.confusion == [[2, 0], [1, 2]]
    assert m.classes == ["fast", "slow"]


def test_class_absent_from_held_out_rows() -> None:
    y = np.array([0, 0, 1, 1])
    proba = np.array([[0.6, 0.3, 0.1], [0.5, 0.2, 0.3], [0.2, 0.7, 0.1], [0.4, 0.5, 0.1]])
    m = classification_metrics(y, proba, [0, 1, 2])
    assert m.auroc_weighted == pytest.approx(1.0)  # classes 0 and 1 separate perfectly
    assert m.confusion[2] == [0, 0, 0]
    assert m.per_class["2"]["support"] == 0
    single = classification_metrics(np.array([1, 1]), proba[:2], [0, 1, 2])
    assert single.auroc_weighted is None


def test_bad_shapes_and_labels() -> None:
    with pytest.raises(DataError, match=r"shape \(2, 2\), expected \(2, 3\)"):
        classification_metrics(np.array([0, 1]), np.ones((2, 2)) / 2, [0, 1, 2])
    with pytest.raises(DataError, match=r"labels \[5\]"):
        classification_metrics(np.array([0, 5]), np.ones((2, 2)) / 2, [0, 1])
    with pytest.raises(DataError, match="no held-out rows"):
        classification_metrics(np.array([], dtype=int), np.ones((0, 2)), [0, 1])


def test_distribution_scores_against_direct_computation() -> None:
    from opslens.models.metrics import crps_histogram, hdr_covers, log_score

    rng = np.random.default_rng(0)
    edges = np.sort(rng.uniform(0, 10, 7))
    p = rng.dirichlet(np.ones(6), 40)
    y = rng.uniform(-2, 12, 40)
    bins = np.clip(np.searchsorted(edges[1:-1], y, side="right"), 0, 5)
    floored = np.maximum(p, 1e-4)
    floored /= floored.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(log_score(p, bins), np.log(floored[np.arange(40), bins]))
    xs = np.linspace(-3, 13, 400_001)
    for i in range(3):  # the exact CRPS equals the integral done numerically
        cdf = np.interp(xs, edges, np.concatenate([[0.0], np.cumsum(p[i])]))
        direct = np.trapezoid((cdf - (xs >= y[i])) ** 2, xs)
        assert crps_histogram(p[i : i + 1], edges, y[i : i + 1])[0] == pytest.approx(
            direct, abs=1e-4
        )
    # many draws from the predicted histogram: its HDR covers its nominal share
    one = rng.dirichlet(np.ones(6))
    b = rng.choice(6, 20_000, p=one)
    draws = rng.uniform(edges[b], edges[b + 1])
    covered = hdr_covers(np.tile(one, (draws.size, 1)), edges, draws, 0.7)
    assert abs(covered.mean() - 0.7) <= 0.01
