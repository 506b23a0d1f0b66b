"""Fit the logistic baseline and XGBoost on the train split; score and compare them.

Example:
    >>> import numpy as np
    >>> y = np.array([0, 0, 1, 1]); s = np.array([0.1, 0.4, 0.35, 0.8])
    >>> m = ranking_metrics(y, s, top_k=(2,))
    >>> m["roc_auc"], m["precision_at_2"], m["recall_at_2"]
    (0.75, 0.5, 0.5)
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl
import xgboost as xgb
from sklearn.calibration import calibration_curve
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from threadpoolctl import threadpool_limits

from opslens.recipes.propensity.params import ModelParams

__all__ = [
    "calibration_table",
    "design_matrix",
    "fit_logistic",
    "fit_xgboost",
    "log_counts",
    "pos_weight",
    "ranking_metrics",
    "sample_negatives",
]


def design_matrix(
    frame: pl.DataFrame,
    features: Sequence[str],
    categories: Sequence[str],
    rows: np.ndarray | None = None,
) -> np.ndarray:
    """The numeric features and a one-hot block of the item category, as float64 (a column
    after another, as polars holds them); ``rows``: only those rows, in that order, gathered
    column by column (no copy of ``frame``).

    Example:
        >>> f = pl.DataFrame({"a": [1, 2, 3], "category": ["x", "z", None]})
        >>> design_matrix(f, ["a"], ["x", "y"]).tolist()
        [[1.0, 1.0, 0.0], [2.0, 0.0, 0.0], [3.0, 0.0, 0.0]]
        >>> design_matrix(f, ["a"], ["x", "y"], rows=np.array([2, 0])).tolist()
        [[3.0, 0.0, 0.0], [1.0, 1.0, 0.0]]
    """
    # one column at a time; a null category is an unknown one (all zeros), as the single-row
    # path reads it
    columns = itertools.chain(
        (frame[f].cast(pl.Float64) for f in features),
        ((frame["category"] == c).fill_null(False).cast(pl.Float64) for c in categories),
    )
    shape = (frame.height if rows is None else len(rows), len(features) + len(categories))
    X = np.empty(shape, order="F")
    for j, column in enumerate(columns):
        values = column.to_numpy()  # a null is NaN
        X[:, j] = values if rows is None else values[rows]
    return X


def pos_weight(y: np.ndarray, setting: str | float) -> float:
    """``scale_pos_weight``: negatives/positives, its square root, or the number given.

    Example:
        >>> pos_weight(np.array([0, 0, 0, 0, 1]), "balanced"), pos_weight(np.array([0, 0, 0, 0, 1]), "sqrt")
        (4.0, 2.0)
    """
    pos = max(int(y.sum()), 1)
    ratio = (len(y) - pos) / pos
    if setting == "balanced":
        return float(ratio)
    if setting == "sqrt":
        return float(np.sqrt(ratio))
    return float(setting)


def log_counts(X: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``log1p`` of the (non-negative) features: counts and hours are heavy-tailed;
    ``out=X`` takes it in place.

    Example:
        >>> log_counts(np.array([[0.0, np.e - 1]])).round(3).tolist()
        [[0.0, 1.0]]
    """
    if out is None:
        logs: np.ndarray = np.log1p(np.clip(X, 0, None))
    else:
        logs = np.log1p(np.clip(X, 0, None, out=out), out=out)
    return logs


def sample_negatives(y: np.ndarray, ratio: float | None, random_state: int) -> np.ndarray:
    """Row indices: every positive and at most ``ratio`` negatives per positive (sorted).

    Example:
        >>> sample_negatives(np.array([0, 0, 0, 0, 1]), 2, 0).tolist()
        [2, 3, 4]
    """
    if ratio is None:
        return np.arange(len(y))
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    n = min(len(neg), int(np.ceil(ratio * max(len(pos), 1))))
    chosen = np.random.default_rng(random_state).choice(neg, size=n, replace=False)
    return np.sort(np.r_[pos, chosen])


#: cells of a design matrix up to which the logistic fit runs on one BLAS thread
SMALL_FOR_BLAS = 5_000_000


