"""XGBoost classifier from categorical attributes to a pattern (cluster) id.

:class:`PatternClassifier` one-hot encodes its categorical columns itself (the
levels are learned in ``fit``) and wraps :class:`xgboost.XGBClassifier`. Every
probability comes from ``booster_.inplace_predict``; batch
(:meth:`~PatternClassifier.predict_proba`) and streaming
(:meth:`~PatternClassifier.predict_proba_one`) prediction give a row bitwise
the same probabilities (XGBoost scores a row the same alone or in a batch).

Why a table: one ``inplace_predict`` call costs a fixed ~50–500 µs of Python
and C set-up, too much per streamed instance. An instance is a combination of
levels (or "unknown") of a few attributes, so when the number of combinations,
the product of (levels + 1) over the columns, is at most ``table_limit``,
``fit`` scores every combination in one batched ``inplace_predict`` call and
keeps the rows in ``table_``; ``predict_proba_one`` then maps the instance's
values to a mixed-radix code with one dict look-up per attribute and copies
that row (a few µs). Above the bound it calls ``inplace_predict`` on the
instance's one-hot row.

Training collapses identical (levels, label) rows into one row weighted by its
count: XGBoost sums the same gradients, so the model is the one the full data
gives (to float rounding), and a million rows train in about a second.

Levels are normalised (:func:`as_level`): ``6``, ``6.0`` and ``"6"`` are one
level, ``"6"``; booleans are ``true``/``false``. The one-hot matrix is sparse
(SciPy CSR), so a column with 100,000 levels costs memory per row, not per
level times row.

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

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl
import xgboost as xgb
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from opslens.errors import DataError, InstanceError

__all__ = ["UNKNOWN_CATEGORY_POLICY", "PatternClassifier", "as_level", "normalize_levels"]

UNKNOWN_CATEGORY_POLICY = (
    "a category not seen in training leaves that attribute's one-hot block all zeros; "
    "probabilities are still returned and the attribute is listed as unknown"
)


def _number_text(x: float) -> str:
    if x.is_integer() and abs(x) < 2**53:
        return str(int(x))
    return repr(x)


def as_level(value: object) -> str | None:
    """The level of one scalar value: numbers written one way, so ``6``, ``6.0``, ``"6"`` agree.

    Text that reads as a finite number is that number; other text is kept as it is.
    A non-scalar value is a TypeError naming its type.

    Example:
        >>> as_level(6), as_level(6.0), as_level("6"), as_level(" 6.0 "), as_level(2.5), as_level("R01")
        ('6', '6', '6', '6', '2.5', 'R01')
        >>> as_level(True), as_level(None)
        ('true', None)
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return _number_text(float(value)) if abs(value) < 2**53 else f"{float(value):e}"
    if isinstance(value, float):
        return _number_text(value) if math.isfinite(value) else str(value)
    if isinstance(value, str):
        try:
            x = float(value)
        except (ValueError, OverflowError):
            return value
        return _number_text(x) if math.isfinite(x) else value
    raise TypeError(type(value).__name__)


def normalize_levels(series: pl.Series) -> pl.Series:
    """A column's values as levels (:func:`as_level`, mapped once per distinct value); null stays null.

    Example:
        >>> normalize_levels(pl.Series("h", [6.0, 7.5, None])).to_list()
        ['6', '7.5', None]
        >>> normalize_levels(pl.Series("h", ["6", "6.0", "x"])).to_list()
        ['6', '6', 'x']
    """
    text = series.cast(pl.String)
    distinct = text.drop_nulls().unique().to_list()
    mapping = {v: as_level(v) for v in distinct}
    if all(k == v for k, v in mapping.items()):
        return text
    return text.replace_strict(mapping, default=None, return_dtype=pl.String)


