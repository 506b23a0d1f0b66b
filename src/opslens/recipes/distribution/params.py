"""Parameters of the distribution recipe (``params:`` of an analysis with ``recipe: distribution``).

Example:
    >>> DistributionParams().n_bins, DistributionParams.model_validate({"k_max": 5}).k_max
    (20, 5)
    >>> DistributionParams.model_validate({"support": [0, None]}).support
    (0.0, None)
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from opslens.config.base import Strict
from opslens.config.urls import DatabaseUrl

__all__ = ["DistributionParams", "XGBoostParams"]


class XGBoostParams(Strict):
    """XGBoost settings of the pattern classifier."""

    n_estimators: int = Field(default=200, ge=1)
    max_depth: int = Field(default=4, ge=1)
    learning_rate: float = Field(default=0.1, ge=1e-6, le=1)


class DistributionMonitor(Strict):
    """Monitoring and retraining thresholds (``params.lifecycle``)."""

    max_drop: float = Field(default=0.5, gt=0)
    """Retrain when a batch's mean log score is this far (nats) below the champion's first batch."""
    window_rows: int = Field(default=2000, ge=100)
    """Most recent rows (training source, then labelled batches) a retraining fits on."""
    holdout_share: float = Field(default=1 / 3, gt=0, lt=1)
    """Share of the newest batch held out to compare challenger and champion."""
    history_url: DatabaseUrl | None = None
    """SQLAlchemy URL of the monitoring history (None: ``lifecycle-history.db`` beside the runs)."""


class DistributionParams(Strict):
    """Knobs of the distribution recipe; every one has a default."""

    min_combination_size: int = Field(default=30, ge=1)
    n_bins: int = Field(default=20, ge=2, le=200)
    binning: Literal["quantile", "width"] = "quantile"
    clip: tuple[float, float] = (0.005, 0.995)
    n_clusters: int | None = Field(default=None, ge=2)
    k_min: int = Field(default=2, ge=2)
    k_max: int = Field(default=8, ge=2)
    hdr_coverages: tuple[float, float] = (0.5, 0.9)
    test_size: float = Field(default=0.25, gt=0, lt=1)
    support: tuple[float | None, float | None] = (None, None)
    unit: str = ""
    max_rows: int = Field(default=2_000_000, ge=1_000)
    """At most this many kept rows are brought into memory for what needs rows (bin edges,
    pattern profiles, the classifier, the scores): beyond it a seeded uniform sample of about
    this size. The histograms count every row, on the engine (Spark: on the executors)."""
    xgboost: XGBoostParams = Field(default_factory=XGBoostParams)
    lifecycle: DistributionMonitor = Field(default_factory=DistributionMonitor)

    @field_validator("hdr_coverages")
    @classmethod
    def _coverages(cls, value: tuple[float, float]) -> tuple[float, float]:
        bad = [c for c in value if not 0.0 < c < 1.0]
        if bad:
            raise ValueError(
                f"{list(value)}: each coverage must be a share in (0, 1), e.g. [0.5, 0.9]; "
                f"{bad[0]} is not"
            )
        if value[0] >= value[1]:
            raise ValueError(f"{list(value)} must be two increasing shares, e.g. [0.5, 0.9]")
        return value

    @model_validator(mode="after")
    def _k_range(self) -> DistributionParams:
        if self.k_max < self.k_min:
            raise ValueError(f"k_max ({self.k_max}) must be >= k_min ({self.k_min})")
        lo, hi = self.support
        if lo is not None and hi is not None and lo >= hi:
            raise ValueError(f"support [{lo}, {hi}] must have its lower bound below the upper")
        return self
