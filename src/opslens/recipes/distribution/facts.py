"""The facts a distribution run states (facts.json), one typed section per stage.

The narrative reads these sections by attribute; keys named after a configured HDR
coverage (``coverage_90``, ``hdr_90``, ...) are the only free keys, checked by pattern
and read through :meth:`ScoreFacts.coverage` and :meth:`ClusterProfileFacts.hdr`.

Example:
    >>> DistributionFacts.model_validate({"analysis": {"name": "eta", "recipe": "distribution",
    ...     "run_id": "r"}, "choose_k": {"k": 3, "reason": "given", "curve": []}}).choose_k.k
    3
    >>> ScoreFacts.model_validate({"log_score": -2.0, "log_score_se": 0.1, "crps": 1.5,
    ...     "coverage_90": 0.88}).coverage(90)
    0.88
"""

from __future__ import annotations

import re

from pydantic import ConfigDict, Field, model_validator

from opslens.core.facts import FactsModel, RecipeFacts

__all__ = [
    "ChooseKFacts",
    "ClusterProfileFacts",
    "DistributionFacts",
    "EvaluateFacts",
    "ScoreFacts",
]


def _check_extra(model: FactsModel, pattern: str, kinds: tuple[type, ...]) -> None:
    """ValueError for a free key not matching ``pattern`` or holding a value of another type."""
    for key, value in (model.model_extra or {}).items():
        if not re.fullmatch(pattern, key):
            raise ValueError(f"unexpected key '{key}'")
        if value is not None and not isinstance(value, kinds):
            raise ValueError(f"'{key}' should be {' or '.join(k.__name__ for k in kinds)}")


class TargetSummary(FactsModel):
    """Mean, median and range of the target (rows with a value)."""

    mean: float | None
    median: float | None
    min: float | None
    max: float | None


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
    rows_held: int | None = None
    """The kept rows held in memory for what needs rows: all of them up to params.max_rows,
    else a seeded uniform sample (the histograms count every kept row)."""
    min_combination_size: int
    holdout_rows: int
    holdout: str
    holdout_from: str | None = None
    target_summary: TargetSummary


class QuantizeFacts(FactsModel):
    """How the target was binned."""

    n_bins: int
    binning: str
    segments: list[str] | None
    histograms: int


class KPoint(FactsModel):
    """One K scanned: its held-out log score and the second opinions."""

    k: float
    log_score: float
    log_score_se: float
    silhouette: float | None = None
    calinski_harabasz: float | None = None
    strength: float | None = None
    """The shrinkage strength the K was scored with (None: the pattern alone)."""


class ShapePair(FactsModel):
    """Two groups of combinations (finer clusters) that a cluster merges, tested for shape."""

    cluster: int
    sizes: list[int]
    distance: float
    p_value: float
    merged: bool = True
    """Whether the final clustering at this K merges the two groups too."""
    distinct: bool


class ShapeCheck(FactsModel):
    """One candidate K from the one-SE choice up: the merged pairs tested and how many differ."""

    k: int
    pairs: int
    distinct: int
    tests: list[ShapePair]


class ChooseKFacts(FactsModel):
    """The K chosen and why; the curve scanned and the shape checks of the candidates."""

    k: int
    reason: str
    curve: list[KPoint]
    k_one_se: int | None = None
    shape_alpha: float | None = None
    """Significance level of the shape test (Bonferroni-corrected over a K's pairs)."""
    shape_checks: list[ShapeCheck] = Field(default_factory=list)


class ClusterProfileFacts(FactsModel):
    """One pattern: its size, quantiles, shape, outliers and HDRs (``hdr_<coverage>`` keys)."""

    model_config = ConfigDict(extra="allow")

    cluster: int
    n_combinations: int | None
    n_rows: int
    share_rows: float
    p05: float
    p25: float
    p50: float
    p75: float
    p95: float
    mean: float
    median: float
    mode: float | None
    std: float
    skewness: float
    n_outliers: int
    outlier_max: float | None
    description: str

    @model_validator(mode="after")
    def _hdr_keys(self) -> ClusterProfileFacts:
        _check_extra(self, r"hdr_\d+|n_hdr_intervals_\d+|hdr_\d+_observed", (list, int, float))
        return self

    def hdr(self, coverage: int) -> list[list[float]] | None:
        """The ``coverage``% HDR as ``[lo, hi]`` ranges (None when not computed)."""
        value: list[list[float]] | None = (self.model_extra or {}).get(f"hdr_{coverage}")
        return value

    def hdr_observed(self, coverage: int) -> float | None:
        """The share of the pattern's rows inside its ``coverage``% HDR."""
        value = (self.model_extra or {}).get(f"hdr_{coverage}_observed")
        return None if value is None else float(value)


class MemberFacts(FactsModel):
    """A combination, the pattern it follows and its training rows."""

    combination: str
    cluster: int
    rows: int


class ClusterFacts(FactsModel):
    """The final clustering and a profile per cluster."""

    k: int
    clusters: list[ClusterProfileFacts]
    members: list[MemberFacts]
    inertia: float
    unit: str = ""
    outliers: int
    outlier_max: float | None


class ScoreFacts(FactsModel):
    """Held-out scores of one predicted distribution (``coverage_<c>`` keys per HDR coverage)."""

    model_config = ConfigDict(extra="allow")

    log_score: float
    log_score_se: float
    crps: float

    @model_validator(mode="after")
    def _coverage_keys(self) -> ScoreFacts:
        _check_extra(self, r"coverage_\d+", (int, float))
        return self

    def coverage(self, c: int) -> float | None:
        """The share of held-out values inside the predicted ``c``% HDR."""
        value = (self.model_extra or {}).get(f"coverage_{c}")
        return None if value is None else float(value)


class StrengthPoint(FactsModel):
    """One shrinkage strength scanned (None: the pattern alone) and its log score."""

    strength: float | None
    log_score: float


class OwnWeight(FactsModel):
    """The weight a combination of this size gives its own histogram (the rest: its pattern)."""

    which: str
    rows: int
    weight: float


class EvaluateFacts(FactsModel):
    """The predicted distribution on the holdout against two baselines.

    ``strength`` is None when the pattern alone was chosen (an infinite strength);
    the scores are None when there were no held-out rows (``skipped`` says why).
    """

    test_rows: int
    test_rows_scored: int
    test_rows_unseen_combination: int
    strength: float | None
    strength_chosen_on: str | None = None
    own_weights: list[OwnWeight] = Field(default_factory=list)
    strength_scan: list[StrengthPoint]
    blended: ScoreFacts | None
    own_histogram: ScoreFacts | None
    global_histogram: ScoreFacts | None
    coverages: list[int]
    skipped: str | None = None


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
    #: the life cycle's stages (recipes/distribution/lifecycle.py) state no facts today
    score_batch: FactsModel | None = None
    refit: FactsModel | None = None
