"""The facts a fleet run states (facts.json), one section per stage.

Example:
    >>> FleetFacts.model_validate({"analysis": {"name": "f", "recipe": "fleet", "run_id": "r"},
    ...     "failures": {"configured": False}}).failures.configured
    False
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

from opslens.core.facts import FactsModel, RecipeFacts

__all__ = ["FleetFacts"]


class PrepareFacts(FactsModel):
    """Devices and readings kept, the data policies applied."""

    entity: str
    time: str
    metrics: list[str]
    rows_read: int
    devices: int
    readings: int
    start: str | None
    end: str | None
    median_interval_seconds: float | None
    missing_share: dict[str, float]
    duplicates_merged: int | None = None
    duplicates_policy: str | None = None
    devices_sorted: int | None = None
    devices_dropped_short: list[str] | None = None


class FingerprintFacts(FactsModel):
    """How many devices and features were fingerprinted."""

    devices: int
    features: int
    features_per_metric: int
    window: int | None = None
    lags: list[int] | None = None


class TopDevice(FactsModel):
    """One of the rarest devices; its id sits under the device column's name (``columns.entity``)."""

    model_config = ConfigDict(extra="allow")

    rank: int
    combined: float
    is_rare: bool | None = None
    deviating_features: str | None = None

    def device(self, entity: str) -> str:
        """The device id (stored under the name of the device column)."""
        return str((self.model_extra or {})[entity])


class RareFacts(FactsModel):
    """The rare-device ranking."""

    methods: list[str]
    contamination: float
    n_rare: int
    dropped_features: list[str]
    top: list[TopDevice]


class MethodSummary(FactsModel):
    """How one grouping method split the fleet."""

    method: str
    n_groups: int
    n_noise: int
    silhouette: float | None = None


class GroupSize(FactsModel):
    """Devices in one group of the best method."""

    group: int
    len: int


class GroupsFacts(FactsModel):
    """Behaviour groups by method."""

    best_method: str
    k: int
    k_reason: str
    eps: float | None
    summary: list[MethodSummary]
    sizes: list[GroupSize]
    n_noise: int = 0


class ExplainFacts(FactsModel):
    """What sets each group of each method apart (method → group → [feature, SMD, q]),
    findings in words. Runs of opslens 0.1.0 stored only ``method``'s groups
    (group → rows)."""

    method: str
    group_features: dict[str, dict[str, list[list[Any]]] | list[list[Any]]]
    findings: list[str]

    def features_of(self, method: str) -> dict[str, list[list[Any]]]:
        """Group → its top [feature, SMD, q] rows under ``method`` (empty when not contrasted).

        Example:
            >>> old = ExplainFacts(method="kmeans", group_features={"0": [["a", 1.0, 0.01]]},
            ...     findings=[])
            >>> old.features_of("kmeans"), old.features_of("dbscan")
            ({'0': [['a', 1.0, 0.01]]}, {})
        """
        by_method = {k: v for k, v in self.group_features.items() if isinstance(v, dict)}
        if len(by_method) < len(self.group_features):  # 0.1.0: one method's groups
            flat = {k: v for k, v in self.group_features.items() if isinstance(v, list)}
            return flat if method == self.method else {}
        return by_method[method] if method in by_method else {}


class Enrichment(FactsModel):
    """Known failures in one group of one method (one-sided Fisher test, BH q)."""

    method: str
    group: int
    n_devices: int
    n_failed: int
    failure_rate: float | None = None
    lift: float | None = None
    odds_ratio: float | None = None
    p_value: float | None = None
    enriched: bool
    q_value: float | None = None


class Ranking(FactsModel):
    """How well the rare-device score ranks the known failures."""

    auroc: float | None = None
    auroc_p: float | None = None
    permutations: int
    base_rate: float | None = None
    precision_at: dict[str, float | None]
    recall_at: dict[str, float | None]
    useful: bool
    verdict: str


class WarningFigures(FactsModel):
    """A warning rule's figures: failures warned within the horizon, healthy units warned."""

    n_failed: int
    n_detected: int
    median_lead_days: float | None = None
    n_healthy: int
    healthy_warned: int
    healthy_warned_share: float | None = None
    healthy_ever_raised: int
    p_value: float | None = None


class WarningComparison(FactsModel):
    """The warning rule minus the baseline rule, device by device: difference, 95% paired
    bootstrap interval and sign-flip permutation p of the healthy devices warned (in devices)
    and of the failed devices' lead (days, an unwarned failure counting 0)."""

    healthy_warned_diff: int | None = None
    healthy_warned_interval: tuple[float, float] | None = None
    healthy_warned_p: float | None = None
    lead_days_diff: float | None = None
    lead_days_interval: tuple[float, float] | None = None
    lead_days_p: float | None = None


