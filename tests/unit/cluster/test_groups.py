"""Behaviour groups: K-Means, DBSCAN and Ward recover planted device groups."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import adjusted_rand_score

from opslens.cluster.groups import BehaviourGroups, find_groups, k_distance_eps, relabel_by_size
from opslens.errors import ConfigError

D = 30


def planted_fleet(seed: int = 0) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """3 Gaussian groups of 60 devices in 30 features, plus 8 far outliers (last rows)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 2.0, size=(3, D))
    X = np.vstack([rng.normal(c, 1.0, size=(60, D)) for c in centres])
    out = rng.normal(centres[np.arange(8) % 3], 1.0)
    for i in range(8):
        cols = rng.choice(D, size=6, replace=False)
        out[i, cols] += 8.0 * rng.choice([-1.0, 1.0], size=6)
    X = np.vstack([X, out])
    truth = np.r_[np.repeat(np.arange(3), 60), np.arange(8) % 3]
    is_out = np.r_[np.zeros(180, bool), np.ones(8, bool)]
    ids = pl.Series("device", [f"dev{i:03d}" for i in range(X.shape[0])])
    fp = pl.DataFrame([ids, *(pl.Series(f"f{j:02d}", X[:, j]) for j in range(D))])
    return fp, truth, is_out


@pytest.fixture(scope="module")
def planted() -> tuple[pl.DataFrame, np.ndarray, np.ndarray, BehaviourGroups]:
    fp, truth, is_out = planted_fleet(0)
    return fp, truth, is_out, find_groups(fp, entity="device", random_state=0)


def test_kmeans_and_ward_recover_three_groups(
    planted: tuple[pl.DataFrame, np.ndarray, np.ndarray, BehaviourGroups],
) -> None:
    _, truth, is_out, g = planted
    assert g.k_choice.k == 3
    for method in ("kmeans", "agglomerative"):
        labels = g.labels[method].to_numpy()
        assert adjusted_rand_score(truth[~is_out], labels[~is_out]) >= 0.9, method
    summary = {r["method"]: r for r in g.summary.iter_rows(named=True)}
    assert summary["kmeans"]["n_groups"] == summary["agglomerative"]["n_groups"] == 3
    assert summary["kmeans"]["silhouette"] > 0.3


def test_dbscan_finds_three_groups_and_marks_the_outliers_as_noise(
    planted: tuple[pl.DataFrame, np.ndarray, np.ndarray, BehaviourGroups],
) -> None:
    _, truth, is_out, g = planted
    labels = g.labels["dbscan"].to_numpy()
    summary = g.summary.filter(pl.col("method") == "dbscan").row(0, named=True)
    assert summary["n_groups"] == 3
    assert (labels[is_out] == -1).all()
    assert summary["n_noise"] <= 8 + 3  # the outliers, and at most a few edge devices
    inliers = ~is_out & (labels >= 0)
    assert adjusted_rand_score(truth[inliers], labels[inliers]) >= 0.95
    assert g.eps > 0 and g.k_distances.shape == (188,)
    assert g.k_distances[0] <= g.eps <= g.k_distances[-1]


def test_result_shapes_labels_by_size_and_best_method(
    planted: tuple[pl.DataFrame, np.ndarray, np.ndarray, BehaviourGroups],
) -> None:
    fp, _, _, g = planted
    assert g.labels.columns == ["device", "kmeans", "dbscan", "agglomerative"]
    assert g.labels["device"].to_list() == fp["device"].to_list()
    assert g.summary.columns == ["method", "n_groups", "n_noise", "silhouette"]
    best = g.summary.filter(pl.col("n_groups") >= 2).sort("silhouette", descending=True)
    assert g.best_method == best["method"][0]
    assert g.embedding.columns == ["device", "pc1", "pc2"]
    assert g.embedding.height == fp.height
    assert 0.0 < g.explained_variance[1] <= g.explained_variance[0] < 1.0
    sizes = np.bincount(g.labels["kmeans"].to_numpy())
    assert np.all(np.diff(sizes) <= 0)  # group 0 is the largest


def test_same_seed_same_groups() -> None:
    fp, _, _ = planted_fleet(1)
    a = find_groups(fp, entity="device", random_state=5)
    b = find_groups(fp, entity="device", random_state=5)
    assert a.labels.equals(b.labels)
    assert a.summary.equals(b.summary)
    assert a.embedding.equals(b.embedding)


def test_agglomerative_on_a_sample_assigns_everyone() -> None:
    fp, truth, is_out = planted_fleet(2)
    g = find_groups(fp, entity="device", methods=("agglomerative",), max_agglomerative=90)
    labels = g.labels["agglomerative"].to_numpy()
    assert (labels >= 0).all()
    assert adjusted_rand_score(truth[~is_out], labels[~is_out]) >= 0.9


def test_k_distance_knee_exact_on_a_hand_curve() -> None:
    # 1-D points: k-distances (k=2, self included) are the gap to the nearest neighbour
    X = np.array([[0.0], [1.0], [2.0], [3.0], [4.0], [5.0], [15.0], [40.0]])
    eps, d = k_distance_eps(X, 2)
    assert d.tolist() == [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 10.0, 25.0]
    # chord from (0, 0) to (1, 1) in scaled units; the farthest point is the last flat one
    assert eps == 1.0


def test_relabel_by_size() -> None:
    assert relabel_by_size(np.array([3, 3, 1, 7, 7, 7, -1])).tolist() == [1, 1, 2, 0, 0, 0, -1]


def test_unknown_method_is_a_config_error() -> None:
    fp, _, _ = planted_fleet(0)
    with pytest.raises(ConfigError, match="'spectral'"):
        find_groups(fp, entity="device", methods=("spectral",))
