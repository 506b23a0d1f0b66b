"""Sampled Ward and DBSCAN: the full method when the sample covers every device, close when not."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import DBSCAN, AgglomerativeClustering
from sklearn.metrics import adjusted_rand_score
from tests.unit.cluster.test_groups import planted_fleet

from opslens.cluster.groups import find_groups, relabel_by_size, stratified_sample
from opslens.detect.population import fingerprint_matrix


def _standardised(seed: int) -> np.ndarray:
    fp, _, _ = planted_fleet(seed)
    X = fingerprint_matrix(fp, entity="device").X
    std = X.std(axis=0)
    return (X - X.mean(axis=0)) / np.where(std > 0, std, 1.0)


def test_sample_covering_every_device_is_the_full_ward() -> None:
    fp, _, _ = planted_fleet(3)
    g = find_groups(fp, entity="device", methods=("agglomerative",), max_agglomerative=fp.height)
    Z = _standardised(3)
    full = AgglomerativeClustering(n_clusters=g.k_choice.k, linkage="ward").fit_predict(Z)
    assert np.array_equal(g.labels["agglomerative"].to_numpy(), relabel_by_size(full))


def test_sample_covering_every_device_is_the_full_dbscan() -> None:
    fp, _, _ = planted_fleet(3)
    g = find_groups(fp, entity="device", methods=("dbscan",), max_dbscan=fp.height)
    full = DBSCAN(eps=g.eps, min_samples=g.min_samples).fit_predict(_standardised(3))
    assert np.array_equal(g.labels["dbscan"].to_numpy(), relabel_by_size(full))


@pytest.mark.parametrize("size", [60, 100])
def test_sampled_methods_agree_with_the_full_ones(size: int) -> None:
    fp, truth, is_out = planted_fleet(4)
    full = find_groups(fp, entity="device", max_agglomerative=fp.height, max_dbscan=fp.height)
    part = find_groups(fp, entity="device", max_agglomerative=size, max_dbscan=size)
    for method in ("agglomerative", "dbscan"):
        a, b = full.labels[method].to_numpy(), part.labels[method].to_numpy()
        assert adjusted_rand_score(a[~is_out], b[~is_out]) >= 0.9, method
    # far outliers stay noise when DBSCAN ran on a sample: no core device lies within eps
    assert (part.labels["dbscan"].to_numpy()[is_out] == -1).mean() >= 0.75
    assert (
        adjusted_rand_score(truth[~is_out], part.labels["agglomerative"].to_numpy()[~is_out]) >= 0.9
    )


def test_stratified_sample_keeps_every_stratum_and_its_share() -> None:
    strata = np.repeat([0, 1, 2], [700, 250, 50])
    s = stratified_sample(strata, 100, 0)
    assert s.size == 100 and np.unique(s).size == 100
    assert np.bincount(strata[s]).tolist() == [70, 25, 5]
    assert stratified_sample(np.array([0] * 99 + [1]), 10, 0).size == 10
    assert np.array_equal(stratified_sample(strata, 5000, 0), np.arange(1000))
