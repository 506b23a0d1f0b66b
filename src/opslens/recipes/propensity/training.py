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

__all__ = ["train"]

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


def train(
    ctx: StageContext,
    train_features: pl.DataFrame,
    val_features: pl.DataFrame,
    test_features: pl.DataFrame,
) -> Out:
    """Logistic regression and XGBoost on train; the better on validation PR-AUC; its test
    metrics, and the model against its baselines on the same test rows
    (:mod:`opslens.recipes.propensity.baselines`)."""
    p: PropensityParams = ctx.params
    m = p.models
    cols = feature_columns(p.features.windows)
    y_train = train_features["label"].to_numpy()
    if y_train.sum() == 0:
        raise DataError(
            "the train window has no purchase within the label horizon of any prediction time",
            fix="lengthen params.features.horizon, or give more events",
        )
    categories = sorted(train_features["category"].unique().to_list())
    X = {
        n: design_matrix(f, cols, categories)
        for n, f in (("val", val_features), ("test", test_features))
    }
    keep = sample_negatives(y_train, m.max_negatives_per_positive, ctx.random_state)
    # the design matrix of the fitted rows only (of 10^7 train rows, a few 10^5 are fitted)
    X_fit = design_matrix(train_features[pl.Series(keep)], cols, categories)
    y_fit = y_train[keep]
    fitted = {
        "logistic": fit_logistic(X_fit, y_fit, m, ctx.random_state),
        "xgboost": fit_xgboost(X_fit, y_fit, m, ctx.random_state),
    }
    y_val, y_test = val_features["label"].to_numpy(), test_features["label"].to_numpy()
    scores = {
        k: {s: mdl.predict_proba(X[s])[:, 1] for s in ("val", "test")} for k, mdl in fitted.items()
    }
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
    predictions = test_features.select(
        "user_id", "item_id", "prediction_time", "label"
    ).with_columns(**{f"p_{k}": pl.Series(scores[k]["test"]) for k in fitted})
    predictor = PropensityPredictor(
        fitted[best],
        best,
        cols,
        categories,
        horizon_hours=p.features.horizon.total_seconds() / 3600,
    )
    # the baselines on the same test rows: the rule is chosen on the fitted train rows only
    rule, sign, rule_auc = best_single_feature(X_fit[:, : len(cols)], y_fit, cols)
    rule_label = f"the best single-feature rule ({rule}, {'high' if sign > 0 else 'low'} first)"
    against = baseline_scores(
        y_test,
        test_features["user_id"].to_numpy(),
        model=scores[best]["test"],
        chosen=best,
        logistic=scores["logistic"]["test"],
        train_rate=float(y_train.mean()),
        rule=sign * X["test"][:, cols.index(rule)],
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
            "train_rows": len(y_train),
            "train_positives": int(y_train.sum()),
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
            input_example=test_features.head(5),
            metadata={
                "recipe": "propensity",
                "model": best,
                "features": cols,
                "categories": categories,
                "output": "probability: a purchase of the item by the user within the horizon",
            },
        ),
    )
