"""The facts a residual run states (facts.json), one section per stage.

Example:
    >>> ResidualFacts.model_validate({"analysis": {"name": "axes", "recipe": "residual",
    ...     "run_id": "r"}}).profile is None
    True
"""

from __future__ import annotations

from typing import Any

from opslens.core.facts import FactsModel, RecipeFacts

__all__ = ["ResidualFacts"]


class ProfileFacts(FactsModel):
    """Rows, axes, time range and the median sampling interval."""

    rows: int
    axes: list[str]
    renamed: dict[str, str]
    start: str
    end: str
    dt_seconds: float
    per_axis: dict[str, dict[str, int]]


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


class FitFacts(FactsModel):
    """Per axis: the family requested and used, why, and the fitted line."""

    axes: dict[str, dict[str, Any]]


class EvaluateFacts(FactsModel):
    """R², MAE, RMSE per axis and split, with the training-mean baseline's RMSE."""

    metrics: list[dict[str, Any]]


class ThresholdsFacts(FactsModel):
    """The thresholds entry of every axis and the levels on the held-out rows."""

    axes: dict[str, dict[str, Any]]
    holdout: dict[str, dict[str, int]]


class ResidualFacts(RecipeFacts):
    """Every section a residual run may hold."""

    profile: ProfileFacts | None = None
    prepare: PrepareFacts | None = None
    fit: FitFacts | None = None
    evaluate: EvaluateFacts | None = None
    thresholds: ThresholdsFacts | None = None
