"""Segments: HDBSCAN on the training rows, a kNN fallback for noise, fast assignment of new rows.

:class:`SegmentAssigner` fits ``hdbscan.HDBSCAN`` (prediction data kept) and keeps
each training point's membership strength. Points HDBSCAN leaves as noise are
assigned by a ``KNeighborsClassifier`` trained on the clustered points (the reference
set below, at most ``reference_size`` of them). Every
answer names its path: ``hdbscan`` (a clustered point, or a new point inside a
segment) or ``knn`` (a noise point placed by its neighbours), with a confidence:
the membership strength of its nearest clustered point, or the kNN vote share.

New points are matched to a reference set of clustered training points (at most
``reference_size``) with SciPy's KD-tree (two threads): a point farther from its nearest reference
point than any member of that segment is (the segment's radius) is noise for
HDBSCAN and goes to the kNN fallback. This stands in for
``hdbscan.approximate_predict`` (kept as :meth:`SegmentAssigner.approximate_predict`),
which answers the same on new points inside segments at a fraction of the time
(``benchmarks/segments_assign.py``).

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(0, 0.3, (60, 2)), rng.normal(5, 0.3, (60, 2))])
    >>> a = SegmentAssigner(min_cluster_size=10, min_samples=5).fit(X)
    >>> a.n_segments_, sorted(set(a.segments_.tolist()))
    (2, [0, 1])
    >>> new = a.assign(np.array([[0.1, 0.0], [2.6, 2.4]]))
    >>> new.path.tolist(), int(new.segment[0]) == int(a.segments_[0])
    (['hdbscan', 'knn'], True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree
from sklearn.base import BaseEstimator
from sklearn.neighbors import KNeighborsClassifier
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import ThreadpoolController

from opslens.errors import DataError
from opslens.recipes.segments.regress import checked_array, threads

__all__ = ["Assignment", "SegmentAssigner"]


_CONTROLLER: list[ThreadpoolController] = []


def _controller() -> ThreadpoolController:
    """One threadpoolctl controller for the process: finding the loaded thread pools costs
    milliseconds (it reads the loaded libraries), limiting them afterwards microseconds."""
    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0]


@dataclass(frozen=True)
class Assignment:
    """Per row: segment (never -1), HDBSCAN's own label (-1 = noise), path and confidence."""

    segment: np.ndarray
    label: np.ndarray
    path: np.ndarray
    confidence: np.ndarray


