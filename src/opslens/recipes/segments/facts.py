"""The facts a segments run states (facts.json), one section per stage.

Example:
    >>> SegmentsFacts.model_validate({"analysis": {"name": "p", "recipe": "segments",
    ...     "run_id": "r"}, "prepare": {"rows_read": 10, "rows_kept": 9, "rows_dropped": 1,
    ...     "train_rows": 7, "test_rows": 2, "features": ["a"], "categorical": [],
    ...     "model_features": [], "series_target": "y", "resource_target": "r"}}).prepare.rows_kept
    9
"""

from __future__ import annotations

from pydantic import Field

from opslens.core.facts import FactsModel, RecipeFacts

__all__ = [
    "FitFacts",
    "PrepareFacts",
    "RegressionFacts",
    "ScoreFacts",
    "SegmentTargetFacts",
    "SegmentsFacts",
    "TargetFacts",
]


class PrepareFacts(FactsModel):
    """Rows read, kept and split; the columns in each role."""

    rows_read: int
    rows_kept: int
    rows_dropped: int
    train_rows: int
    test_rows: int
    features: list[str]
    categorical: list[str]
    model_features: list[str]
    series_target: str
    resource_target: str


class RegressionFacts(FactsModel):
    """Held-out RMSE, MAE and R² of one model on some rows (None: not defined, e.g. R² of one row)."""

    rmse: float | None
    mae: float | None
    r2: float | None
    n: float


class SegmentTargetFacts(FactsModel):
    """One segment's held-out rows: its own model and the global fallback model."""

    segment: RegressionFacts
    global_: RegressionFacts = Field(alias="global")


class TargetFacts(FactsModel):
    """One target on the held-out rows: the per-segment models (as served, with their fallback)
    and their global fallback model, per segment, and gain importance per model."""

    segment: RegressionFacts
    global_: RegressionFacts = Field(alias="global")
    per_segment: dict[str, SegmentTargetFacts]
    feature_importance: dict[str, dict[str, float]]


class FitFacts(FactsModel):
    """Segments found, how noise was assigned, and both targets' held-out quality."""

    segments: int
    training_rows: int
    noise_points: int
    noise_ratio: float
    segment_sizes: dict[str, int]
    min_segment_rows: int
    segments_on_global: list[int]
    hdbscan: dict[str, float]
    targets: dict[str, TargetFacts]
    """Per target (series target first, then the resource target)."""


class ScoreFacts(FactsModel):
    """A scored batch: rows in, scored, rejected and why; noise ratio and segment shares."""

    rows_in: int
    rows_scored: int
    rows_rejected: int
    rejected_by_reason: dict[str, int]
    noise_ratio: float
    global_share: float
    segment_shares: dict[str, float]


class SegmentsFacts(RecipeFacts):
    """Every section a segments run may hold."""

    prepare: PrepareFacts | None = None
    fit: FitFacts | None = None
    score: ScoreFacts | None = None
