"""The segments recipe's life cycle: score a batch with the champion, monitor the noise ratio
and the error, retrain on an expanding window, compare challenger and champion.

Stages (run by the spine, :mod:`opslens.runner.lifecycle`): ``score_batch`` (pipeline
``batch``) and ``retrain`` (:func:`refit`, pipeline ``retrain``: the challenger is also scored
against one global LightGBM, the recipe's baseline, which gates its promotion). Hooks: :func:`monitor` (the batch's alerts
and drift warnings), :func:`retrain_reason` (noise-ratio window or schedule),
:func:`window` (training rows, then the labelled rows of every batch, most recent
``monitor.expanding_window_size``) and :func:`compare` (mean RMSE ratio of both targets on
every third row of the latest labelled batch; at most 1 promotes).

Example:
    >>> from opslens.recipes.segments.params import SegmentsParams
    >>> p = SegmentsParams.model_validate({"monitor": {"noise_threshold": 0.2, "window_batches": 1}})
    >>> retrain_reason([{"batch": 1, "rows_scored": 10, "noise_ratio": 0.5}], p, None, None)
    'automatic: noise ratio 0.5 over the last 1 batches passed the threshold 0.2'
    >>> [a["metric"] for a in monitor([{"batch": 1, "noise_ratio": 0.5, "rows_scored": 10}], p)]
    ['noise_ratio']
"""

from __future__ import annotations

import resource
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import polars as pl

from opslens.config import AnalysisConfig
from opslens.core.lifecycle import BATCH_COLUMN, Comparison, Lifecycle, Record
from opslens.core.recipe import ModelArtifact, Out, Output, Stage, StageContext
from opslens.recipes.segments.baseline import global_model_scores, held_out
from opslens.recipes.segments.model import SegmentModel, fit_model
from opslens.recipes.segments.monitor import batch_alerts, drift_warnings
from opslens.recipes.segments.monitor import retrain_reason as _reason
from opslens.recipes.segments.params import SegmentsParams
from opslens.recipes.segments.pipeline import (
    Comparison as SegmentComparison,
)
from opslens.recipes.segments.pipeline import (
    batch_metrics,
    compare_models,
    error_figures,
    holdout_split,
    refuse_counters,
)
from opslens.recipes.segments.predictor import SegmentPredictor
from opslens.recipes.segments.stages import evaluate, training_steps

__all__ = [
    "LIFECYCLE",
    "compare",
    "monitor",
    "refit",
    "retrain_reason",
    "score_batch",
    "training_steps",
    "window",
]

_POS = "__pos"


def _model(predictor: Any) -> SegmentModel:
    model: SegmentModel = getattr(predictor, "model", predictor)
    return model


def score_batch(
    ctx: StageContext, batch: pl.DataFrame, champion: Any, champion_version: str
) -> Out:
    """Score ``batch`` with the champion: predictions per row, labelled rows, the record."""
    params: SegmentsParams = ctx.params
    model = _model(champion)
    t0 = time.perf_counter()
    predictions = model.score(batch, graceful=params.monitor.graceful_degradation)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    metrics, truth = batch_metrics(
        batch, predictions, model.series_target, params.resource_target, model.preprocessor
    )
    record = {
        **metrics,
        "processing_seconds": seconds,
        "peak_memory_mb": peak,
        "baseline": dict(model.info.get("baseline", {})),
    }
    labelled = truth if truth is not None else batch.head(0)
    shares = {f"share_{k}": float(v) for k, v in metrics["segment_shares"].items()}
    return Out(
        values={
            "predictions": batch.hstack(predictions.drop("row")),
            "labelled": labelled,
            "record": record,
            "steps": {"segment-shares": {"params": {}, "metrics": shares}},
        },
        facts={"record": record},
        metrics={
            **{
                k: float(v)
                for k, v in metrics.items()
                if isinstance(v, int | float) and not isinstance(v, bool)
            },
            **{f"out_of_range_{k}": float(v["share"]) for k, v in metrics["out_of_range"].items()},
        },
    )


def _keep(analysis: AnalysisConfig) -> list[str]:
    cols, params = analysis.columns, analysis.params
    return [
        *cols.metrics,
        *params.model_features,
        *cols.categorical,
        str(cols.target),
        params.resource_target,
    ]


def window(raw: pl.DataFrame, labelled: pl.DataFrame, analysis: AnalysisConfig) -> pl.DataFrame:
    """Training rows (batch 0), then the labelled rows of every batch (most recent last), rows
    with a non-finite number dropped, the last ``monitor.expanding_window_size`` kept."""
    keep = _keep(analysis)
    parts = [raw.select(keep).with_columns(pl.lit(0, pl.Int64).alias(BATCH_COLUMN))]
    if labelled.height:
        for (number,), rows in labelled.group_by(BATCH_COLUMN, maintain_order=True):
            parts.append(
                rows.select(keep).with_columns(pl.lit(int(number), pl.Int64).alias(BATCH_COLUMN))  # type: ignore[call-overload]
            )
    frames = [p.with_columns(pl.int_range(p.height).alias(_POS)) for p in parts]
    out = pl.concat(frames, how="vertical_relaxed")
    finite = [
        pl.col(c).cast(pl.Float64).is_finite()
        for c in keep
        if c not in analysis.columns.categorical
    ]
    size: int = analysis.params.monitor.expanding_window_size
    return out.filter(pl.all_horizontal(finite)).tail(size)


