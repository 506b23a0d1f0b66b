"""The facts a propensity run states (facts.json), one section per stage.

The ``data-gen`` section (a stage name, not an identifier) is read as ``facts.data_gen``.

Example:
    >>> f = PropensityFacts.model_validate({"analysis": {"name": "p", "recipe": "propensity", "run_id": "r"},
    ...     "sessionize": {"gap_minutes": 30.0, "sessions": 3, "events_per_session": 2.0,
    ...     "median_session_minutes": 4.0, "sessions_with_purchase": 1, "single_event_sessions": 0}})
    >>> f.sessionize.sessions, f.data_gen is None
    (3, True)
    >>> RankingFacts.model_validate({"rows": 4, "positives": 2, "base_rate": 0.5, "roc_auc": 0.75,
    ...     "pr_auc": 0.8, "brier": 0.2, "precision_at_2": 0.5, "recall_at_2": 0.5}).at(2)
    (0.5, 0.5)
"""

from __future__ import annotations

from pydantic import ConfigDict, create_model

from opslens.core.facts import FactsModel, RecipeFacts

__all__ = ["PropensityFacts", "PropensitySections", "RankingFacts"]


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


class SplitWindow(FactsModel):
    """One split's window and what falls in it."""

    split: str
    start: str
    end: str
    days: int
    events: int
    users: int
    purchases: int


class SplitFacts(FactsModel):
    """The temporal split and its boundary rule."""

    rule: str
    splits: list[SplitWindow]
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


class RankingFacts(FactsModel):
    """A model's ranking metrics on one split; ``precision_at_<k>`` and ``recall_at_<k>`` for
    each k of ``params.models.top_k`` (read with :meth:`at`)."""

    model_config = ConfigDict(extra="allow")

    rows: int
    positives: int
    base_rate: float
    roc_auc: float | None
    pr_auc: float | None
    brier: float | None

    def at(self, k: int) -> tuple[float | None, float | None]:
        """Precision and recall among the ``k`` highest scores."""
        extra = self.model_extra or {}
        p, r = f"precision_at_{k}", f"recall_at_{k}"
        return (extra[p] if p in extra else None), (extra[r] if r in extra else None)


class SplitResults(FactsModel):
    """A model's metrics on validation and on test."""

    val: RankingFacts
    test: RankingFacts


class BestRuleFacts(FactsModel):
    """The best single-feature rule (a baseline): chosen by AUROC on the fitted train rows."""

    feature: str
    direction: str
    train_auroc: float


class TrainFacts(FactsModel):
    """Both models on validation and test, the chosen one, what it relies on."""

    chosen: str
    chosen_by: str
    train_rows: int
    train_positives: int
    #: the train rows brought to the fitting (all up to params.models.max_train_rows)
    sample_rows: int | None = None
    #: how many negatives of the train split each negative of that sample stands for (1: none
    #: was left out)
    negative_weight: float = 1.0
    fit_rows: int
    scale_pos_weight: float
    results: dict[str, SplitResults]
    top_features: list[tuple[str, float]]
    logistic_top_features: list[tuple[str, float]]
    calibration: list[dict[str, float]]
    top_k: list[int]
    best_rule: BestRuleFacts | None = None


class PropensitySections(RecipeFacts):
    """Every section a propensity run may hold, typed; ``data-gen`` is :attr:`data_gen`."""

    sessionize: SessionizeFacts | None = None
    split: SplitFacts | None = None
    features: FeaturesFacts | None = None
    train: TrainFacts | None = None

    @property
    def data_gen(self) -> DataGenFacts | None:
        """The ``data-gen`` section (a stage name that is not an identifier)."""
        section: DataGenFacts | None = getattr(self, "data-gen", None)
        return section


PropensityFacts: type[PropensitySections] = create_model(  # "data-gen": not an identifier
    "PropensityFacts",
    __base__=PropensitySections,
    __doc__="Every section a propensity run may hold.",
    **{"data-gen": (DataGenFacts | None, None)},  # type: ignore[call-overload]
)