def _distinct_rows(
    codes: np.ndarray, radix: Sequence[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct rows of a non-negative int matrix: (first index, inverse, count) per row.

    Example:
        >>> first, inverse, count = _distinct_rows(np.array([[1, 0], [0, 2], [1, 0]]), [2, 3])
        >>> first.tolist(), inverse.tolist(), count.tolist()
        ([0, 1], [0, 1, 0], [2, 1])
    """
    r = np.asarray(radix, dtype=np.float64)
    if np.sum(np.log2(np.maximum(r, 2))) < 62:  # mixed-radix key fits in int64
        weights = np.cumprod(np.concatenate([[1.0], r[:-1]])).astype(np.int64)
        _, first, inverse, count = np.unique(
            codes @ weights, return_index=True, return_inverse=True, return_counts=True
        )
    else:
        _, first, inverse, count = np.unique(
            codes, axis=0, return_index=True, return_inverse=True, return_counts=True
        )
    return first, inverse.ravel(), count


class PatternClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Gradient-boosted trees on one-hot categoricals, with a fast single-instance path.

    Learned: ``levels_`` (sorted levels per attribute), ``feature_names_``
    (``col=level``), ``classes_``, ``model_`` (the fitted XGBClassifier),
    ``booster_`` (its Booster, which computes every probability), ``codes_``
    (per attribute, level -> code 1..L; 0 is "unknown"), ``radix_weights_``
    (mixed-radix weight of each attribute's code) and ``table_`` (the
    probabilities of every code combination, row = sum of code * weight; None
    when the combinations exceed ``table_limit``: then each streamed instance
    is one ``inplace_predict`` call on its one-hot row).

    Example:
        >>> X = pl.DataFrame({"c": ["a", "b", "c"] * 10})
        >>> model = PatternClassifier(["c"], n_estimators=10).fit(X, np.array([0, 1, 2] * 10))
        >>> model.predict(pl.DataFrame({"c": ["c", "a"]})).tolist(), model.feature_names_
        ([2, 0], ['c=a', 'c=b', 'c=c'])
        >>> model.table_.shape  # 3 levels + unknown
        (4, 3)
    """

    def __init__(
        self,
        categorical: Sequence[str],
        n_estimators: int = 200,
        max_depth: int = 4,
        learning_rate: float = 0.1,
        random_state: int = 0,
        n_jobs: int = 1,
        table_limit: int = 200_000,
    ) -> None:
        self.categorical = categorical
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.table_limit = table_limit

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
                normalize_levels(X[col])
                .replace_strict(levels, list(range(len(levels))), default=-1, return_dtype=pl.Int64)
                .fill_null(-1)
                .to_numpy()
            )
        return out

    def _onehot(self, codes: np.ndarray) -> sparse.csr_matrix | np.ndarray:
        """Sparse float32 one-hot rows from level codes (an unknown level: an empty block).

        A model fitted by opslens 0.1 (no ``sparse_``) was trained on dense rows
        and is scored on dense rows, so it answers as it did.
        """
        n = codes.shape[0]
        if not getattr(self, "sparse_", False):
            dense = np.zeros((n, len(self.feature_names_)), dtype=np.float32)
            for j, offset in enumerate(self.offsets_):
                known = codes[:, j] >= 0
                dense[np.flatnonzero(known), offset + codes[known, j]] = 1.0
            return dense
        known = codes >= 0
        rows = np.broadcast_to(np.arange(n)[:, None], codes.shape)[known]
        cols = (codes + np.asarray(self.offsets_, dtype=np.int64))[known]
        data = np.ones(rows.size, dtype=np.float32)
        return sparse.csr_matrix((data, (rows, cols)), shape=(n, len(self.feature_names_)))

    def _encode(self, X: pl.DataFrame) -> sparse.csr_matrix | np.ndarray:
        """Sparse float32 one-hot matrix of ``X`` (unknown or null levels: an empty block)."""
        return self._onehot(self._codes(X))

    def _proba(self, M: sparse.csr_matrix | np.ndarray) -> np.ndarray:
        """Class probabilities of the sparse one-hot rows ``M``, from the booster."""
        p = np.asarray(self.booster_.inplace_predict(M, validate_features=False))
        if p.ndim == 1:  # binary: P(class 1)
            p = np.column_stack([1.0 - p, p])
        return p

    def _build_table(self, radix: Sequence[int]) -> np.ndarray:
        """Probabilities of every code combination, row ``sum(code * weight)``.

        One ``inplace_predict`` call on a sparse matrix of every combination.
        """
        keys = np.arange(math.prod(radix), dtype=np.int64)
        weights = np.asarray(self.radix_weights_, dtype=np.int64)
        codes = keys[:, None] // weights % np.asarray(radix, dtype=np.int64) - 1
        table = self._proba(self._onehot(codes))
        table.flags.writeable = False
        return table

    # ---- fit / predict --------------------------------------------------------------
    def fit(self, X: pl.DataFrame, y: np.ndarray) -> PatternClassifier:
        """Learn the levels of each categorical column, train XGBoost, tabulate if small.

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
            c: sorted(normalize_levels(X[c]).drop_nulls().unique().to_list())
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
        radix = [len(self.levels_[c]) + 1 for c in self.categorical]
        self.codes_ = [
            {lv: i + 1 for i, lv in enumerate(self.levels_[c])} for c in self.categorical
        ]
        self.radix_weights_ = [math.prod(radix[:j]) for j in range(len(radix))]
        self.sparse_ = True
        model = xgb.XGBClassifier(
            n_estimators=self.n_estimators,
            max_depth=self.max_depth,
            learning_rate=self.learning_rate,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
            tree_method="hist",
        )
        # identical (levels, label) rows train as one row weighted by its count:
        # the same gradient sums as the full data, at a fraction of the cost
        label = np.searchsorted(classes, y)
        keyed = np.column_stack([self._codes(X) + 1, label])
        first, _, count = _distinct_rows(keyed, [*radix, classes.size])
        M = self._onehot(keyed[first, :-1] - 1)
        model.fit(M, label[first], sample_weight=count.astype(np.float64))
        self.model_ = model
        self.booster_ = model.get_booster()
        fits = math.prod(radix) <= self.table_limit
        self.table_: np.ndarray | None = self._build_table(radix) if fits else None
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
        first, inverse, _ = _distinct_rows(
            codes + 1, [len(self.levels_[c]) + 1 for c in self.categorical]
        )
        proba: np.ndarray = self._proba(self._onehot(codes[first]))[inverse]
        return proba

    def known_levels(self, X: pl.DataFrame) -> np.ndarray:
        """Boolean (rows, attributes): whether each value is a level seen in ``fit``.

        Example:
            >>> X = pl.DataFrame({"c": ["a", "b"] * 5})
            >>> m = PatternClassifier(["c"], n_estimators=2).fit(X, np.array([0, 1] * 5))
            >>> m.known_levels(pl.DataFrame({"c": ["a", "z"]})).ravel().tolist()
            [True, False]
        """
        check_is_fitted(self, "booster_")
        self._check_columns(X)
        known: np.ndarray = self._codes(X) >= 0
        return known

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

        A copy of a ``table_`` row when ``fit`` tabulated the combinations
        (at most ``table_limit``); otherwise (fallback) one
        ``booster_.inplace_predict`` call on the instance's float32 one-hot row.

        Example:
            >>> X = pl.DataFrame({"c": ["a", "b"] * 5})
            >>> m = PatternClassifier(["c"], n_estimators=20).fit(X, np.array([0, 1] * 5))
            >>> p, unknown = m.predict_proba_one({"c": "b"})
            >>> bool(np.array_equal(p, m.predict_proba(X[1:2])[0])), unknown
            (True, [])
        """
        if "booster_" not in self.__dict__:  # cheap check on the hot path
            check_is_fitted(self, "booster_")
        key = 0
        codes: list[int] = []
        unknown: list[str] = []
        for col, code_of, weight in zip(
            self.categorical, self.codes_, self.radix_weights_, strict=True
        ):
            if col not in instance:
                raise InstanceError(
                    f"instance has no attribute {col!r} (needs {list(self.categorical)})",
                    fix=f"add {col!r} to every streamed instance",
                )
            try:
                level = as_level(instance[col])
            except TypeError as err:
                raise InstanceError(
                    f"attribute {col!r} is a {err}, not a single value",
                    fix=f"send {col!r} as a string or number",
                ) from None
            code = code_of.get(level, 0) if level is not None else 0
            if code == 0:
                unknown.append(col)
            key += code * weight
            codes.append(code)
        if self.table_ is not None:
            return self.table_[key].copy(), unknown
        return self._proba(self._onehot(np.asarray([codes], dtype=np.int64) - 1))[0], unknown

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
