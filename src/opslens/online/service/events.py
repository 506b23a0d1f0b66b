"""Live events and "this user, these items, now" for the service (propensity analyses).

``POST /events/{analysis}`` takes one event (the body is the event) or a batch
(``{"events": [...]}``): each valid event goes into the analysis's online feature state;
each refused one (unknown type, later than the lateness allows, malformed) is named with
its position and reason, and the others are kept. ``POST /score/{analysis}`` takes
``{"user": ..., "items": [...], "at": ...}`` (``at`` optional: now) and answers the
items ranked by purchase probability, with the features that drove each.

A predictor offers this through ``online_scorer(analysis, raw, item_table)`` (the
propensity model does); the state of an analysis is built once, from the analysis's own
events (its source as a run reads it), on first use: a warm start. A newly promoted
model answers from the same state. One lock per analysis: an update never interleaves
with a read.

Example:
    >>> states = EventStates(lambda analysis, predictor: None)
    >>> states.lock("shop") is states.lock("shop")
    True
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from opslens.config import ProjectConfig
from opslens.errors import InstanceError, OpslensError

__all__ = ["EventStates", "ingest_body", "project_states", "score_body"]

MAX_EVENTS = 10_000  # events per request


def _empty(analysis: str, predictor: Any) -> Any:
    return predictor.online_scorer()


class EventStates:
    """The online scorer of each analysis that takes events, made on first use by ``make``
    (``(analysis, predictor) -> scorer``; default: an empty state)."""

    def __init__(self, make: Callable[[str, Any], Any] = _empty, log: Any = None) -> None:
        self.make = make
        #: a shared event log (:class:`~.event_log.RedisEventLog`), or None: in process only
        self.log = log
        self._seen: dict[str, str] = {}  # per analysis, the last log entry applied
        self._scorers: dict[str, Any] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def lock(self, analysis: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(analysis, threading.Lock())

    def get(self, analysis: str, predictor: Any) -> Any:
        """The scorer of ``analysis`` answering with ``predictor`` (InstanceError if the
        analysis's model takes no events); the state is kept across model versions."""
        if not callable(getattr(predictor, "online_scorer", None)):
            raise InstanceError(
                f"analysis '{analysis}' ({getattr(predictor, 'recipe', '?')}) takes no events",
                fix="send events to a propensity analysis; others answer POST /predict/{analysis}",
            )
        with self.lock(analysis):
            scorer = self._scorers.get(analysis)
            if scorer is None:
                scorer = self._scorers[analysis] = self.make(analysis, predictor)
            elif scorer.predictor is not predictor:
                scorer = self._scorers[analysis] = scorer.with_predictor(predictor)
            return scorer

    def sync(self, analysis: str, scorer: Any) -> None:
        """Apply the shared log's events not applied yet, in the log's order (hold the
        analysis's lock); an event the state refuses there is skipped by every worker alike."""
        if self.log is None:
            return
        events, last = self.log.read(analysis, self._seen.get(analysis, "0"))
        for event in events:
            try:
                scorer.state.add(*event)
            except InstanceError:
                continue
        self._seen[analysis] = last


def project_states(project: ProjectConfig) -> EventStates:
    """Scorers warm-started from each analysis's events (its source, as a run reads it)."""
    from opslens.online.warm import warm_scorer

    return EventStates(lambda analysis, predictor: warm_scorer(project, analysis, predictor))


def ingest_body(states: EventStates, analysis: str, predictor: Any, payload: Any) -> dict[str, Any]:
    """Ingest one event or ``{"events": [...]}``: how many were accepted, and each refused
    one's position and reason (InstanceError for a malformed body or a refused single event)."""
    scorer = states.get(analysis, predictor)
    single = isinstance(payload, dict) and "events" not in payload
    events = [payload] if single else payload.get("events") if isinstance(payload, dict) else None
    if not isinstance(events, list):
        raise InstanceError(
            'the body must be one event or {"events": [...]}',
            fix="send {user_id, item_id, event_type, timestamp} or a list of them under events",
        )
    if len(events) > MAX_EVENTS:
        raise InstanceError(
            f"{len(events)} events in one request, more than {MAX_EVENTS}",
            fix=f"send at most {MAX_EVENTS} events per request",
        )
    with states.lock(analysis):
        if single and states.log is None:
            scorer.state.check(payload)  # its own error (a late event: a conflict, 409)
        if states.log is None:
            refused = scorer.ingest_many(events)
        else:  # checked here, applied from the shared log in its order (by every worker)
            states.sync(analysis, scorer)
            refused, valid = [], []
            for i, event in enumerate(events):
                try:
                    valid.append(scorer.state.check(event))
                except InstanceError as e:
                    if single:
                        raise
                    refused.append((i, str(e)))
            states.log.append(analysis, valid)
            states.sync(analysis, scorer)
    if single and refused:
        message, _, fix = refused[0][1].partition("; fix: ")
        raise InstanceError(message, fix=fix or None)
    return {
        "accepted": len(events) - len(refused),
        "refused": [{"index": i, "reason": r} for i, r in refused],
        "events_in_state": scorer.state.events,
    }


def score_body(states: EventStates, analysis: str, predictor: Any, payload: Any) -> dict[str, Any]:
    """``{"user": ..., "items": [...], "at": ...}`` → the items ranked by probability."""
    scorer = states.get(analysis, predictor)
    if not isinstance(payload, dict):
        raise InstanceError(
            "the body must be an object", fix='send {"user": "u1", "items": ["i1", "i2"]}'
        )
    for key in ("user", "items"):
        if payload.get(key) is None:
            raise FieldError(key, f"the request has no {key}")
    if _id(payload["user"]) is None:
        raise FieldError("user", "user must be a user id (text)")
    items = payload["items"]
    if not isinstance(items, list) or any(_id(i) is None for i in items):
        raise FieldError("items", "items must be a list of item ids")
    items = [_id(i) for i in items]
    with states.lock(analysis):
        states.sync(analysis, scorer)
        try:
            user = str(_id(payload["user"]))
            answer: dict[str, Any] = scorer.predict(user, items, payload.get("at"))
        except OpslensError as e:
            if getattr(e, "conflict", False):
                raise
            raise FieldError("at" if str(e).startswith("at ") else "items", str(e)) from None
    return answer


def _id(value: Any) -> str | int | None:
    """A user or item id: text, or a whole number (``7`` and ``7.0`` alike); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value if isinstance(value, str | int) else None


_FIXES = {
    "user": 'send "user": "<user id>"',
    "items": 'send "items": ["<item id>", ...]',
    "at": 'send "at" as an ISO 8601 time no earlier than the newest event minus the lateness, '
    "or leave it out (now)",
}


class FieldError(InstanceError):
    """A bad field of a request body, with its name (for the 422's ``loc``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message.split("; fix:")[0], fix=_FIXES[field])
        self.field = field
