"""Parameters of the residual recipe (``params:`` of an analysis with ``recipe: residual``).

The training window is given by ``train_start`` / ``train_end`` as timestamps
(ISO text or YAML timestamps), epoch numbers (seconds; milliseconds above 1e11)
or, for ``train_end``, a share of the samples (``"80%"``: the first 80% of the
rows in time order train, the rest is held out).

Labels: ``columns.target`` of the analysis names an optional label column (true,
or a non-zero number, on rows inside a labelled anomaly window; missing is false).
It is never an axis. With it, the held-out alarms of the residual limits and of the
baselines (a 3-sigma band per axis, never alarming) are scored against the labels:
precision, recall, F1 and the NAB score; without it, only their alarm rates
(``params.baselines``; see :mod:`opslens.recipes.residual.baselines`).

Example:
    >>> p = ResidualParams()
    >>> p.train_end, p.model.type, p.thresholds.minc_percentile
    ('80%', 'linear', 75.0)
    >>> ResidualParams.model_validate({"model": {"axes": {"axis2": "huber"}}}).family("axis2")
    'huber'
    >>> ResidualParams.model_validate({"train_end": "soon"})
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for ResidualParams
    train_end
      Value error, 'soon' is neither a share such as '80%' nor an ISO timestamp [type=value_error, input_value='soon', input_type=str]
    ...
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from opslens.config import Strict
from opslens.config.durations import parse_duration
from opslens.config.urls import DatabaseUrl

__all__ = [
    "HOLD_OFF",
    "BaselineParams",
    "Direction",
    "Family",
    "ModelParams",
    "PrepParams",
    "RecalibrateParams",
    "RegistryParams",
    "ResidualParams",
    "StreamingParams",
    "ThresholdParams",
]

Family = Literal["linear", "huber", "piecewise", "median", "auto"]
Direction = Literal["above", "below", "both"]


class PrepParams(Strict):
    """Preparation: optional interpolation of missing axis values over time."""

    interpolate: bool = False


class ModelParams(Strict):
    """The trend model per axis: ``type`` for every axis, ``axes`` overrides it per axis.

    An axis named in ``regressors``, or every axis when ``mode_column`` is set, is not
    a trend against time but a model on other signals, one per mode
    (:mod:`opslens.recipes.residual.conditional`); ``type`` then does not apply to it.

    ``auto`` fits every time trend (linear, huber, piecewise) on the first
    ``1 - holdout_share`` of the training rows, keeps the one with the lowest RMSE on
    the rest and records why; but when the data to score reaches more than
    ``max_spans`` training spans beyond the training window it refuses a time trend
    and takes ``median`` (a flat level). Scoring a time trend more than ``max_spans``
    spans outside its fitted range warns once per stream, saying how far out.
    """

    type: Family = "linear"
    axes: dict[str, Family] = Field(default_factory=dict)
    n_segments: int = Field(default=3, ge=2, le=50)
    huber_epsilon: float = Field(default=1.35, gt=1.0)
    holdout_share: float = Field(default=0.2, gt=0.0, lt=0.9)
    max_spans: float = Field(default=1.0, gt=0.0)
    regressors: dict[str, list[str]] = Field(default_factory=dict)
    """Per axis, the columns it is predicted from (other axes or exogenous columns)."""
    mode_column: str | None = None
    """The operating mode per sample: a model per mode for every axis (never an axis)."""
    mode_signals: list[str] = Field(default_factory=list)
    """Columns (not axes: speed, load, a set point) whose clustering finds the operating modes
    when no column names them: a model per found mode for every axis."""
    n_modes: int | Literal["auto"] = "auto"
    """With ``mode_signals``: how many modes, or ``auto``: 1 to ``max_modes``, the fewest whose
    held-out error (every 5th training row) is within 2% of the lowest; 1 is no modes."""
    max_modes: int = Field(default=6, ge=2, le=20)

    @field_validator("n_modes")
    @classmethod
    def _some_modes(cls, value: int | str) -> int | str:
        if isinstance(value, int) and not 1 <= value <= 20:
            raise ValueError("n_modes takes auto or a number from 1 to 20")
        return value

    @model_validator(mode="after")
    def _one_way(self) -> ModelParams:
        if self.mode_column is not None and self.mode_signals:
            raise ValueError(
                "set either mode_column (the mode given as a column) or mode_signals "
                "(modes found by clustering), not both"
            )
        return self


#: the alarm-flood guard's default, in samples (a day of 5-minute samples): after an alarm, no
#: new one on the stream (axis, in the streaming mode) for this many samples
HOLD_OFF = 288


class ThresholdParams(Strict):
    """MinC / MaxC limits on positive residuals and the sustain (run-length) rules.

    With ``direction: below`` or ``both`` an axis's entry also holds ``MinC_below`` /
    ``MaxC_below`` (limits on ``-residual``) and its sustain steps are the longer of the
    two sides'; ``above`` (the default) leaves the entry exactly as the reference's.
    """

    minc_percentile: float = Field(default=75.0, gt=0, le=100)
    maxc_percentile: float = Field(default=95.0, gt=0, le=100)
    trim_top_ratio: float = Field(default=0.02, ge=0, lt=1)
    min_pos_for_trim: int = Field(default=20, ge=1)
    use_mad_fallback: bool = True
    mad_minc_k: float = Field(default=2.0, ge=0)
    mad_maxc_k: float = Field(default=3.0, ge=0)
    alert_seconds_default: float = Field(default=5.0, gt=0)
    error_seconds_default: float = Field(default=3.0, gt=0)
    alert_quantile: float = Field(default=0.80, ge=0, le=1)
    error_quantile: float = Field(default=0.50, ge=0, le=1)
    direction: Direction = "above"
    """Which residuals alarm: ``above`` the model (the reference's), ``below`` it, or ``both``;
    the below side is calibrated by the same policy on the negated residuals."""
    directions: dict[str, Direction] = Field(default_factory=dict)
    """Per-axis overrides of ``direction``."""
    per_mode: bool = False
    """With operating modes (``model.mode_column`` or ``model.mode_signals``): MinC / MaxC per
    mode, on each mode's own training residuals (a mode with fewer than ``min_pos_for_trim``
    of them keeps the axis's); the sustain steps stay the axis's."""
    hold_off: int = Field(default=HOLD_OFF, ge=0)
    """The alarm-flood guard: after an alarm (a stream entering ``error``), no new alarm on
    the stream for this many samples (the levels are unchanged). 0 turns the guard off, an
    alarm at every entry into ``error``: a setting for batch analysis (counting episodes
    against a log, comparing with the reference's notebook), not for a live stream, which
    warns once when served with it (on NAB it floods: below the detector that never alarms)."""

    def policy(self) -> dict[str, Any]:
        """The knobs of :func:`~opslens.recipes.residual.thresholds.calibrate_axis`."""
        return self.model_dump(exclude={"direction", "directions", "hold_off", "per_mode"})

    @model_validator(mode="after")
    def _ordered(self) -> ThresholdParams:
        if self.maxc_percentile < self.minc_percentile:
            raise ValueError(
                f"maxc_percentile ({self.maxc_percentile}) must be >= minc_percentile "
                f"({self.minc_percentile})"
            )
        if self.mad_maxc_k < self.mad_minc_k:
            raise ValueError(f"mad_maxc_k ({self.mad_maxc_k}) must be >= mad_minc_k")
        return self


class StreamingParams(Strict):
    """The streaming mode (``params.streaming``): every stream learns its own normal.

    Per stream and axis, the first ``warmup_samples`` samples (or, when the stream's
    length is known in advance, as in a replay, ``warmup_share`` of it if that is
    fewer) fit the baseline and the limits and are never alarmed on; nothing later
    is looked at. The baseline describes the machine, not the clock: the median of
    the last ``window`` samples (``period: none``), or of the same phase in the last
    ``cycles`` periods (``period`` in seconds, e.g. 86400 for a day); ``auto`` picks,
    per axis, the one with the lowest median absolute error on the last third of the
    warm-up (among none, a day and a week, where two periods fit in the warm-up).
    The limit on each side is ``max(mad_k · 1.4826 · MAD, margin · q-quantile)`` of the
    warm-up's one-sided deviations; ``direction`` (per axis in ``directions``) says which
    sides alarm. An alarm needs ``sustain`` consecutive samples beyond a limit; after
    one, the next ``hold_off`` samples of the axis raise no new alarm.

    Example:
        >>> s = StreamingParams()
        >>> s.warmup_samples, s.window, s.period, s.direction, s.hold_off
        (750, 289, 'auto', 'both', 288)
        >>> s.direction_of("axis1")
        'both'
    """

    warmup_samples: int = Field(default=750, ge=10)
    warmup_share: float = Field(default=0.15, gt=0, le=1)
    window: int = Field(default=289, ge=1)
    period: Literal["auto", "none"] | float = "auto"
    cycles: int = Field(default=3, ge=1, le=52)
    direction: Direction = "both"
    directions: dict[str, Direction] = Field(default_factory=dict)
    mad_k: float = Field(default=4.0, ge=0)
    quantile: float = Field(default=0.99, gt=0, le=1)
    margin: float = Field(default=1.75, ge=0)
    sustain: int = Field(default=1, ge=1)
    hold_off: int = Field(default=HOLD_OFF, ge=0)
    """As ``thresholds.hold_off``, per axis; 0 (off) is for batch analysis, not a live stream."""

    @field_validator("period")
    @classmethod
    def _positive(cls, value: str | float) -> str | float:
        if not isinstance(value, str) and not value > 0:
            raise ValueError("period takes auto, none or a positive number of seconds")
        return value

    def direction_of(self, axis: str) -> Direction:
        """The sides that alarm on ``axis`` (its override, else ``direction``)."""
        return self.directions.get(axis, self.direction)


class BaselineParams(Strict):
    """What counts as the model's alarm when it is scored against its baselines.

    ``alarm_level``: ``error`` (the checker's error level) or ``alert`` (alert or error).
    """

    alarm_level: Literal["alert", "error"] = "error"


class RegistryParams(Strict):
    """The versioned folder registry: ``<root_dir>/<version_tag>/`` and ``latest``.

    ``version_tag`` unset: ``v<MLflow model version>`` (or the run id without tracking).
    """

    root_dir: str = "registry"
    version_tag: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")

    @field_validator("version_tag")
    @classmethod
    def _not_latest(cls, value: str | None) -> str | None:
        if value == "latest":
            raise ValueError("'latest' is the pointer's name; choose another version_tag")
        return value


class ResidualMonitor(Strict):
    """Monitoring and recalibration thresholds (``params.lifecycle``)."""

    ks_threshold: float = Field(default=0.3, gt=0, le=1)
    """Retrain when an axis's residual KS statistic against the reference passes this."""
    alert_rate: float = Field(default=0.2, gt=0, le=1)
    """Alert when an axis's share of alert/error samples in a batch passes this on top of its
    share on the limits' own training samples (what they let through on normal data: a
    quarter per axis with ``direction: both`` and a sustain of one); online, a stream warns
    once when its share in a window of ``stream_window`` samples passes it likewise."""
    stream_window: int = Field(default=500, ge=0)
    """Online: the samples per window in which a stream's share of alert/error samples is
    counted (the model no longer fits the machine when it passes ``alert_rate`` above the
    training samples' share; 0: off)."""
    window_batches: int = Field(default=2, ge=1)
    """Recalibrate on the samples of this many most recent batches."""
    holdout_share: float = Field(default=1 / 3, gt=0, lt=1)
    """Share of the newest batch held out to compare challenger and champion."""
    history_url: DatabaseUrl | None = None
    """SQLAlchemy URL of the monitoring history (None: ``lifecycle-history.db`` beside the runs)."""


class RecalibrateParams(Strict):
    """When the limits are recalibrated and how a recalibration is judged (``params.recalibrate``).

    Triggers, through the life cycle (``opslens batch`` after each batch, ``opslens retrain
    --if-due``, and ``opslens stream --from registry`` per stream): ``every`` (a number of
    samples, or a duration such as ``7d`` of data time) since the champion's calibration, and
    ``on_drift``: an axis's residuals drifted from the reference (KS past
    ``lifecycle.ks_threshold``) or its share of alert / error samples passed
    ``lifecycle.alert_rate`` above the share on the limits' own training samples (the
    stream's "no longer fits" warning). The judgement
    (:mod:`opslens.recipes.residual.recalibration`): false alarms on the newest held-out
    samples and ``faults`` planted step faults of ``fault_size`` times the champion's ``MaxC``.

    Example:
        >>> RecalibrateParams.model_validate({"every": "7d"}).every
        datetime.timedelta(days=7)
        >>> RecalibrateParams.model_validate({"every": 5000}).every, RecalibrateParams().on_drift
        (5000, True)
    """

    every: int | timedelta | None = None
    on_drift: bool = True
    window: int = Field(default=2000, ge=50)
    """Stream: the recent samples a stream keeps (per stream) to recalibrate on."""
    fault_size: float = Field(default=3.0, gt=0)
    faults: int = Field(default=8, ge=1, le=100)
    fault_samples: int = Field(default=10, ge=1)
    max_detection_loss: float = Field(default=0.0, ge=0, le=1)
    """Share of the planted faults the recalibrated limits may miss more than the champion's."""
    outlier_k: float = Field(default=6.0, gt=0)
    """Robust deviations past which a window's sample is left out when the champion no
    longer fits the window (see :func:`~opslens.recipes.residual.recalibration.normal_rows`)."""

    @field_validator("every", mode="before")
    @classmethod
    def _read(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return parse_duration(value.strip()) if not value.strip().isdigit() else int(value)
            except ValueError:
                raise ValueError(
                    f"'{value}' is neither a number of samples nor a duration; write it as "
                    "5000 (samples) or 7d, 12h, 30m, 90s, 2w"
                ) from None
        return value

    @field_validator("every")
    @classmethod
    def _some(cls, value: int | timedelta | None) -> int | timedelta | None:
        if isinstance(value, bool):
            raise ValueError("every takes a number of samples or a duration such as 7d")
        if isinstance(value, int) and value < 10:
            raise ValueError("every takes at least 10 samples (or a duration such as 7d)")
        if isinstance(value, timedelta) and value.total_seconds() <= 0:
            raise ValueError("every takes a positive duration such as 7d")
        return value


class ResidualParams(Strict):
    """Knobs of the residual recipe; every one has a default.

    ``mode``: ``reference`` (the reference's trend against time with MinC / MaxC limits
    and sustain rules, as calibrated on the training window) or ``streaming`` (each
    stream learns its own baseline and limits from its first samples, ``streaming``).
    """

    mode: Literal["reference", "streaming"] = "reference"
    train_start: datetime | float | str | None = None
    train_end: datetime | float | str | None = "80%"
    min_train_rows: int = Field(default=10, ge=3)
    axis_prefix: str = Field(default="axis", min_length=1)
    prep: PrepParams = Field(default_factory=PrepParams)
    model: ModelParams = Field(default_factory=ModelParams)
    thresholds: ThresholdParams = Field(default_factory=ThresholdParams)
    registry: RegistryParams = Field(default_factory=RegistryParams)
    baselines: BaselineParams = Field(default_factory=BaselineParams)
    lifecycle: ResidualMonitor = Field(default_factory=ResidualMonitor)
    streaming: StreamingParams = Field(default_factory=StreamingParams)
    recalibrate: RecalibrateParams = Field(default_factory=RecalibrateParams)

    @field_validator("train_start", "train_end", mode="after")
    @classmethod
    def _bound(cls, value: datetime | float | str | None) -> datetime | float | str | None:
        if isinstance(value, bool):
            raise ValueError("give a timestamp, an epoch number or a share such as '80%'")
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.endswith("%"):
            try:
                share = float(text[:-1])
            except ValueError:
                raise ValueError(f"'{value}' is not a share such as '80%'") from None
            if not 0 < share < 100:
                raise ValueError(f"the share {value} must lie strictly between 0% and 100%")
            return text
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"'{value}' is neither a share such as '80%' nor an ISO timestamp"
            ) from None

    @model_validator(mode="after")
    def _start_not_share(self) -> ResidualParams:
        if isinstance(self.train_start, str):
            raise ValueError("train_start takes a timestamp or epoch number, not a share")
        return self

    def family(self, axis: str) -> Family:
        """The model family of ``axis`` (its override, else ``model.type``)."""
        return self.model.axes.get(axis, self.model.type)
