"""Behaviour groups: cluster devices by their fingerprints three ways.

The fingerprint frame is cleaned as for rare devices (inf → missing → column
median, constant columns dropped; see
:func:`opslens.detect.population.fingerprint_matrix`) and then *standardised*
(mean 0, standard deviation 1 per feature) so every feature weighs the same in
the Euclidean distances all three methods use.

* **K-Means**: K chosen by :func:`opslens.cluster.kselect.choose_k` (best
  silhouette over ``k_min..k_max``; above 20,000 devices the scan runs on a
  seeded random sample of 20,000, the final K-Means on every device).
* **DBSCAN**: ``eps`` is the knee of the sorted k-distance curve (k =
  ``min_samples``, the point itself counted as sklearn does): the point of the
  curve farthest from the chord joining its ends, both axes scaled to [0, 1].
  Label ``-1`` is noise.
* **Agglomerative** (Ward) with the same K. Ward's memory is quadratic, so
  above ``max_agglomerative`` devices it runs on a seeded sample of that size,
  *stratified* by the K-Means groups (every K-Means group keeps its share of
  the fleet, at least one device), and every other device joins the Ward
  group with the nearest centroid. A sample that covers every device is the
  full method.
* **DBSCAN** above ``max_dbscan`` devices runs the same way on a seeded
  stratified sample of that size (``eps`` from the knee of the sample's
  k-distances to the *whole* fleet, so it is the fleet's eps, estimated); every
  other device takes the group of its nearest *core* sample device when that
  one lies within ``eps``, else it is noise. Memory stays bounded: no n x n
  distances, and the neighbour searches work in chunks. DBSCAN is the method
  sampling changes most (a thinner sample breaks or makes the bridges between
  dense regions), so the fleet recipe keeps it exact up to 10,000 devices.

Group labels are renumbered by size (0 = largest), so they are stable across
library versions. The silhouette of each method is computed on the
standardised matrix (DBSCAN noise excluded; NaN when fewer than two groups).
The best method is the one with the highest silhouette among those with at
least two groups; DBSCAN's silhouette ignores its noise points, which flatters
it a little.

Numeric kernels run on ``n_threads`` OpenMP/BLAS threads (default 1): on the
shared 2-core machine this was written on, more threads made K-Means 4-10×
slower by oversubscription; parallelism belongs at the engine level.

Example:
    >>> import numpy as np
    >>> import polars as pl
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(c, 0.3, size=(20, 3)) for c in (0.0, 4.0)])
    >>> fp = pl.DataFrame({"id": [str(i) for i in range(40)], "a": X[:, 0], "b": X[:, 1],
    ...                    "c": X[:, 2]})
    >>> g = find_groups(fp, entity="id", k_max=4)
    >>> g.k_choice.k, g.summary["n_groups"].to_list()
    (2, [2, 2, 2])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
from sklearn.cluster import DBSCAN, AgglomerativeClustering, KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import silhouette_score
from sklearn.neighbors import NearestNeighbors
from threadpoolctl import threadpool_limits

from opslens.cluster.kselect import KChoice, choose_k
from opslens.core.frames import as_polars
from opslens.detect.population import FingerprintMatrix, fingerprint_matrix
from opslens.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "GROUP_METHODS",
    "BehaviourGroups",
    "find_groups",
    "k_distance_eps",
    "relabel_by_size",
    "stratified_sample",
]

GROUP_METHODS = ("kmeans", "dbscan", "agglomerative")
_MAX_KSELECT = 20000


@dataclass(frozen=True)
class BehaviourGroups:
    """Group labels per method, their quality, the chosen K and eps, and a 2-D embedding."""

    labels: pl.DataFrame
    summary: pl.DataFrame
    k_choice: KChoice
    eps: float
    min_samples: int
    k_distances: np.ndarray
    best_method: str | None
    embedding: pl.DataFrame
    explained_variance: tuple[float, float]
    feature_names: list[str]


def relabel_by_size(labels: np.ndarray) -> np.ndarray:
    """Renumber groups 0, 1, … from largest to smallest (ties: first seen); keep -1 as noise.

    Example:
        >>> import numpy as np
        >>> relabel_by_size(np.array([5, 5, 2, 2, 2, -1])).tolist()
        [1, 1, 0, 0, 0, -1]
    """
    labels = np.asarray(labels)
    out = np.full(labels.shape, -1, dtype=np.int64)
    groups, first, counts = np.unique(labels[labels >= 0], return_index=True, return_counts=True)
    order = np.lexsort((first, -counts))
    mapping = np.empty(groups.size, dtype=np.int64)
    mapping[order] = np.arange(groups.size)
    valid = labels >= 0
    out[valid] = mapping[np.searchsorted(groups, labels[valid])]
    return out


def k_distance_eps(
    X: np.ndarray, min_samples: int, rows: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    """DBSCAN eps at the knee of the sorted k-distance curve; returns (eps, sorted distances).

    ``rows`` (optional) computes the curve for those rows only, each against
    every row of ``X``: the same curve, estimated from a sample.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> X = np.vstack([rng.normal(0, 0.1, size=(50, 2)), [[5.0, 5.0], [-5.0, 5.0]]])
        >>> eps, d = k_distance_eps(X, 4)
        >>> bool(eps < 0.5), d.shape
        (True, (52,))
    """
    k = min(min_samples, X.shape[0])
    dist, _ = NearestNeighbors(n_neighbors=k).fit(X).kneighbors(X if rows is None else X[rows])
    d = np.sort(dist[:, -1])
    span = d[-1] - d[0]
    if d.size < 3 or span <= 0:
        return float(d[-1]) if d[-1] > 0 else 1.0, d
    x = np.linspace(0.0, 1.0, d.size)
    y = (d - d[0]) / span
    knee = int(np.argmax(np.abs(x - y)))  # distance to the chord y = x, up to a factor √2
    eps = float(d[knee])
    return (eps if eps > 0 else float(d[d > 0][0])), d


def _silhouette(X: np.ndarray, labels: np.ndarray, random_state: int) -> float:
    mask = labels >= 0
    n_groups = np.unique(labels[mask]).size
    if n_groups < 2 or n_groups >= mask.sum():
        return math.nan
    n = int(mask.sum())
    return float(
        silhouette_score(
            X[mask],
            labels[mask],
            sample_size=5000 if n > 5000 else None,
            random_state=random_state,
        )
    )


def stratified_sample(strata: np.ndarray, size: int, random_state: int) -> np.ndarray:
    """Sorted row indices of a seeded sample of ``size`` rows, each stratum keeping its share.

    Every stratum gets ``round(size * share)`` rows (at least one, at most all of
    it); the rounding remainder goes to the largest strata. ``size >= len(strata)``
    returns every row.

    Example:
        >>> import numpy as np
        >>> s = stratified_sample(np.array([0] * 8 + [1] * 2), 5, 0)
        >>> s.size, int((s >= 8).sum())
        (5, 1)
    """
    n = strata.size
    if size >= n:
        return np.arange(n)
    groups, counts = np.unique(strata, return_counts=True)
    quota = np.clip(np.round(size * counts / n).astype(np.int64), 1, counts)
    for i in np.argsort(-counts, kind="stable"):  # fix the rounding on the largest strata
        quota[i] = np.clip(quota[i] + size - quota.sum(), 1, counts[i])
    rng = np.random.default_rng(random_state)
    picks = [
        rng.choice(np.flatnonzero(strata == g), size=int(q), replace=False)
        for g, q in zip(groups, quota, strict=True)
    ]
    return np.sort(np.concatenate(picks))


def _agglomerative(X: np.ndarray, k: int, sample: np.ndarray) -> np.ndarray:
    """Ward on the ``sample`` rows; every other row joins the nearest Ward centroid."""
    ward = AgglomerativeClustering(n_clusters=k, linkage="ward")
    sample_labels = np.asarray(ward.fit_predict(X[sample]))
    labels = np.empty(X.shape[0], dtype=np.int64)
    labels[sample] = sample_labels
    rest = np.setdiff1d(np.arange(X.shape[0]), sample)
    if rest.size:
        centroids = np.vstack([X[sample][sample_labels == g].mean(axis=0) for g in range(k)])
        labels[rest] = NearestNeighbors(n_neighbors=1).fit(centroids).kneighbors(X[rest])[1][:, 0]
    return labels


def _dbscan(X: np.ndarray, eps: float, min_samples: int, sample: np.ndarray) -> np.ndarray:
    """DBSCAN on the ``sample`` rows; every other row takes its nearest core row's group within eps."""
    db = DBSCAN(eps=eps, min_samples=min_samples).fit(X[sample])
    labels = np.full(X.shape[0], -1, dtype=np.int64)
    labels[sample] = db.labels_
    rest = np.setdiff1d(np.arange(X.shape[0]), sample)
    core = np.asarray(db.core_sample_indices_)
    if rest.size and core.size:
        dist, idx = NearestNeighbors(n_neighbors=1).fit(X[sample][core]).kneighbors(X[rest])
        near = dist[:, 0] <= eps
        labels[rest[near]] = db.labels_[core][idx[near, 0]]
    return labels


