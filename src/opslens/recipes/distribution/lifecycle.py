"""The distribution recipe's life cycle: batches scored by the champion with their held-out log
score (labels present), retraining when it drops, challenger and champion compared on the newest
batch's held-out share.

* ``score_batch`` (pipeline ``batch``): the predicted distribution of every row; the record holds
  the mean log score of the observed target (``log_score``, natural log of the probability of its
  bin) over the labelled rows.
* ``retrain`` hook: the log score of the newest batch fell more than
  :attr:`DistributionMonitor.max_drop` below the first batch the champion scored.
* ``retrain`` (:func:`refit`, pipeline ``retrain``): the train stages rerun on the window (the training source and
  the labelled batches, the last :attr:`DistributionMonitor.window_rows` rows) without the
  newest batch's last third, which decides: the higher mean log score wins.

Example:
    >>> recs = [{"batch": 1, "log_score": -2.0}, {"batch": 2, "log_score": -3.1}]
    >>> retrain_reason(recs, None, None, None)
    'automatic: log score -3.1 dropped 1.1 below -2 (the first batch since training; limit 0.5)'
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from opslens.config import AnalysisConfig
from opslens.core.lifecycle import (
    BATCH_COLUMN,
    Comparison,
    Lifecycle,
    Record,
    split_newest,
)
from opslens.core.recipe import Out, Output, Stage, StageContext
from opslens.models.compare import paired_interval, paired_p_value
from opslens.models.metrics import log_score
from opslens.recipes.distribution.params import DistributionMonitor
from opslens.recipes.distribution.predictor import PatternPredictor
from opslens.recipes.distribution.stages import (
    choose_k_stage,
    classify,
    cluster_stage,
    prepare,
    quantize_stage,
)

__all__ = ["LIFECYCLE", "DistributionMonitor", "batch_log_scores", "monitor", "retrain_reason"]


def _settings(params: Any) -> DistributionMonitor:
    found = getattr(params, "lifecycle", None)  # the hooks' doctests call them without params
    return found if isinstance(found, DistributionMonitor) else DistributionMonitor()


def batch_log_scores(predictor: PatternPredictor, rows: pl.DataFrame) -> np.ndarray:
    """Per labelled row, the log of the probability its predicted distribution gave its bin."""
    out = np.empty(rows.height)
    for i, row in enumerate(rows.iter_rows(named=True)):
        pred = predictor.predict_one(row)["prediction"]
        edges = np.asarray(pred["edges"], dtype=float)
        p = np.asarray(pred["probabilities"], dtype=float)
        b = int(
            np.clip(
                np.searchsorted(edges, float(row[predictor.target]), "right") - 1, 0, p.size - 1
            )
        )
        out[i] = log_score(p[None, :], np.array([b]))[0]
    return out


def _labelled(predictor: PatternPredictor, batch: pl.DataFrame) -> pl.DataFrame:
    if predictor.target not in batch.columns:
        return batch.head(0)
    return batch.filter(pl.col(predictor.target).cast(pl.Float64).is_finite())


def score_batch(
    ctx: StageContext, batch: pl.DataFrame, champion: PatternPredictor, champion_version: str
) -> Out:
    """The pattern and predicted distribution of every row; the labelled rows' log score."""
    predictions = champion.predict_frame(batch)
    labelled = _labelled(champion, batch)
    scores = batch_log_scores(champion, labelled)
    record: dict[str, Any] = {"rows_in": batch.height, "rows_labelled": labelled.height}
    if scores.size:
        record["log_score"] = float(scores.mean())
        record["log_score_se"] = (
            float(scores.std(ddof=1) / np.sqrt(scores.size)) if scores.size > 1 else 0.0
        )
    return Out(
        values={
            "predictions": pl.concat([batch, predictions], how="horizontal"),
            "labelled": labelled,
            "record": record,
        },
        facts={"record": record},
        metrics={k: float(v) for k, v in record.items()},
    )


def window(raw: pl.DataFrame, labelled: pl.DataFrame, analysis: AnalysisConfig) -> pl.DataFrame:
    """The training source (batch 0), then every labelled batch, the last ``window_rows`` rows."""
    parts = [raw.with_columns(pl.lit(0, pl.Int64).alias(BATCH_COLUMN))]
    if labelled.height:
        parts.append(labelled.select([*raw.columns, BATCH_COLUMN]))
    rows = pl.concat(parts, how="vertical_relaxed")
    return rows.tail(_settings(analysis.params).window_rows)


