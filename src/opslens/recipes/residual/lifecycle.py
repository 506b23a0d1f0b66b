"""The residual recipe's life cycle: batches of samples checked by the champion, the alert rate
and the residual distribution monitored per axis, recalibration (new trends and limits) on the
most recent batches as the retraining.

* ``score_batch`` (pipeline ``batch``): every sample's levels; the record holds, per axis, the
  share of samples at ``alert`` or ``error`` (``<axis>_alert_rate``) and the two-sample
  Kolmogorov–Smirnov statistic of the batch's residuals against the champion's reference
  residuals (``<axis>_ks``: those of the rows it was fitted on).
* ``retrain`` (:func:`recalibrate`, pipeline ``retrain``): a trend and limits per axis fitted on the last
  :attr:`ResidualMonitor.window_batches` batches, the newest batch's last third held out;
  the challenger must have the lower mean squared residual (all axes' samples) on those rows
  (the comparison states a paired 95% interval and a paired test of the difference).

Every batch of samples is labelled (the samples are their own truth).

Example:
    >>> recs = [{"axis2_ks": 0.05, "axis2_alert_rate": 0.0}, {"axis2_ks": 0.9, "axis2_alert_rate": 0.8}]
    >>> retrain_reason(recs, None, None, None)
    'automatic: axis2 residual KS 0.9 > 0.3 (alert rate 0.8)'
    >>> [a["metric"] for a in monitor(recs, None)]
    ['axis2_ks', 'axis2_alert_rate']
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl
from scipy.stats import ks_2samp
from sklearn.base import clone

from opslens.config import AnalysisConfig
from opslens.core.lifecycle import (
    BATCH_COLUMN,
    Comparison,
    Lifecycle,
    Record,
    split_newest,
)
from opslens.core.recipe import ModelArtifact, Out, Output, Stage, StageContext
from opslens.models.compare import paired_interval, paired_p_value
from opslens.recipes.residual.conditional import AxisConditional
from opslens.recipes.residual.params import ResidualMonitor, ResidualParams
from opslens.recipes.residual.predictor import ResidualPredictor
from opslens.recipes.residual.stages import mode_limits
from opslens.recipes.residual.thresholds import calibrate_axis, with_below
from opslens.recipes.residual.trend import AxisTrend

__all__ = ["LIFECYCLE", "RecalibratedPredictor", "ResidualMonitor", "monitor", "retrain_reason"]


def _settings(params: Any) -> ResidualMonitor:
    found = getattr(params, "lifecycle", None)  # the hooks' doctests call them without params
    return found if isinstance(found, ResidualMonitor) else ResidualMonitor()


class RecalibratedPredictor(ResidualPredictor):
    """A recalibrated predictor that keeps its reference residuals per axis (its fitted rows')."""

    def __init__(self, *args: Any, reference: dict[str, np.ndarray], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reference = reference


def _residuals(predictor: ResidualPredictor, frame: pl.DataFrame) -> dict[str, np.ndarray]:
    answers = predictor.predict_frame(frame.drop("stream", strict=False))
    out = {}
    for axis in predictor.axes:
        r = answers[f"{axis}_residual"].cast(pl.Float64).to_numpy()
        value = frame[axis].cast(pl.Float64).to_numpy()
        out[axis] = r[np.isfinite(r) & (value != 0)]
    return out


def score_batch(
    ctx: StageContext,
    raw: pl.DataFrame,
    batch: pl.DataFrame,
    champion: ResidualPredictor,
    champion_version: str,
) -> Out:
    """Levels of every sample; per axis the alert rate and the residual KS against the reference."""
    answers = champion.predict_frame(batch)
    reference = getattr(champion, "reference", None) or _residuals(champion, raw)
    residuals = _residuals(champion, batch)
    record: dict[str, Any] = {"rows_in": batch.height}
    for axis in champion.axes:
        level = answers[f"{axis}_level"]
        alerting = level.is_in(["alert", "error"]).to_numpy()
        record[f"{axis}_alert_rate"] = float(alerting.mean()) if alerting.size else 0.0
        ref, now = reference[axis], residuals[axis]
        ks = float(ks_2samp(now, ref).statistic) if now.size and ref.size else 0.0
        record[f"{axis}_ks"] = ks
        record[f"{axis}_residual_mean"] = float(now.mean()) if now.size else 0.0
    keep = [champion.time_field, *champion.axes, *getattr(champion, "inputs", [])]
    return Out(
        values={
            "predictions": pl.concat([batch, answers.drop("stream")], how="horizontal"),
            "labelled": batch.select(keep),
            "record": record,
        },
        facts={"record": record},
        metrics={k: float(v) for k, v in record.items()},
    )


def window(raw: pl.DataFrame, labelled: pl.DataFrame, analysis: AnalysisConfig) -> pl.DataFrame:
    """The samples of the most recent ``window_batches`` batches (the training source's last rows
    when no batch came yet), oldest first."""
    n = _settings(analysis.params).window_batches
    if labelled.height == 0:
        return raw.tail(max(raw.height // 5, 10)).with_columns(
            pl.lit(0, pl.Int64).alias(BATCH_COLUMN)
        )
    numbers = labelled[BATCH_COLUMN].unique().sort().tail(n)
    return labelled.filter(pl.col(BATCH_COLUMN).is_in(numbers.implode()))


def _squared(predictor: ResidualPredictor, rows: pl.DataFrame) -> np.ndarray:
    """Squared residuals of every axis's usable samples (the same samples for any model)."""
    res = _residuals(predictor, rows.drop(BATCH_COLUMN))
    return np.concatenate([r**2 for r in res.values()]) if res else np.empty(0)


def compare(
    champion: ResidualPredictor,
    challenger: ResidualPredictor,
    rows: pl.DataFrame,
    analysis: AnalysisConfig,
) -> Comparison:
    """Mean squared residual (every axis's samples) of both models on the newest batch's
    held-out share, with a paired interval and test of the difference (lower is better)."""
    held = split_newest(rows, _settings(analysis.params).holdout_share)[1]
    champ, chall = _squared(champion, held), _squared(challenger, held)
    seed = analysis.random_state
    _, interval = paired_interval(chall, champ, random_state=seed)
    return Comparison(
        metric="residual_mse",
        champion=float(champ.mean()) if champ.size else float("inf"),
        challenger=float(chall.mean()) if chall.size else float("inf"),
        higher_is_better=False,
        rows=held.height,
        interval=interval,
        p_value=paired_p_value(chall, champ, random_state=seed),
    )


def recalibrate(
    ctx: StageContext, raw: pl.DataFrame, labelled: pl.DataFrame, champion: ResidualPredictor
) -> Out:
    """New models and limits per axis on the recent window; compared with the champion.

    An axis on other signals (per mode) is refitted with the same inputs; a mode the window
    lacks keeps the champion's model. Limits follow ``params.thresholds`` (both sides if set).
    """
    p: ResidualParams = ctx.params
    rows = window(raw, labelled, ctx.analysis)
    train, held = split_newest(rows, _settings(p).holdout_share)
    time = champion.time_field
    t0_us = int(train[time].dt.cast_time_unit("us").cast(pl.Int64).min())  # type: ignore[arg-type]
    t = (train[time].dt.cast_time_unit("us").cast(pl.Int64).to_numpy() - t0_us) / 1e6
    dt = float(np.median(np.diff(t))) if t.size > 1 else 1.0
    models: dict[str, AxisTrend | AxisConditional] = {}
    limits, reference = {}, {}
    for axis in champion.axes:
        y = train[axis].cast(pl.Float64).to_numpy()
        ok = np.isfinite(y) & (y != 0)
        old = champion.models[axis]
        if isinstance(old, AxisConditional):  # the same inputs and modes, refitted
            ok &= np.all([train[c].is_not_null().to_numpy() for c in old.inputs()], axis=0)
            rows = train.filter(pl.Series(ok))
            inputs = {c: rows[c].to_numpy() for c in old.inputs()}
            new = clone(old).fit(inputs, y[ok])
            for mode in set(old.coef_) - set(new.coef_):  # a mode the window lacks: kept
                new.coef_[mode], new.intercept_[mode] = old.coef_[mode], old.intercept_[mode]
                new.rows_[mode] = old.rows_[mode]
            models[axis] = new
            reference[axis] = y[ok] - new.predict_columns(inputs)
        else:
            models[axis] = AxisTrend(
                "linear", n_segments=p.model.n_segments, huber_epsilon=p.model.huber_epsilon
            ).fit(t[ok], y[ok])
            reference[axis] = y[ok] - models[axis].predict(t[ok])
        limits[axis] = calibrate_axis(reference[axis], dt_seconds=dt, **p.thresholds.policy())
        side = p.thresholds.directions.get(axis, p.thresholds.direction)
        if side != "above":
            below = calibrate_axis(-reference[axis], dt_seconds=dt, **p.thresholds.policy())
            limits[axis] = with_below(limits[axis], below, side)
        model = models[axis]
        if p.thresholds.per_mode and isinstance(model, AxisConditional):
            labels = model.mode_of_columns(inputs)
            if labels is not None:  # per-mode limits on the window's residuals, as in training
                table = pl.DataFrame({"residual": reference[axis], "mode": labels.tolist()})
                per_mode = mode_limits(table, side, p, dt)
                kept = champion.thresholds.get(axis, {}).get("modes") or {}
                for mode in set(kept) - set(per_mode):  # a mode the window lacks: kept
                    per_mode[mode] = dict(kept[mode])
                per_mode = dict(sorted(per_mode.items()))
                if per_mode:
                    limits[axis]["modes"] = per_mode
    challenger = RecalibratedPredictor(
        models,
        limits,
        time_field=time,
        t0_us=t0_us,
        reference=reference,
        streaming=getattr(champion, "streaming", None),
        max_spans=getattr(champion, "max_spans", 1.0),
        hold_off=getattr(champion, "hold_off", 0),
        fit_watch=getattr(champion, "fit_watch", (0, 1.0)),
        inputs=getattr(champion, "inputs", []),
    )
    comparison = compare(champion, challenger, rows, ctx.analysis)
    comparison = Comparison(
        **{**comparison.__dict__, "training_rows": train.height, "reason": "recalibration"}
    )
    return Out(
        values={"comparison": comparison},
        facts=comparison.facts(),
        metrics={
            "challenger_residual_mse": comparison.challenger,
            "champion_residual_mse": comparison.champion,
            "comparison_rows": float(held.height),
        },
        model=ModelArtifact(
            model=challenger,
            input_example=train.select(time, *champion.axes, *getattr(champion, "inputs", [])).head(
                5
            ),
            metadata={"thresholds": limits},
        ),
    )


def _axes(records: Sequence[Record]) -> list[str]:
    return [k[: -len("_ks")] for k in records[-1] if k.endswith("_ks")] if records else []


def monitor(records: Sequence[Record], params: Any) -> list[dict[str, Any]]:
    """Per axis of the newest batch: residual drift (KS past the threshold) and a high alert rate."""
    s = _settings(params)
    out = []
    for axis in _axes(records):
        last = records[-1]
        for metric, limit, kind in (
            (f"{axis}_ks", s.ks_threshold, "drift"),
            (f"{axis}_alert_rate", s.alert_rate, "alert"),
        ):
            value = float(last.get(metric) or 0.0)
            if value > limit:
                out.append({"kind": kind, "metric": metric, "value": value, "threshold": limit})
    return out


def retrain_reason(
    records: Sequence[Record], params: Any, trained_at: datetime | None, now: datetime | None
) -> str | None:
    """Recalibrate when an axis's residual distribution drifted from the reference (KS)."""
    s = _settings(params)
    for axis in _axes(records):
        ks = float(records[-1].get(f"{axis}_ks") or 0.0)
        if ks > s.ks_threshold:
            rate = float(records[-1].get(f"{axis}_alert_rate") or 0.0)
            return (
                f"automatic: {axis} residual KS {ks:.3g} > {s.ks_threshold:g} "
                f"(alert rate {rate:.3g})"
            )
    return None


BATCH = (
    Stage(
        "score_batch",
        score_batch,
        inputs=("raw", "batch", "champion", "champion_version"),
        outputs=(Output("predictions"), Output("labelled"), Output("record", "object")),
    ),
)
RETRAIN = (
    Stage(
        "retrain",
        recalibrate,
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
