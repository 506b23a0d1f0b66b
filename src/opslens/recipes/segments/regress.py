"""One target's models: a LightGBM regressor per segment and a global one for the rest.

A segment with at least ``min_segment_rows`` training rows gets its own model;
every other row (a segment too small, or one the model never saw) is scored by
the global model trained on all rows, and :meth:`SegmentRegressor.predict` says
per row which model answered (``segment`` or ``global``). With
``graceful=False`` such rows are not scored (``NaN``, model ``none``) so the
caller can reject them.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 2)); seg = np.repeat([0, 1, 2], 100); seg[-5:] = 3
    >>> y = np.where(seg == 0, X[:, 0], -X[:, 0])
    >>> m = SegmentRegressor(n_estimators=20, min_segment_rows=50).fit(X, y, seg)
    >>> sorted(m.models_), m.predict_with_models(X[-6:], seg[-6:])[1].tolist()
    ([0, 1, 2], ['segment', 'global', 'global', 'global', 'global', 'global'])
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.utils.validation import check_is_fitted

__all__ = ["SegmentRegressor", "regression_metrics", "threads"]

_PARALLEL_ROWS = 20_000  # below this, threads cost more than they save


def threads(n_rows: int) -> int:
    """Threads for predicting ``n_rows`` rows (rows are independent: same numbers either way).

    Example:
        >>> threads(1), threads(100_000)
        (1, 2)
    """
    return 2 if n_rows >= _PARALLEL_ROWS else 1


def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """RMSE, MAE and R² (R² NaN for fewer than two rows).

    Example:
        >>> regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0]))["mae"]
        0.3333333333333333
    """
    if len(y) == 0:
        return {"rmse": float("nan"), "mae": float("nan"), "r2": float("nan"), "n": 0.0}
    return {
        "rmse": float(np.sqrt(mean_squared_error(y, pred))),
        "mae": float(mean_absolute_error(y, pred)),
        "r2": float(r2_score(y, pred)) if len(y) > 1 else float("nan"),
        "n": float(len(y)),
    }


def _segments(segments: np.ndarray | None, n: int) -> np.ndarray:
    if segments is None:
        return np.zeros(n, dtype=np.int64)
    return np.asarray(segments, dtype=np.int64)


class SegmentRegressor(BaseEstimator):  # type: ignore[misc]
    """Per-segment LightGBM regressors plus a global fallback model for one target."""

    def __init__(
        self,
        num_leaves: int = 15,
        learning_rate: float = 0.08,
        n_estimators: int = 100,
        lambda_l1: float = 0.0,
        lambda_l2: float = 0.0,
        min_child_samples: int = 10,
        min_segment_rows: int = 50,
        random_state: int = 0,
    ) -> None:
        self.num_leaves = num_leaves
        self.learning_rate = learning_rate
        self.n_estimators = n_estimators
        self.lambda_l1 = lambda_l1
        self.lambda_l2 = lambda_l2
        self.min_child_samples = min_child_samples
        self.min_segment_rows = min_segment_rows
        self.random_state = random_state

    def _booster(self) -> Any:
        from lightgbm import LGBMRegressor

        return LGBMRegressor(
            num_leaves=self.num_leaves,
            learning_rate=self.learning_rate,
            n_estimators=self.n_estimators,
            reg_alpha=self.lambda_l1,
            reg_lambda=self.lambda_l2,
            min_child_samples=self.min_child_samples,
            random_state=self.random_state,
            n_jobs=1,
            deterministic=True,
            force_row_wise=True,
            verbose=-1,
        )

    def fit(
        self, X: np.ndarray, y: np.ndarray, segments: np.ndarray | None = None
    ) -> SegmentRegressor:
        """Fit the global model on all rows and one model per large-enough segment
        (no ``segments``: every row in segment 0)."""
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        segments = _segments(segments, X.shape[0])
        self.global_ = self._booster().fit(X, y)
        self.models_: dict[int, Any] = {}
        self.segment_rows_: dict[int, int] = {}
        for s in np.unique(segments):
            rows = segments == s
            self.segment_rows_[int(s)] = int(rows.sum())
            if rows.sum() >= self.min_segment_rows:
                self.models_[int(s)] = self._booster().fit(X[rows], y[rows])
        return self

    def predict(self, X: np.ndarray, segments: np.ndarray | None = None) -> np.ndarray:
        """Predictions (each row by its segment's model, or the global one)."""
        return self.predict_with_models(X, segments)[0]

    def predict_with_models(
        self, X: np.ndarray, segments: np.ndarray | None = None, *, graceful: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Predictions and, per row, which model answered (``segment``/``global``/``none``)."""
        check_is_fitted(self, "global_")
        X = np.asarray(X, dtype=np.float64)
        segments = _segments(segments, X.shape[0])
        pred = np.full(X.shape[0], np.nan)
        used = np.full(X.shape[0], "none", dtype="<U7")
        if X.shape[0] == 0:
            return pred, used
        for s, model in self.models_.items():
            rows = segments == s
            if rows.any():
                pred[rows] = model.predict(X[rows], num_threads=threads(int(rows.sum())))
                used[rows] = "segment"
        rest = used == "none"
        if graceful and rest.any():
            pred[rest] = self.global_.predict(X[rest], num_threads=threads(int(rest.sum())))
            used[rest] = "global"
        return pred, used

    def predict_global(self, X: np.ndarray) -> np.ndarray:
        """The global model's predictions for every row (the baseline)."""
        check_is_fitted(self, "global_")
        if len(X) == 0:
            return np.empty(0)
        return np.asarray(
            self.global_.predict(np.asarray(X, dtype=np.float64), num_threads=threads(len(X)))
        )

    def importance(self, names: list[str]) -> dict[str, dict[str, float]]:
        """Gain importance per model (``global`` and each segment), shares summing to 1."""
        check_is_fitted(self, "global_")
        out = {}
        for key, model in [("global", self.global_), *self.models_.items()]:
            gain = model.booster_.feature_importance(importance_type="gain").astype(float)
            total = gain.sum() or 1.0
            out[str(key)] = {n: float(g / total) for n, g in zip(names, gain, strict=True)}
        return out
