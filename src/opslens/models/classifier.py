"""XGBoost classifier from categorical attributes to a pattern (cluster) id.

:class:`PatternClassifier` one-hot encodes its categorical columns itself (the
levels are learned in ``fit``) and wraps :class:`xgboost.XGBClassifier`. Batch
(:meth:`~PatternClassifier.predict_proba`) and streaming
(:meth:`~PatternClassifier.predict_proba_one`) prediction build the same
float32 one-hot rows and run them through the same compiled kernel, so a
streamed instance gets bitwise the probabilities batch prediction gives its row.

The kernel walks the fitted booster's trees (exported once in ``fit``: split
feature, threshold, children, leaf value, class of each tree, base margin),
sums leaf values in float32 in tree order as XGBoost does, and applies the
softmax (or sigmoid for two classes). ``fit`` checks that it agrees with
``booster_.inplace_predict`` to 1e-5. Why not call the booster per instance:
``inplace_predict`` costs a fixed ~0.1–0.5 ms per call in Python and C set-up,
the kernel a few microseconds.

Unknown categories (the defined answer): a value not seen in ``fit`` leaves
that attribute's one-hot block all zeros, as if the level were unseen; the
probabilities are still returned, and ``predict_proba_one`` lists the
attributes whose value was unknown. A missing attribute (or a non-scalar
value) is an :class:`~opslens.errors.InstanceError` naming it.

Example:
    >>> import polars as pl, numpy as np
    >>> X = pl.DataFrame({"route": ["A", "B"] * 20, "band": ["x"] * 20 + ["y"] * 20})
    >>> y = np.array([0, 1] * 20)
    >>> model = PatternClassifier(["route", "band"], n_estimators=5).fit(X, y)
    >>> proba, unknown = model.predict_proba_one({"route": "A", "band": "z"})
    >>> int(proba.argmax()), unknown
    (0, ['band'])
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
import polars as pl
import xgboost as xgb
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from opslens.errors import DataError, InstanceError

__all__ = ["UNKNOWN_CATEGORY_POLICY", "PatternClassifier"]

UNKNOWN_CATEGORY_POLICY = (
    "a category not seen in training leaves that attribute's one-hot block all zeros; "
    "probabilities are still returned and the attribute is listed as unknown"
)


def _as_level(value: object) -> str | None:
    """The string level of one scalar value, matching polars' cast to String."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise TypeError(type(value).__name__)


@numba.njit(cache=True)  # type: ignore[untyped-decorator]
def _forest_proba(
    X: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    feature: np.ndarray,
    threshold: np.ndarray,
    default_left: np.ndarray,
    value: np.ndarray,
    tree_class: np.ndarray,
    base: np.ndarray,
    binary: bool,
) -> np.ndarray:  # pragma: no cover - compiled
    """Class probabilities of each row of float32 ``X`` from exported trees."""
    n = X.shape[0]
    k = base.shape[0]
    out = np.empty((n, 2 if binary else k), dtype=np.float32)
    margin = np.empty(k, dtype=np.float32)
    for i in range(n):
        for c in range(k):
            margin[c] = base[c]
        for t in range(left.shape[0]):
            node = 0
            while left[t, node] >= 0:
                x = X[i, feature[t, node]]
                if np.isnan(x):
                    go_left = default_left[t, node]
                else:
                    go_left = x < threshold[t, node]
                node = left[t, node] if go_left else right[t, node]
            margin[tree_class[t]] += value[t, node]
        if binary:
            p = np.float32(1.0 / (1.0 + np.exp(-np.float64(margin[0]))))
            out[i, 0] = np.float32(1.0) - p
            out[i, 1] = p
        else:
            top = np.float64(margin[0])
            for c in range(1, k):
                top = max(top, np.float64(margin[c]))
            total = 0.0
            for c in range(k):
                total += np.exp(np.float64(margin[c]) - top)
            for c in range(k):
                out[i, c] = np.float32(np.exp(np.float64(margin[c]) - top) / total)
    return out


