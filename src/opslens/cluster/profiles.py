"""Cluster combination histograms and describe each cluster's distribution.

:class:`DistributionClusterer` runs K-Means on the rows of a histogram matrix
(one normalized histogram per combination), choosing K with
:func:`opslens.cluster.kselect.choose_k` when it is not given. Cluster ids are
ordered by the median bin of each cluster's mean histogram (ties: by its mean
bin), so id 0 is the "fastest" pattern and ids are stable across runs.

:func:`cluster_profiles` summarizes the raw target values of each cluster:
mean histogram, quantiles, mean/median/mode, skewness and highest density
regions (:func:`opslens.cluster.hdr.sample_hdr`: their coverage holds on the
cluster's rows, bounds stay in the observed range and the declared support;
values far out are counted, not used for the mean, std, skewness or regions);
:func:`describe_profile` says one profile in a sentence.

HDR columns (``hdr_50``, ``hdr_90`` for the default coverages) are
``list[list[f64]]``: one ``[lo, hi]`` pair per interval, sorted.

Example:
    >>> import numpy as np
    >>> X = np.array([[0.9, 0.1, 0.0], [0.8, 0.2, 0.0], [0.0, 0.1, 0.9], [0.0, 0.2, 0.8]])
    >>> DistributionClusterer(n_clusters=2).fit(X).labels_.tolist()
    [0, 0, 1, 1]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl
from scipy.stats import skew
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import KMeans
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import threadpool_limits

from opslens.cluster.hdr import sample_hdr
from opslens.cluster.kselect import KChoice, choose_k
from opslens.errors import DataError

__all__ = ["DistributionClusterer", "cluster_profiles", "describe_profile"]


def _median_positions(centers: np.ndarray) -> np.ndarray:
    """Interpolated median bin position of each (normalized) histogram row."""
    p = np.clip(centers, 0.0, None)
    p = p / p.sum(axis=1, keepdims=True)
    cum = np.cumsum(p, axis=1)
    i = np.argmax(cum >= 0.5, axis=1)
    before = np.where(i > 0, cum[np.arange(len(i)), i - 1], 0.0)
    mass = p[np.arange(len(i)), i]
    pos: np.ndarray = i + np.where(mass > 0, (0.5 - before) / np.where(mass > 0, mass, 1.0), 0.0)
    return pos


class DistributionClusterer(ClusterMixin, BaseEstimator):  # type: ignore[misc]
    """K-Means over histogram rows with K chosen by silhouette when not given.

    Learned: ``labels_``, ``cluster_centers_`` (mean histograms, in id order),
    ``n_clusters_``, ``inertia_``, ``k_choice_`` (a :class:`KChoice`, or None
    when ``n_clusters`` was given) and ``kmeans_``.

    Example:
        >>> X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [0.5, 0.5], [0.45, 0.55]])
        >>> model = DistributionClusterer(k_min=2, k_max=4).fit(X)
        >>> model.n_clusters_, model.labels_.tolist()
        (3, [0, 0, 2, 2, 1, 1])
    """

    def __init__(
        self,
        n_clusters: int | None = None,
        k_min: int = 2,
        k_max: int = 8,
        random_state: int = 0,
        n_init: int = 10,
    ) -> None:
        self.n_clusters = n_clusters
        self.k_min = k_min
        self.k_max = k_max
        self.random_state = random_state
        self.n_init = n_init

    def fit(self, X: np.ndarray, y: object = None) -> DistributionClusterer:
        """Choose K if needed, run K-Means, and order cluster ids by median bin.

        Example:
            >>> DistributionClusterer(n_clusters=2).fit(np.eye(4)).n_clusters_
            2
        """
        # scikit-learn's own validation: 2-D, finite, real, dense, at least 2 rows (ValueError)
        X = validate_data(self, X, dtype=np.float64, ensure_min_samples=2)
        choice: KChoice | None = None
        if self.n_clusters is None:
            choice = choose_k(
                X,
                k_min=self.k_min,
                k_max=self.k_max,
                random_state=self.random_state,
                n_init=self.n_init,
            )
            k = choice.k
        else:
            k = int(self.n_clusters)
            if not 1 <= k <= X.shape[0]:
                raise DataError(
                    f"n_clusters={k} is not between 1 and the {X.shape[0]} combinations",
                    fix="lower params.n_clusters or leave it unset to choose K",
                )
        with threadpool_limits(1):  # histograms of a few hundred combinations: threads only cost
            km = KMeans(n_clusters=k, n_init=self.n_init, random_state=self.random_state).fit(X)
        centers = km.cluster_centers_
        mean_pos = (np.clip(centers, 0, None) * np.arange(centers.shape[1])).sum(axis=1)
        order = np.lexsort((mean_pos, _median_positions(centers)))  # new id -> old id
        old_to_new = np.empty(k, dtype=np.int64)
        old_to_new[order] = np.arange(k)
        self.kmeans_ = km
        self.k_choice_ = choice
        self.n_clusters_ = k
        self.mapping_ = old_to_new
        self.cluster_centers_ = centers[order]
        self.labels_ = old_to_new[km.labels_]
        self.inertia_ = float(km.inertia_)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Cluster id of each histogram row (nearest center).

        Example:
            >>> model = DistributionClusterer(n_clusters=2).fit(np.array([[1.0, 0.0], [0.0, 1.0]]))
            >>> model.predict(np.array([[0.2, 0.8]])).tolist()
            [1]
        """
        check_is_fitted(self, "kmeans_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        labels: np.ndarray = self.mapping_[self.kmeans_.predict(X)]
        return labels


def _hdr_name(coverage: float) -> str:
    return f"{round(coverage * 100):d}"


def _mean_histograms(
    data: pl.DataFrame,
    values: np.ndarray,
    labels: np.ndarray,
    ids: np.ndarray,
    *,
    cluster: str,
    comb: str | None,
    edges: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean of the per-combination histograms over ``edges``, and combinations, per cluster."""
    e = np.asarray(edges, dtype=float)
    n_bins = e.size - 1
    cl_code = np.searchsorted(ids, labels)
    bins = np.searchsorted(e[1:-1], values, side="right")
    unit = (
        data.select(pl.struct(cluster, comb).rank("dense").cast(pl.Int64) - 1)
        .to_series()
        .to_numpy()
        if comb
        else cl_code
    )
    n_units = int(unit.max()) + 1
    per_unit = np.bincount(unit * n_bins + bins, minlength=n_units * n_bins).reshape(
        n_units, n_bins
    )
    per_unit = per_unit / per_unit.sum(axis=1, keepdims=True)
    unit_cluster = np.zeros(n_units, dtype=np.int64)
    unit_cluster[unit] = cl_code
    unit_count = np.bincount(unit_cluster, minlength=ids.size)
    mean_hist = np.zeros((ids.size, n_bins))
    np.add.at(mean_hist, unit_cluster, per_unit)
    mean_hist /= unit_count[:, None]
    return mean_hist, unit_count


def cluster_profiles(
    frame: pl.DataFrame,
    *,
    target: str,
    cluster: str,
    edges: np.ndarray | None = None,
    coverages: Sequence[float] = (0.5, 0.9),
    comb: str | None = "comb",
    mean_histograms: Mapping[int, Sequence[float]] | None = None,
    support: tuple[float | None, float | None] = (None, None),
) -> pl.DataFrame:
    """One row per cluster describing its target distribution.

    Columns: ``cluster``, ``n_combinations`` (null when ``comb`` is None),
    ``n_rows``, ``share_rows``, ``mean_histogram`` (``mean_histograms[id]``
    when given, e.g. the mean of the histograms that were clustered; else the
    mean of its combinations' normalized histograms over ``edges``), ``p05``,
    ``p25``, ``p50``, ``p75``, ``p95``, ``median``, ``mode`` (peak of a
    Gaussian KDE), ``mean``, ``std``, ``skewness`` (these three without the
    values far out), ``n_outliers``, ``outlier_max``, and per coverage ``c``:
    ``hdr_<c%>`` (``[[lo, hi], ...]``), ``n_hdr_intervals_<c%>`` and
    ``hdr_<c%>_observed`` (the share of the cluster's rows inside).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> df = pl.DataFrame({
        ...     "y": np.concatenate([rng.normal(10, 1, 500), rng.normal(30, 2, 500)]),
        ...     "cl": [0] * 500 + [1] * 500, "comb": ["a"] * 500 + ["b"] * 500})
        >>> prof = cluster_profiles(df, target="y", cluster="cl", edges=np.linspace(5, 40, 8))
        >>> prof.select("cluster", "n_rows", "n_hdr_intervals_90").rows()
        [(0, 500, 1), (1, 500, 1)]
    """
    cols = [target, cluster] + ([comb] if comb else [])
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise DataError(
            f"column(s) {missing} missing for cluster profiles", fix="cluster the rows first"
        )
    if edges is None and mean_histograms is None:
        raise DataError(
            "cluster profiles need the bin edges or the mean histograms",
            fix="pass edges= or mean_histograms=",
        )
    data = frame.select(cols).filter(
        pl.col(cluster).is_not_null() & pl.col(target).is_not_null() & pl.col(target).is_not_nan()
    )
    if data.height == 0:
        raise DataError(
            f"no rows with both {target!r} and {cluster!r}", fix="check the clustered frame"
        )
    values = data[target].cast(pl.Float64).to_numpy()
    labels = data[cluster].cast(pl.Int64).to_numpy()
    ids = np.unique(labels)
    cl_code = np.searchsorted(ids, labels)
    if mean_histograms is None:
        mean_hist, unit_count = _mean_histograms(
            data, values, labels, ids, cluster=cluster, comb=comb, edges=np.asarray(edges)
        )
        hist_rows = [mean_hist[j].tolist() for j in range(ids.size)]
    else:
        hist_rows = [list(map(float, mean_histograms[int(i)])) for i in ids]
        unit_count = (
            data.group_by(cluster)
            .agg(pl.col(comb).n_unique().alias("n"))
            .sort(cluster)["n"]
            .to_numpy()
            if comb
            else np.zeros(ids.size, dtype=np.int64)
        )

    order = np.argsort(cl_code, kind="stable")
    splits = np.split(values[order], np.cumsum(np.bincount(cl_code, minlength=ids.size))[:-1])
    rows: list[dict[str, Any]] = []
    for j, v in enumerate(splits):  # one pass per cluster (a handful), not per row
        q = np.quantile(v, [0.05, 0.25, 0.5, 0.75, 0.95])
        h = sample_hdr(v, coverages, support=support)
        inl = h.inliers
        row: dict[str, Any] = {
            "cluster": int(ids[j]),
            "n_combinations": int(unit_count[j]) if comb else None,
            "n_rows": int(v.size),
            "share_rows": float(v.size / values.size),
            "mean_histogram": hist_rows[j],
            "p05": float(q[0]),
            "p25": float(q[1]),
            "p50": float(q[2]),
            "p75": float(q[3]),
            "p95": float(q[4]),
            "mean": float(inl.mean()),
            "median": float(q[2]),
            "mode": h.mode,
            "std": float(inl.std()),
            "skewness": float(skew(inl)) if np.ptp(inl) > 0 else 0.0,
            "n_outliers": h.n_outliers,
            "outlier_max": h.outlier_max,
        }
        for c in coverages:
            row[f"hdr_{_hdr_name(c)}"] = [[lo, hi] for lo, hi in h.regions[c]]
            row[f"n_hdr_intervals_{_hdr_name(c)}"] = len(h.regions[c])
            row[f"hdr_{_hdr_name(c)}_observed"] = h.observed[c]
        rows.append(row)
    schema: dict[str, Any] = {
        "cluster": pl.Int64,
        "n_combinations": pl.Int64,
        "n_rows": pl.Int64,
        "share_rows": pl.Float64,
        "mean_histogram": pl.List(pl.Float64),
        **{k: pl.Float64 for k in ("p05", "p25", "p50", "p75", "p95", "mean", "median", "mode")},
        "std": pl.Float64,
        "skewness": pl.Float64,
        "n_outliers": pl.Int64,
        "outlier_max": pl.Float64,
    }
    for c in coverages:
        schema[f"hdr_{_hdr_name(c)}"] = pl.List(pl.List(pl.Float64))
        schema[f"n_hdr_intervals_{_hdr_name(c)}"] = pl.Int64
        schema[f"hdr_{_hdr_name(c)}_observed"] = pl.Float64
    return pl.DataFrame(rows, schema=schema)


def _fmt(x: float) -> str:
    ax = abs(x)
    if ax >= 10:
        return f"{x:.0f}"
    if ax >= 1:
        return f"{x:.1f}"
    return f"{x:.3g}"


def describe_profile(
    row: Mapping[str, Any], *, unit: str = "", noun: str = "values", coverage: int = 90
) -> str:
    """Say one cluster profile in a plain sentence.

    Example:
        >>> row = {"cluster": 2, "hdr_90": [[11.2, 19.4], [40.1, 52.0]], "median": 24.0, "skewness": 0.8}
        >>> describe_profile(row, unit="min", noun="trips")
        'Cluster 2: bimodal, 90% of trips fall in 11–19 or 40–52 min; median 24 min; right-skewed.'
    """
    intervals = list(row.get(f"hdr_{coverage}") or [])
    n = len(intervals)
    shape = {0: "no data", 1: "unimodal", 2: "bimodal"}.get(n, f"multimodal ({n} modes)")
    suffix = f" {unit}" if unit else ""
    spans = " or ".join(f"{_fmt(lo)}–{_fmt(hi)}" for lo, hi in intervals)
    sk = float(row.get("skewness") or 0.0)
    skew_word = "right-skewed" if sk > 0.5 else "left-skewed" if sk < -0.5 else "roughly symmetric"
    text = f"Cluster {row['cluster']}: {shape}"
    if n:
        text += f", {coverage}% of {noun} fall in {spans}{suffix}"
    if row.get("median") is not None:
        text += f"; median {_fmt(float(row['median']))}{suffix}"
    return f"{text}; {skew_word}."
