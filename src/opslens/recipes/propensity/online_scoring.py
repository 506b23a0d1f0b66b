"""Scoring "this user, these items, now" from live events: the propensity model on the
feature rows of the online state (:mod:`.online_state`).

:class:`OnlineScorer` holds the predictor and the state; :meth:`OnlineScorer.warm` builds
the state from an event log (the training events, or any) before the first request;
:meth:`OnlineScorer.predict` answers the items ranked by purchase probability, with the
features that drove each one and whether the user had no history (a cold start: the
answer then rests on the item's popularity, category, price and discount alone).

Example:
    >>> import numpy as np
    >>> from datetime import datetime
    >>> from sklearn.linear_model import LogisticRegression
    >>> from opslens.recipes.propensity.predictor import PropensityPredictor
    >>> clf = LogisticRegression().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1])
    >>> scorer = OnlineScorer(PropensityPredictor(clf, "logistic", ["pair_views"], [], horizon_hours=168.0),
    ...                       OnlineState())
    >>> for h in (1, 2, 3):
    ...     scorer.ingest({"user_id": "a", "item_id": "x", "event_type": "view", "timestamp": datetime(2024, 1, 1, h)})
    >>> answer = scorer.predict("a", ["y", "x"], datetime(2024, 1, 1, 4))
    >>> [r["item_id"] for r in answer["items"]], answer["cold_start"]
    (['x', 'y'], False)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from opslens.config import AnalysisConfig
from opslens.errors import InstanceError
from opslens.recipes.propensity.online_state import FeatureRows, OnlineState, as_micros
from opslens.recipes.propensity.params import PropensityParams
from opslens.recipes.propensity.predictor import PropensityPredictor
from opslens.recipes.propensity.prepare import canonical_events, event_columns
from opslens.recipes.propensity.prepare import item_table as item_table_of

__all__ = ["MAX_ITEMS", "OnlineScorer", "scorer_for"]

MAX_ITEMS = 1000  # items per request


class OnlineScorer:
    """The propensity model answering from the online feature state."""

    def __init__(self, predictor: PropensityPredictor, state: OnlineState) -> None:
        self.predictor = predictor
        self.state = state
        self.dropped_events = 0  # events of a warm start with no user, item or time

    @classmethod
    def warm(
        cls,
        predictor: PropensityPredictor,
        params: PropensityParams,
        events: pl.DataFrame,
        items: pl.DataFrame | None = None,
        **state_options: Any,
    ) -> OnlineScorer:
        """A scorer whose state already holds ``events`` (the training events or any log).

        Events with no user id are dropped and counted (``dropped_events``), never put
        together under one "user".
        """
        f = params.features
        state = OnlineState(
            items,
            windows=f.windows,
            gap=params.sessions.gap,
            recency_cap_hours=f.recency_cap_hours,
            **state_options,
        )
        scorer = cls(predictor, state)
        scorer.dropped_events = state.ingest_frame(events)
        return scorer

    def with_predictor(self, predictor: PropensityPredictor) -> OnlineScorer:
        """Another model (a newly promoted version) answering from the same state."""
        other = OnlineScorer(predictor, self.state)
        other.dropped_events = self.dropped_events
        return other

    def ingest(self, event: Mapping[str, Any]) -> None:
        """One event into the state (:class:`~.online_state.EventError` if refused)."""
        self.state.ingest(event)

    def ingest_many(self, events: Iterable[Mapping[str, Any]]) -> list[tuple[int, str]]:
        """Every valid event into the state; the position and reason of each one refused."""
        return self.state.ingest_many(events)

    def rows(self, user: str, items: Sequence[str], at: object = None) -> FeatureRows:
        """The feature rows of ``user`` and ``items`` at ``at`` (default: now, UTC)."""
        if not isinstance(items, Sequence) or isinstance(items, str) or not items:
            raise InstanceError(
                "items must be a non-empty list of item ids", fix='send "items": ["i1", "i2"]'
            )
        if len(items) > MAX_ITEMS:
            raise InstanceError(
                f"{len(items)} items in one request, more than {MAX_ITEMS}",
                fix=f"ask for at most {MAX_ITEMS} items at a time",
            )
        when = datetime.now(UTC) if at is None else at
        return self.state.features_at(str(user), [str(i) for i in items], as_micros(when, "at"))

    def predict(
        self, user: str, items: Sequence[str], at: object = None, *, explain: int = 3
    ) -> dict[str, Any]:
        """The items ranked by purchase probability within the horizon, each with the
        ``explain`` features that moved its score most (name, value, contribution)."""
        rows = self.rows(user, items, at)
        p = self.predictor
        X = p.matrix(rows.values, rows.columns, rows.categories)
        prob = p.probabilities(X)
        drivers: list[list[dict[str, Any]]] = [[] for _ in rows.items]
        if explain > 0:
            contrib = p.contributions(X)[:, : len(p.features)]
            at_col = {c: i for i, c in enumerate(rows.columns)}
            for r in range(len(rows.items)):
                top = np.argsort(-np.abs(contrib[r]), kind="stable")[:explain]
                drivers[r] = [
                    {
                        "feature": p.features[j],
                        "value": float(rows.values[r, at_col[p.features[j]]]),
                        "contribution": round(float(contrib[r, j]), 4),
                    }
                    for j in top
                ]
        order = np.argsort(-prob, kind="stable")
        answer: dict[str, Any] = {
            "user_id": rows.user,
            "at": _iso(rows.at),
            "cold_start": rows.cold_start,
            "model": p.kind,
            "horizon_hours": p.horizon_hours,
            "items": [
                {
                    "item_id": rows.items[i],
                    "probability": float(prob[i]),
                    "category": rows.categories[i],
                    "drivers": drivers[i],
                }
                for i in order
            ],
        }
        if rows.cold_start:
            answer["note"] = (
                "cold start: no events of this user before this time, so the probabilities "
                "rest on the items' popularity, category, price and discount alone"
            )
        if rows.unknown_items:
            answer["unknown_items"] = rows.unknown_items
        return answer


def _iso(t: int) -> str:
    return (datetime(1970, 1, 1) + timedelta(microseconds=t)).isoformat() + "Z"


def scorer_for(
    predictor: PropensityPredictor,
    analysis: AnalysisConfig,
    raw: pl.DataFrame,
    item_table: pl.DataFrame | None = None,
    **state_options: Any,
) -> OnlineScorer:
    """The scorer of a propensity analysis warm-started from its events (``raw``, the
    analysis's source as a run reads it): the same columns, event names, item table,
    windows, session gap and recency cap as training.

    """
    given = analysis.params
    p = (
        given
        if isinstance(given, PropensityParams)
        else PropensityParams.model_validate(given or {})
    )
    cols = event_columns(analysis)
    nulls = raw.filter(pl.col(cols.user).is_null()).height if cols.user in raw.columns else 0
    events, _ = canonical_events(raw, cols, p.event_names)
    items = item_table_of(
        events, raw, item_table, cols, p.items.id_column, p.items.path, p.items.columns
    )
    scorer = OnlineScorer.warm(predictor, p, events, items, **state_options)
    scorer.dropped_events += nulls
    return scorer
