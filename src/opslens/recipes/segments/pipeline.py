"""The segments recipe's Python API: fit, score batches, monitor, retrain — all in memory.

:class:`SegmentPipeline` holds a champion :class:`~opslens.recipes.segments.model.SegmentModel`,
the batch history, recent errors and an expanding window of labelled rows. It is
pure and in memory. In service the same pieces (:func:`batch_metrics`, :func:`holdout_split`,
:func:`compare_models`, the rules of :mod:`~opslens.recipes.segments.monitor`) are the recipe's
life-cycle hooks (:mod:`opslens.recipes.segments.lifecycle`), run by :mod:`opslens.runner.lifecycle`.

Retraining (:meth:`SegmentPipeline.retrain`) fits a challenger on the window's most
recent ``monitor.expanding_window_size`` rows, holding out every third row of the latest
labelled batch (of the training rows when no batch had labels yet); the challenger is promoted only if
its mean RMSE ratio to the champion's over both targets on those rows is at most 1.

Example:
    >>> from opslens.synthetic.patients import FEATURES, make_patients, make_patient_batches
    >>> params = SegmentsParams.model_validate({"lgb_series": {"n_estimators": 20},
    ...     "lgb_resource": {"n_estimators": 20}})
    >>> data = make_patients(n_rows=800, seed=0).frame
    >>> pipe = SegmentPipeline(params, features=list(FEATURES), categorical=["ward"],
    ...     series_target="next_score")
    >>> pipe = pipe.fit(data, data["next_score"], data["resource_hours"])
    >>> pipe.update_thresholds(alert={"memory_usage": 1e9})  # this process's memory is not the point
    >>> result = pipe.process_batch(make_patient_batches(1, 200, seed=0)[0].frame)
    >>> result.record["rows_in"] == result.record["rows_scored"] + result.record["rows_rejected"]
    True
    >>> pipe.health()["status"]
    'healthy'
    >>> pipe.update_thresholds(alert={"processing_time": 1e-9})
    >>> pipe.process_batch(data[:50]).alerts[0]["metric"], pipe.health()["status"]
    ('processing_time', 'degraded')
"""

from __future__ import annotations

import resource
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl

from opslens.core.frames import as_polars
from opslens.errors import DataError, OpslensError
from opslens.recipes.segments.model import (
    SegmentModel,
    fit_model,
    past_range,
    past_range_error,
    summarise_scores,
)
from opslens.recipes.segments.monitor import batch_alerts, drift_warnings, retrain_reason
from opslens.recipes.segments.params import AlertThresholds, DriftThresholds, SegmentsParams
from opslens.recipes.segments.preprocess import Preprocessor
from opslens.recipes.segments.regress import regression_metrics

__all__ = [
    "BatchResult",
    "Comparison",
    "SegmentPipeline",
    "batch_metrics",
    "compare_models",
    "error_figures",
    "holdout_split",
    "refuse_counters",
]

_BATCH = "__batch"
_POS = "__pos"
HOLDOUT_SHARE = 0.3


@dataclass(frozen=True)
class BatchResult:
    """A scored batch: predictions (one row per input row), its record, alerts, retraining."""

    predictions: pl.DataFrame
    record: dict[str, Any]
    alerts: list[dict[str, Any]]
    retrain_reason: str | None = None
    retrained: Comparison | None = None


@dataclass(frozen=True)
class Comparison:
    """Champion against challenger on the latest labelled rows, and the decision."""

    reason: str
    champion: dict[str, float]
    challenger: dict[str, float]
    ratio: float
    promoted: bool
    rows: int
    training_rows: int

    def summary(self) -> str:
        """One line: both RMSEs per target, the ratio and what happened.

        Example:
            >>> Comparison("manual", {"rmse_series": 2.0, "rmse_resource": 1.0},
            ...     {"rmse_series": 1.0, "rmse_resource": 1.0}, 0.75, True, 30, 300).summary()
            'challenger rmse_series 1 vs champion 2, rmse_resource 1 vs 1 on 30 rows: ratio 0.75 <= 1, promoted'
        """
        parts = ", ".join(
            f"{k} {self.challenger[k]:.4g} vs {'champion ' if i == 0 else ''}{self.champion[k]:.4g}"
            for i, k in enumerate(("rmse_series", "rmse_resource"))
        )
        verdict = "<= 1, promoted" if self.promoted else "> 1, champion kept"
        return f"challenger {parts} on {self.rows} rows: ratio {self.ratio:.3g} {verdict}"


