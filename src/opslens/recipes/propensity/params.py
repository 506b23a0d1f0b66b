"""Parameters of the propensity recipe (``params:`` of an analysis with ``recipe: propensity``).

Data sizes and the seed of generated data are the generator's options
(``source: {kind: synthetic, generator: clickstream, seed: 42, options: {num_users: ...}}``);
everything here applies to generated and to your own events alike.

Example:
    >>> p = PropensityParams()
    >>> p.sessions.gap, (p.split.train, p.split.val, p.split.test)
    (datetime.timedelta(seconds=1800), (0.7, 0.15, 0.15))
    >>> PropensityParams.model_validate({"split": {"train": 0.8}})
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for PropensityParams
    ...
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from opslens.config import Duration, Strict

__all__ = [
    "FeatureParams",
    "ModelParams",
    "PropensityParams",
    "SessionParams",
    "SplitParams",
    "TableParams",
]


class SessionParams(Strict):
    """Sessionization: a gap longer than ``gap`` starts a new session (equal stays in it)."""

    gap: Duration = timedelta(minutes=30)

    @model_validator(mode="after")
    def _positive(self) -> SessionParams:
        if self.gap <= timedelta(0):
            raise ValueError("gap must be a positive duration such as 30m")
        return self


class SplitParams(Strict):
    """Shares of the days (by date) for train, validation and test, in time order."""

    train: float = Field(default=0.70, gt=0, lt=1)
    val: float = Field(default=0.15, gt=0, lt=1)
    test: float = Field(default=0.15, gt=0, lt=1)

    @model_validator(mode="after")
    def _sum_one(self) -> SplitParams:
        if abs(self.train + self.val + self.test - 1) > 1e-9:
            raise ValueError("train + val + test must be 1 (e.g. 0.70, 0.15, 0.15)")
        return self


class FeatureParams(Strict):
    """Prediction times, candidate pairs, feature windows and the label horizon."""

    every: Duration = timedelta(days=1)  # prediction times: split start + k * every
    lookback: Duration = timedelta(days=14)  # a pair is scored if it had an event this recently
    windows: tuple[Duration, ...] = Field(
        default=(timedelta(days=1), timedelta(days=7), timedelta(days=30)), min_length=1
    )
    horizon: Duration = timedelta(days=7)  # label: a purchase in [t, t + horizon)
    recency_cap_hours: float = Field(default=24 * 90, gt=0)

    @model_validator(mode="after")
    def _positive(self) -> FeatureParams:
        for name in ("every", "lookback", "horizon"):
            if getattr(self, name) <= timedelta(0):
                raise ValueError(f"{name} must be a positive duration such as 1d or 12h")
        if any(w <= timedelta(0) for w in self.windows):
            raise ValueError("windows must be positive durations such as 1d, 7d, 30d")
        short = [w for w in self.windows if w < timedelta(hours=1)]
        if short:
            raise ValueError(
                f"windows must be at least an hour, but one is {short[0].total_seconds():g} "
                "seconds (a bare number is seconds): write each with its unit, e.g. 1d, 7d, 30d"
            )
        return self


class ModelParams(Strict):
    """The logistic baseline and XGBoost (with ``scale_pos_weight``) and how they are judged."""

    logistic_c: float = Field(default=1.0, ge=1e-8, le=1e8)
    n_estimators: int = Field(default=200, ge=1)
    max_depth: int = Field(default=3, ge=1, le=12)
    learning_rate: float = Field(default=0.08, ge=1e-6, le=1)
    min_child_weight: float = Field(default=10.0, ge=0)
    reg_lambda: float = Field(default=5.0, ge=0)
    # negatives/positives ("balanced"), its square root ("sqrt": ranks better here, less
    # over-weighting of a few hundred positives), or a number
    scale_pos_weight: Literal["balanced", "sqrt"] | float = "sqrt"
    # train on every positive and at most this many negatives per positive (seeded sample; None:
    # all). Validation and test are never sampled; probabilities rise with the sampling (see
    # the calibration curve), the ranking does not change much.
    max_negatives_per_positive: float | None = Field(default=50.0, gt=0)
    # the train rows that reach the model fitting at most (about): above it, every positive
    # and a seeded share of the negatives (by a hash of user, item and time) are taken, each
    # kept negative standing for 1/share of them (facts: train.negative_weight). On Spark
    # only this sample comes to the driver. Below it (the demo, most runs) nothing is dropped.
    max_train_rows: int = Field(default=2_000_000, ge=1_000)
    top_k: tuple[int, ...] = Field(default=(50, 200), min_length=1)
    calibration_bins: int = Field(default=10, ge=2, le=50)
    # resamples of the test users (seeded with random_state) for the 95% intervals of the
    # model's lead over each baseline
    bootstrap: int = Field(default=1000, ge=100, le=100_000)

    @field_validator("scale_pos_weight")
    @classmethod
    def _weight(cls, v: str | float) -> str | float:
        if not isinstance(v, str) and not 0 < v <= 1e6:
            raise ValueError(
                f"scale_pos_weight must be 'balanced', 'sqrt' or a number in (0, 1e6], not {v}"
            )
        return v

    @field_validator("top_k")
    @classmethod
    def _top_k(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if any(k < 1 for k in v):
            raise ValueError(f"top_k must list positive counts such as [50, 200], not {list(v)}")
        return v


class TableParams(Strict):
    """An optional CSV/Parquet table (items or users) whose ids must cover the events'.

    ``columns`` maps a role to the table's own column name where they differ (items:
    ``category``, ``price``, ``discount``, ``valid_from``; e.g. ``{category: categoryid}``).
    An item table with ``valid_from`` is a price history, read as of each prediction time.
    """

    path: Path | None = None
    id_column: str | None = None
    columns: dict[Literal["category", "price", "discount", "valid_from"], str] = Field(
        default_factory=dict
    )


class PropensityParams(Strict):
    """Knobs of the propensity recipe; every one has a default."""

    sessions: SessionParams = Field(default_factory=SessionParams)
    split: SplitParams = Field(default_factory=SplitParams)
    features: FeatureParams = Field(default_factory=FeatureParams)
    models: ModelParams = Field(default_factory=ModelParams)
    items: TableParams = Field(default_factory=TableParams)
    users: TableParams = Field(default_factory=TableParams)
    # your event names → view | add_to_cart | remove_from_cart | purchase (others are dropped)
    event_names: dict[str, Literal["view", "add_to_cart", "remove_from_cart", "purchase"]] = Field(
        default_factory=dict
    )
