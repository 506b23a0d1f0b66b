"""The residual recipe's life cycle: batches of samples checked by the champion, the alert rate
and the residual distribution monitored per axis, recalibration (new trends and limits) on the
most recent batches as the retraining.

* ``score_batch`` (pipeline ``batch``): every sample's levels; the record holds, per axis, the
  share of samples at ``alert`` or ``error`` (``<axis>_alert_rate``; ``<axis>_normal_rate``,
  the champion's share on its own training samples, which the alert-rate trigger allows on
  top of ``lifecycle.alert_rate``) and the two-sample
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
from datetime import datetime, timedelta
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
from opslens.recipes.residual.conditional import AxisConditional
from opslens.recipes.residual.params import (
    HOLD_OFF,
    RecalibrateParams,
    ResidualMonitor,
    ResidualParams,
)
from opslens.recipes.residual.predictor import ResidualPredictor
from opslens.recipes.residual.recalibration import (
    calibration_comparison,
    normal_rates,
    normal_rows,
    recalibration_trigger,
)
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
    if batch.height:  # the data time the batch covers (a schedule in data time counts it)
        seconds = champion.arrays(batch)[0] + champion.t0_us / 1e6
        record["first_s"], record["last_s"] = float(seconds.min()), float(seconds.max())
        n = seconds.size  # n samples cover n intervals of data time
        record["span_s"] = (record["last_s"] - record["first_s"]) * n / max(n - 1, 1)
    for axis in champion.axes:
        level = answers[f"{axis}_level"]
        alerting = level.is_in(["alert", "error"]).to_numpy()
        record[f"{axis}_alert_rate"] = float(alerting.mean()) if alerting.size else 0.0
        record[f"{axis}_normal_rate"] = float(getattr(champion, "normal_rates", {}).get(axis, 0.0))
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
    res = _residuals(predictor, rows.drop(BATCH_COLUMN, strict=False))
    return np.concatenate([r**2 for r in res.values()]) if res else np.empty(0)


def compare(
    champion: ResidualPredictor,
    challenger: ResidualPredictor,
    rows: pl.DataFrame,
    analysis: AnalysisConfig,
) -> Comparison:
    """Both versions' limits on the newest batch's held-out share: false alarms and planted
    faults caught (:func:`~opslens.recipes.residual.recalibration.calibration_comparison`);
    the mean squared residual of every axis's samples goes along in the details."""
    p = analysis.params
    held = split_newest(rows, _settings(p).holdout_share)[1].drop(BATCH_COLUMN)
    champ, chall = _squared(champion, held), _squared(challenger, held)
    mse = {
        "champion": float(champ.mean()) if champ.size else None,
        "challenger": float(chall.mean()) if chall.size else None,
    }
    recal = getattr(p, "recalibrate", None)
    return calibration_comparison(
        champion,
        challenger,
        held,
        recal if isinstance(recal, RecalibrateParams) else RecalibrateParams(),
        alarm_level=getattr(getattr(p, "baselines", None), "alarm_level", "error"),
        alert_rate=_settings(p).alert_rate,
        random_state=analysis.random_state,
        details={"residual_mse": mse},
    )


