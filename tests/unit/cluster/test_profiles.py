"""DistributionClusterer (estimator contract, K choice, stable ids) and cluster profiles."""

from __future__ import annotations

import pickle

import numpy as np
import polars as pl
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import adjusted_rand_score

from opslens.cluster.kselect import KChoice
from opslens.cluster.profiles import DistributionClusterer, cluster_profiles, describe_profile
from opslens.errors import DataError


def planted_histograms(seed: int = 0, per_shape: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Noisy histograms around three shapes (peak left, peak right, two peaks), shuffled."""
    rng = np.random.default_rng(seed)
    shapes = np.array(
        [
            [0.6, 0.3, 0.1, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.1, 0.2, 0.3, 0.4],
            [0.4, 0.1, 0.0, 0.0, 0.1, 0.4],
        ]
    )
    truth = np.repeat(np.arange(3), per_shape)
    X = np.clip(shapes[truth] + rng.normal(0, 0.03, (truth.size, 6)), 0, None)
    X /= X.sum(axis=1, keepdims=True)
    order = rng.permutation(truth.size)
    return X[order], truth[order]


def test_chooses_three_and_recovers_the_shapes() -> None:
    X, truth = planted_histograms()
    model = DistributionClusterer(k_min=2, k_max=8).fit(X)
    assert model.n_clusters_ == 3
    assert isinstance(model.k_choice_, KChoice) and model.k_choice_.k == 3
    assert [c["k"] for c in model.k_choice_.curve] == [2, 3, 4, 5, 6, 7, 8]
    assert adjusted_rand_score(truth, model.labels_) == 1.0
    assert model.cluster_centers_.shape == (3, 6)
    assert np.array_equal(model.predict(X), model.labels_)
    assert np.array_equal(model.fit_predict(X), model.labels_)


def test_ids_ordered_by_median_and_stable_under_row_order() -> None:
    X, truth = planted_histograms()
    model = DistributionClusterer(n_clusters=3).fit(X)
    assert model.k_choice_ is None
    # median bin: left peak (~0.5) < two peaks (~2.5) < right peak (~3.8)
    mapping = {int(t): int(lab) for t, lab in zip(truth, model.labels_, strict=True)}
    assert mapping == {0: 0, 2: 1, 1: 2}
    perm = np.random.default_rng(9).permutation(len(X))
    other = DistributionClusterer(n_clusters=3, random_state=7).fit(X[perm])
    assert np.array_equal(other.labels_, model.labels_[perm])
    assert np.allclose(other.cluster_centers_, model.cluster_centers_)


def test_estimator_contract() -> None:
    X, _ = planted_histograms()
    X_before = X.copy()
    model = DistributionClusterer(n_clusters=None, k_max=5, random_state=3)
    with pytest.raises(NotFittedError):
        model.predict(X)
    assert clone(model).get_params() == model.get_params()
    a = model.fit(X)
    assert a is model and np.array_equal(X, X_before)
    b = clone(model).fit(X)
    assert np.array_equal(a.labels_, b.labels_)
    restored = pickle.loads(pickle.dumps(a))
    assert np.array_equal(restored.predict(X), a.labels_)


def test_bad_input() -> None:
    # the shape of X is scikit-learn's to check (its own message, a ValueError)
    with pytest.raises(ValueError, match="Expected 2D array, got 1D array"):
        DistributionClusterer().fit(np.ones(5))
    with pytest.raises(ValueError, match="Input X contains NaN"):
        DistributionClusterer().fit(np.array([[1.0, np.nan], [0.0, 1.0]]))
    with pytest.raises(DataError, match="n_clusters=9"):
        DistributionClusterer(n_clusters=9).fit(np.eye(4))
    with pytest.raises(DataError, match="identical"):
        DistributionClusterer().fit(np.ones((6, 3)))


def _profile_frame() -> pl.DataFrame:
    # cluster 0: values 1..100 in two combinations; cluster 1: bimodal
    rng = np.random.default_rng(0)
    bimodal = np.concatenate([rng.normal(20, 1, 2_000), rng.normal(60, 1, 2_000)])
    return pl.DataFrame(
        {
            "y": np.concatenate([np.arange(1.0, 101.0), bimodal]),
            "cl": [0] * 100 + [1] * 4_000,
            "comb": ["a"] * 50 + ["b"] * 50 + ["c"] * 2_000 + ["d"] * 1_000 + ["e"] * 1_000,
        }
    )


def test_cluster_profiles_exact_numbers() -> None:
    df = _profile_frame()
    edges = np.array([0.0, 25.0, 50.0, 75.0, 100.0])
    prof = cluster_profiles(df, target="y", cluster="cl", edges=edges)
    assert prof["cluster"].to_list() == [0, 1]
    assert prof["n_combinations"].to_list() == [2, 3]
    assert prof["n_rows"].to_list() == [100, 4_000]
    assert prof["share_rows"].to_list() == pytest.approx([100 / 4_100, 4_000 / 4_100])
    zero = prof.row(0, named=True)
    # combination a = 1..50 -> [24, 25, 1, 0] / 50; b = 51..100 -> [0, 0, 24, 26] / 50
    assert zero["mean_histogram"] == pytest.approx([0.24, 0.25, 0.25, 0.26])
    assert [zero[k] for k in ("p05", "p25", "p50", "p75", "p95")] == pytest.approx(
        [5.95, 25.75, 50.5, 75.25, 95.05]
    )
    assert zero["mean"] == 50.5 and zero["median"] == 50.5
    assert zero["skewness"] == pytest.approx(0.0, abs=1e-12)
    assert zero["n_hdr_intervals_90"] == 1
    one = prof.row(1, named=True)
    assert one["n_hdr_intervals_90"] == 2 and one["n_hdr_intervals_50"] == 2
    (a, b), (c, d) = one["hdr_90"]
    assert a < 20 < b < 40 < c < 60 < d
    assert one["mode"] == pytest.approx(20, abs=1.0) or one["mode"] == pytest.approx(60, abs=1.0)
    assert prof.schema["hdr_90"] == pl.List(pl.List(pl.Float64))
    assert prof.schema["mean_histogram"] == pl.List(pl.Float64)


def test_cluster_profiles_options_and_errors() -> None:
    df = _profile_frame()
    edges = np.linspace(0, 100, 5)
    prof = cluster_profiles(df, target="y", cluster="cl", edges=edges, coverages=(0.8,), comb=None)
    assert "hdr_80" in prof.columns and "hdr_90" not in prof.columns
    assert prof["n_combinations"].to_list() == [None, None]
    const = pl.DataFrame({"y": [5.0] * 4 + [1.0, 2.0], "cl": [0] * 4 + [1] * 2, "comb": ["a"] * 6})
    p = cluster_profiles(const, target="y", cluster="cl", edges=edges)
    assert p.row(0, named=True)["hdr_90"] == [[5.0, 5.0]] and p["mode"][0] == 5.0
    with pytest.raises(DataError, match=r"\['nope'\]"):
        cluster_profiles(df, target="nope", cluster="cl", edges=edges)


def test_describe_profile_sentences() -> None:
    row = {"cluster": 2, "hdr_90": [[11.2, 19.4], [40.1, 52.0]], "median": 24.0, "skewness": 0.8}
    assert describe_profile(row, unit="min", noun="trips") == (
        "Cluster 2: bimodal, 90% of trips fall in 11–19 or 40–52 min; median 24 min; right-skewed."
    )
    one = {"cluster": 0, "hdr_90": [[0.52, 3.4]], "median": 1.25, "skewness": -0.1}
    assert describe_profile(one) == (
        "Cluster 0: unimodal, 90% of values fall in 0.52–3.4; median 1.2; roughly symmetric."
    )
    three = {"cluster": 1, "hdr_90": [[0, 1], [2, 3], [4, 5]], "median": None, "skewness": -2.0}
    assert describe_profile(three).startswith("Cluster 1: multimodal (3 modes)")
    assert describe_profile(three).endswith("left-skewed.")


def test_smallest_k_within_one_standard_error() -> None:
    from opslens.cluster.kselect import smallest_within_one_se

    curve = [
        {"k": 2.0, "log_score": -2.0, "log_score_se": 0.02},
        {"k": 3.0, "log_score": -1.52, "log_score_se": 0.02},
        {"k": 4.0, "log_score": -1.50, "log_score_se": 0.02},
        {"k": 5.0, "log_score": -1.49, "log_score_se": 0.02},
    ]
    k, reason = smallest_within_one_se(curve)
    assert k == 4 and "within one standard error" in reason
    assert smallest_within_one_se(curve[:2])[0] == 3
