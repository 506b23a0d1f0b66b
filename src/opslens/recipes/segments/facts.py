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
    "ChoiceFacts",
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


class ChoiceFacts(FactsModel):
    """What answers one segment's rows for one target, and the out-of-fold figures behind it
    (None: not compared — a forced ``model_choice.mode`` — or too few noise rows)."""

    choice: str
    """``global``, ``segment`` (its own model) or ``blend`` (global + a correction)."""
    noise_choice: str
    """What answers the segment's noise rows (placed by the kNN fallback)."""
    rows: int
    noise_rows: int
    rmse_global: float | None
    rmse_segment: float | None
    rmse_blend: float | None
    p_value: float | None
    """One-sided paired t-test of the chosen alternative's squared errors against the global's."""
    noise_rmse_global: float | None
    noise_rmse_segment: float | None
    noise_rmse_blend: float | None


class TargetFacts(FactsModel):
    """One target on the held-out rows: the per-segment models (as served, with their fallback)
    and their global fallback model, per segment, and gain importance per model."""

    segment: RegressionFacts
    global_: RegressionFacts = Field(alias="global")
    per_segment: dict[str, SegmentTargetFacts]
    feature_importance: dict[str, dict[str, float]]
    choices: dict[str, ChoiceFacts] = Field(default_factory=dict)
    """Per segment large enough: what answers its rows (out-of-fold comparison)."""


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
    model_choice: dict[str, str | float] = Field(default_factory=dict)
    """``params.model_choice``: mode, folds, min_gain."""
    targets: dict[str, TargetFacts]
    """Per target (series target first, then the resource target)."""


class ScoreFacts(FactsModel):
    """A scored batch: rows in, scored, rejected and why; noise ratio and segment shares."""

    rows_in: int
    rows_scored: int
    rows_rejected: int
    rejected_by_reason: dict[str, int]
    noise_ratio: float
    noise_in_range: float = 0.0
    """Share of scored rows inside the training range but in no segment (placed by the kNN)."""
    noise_out_of_range: float = 0.0
    """Share of scored rows placed by the kNN with a segmenting feature outside its range."""
    global_share: float
    segment_shares: dict[str, float]
    out_of_range: dict[str, dict[str, float]] = Field(default_factory=dict)
    """Per input outside its training range: shares of rows below / above it (or ``new``
    categories) and in all (``share``)."""
    past_range: list[str] = Field(default_factory=list)
    """Segmenting features past their range in nearly every row (counters)."""


class SegmentsFacts(RecipeFacts):
    """Every section a segments run may hold."""

    prepare: PrepareFacts | None = None
    fit: FitFacts | None = None
    score: ScoreFacts | None = None
