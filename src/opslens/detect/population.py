"""Rare devices: population-level outlier detection on device fingerprints.

Higher score = more anomalous, for every score in this module.

Input is a fingerprint matrix (one row per device). :func:`fingerprint_matrix`
turns the fingerprint frame into numbers: ``inf`` becomes missing, missing
values are replaced by the column median, and columns that are constant (or
entirely missing) are dropped, since they cannot tell devices apart.

:class:`RareDeviceDetector` scales the matrix robustly (median and
IQR/1.349, falling back to the standard deviation and then to 1 for a column
whose IQR is zero), then fits Isolation Forest, One-Class SVM, ECOD and an
autoencoder. Raw scores of different methods live on different scales, so
each is normalised to its *rank percentile among the training scores* (the
mid-rank empirical CDF, in [0, 1]): robust to a single extreme score and
comparable across methods. ``combined`` is the mean of the normalised scores;
a device is *rare* when its combined score exceeds the ``1 - contamination``
quantile of the training combined scores. Rank percentiles keep order, not
distance: a device far beyond the fleet in one feature and one moderately
unusual in several can score alike, and ECOD (rank-based itself) favours the
latter; read the deviating features beside the score.

One-Class SVM runs with ``nu=0.5`` and ``gamma="scale"``: only its ranking is
used, and a large ``nu`` spreads the support vectors over the fleet, so an
outlier cannot prop up its own score by becoming a support vector (with
``nu=0.05`` the planted outliers of the tests fell to AUROC ≈ 0.9). Its cost
grows with the square of the fleet, so above ``svm_max_samples`` devices it is
trained on a seeded random sample of that size (every device is scored).
Numeric kernels run on ``n_threads`` OpenMP/BLAS threads (default 1; see
:mod:`opslens.cluster.groups` for why).

Example:
    >>> import numpy as np
    >>> import polars as pl
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(60, 4))
    >>> X[7, 1:3] = [-6.0, 9.0]
    >>> fp = pl.DataFrame({"device": [f"d{i}" for i in range(60)]}).with_columns(
    ...     pl.Series(f"f{j}", X[:, j]) for j in range(4))
    >>> rare = rank_rare_devices(fp, entity="device", top_n=3)
    >>> rare.top["device"][0], rare.top["deviating_features"][0].split(",")[0]
    ('d7', 'f2 +8.6σ')
"""

from __future__ import annotations

import bisect
import warnings
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
from sklearn.base import BaseEstimator
from sklearn.ensemble import IsolationForest
from sklearn.ensemble._iforest import _average_path_length
from sklearn.svm import OneClassSVM
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import threadpool_limits

from opslens.core.frames import as_polars
from opslens.detect.autoencoder import AutoencoderDetector
from opslens.detect.ecod import ECOD
from opslens.errors import ConfigError, DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "METHODS",
    "FingerprintMatrix",
    "RareDeviceDetector",
    "RareDevices",
    "fingerprint_matrix",
    "rank_rare_devices",
    "robust_scale",
    "top_deviating_features",
]

METHODS = ("isolation_forest", "one_class_svm", "ecod", "autoencoder")
_FLOOR = 0.25  # the robust scale is at least this share of the standard deviation


@dataclass(frozen=True)
class FingerprintMatrix:
    """A fingerprint frame as numbers: devices, cleaned matrix, kept and dropped features."""

    entities: list[str]
    X: np.ndarray
    feature_names: list[str]
    dropped: list[str]
    n_imputed: int


