"""The segments recipe's stages: prepare → fit (train and retrain pipelines), prepare → fit → score.

``fit`` trains on the training split and states both targets' held-out RMSE, MAE
and R² for the model as served (per segment: the global model, its own model or global +
a correction, as chosen out of fold) *and* for the global model alone on the same
rows, per segment, with feature importance and each segment's choice; and it scores the model against its
baseline, one global LightGBM per target fitted on its own
(:mod:`opslens.recipes.segments.baseline`), on the same held-out rows.

Example:
    >>> from opslens.recipes import project_from_mapping
    >>> project_from_mapping({"analyses": [{"name": "pat", "recipe": "segments",
    ...     "source": {"kind": "memory"}, "columns": {"target": "next_score"}}]})
    Traceback (most recent call last):
    ...
    opslens.errors.ConfigError: analysis 'pat' (segments) needs at least two numeric features in columns.metrics; fix: list the numeric columns that define segments under columns.metrics
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from opslens.config import AnalysisConfig
from opslens.core.columns import check_magnitude, require_columns, require_numeric
from opslens.core.recipe import ModelArtifact, Out, StageContext
from opslens.errors import ConfigError, DataError
from opslens.recipes.segments.baseline import HeldOut, global_model_scores, held_out
from opslens.recipes.segments.model import SegmentModel, fit_model, past_range, summarise_scores
from opslens.recipes.segments.params import SegmentsParams
from opslens.recipes.segments.pipeline import error_figures
from opslens.recipes.segments.plots import (
    plot_rmse_comparison,
    plot_segment_rmse,
    plot_segments,
)
from opslens.recipes.segments.predictor import SegmentPredictor
from opslens.recipes.segments.regress import regression_metrics

__all__ = ["check_columns", "evaluate", "fit_stage", "prepare", "score_stage", "training_steps"]


def check_columns(analysis: AnalysisConfig) -> None:
    """ConfigError unless ``columns.metrics`` (≥ 2) and ``columns.target`` are named, and
    neither target is among the inputs (target leakage)."""
    cols = analysis.columns
    if len(cols.metrics) < 2:
        raise ConfigError(
            f"analysis '{analysis.name}' (segments) needs at least two numeric features "
            "in columns.metrics",
            fix="list the numeric columns that define segments under columns.metrics",
        )
    if cols.target is None:
        raise ConfigError(
            f"analysis '{analysis.name}' (segments) needs columns.target (the time-series target)",
            fix="set columns.target; the resource target is params.resource_target",
        )
    params: SegmentsParams = analysis.params
    inputs = [*cols.metrics, *params.model_features, *cols.categorical]
    for role, target in (
        ("columns.target", cols.target),
        ("params.resource_target", params.resource_target),
    ):
        if target in inputs:
            raise ConfigError(
                f"analysis '{analysis.name}' (segments): the target '{target}' ({role}) is also "
                "an input (columns.metrics, params.model_features or columns.categorical): the "
                "models would read the answer they predict",
                fix=f"remove '{target}' from the inputs, or name another column in {role}",
            )


def _roles(ctx: StageContext) -> tuple[list[str], list[str], str, SegmentsParams]:
    cols = ctx.analysis.columns
    return list(cols.metrics), list(cols.categorical), str(cols.target), ctx.params


def prepare(ctx: StageContext, raw: pl.DataFrame) -> Out:
    """Check the columns, drop rows with a missing value, split train/test (seeded)."""
    features, categorical, target, params = _roles(ctx)
    numeric = [*features, *params.model_features, target, params.resource_target]
    require_columns(raw, [*numeric, *categorical], where=ctx.source)
    frame = raw
    for name in numeric:
        frame = require_numeric(frame, name, where=ctx.source)
    kept = frame.filter(
        pl.all_horizontal([pl.col(c).cast(pl.Float64).is_finite() for c in numeric])
        & pl.all_horizontal([pl.col(c).is_not_null() for c in categorical] or [pl.lit(True)])
    )
    check_magnitude(kept, numeric, where=ctx.source)
    rng = np.random.default_rng(ctx.random_state)
    test = rng.random(kept.height) < params.test_size
    n_train, n_test = int((~test).sum()), int(test.sum())
    need = max(params.hdbscan.min_cluster_size, params.min_segment_rows, 2)
    if n_train < need or n_test < 2:
        raise DataError(
            f"params.test_size {params.test_size} splits the {kept.height} usable rows of "
            f"{ctx.source} into {n_train} training and {n_test} test rows; the segments need "
            f"at least {need} training rows and 2 test rows",
            fix="choose params.test_size between 0.1 and 0.5, or give more rows",
        )
    prepared = kept.with_columns(pl.Series("split", np.where(test, "test", "train")))
    facts = {
        "rows_read": raw.height,
        "rows_kept": kept.height,
        "rows_dropped": raw.height - kept.height,
        "train_rows": n_train,
        "test_rows": n_test,
        "features": features,
        "categorical": categorical,
        "model_features": list(params.model_features),
        "series_target": target,
        "resource_target": params.resource_target,
    }
    return Out(values={"prepared": prepared}, facts=facts)


def evaluate(
    model: SegmentModel, test: pl.DataFrame, *, held: HeldOut | None = None
) -> dict[str, Any]:
    """Per target: held-out metrics of the per-segment models and of their global fallback
    model, per segment, and feature importance (``held``: ``test`` already scored).

    Example:
        >>> from opslens.synthetic.patients import FEATURES, make_patients
        >>> data = make_patients(n_rows=600, seed=0).frame
        >>> p = SegmentsParams.model_validate({"lgb_series": {"n_estimators": 10},
        ...     "lgb_resource": {"n_estimators": 10}})
        >>> m = fit_model(data[:450], p, features=list(FEATURES), categorical=["ward"],
        ...     series_target="next_score")
        >>> sorted(evaluate(m, data[450:])["next_score"])
        ['choices', 'feature_importance', 'global', 'per_segment', 'segment']
    """
    held = held if held is not None else held_out(model, test)
    rows, seg = held.rows, held.segments
    names = model.preprocessor.model_columns
    out: dict[str, Any] = {}
    for target, reg in (
        (model.series_target, model.series),
        (model.resource_target, model.resource),
    ):
        y = rows[target].to_numpy()
        pred = held.predictions[target]
        base = reg.predict_global(held.matrix)
        per_segment = {
            str(s): {
                "segment": regression_metrics(y[seg == s], pred[seg == s]),
                "global": regression_metrics(y[seg == s], base[seg == s]),
            }
            for s in np.unique(seg)
        }
        out[target] = {
            "segment": regression_metrics(y, pred),
            "global": regression_metrics(y, base),
            "per_segment": per_segment,
            "feature_importance": reg.importance(names),
            "choices": {str(s): dict(c) for s, c in reg.choices_.items()},
        }
    return out


def training_steps(
    model: SegmentModel, targets: dict[str, Any], comparison: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """A (re)training's steps as the tracker shows them (child runs): preprocessing, HDBSCAN,
    the kNN fallback, both targets' models and the performance report."""
    pre, a = model.preprocessor, model.assigner
    noise = a.labels_ < 0
    steps: dict[str, dict[str, Any]] = {
        "preprocessing": {
            "params": {
                "features": list(pre.features),
                "categorical": list(pre.categorical),
                "extra": list(pre.extra),
            },
            "metrics": {
                f"mean_{n}": float(m) for n, m in zip(pre.features, pre.scaler_.mean_, strict=True)
            },
        },
        "hdbscan": {
            "params": {
                "min_cluster_size": a.min_cluster_size,
                "min_samples": a.min_samples,
                "cluster_selection_epsilon": a.cluster_selection_epsilon,
            },
            "metrics": {
                "segments": a.n_segments_,
                "noise_ratio": float(noise.mean()),
                "training_rows": len(a.labels_),
            },
        },
        "knn-fallback": {
            "params": {"n_neighbors": a.n_neighbors, "reference_size": a.reference_size},
            "metrics": {
                "noise_points_assigned": int(noise.sum()),
                "mean_confidence": float(a.confidence_[noise].mean()) if noise.any() else None,
            },
        },
    }
    for step, target, reg in (
        ("series-models", model.series_target, model.series),
        ("resource-models", model.resource_target, model.resource),
    ):
        t = targets.get(target, {})
        metrics = {f"segment_{k}": v for k, v in t.get("segment", {}).items()}
        metrics |= {f"global_{k}": v for k, v in t.get("global", {}).items()}
        chosen = {str(s): c["choice"] for s, c in reg.choices_.items()}
        metrics |= {
            f"segment_{s}_{k}": v
            for s, c in reg.choices_.items()
            for k in ("rmse_global", "rmse_segment", "rmse_blend")
            if (v := c.get(k)) is not None
        }
        steps[step] = {
            "params": {"target": target, "choice": chosen, "segment_models": sorted(reg.models_)},
            "metrics": metrics,
        }
    steps["performance-report"] = {"params": {}, "metrics": comparison}
    return steps


