"""The ``train`` stage of the propensity recipe: logistic regression and XGBoost on the train
split, the better on validation PR-AUC, its test metrics and its baselines on the same test
rows (:mod:`opslens.recipes.propensity.baselines`).

Example:
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> m = make_pipeline(LogisticRegression()).fit(np.array([[0.0, 1], [1, 0], [0, 2], [2, 0]]), [0, 1, 0, 1])
    >>> [name for name, _ in _importance(m, "logistic", ["a", "b"])]
    ['a', 'b']
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import numpy as np
import polars as pl

from opslens.core.recipe import ModelArtifact, Out, StageContext
from opslens.errors import DataError
from opslens.recipes.propensity import plots
from opslens.recipes.propensity.baselines import baseline_scores, best_single_feature
from opslens.recipes.propensity.modelling import (
    calibration_table,
    design_matrix,
    fit_logistic,
    fit_xgboost,
    ranking_metrics,
    sample_negatives,
)
from opslens.recipes.propensity.params import PropensityParams
from opslens.recipes.propensity.point_in_time import feature_columns
from opslens.recipes.propensity.predictor import PropensityPredictor

__all__ = ["keep_rate", "score_rows", "stratified_sample", "train"]

log = logging.getLogger("opslens.propensity")


def _importance(model: Any, kind: str, names: list[str]) -> list[tuple[str, float]]:
    if kind == "xgboost":
        gain = model.get_booster().get_score(importance_type="gain")
        values = np.array([gain.get(f"f{i}", 0.0) for i in range(len(names))])
    else:
        values = np.abs(model[-1].coef_[0])
    total = values.sum() or 1.0
    order = np.argsort(-values, kind="stable")
    return [(names[i], float(values[i] / total)) for i in order]


#: the seed of the hash that picks the negatives of the training sample (with ``random_state``)
SAMPLE_SEED = 20251206
_KEYS = ["user_id", "item_id", "prediction_time"]
_ORDER = ["prediction_time", "user_id", "item_id"]  # the features' own order (featurize)


def keep_rate(rows: int, positives: int, max_rows: int) -> float:
    """The share of negatives the training sample keeps: 1 up to ``max_rows`` rows, else as
    many as leave about ``max_rows`` rows beside every positive.

    Example:
        >>> keep_rate(1_000, 10, 2_000), keep_rate(10_010, 10, 5_010)
        (1.0, 0.5)
    """
    negatives = rows - positives
    if rows <= max_rows or negatives <= 0:
        return 1.0
    return max(0.0, max_rows - positives) / negatives


def stratified_sample(frame: pl.DataFrame, *, rate: float, seed: int) -> pl.DataFrame:
    """Every positive row and the negatives whose seeded hash of (user, item, prediction time)
    falls in the first ``rate`` of its range: the same rows on any engine and in any batches.

    Example:
        >>> from datetime import datetime
        >>> f = pl.DataFrame({"user_id": [str(i) for i in range(1000)], "item_id": "x",
        ...     "prediction_time": datetime(2024, 1, 1), "label": [1] * 10 + [0] * 990})
        >>> s = stratified_sample(f, rate=0.5, seed=1)
        >>> int(s["label"].sum()), 400 < s.height < 600, stratified_sample(f, rate=1.0, seed=1) is f
        (10, True, True)
    """
    if rate >= 1.0:
        return frame
    hashed = frame.select(_KEYS).hash_rows(seed=SAMPLE_SEED + seed) // (1 << 11)  # 53 bits
    chosen = hashed < int(rate * (1 << 53))
    return frame.filter((pl.col("label") == 1) | chosen)


def score_rows(
    frame: pl.DataFrame,
    *,
    models: dict[str, Any],
    features: list[str],
    categories: list[str],
    rule: str,
) -> pl.DataFrame:
    """The keys and label of each row, each model's probability (``p_<model>``) and the rule's
    feature (``_rule``): what the metrics and the baselines read, made where the rows are
    (Spark: the executors, the models broadcast).

    Example:
        >>> from datetime import datetime
        >>> from sklearn.dummy import DummyClassifier
        >>> f = pl.DataFrame({"user_id": ["a", "b"], "item_id": "x", "label": [0, 1],
        ...     "prediction_time": datetime(2024, 1, 1), "n": [1.0, 3.0], "category": "c"})
        >>> m = DummyClassifier(strategy="prior").fit([[0, 0], [1, 1]], [0, 1])
        >>> score_rows(f, models={"d": m}, features=["n"], categories=["c"], rule="n")["p_d"].to_list()
        [0.5, 0.5]
    """
    X = design_matrix(frame, features, categories)
    return frame.select(*_KEYS, "label").with_columns(
        *(pl.Series(f"p_{k}", mdl.predict_proba(X)[:, 1]) for k, mdl in models.items()),
        pl.Series("_rule", X[:, features.index(rule)]),
    )


def train(
    ctx: StageContext,
    train_features: Any,
    val_features: Any,
    test_features: Any,
) -> Out:
    """Logistic regression and XGBoost on train; the better on validation PR-AUC; its test
    metrics, and the model against its baselines on the same test rows
    (:mod:`opslens.recipes.propensity.baselines`).

    One path on every engine: the train rows are counted where they are; a stratified sample
    (:func:`stratified_sample`: all of them up to ``params.models.max_train_rows``) is the
    only feature table brought here; validation and test are scored where they are
    (:func:`score_rows`, the models broadcast on Spark) and only their keys, labels and
    scores come back."""
    p: PropensityParams = ctx.params
    m = p.models
    engine = ctx.engine
    cols = feature_columns(p.features.windows)
    counted = engine.summarise(
        train_features, {"rows": ("count", "*"), "positives": ("sum", "label")}
    ).row(0)
    n_train, n_pos = int(counted[0]), int(counted[1] or 0)
    if n_pos == 0:
        raise DataError(
            "the train window has no purchase within the label horizon of any prediction time",
            fix="lengthen params.features.horizon, or give more events",
        )
    kinds = engine.summarise(train_features, {"n": ("count", "*")}, by=["category"])
    categories = sorted(kinds["category"].drop_nulls().to_list())
    rate = keep_rate(n_train, n_pos, m.max_train_rows)
    sample = engine.collect(
        engine.map_batches(
            train_features,
            partial(stratified_sample, rate=rate, seed=ctx.random_state),
            keep=True,
        ),
        rows=min(n_train, m.max_train_rows),
    )
    # the local order (by key), which the seeded subsample below reads: as an index, so the
    # driver never holds a sorted copy of the sample (2,000,000 rows: about 0.9 GB)
    order = (
        sample.select(pl.arg_sort_by(_ORDER)).to_series().to_numpy() if engine.distributed else None
    )
    y_train = sample["label"].to_numpy() if order is None else sample["label"].to_numpy()[order]
    negatives = n_train - n_pos
    kept_negatives = len(y_train) - int(y_train.sum())
    weight = negatives / kept_negatives if kept_negatives else 1.0
    if rate < 1.0:
        log.info(
            "train: a sample of %d of %d rows (every positive; each negative weighs %.4g)",
            len(y_train),
            n_train,
            weight,
        )
    keep = sample_negatives(y_train, m.max_negatives_per_positive, ctx.random_state)
    # the design matrix of the fitted rows only (of 10^7 train rows, a few 10^5 are fitted)
    rows = keep if order is None else order[keep]  # keep: positions in the local order
    X_fit = design_matrix(sample, cols, categories, rows)
    y_fit = y_train[keep]
    del sample
    xgboost = fit_xgboost(X_fit, y_fit, m, ctx.random_state)
    # the baselines on the same test rows: the rule is chosen on the fitted train rows only
    rule, sign, rule_auc = best_single_feature(X_fit[:, : len(cols)], y_fit, cols)
    # last, as it takes the log and scales in X_fit itself (a copy fewer on the driver: at
    # 2,000,000 fitted rows about 0.8 GB), which is then let go before the scoring
    logistic = fit_logistic(X_fit, y_fit, m, ctx.random_state, overwrite=True)
    del X_fit
    fitted = {"logistic": logistic, "xgboost": xgboost}
    scorer = partial(score_rows, models=fitted, features=cols, categories=categories, rule=rule)
    scored: dict[str, pl.DataFrame] = {}
    for name, frame in (("val", val_features), ("test", test_features)):
        answers = engine.collect(engine.map_batches(frame, scorer, keep=True))
        scored[name] = answers.sort(_ORDER) if engine.distributed else answers
    y_val, y_test = scored["val"]["label"].to_numpy(), scored["test"]["label"].to_numpy()
    scores = {k: {s: scored[s][f"p_{k}"].to_numpy() for s in ("val", "test")} for k in fitted}
    results = {
        k: {
            "val": ranking_metrics(y_val, sc["val"], m.top_k),
            "test": ranking_metrics(y_test, sc["test"], m.top_k),
        }
        for k, sc in scores.items()
    }
    best = max(fitted, key=lambda k: (results[k]["val"]["pr_auc"] or 0.0, k == "xgboost"))
    names = cols + [f"category={c}" for c in categories]
    importance = _importance(fitted["xgboost"], "xgboost", names)
    coef = _importance(fitted["logistic"], "logistic", names)
    calib = calibration_table(y_test, scores[best]["test"], m.calibration_bins)
    comparison = pl.DataFrame(
        [
            {"model": k, "split": s, **{kk: v for kk, v in results[k][s].items()}}
            for k in fitted
            for s in ("val", "test")
        ]
    )
    predictions = scored["test"].select(*_KEYS, "label", *(f"p_{k}" for k in fitted))
    predictor = PropensityPredictor(
        fitted[best],
        best,
        cols,
        categories,
        horizon_hours=p.features.horizon.total_seconds() / 3600,
    )
    rule_label = f"the best single-feature rule ({rule}, {'high' if sign > 0 else 'low'} first)"
    against = baseline_scores(
        y_test,
        scored["test"]["user_id"].to_numpy(),
        model=scores[best]["test"],
        chosen=best,
        logistic=scores["logistic"]["test"],
        train_rate=n_pos / n_train,
        rule=sign * scored["test"]["_rule"].to_numpy(),
        rule_label=rule_label,
        n_boot=m.bootstrap,
        random_state=ctx.random_state,
    )
    base = results[best]["test"]["base_rate"]
    metrics: dict[str, float] = {"test_base_rate": base}
    for k in fitted:
        for key in ("pr_auc", "roc_auc"):
            if results[k]["test"][key] is not None:
                metrics[f"test_{key}_{k}"] = results[k]["test"][key]
    return Out(
        values={"models": fitted},  # both fitted models, saved with the run (data/models.joblib)
        facts={
            "chosen": best,
            "chosen_by": "validation PR-AUC",
            "train_rows": n_train,
            "train_positives": n_pos,
            "sample_rows": len(y_train),
            "negative_weight": weight,
            "fit_rows": len(y_fit),
            "scale_pos_weight": float(fitted["xgboost"].get_params()["scale_pos_weight"]),
            "results": results,
            "top_features": [[n, v] for n, v in importance[:10]],
            "logistic_top_features": [[n, v] for n, v in coef[:10]],
            "calibration": calib.to_dicts(),
            "top_k": list(m.top_k),
            "best_rule": {
                "feature": rule,
                "direction": "higher" if sign > 0 else "lower",
                "train_auroc": rule_auc,
            },
        },
        metrics=metrics,
        baselines=against,
        tables={
            "model_comparison": comparison,
            "test_predictions": predictions,
            "calibration": calib,
        },
        plots={
            "calibration": plots.plot_calibration(calib, best),
            "pr_curve": plots.plot_pr_curves(y_test, {k: scores[k]["test"] for k in fitted}),
            "feature_importance": plots.plot_importance(importance[:15]),
        },
        model=ModelArtifact(
            model=predictor,
            input_example=engine.head(test_features, 5),
            metadata={
                "recipe": "propensity",
                "model": best,
                "features": cols,
                "categories": categories,
                "output": "probability: a purchase of the item by the user within the horizon",
            },
        ),
    )