def holdout_split(
    window: pl.DataFrame, share: float = HOLDOUT_SHARE
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(training rows, comparison rows): every ``round(1/share)``-th row of the latest labelled
    batch held out.

    Example:
        >>> w = pl.DataFrame({"__batch": [0] * 10 + [1] * 10, "__pos": list(range(10)) * 2})
        >>> [f.height for f in holdout_split(w)]
        [16, 4]
    """
    last = int(window[_BATCH].max())  # type: ignore[arg-type]
    k = round(1 / share)
    held = (pl.col(_BATCH) == last) & (pl.col(_POS) % k == 0)
    return window.filter(~held), window.filter(held)


def compare_models(
    champion: SegmentModel, challenger: SegmentModel, rows: pl.DataFrame
) -> tuple[dict[str, float], dict[str, float], float]:
    """RMSE of both models on ``rows`` per target, and the mean challenger/champion ratio."""
    out = []
    for model in (champion, challenger):
        scored = model.score(rows)
        ok = (scored["status"] == "scored").to_numpy()
        out.append(
            {
                "rmse_series": regression_metrics(
                    rows[model.series_target].to_numpy()[ok], scored["pred_series"].to_numpy()[ok]
                )["rmse"],
                "rmse_resource": regression_metrics(
                    rows[model.resource_target].to_numpy()[ok],
                    scored["pred_resource"].to_numpy()[ok],
                )["rmse"],
            }
        )
    ratios = [out[1][k] / out[0][k] if out[0][k] > 0 else 1.0 for k in out[0]]
    return out[0], out[1], float(np.mean(ratios))


def refuse_counters(model: SegmentModel, latest: pl.DataFrame) -> None:
    """ConfigError when a segmenting feature of ``model`` lies past its training range in
    nearly every row of ``latest`` (the latest batch): retraining would not bring it back."""
    if latest.height == 0:
        return
    pre = model.preprocessor
    report = pre.out_of_range(latest)
    past = past_range(report, pre.features)
    if past:
        raise past_range_error(past[0], report, getattr(pre, "ranges_", {}))


def error_figures(y: np.ndarray, pred: np.ndarray, key: str) -> dict[str, float]:
    """``key``'s RMSE and ``mse_se_<target>``: the standard error of the mean squared error
    (what the drift warning needs to tell a real rise from a batch's chance).

    Example:
        >>> error_figures(np.array([0.0, 0.0]), np.array([1.0, 3.0]), "rmse_series")
        {'rmse_series': 2.23606797749979, 'mse_se_series': 4.0}
    """
    se = (np.asarray(y, float) - np.asarray(pred, float)) ** 2
    n = len(se)
    return {
        key: regression_metrics(y, pred)["rmse"],
        key.replace("rmse_", "mse_se_"): float(se.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0,
    }


def batch_metrics(
    frame: pl.DataFrame,
    predictions: pl.DataFrame,
    series_target: str,
    resource_target: str,
    preprocessor: Preprocessor | None = None,
) -> tuple[dict[str, Any], pl.DataFrame | None]:
    """A scored batch's monitoring figures (rows, rejections, noise and segment shares, the
    inputs outside their training range with the share of rows — ``out_of_range`` — and the
    segmenting features past it in nearly every row — ``past_range`` — given the model's
    ``preprocessor``, and both targets' RMSE when the batch carries labels) and its scored,
    labelled rows (or None).

    Example:
        >>> frame = pl.DataFrame({"y": [1.0, 2.0], "h": [1.0, float("nan")]})
        >>> preds = pl.DataFrame({"row": [0, 1], "status": ["scored", "scored"], "reason": [None, None],
        ...     "segment": [0, 0], "path": ["hdbscan", "hdbscan"], "model_series": ["segment", "segment"],
        ...     "pred_series": [1.5, 2.0], "pred_resource": [1.0, 1.0]})
        >>> m, truth = batch_metrics(frame, preds, "y", "h")
        >>> m["rows_scored"], m["rmse_series"], truth.height
        (2, 0.5, 1)
    """
    metrics = summarise_scores(predictions)
    if preprocessor is not None:
        report = preprocessor.out_of_range(frame)
        metrics["out_of_range"] = report
        metrics["past_range"] = past_range(report, preprocessor.features)
    scored = predictions.filter(pl.col("status") == "scored")
    labelled = series_target in frame.columns and resource_target in frame.columns
    if not (labelled and metrics["rows_scored"]):
        return metrics, None
    rows = frame[scored["row"].to_numpy()]
    ok = (
        rows[series_target].cast(pl.Float64).is_finite()
        & rows[resource_target].cast(pl.Float64).is_finite()
    )
    truth, pred = rows.filter(ok), scored.filter(ok)
    if truth.height == 0:
        return metrics, None
    for key, target, col in (
        ("rmse_series", series_target, "pred_series"),
        ("rmse_resource", resource_target, "pred_resource"),
    ):
        metrics |= error_figures(truth[target].to_numpy(), pred[col].to_numpy(), key)
    return metrics, truth


class SegmentPipeline:
    """Segments with a kNN fallback, per-segment models of two targets, and a model that keeps
    itself current (see the module docstring for an example)."""

    def __init__(
        self,
        params: SegmentsParams | None = None,
        *,
        features: Sequence[str],
        categorical: Sequence[str] = (),
        series_target: str = "y_series",
        random_state: int = 0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.params = params or SegmentsParams()
        self.features = list(features)
        self.categorical = list(categorical)
        self.series_target = series_target
        self.random_state = random_state
        self.clock = clock or (lambda: datetime.now(UTC))
        self.graceful = self.params.monitor.graceful_degradation
        self.alert_thresholds = self.params.monitor.alert
        self.drift_thresholds = self.params.monitor.drift
        self.history: list[dict[str, Any]] = []
        self.errors: list[dict[str, Any]] = []
        self.alert_log: list[dict[str, Any]] = []
        self.retrainings: list[Comparison] = []
        self.version = 0

    # ----- training -------------------------------------------------------------------
    def _frame(self, X: Any, y_series: Any, y_resource: Any) -> pl.DataFrame:
        frame = as_polars(X, what="X")
        cols = {self.series_target: y_series, self.params.resource_target: y_resource}
        for name, y in cols.items():
            if y is None:
                continue
            values = np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y, dtype=float)
            if values.shape[0] != frame.height:
                raise DataError(
                    f"{name} has {values.shape[0]} values for {frame.height} rows of X",
                    fix="pass one target value per row of X",
                )
            frame = frame.with_columns(pl.Series(name, values))
        return frame

    def fit(self, X: Any, y_series: Any, y_resource: Any) -> SegmentPipeline:
        """Fit the champion on ``X`` and both targets; the window starts with these rows.

        ``params.test_size`` of the rows (seeded) are held out: the champion's RMSE on them
        is the baseline that performance degradation is measured against.
        """
        frame = self._frame(X, y_series, y_resource)
        self.window = frame.with_columns(
            pl.lit(0, dtype=pl.Int64).alias(_BATCH), pl.int_range(frame.height).alias(_POS)
        )
        rng = np.random.default_rng(self.random_state)
        test = rng.random(frame.height) < self.params.test_size
        self.model_ = self._fit(frame.filter(pl.Series(~test)))
        self.baseline_ = self._rmse(self.model_, frame.filter(pl.Series(test)))
        self.model_.info["baseline"] = dict(self.baseline_)
        self.version = 1
        self.trained_at = self.clock()
        return self

    def _fit(self, frame: pl.DataFrame) -> SegmentModel:
        return fit_model(
            frame,
            self.params,
            features=self.features,
            categorical=self.categorical,
            series_target=self.series_target,
            random_state=self.random_state,
        )

    def _rmse(self, model: SegmentModel, rows: pl.DataFrame) -> dict[str, float]:
        scored = model.score(rows, graceful=True)
        ok = (scored["status"] == "scored").to_numpy()
        return error_figures(
            rows[self.series_target].to_numpy()[ok],
            scored["pred_series"].to_numpy()[ok],
            "rmse_series",
        ) | error_figures(
            rows[self.params.resource_target].to_numpy()[ok],
            scored["pred_resource"].to_numpy()[ok],
            "rmse_resource",
        )

    @classmethod
    def from_model(
        cls,
        model: SegmentModel,
        params: SegmentsParams,
        *,
        version: int,
        trained_at: datetime,
        window: pl.DataFrame | None = None,
        history: Sequence[Mapping[str, Any]] = (),
        baseline: Mapping[str, float] | None = None,
        random_state: int = 0,
        clock: Callable[[], datetime] | None = None,
    ) -> SegmentPipeline:
        """A pipeline around an already fitted model (what the lifecycle loads by alias)."""
        pipe = cls(
            params,
            features=list(model.preprocessor.features),
            categorical=list(model.preprocessor.categorical),
            series_target=model.series_target,
            random_state=random_state,
            clock=clock,
        )
        pipe.model_ = model
        pipe.version = version
        pipe.trained_at = trained_at
        pipe.history = [dict(r) for r in history]
        pipe.baseline_ = dict(baseline or model.info.get("baseline", {}))
        if window is not None:
            pipe.window = window
        return pipe

    # ----- batches --------------------------------------------------------------------
    def process_batch(
        self,
        X_new: Any,
        y_series: Any = None,
        y_resource: Any = None,
        *,
        auto_retrain: bool = True,
    ) -> BatchResult:
        """Score a batch, record its metrics, raise alerts, and retrain when due.

        Labels come as ``y_series`` / ``y_resource`` or as the target columns in ``X_new``.
        """
        try:
            frame = self._frame(X_new, y_series, y_resource)
            t0 = time.perf_counter()
            predictions = self.model_.score(frame, graceful=self.graceful)
            seconds = time.perf_counter() - t0
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        except OpslensError as e:
            self._error("batch", str(e))
            raise
        record = self._record(frame, predictions, seconds, peak)
        self.history.append(record)
        alerts = batch_alerts(record, self.alert_thresholds) + drift_warnings(
            self._since_training(),
            self.drift_thresholds,
            self.baseline_,
            self.params.monitor.window_batches,
        )
        self.alert_log += alerts
        reason = retrain_reason(
            self._since_training(), self.params.monitor, self.trained_at, self.clock()
        )
        retrained = self.retrain(reason) if reason and auto_retrain else None
        return BatchResult(predictions, record, alerts, reason, retrained)

    def _since_training(self) -> list[dict[str, Any]]:
        return [r for r in self.history if r.get("model_version") == self.version]

    def _record(
        self, frame: pl.DataFrame, predictions: pl.DataFrame, seconds: float, peak: float
    ) -> dict[str, Any]:
        metrics, truth = batch_metrics(
            frame,
            predictions,
            self.series_target,
            self.params.resource_target,
            self.model_.preprocessor,
        )
        record: dict[str, Any] = {
            "batch": (max((int(r["batch"]) for r in self.history), default=0)) + 1,
            "model_version": self.version,
            "recorded_at": self.clock().isoformat(),
            **metrics,
            "processing_seconds": seconds,
            "peak_memory_mb": peak,
        }
        if truth is not None:
            self._extend_window(truth, int(record["batch"]))
        return record

    def _extend_window(self, rows: pl.DataFrame, batch: int) -> None:
        window = getattr(self, "window", None)
        keep = (
            [c for c in window.columns if c not in (_BATCH, _POS)]
            if window is not None
            else [*self.model_.inputs, self.series_target, self.params.resource_target]
        )
        add = rows.select(keep).with_columns(
            pl.lit(batch, dtype=pl.Int64).alias(_BATCH), pl.int_range(rows.height).alias(_POS)
        )
        size = self.params.monitor.expanding_window_size
        parts = [add] if window is None else [window, add]
        self.window = pl.concat(parts, how="vertical_relaxed").tail(size)

    # ----- retraining -----------------------------------------------------------------
    def retrain(self, reason: str) -> Comparison:
        """Fit a challenger on the window; promote it if it does at least as well (see above).

        ConfigError (nothing fitted) when the latest batch has a segmenting feature past its
        training range in nearly every row (a counter such as a month: see
        :func:`~opslens.recipes.segments.model.past_range_error`)."""
        window = self.window.tail(self.params.monitor.expanding_window_size)
        train, held = holdout_split(window)
        try:
            last = self.history[-1] if self.history else {}
            if last.get("past_range"):
                raise past_range_error(
                    last["past_range"][0],
                    last.get("out_of_range") or {},
                    getattr(self.model_.preprocessor, "ranges_", {}),
                )
            if int(window[_BATCH].max() or 0) > 0:  # type: ignore[arg-type]
                refuse_counters(self.model_, window.filter(pl.col(_BATCH) == window[_BATCH].max()))
            challenger = self._fit(train.drop(_BATCH, _POS))
        except OpslensError as e:
            self._error("retrain", str(e))
            raise
        champ, chall, ratio = compare_models(self.model_, challenger, held)
        result = Comparison(reason, champ, chall, ratio, ratio <= 1.0, held.height, train.height)
        self.challenger_ = challenger
        self.retrainings.append(result)
        if result.promoted:
            self.model_ = challenger
            self.version += 1
            self.baseline_ = self._rmse(challenger, held.drop(_BATCH, _POS))
        self.trained_at = self.clock()
        return result

    # ----- monitoring -----------------------------------------------------------------
    def _error(self, kind: str, message: str) -> None:
        self.errors.append({"at": self.clock().isoformat(), "kind": kind, "message": message})

    def alerts(self) -> list[dict[str, Any]]:
        """Every alert and drift warning raised so far, oldest first."""
        return list(self.alert_log)

    def error_statistics(self) -> dict[str, Any]:
        """Errors by kind and rows rejected by reason across all batches."""
        rejected: Counter[str] = Counter()
        for r in self.history:
            rejected.update(r.get("rejected_by_reason") or {})
        return {
            "errors": len(self.errors),
            "by_kind": dict(Counter(e["kind"] for e in self.errors)),
            "rows_rejected": sum(int(r.get("rows_rejected") or 0) for r in self.history),
            "rejected_by_reason": dict(rejected),
        }

    def recent_errors(self, limit: int = 5) -> list[dict[str, Any]]:
        """The ``limit`` most recent errors, newest last."""
        return self.errors[-limit:] if limit > 0 else []

    def health(self) -> dict[str, Any]:
        """``healthy`` / ``warning`` (drift) / ``degraded`` (alerts in the last batch), and why."""
        last = self.history[-1] if self.history else None
        last_batch = last["batch"] if last else None
        current = [a for a in self.alert_log if a.get("batch") == last_batch]
        status = "healthy"
        if any(a["kind"] == "drift" for a in current):
            status = "warning"
        if any(a["kind"] == "alert" for a in current):
            status = "degraded"
        return {
            "status": status,
            "model_version": self.version,
            "trained_at": self.trained_at.isoformat(),
            "batches": len(self.history),
            "last_batch": last,
            "alerts": current,
            "graceful_degradation": self.graceful,
            "errors": self.error_statistics(),
        }

    def update_thresholds(
        self, *, alert: Mapping[str, float] | None = None, drift: Mapping[str, float] | None = None
    ) -> None:
        """Change alert thresholds (``noise_ratio``, ``processing_time``, ``memory_usage``) and
        drift thresholds (``noise_ratio_trend``, ``performance_degradation``)."""
        if alert:
            self.alert_thresholds = AlertThresholds.model_validate(
                {**self.alert_thresholds.model_dump(), **alert}
            )
        if drift:
            self.drift_thresholds = DriftThresholds.model_validate(
                {**self.drift_thresholds.model_dump(), **drift}
            )

    def enable_graceful_degradation(self, on: bool = True) -> None:
        """Score rows of segments without their own model by the global model (on) or reject them."""
        self.graceful = bool(on)
