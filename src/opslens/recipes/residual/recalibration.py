"""Recalibration of the limits: which recent samples count as normal, and whether new limits are
better than the champion's on the same recent held-out samples.

A recalibration (``opslens retrain``, or ``opslens batch`` / ``opslens stream`` when a trigger
of ``params.recalibrate`` fires) fits the models and limits again on a recent window. Two
things decide whether the recalibrated version serves:

* **Normal data only.** The alarmed samples of the window are left out of the fit: the
  champion's ``error`` samples while the champion still fits the window (at most
  ``params.lifecycle.alert_rate`` of them alarmed); when it no longer fits (a whole new
  normal alarms), the samples more than ``outlier_k`` robust deviations from a first fit on
  the window (:func:`normal_rows`).
* **A calibration comparison** (:func:`calibration_comparison`) on the window's newest
  held-out samples, the same for both versions: the false-alarm rate (the share of samples at
  the alarm level, ``params.baselines.alarm_level``, and alarms per week) on them as they
  are, and the share of planted faults caught on a copy with ``faults`` step faults planted
  (:func:`plant_faults`: each ``fault_size`` times the champion's ``MaxC`` on one axis, long
  enough for both versions' sustain rules). The recalibrated version wins when it raises no
  more false alarms and catches at least as many planted faults (less
  ``max_detection_loss``); otherwise the champion stays (``opslens promote --force``
  overrides).

Example:
    >>> import numpy as np
    >>> from opslens.recipes.residual.predictor import example_predictor
    >>> p = example_predictor()
    >>> frame = pl.DataFrame({"ts": np.arange(400.0), "axis1": np.zeros(400)})
    >>> planted, spans = plant_faults(frame, p, p, RecalibrateParams(faults=2))
    >>> [(axis, start, stop) for axis, start, stop, _ in spans]
    [('axis1', 95, 105), ('axis1', 295, 305)]
    >>> float(planted["axis1"][100]) > p.thresholds["axis1"]["MaxC"]
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from opslens.core.lifecycle import Comparison
from opslens.models.compare import paired_interval, paired_p_value
from opslens.recipes.residual.params import RecalibrateParams, ResidualParams
from opslens.recipes.residual.thresholds import MAD_SCALE

if TYPE_CHECKING:
    from opslens.recipes.residual.predictor import ResidualPredictor

__all__ = [
    "Calibration",
    "RecalibrateParams",
    "calibration_comparison",
    "normal_rates",
    "normal_rows",
    "plant_faults",
    "recalibration_trigger",
    "score_calibration",
]

_WEEK = 7 * 86400.0


def recalibration_trigger(params: ResidualParams) -> tuple[int, float, bool, int] | None:
    """What a stream's checker needs of ``params.recalibrate``: ``(every samples, every
    seconds, on_drift, window)``, or None when nothing would trigger (the checker counts
    nothing then).

    Example:
        >>> recalibration_trigger(ResidualParams.model_validate({"recalibrate": {"every": "1d"}}))
        (0, 86400.0, True, 2000)
        >>> recalibration_trigger(ResidualParams.model_validate(
        ...     {"recalibrate": {"on_drift": False}})) is None
        True
    """
    r = params.recalibrate
    every_n = r.every if isinstance(r.every, int) else 0
    every_s = r.every.total_seconds() if isinstance(r.every, timedelta) else 0.0
    if not (every_n or every_s or (r.on_drift and params.lifecycle.stream_window)):
        return None
    return every_n, every_s, r.on_drift, r.window


def normal_rates(predictor: ResidualPredictor, frame: pl.DataFrame) -> dict[str, float]:
    """The share of ``frame``'s samples (those the limits were calibrated on) at ``alert`` or
    ``error``, per axis and for the stream (``"level"``): what the limits let through on
    normal data. The reference's MinC is the 75th percentile of one side's residuals, so with
    a sustain of one sample about an eighth of normal samples alert per side (a quarter with
    ``direction: both``, more over several axes); the drift trigger counts only what passes
    this. The stream's fit watch is off while they are scored (no warning on its own data).

    Example:
        >>> import numpy as np
        >>> from opslens.recipes.residual.predictor import example_predictor
        >>> p = example_predictor()   # MinC 5: alert after 2 samples above it
        >>> rows = pl.DataFrame({"ts": np.arange(8.0), "axis1": [9.0] * 4 + [0.0] * 4})
        >>> normal_rates(p, rows)
        {'axis1': 0.375, 'level': 0.375}
    """
    watch, predictor.fit_watch = predictor.fit_watch, (0, 1.0)
    try:
        answers = predictor.predict_frame(frame)
    finally:
        predictor.fit_watch = watch

    def share(column: str) -> float:
        alarming = answers[column].is_in(["alert", "error"]).fill_null(False).to_numpy()
        return float(alarming.mean()) if alarming.size else 0.0

    return {**{a: share(f"{a}_level") for a in predictor.axes}, "level": share("level")}


def normal_rows(
    residuals: np.ndarray, champion_alarmed: np.ndarray, *, alert_rate: float, outlier_k: float
) -> tuple[np.ndarray, str]:
    """The rows of a window that count as normal for a refit, and which rule chose them.

    ``residuals`` are a first fit's on the window (NaN: unusable), ``champion_alarmed`` the
    champion's alarmed rows. While the champion alarms on at most ``alert_rate`` of them its
    alarms are faults and are left out; past that it no longer fits (a new normal), and the
    rows more than ``outlier_k`` robust deviations from the first fit's median are left out.

    Example:
        >>> r = np.r_[np.sin(np.arange(100.0)), 40.0]
        >>> keep, rule = normal_rows(r, np.ones(101, bool), alert_rate=0.2, outlier_k=6.0)
        >>> int((~keep).sum()), rule
        (1, 'outliers')
        >>> keep, rule = normal_rows(r, np.arange(101) == 3, alert_rate=0.2, outlier_k=6.0)
        >>> np.flatnonzero(~keep).tolist(), rule
        ([3], 'champion')
    """
    r = np.asarray(residuals, dtype=np.float64)
    ok = np.isfinite(r)
    alarmed = np.asarray(champion_alarmed, dtype=bool) & ok
    if ok.any() and alarmed.sum() <= alert_rate * ok.sum():
        return ok & ~alarmed, "champion"
    centre = float(np.median(r[ok])) if ok.any() else 0.0
    spread = MAD_SCALE * float(np.median(np.abs(r[ok] - centre))) if ok.any() else 0.0
    if spread <= 0:
        return ok, "outliers"
    return ok & (np.abs(r - centre) <= outlier_k * spread), "outliers"


def _steps(predictor: ResidualPredictor, axis: str) -> int:
    limits = predictor.thresholds[axis]
    return max(int(limits.get("T_long_steps", 1)), int(limits.get("T_short_steps", 1)))


def plant_faults(
    frame: pl.DataFrame,
    champion: ResidualPredictor,
    challenger: ResidualPredictor,
    params: RecalibrateParams,
) -> tuple[pl.DataFrame, list[tuple[str, int, int, float]]]:
    """A copy of ``frame`` with ``params.faults`` step faults, evenly spaced, one axis each
    (round robin): ``(axis, start row, stop row, step)`` per fault.

    A step is ``fault_size`` times the champion's ``MaxC`` on the side its ``direction``
    alarms (``both``: up and down in turn); it lasts ``fault_samples`` samples, or the longer
    sustain of the two versions plus one. Fewer faults when the frame is too short for them
    (each needs twice its length).
    """
    axes = champion.axes
    out = {a: frame[a].cast(pl.Float64).to_numpy().copy() for a in axes}
    n = frame.height
    spans: list[tuple[str, int, int, float]] = []
    k = params.faults
    length = {
        a: max(params.fault_samples, _steps(champion, a) + 1, _steps(challenger, a) + 1)
        for a in axes
    }
    while k > 0 and n < k * 2 * max(length.values()):
        k -= 1
    for i in range(k):
        axis = axes[i % len(axes)]
        limits = champion.thresholds[axis]
        side = limits.get("direction", "above")
        down = side == "below" or (side == "both" and (i // len(axes)) % 2 == 1)
        size = params.fault_size * float(limits["MaxC_below" if down else "MaxC"])
        step = -size if down else size
        start = int((i + 0.5) * n / k) - length[axis] // 2
        stop = start + length[axis]
        out[axis][start:stop] += step
        spans.append((axis, start, stop, step))
    return frame.with_columns(pl.Series(a, v) for a, v in out.items()), spans


@dataclass(frozen=True)
class Calibration:
    """One version on the held-out samples: its false alarms and the planted faults it caught."""

    alarmed: np.ndarray
    """Per held-out sample, whether it is at the alarm level (unplanted data)."""
    alarms: int
    """Alarms raised (the checker's ``alarm``: a stream entering ``error``) on them."""
    caught: int
    planted: int

    def per_week(self, seconds: float) -> float:
        """Alarms per week of the held-out span."""
        return self.alarms * _WEEK / seconds if seconds > 0 else float(self.alarms)

    @property
    def rate(self) -> float:
        """Share of the held-out samples at the alarm level."""
        return float(self.alarmed.mean()) if self.alarmed.size else 0.0


def score_calibration(
    predictor: ResidualPredictor,
    held: pl.DataFrame,
    planted: pl.DataFrame,
    spans: list[tuple[str, int, int, float]],
    alarm_level: str,
) -> Calibration:
    """``predictor``'s false alarms on ``held`` and the faults of ``spans`` caught on ``planted``."""
    levels = ("alert", "error") if alarm_level == "alert" else ("error",)
    plain = predictor.predict_frame(held)
    alarmed = plain["level"].is_in(levels).to_numpy()
    alarms = int(plain["alarm"].fill_null(False).sum())
    faulty = predictor.predict_frame(planted)
    caught = 0
    for axis, start, stop, _ in spans:
        caught += bool(faulty[f"{axis}_level"].slice(start, stop - start).is_in(levels).any())
    return Calibration(alarmed=alarmed, alarms=alarms, caught=caught, planted=len(spans))


def calibration_comparison(
    champion: ResidualPredictor,
    challenger: ResidualPredictor,
    held: pl.DataFrame,
    params: RecalibrateParams,
    *,
    alarm_level: str = "error",
    alert_rate: float = 0.2,
    random_state: int = 0,
    details: dict[str, Any] | None = None,
) -> Comparison:
    """The champion's and the recalibrated limits on the same held-out samples: false alarms
    (a share of the samples and alarms per week) and planted faults caught; the recalibrated
    version wins with no more false alarms, no fewer faults caught (less
    ``max_detection_loss``), and the held-out samples normal to it (at most ``alert_rate`` of
    them alarmed: else they hold a fault, not a new normal)."""
    planted, spans = plant_faults(held, champion, challenger, params)
    old = score_calibration(champion, held, planted, spans, alarm_level)
    new = score_calibration(challenger, held, planted, spans, alarm_level)
    time = champion.time_field
    seconds = 0.0
    if held.height > 1:
        span: Any = held[time].max() - held[time].min()  # type: ignore[operator]
        seconds = span.total_seconds() if hasattr(span, "total_seconds") else float(span)
    n = len(spans)
    loss = params.max_detection_loss * n
    wins = new.rate <= old.rate and new.caught >= old.caught - loss and new.rate <= alert_rate
    a, b = old.per_week(seconds), new.per_week(seconds)
    said = (
        f"limits recalibrated: false alarms {a:.3g} → {b:.3g} per week "
        f"({100 * old.rate:.3g}% → {100 * new.rate:.3g}% of {held.height} held-out samples at "
        f"{alarm_level}), planted faults caught {old.caught}/{n} → {new.caught}/{n}: "
    )
    if wins:
        said += "the recalibrated limits are better, promoted"
    elif new.rate > old.rate:
        said += "the recalibrated limits raise more false alarms, champion kept"
    elif new.rate > alert_rate:
        said += (
            f"the recent samples are not normal to the recalibrated limits either (over "
            f"{100 * alert_rate:.0f}% alarmed: a fault, not a new normal), champion kept"
        )
    else:
        said += "the recalibrated limits miss planted faults the champion catches, champion kept"
    interval, p_value = None, None
    if held.height > 1:
        x, y = new.alarmed.astype(np.float64), old.alarmed.astype(np.float64)
        interval = paired_interval(x, y, random_state=random_state)[1]
        p_value = paired_p_value(x, y, random_state=random_state)
    return Comparison(
        metric="false_alarm_rate",
        champion=old.rate,
        challenger=new.rate,
        higher_is_better=False,
        rows=held.height,
        wins=bool(wins),
        text=said,
        interval=interval,
        p_value=p_value,
        details={
            **(details or {}),
            "false_alarms_per_week": {"champion": a, "challenger": b},
            "false_alarm_rate": {"champion": old.rate, "challenger": new.rate},
            "faults_caught": {"champion": old.caught, "challenger": new.caught, "planted": n},
            "fault_size": params.fault_size,
            "held_out_seconds": seconds,
        },
    )