def _comparison(c: SegmentComparison) -> Comparison:
    return Comparison(
        metric="rmse_ratio",
        champion=1.0,
        challenger=c.ratio,
        higher_is_better=False,
        rows=c.rows,
        training_rows=c.training_rows,
        reason=c.reason,
        details={
            **{f"champion_{k}": v for k, v in c.champion.items()},
            **{f"challenger_{k}": v for k, v in c.challenger.items()},
            "ratio": c.ratio,
            "rows": c.rows,
            "training_rows": c.training_rows,
        },
        wins=c.promoted,
        text=c.summary(),
    )


def compare(
    champion: Any, challenger: Any, rows: pl.DataFrame, analysis: AnalysisConfig
) -> Comparison:
    """Both models on every third row of the window's latest labelled batch: RMSE per target,
    the mean challenger/champion ratio; at most 1 wins."""
    held = holdout_split(rows)[1].drop(BATCH_COLUMN, _POS)
    champ, chall, ratio = compare_models(_model(champion), _model(challenger), held)
    c = SegmentComparison("comparison", champ, chall, ratio, ratio <= 1.0, held.height, 0)
    return _comparison(c)


def refit(ctx: StageContext, raw: pl.DataFrame, labelled: pl.DataFrame, champion: Any) -> Out:
    """Fit a challenger on the window (held-out rows kept out), compare it with the champion."""
    params: SegmentsParams = ctx.params
    cols = ctx.analysis.columns
    rows = window(raw, labelled, ctx.analysis)
    last = int(rows[BATCH_COLUMN].max() or 0)  # type: ignore[arg-type]
    if last > 0:  # a counter past the champion's range: retraining would be due every batch
        refuse_counters(_model(champion), rows.filter(pl.col(BATCH_COLUMN) == last))
    train, held = holdout_split(rows)
    held = held.drop(BATCH_COLUMN, _POS)
    challenger = fit_model(
        train.drop(BATCH_COLUMN, _POS),
        params,
        features=list(cols.metrics),
        categorical=list(cols.categorical),
        series_target=str(cols.target),
        random_state=ctx.random_state,
    )
    champ, chall, ratio = compare_models(_model(champion), challenger, held)
    scored = held_out(challenger, held)
    challenger.info["baseline"] = {
        k: v
        for target, key in (
            (challenger.series_target, "rmse_series"),
            (challenger.resource_target, "rmse_resource"),
        )
        for k, v in error_figures(
            scored.rows[target].to_numpy(), scored.predictions[target], key
        ).items()
    }
    c = SegmentComparison(
        "retraining", champ, chall, ratio, ratio <= 1.0, held.height, train.height
    )
    comparison = _comparison(c)
    targets = evaluate(challenger, held)
    train_rows = train.drop(BATCH_COLUMN, _POS)
    baselines = global_model_scores(
        challenger, train_rows, scored, params, random_state=ctx.random_state
    )
    steps = training_steps(
        challenger, targets, {**comparison.details, "promoted": float(c.promoted)}
    )
    return Out(
        values={"comparison": comparison, "steps": steps},
        facts=comparison.facts(),
        baselines=baselines,
        metrics={
            **{f"challenger_{k}": float(v) for k, v in chall.items()},
            **{f"champion_{k}": float(v) for k, v in champ.items()},
            "rmse_ratio": ratio,
            "comparison_rows": float(held.height),
            "training_rows": float(train.height),
            **{
                f"{short}_global_rmse": float(targets[t]["global"]["rmse"])
                for short, t in (("series", str(cols.target)), ("resource", params.resource_target))
            },
        },
        model=ModelArtifact(
            model=SegmentPredictor(challenger, graceful=params.monitor.graceful_degradation),
            input_example=held.select(challenger.inputs).head(5),
            metadata={"series_target": str(cols.target), "resource_target": params.resource_target},
        ),
    )


def monitor(records: Sequence[Record], params: SegmentsParams) -> list[dict[str, Any]]:
    """The newest batch's alerts (noise ratio, time, memory) and drift warnings (noise-ratio
    trend, RMSE rise against the champion's held-out RMSE) over the records since training."""
    if not records:
        return []
    last = records[-1]
    m = params.monitor
    baseline = dict(last.get("baseline") or {})
    return batch_alerts(last, m.alert) + drift_warnings(
        records, m.drift, baseline, m.window_batches
    )


def retrain_reason(
    records: Sequence[Record],
    params: SegmentsParams,
    trained_at: datetime | None,
    now: datetime | None,
) -> str | None:
    """Why to retrain now: the noise-ratio window passed its threshold, or the schedule."""
    return _reason(records, params.monitor, trained_at, now)


BATCH = (
    Stage(
        "score_batch",
        score_batch,
        inputs=("batch", "champion", "champion_version"),
        outputs=(
            Output("predictions"),
            Output("labelled"),
            Output("record", "object"),
            Output("steps", "object"),
        ),
    ),
)
RETRAIN = (
    Stage(
        "retrain",
        refit,
        inputs=("raw", "labelled", "champion"),
        outputs=(Output("comparison", "object"), Output("steps", "object")),
        model=True,
    ),
)
LIFECYCLE = Lifecycle(
    window=window,
    compare=compare,
    monitor=monitor,
    retrain_reason=retrain_reason,
    history_key="params.monitor.history_url",
)
