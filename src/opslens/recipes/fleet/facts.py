"""The facts a fleet run states (facts.json), one section per stage.

Example:
    >>> FleetFacts.model_validate({"analysis": {"name": "f", "recipe": "fleet", "run_id": "r"},
    ...     "failures": {"configured": False}}).failures.configured
    False
"""

from __future__ import annotations

from typing import Any

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


class RareFacts(FactsModel):
    """The rare-device ranking."""

    methods: list[str]
    contamination: float
    n_rare: int
    dropped_features: list[str]
    top: list[dict[str, Any]]


class GroupsFacts(FactsModel):
    """Behaviour groups by method."""

    best_method: str
    k: int
    k_reason: str
    eps: float | None
    summary: list[dict[str, Any]]
    sizes: list[dict[str, Any]]
    n_noise: int = 0


class ExplainFacts(FactsModel):
    """What sets each group of each method apart (method → group → features), findings in words."""

    method: str
    group_features: dict[str, dict[str, list[list[Any]]]]
    findings: list[str]


class FailuresFacts(FactsModel):
    """Known failures against groups and the rare ranking; lead time."""

    configured: bool
    method: str | None = None
    n_failed: int | None = None
    min_failures: int | None = None
    enough_failures: bool | None = None
    unknown_ids: list[str] | None = None
    enrichment: list[dict[str, Any]] | None = None
    most_enriched: dict[str, Any] | None = None
    ranking: dict[str, Any] | None = None
    lead_time: dict[str, Any] | None = None
    findings: list[str] | None = None


class InspectFacts(FactsModel):
    """Profile, decomposition and point anomalies of the rarest devices."""

    devices: list[dict[str, Any]]
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
