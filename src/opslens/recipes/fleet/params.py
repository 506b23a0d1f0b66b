"""Parameters of the fleet recipe (``params:`` of an analysis with ``recipe: fleet``).

Example:
    >>> FleetParams().lead_time.methods
    ('ecod',)
    >>> FleetParams.model_validate({"rare": {"top_n": 5}}).rare.top_n
    5
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

import polars as pl
from pydantic import Field, model_validator

from opslens.config import Duration, Strict
from opslens.features.fingerprints import FingerprintConfig

__all__ = [
    "FailureParams",
    "FingerprintParams",
    "FleetParams",
    "GroupParams",
    "LeadTimeParams",
    "RareParams",
    "analysed_features",
    "fingerprint_config",
]


class FingerprintParams(Strict):
    """Fingerprint feature settings (definitions in ``opslens.features.fingerprints``)."""

    window: int = Field(default=24, ge=2)
    lags: tuple[int, ...] = Field(default=(1, 2, 5, 10, 24), min_length=1)
    level_threshold: float = Field(default=1.0, ge=0)
    sampen_m: int = Field(default=2, ge=1)
    sampen_r: float = Field(default=0.2, gt=0)
    include_sample_entropy: bool = True
    pe_order: int = Field(default=3, ge=2, le=8)
    pe_delay: int = Field(default=1, ge=1)
    peaks_support: int = Field(default=3, ge=1)
    adf_lags: int = Field(default=4, ge=0)

    @model_validator(mode="after")
    def _lags(self) -> FingerprintParams:
        if min(self.lags) < 1 or len(set(self.lags)) != len(self.lags):
            raise ValueError("lags must be distinct positive integers")
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
    """Known failures: ids in config and/or a CSV/Parquet file (id column, optional failure time)."""

    ids: list[str] = Field(default_factory=list)
    path: Path | None = None
    id_column: str | None = None
    time_column: str | None = None


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


class FleetParams(Strict):
    """Knobs of the fleet recipe; every one has a default."""

    fingerprint: FingerprintParams = Field(default_factory=FingerprintParams)
    rare: RareParams = Field(default_factory=RareParams)
    groups: GroupParams = Field(default_factory=GroupParams)
    failures: FailureParams = Field(default_factory=FailureParams)
    lead_time: LeadTimeParams = Field(default_factory=LeadTimeParams)
    duplicates: Literal["error", "mean", "first", "last"] = "error"
    unsorted: Literal["error", "sort"] = "error"
    min_readings: int = Field(default=3, ge=2)
    short_devices: Literal["error", "drop"] = "error"
    inspect_top: int = Field(default=3, ge=0)
    # features left out of rare devices, groups and explanations: a series' length says
    # when a device joined or stopped reporting, not how it behaves
    exclude_features: list[str] = Field(default_factory=lambda: ["count"])


def fingerprint_config(p: FleetParams) -> FingerprintConfig:
    """The fingerprint settings of ``params.fingerprint``."""
    return FingerprintConfig(**p.fingerprint.model_dump())


def analysed_features(fingerprints: pl.DataFrame, p: FleetParams) -> pl.DataFrame:
    """The fingerprint columns the population analyses use (``exclude_features`` left out)."""
    drop = [
        c for c in fingerprints.columns if "__" in c and c.split("__", 1)[1] in p.exclude_features
    ]
    return fingerprints.drop(drop)