def find_groups(
    fingerprints: pl.DataFrame | pd.DataFrame,
    *,
    entity: str,
    methods: tuple[str, ...] = GROUP_METHODS,
    k_min: int = 2,
    k_max: int = 8,
    min_samples: int = 5,
    max_agglomerative: int = 5000,
    max_dbscan: int = 10000,
    random_state: int = 0,
    n_threads: int | None = 1,
    setting: str = "",
    track: Callable[[Sequence[str], str], Iterable[str]] | None = None,
) -> BehaviourGroups:
    """Cluster devices by K-Means, DBSCAN and Ward; report silhouettes and a PCA embedding.

    ``max_agglomerative`` and ``max_dbscan`` bound the devices Ward and DBSCAN
    run on (the rest are assigned, see the module docstring). ``track``
    (optional) wraps the list of methods, e.g. in a progress bar.

    Example:
        >>> import numpy as np
        >>> import polars as pl
        >>> rng = np.random.default_rng(1)
        >>> X = np.vstack([rng.normal(c, 0.2, size=(15, 2)) for c in (0.0, 3.0, 6.0)])
        >>> fp = pl.DataFrame({"id": [str(i) for i in range(45)], "a": X[:, 0], "b": X[:, 1]})
        >>> g = find_groups(fp, entity="id", methods=("kmeans",), k_max=5)
        >>> g.labels.columns, g.best_method, g.labels["kmeans"].n_unique()
        (['id', 'kmeans'], 'kmeans', 3)
    """
    fingerprints = as_polars(fingerprints, what="fingerprints")
    unknown = [m for m in methods if m not in GROUP_METHODS]
    if unknown or not methods:
        raise ConfigError(
            f"unknown grouping method '{unknown[0] if unknown else ''}'",
            fix=f"choose one or more of {', '.join(GROUP_METHODS)}",
        )
    m = fingerprint_matrix(fingerprints, entity=entity)
    with threadpool_limits(n_threads):
        return _find_groups(
            m,
            entity,
            methods,
            k_min,
            k_max,
            min_samples,
            (max_agglomerative, max_dbscan),
            random_state,
            setting,
            track or (lambda items, _what: items),
        )