def fingerprint_matrix(fingerprints: pl.DataFrame, *, entity: str) -> FingerprintMatrix:
    """Clean a fingerprint frame: inf → missing → column median; drop constant columns.

    Example:
        >>> import polars as pl
        >>> fp = pl.DataFrame({"id": ["a", "b", "c"], "x": [1.0, float("nan"), 3.0],
        ...                    "k": [5.0, 5.0, 5.0]})
        >>> m = fingerprint_matrix(fp, entity="id")
        >>> m.X.ravel().tolist(), m.dropped, m.n_imputed
        ([1.0, 2.0, 3.0], ['k'], 1)
    """
    if entity not in fingerprints.columns:
        raise DataError(
            f"the device column '{entity}' is not in the fingerprints "
            f"(columns: {', '.join(fingerprints.columns[:8])})",
            fix="name an existing column in columns.entity",
        )
    features = [c for c in fingerprints.columns if c != entity]
    bad = [c for c in features if not fingerprints.schema[c].is_numeric()]
    if bad:
        raise DataError(
            f"fingerprint column '{bad[0]}' is not numeric ({fingerprints.schema[bad[0]]})",
            fix="drop the column or cast it to a number before scoring devices",
        )
    if fingerprints.height < 3:
        raise DataError(
            f"only {fingerprints.height} devices in the fingerprints; at least 3 are needed",
            fix="load data for more devices",
        )
    ids = fingerprints.get_column(entity).cast(pl.String)
    if ids.n_unique() != ids.len():
        dup = str(ids.filter(ids.is_duplicated()).first())
        raise DataError(
            f"device '{dup}' has more than one fingerprint row",
            fix="compute one fingerprint row per device",
        )
    X = fingerprints.select(features).cast(pl.Float64).to_numpy().astype(float, copy=True)
    missing = ~np.isfinite(X)
    X[missing] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-missing column: median is NaN
        med = np.nanmedian(X, axis=0)
    rows, cols = np.nonzero(missing)
    X[rows, cols] = med[cols]
    keep = X.max(axis=0) > X.min(axis=0)  # False for constant and all-NaN columns
    if not keep.any():
        raise DataError(
            "every fingerprint feature is constant or missing across devices",
            fix="check the metric columns; devices must differ in at least one feature",
        )
    return FingerprintMatrix(
        entities=ids.to_list(),
        X=np.ascontiguousarray(X[:, keep]),
        feature_names=[f for f, k in zip(features, keep, strict=True) if k],
        dropped=[f for f, k in zip(features, keep, strict=True) if not k],
        n_imputed=int(missing[:, keep].sum()),
    )


