"""The facts a propensity run states (facts.json), one section per stage.

Example:
    >>> PropensityFacts.model_validate({"analysis": {"name": "p", "recipe": "propensity", "run_id": "r"},
    ...     "sessionize": {"gap_minutes": 30.0, "sessions": 3, "events_per_session": 2.0,
    ...     "median_session_minutes": 4.0, "sessions_with_purchase": 1, "single_event_sessions": 0}}).sessionize.sessions
    3
"""

from __future__ import annotations

from typing import Any

from pydantic import create_model

from opslens.core.facts import FactsModel, RecipeFacts

__all__ = ["PropensityFacts"]


class DataGenFacts(FactsModel):
    """The events read or generated, and the funnel."""

    events: int
    users: int
    items: int
    start: str
    end: str
    event_counts: dict[str, int]
    users_reaching: dict[str, int]
    purchase_share: float
    view_to_cart: float
    cart_to_purchase: float
    unknown_event_types: dict[str, int]
    personas: dict[str, int]
    categories: int


class SessionizeFacts(FactsModel):
    """Sessions found with the inactivity gap."""

    gap_minutes: float
    sessions: int
    events_per_session: float
    median_session_minutes: float
    sessions_with_purchase: int
    single_event_sessions: int


class SplitFacts(FactsModel):
    """The temporal split and its boundary rule."""

    rule: str
    splits: list[dict[str, Any]]
    sessions_cut: int


class FeaturesFacts(FactsModel):
    """Prediction rows, features and labels per split."""

    features: list[str]
    n_features: int
    horizon_days: float
    lookback_days: float
    every_hours: float
    rows: dict[str, int]
    positives: dict[str, int]
    base_rate: dict[str, float]


class TrainFacts(FactsModel):
    """Both models on validation and test, the chosen one, what it relies on."""

    chosen: str
    chosen_by: str
    train_rows: int
    train_positives: int
    fit_rows: int
    scale_pos_weight: float
    results: dict[str, dict[str, dict[str, Any]]]
    top_features: list[list[Any]]
    logistic_top_features: list[list[Any]]
    calibration: list[dict[str, float]]
    top_k: list[int]


PropensityFacts: type[RecipeFacts] = create_model(  # a stage is called data-gen: not an identifier
    "PropensityFacts",
    __base__=RecipeFacts,
    __doc__="Every section a propensity run may hold.",
    **{  # type: ignore[call-overload]
        "data-gen": (DataGenFacts | None, None),
        "sessionize": (SessionizeFacts | None, None),
        "split": (SplitFacts | None, None),
        "features": (FeaturesFacts | None, None),
        "train": (TrainFacts | None, None),
    },
)