def fit_logistic(
    X: np.ndarray, y: np.ndarray, p: ModelParams, random_state: int, *, overwrite: bool = False
) -> Pipeline:
    """Standardised features → class-balanced logistic regression (the first thing one tries).

    ``overwrite=True`` takes the log and scales in ``X`` itself, which then holds the scaled
    features: the fit holds one copy of ``X`` more at a time (the scaler's temporary, then
    the regression's row-ordered copy) instead of two; the same model, bit for bit.

    Example:
        >>> raw = np.array([[0.0, 1], [1, 0], [0, 2], [2, 0]]); y = np.array([0, 1, 0, 1])
        >>> a = fit_logistic(raw, y, ModelParams(), 0)
        >>> X = raw.copy(); b = fit_logistic(X, y, ModelParams(), 0, overwrite=True)
        >>> bool((a.predict_proba(raw) == b.predict_proba(raw)).all()), round(float(X.mean()), 9)
        (True, 0.0)
    """
    logs = FunctionTransformer(log_counts)
    scaler = StandardScaler()
    regression = LogisticRegression(
        C=p.logistic_c, class_weight="balanced", max_iter=1000, random_state=random_state
    )
    # a small table on one BLAS thread: lbfgs makes ~100 small matrix products, and
    # OpenBLAS's second thread spins on a busy 2-core machine (3.9 s of CPU against 0.4 s
    # on the demo's 29k x 56); a large one keeps BLAS's threads, which pay for themselves
    threads = 1 if X.size <= SMALL_FOR_BLAS else None
    with threadpool_limits(limits=threads, user_api="blas"):
        if not overwrite:
            return make_pipeline(logs, scaler, regression).fit(X, y)
        logs.fit(X)
        log_counts(X, out=X)
        scaler.set_params(copy=False).fit(X).transform(X)
        regression.fit(X, y)
    return make_pipeline(logs, scaler.set_params(copy=True), regression)


def fit_xgboost(
    X: np.ndarray, y: np.ndarray, p: ModelParams, random_state: int
) -> xgb.XGBClassifier:
    """Gradient-boosted trees with ``scale_pos_weight`` for the imbalance, fitted on every
    core this process may use (XGBoost's histogram method sums in a fixed order: the same
    trees on one thread or several, tested) and then set to one thread, which the predictor's
    one-row answers want (a thread team per call costs more than the call)."""
    model = xgb.XGBClassifier(
        n_estimators=p.n_estimators,
        max_depth=p.max_depth,
        learning_rate=p.learning_rate,
        min_child_weight=p.min_child_weight,
        reg_lambda=p.reg_lambda,
        subsample=0.8,
        colsample_bytree=0.8,
        scale_pos_weight=pos_weight(y, p.scale_pos_weight),
        random_state=random_state,
        n_jobs=_cores(),
        tree_method="hist",
    )
    model.fit(X, y)
    return model.set_params(n_jobs=1)


def _cores() -> int:
    """The cores this process may run on (its CPU affinity where the system has one).

    Example:
        >>> _cores() >= 1
        True
    """
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def ranking_metrics(y: np.ndarray, score: np.ndarray, top_k: Sequence[int]) -> dict[str, Any]:
    """ROC-AUC, PR-AUC (average precision), Brier, precision@k and recall@k."""
    pos = int(y.sum())
    both = 0 < pos < len(y)
    order = np.argsort(-score, kind="stable")
    out: dict[str, Any] = {
        "rows": len(y),
        "positives": pos,
        "base_rate": float(pos / len(y)) if len(y) else 0.0,
        "roc_auc": float(roc_auc_score(y, score)) if both else None,
        "pr_auc": float(average_precision_score(y, score)) if both else None,
        "brier": float(brier_score_loss(y, np.clip(score, 0, 1))) if len(y) else None,
    }
    for k in top_k:
        kk = min(k, len(y))
        hits = int(y[order[:kk]].sum())
        out[f"precision_at_{k}"] = hits / kk if kk else None
        out[f"recall_at_{k}"] = hits / pos if pos else None
    return out


def calibration_table(y: np.ndarray, score: np.ndarray, bins: int) -> pl.DataFrame:
    """Observed purchase rate against mean predicted probability, by quantile bin."""
    prob_true, prob_pred = calibration_curve(
        y, np.clip(score, 0, 1), n_bins=bins, strategy="quantile"
    )
    return pl.DataFrame({"mean_predicted": prob_pred, "observed_rate": prob_true})