@dataclass(frozen=True)
class _Forest:
    """A booster's trees as padded (n_trees, max_nodes) arrays; a leaf has ``left == -1``."""

    left: np.ndarray
    right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    default_left: np.ndarray
    value: np.ndarray
    tree_class: np.ndarray
    base: np.ndarray
    binary: bool

    def proba(self, M: np.ndarray) -> np.ndarray:
        """Class probabilities of the float32 rows ``M``."""
        out: np.ndarray = _forest_proba(
            M,
            self.left,
            self.right,
            self.feature,
            self.threshold,
            self.default_left,
            self.value,
            self.tree_class,
            self.base,
            self.binary,
        )
        return out


def _export_trees(booster: xgb.Booster) -> _Forest:
    """The booster's trees as padded arrays for :func:`_forest_proba`."""
    model = json.loads(booster.save_raw("json"))
    learner = model["learner"]
    trees = learner["gradient_booster"]["model"]["trees"]
    shape = (len(trees), max(len(t["left_children"]) for t in trees))
    left = np.full(shape, -1, dtype=np.int32)
    right = np.full(shape, -1, dtype=np.int32)
    feature = np.zeros(shape, dtype=np.int32)
    threshold = np.zeros(shape, dtype=np.float32)
    default_left = np.zeros(shape, dtype=np.bool_)
    for t, tree in enumerate(trees):  # once per tree at fit time, not per row
        if any(int(s) != 0 for s in tree["split_type"]):
            raise NotImplementedError("categorical splits are not exported")
        m = len(tree["left_children"])
        left[t, :m] = tree["left_children"]
        right[t, :m] = tree["right_children"]
        feature[t, :m] = tree["split_indices"]
        threshold[t, :m] = np.asarray(tree["split_conditions"], dtype=np.float32)
        default_left[t, :m] = np.asarray(tree["default_left"], dtype=bool)
    base = np.atleast_1d(
        np.asarray(json.loads(learner["learner_model_param"]["base_score"]), dtype=np.float64)
    )
    binary = learner["objective"]["name"] == "binary:logistic"
    if binary:  # stored as a probability; the margin starts at its logit
        base = np.log(base / (1.0 - base))
    return _Forest(
        left=left,
        right=right,
        feature=feature,
        threshold=threshold,
        default_left=default_left,
        value=threshold.copy(),  # a leaf's split_condition holds its value
        tree_class=np.asarray(learner["gradient_booster"]["model"]["tree_info"], dtype=np.int32),
        base=base.astype(np.float32),
        binary=binary,
    )


class PatternClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Gradient-boosted trees on one-hot categoricals, with a fast single-instance path.

    Learned: ``levels_`` (sorted levels per attribute), ``feature_names_``
    (``col=level``), ``classes_``, ``model_`` (the fitted XGBClassifier) and
    ``booster_`` (its Booster, used for every prediction).

    Example:
        >>> X = pl.DataFrame({"c": ["a", "b", "c"] * 10})
        >>> model = PatternClassifier(["c"], n_estimators=10).fit(X, np.array([0, 1, 2] * 10))
        >>> model.predict(pl.DataFrame({"c": ["c", "a"]})).tolist(), model.feature_names_
        ([2, 0], ['c=a', 'c=b', 'c=c'])
    """

    def __init__(
        self,
        categorical: Sequence[str],
        n_estimators: int = 200,
        max_depth: int = 4,
        learning_rate: float = 0.1,
        random_state: int = 0,
        n_jobs: int = 1,
    ) -> None:
        self.categorical = categorical
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.random_state = random_state
        self.n_jobs = n_jobs

    # ---- encoding -------------------------------------------------------------------
    def _check_columns(self, X: pl.DataFrame) -> None:
        missing = [c for c in self.categorical if c not in X.columns]
        if missing:
            raise DataError(
                f"categorical column(s) {missing} missing (columns: {X.columns})",
                fix="pass a frame with every column the classifier was configured with",
            )

    def _codes(self, X: pl.DataFrame) -> np.ndarray:
        """Level index per row and categorical column (-1: unknown or null)."""
        out = np.empty((X.height, len(self.categorical)), dtype=np.int64)
        for j, col in enumerate(self.categorical):
            levels = self.levels_[col]
            out[:, j] = (
                X[col]
                .cast(pl.String)
                .replace_strict(levels, list(range(len(levels))), default=-1, return_dtype=pl.Int64)
                .fill_null(-1)
                .to_numpy()
            )
        return out

    def _onehot(self, codes: np.ndarray) -> np.ndarray:
        """Float32 one-hot rows from level codes (an unknown level: all-zero block)."""
        out = np.zeros((codes.shape[0], len(self.feature_names_)), dtype=np.float32)
        rows = np.arange(codes.shape[0])
        for j, offset in enumerate(self.offsets_):
            known = codes[:, j] >= 0
            out[rows[known], offset + codes[known, j]] = 1.0
        return out

    def _encode(self, X: pl.DataFrame) -> np.ndarray:
        """Float32 one-hot matrix of ``X`` (unknown or null levels: all-zero block)."""
        return self._onehot(self._codes(X))

    def _proba(self, M: np.ndarray) -> np.ndarray:
        return self.forest_.proba(M)

    def _check_export(self, M: np.ndarray) -> None:
        """Raise if the exported trees disagree with the booster (a bug, not bad input)."""
        ref = np.asarray(self.booster_.inplace_predict(M, validate_features=False))
        if ref.ndim == 1:
            ref = np.column_stack([1.0 - ref, ref])
        if not np.allclose(self._proba(M), ref, rtol=0.0, atol=1e-5):
            raise RuntimeError(f"exported trees disagree with xgboost {xgb.__version__}")

    # ---- fit / predict --------------------------------------------------------------
    def fit(self, X: pl.DataFrame, y: np.ndarray) -> PatternClassifier:
        """Learn the levels of each categorical column and train the XGBoost model.

        Example:
            >>> X = pl.DataFrame({"c": ["a", "b"] * 5})
            >>> PatternClassifier(["c"], n_estimators=2).fit(X, np.array([0, 1] * 5)).levels_
            {'c': ['a', 'b']}
        """
        if not self.categorical:
            raise DataError(
                "no categorical columns to train on", fix="list them in columns.categorical"
            )
        self._check_columns(X)
        y = np.asarray(y)
        if y.shape[0] != X.height:
            raise DataError(
                f"{X.height} rows but {y.shape[0]} labels", fix="pass one label per row"
            )
        classes = np.unique(y)
        if classes.size < 2:
            raise DataError(
                f"only one class ({classes.tolist()}) to learn",
                fix="cluster into at least two patterns",
            )
        self.classes_ = classes
        self.levels_ = {
            c: sorted(X[c].cast(pl.String).drop_nulls().unique().to_list())
            for c in self.categorical
        }
        names: list[str] = []
        offsets: list[int] = []
        for c in self.categorical:
            offsets.append(len(names))
            names.extend(f"{c}={lv}" for lv in self.levels_[c])
        self.offsets_ = offsets
        self.feature_names_ = names
        self.index_ = {
            c: {lv: off + i for i, lv in enumerate(self.levels_[c])}
            for c, off in zip(self.categorical, offsets, strict=True)
        }
        model = xgb.XGBClassifier(
            n_estimators=self.n_estimators,
            max_depth=self.max_depth,
            learning_rate=self.learning_rate,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
            tree_method="hist",
        )
        M = self._encode(X)
        model.fit(M, np.searchsorted(classes, y))
        self.model_ = model
        self.booster_ = model.get_booster()
        self.forest_ = _export_trees(self.booster_)
        self._check_export(M[:256])
        return self

    def predict_proba(self, X: pl.DataFrame) -> np.ndarray:
        """Class probabilities per row (columns in ``classes_`` order), float32.

        Example:
            >>> X = pl.DataFrame({"c": ["a", "b"] * 5})
            >>> m = PatternClassifier(["c"], n_estimators=20).fit(X, np.array([0, 1] * 5))
            >>> m.predict_proba(X[:1]).shape
            (1, 2)
        """
        check_is_fitted(self, "booster_")
        self._check_columns(X)
        codes = self._codes(X)
        # rows are combinations of a few levels: score each distinct row once
        radix = np.array([len(self.levels_[c]) + 1 for c in self.categorical], dtype=np.float64)
        if np.sum(np.log2(radix)) < 62:
            weights = np.cumprod(np.concatenate([[1], radix[:-1]])).astype(np.int64)
            keys = (codes + 1) @ weights
            _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
            distinct = codes[first]
        else:
            distinct, inverse = np.unique(codes, axis=0, return_inverse=True)
        proba: np.ndarray = self._proba(self._onehot(distinct))[inverse.ravel()]
        return proba

    def predict(self, X: pl.DataFrame) -> np.ndarray:
        """Most probable class per row.

        Example:
            >>> X = pl.DataFrame({"c": ["a", "b"] * 5})
            >>> PatternClassifier(["c"], n_estimators=20).fit(X, np.array([3, 7] * 5)).predict(X[:2]).tolist()
            [3, 7]
        """
        labels: np.ndarray = self.classes_[self.predict_proba(X).argmax(axis=1)]
        return labels

    def predict_proba_one(self, instance: Mapping[str, object]) -> tuple[np.ndarray, list[str]]:
        """Probabilities for one instance (a dict) and the attributes whose value was unknown.

        Example:
            >>> X = pl.DataFrame({"c": ["a", "b"] * 5})
            >>> m = PatternClassifier(["c"], n_estimators=20).fit(X, np.array([0, 1] * 5))
            >>> p, unknown = m.predict_proba_one({"c": "b"})
            >>> bool(np.array_equal(p, m.predict_proba(X[1:2])[0])), unknown
            (True, [])
        """
        if "forest_" not in self.__dict__:  # cheap check on the hot path
            check_is_fitted(self, "forest_")
        row = np.zeros((1, len(self.feature_names_)), dtype=np.float32)
        unknown: list[str] = []
        for col in self.categorical:
            if col not in instance:
                raise InstanceError(
                    f"instance has no attribute {col!r} (needs {list(self.categorical)})",
                    fix=f"add {col!r} to every streamed instance",
                )
            try:
                level = _as_level(instance[col])
            except TypeError as err:
                raise InstanceError(
                    f"attribute {col!r} is a {err}, not a single value",
                    fix=f"send {col!r} as a string or number",
                ) from None
            j = self.index_[col].get(level) if level is not None else None
            if j is None:
                unknown.append(col)
            else:
                row[0, j] = 1.0
        return self._proba(row)[0], unknown

    def to_metadata(self) -> dict[str, Any]:
        """A JSON-able description: columns, levels, classes, parameters, unknown policy.

        Example:
            >>> X = pl.DataFrame({"c": ["a", "b"] * 5})
            >>> meta = PatternClassifier(["c"], n_estimators=2).fit(X, np.array([0, 1] * 5)).to_metadata()
            >>> meta["classes"], meta["levels"], meta["params"]["n_estimators"]
            ([0, 1], {'c': ['a', 'b']}, 2)
        """
        check_is_fitted(self, "booster_")
        params = self.get_params()
        params["categorical"] = list(self.categorical)
        return {
            "categorical": list(self.categorical),
            "levels": {c: list(v) for c, v in self.levels_.items()},
            "classes": self.classes_.tolist(),
            "feature_names": list(self.feature_names_),
            "params": params,
            "xgboost_version": xgb.__version__,
            "unknown_category": UNKNOWN_CATEGORY_POLICY,
        }