class SensorFault(FactsModel):
    """One faulty sensor; the device id sits under the device column's name."""

    model_config = ConfigDict(extra="allow")
    metric: str
    kind: str
    since: str
    detail: str


class RiskDevice(FactsModel):
    """One of the riskiest devices and why, in the metric's words."""

    device: str
    rank: int
    risk: float | None = None
    explanation: str


class HealthFacts(FactsModel):
    """Sensor faults (apart), the failure-risk ranking and how its weights were set."""

    peer_group: str | None = None
    peer_groups: int
    lonely_devices: list[str]
    days: int
    n_sensor_faults: int
    faulty_devices: int
    fault_kinds: dict[str, int]
    sensor_faults: list[SensorFault]
    sensor_faults_in_risk: bool
    weights: dict[str, float]
    weights_from: str
    component_auroc: dict[str, float] | None = None
    equal_weights_auroc: float | None = None
    equal_weights_precision_at_10: float | None = None
    #: learned weights: each fold's, which set the risk of that fold's devices (out of fold)
    fold_weights: list[dict[str, float]] | None = None
    top: list[RiskDevice]
    warning: dict[str, Any] | None = None
    #: maintenance events: count, count per kind, devices whose baseline a reset moved
    events: dict[str, Any] | None = None


class LeadTime(FactsModel):
    """Failed devices seen in the top k before failing, against healthy devices' chance rate."""

    n_failed: int
    n_detected: int
    share_detected: float | None = None
    median_lead_time: str | None = None
    mean_false_alarms: float | None = None
    top_k: int | None = None
    n_healthy: int
    healthy_detected: int
    healthy_share_detected: float | None = None
    healthy_median_lead_time: str | None = None
    p_value: float | None = None
    beats_chance: bool | None = None
    sentence: str | None = None
    #: the warning rule (runs since the change scores): its median lead in days, healthy
    #: units that raised it on any day, the per-device baseline rule's figures, the verdict
    rule: str | None = None
    median_lead_days: float | None = None
    horizon_days: int | None = None
    healthy_ever_raised: int | None = None
    baseline: WarningFigures | None = None
    beats_baseline: bool | None = None
    comparison: WarningComparison | None = None


class FailuresFacts(FactsModel):
    """Known failures against groups and the rare ranking; lead time."""

    configured: bool
    method: str | None = None
    n_failed: int | None = None
    min_failures: int | None = None
    enough_failures: bool | None = None
    unknown_ids: list[str] | None = None
    enrichment: list[Enrichment] | None = None
    most_enriched: Enrichment | None = None
    ranking: Ranking | None = None
    lead_time: LeadTime | None = None
    findings: list[str] | None = None
    #: why the baselines were not scored (no known failures among the devices), else None
    baselines_unscored: str | None = None


class Profile(FactsModel):
    """A series' profile (:class:`opslens.features.profile.SeriesProfile`); NaN reads as None."""

    column: str
    n_rows: int
    count: int
    missing: int
    missing_share: float | None = None
    n_gaps: int
    largest_gap_seconds: float | None = None
    largest_gap: str | None = None
    interval_seconds: float | None = None
    interval: str | None = None
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None
    p5: float | None = None
    p25: float | None = None
    p50: float | None = None
    p75: float | None = None
    p95: float | None = None
    skewness: float | None = None
    kurtosis: float | None = None
    adf_statistic: float | None = None
    adf_pvalue: float | None = None
    adf_lags: int | None = None
    adf_reading: str = ""


class Decomposition(FactsModel):
    """The STL decomposition of an inspected series, or why it was skipped."""

    period: int | None = None
    period_source: str | None = None
    trend_strength: float | None = None
    seasonal_strength: float | None = None
    skipped: str | None = None
    fix: str | None = None


class InspectedDevice(FactsModel):
    """One inspected series: its profile, flagged points and decomposition."""

    device: str
    metric: str
    unit: str | None = None
    failure_time: str | None = None
    #: the device's maintenance and error events drawn on its plots: time and kind
    events: list[dict[str, str]] = Field(default_factory=list)
    profile: Profile
    point_anomalies: dict[str, int]
    decomposition: Decomposition = Decomposition()


class InspectFacts(FactsModel):
    """Profile, decomposition and point anomalies of the rarest devices."""

    devices: list[InspectedDevice]
    period: int | None = None
    decompositions_skipped: int = 0


class FleetFacts(RecipeFacts):
    """Every section a fleet run may hold."""

    prepare: PrepareFacts | None = None
    fingerprint: FingerprintFacts | None = None
    rare: RareFacts | None = None
    groups: GroupsFacts | None = None
    explain: ExplainFacts | None = None
    failures: FailuresFacts | None = None
    inspect: InspectFacts | None = None
    health: HealthFacts | None = None
