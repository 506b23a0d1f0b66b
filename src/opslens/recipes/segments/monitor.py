"""Monitoring rules over a batch history: alerts, drift warnings and when to retrain (pure).

A batch record is a dict with at least ``batch``, ``rows_scored``, ``noise_ratio``,
``processing_seconds``, ``peak_memory_mb`` and, once labels arrived,
``rmse_series`` / ``rmse_resource``. These functions read records and thresholds
and return what a person should hear; they never store anything.

Example:
    >>> from opslens.recipes.segments.params import MonitorParams
    >>> p = MonitorParams(noise_threshold=0.2, window_batches=2)
    >>> h = [{"batch": 1, "rows_scored": 100, "noise_ratio": 0.05},
    ...      {"batch": 2, "rows_scored": 100, "noise_ratio": 0.45}]
    >>> round(window_noise_ratio(h, 2), 3), retrain_reason(h, p, None, None)
    (0.25, 'automatic: noise ratio 0.25 over the last 2 batches passed the threshold 0.2')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from opslens.recipes.segments.params import AlertThresholds, DriftThresholds, MonitorParams

__all__ = ["Z_DRIFT", "batch_alerts", "drift_warnings", "retrain_reason", "window_noise_ratio"]

Record = Mapping[str, Any]


def window_noise_ratio(history: Sequence[Record], batches: int) -> float:
    """The noise ratio of the last ``batches`` batches' scored rows together (row-weighted).

    Example:
        >>> window_noise_ratio([{"rows_scored": 10, "noise_ratio": 0.5}], 3)
        0.5
    """
    recent = list(history)[-batches:]
    rows = sum(int(r.get("rows_scored") or 0) for r in recent)
    if rows == 0:
        return 0.0
    return sum(float(r["noise_ratio"]) * int(r.get("rows_scored") or 0) for r in recent) / rows


def batch_alerts(record: Record, alert: AlertThresholds) -> list[dict[str, Any]]:
    """The alerts one batch raises: each names the metric, its value and the threshold.

    Example:
        >>> batch_alerts({"batch": 3, "noise_ratio": 0.4, "processing_seconds": 0.1,
        ...     "peak_memory_mb": 5.0}, AlertThresholds())[0]["metric"]
        'noise_ratio'
    """
    out = []
    for metric, key, limit in (
        ("noise_ratio", "noise_ratio", alert.noise_ratio),
        ("processing_time", "processing_seconds", alert.processing_time),
        ("memory_usage", "peak_memory_mb", alert.memory_usage),
    ):
        value = record.get(key)
        if value is not None and float(value) > limit:
            out.append(
                {
                    "kind": "alert",
                    "batch": record.get("batch"),
                    "metric": metric,
                    "value": float(value),
                    "threshold": float(limit),
                }
            )
    return out


Z_DRIFT = 2.0
"""Standard errors by which a batch's squared error must pass the degradation threshold."""


def _beyond(value: float, base: float, se: float, base_se: float, factor: float) -> bool:
    """Whether RMSE ``value`` is above ``factor`` × ``base`` by :data:`Z_DRIFT` standard errors
    of the squared-error means (no errors known: the point rule)."""
    if value <= factor * base:
        return False
    spread = np.hypot(se, factor**2 * base_se)
    if spread <= 0:
        return True
    return bool((value**2 - factor**2 * base**2) / spread > Z_DRIFT)


def drift_warnings(
    history: Sequence[Record],
    drift: DriftThresholds,
    baseline: Mapping[str, float],
    batches: int,
) -> list[dict[str, Any]]:
    """Drift: the rise over the window of the noise ratio inside the training range, inputs
    outside the training range (each named, with its share of rows; a counter past it in nearly
    every row says so), and RMSE rises against ``baseline`` beyond chance.

    Example:
        >>> h = [{"batch": 1, "noise_ratio": 0.02}, {"batch": 2, "noise_ratio": 0.2,
        ...       "rmse_series": 3.0}]
        >>> [w["metric"] for w in drift_warnings(h, DriftThresholds(), {"rmse_series": 1.0}, 2)]
        ['noise_ratio_trend', 'rmse_series']
        >>> w = drift_warnings([{"batch": 1, "noise_ratio": 0.9, "noise_in_range": 0.0,
        ...     "out_of_range": {"month": {"above": 1.0, "below": 0.0, "share": 1.0}},
        ...     "past_range": ["month"]}], DriftThresholds(), {}, 2)
        >>> [(x["metric"], x["feature"]) for x in w], w[0]["message"][:42]
        ([('out_of_range', 'month')], "'month' outside its training range in 100%")
    """
    if not history:
        return []
    recent = list(history)[-(batches + 1) :]
    last = recent[-1]
    out = []

    def inside(r: Record) -> float:
        return float(r.get("noise_in_range", r["noise_ratio"]))

    trend = inside(last) - inside(recent[0])
    if len(recent) > 1 and trend > drift.noise_ratio_trend:
        out.append(
            {
                "kind": "drift",
                "batch": last.get("batch"),
                "metric": "noise_ratio_trend",
                "value": trend,
                "threshold": drift.noise_ratio_trend,
            }
        )
    past = set(last.get("past_range") or [])
    for feature, r in (last.get("out_of_range") or {}).items():
        share = float(r.get("share", 0.0))
        if share <= drift.out_of_range:
            continue
        said = f"'{feature}' outside its training range in {100 * share:.3g}% of the rows"
        if feature in past:
            said += " (past it in nearly every row: a counter; drop or encode it, see retraining)"
        out.append(
            {
                "kind": "drift",
                "batch": last.get("batch"),
                "metric": "out_of_range",
                "feature": feature,
                "value": share,
                "threshold": drift.out_of_range,
                "message": said,
            }
        )
    factor = 1.0 + drift.performance_degradation
    for key in ("rmse_series", "rmse_resource"):
        value, base = last.get(key), baseline.get(key)
        if value is None or not base:
            continue
        se_key = key.replace("rmse_", "mse_se_")
        se, base_se = float(last.get(se_key) or 0.0), float(baseline.get(se_key) or 0.0)
        if _beyond(float(value), float(base), se, base_se, factor):
            out.append(
                {
                    "kind": "drift",
                    "batch": last.get("batch"),
                    "metric": key,
                    "value": float(value),
                    "threshold": float(base) * factor,
                }
            )
    return out


def retrain_reason(
    history: Sequence[Record],
    monitor: MonitorParams,
    trained_at: datetime | None,
    now: datetime | None,
) -> str | None:
    """Why the model should be retrained now (automatic or scheduled), or None. Never while
    the latest batch has a segmenting feature past its training range in nearly every row (a
    counter: a retraining would be due again on the next batch; the drift warning says so).

    Example:
        >>> retrain_reason([{"batch": 1, "rows_scored": 9, "noise_ratio": 1.0,
        ...     "past_range": ["month"]}], MonitorParams(), None, None) is None
        True
    """
    if history and history[-1].get("past_range"):
        return None
    if history:
        ratio = window_noise_ratio(history, monitor.window_batches)
        if ratio > monitor.noise_threshold:
            n = min(len(history), monitor.window_batches)
            return (
                f"automatic: noise ratio {ratio:.3g} over the last {n} batches passed "
                f"the threshold {monitor.noise_threshold:g}"
            )
    interval = monitor.interval()
    if interval is not None and trained_at is not None and now is not None:
        if now - trained_at >= interval:
            return f"scheduled: {now - trained_at} since the last training (interval {interval})"
    return None