def compare(
    champion: PatternPredictor,
    challenger: PatternPredictor,
    rows: pl.DataFrame,
    analysis: AnalysisConfig,
) -> Comparison:
    """Mean log score of both models on the newest batch's held-out share (higher is better)."""
    held = split_newest(rows, _settings(analysis.params).holdout_share)[1].drop(BATCH_COLUMN)
    champ = batch_log_scores(champion, held)
    chall = batch_log_scores(challenger, held)
    seed = analysis.random_state
    _, interval = paired_interval(chall, champ, random_state=seed)
    return Comparison(
        metric="log_score",
        champion=float(champ.mean()),
        challenger=float(chall.mean()),
        higher_is_better=True,
        rows=held.height,
        interval=interval,
        p_value=paired_p_value(chall, champ, random_state=seed),
    )


def refit(ctx: StageContext, raw: pl.DataFrame, labelled: pl.DataFrame, champion: Any) -> Out:
    """The recipe's train stages on the window (held-out share left out); compared."""
    rows = window(raw, labelled, ctx.analysis)
    train, held = split_newest(rows, _settings(ctx.params).holdout_share)
    prepared = prepare(ctx, train.drop(BATCH_COLUMN)).values["prepared"]
    q = quantize_stage(ctx, prepared).values
    k = choose_k_stage(ctx, q["quantized"], q["histograms"]).values["k_choice"]
    c = cluster_stage(ctx, q["quantized"], q["histograms"], k, q["edges"]).values
    out = classify(ctx, q["quantized"], q["histograms"], c["clusters"], c["profiles"], q["edges"])
    assert out.model is not None
    comparison = compare(champion, out.model.model, rows, ctx.analysis)
    comparison = Comparison(
        **{**comparison.__dict__, "training_rows": train.height, "reason": "retraining"}
    )
    return Out(
        values={"comparison": comparison},
        facts=comparison.facts(),
        metrics={
            "challenger_log_score": comparison.challenger,
            "champion_log_score": comparison.champion,
            "comparison_rows": float(held.height),
            "training_rows": float(train.height),
        },
        model=out.model,
    )


def _drop(records: Sequence[Record], params: Any) -> tuple[float, float, float] | None:
    scored = [r for r in records if r.get("log_score") is not None]
    if len(scored) < 2 or records[-1].get("log_score") is None:
        return None
    first, last = float(scored[0]["log_score"]), float(records[-1]["log_score"])
    return (first, last, first - last) if first - last > _settings(params).max_drop else None


def monitor(records: Sequence[Record], params: Any) -> list[dict[str, Any]]:
    """A drift warning when the newest batch's log score dropped past the limit."""
    found = _drop(records, params)
    if found is None:
        return []
    first, last, _ = found
    limit = first - _settings(params).max_drop
    return [{"kind": "drift", "metric": "log_score", "value": last, "threshold": limit}]


def retrain_reason(
    records: Sequence[Record], params: Any, trained_at: datetime | None, now: datetime | None
) -> str | None:
    """Retrain when the held-out log score dropped past ``max_drop`` since the champion's first batch."""
    found = _drop(records, params)
    if found is None:
        return None
    first, last, drop = found
    return (
        f"automatic: log score {last:.3g} dropped {drop:.3g} below {first:.3g} "
        f"(the first batch since training; limit {_settings(params).max_drop:g})"
    )


BATCH = (
    Stage(
        "score_batch",
        score_batch,
        inputs=("batch", "champion", "champion_version"),
        outputs=(Output("predictions"), Output("labelled"), Output("record", "object")),
    ),
)
RETRAIN = (
    Stage(
        "retrain",
        refit,
        inputs=("raw", "labelled", "champion"),
        outputs=(Output("comparison", "object"),),
        model=True,
    ),
)


LIFECYCLE = Lifecycle(
    window=window,
    compare=compare,
    monitor=monitor,
    retrain_reason=retrain_reason,
    history_key="params.lifecycle.history_url",
)