def _refit(
    old: AxisTrend | AxisConditional,
    axis: str,
    train: pl.DataFrame,
    t: np.ndarray,
    ok: np.ndarray,
) -> tuple[AxisTrend | AxisConditional, np.ndarray, dict[str, np.ndarray]]:
    """``old``'s kind of model refitted on the ``ok`` rows of ``train``: the model, every row's
    residual (NaN where not fitted) and the inputs of the fitted rows (models on other signals).

    An axis on other signals (per mode) keeps its inputs; a mode the rows lack keeps ``old``'s.
    """
    y = train[axis].cast(pl.Float64).to_numpy()
    resid = np.full(y.size, np.nan)
    if isinstance(old, AxisConditional):
        ok = ok & np.all([train[c].is_not_null().to_numpy() for c in old.inputs()], axis=0)
        rows = train.filter(pl.Series(ok))
        inputs = {c: rows[c].to_numpy() for c in old.inputs()}
        new = clone(old).fit(inputs, y[ok])
        for mode in set(old.coef_) - set(new.coef_):  # a mode the window lacks: kept
            new.coef_[mode], new.intercept_[mode] = old.coef_[mode], old.intercept_[mode]
            new.rows_[mode] = old.rows_[mode]
        resid[ok] = y[ok] - new.predict_columns(inputs)
        return new, resid, inputs
    trend = clone(old).fit(t[ok], y[ok])
    resid[ok] = y[ok] - trend.predict(t[ok])
    return trend, resid, {}


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
    t0_us = champion.t0_us  # the champion's time origin: a stream's keys stay comparable
    t = (train[time].dt.cast_time_unit("us").cast(pl.Int64).to_numpy() - t0_us) / 1e6
    dt = float(np.median(np.diff(t))) if t.size > 1 else 1.0
    models: dict[str, AxisTrend | AxisConditional] = {}
    limits, reference = {}, {}
    level = ("alert", "error") if p.baselines.alarm_level == "alert" else ("error",)
    judged = champion.predict_frame(train.drop(BATCH_COLUMN, "stream", strict=False))
    left_out: dict[str, dict[str, Any]] = {}
    for axis in champion.axes:
        y = train[axis].cast(pl.Float64).to_numpy()
        ok = np.isfinite(y) & (y != 0)
        old = champion.models[axis]
        alarmed = judged[f"{axis}_level"].is_in(level).fill_null(False).to_numpy()
        first = _refit(old, axis, train, t, ok)[1]  # the window's alarmed samples are left out
        keep, rule = normal_rows(
            first, alarmed, alert_rate=_settings(p).alert_rate, outlier_k=p.recalibrate.outlier_k
        )
        left_out[axis] = {"samples": int((ok & ~keep).sum()), "rule": rule}
        ok &= keep
        models[axis], resid, inputs = _refit(old, axis, train, t, ok)
        reference[axis] = resid[np.isfinite(resid)]
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
        hold_off=getattr(champion, "hold_off", HOLD_OFF),
        fit_watch=getattr(champion, "fit_watch", (0, 1.0)),
        recalibrate=recalibration_trigger(p),
        inputs=getattr(champion, "inputs", []),
    )
    if challenger.streaming is None:  # what its limits let through on the samples fitted
        challenger.normal_rates = normal_rates(
            challenger, train.drop(BATCH_COLUMN, "stream", strict=False)
        )
    comparison = compare(champion, challenger, rows, ctx.analysis)
    comparison = Comparison(
        **{
            **comparison.__dict__,
            "training_rows": train.height,
            "reason": "recalibration",
            "details": {**comparison.details, "left_out": left_out},
        }
    )
    weekly = comparison.details["false_alarms_per_week"]
    caught = comparison.details["faults_caught"]
    return Out(
        values={"comparison": comparison},
        facts=comparison.facts(),
        metrics={
            "challenger_false_alarm_rate": comparison.challenger,
            "champion_false_alarm_rate": comparison.champion,
            "challenger_false_alarms_per_week": weekly["challenger"],
            "champion_false_alarms_per_week": weekly["champion"],
            "challenger_faults_caught": float(caught["challenger"]),
            "champion_faults_caught": float(caught["champion"]),
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
        normal = float(last.get(f"{axis}_normal_rate") or 0.0)
        for metric, limit, kind in (
            (f"{axis}_ks", s.ks_threshold, "drift"),
            (f"{axis}_alert_rate", s.alert_rate + normal, "alert"),
        ):
            value = float(last.get(metric) or 0.0)
            if value > limit:
                out.append({"kind": kind, "metric": metric, "value": value, "threshold": limit})
    return out


def _recalibrate(params: Any) -> RecalibrateParams:
    found = getattr(params, "recalibrate", None)
    return found if isinstance(found, RecalibrateParams) else RecalibrateParams()


def retrain_reason(
    records: Sequence[Record], params: Any, trained_at: datetime | None, now: datetime | None
) -> str | None:
    """Recalibrate on drift (``params.recalibrate.on_drift``: an axis's residual KS against
    the reference past ``lifecycle.ks_threshold``, or its share of alert / error samples in
    the newest batch past ``lifecycle.alert_rate``) or on schedule (``recalibrate.every``
    samples, or that much data time, scored by the champion)."""
    s, r = _settings(params), _recalibrate(params)
    if r.on_drift:
        for axis in _axes(records):
            ks = float(records[-1].get(f"{axis}_ks") or 0.0)
            rate = float(records[-1].get(f"{axis}_alert_rate") or 0.0)
            if ks > s.ks_threshold:
                return (
                    f"automatic: {axis} residual KS {ks:.3g} > {s.ks_threshold:g} "
                    f"(alert rate {rate:.3g})"
                )
        for axis in _axes(records):
            rate = float(records[-1].get(f"{axis}_alert_rate") or 0.0)
            normal = float(records[-1].get(f"{axis}_normal_rate") or 0.0)
            if rate > s.alert_rate + normal:
                return (
                    f"automatic: {axis} alert rate {rate:.3g} > {s.alert_rate + normal:.3g} "
                    "(the limits no longer fit)"
                )
    if isinstance(r.every, int) and not isinstance(r.every, bool):
        n = sum(int(x.get("rows_in") or 0) for x in records)
        if n >= r.every:
            return f"scheduled: {n} samples since the last calibration (every {r.every})"
    elif isinstance(r.every, timedelta) and records:
        span = sum(float(x.get("span_s") or 0.0) for x in records)
        if span >= r.every.total_seconds():
            return (
                f"scheduled: {span / 86400:.3g} days of data since the last calibration "
                f"(every {r.every.total_seconds() / 86400:g} days)"
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
