"""The facts a residual run states (facts.json), one section per stage, typed to the field.

Example:
    >>> ResidualFacts.model_validate({"analysis": {"name": "axes", "recipe": "residual",
    ...     "run_id": "r"}}).profile is None
    True
    >>> HoldoutLevels(ok=9, alert=1, error=0).error
    0
"""

from __future__ import annotations

from typing import Any

from opslens.core.facts import FactsModel, RecipeFacts

__all__ = [
    "AxisFit",
    "AxisLimits",
    "EvaluateFacts",
    "FitFacts",
    "HeldOutAlarms",
    "HoldoutLevels",
    "LimitPolicy",
    "MetricRow",
    "PrepareFacts",
    "ProfileFacts",
    "ResidualFacts",
    "ThresholdsFacts",
]


class ProfileFacts(FactsModel):
    """Rows, axes, time range and the median sampling interval; the label column if given."""

    rows: int
    axes: list[str]
    renamed: dict[str, str]
    start: str
    end: str
    dt_seconds: float
    per_axis: dict[str, dict[str, int]]
    labels: str | None = None
    labelled_rows: int | None = None


class PrepareFacts(FactsModel):
    """The time origin, the training window and the interpolation done."""

    time: str
    axes: list[str]
    t0: str
    t0_us: int
    dt_seconds: float
    train_start: str
    train_end: str | None
    rows_train: int
    rows_test: int
    interpolate: bool
    interpolated: dict[str, int]


class ModeFit(FactsModel):
    """One operating mode's model of an axis: intercept, coefficients, training rows."""

    intercept: float
    coef: list[float]
    rows: int


class AxisFit(FactsModel):
    """One axis's model: the family requested and used, why, and the fitted line (a trend
    against time) or the per-mode models on other signals (``regressors``, ``mode_column``)."""

    requested: str
    family: str
    reason: str
    holdout_rmse: dict[str, float] | None = None
    slope: float | None = None
    intercept: float | None = None
    knots: list[float] | None = None
    rows_fitted: int
    rows_zero_excluded: int = 0
    regressors: list[str] | None = None
    mode_column: str | None = None
    found_modes: dict[str, Any] | None = None
    modes: dict[str, ModeFit] | None = None


class FoundModes(FactsModel):
    """Operating modes found by clustering ``params.model.mode_signals``: the number chosen,
    the held-out error of every number tried, why, and the modes' centres."""

    signals: list[str]
    n_modes: int
    requested: int | str
    holdout_error: dict[str, float]
    reason: str
    centres: dict[str, dict[str, float]]


class FitFacts(FactsModel):
    """The trend of every axis (and the operating modes found, if any)."""

    axes: dict[str, AxisFit]
    modes: FoundModes | None = None


class MetricRow(FactsModel):
    """R², MAE, RMSE of one axis on one split, and the training mean's RMSE (the baseline)."""

    axis: str
    split: str
    r2: float | None
    mae: float | None
    rmse: float | None
    n: int
    baseline_rmse: float | None


class EvaluateFacts(FactsModel):
    """R², MAE, RMSE per axis and split, with the training-mean baseline's RMSE."""

    metrics: list[MetricRow]


class LimitPolicy(FactsModel):
    """How an axis's limits were set (:func:`.thresholds.calibrate_axis`)."""

    minc_percentile: float
    maxc_percentile: float
    alert_seconds_default: float
    error_seconds_default: float
    alert_quantile: float
    error_quantile: float
    method: str
    trim_top_ratio: float
    min_pos_for_trim: int
    n_residuals: int
    n_positive: int
    n_trimmed: int
    T_long_default: int
    T_short_default: int
    alert_run_quantile: float | None
    error_run_quantile: float | None


class AxisLimits(FactsModel):
    """An axis's thresholds entry: MinC, MaxC and the sustain steps."""

    MinC: float
    MaxC: float
    T_long_steps: int
    T_short_steps: int
    dt_seconds: float
    policy: LimitPolicy
    direction: str = "above"
    MinC_below: float | None = None
    MaxC_below: float | None = None
    below_policy: LimitPolicy | None = None
    modes: dict[str, dict[str, float]] | None = None
    """With ``thresholds.per_mode``: MinC / MaxC (and below) per operating mode, with the
    mode's training residuals (``rows``)."""


class HoldoutLevels(FactsModel):
    """Held-out samples per level of one axis."""

    ok: int = 0
    alert: int = 0
    error: int = 0


class HeldOutAlarms(FactsModel):
    """The model's and the baselines' alarms on the held-out rows (see :mod:`.baselines`).

    ``labels``: the label column (``columns.target``) or None; ``windows``: labelled
    anomaly windows held out; ``rates``: the share of held-out rows each detector
    alarmed; ``bands``: the 3-sigma band per axis; ``note``: what the figures can say.
    """

    rows: int
    alarm_level: str
    labels: str | None
    windows: int | None
    units: int
    unit: str
    rates: dict[str, float]
    bands: dict[str, tuple[float, float]]
    note: str


class StreamFit(FactsModel):
    """One axis's streaming fit: the baseline chosen, its limits, why."""

    family: str
    period_samples: int
    period_seconds: float | None
    centre: float
    above: float
    below: float
    direction: str
    warmup: int
    holdout_mae: dict[str, float]
    reason: str


class ThresholdsFacts(FactsModel):
    """The thresholds entry of every axis and the levels on the held-out rows."""

    axes: dict[str, AxisLimits]
    holdout: dict[str, HoldoutLevels]
    held_out: HeldOutAlarms | None = None
    streaming: dict[str, StreamFit] | None = None
    """Streaming mode: what the run's own stream (its first samples) fitted per axis."""


class ResidualFacts(RecipeFacts):
    """Every section a residual run may hold."""

    profile: ProfileFacts | None = None
    prepare: PrepareFacts | None = None
    fit: FitFacts | None = None
    evaluate: EvaluateFacts | None = None
    thresholds: ThresholdsFacts | None = None
    #: the life cycle's stages (recipes/residual/lifecycle.py) state no facts today
    score_batch: FactsModel | None = None
    recalibrate: FactsModel | None = None