def fit_stage(ctx: StageContext, prepared: pl.DataFrame) -> Out:
    """Fit preprocessing, HDBSCAN + kNN fallback and both targets' models; evaluate held out."""
    features, categorical, target, params = _roles(ctx)
    train = prepared.filter(pl.col("split") == "train")
    test = prepared.filter(pl.col("split") == "test")
    model = fit_model(
        train,
        params,
        features=features,
        categorical=categorical,
        series_target=target,
        random_state=ctx.random_state,
    )
    held = held_out(model, test)
    report = evaluate(model, test, held=held)
    baselines = global_model_scores(
        model,
        train,
        held,
        params,
        entity=ctx.analysis.columns.entity,
        random_state=ctx.random_state,
    )
    model.info["baseline"] = {
        k: v
        for name, key in ((target, "rmse_series"), (params.resource_target, "rmse_resource"))
        for k, v in error_figures(held.rows[name].to_numpy(), held.predictions[name], key).items()
    }
    a = model.assigner
    sizes = {
        str(s): int(n) for s, n in zip(*np.unique(a.segments_, return_counts=True), strict=True)
    }
    small = sorted(int(s) for s, n in sizes.items() if n < params.min_segment_rows)
    noise_ratio = float((a.labels_ < 0).mean())
    facts: dict[str, Any] = {
        "segments": a.n_segments_,
        "training_rows": train.height,
        "noise_points": int((a.labels_ < 0).sum()),
        "noise_ratio": noise_ratio,
        "segment_sizes": sizes,
        "min_segment_rows": params.min_segment_rows,
        "segments_on_global": small,
        "hdbscan": params.hdbscan.model_dump(),
        "model_choice": params.model_choice.model_dump(),
        "targets": report,
    }
    metrics: dict[str, float] = {
        "segments": float(a.n_segments_),
        "noise_ratio": noise_ratio,
    }
    for name, short in ((target, "series"), (params.resource_target, "resource")):
        metrics[f"rmse_{short}"] = report[name]["segment"]["rmse"]
        metrics[f"rmse_{short}_global"] = report[name]["global"]["rmse"]
        chosen = [c["choice"] for c in report[name]["choices"].values()]
        for kind in ("segment", "blend", "global"):
            metrics[f"{short}_segments_on_{kind}"] = float(chosen.count(kind))
    table = pl.DataFrame(
        {
            "segment": a.segments_,
            "hdbscan_label": a.labels_,
            "path": a.paths_,
            "confidence": a.confidence_,
        }
    )
    plots = {
        "segments": plot_segments(
            train.select(features[:2]).to_numpy(), a.segments_, a.paths_, features[:2]
        ),
        "segment_rmse": plot_segment_rmse(report),
        "rmse_comparison": plot_rmse_comparison(
            {t: {k: report[t][k]["rmse"] for k in ("segment", "global")} for t in report}
        ),
    }
    example = (
        test.select(model.inputs).head(5) if test.height else train.select(model.inputs).head(5)
    )
    report_metrics: dict[str, Any] = {}
    for b in baselines:
        report_metrics |= {
            f"model_{b.metric}": b.model,
            f"global_{b.metric}": b.value,
            f"p_value_{b.metric}": b.p_value,
        }
    report_metrics["beats_global"] = float(all(b.model_wins for b in baselines))
    steps = training_steps(model, report, report_metrics)
    return Out(
        values={"segment_model": model, "steps": steps},
        facts=facts,
        metrics=metrics,
        plots=plots,
        tables={"training_segments": table},
        baselines=baselines,
        model=ModelArtifact(
            model=SegmentPredictor(model, graceful=params.monitor.graceful_degradation),
            input_example=example,
            metadata={"series_target": target, "resource_target": params.resource_target},
        ),
    )


def score_stage(ctx: StageContext, raw: pl.DataFrame, segment_model: SegmentModel) -> Out:
    """Score the analysis's data with the fitted model: one answer per row, rejections counted."""
    params: SegmentsParams = ctx.params
    scored = segment_model.score(raw, graceful=params.monitor.graceful_degradation)
    facts = summarise_scores(scored)
    pre = segment_model.preprocessor
    facts["out_of_range"] = pre.out_of_range(raw)
    facts["past_range"] = past_range(facts["out_of_range"], pre.features)
    return Out(
        values={"scored": scored},
        facts=facts,
        metrics={k: float(facts[k]) for k in ("rows_scored", "rows_rejected", "noise_ratio")},
    )