def robust_scale(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column centre (median) and scale (IQR/1.349, at least a quarter of the std; else 1).

    Example:
        >>> import numpy as np
        >>> c, s = robust_scale(np.array([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [4.0, 4.0]]))
        >>> c.tolist(), s.round(3).tolist()
        ([2.5, 0.0], [1.112, 0.741])
    """
    center = np.median(X, axis=0)
    q75, q25 = np.percentile(X, [75, 25], axis=0)
    scale = (q75 - q25) / 1.349
    std = X.std(axis=0)
    scale = np.maximum(scale, _FLOOR * std)  # a column whose bulk is flat: its tail sets the scale
    scale = np.where(scale > 0, scale, 1.0)
    return center, scale


def _percentile_of(sorted_train: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Mid-rank empirical CDF of ``s`` against sorted training scores, in [0, 1].

    Scores within rounding noise of a training score (relative 1e-9) tie with it: the
    same row scored alone or in a batch can differ in the last bits (BLAS), and must
    get the same percentile.

    Example:
        >>> _percentile_of(np.array([1.0, 2.0, 3.0]), np.array([2.0 + 1e-15, 2.5])).tolist()
        [0.5, 0.6666666666666666]
    """
    tol = 1e-9 * np.maximum(np.abs(s), 1.0)
    below = np.searchsorted(sorted_train, s - tol, side="left")
    at_or_below = np.searchsorted(sorted_train, s + tol, side="right")
    return np.asarray((below + at_or_below) / (2.0 * sorted_train.size))


_FORESTS: weakref.WeakKeyDictionary[IsolationForest, tuple[Any, ...]] = weakref.WeakKeyDictionary()


def _forest_arrays(forest: IsolationForest) -> tuple[Any, ...]:
    """Every tree of ``forest`` as rows of padded arrays (a leaf points at itself), with the
    depth each leaf adds (its path length, plus the average path of the samples it holds,
    minus one: what scikit-learn adds per tree), built once per forest."""
    got = _FORESTS.get(forest)
    if got is not None:
        return got
    trees = forest.estimators_
    width = max(t.tree_.node_count for t in trees)
    shape = (len(trees), width)
    feature = np.zeros(shape, dtype=np.intp)
    threshold = np.zeros(shape)
    left = np.zeros(shape, dtype=np.intp)
    right = np.zeros(shape, dtype=np.intp)
    added = np.zeros(shape)
    subsample = forest._max_features != forest.n_features_in_
    for i, (tree, features) in enumerate(zip(trees, forest.estimators_features_, strict=True)):
        t = tree.tree_
        k = t.node_count
        leaf = t.children_left[:k] == -1
        here = np.arange(k)
        f = np.where(leaf, 0, t.feature[:k])
        feature[i, :k] = np.asarray(features)[f] if subsample else f
        threshold[i, :k] = t.threshold[:k]
        left[i, :k] = np.where(leaf, here, t.children_left[:k])
        right[i, :k] = np.where(leaf, here, t.children_right[:k])
        added[i, :k] = (
            forest._decision_path_lengths[i][:k] + forest._average_path_length_per_tree[i][:k]
        ) - 1.0
    depth = max(t.tree_.max_depth for t in trees)
    denominator = len(trees) * float(_average_path_length([forest._max_samples])[0])
    got = _FORESTS[forest] = (feature, threshold, left, right, added, depth, denominator)
    return got


def forest_score_one(forest: IsolationForest, z: np.ndarray) -> float:
    """``forest.score_samples`` of one finite row, the trees walked together on numpy (one
    step per level for all trees, not one scikit-learn call per tree): the row read as
    float32 as scikit-learn reads it, the per-tree depths added in tree order.

    Example:
        >>> import numpy as np
        >>> X = np.random.default_rng(1).normal(size=(64, 2))
        >>> forest = IsolationForest(n_estimators=20, random_state=0).fit(X)
        >>> bool(forest_score_one(forest, X[3]) == forest.score_samples(X[3:4])[0])
        True
    """
    feature, threshold, left, right, added, depth, denominator = _forest_arrays(forest)
    x = np.asarray(z, dtype=np.float32).astype(np.float64)
    rows = np.arange(feature.shape[0])
    node = np.zeros(feature.shape[0], dtype=np.intp)
    for _ in range(depth):
        go_left = x[feature[rows, node]] <= threshold[rows, node]
        node = np.where(go_left, left[rows, node], right[rows, node])
    depths = float(np.cumsum(added[rows, node])[-1])  # in tree order, as scikit-learn adds
    ratio = depths / denominator if denominator != 0 else 1.0
    return -float(2.0 ** (-ratio))


def _raw_of(method: str, model: Any, Z: np.ndarray) -> np.ndarray:
    """``model``'s scores of the rows of ``Z``, oriented so that higher = more anomalous."""
    s = np.asarray(model.score_samples(Z), dtype=float)
    return s if method in ("ecod", "autoencoder") else -s


class _Forest:
    """An isolation forest's trees as flat arrays for one row's walk (a child is an index into
    the flat arrays, a leaf its own child): :func:`forest_score_one` without its 2-D gathers."""

    def __init__(self, forest: IsolationForest) -> None:
        feature, threshold, left, right, added, depth, denominator = _forest_arrays(forest)
        width = feature.shape[1]
        base = (np.arange(feature.shape[0]) * width)[:, None]
        self.feature = np.ascontiguousarray(feature.ravel())
        self.threshold = np.ascontiguousarray(threshold.ravel())
        self.left = np.ascontiguousarray((left + base).ravel())
        self.right = np.ascontiguousarray((right + base).ravel())
        self.added = np.ascontiguousarray(added.ravel())
        self.roots = np.ascontiguousarray(base.ravel())
        self.depth = int(depth)
        self.denominator = float(denominator)

    def raw(self, z: np.ndarray) -> float:
        """The raw (higher = rarer) score of one finite scaled row: ``-score_samples``, the same
        number :func:`forest_score_one` gives (the same leaves, summed in tree order)."""
        x = z.astype(np.float32).astype(np.float64)
        node = self.roots
        for _ in range(self.depth):
            go_left = x.take(self.feature.take(node)) <= self.threshold.take(node)
            node = np.where(go_left, self.left.take(node), self.right.take(node))
        depths = float(np.cumsum(self.added.take(node))[-1])
        ratio = depths / self.denominator if self.denominator != 0 else 1.0
        return float(2.0 ** (-ratio))


class _Svm:
    """A fitted RBF one-class SVM's decision as arrays: the support vectors, their dual
    coefficients, ``gamma`` and the intercept (libsvm's kernel sum for one row on numpy)."""

    def __init__(self, svm: OneClassSVM) -> None:
        self.vectors = np.ascontiguousarray(svm.support_vectors_, dtype=np.float64)
        self.coef = np.ascontiguousarray(svm.dual_coef_[0], dtype=np.float64)
        self.gamma = float(svm._gamma)
        self.intercept = float(svm.intercept_[0])
        self.offset = float(svm.offset_[0])

    def raw(self, z: np.ndarray) -> float:
        """``-score_samples`` of one finite scaled row: ``-(Σ coef·exp(-γ‖sv - z‖²) - ρ + offset)``
        (libsvm adds the terms in another order: equal up to the last bits)."""
        d = self.vectors - z
        kernel = np.exp(-self.gamma * np.einsum("ij,ij->i", d, d))
        return -((float(self.coef @ kernel) + self.intercept) + self.offset)


class _OneRow:
    """Each method's raw score of one scaled row from arrays laid out once per detector, and
    the sorted training scores as lists (the percentile by bisection)."""

    def __init__(self, det: RareDeviceDetector) -> None:
        steps: list[Any] = []
        for m in det.methods:
            model = det.models_[m]
            if m == "isolation_forest":
                steps.append(_Forest(model).raw)
            elif m == "one_class_svm" and model.kernel == "rbf" and model.support_vectors_.size:
                steps.append(_Svm(model).raw)
            elif m in ("ecod", "autoencoder"):
                steps.append(lambda z, one=model.score_one: float(one(z)[0]))
            else:  # no reference to ``det``: the cache holds it weakly
                steps.append(lambda z, m=m, model=model: float(_raw_of(m, model, z[None, :])[0]))
        self.steps = steps
        self.train = [det.train_scores_[m].tolist() for m in det.methods]


_ONE_ROW: weakref.WeakKeyDictionary[RareDeviceDetector, _OneRow] = weakref.WeakKeyDictionary()


def _percentile_one(sorted_train: list[float], s: float) -> float:
    """:func:`_percentile_of` of one score, by bisection of the training scores as a list
    (the same comparisons, the same tolerance, the same division).

    Example:
        >>> _percentile_one([1.0, 2.0, 3.0], 2.0 + 1e-15), _percentile_one([1.0, 2.0, 3.0], 2.5)
        (0.5, 0.6666666666666666)
    """
    tol = 1e-9 * max(abs(s), 1.0)
    below = bisect.bisect_left(sorted_train, s - tol)
    at_or_below = bisect.bisect_right(sorted_train, s + tol)
    return (below + at_or_below) / (2.0 * len(sorted_train))


class RareDeviceDetector(BaseEstimator):  # type: ignore[misc]
    """Ensemble of four outlier detectors with comparable [0, 1] scores.

    Example:
        >>> import numpy as np
        >>> X = np.random.default_rng(0).normal(size=(50, 3))
        >>> X[0] = [9.0, -9.0, 9.0]
        >>> det = RareDeviceDetector(random_state=0).fit(X)
        >>> frame = det.score_frame(X, [f"d{i}" for i in range(50)])
        >>> frame.filter(pl.col("rank") == 1)["entity"].item()
        'd0'
    """

    def __init__(
        self,
        methods: tuple[str, ...] = METHODS,
        contamination: float = 0.05,
        random_state: int = 0,
        svm_max_samples: int = 2000,
        n_threads: int | None = 1,
    ) -> None:
        self.methods = methods
        self.contamination = contamination
        self.random_state = random_state
        self.svm_max_samples = svm_max_samples
        self.n_threads = n_threads

    def fit(self, X: np.ndarray, y: object = None) -> RareDeviceDetector:
        """Scale ``X`` robustly and fit every method; keep the training score distributions.

        Example:
            >>> import numpy as np
            >>> X = np.random.default_rng(0).normal(size=(20, 2))
            >>> RareDeviceDetector(methods=("ecod",)).fit(X).threshold_ > 0.5
            True
        """
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown or not self.methods:
            raise ConfigError(
                f"unknown rare-device method '{unknown[0] if unknown else ''}'",
                fix=f"choose one or more of {', '.join(METHODS)}",
            )
        if not 0.0 < self.contamination < 0.5:
            raise ConfigError(
                f"contamination {self.contamination} is outside (0, 0.5)",
                fix="pass contamination in (0, 0.5): the expected share of rare devices, e.g. 0.05",
            )
        X = validate_data(self, X, dtype=np.float64)
        with threadpool_limits(self.n_threads):
            self._fit(X)
        return self

    def _fit(self, X: np.ndarray) -> None:
        self.center_, self.scale_ = robust_scale(X)
        Z = (X - self.center_) / self.scale_
        models: dict[str, BaseEstimator] = {}
        for m in self.methods:
            if m == "isolation_forest":
                models[m] = IsolationForest(n_estimators=200, random_state=self.random_state)
            elif m == "one_class_svm":
                models[m] = OneClassSVM(nu=0.5, gamma="scale")
            elif m == "ecod":
                models[m] = ECOD()
            else:
                models[m] = AutoencoderDetector(random_state=self.random_state)
            if m == "one_class_svm" and Z.shape[0] > self.svm_max_samples:
                rng = np.random.default_rng(self.random_state)
                rows = np.sort(rng.choice(Z.shape[0], size=self.svm_max_samples, replace=False))
                models[m].fit(Z[rows])
            else:
                models[m].fit(Z)
        self.models_ = models
        self.n_features_in_ = X.shape[1]
        raw = {m: self._raw(m, Z) for m in self.methods}
        self.train_scores_ = {m: np.sort(r) for m, r in raw.items()}
        # the training rows' normalised scores, from the raw scores just computed
        self.train_normalised_ = self._normalise([raw[m] for m in self.methods])
        combined = self.train_normalised_.mean(axis=1)
        self.threshold_ = float(np.quantile(combined, 1.0 - self.contamination))

    def _raw(self, method: str, Z: np.ndarray) -> np.ndarray:
        """Raw score of one method, oriented so that higher = more anomalous."""
        return _raw_of(method, self.models_[method], Z)

    def raw_one(self, method: str, z: np.ndarray) -> np.ndarray:
        """:meth:`_raw` of one scaled row (1-D, finite) on numpy, without each model's input
        checks: the isolation forest's trees walked for all trees at once
        (:func:`forest_score_one`), ECOD's and the autoencoder's own ``score_one``; the
        same numbers as the batch path up to the last bits (and
        :meth:`normalised_scores` ties scores that close); an array of one score.

        Example:
            >>> import numpy as np
            >>> X = np.random.default_rng(0).normal(size=(40, 3))
            >>> det = RareDeviceDetector(methods=("isolation_forest", "ecod")).fit(X)
            >>> Z = (X - det.center_) / det.scale_
            >>> [bool(np.isclose(det.raw_one(m, Z[5])[0], det._raw(m, Z[5:6])[0], rtol=1e-12))
            ...  for m in det.methods]
            [True, True]
        """
        model = self.models_[method]
        if method == "isolation_forest":
            return np.array([-forest_score_one(model, z)])
        score_one = getattr(model, "score_one", None)
        if score_one is not None:
            return np.asarray(score_one(z), dtype=float)
        return self._raw(method, z[None, :])

    def normalised_one(self, z: np.ndarray) -> list[float]:
        """One scaled finite row's normalised score per method (a row of
        :meth:`normalised_scores`), from arrays laid out once per detector: the isolation
        forest's trees walked together, the one-class SVM's kernel sum, ECOD's and the
        autoencoder's ``score_one``, each percentile by bisection. The same numbers as the
        batch path (raw scores equal up to the last bits, which the percentile's tolerance ties).

        Example:
            >>> import numpy as np
            >>> X = np.random.default_rng(0).normal(size=(40, 3))
            >>> det = RareDeviceDetector().fit(X)
            >>> Z = (X - det.center_) / det.scale_
            >>> det.normalised_one(Z[5]) == det.normalised_scores(X[5:6])[0].tolist()
            True
        """
        one = _ONE_ROW.get(self)
        if one is None:
            one = _ONE_ROW[self] = _OneRow(self)
        return [
            _percentile_one(train, step(z))
            for step, train in zip(one.steps, one.train, strict=True)
        ]

    def normalised_scores(self, X: np.ndarray) -> np.ndarray:
        """One column per method: rank percentile among the training scores, in [0, 1].

        Example:
            >>> import numpy as np
            >>> X = np.random.default_rng(0).normal(size=(20, 2))
            >>> s = RareDeviceDetector(methods=("ecod",)).fit(X).normalised_scores(X)
            >>> s.shape, bool(s.min() >= 0 and s.max() <= 1)
            ((20, 1), True)
        """
        check_is_fitted(self, "models_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        Z = (X - self.center_) / self.scale_
        with threadpool_limits(self.n_threads):
            raw = [self._raw(m, Z) for m in self.methods]
        return self._normalise(raw)

    def _normalise(self, raw: list[np.ndarray]) -> np.ndarray:
        cols = [
            _percentile_of(self.train_scores_[m], r) for m, r in zip(self.methods, raw, strict=True)
        ]
        return np.column_stack(cols)

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        """Combined score: the mean of the normalised method scores.

        Example:
            >>> import numpy as np
            >>> X = np.vstack([np.random.default_rng(0).normal(size=(30, 2)), [[8.0, 8.0]]])
            >>> det = RareDeviceDetector(methods=("ecod", "isolation_forest")).fit(X)
            >>> int(np.argmax(det.score_samples(X)))
            30
        """
        return np.asarray(self.normalised_scores(X).mean(axis=1))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """True for rows whose combined score is above the fitted threshold.

        Example:
            >>> import numpy as np
            >>> X = np.vstack([np.random.default_rng(0).normal(size=(30, 2)), [[8.0, 8.0]]])
            >>> bool(RareDeviceDetector(methods=("ecod",)).fit(X).predict(X)[30])
            True
        """
        return np.asarray(self.score_samples(X) > self.threshold_)

    def score_frame(self, X: np.ndarray, entities: Sequence[str]) -> pl.DataFrame:
        """Entity, one normalised score per method, ``combined``, ``rank`` (1 = rarest), ``is_rare``.

        Example:
            >>> import numpy as np
            >>> X = np.random.default_rng(0).normal(size=(10, 2))
            >>> det = RareDeviceDetector(methods=("ecod",)).fit(X)
            >>> det.score_frame(X, list("abcdefghij")).columns
            ['entity', 'ecod', 'combined', 'rank', 'is_rare']
        """
        return self._frame(self.normalised_scores(X), entities)

    def _frame(self, norm: np.ndarray, entities: Sequence[str]) -> pl.DataFrame:
        if len(entities) != norm.shape[0]:
            raise DataError(
                f"{len(entities)} device ids for {norm.shape[0]} fingerprint rows",
                fix="pass one id per row of X",
            )
        combined = norm.mean(axis=1)
        frame = pl.DataFrame({"entity": [str(e) for e in entities]}).with_columns(
            *(pl.Series(m, norm[:, i]) for i, m in enumerate(self.methods)),
            pl.Series("combined", combined),
        )
        return frame.with_columns(
            pl.col("combined").rank(method="ordinal", descending=True).cast(pl.Int64).alias("rank"),
            (pl.col("combined") > self.threshold_).alias("is_rare"),
        )


def top_deviating_features(
    X: np.ndarray, feature_names: Sequence[str], rows: Sequence[int], n: int = 5
) -> dict[int, list[tuple[str, float]]]:
    """For each row, the ``n`` features with the largest robust z (vs fleet median/MAD).

    The scale is 1.4826·MAD, but at least a quarter of the standard deviation
    (so a column whose bulk is nearly constant, such as ADF p-values that are
    all ~0, does not turn a modest difference into millions of σ), and 1 for a
    constant column.

    Example:
        >>> import numpy as np
        >>> X = np.array([[0.0, 1.0], [1.0, 2.0], [2.0, 3.0], [1.0, 90.0]])
        >>> top_deviating_features(X, ["a", "b"], [3], n=1)
        {3: [('b', 9.18)]}
    """
    X = np.asarray(X, dtype=float)
    if X.shape[1] != len(feature_names):
        raise DataError(
            f"{len(feature_names)} feature names for {X.shape[1]} columns",
            fix="pass one name per column of X",
        )
    med = np.median(X, axis=0)
    mad = 1.4826 * np.median(np.abs(X - med), axis=0)
    std = X.std(axis=0)
    scale = np.maximum(mad, _FLOOR * std)
    scale = np.where(scale > 0, scale, 1.0)
    idx = np.asarray(rows, dtype=int)
    Z = (X[idx] - med) / scale
    order = np.argsort(-np.abs(Z), axis=1, kind="stable")[:, :n]
    names = np.asarray(feature_names, dtype=object)
    return {
        int(r): [(str(names[j]), round(float(Z[i, j]), 2)) for j in order[i]]
        for i, r in enumerate(idx)
    }


@dataclass(frozen=True)
class RareDevices:
    """Rare-device scores of a fleet and the top devices with their deviating features."""

    scores: pl.DataFrame
    top: pl.DataFrame
    detector: RareDeviceDetector
    feature_names: list[str]
    dropped_features: list[str]


def _describe(features: list[tuple[str, float]]) -> str:
    return ", ".join(f"{name} {z:+.1f}σ" for name, z in features)


def rank_rare_devices(
    fingerprints: pl.DataFrame | pd.DataFrame,
    *,
    entity: str,
    top_n: int = 20,
    random_state: int = 0,
    contamination: float = 0.05,
    methods: tuple[str, ...] = METHODS,
    n_features: int = 3,
) -> RareDevices:
    """Score every device, rank them, and describe the ``top_n`` by their deviating features.

    ``scores`` and ``top`` name the device column ``entity`` as given.

    Example:
        >>> import numpy as np
        >>> import polars as pl
        >>> X = np.random.default_rng(3).normal(size=(40, 3))
        >>> X[5, 0] = 10.0
        >>> fp = pl.DataFrame({"id": [str(i) for i in range(40)], "a": X[:, 0], "b": X[:, 1],
        ...                    "c": X[:, 2]})
        >>> rank_rare_devices(fp, entity="id", top_n=2).top.columns
        ['id', 'combined', 'rank', 'is_rare', 'deviating_features']
    """
    fingerprints = as_polars(fingerprints, what="fingerprints")
    m = fingerprint_matrix(fingerprints, entity=entity)
    det = RareDeviceDetector(
        methods=methods, contamination=contamination, random_state=random_state
    ).fit(m.X)
    scores = det._frame(det.train_normalised_, m.entities).with_row_index("_row")
    top = scores.sort("rank").head(top_n)
    rows = top.get_column("_row").to_list()
    feats = top_deviating_features(m.X, m.feature_names, rows, n=n_features)
    top = top.select(
        pl.col("entity"),
        "combined",
        "rank",
        "is_rare",
        pl.Series("deviating_features", [_describe(feats[r]) for r in rows], dtype=pl.String),
    ).rename({"entity": entity})
    return RareDevices(
        scores=scores.drop("_row").rename({"entity": entity}),
        top=top,
        detector=det,
        feature_names=m.feature_names,
        dropped_features=m.dropped,
    )