def _find_groups(
    m: FingerprintMatrix,
    entity: str,
    methods: tuple[str, ...],
    k_min: int,
    k_max: int,
    min_samples: int,
    max_rows: tuple[int, int],
    random_state: int,
    setting: str,
    track: Callable[[Sequence[str], str], Iterable[str]],
) -> BehaviourGroups:
    std = m.X.std(axis=0)
    Z = (m.X - m.X.mean(axis=0)) / np.where(std > 0, std, 1.0)
    scan = Z
    if Z.shape[0] > _MAX_KSELECT:  # the K scan fits K-Means 7 times: a seeded sample is enough
        rng = np.random.default_rng(random_state)
        scan = Z[np.sort(rng.choice(Z.shape[0], size=_MAX_KSELECT, replace=False))]
    k_choice = choose_k(scan, k_min=k_min, k_max=k_max, random_state=random_state, setting=setting)
    k = k_choice.k
    kmeans = KMeans(n_clusters=k, n_init=10, random_state=random_state).fit_predict(Z)
    ward_sample, db_sample = (stratified_sample(kmeans, r, random_state) for r in max_rows)
    eps, k_distances = k_distance_eps(Z, min_samples, rows=db_sample)

    labels: dict[str, np.ndarray] = {}
    for method in track(methods, "groups: methods"):
        if method == "kmeans":
            raw = kmeans
        elif method == "dbscan":
            raw = _dbscan(Z, eps, min_samples, db_sample)
        else:
            raw = _agglomerative(Z, k, ward_sample)
        labels[method] = relabel_by_size(np.asarray(raw))

    n_groups = {m_: int(np.unique(lab[lab >= 0]).size) for m_, lab in labels.items()}
    sil = {m_: _silhouette(Z, lab, random_state) for m_, lab in labels.items()}
    summary = pl.DataFrame(
        {
            "method": list(labels),
            "n_groups": list(n_groups.values()),
            "n_noise": [int((lab < 0).sum()) for lab in labels.values()],
            "silhouette": list(sil.values()),
        },
        schema={
            "method": pl.String,
            "n_groups": pl.Int64,
            "n_noise": pl.Int64,
            "silhouette": pl.Float64,
        },
    )
    ranked = [m_ for m_ in labels if n_groups[m_] >= 2 and not math.isnan(sil[m_])]
    best = max(ranked, key=lambda m_: sil[m_]) if ranked else None

    n_comp = min(2, Z.shape[0], Z.shape[1])
    pca = PCA(n_components=n_comp, random_state=random_state).fit(Z)
    pcs = pca.transform(Z)
    if n_comp < 2:
        pcs = np.column_stack([pcs, np.zeros(Z.shape[0])])
    var = [float(v) for v in pca.explained_variance_ratio_] + [0.0] * (2 - n_comp)

    ids = pl.Series(entity, m.entities, dtype=pl.String)
    return BehaviourGroups(
        labels=pl.DataFrame([ids, *(pl.Series(k_, v, dtype=pl.Int64) for k_, v in labels.items())]),
        summary=summary,
        k_choice=k_choice,
        eps=eps,
        min_samples=min_samples,
        k_distances=k_distances,
        best_method=str(best) if best is not None else None,
        embedding=pl.DataFrame([ids, pl.Series("pc1", pcs[:, 0]), pl.Series("pc2", pcs[:, 1])]),
        explained_variance=(var[0], var[1]),
        feature_names=m.feature_names,
    )
