"""The facts a distribution run states (facts.json), one section per stage.

Example:
    >>> DistributionFacts.model_validate({"analysis": {"name": "eta", "recipe": "distribution",
    ...     "run_id": "r"}, "choose_k": {"k": 3, "reason": "given", "curve": []}}).choose_k.k
    3
"""

from __future__ import annotations

from typing import Any

from opslens.core.facts import FactsModel, RecipeFacts

__all__ = ["DistributionFacts"]


class PrepareFacts(FactsModel):
    """Rows read and kept, columns found, combinations kept and dropped."""

    rows_read: int
    rows_without_target: int
    categorical: list[str]
    numeric_columns: list[str]
    target: str
    group: str | None
    combinations_total: int
    combinations_kept: int
    combinations_dropped: int
    rows_dropped_small: int
    share_rows_dropped_small: float
    rows_kept: int
    min_combination_size: int
    holdout_rows: int
    holdout: str
    holdout_from: str | None = None
    target_summary: dict[str, float | None]


class QuantizeFacts(FactsModel):
    """How the target was binned."""

    n_bins: int
    binning: str
    segments: list[str] | None
    histograms: int


class ChooseKFacts(FactsModel):
    """The K chosen and why; the curve scanned."""

    k: int
    reason: str
    curve: list[dict[str, float]]


class ClusterFacts(FactsModel):
    """The final clustering and a profile per cluster."""

    k: int
    clusters: list[dict[str, Any]]
    members: list[dict[str, Any]]
    inertia: float
    unit: str = ""
    outliers: int
    outlier_max: float | None


class EvaluateFacts(FactsModel):
    """The predicted distribution on the time-ordered holdout against two baselines."""

    test_rows: int
    test_rows_scored: int
    test_rows_unseen_combination: int
    strength: float
    strength_scan: list[dict[str, float | None]]
    blended: dict[str, float]
    own_histogram: dict[str, float]
    global_histogram: dict[str, float]
    coverages: list[int]


class ClassifyFacts(FactsModel):
    """Quality of the pattern classifier on combinations it has not seen (grouped split)."""

    n: int
    classes: list[int]
    accuracy: float | None
    auroc_weighted: float | None
    per_class: dict[str, dict[str, float]]
    confusion: list[list[int]]
    split: str
    train_combinations: int
    test_combinations: int
    train_rows: int
    test_rows: int
    features: list[str]
    holdout_scores: EvaluateFacts


class DistributionFacts(RecipeFacts):
    """Every section a distribution run may hold."""

    prepare: PrepareFacts | None = None
    quantize: QuantizeFacts | None = None
    choose_k: ChooseKFacts | None = None
    cluster: ClusterFacts | None = None
    classify: ClassifyFacts | None = None
