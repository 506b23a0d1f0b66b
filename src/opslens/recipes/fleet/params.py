"""Parameters of the fleet recipe (``params:`` of an analysis with ``recipe: fleet``).

``fingerprint.window`` and each of ``fingerprint.lags`` is a number of readings
(``24``) or a duration (``1d``, ``1h``) that :func:`fingerprint_config` turns into
readings with the fleet's sampling interval (the median gap between a device's
readings), rounded to the nearest whole reading.

Example:
    >>> FleetParams().lead_time.methods
    ('ecod',)
    >>> FleetParams.model_validate({"rare": {"top_n": 5}}).rare.top_n
    5
    >>> p = FleetParams.model_validate({"fingerprint": {"window": "1d", "lags": ["1h", 6]}})
    >>> fingerprint_config(p, timedelta(hours=1)).window, fingerprint_config(p, timedelta(hours=1)).lags
    (24, (1, 6))
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import polars as pl
from pydantic import BeforeValidator, Field, model_validator

from opslens.config import Duration, Strict
from opslens.config.durations import parse_duration
from opslens.errors import DataError
from opslens.features.fingerprints import FingerprintConfig

__all__ = [
    "BaselineParams",
    "FailureParams",
    "FingerprintParams",
    "FleetParams",
    "GroupParams",
    "InspectParams",
    "LeadTimeParams",
    "RareParams",
    "analysed_features",
    "fingerprint_config",
    "to_readings",
]


def _readings_or_duration(value: Any) -> Any:
    """A whole number of readings (``24``, ``"24"``) or a duration (``"1d"``); nothing else."""
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(
            f"{value!r} is neither a whole number of readings (e.g. 24) nor a duration (e.g. 1d, 6h)"
        )
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return int(text)
        try:
            parsed = parse_duration(text)
        except ValueError:
            parsed = None
        if not isinstance(parsed, timedelta):
            raise ValueError(
                f"'{value}' is neither a whole number of readings (e.g. 24) nor a duration "
                "(e.g. 1d, 6h, 30m)"
            )
        return parsed
    return value


#: A number of readings or a duration (converted with the sampling interval).
Steps = Annotated[int | timedelta, BeforeValidator(_readings_or_duration)]


def _lag_list(value: Any) -> Any:
    """``lags: 5`` or ``lags: 1d`` is a list of one lag."""
    return (
        [value] if isinstance(value, int | float | str) and not isinstance(value, bool) else value
    )


class FingerprintParams(Strict):
    """Fingerprint feature settings (definitions in ``opslens.features.fingerprints``).

    ``window`` and ``lags`` are numbers of readings or durations (``1d``, ``1h``).
    """

    window: Steps = 24
    lags: Annotated[tuple[Steps, ...], BeforeValidator(_lag_list)] = (1, 2, 5, 10, 24)
    level_threshold: float = Field(default=1.0, ge=0)
    sampen_m: int = Field(default=2, ge=1)
    sampen_r: float = Field(default=0.2, gt=0)
    include_sample_entropy: bool = True
    pe_order: int = Field(default=3, ge=2, le=8)
    pe_delay: int = Field(default=1, ge=1)
    peaks_support: int = Field(default=3, ge=1)
    adf_lags: int = Field(default=4, ge=0)

    @model_validator(mode="after")
    def _steps(self) -> FingerprintParams:
        if isinstance(self.window, int) and self.window < 2:
            raise ValueError("window must be at least 2 readings (or a duration such as 1d)")
        ints = [lag for lag in self.lags if isinstance(lag, int)]
        if not self.lags:
            raise ValueError("lags needs at least one lag, e.g. [1, 24] or [1h, 1d]")
        if (ints and min(ints) < 1) or len(set(self.lags)) != len(self.lags):
            raise ValueError("lags must be distinct positive numbers of readings or durations")
        for value in (self.window, *self.lags):
            if isinstance(value, timedelta) and value <= timedelta(0):
                raise ValueError("durations in window and lags must be positive (e.g. 1h)")
        return self


class RareParams(Strict):
    """Rare-device detection settings."""

    methods: tuple[Literal["isolation_forest", "one_class_svm", "ecod", "autoencoder"], ...] = (
        "isolation_forest",
        "one_class_svm",
        "ecod",
        "autoencoder",
    )
    contamination: float = Field(default=0.05, gt=0, lt=0.5)
    top_n: int = Field(default=20, ge=1)


class GroupParams(Strict):
    """Behaviour-group settings."""

    methods: tuple[Literal["kmeans", "dbscan", "agglomerative"], ...] = (
        "kmeans",
        "dbscan",
        "agglomerative",
    )
    k_min: int = Field(default=2, ge=2)
    k_max: int = Field(default=8, ge=2)
    min_samples: int = Field(default=5, ge=2)

    @model_validator(mode="after")
    def _k_range(self) -> GroupParams:
        if self.k_max < self.k_min:
            raise ValueError(f"k_max ({self.k_max}) must be >= k_min ({self.k_min})")
        return self


class FailureParams(Strict):
    """Known failures: ids in config and/or a CSV/Parquet file (id column, optional failure time).

    A verdict ("useful risk indicator", an enriched group) needs at least
    ``min_failures`` known failed devices and a significance test below ``alpha``
    (a permutation p-value with ``permutations`` shuffles for AUROC; Fisher's
    exact test, Benjamini-Hochberg corrected, for groups).
    """

    ids: list[str] = Field(default_factory=list)
    path: Path | None = None
    id_column: str | None = None
    time_column: str | None = None
    min_failures: int = Field(default=5, ge=2)
    alpha: float = Field(default=0.01, gt=0, lt=0.5)
    permutations: int = Field(default=2000, ge=100)


class LeadTimeParams(Strict):
    """Rolling-window scoring before each failure date."""

    window: Duration = timedelta(days=7)
    step: Duration = timedelta(days=1)
    horizon: Duration = timedelta(days=30)
    top_k: int = Field(default=10, ge=1)
    # ECOD by default: parameter-free and ~6x cheaper than adding Isolation Forest on every window
    methods: tuple[Literal["isolation_forest", "one_class_svm", "ecod", "autoencoder"], ...] = (
        "ecod",
    )

    @model_validator(mode="after")
    def _positive(self) -> LeadTimeParams:
        for name in ("window", "step", "horizon"):
            if getattr(self, name) <= timedelta(0):
                raise ValueError(f"{name} must be a positive duration such as 7d, 12h or 30m")
        return self


class BaselineParams(Strict):
    """The baselines the rare-device ranking is scored against (with the known failures).

    ``recent``: the window of each device's latest readings that the own-history rule
    compares with the device's earlier readings; ``bootstrap``: resamples of devices for
    the interval of the AUROC difference.
    """

    recent: Duration = timedelta(days=7)
    bootstrap: int = Field(default=1000, ge=100)

    @model_validator(mode="after")
    def _positive(self) -> BaselineParams:
        if self.recent <= timedelta(0):
            raise ValueError("recent must be a positive duration such as 7d or 12h")
        return self


class ChangeParams(Strict):
    """Own-history and peer-relative change, and the warning rule (days and robust units).

    ``baseline_days``: each device's first days with readings, its baseline;
    ``recent_days``: the recent window the ranking compares with it; ``k``/``h``: the
    CUSUM's drift and the threshold that raises the warning; ``streak_z``/``streak_days``:
    the per-device baseline rule (that many days in a row beyond that many baseline sd).
    """

    baseline_days: int = Field(default=56, ge=7)
    recent_days: int = Field(default=14, ge=3)
    k: float = Field(default=1.5, ge=0)
    h: float = Field(default=10.0, gt=0)
    streak_z: float = Field(default=3.0, gt=0)
    streak_days: int = Field(default=3, ge=1)


class SensorParams(Strict):
    """Sensor-health checks: ``min_run`` days of one repeated value, a ``jump_z`` robust-unit
    jump within a day, ``max_gap`` days without readings; ``in_risk``: keep faulty metrics
    (and their devices' rarity) in the failure-risk ranking."""

    min_run: int = Field(default=5, ge=2)
    jump_z: float = Field(default=12.0, gt=0)
    max_gap: int = Field(default=7, ge=2)
    in_risk: bool = False


class RiskParams(Strict):
    """Weights of the failure-risk components; unset: learned from known failures, else equal."""

    weights: dict[Literal["rarity", "own_change", "peer_change"], float] | None = None

    @model_validator(mode="after")
    def _non_negative(self) -> RiskParams:
        if self.weights is not None and (
            any(w < 0 for w in self.weights.values()) or not sum(self.weights.values()) > 0
        ):
            raise ValueError("weights must be >= 0 with at least one above 0")
        return self


class EventParams(Strict):
    """Maintenance and error events: a CSV/Parquet file of (device, time, kind) rows.

    ``resets``: the kinds after which a device is compared with its post-event self.
    """

    path: Path | None = None
    id_column: str | None = None
    time_column: str = "time"
    kind_column: str = "kind"
    resets: list[str] = Field(default_factory=lambda: ["repair", "replacement"])


class InspectParams(Strict):
    """Which series the ``inspect`` stage profiles and decomposes.

    ``devices`` (default: the ``inspect_top`` rarest) and ``metrics`` (default:
    each device's most deviating metric) pick the series; ``period`` is the
    seasonal period in readings (or a duration such as ``1d``) for the STL
    decomposition, detected from the autocorrelation when not given.
    """

    devices: list[str] = Field(default_factory=list)
    metrics: list[str] = Field(default_factory=list)
    period: Steps | None = None


class FleetParams(Strict):
    """Knobs of the fleet recipe; every one has a default."""

    fingerprint: FingerprintParams = Field(default_factory=FingerprintParams)
    rare: RareParams = Field(default_factory=RareParams)
    groups: GroupParams = Field(default_factory=GroupParams)
    failures: FailureParams = Field(default_factory=FailureParams)
    lead_time: LeadTimeParams = Field(default_factory=LeadTimeParams)
    baselines: BaselineParams = Field(default_factory=BaselineParams)
    duplicates: Literal["error", "mean", "first", "last"] = "error"
    unsorted: Literal["error", "sort"] = "error"
    min_readings: int = Field(default=3, ge=2)
    short_devices: Literal["error", "drop"] = "error"
    inspect_top: int = Field(default=3, ge=0)
    inspect: InspectParams = Field(default_factory=InspectParams)
    change: ChangeParams = Field(default_factory=ChangeParams)
    sensors: SensorParams = Field(default_factory=SensorParams)
    risk: RiskParams = Field(default_factory=RiskParams)
    events: EventParams = Field(default_factory=EventParams)
    # physical range per metric, e.g. {gearbox_temp_c: [-40, 120]}; null leaves a side open
    limits: dict[str, tuple[float | None, float | None]] = Field(default_factory=dict)
    # units of the metrics for plot axes and the report, e.g. {temperature: "°C"}
    units: dict[str, str] = Field(default_factory=dict)
    # features left out of rare devices, groups and explanations: a series' length says
    # when a device joined or stopped reporting, not how it behaves
    exclude_features: list[str] = Field(default_factory=lambda: ["count"])


def to_readings(value: int | timedelta, interval: timedelta | None, key: str) -> int:
    """A number of readings, or a duration divided by the sampling interval (rounded).

    Example:
        >>> to_readings(timedelta(days=1), timedelta(hours=1), "params.fingerprint.window")
        24
        >>> to_readings(7, None, "params.fingerprint.window")
        7
    """
    if isinstance(value, int):
        return value
    if interval is None or interval <= timedelta(0):
        raise DataError(
            f"{key} is the duration {value}, but the data has no sampling interval to convert it",
            fix=f"give {key} as a number of readings (e.g. 24)",
        )
    return max(1, round(value / interval))


def fingerprint_config(p: FleetParams, interval: timedelta | None = None) -> FingerprintConfig:
    """The fingerprint settings of ``params.fingerprint``, durations turned into readings."""
    fp = p.fingerprint
    window = to_readings(fp.window, interval, "params.fingerprint.window")
    if window < 2:
        raise DataError(
            f"params.fingerprint.window {fp.window} is {window} reading(s) at a sampling "
            f"interval of {interval}; at least 2 are needed",
            fix="set params.fingerprint.window to a longer duration or to 2 or more readings",
        )
    lags = tuple(
        dict.fromkeys(to_readings(lag, interval, "params.fingerprint.lags") for lag in fp.lags)
    )
    return FingerprintConfig(**{**fp.model_dump(), "window": window, "lags": lags})


def analysed_features(fingerprints: pl.DataFrame, p: FleetParams) -> pl.DataFrame:
    """The fingerprint columns the population analyses use (``exclude_features`` left out)."""
    drop = [
        c for c in fingerprints.columns if "__" in c and c.split("__", 1)[1] in p.exclude_features
    ]
    return fingerprints.drop(drop)