class SegmentAssigner(BaseEstimator):  # type: ignore[misc]
    """HDBSCAN segments with a kNN fallback for noise points (scikit-learn estimator contract)."""

    def __init__(
        self,
        min_cluster_size: int = 25,
        min_samples: int = 10,
        cluster_selection_epsilon: float = 0.0,
        n_neighbors: int = 15,
        reference_size: int = 4_000,
        random_state: int = 0,
    ) -> None:
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.cluster_selection_epsilon = cluster_selection_epsilon
        self.n_neighbors = n_neighbors
        self.reference_size = reference_size
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: object = None) -> SegmentAssigner:
        """Cluster ``X`` (scaled features), fit the kNN fallback and the reference set."""
        import hdbscan

        X = validate_data(self, X, dtype=np.float64)  # 2-D, finite, real, dense (ValueError)
        if not X.flags.writeable:  # hdbscan's compiled code writes to its input's memory view
            X = X.copy()
        if X.shape[0] <= self.min_cluster_size:
            raise DataError(
                f"{X.shape[0]} training rows cannot form segments of at least "
                f"{self.min_cluster_size} rows",
                fix="give more training rows or lower params.hdbscan.min_cluster_size",
            )
        self.clusterer_ = hdbscan.HDBSCAN(
            min_cluster_size=self.min_cluster_size,
            min_samples=self.min_samples,
            cluster_selection_epsilon=self.cluster_selection_epsilon,
            prediction_data=True,
        ).fit(X)
        labels = self.clusterer_.labels_.astype(np.int64)
        clustered = np.flatnonzero(labels >= 0)
        if clustered.size == 0:
            raise DataError(
                "HDBSCAN found no segment in the training data (every point is noise)",
                fix="lower params.hdbscan.min_cluster_size or params.hdbscan.min_samples",
            )
        self.labels_ = labels
        self.probabilities_ = self.clusterer_.probabilities_.astype(np.float64)
        self.n_segments_ = int(labels.max()) + 1
        rng = np.random.default_rng(self.random_state)
        take = min(self.reference_size, clustered.size)
        ref = np.sort(rng.choice(clustered, take, replace=False))
        self.reference_ = X[ref]
        self.reference_labels_ = labels[ref]
        self.reference_strength_ = self.probabilities_[ref]
        # noise points lie far from everything, where a tree prunes badly: brute force over
        # the reference points is the fast way to their neighbours
        self.knn_ = KNeighborsClassifier(
            n_neighbors=min(self.n_neighbors, take), weights="distance", algorithm="brute"
        ).fit(self.reference_, self.reference_labels_)
        self.tree_ = cKDTree(self.reference_)
        # a segment's radius: the farthest any of its members is from its nearest reference point
        dist, idx = self.tree_.query(X[clustered], k=min(2, take), workers=2)
        if take == 1:
            dist, idx = dist[:, None], idx[:, None]
        is_ref = np.isin(clustered, ref)
        nearest = np.where(is_ref, dist[:, -1], dist[:, 0])
        self.radius_ = np.zeros(self.n_segments_)
        np.maximum.at(self.radius_, labels[clustered], nearest)
        noise = labels < 0
        segments = labels.copy()
        confidence = self.probabilities_.copy()
        if noise.any():
            proba = self._vote(X[noise])
            segments[noise] = self.knn_.classes_[proba.argmax(axis=1)]
            confidence[noise] = proba.max(axis=1)
        self.segments_ = segments
        self.paths_ = np.where(noise, "knn", "hdbscan")
        self.confidence_ = confidence
        return self

    def _checked(self, X: np.ndarray) -> np.ndarray:
        """``X`` validated as in fit, with the fitted number of features (ValueError)."""
        X = checked_array(self, X, allow_nan=False)
        if not X.flags.writeable:
            X = X.copy()
        return X

    def _vote(self, X: np.ndarray) -> np.ndarray:
        """The kNN fallback's class probabilities (OpenMP threads only for large inputs)."""
        with _controller().limit(limits=threads(X.shape[0]), user_api="openmp"):
            return np.asarray(self.knn_.predict_proba(X))

    def assign(self, X: np.ndarray) -> Assignment:
        """Segment, HDBSCAN label, path and confidence of new points (scaled features)."""
        check_is_fitted(self, "tree_")
        if len(X) == 0:
            empty = np.zeros(0)
            return Assignment(
                empty.astype(np.int64), empty.astype(np.int64), empty.astype(str), empty
            )
        X = self._checked(X)
        n = X.shape[0]
        dist, idx = self.tree_.query(X, k=1, workers=threads(n))
        nearest = self.reference_labels_[idx]
        noise = dist > self.radius_[nearest]
        label = np.where(noise, -1, nearest)
        segment = nearest.copy()
        confidence = self.reference_strength_[idx].copy()
        if noise.any():
            proba = self._vote(X[noise])
            segment[noise] = self.knn_.classes_[proba.argmax(axis=1)]
            confidence[noise] = proba.max(axis=1)
        return Assignment(
            segment=segment.astype(np.int64),
            label=label.astype(np.int64),
            path=np.where(noise, "knn", "hdbscan"),
            confidence=confidence,
        )

    def assign_one(self, x: np.ndarray) -> tuple[int, str, float]:
        """One new point's segment, path and confidence (``x``: 1-D scaled features): the same
        answer as :meth:`assign` on that point alone, without its per-batch work (one KD-tree
        query; the kNN vote only for a point outside every segment).

        Example:
            >>> rng = np.random.default_rng(0)
            >>> X = np.vstack([rng.normal(0, 0.3, (60, 2)), rng.normal(5, 0.3, (60, 2))])
            >>> a = SegmentAssigner(min_cluster_size=10, min_samples=5).fit(X)
            >>> a.assign_one(np.array([2.6, 2.4]))[1], a.assign_one(X[0])[0] == int(a.segments_[0])
            ('knn', True)
        """
        if "tree_" not in self.__dict__:
            check_is_fitted(self, "tree_")
        if x.shape != (self.n_features_in_,) or not math.isfinite(x @ x):
            a = self.assign(np.atleast_2d(x))  # refused as the batch path refuses it
            return int(a.segment[0]), str(a.path[0]), float(a.confidence[0])
        dist, idx = self.tree_.query(x, k=1)
        nearest = int(self.reference_labels_[idx])
        if dist > self.radius_[nearest]:
            proba = self._vote(x[None, :])[0]
            best = int(proba.argmax())
            return int(self.knn_.classes_[best]), "knn", float(proba[best])
        return nearest, "hdbscan", float(self.reference_strength_[idx])

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The segment of each new point (noise points placed by the kNN fallback)."""
        return self.assign(X).segment

    def approximate_predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``hdbscan.approximate_predict`` on the fitted clusterer: labels (-1 noise), strengths."""
        import hdbscan

        check_is_fitted(self, "clusterer_")
        labels, strengths = hdbscan.approximate_predict(self.clusterer_, self._checked(X))
        return np.asarray(labels, dtype=np.int64), np.asarray(strengths, dtype=np.float64)
