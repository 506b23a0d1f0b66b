"""Propensity's online feature state: the point-in-time features of "this user, this item,
now", kept up to date one event at a time.

The same definition as the offline features (:mod:`.point_in_time`), evaluated the other
way round: instead of looking each row up in tables of every event, the state keeps, per
user, per (user, item), per (user, category) and per item, the sorted times of the
recent events and the count and last time of older ones. A feature at time ``at`` counts
the events strictly before ``at`` (``(at - w, at)`` for a window ``w``), so an event
exactly ``w`` before ``at`` is outside the window, as offline; sessions are cut by the
same rule (a gap greater than ``gap`` starts a new one, ties stay together; ``cuts``
force a new session at given times, as the offline split does at its boundaries).

Events may arrive late by up to ``lateness`` (later than the user's newest event minus
``lateness`` is accepted and put in its place; older is refused); times more than
``max(windows) + lateness`` before the newest event are folded into counts. A query at
``at`` must not be more than ``lateness`` before the newest event ingested.

Example:
    >>> from datetime import datetime
    >>> s = OnlineState()
    >>> s.ingest({"user_id": "a", "item_id": "x", "event_type": "view", "timestamp": "2024-01-01T10:00:00"})
    >>> rows = s.features("a", ["x"], datetime(2024, 1, 1, 12))
    >>> rows.column("pair_views")[0], rows.column("user_hours_since_view")[0], rows.cold_start
    (1.0, 2.0, False)
"""

from __future__ import annotations

import gc
from bisect import bisect_left, bisect_right, insort_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from opslens.errors import InstanceError
from opslens.recipes.propensity._past import HOUR_US, WINDOWS, micros
from opslens.recipes.propensity.point_in_time import EVENT_KINDS, feature_columns

__all__ = ["EventError", "FeatureRows", "LateError", "OnlineState", "as_micros"]

_EPOCH = datetime(1970, 1, 1)
_KIND_INDEX = {k: i for i, k in enumerate(EVENT_KINDS)}  # view, add_to_cart, remove, purchase
_VIEW, _CART, _REMOVE, _PURCHASE = range(4)


class EventError(InstanceError):
    """One event refused (unknown type, too late, malformed); the others are kept."""


class LateError(EventError):
    """An event or a question older than the state allows (the lateness): the state has moved
    past that time, so the service answers 409 (a conflict with its state, not a bad field)."""

    conflict = True


def as_micros(value: object, what: str = "timestamp") -> int:
    """Microseconds since 1970 (UTC) of a datetime, an ISO 8601 text or a number of seconds;
    naive times are read as UTC, as the offline features read them.

    Example:
        >>> as_micros("1970-01-01T00:00:01Z"), as_micros(datetime(1970, 1, 1, 0, 0, 2))
        (1000000, 2000000)
    """
    if isinstance(value, str):
        text = value
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise EventError(
                f"{what} {text[:40]!r} is not a time",
                fix="send an ISO 8601 time such as 2024-08-01T10:00:00Z",
            ) from None
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return (value - _EPOCH) // timedelta(microseconds=1)
    if isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value):
        return round(value * 1_000_000)
    raise EventError(
        f"{what} {str(value)[:40]!r} is not a time",
        fix="send an ISO 8601 time such as 2024-08-01T10:00:00Z",
    )


class _Times:
    """The sorted times of a key's recent events, and the count and last time of older ones."""

    __slots__ = ("dropped", "last_dropped", "ts")

    def __init__(self) -> None:
        self.ts: list[int] = []
        self.dropped = 0
        self.last_dropped: int | None = None

    def add(self, t: int) -> None:
        ts = self.ts
        if not ts or t >= ts[-1]:
            ts.append(t)
        elif self.dropped and t < ts[0]:  # older than what is kept: only the count changes
            self.dropped += 1
            if self.last_dropped is None or t > self.last_dropped:
                self.last_dropped = t
        else:
            insort_right(ts, t)

    def drop_before(self, cutoff: int) -> None:
        k = bisect_left(self.ts, cutoff)
        if k:
            self.dropped += k
            last = self.ts[k - 1]
            if self.last_dropped is None or last > self.last_dropped:
                self.last_dropped = last
            del self.ts[:k]

    def before(self, at: int) -> int:
        """Events strictly before ``at``."""
        return self.dropped + bisect_left(self.ts, at)

    def through(self, at: int) -> int:
        """Events at or before ``at``."""
        return self.dropped + bisect_right(self.ts, at)

    def last_before(self, at: int) -> int | None:
        i = bisect_left(self.ts, at)
        return self.ts[i - 1] if i else self.last_dropped


_NONE = _Times()  # the times of a kind a pair never had (read only)


class _Pair:
    __slots__ = ("every", "kinds")

    def __init__(self) -> None:
        self.every = _Times()
        self.kinds = [_NONE, _NONE, _NONE, _NONE]  # made on a pair's first event of a kind

    def kind(self, k: int) -> _Times:
        times = self.kinds[k]
        if times is _NONE:
            times = self.kinds[k] = _Times()
        return times


class _User:
    __slots__ = ("carts", "cats", "events", "hold", "kinds", "pairs", "starts")

    def __init__(self) -> None:
        self.hold = 0  # no folding tried before this time (nothing to fold until then)
        self.events = _Times()  # every event (kept from a session start on)
        self.carts: list[bool] = []  # add-to-cart flag of each kept event
        self.kinds = (_Times(), _Times(), _Times(), _Times())
        self.starts = _Times()  # session starts
        self.pairs: dict[str, _Pair] = {}
        self.cats: dict[str, _Times] = {}


@dataclass
class FeatureRows:
    """The feature rows of one user and some items at one time (``values``: one row per item,
    the columns of :func:`feature_columns`)."""

    user: str
    items: list[str]
    at: int
    columns: list[str]
    values: np.ndarray
    categories: list[str]
    cold_start: bool
    unknown_items: list[str] = field(default_factory=list)

    def column(self, name: str) -> list[float]:
        return [float(v) for v in self.values[:, self.columns.index(name)]]

    def frame(self) -> pl.DataFrame:
        """The rows as the offline feature table holds them (its columns and types)."""
        t = datetime(1970, 1, 1) + timedelta(microseconds=self.at)
        keys = pl.DataFrame(
            {
                "user_id": [self.user] * len(self.items),
                "item_id": self.items,
                "prediction_time": [t] * len(self.items),
                "category": self.categories,
            },
            schema={
                "user_id": pl.String,
                "item_id": pl.String,
                "prediction_time": pl.Datetime("us"),
                "category": pl.String,
            },
        )
        body = pl.DataFrame(self.values, schema=self.columns, orient="row")
        return keys.hstack(body.with_columns(_dtypes(self.columns)))


def _dtypes(columns: Sequence[str]) -> list[pl.Expr]:
    out = []
    for c in columns:
        if c in ("pair_repeat_view",):
            out.append(pl.col(c).cast(pl.Int8))
        elif c in ("session_events_so_far", "session_carts_so_far"):
            out.append(pl.col(c).cast(pl.Int32))
        elif "hours" in c or "share" in c or c in ("session_minutes_so_far", "price", "discount"):
            out.append(pl.col(c).cast(pl.Float64))
        else:
            out.append(pl.col(c).cast(pl.Int64))
    return out


class OnlineState:
    """Running counts, recencies and windowed counts per user, pair, category and item.

    ``items`` is the item table (``item_id``, ``category``, ``price``, ``discount``) the
    features join; ``cuts`` are times at which every session is cut (the offline split's
    boundaries, to reproduce a training table exactly; none in production).

    Example:
        >>> s = OnlineState(windows=[timedelta(days=1)])
        >>> s.ingest_many([{"user_id": "a", "item_id": "x", "event_type": "buy", "timestamp": 0}])
        [(0, "event_type 'buy' is not one of view, add_to_cart, remove_from_cart, purchase; fix: map it to one of them")]
    """

    def __init__(
        self,
        items: pl.DataFrame | None = None,
        *,
        windows: Sequence[timedelta] = WINDOWS,
        gap: timedelta = timedelta(minutes=30),
        recency_cap_hours: float = 24 * 90,
        lateness: timedelta = timedelta(hours=1),
        cuts: Sequence[datetime] = (),
    ) -> None:
        self.windows = list(windows)
        self.window_us = [micros(w) for w in self.windows]
        self.gap = micros(gap)
        self.cap = float(recency_cap_hours)
        self.lateness = micros(lateness)
        self.cuts = sorted(as_micros(c) for c in cuts)
        self.keep = max(self.window_us) + self.lateness  # kept in full this far back
        self.slack = max(self.keep // 4, 1)  # folded in steps, not one event at a time
        self.columns = feature_columns(self.windows)
        self.catalog: dict[str, tuple[str | None, float, float]] = {}
        #: per item with a price history: valid_from times (sorted) and (price, discount)
        self.prices: dict[str, tuple[list[int], list[tuple[float | None, float | None]]]] = {}
        if items is not None:
            self.set_items(items)
        self.users: dict[str, _User] = {}
        self.item_views: dict[str, _Times] = {}
        self.item_purchases: dict[str, _Times] = {}
        self.newest: int | None = None
        self.events = 0

    def set_items(self, items: pl.DataFrame) -> None:
        """The item table: category, price and discount per item (missing price/discount: 0);
        with ``valid_from``, each item's price history (read as of the time asked, the
        category the latest row's)."""
        if "valid_from" in items.columns:
            items = items.with_columns(pl.col("valid_from").cast(pl.Datetime("us")))
            items = items.sort("valid_from", "item_id", maintain_order=True)
        cat = items["category"].cast(pl.String) if "category" in items.columns else None
        price = items["price"].cast(pl.Float64) if "price" in items.columns else None
        disc = items["discount"].cast(pl.Float64) if "discount" in items.columns else None
        since = (
            items["valid_from"].to_physical().to_list() if "valid_from" in items.columns else None
        )
        for i, item in enumerate(items["item_id"].cast(pl.String).to_list()):
            p = None if price is None else price[i]
            d = None if disc is None else disc[i]
            self.catalog[item] = (
                None if cat is None else cat[i],
                0.0 if p is None else float(p),
                0.0 if d is None else float(d),
            )
            if since is not None:
                times, values = self.prices.setdefault(item, ([], []))
                times.append(int(since[i]))
                values.append((p, d))

    # -- events ---------------------------------------------------------------------------

    def check(self, event: Mapping[str, Any]) -> tuple[str, str, int, int]:
        """``(user, item, kind, microseconds)`` of a valid event, nothing changed;
        :class:`EventError` naming what is wrong (type, time, missing field, too late)."""
        if not isinstance(event, Mapping):
            raise EventError(
                "an event must be an object", fix="send {user_id, item_id, event_type, timestamp}"
            )
        for key in ("user_id", "item_id", "event_type", "timestamp"):
            if event.get(key) is None:
                raise EventError(
                    f"the event has no {key}",
                    fix="send user_id, item_id, event_type and timestamp with every event",
                )
        kind = _KIND_INDEX.get(str(event["event_type"]))
        if kind is None:
            raise EventError(
                f"event_type {str(event['event_type'])[:40]!r} is not one of {', '.join(EVENT_KINDS)}",
                fix="map it to one of them",
            )
        user, t = str(event["user_id"]), as_micros(event["timestamp"])
        u = self.users.get(user)
        if u is not None:
            prev = u.events.ts[-1] if u.events.ts else u.events.last_dropped
            if prev is not None and t < prev - self.lateness:
                raise _late(user, t, prev)
        return user, str(event["item_id"]), kind, t

    def ingest(self, event: Mapping[str, Any]) -> None:
        """Add one event (``user_id``, ``item_id``, ``event_type``, ``timestamp``); raises
        :class:`EventError` naming what is wrong (nothing is changed then)."""
        self.add(*self.check(event))

    def ingest_many(self, events: Iterable[Mapping[str, Any]]) -> list[tuple[int, str]]:
        """Add every event that is valid; the position and reason of each one refused."""
        refused = []
        collecting = gc.isenabled()
        gc.disable()  # many small objects, no cycles
        try:
            for i, event in enumerate(events):
                try:
                    self.ingest(event)
                except EventError as e:
                    refused.append((i, str(e)))
        finally:
            if collecting:
                gc.enable()
        return refused

    def ingest_frame(self, events: pl.DataFrame) -> int:
        """Add the events of a table (``user_id``, ``item_id``, ``event_type``, ``timestamp``),
        sorted by time first; rows with a null user, item or time are skipped (counted)."""
        ev = events.select(
            pl.col("user_id").cast(pl.String),
            pl.col("item_id").cast(pl.String),
            pl.col("event_type").cast(pl.String).replace_strict(_KIND_INDEX, default=None),
            pl.col("timestamp").cast(pl.Datetime("us")).to_physical(),
        )
        bad = ev.filter(pl.any_horizontal(pl.all().is_null())).height
        ev = ev.drop_nulls().sort("timestamp", maintain_order=True)
        add = self.add
        collecting = gc.isenabled()
        gc.disable()  # many small objects, no cycles: the collector's passes were a third
        try:
            for user, item, kind, t in zip(*(ev[c].to_list() for c in ev.columns), strict=True):
                add(user, item, kind, t)
        finally:
            if collecting:
                gc.enable()
        return bad

    def add(self, user: str, item: str, kind: int, t: int) -> None:
        """One event (``kind``: the index in :data:`EVENT_KINDS`, ``t``: microseconds)."""
        u = self.users.get(user)
        if u is None:
            u = self.users[user] = _User()
        ev = u.events.ts
        prev = ev[-1] if ev else u.events.last_dropped
        if prev is not None and t < prev - self.lateness:
            raise _late(user, t, prev)
        cart = kind == _CART
        if prev is None or t >= prev:  # in order: the usual case, appends only
            if prev is None or t - prev > self.gap or (self.cuts and self._cut(prev, t)):
                u.starts.add(t)
            ev.append(t)
            u.carts.append(cart)
        else:
            at = bisect_right(ev, t)
            ev.insert(at, t)
            u.carts.insert(at, cart)
            self._restart(u)
        pair = u.pairs.get(item)
        if pair is None:
            pair = u.pairs[item] = _Pair()
        known = self.catalog.get(item)
        cat = known[0] if known is not None else None
        if cat is None:
            put: tuple[_Times, ...] = (u.kinds[kind], pair.every, pair.kind(kind))
        else:
            c = u.cats.get(cat)
            if c is None:
                c = u.cats[cat] = _Times()
            put = (u.kinds[kind], pair.every, pair.kind(kind), c)
        for times in put:  # inline of _Times.add's usual case (a call each costs as much)
            ts = times.ts
            if ts and t < ts[-1]:
                times.add(t)
            else:
                ts.append(t)
        if kind == _VIEW or kind == _PURCHASE:
            table = self.item_views if kind == _VIEW else self.item_purchases
            it = table.get(item)
            if it is None:
                it = table[item] = _Times()
            its = it.ts
            if its and t < its[-1]:
                it.add(t)
            else:
                its.append(t)
            if its[0] < t - self.keep - self.slack:
                it.drop_before(t - self.keep)
        if t > u.hold and ev[0] < t - self.keep - self.slack:
            self._fold(u, t, t - self.keep)
        if self.newest is None or t > self.newest:
            self.newest = t
        self.events += 1

    def _cut(self, prev: int, t: int) -> bool:
        return bool(self.cuts) and bisect_right(self.cuts, prev) != bisect_right(self.cuts, t)

    def _restart(self, u: _User) -> None:
        """The session starts of the kept events again (after an event put in its place)."""
        prev = u.events.last_dropped
        starts = []
        for t in u.events.ts:
            if prev is None or t - prev > self.gap or self._cut(prev, t):
                starts.append(t)
            prev = t
        u.starts.ts = starts

    def _fold(self, u: _User, t: int, cutoff: int) -> None:
        """Fold the user's events before ``cutoff`` into counts, from a session start on (the
        session holding ``cutoff`` is kept whole)."""
        s = bisect_right(u.starts.ts, cutoff) - 1
        if s <= 0:  # one long session so far: nothing to fold before its next start is old
            nxt = u.starts.ts[1] if len(u.starts.ts) > 1 else t
            u.hold = max(nxt + self.keep, t + self.slack)
            return
        start = u.starts.ts[s]
        k = bisect_left(u.events.ts, start)
        del u.carts[:k]
        u.events.drop_before(start)
        u.starts.drop_before(start)
        for times in u.kinds:
            times.drop_before(cutoff)
        for pair in u.pairs.values():
            pair.every.drop_before(cutoff)
            for times in pair.kinds:
                if times is not _NONE:
                    times.drop_before(cutoff)
        for times in u.cats.values():
            times.drop_before(cutoff)

    # -- features -------------------------------------------------------------------------

    def features(self, user: str, items: Sequence[str], at: object) -> FeatureRows:
        """The feature rows of ``user`` and each of ``items`` at ``at`` (events strictly
        before it); a user never seen gets the rows of a user without history (cold start)."""
        return self.features_at(user, items, as_micros(at, "at"))

    def features_at(self, user: str, items: Sequence[str], t: int) -> FeatureRows:
        """:meth:`features` at ``t`` microseconds since 1970."""
        if self.newest is not None and t < self.newest - self.lateness:
            raise LateError(
                f"at {_text(t)} is more than the lateness before the newest event ({_text(self.newest)})",
                fix="ask at a time no earlier than the newest event minus the lateness",
            )
        u = self.users.get(str(user))
        rows = [self._row(u, str(item), t) for item in items]
        cats = [self.catalog.get(str(i), (None, 0.0, 0.0))[0] or "unknown" for i in items]
        values = np.array(rows, dtype=np.float64).reshape(len(rows), len(self.columns))
        return FeatureRows(
            user=str(user),
            items=[str(i) for i in items],
            at=t,
            columns=self.columns,
            values=values,
            categories=cats,
            cold_start=u is None or u.events.before(t) == 0,
            unknown_items=[str(i) for i in items if str(i) not in self.catalog],
        )

    def _row(self, u: _User | None, item: str, at: int) -> list[float]:
        cap = self.cap
        wins = self.window_us
        known = self.catalog.get(item)
        category, price, discount = known if known is not None else (None, 0.0, 0.0)
        history = self.prices.get(item)
        if history is not None:  # the price and discount valid at ``at`` (none yet: 0)
            k = bisect_right(history[0], at) - 1
            p, d = history[1][k] if k >= 0 else (None, None)
            price = 0.0 if p is None else p
            discount = 0.0 if d is None else d

        def hours(times: _Times | None) -> float:
            last = None if times is None else times.last_before(at)
            if last is None:
                return cap
            return min(_div_hour(at - last), cap)

        def counts(times: _Times | None) -> tuple[int, list[int]]:
            if times is None:
                return 0, [0] * len(wins)
            every = times.before(at)
            return every, [every - times.through(at - w) for w in wins]

        pair = u.pairs.get(item) if u is not None else None
        row: list[float] = [hours(u.kinds[k] if u else None) for k in range(4)]
        row += [
            hours(u.events if u else None),
            hours(pair.every if pair else None),
            hours(pair.kinds[_CART] if pair else None),
        ]
        user_events, user_wins = counts(u.events if u else None)
        row += [user_events, *user_wins]
        for k in (_CART, _REMOVE, _PURCHASE):
            row += counts(u.kinds[k] if u else None)[1]
        sessions, session_wins = counts(u.starts if u else None)
        row += [sessions, *session_wins]
        views, view_wins = counts(pair.kinds[_VIEW] if pair else None)
        row += [views, *view_wins]
        carts = pair.kinds[_CART].before(at) if pair else 0
        removes = pair.kinds[_REMOVE].before(at) if pair else 0
        buys = pair.kinds[_PURCHASE].before(at) if pair else 0
        pair_events = pair.every.before(at) if pair else 0
        cat_times = u.cats.get(category) if u is not None and category is not None else None
        cat_events = cat_times.before(at) if cat_times is not None else 0
        row += [carts, removes, buys, carts - removes - buys, 1 if views >= 2 else 0]
        row += [pair_events, pair_events / max(user_events, 1)]
        row += [cat_events, cat_events / max(user_events, 1)]
        row += self._session(u, at)
        for table in (self.item_views, self.item_purchases):
            times = table.get(item)
            every = times.before(at) if times is not None else 0
            row += [every - times.through(at - w) if times is not None else 0 for w in wins]
        row += [price, discount]
        return row

    def _session(self, u: _User | None, at: int) -> list[float]:
        """Events, minutes and add-to-carts of the user's latest session so far."""
        if u is None:
            return [0, 0.0, 0]
        ts = u.events.ts
        j = bisect_left(ts, at) - 1
        if j < 0:
            return [0, 0.0, 0]
        s_at = bisect_right(u.starts.ts, ts[j]) - 1
        start = u.starts.ts[s_at]
        s = bisect_left(ts, start)
        carts = sum(u.carts[s : j + 1])
        return [j - s + 1, _minutes(ts[j] - start), carts]

    def state_of(self, user: str) -> dict[str, int]:
        """How much the state holds of a user (events kept and folded, sessions)."""
        u = self.users.get(user)
        if u is None:
            return {"events": 0, "kept": 0, "sessions": 0}
        return {
            "events": u.events.dropped + len(u.events.ts),
            "kept": len(u.events.ts),
            "sessions": u.starts.dropped + len(u.starts.ts),
        }


_INV_HOUR = 1.0 / HOUR_US


_PER_US = 1e-6
_INV_MINUTE = 1.0 / 60


def _div_hour(delta_us: int) -> float:
    """Hours of ``delta_us`` as the offline features compute them, bit for bit (polars
    divides a column by a number as a product with its reciprocal)."""
    return delta_us * _INV_HOUR


def _minutes(delta_us: int) -> float:
    """Minutes of ``delta_us`` as the offline features compute them, bit for bit
    (``total_seconds(fractional=True) / 60``)."""
    return delta_us * _PER_US * _INV_MINUTE


def _late(user: str, t: int, prev: int) -> EventError:
    return LateError(
        f"the event at {_text(t)} is more than the lateness before user "
        f"{user[:40]!r}'s last event ({_text(prev)})",
        fix="send events in time order, or raise the lateness",
    )


def _text(t: int) -> str:
    return (_EPOCH + timedelta(microseconds=t)).isoformat()


def replay(state: OnlineState, events: pl.DataFrame, rows: pl.DataFrame) -> pl.DataFrame:
    """Stream ``events`` through ``state`` in time order and, at each prediction time of
    ``rows`` (``user_id``, ``item_id``, ``prediction_time``), before any event at or after it,
    read the rows' features: the table the offline features give for the same rows (sorted
    by prediction time, user and item), computed the online way.

    Example:
        >>> from datetime import datetime
        >>> ev = pl.DataFrame({"user_id": ["a", "a"], "item_id": ["x", "x"],
        ...     "event_type": ["view", "view"], "timestamp": [datetime(2024, 1, 1), datetime(2024, 1, 3)]})
        >>> rows = pl.DataFrame({"user_id": ["a"], "item_id": ["x"], "prediction_time": [datetime(2024, 1, 2)]})
        >>> replay(OnlineState(), ev, rows)["pair_views"].to_list()
        [1]
    """
    ev = events.select(
        pl.col("user_id").cast(pl.String),
        pl.col("item_id").cast(pl.String),
        pl.col("event_type").cast(pl.String).replace_strict(_KIND_INDEX, default=None),
        pl.col("timestamp").cast(pl.Datetime("us")).to_physical(),
    ).drop_nulls()
    ev = ev.sort("timestamp", maintain_order=True)
    users, items, kinds, times = (ev[c].to_list() for c in ev.columns)
    keyed = rows.select(
        pl.col("user_id").cast(pl.String),
        pl.col("item_id").cast(pl.String),
        pl.col("prediction_time").cast(pl.Datetime("us")).to_physical().alias("_t"),
    ).sort("_t", "user_id", "item_id")
    parts = []
    i, n = 0, len(times)
    for (at,), at_rows in keyed.group_by("_t", maintain_order=True):
        t = int(at)  # type: ignore[call-overload]
        while i < n and times[i] < t:
            state.add(users[i], items[i], kinds[i], times[i])
            i += 1
        for (user,), pairs in at_rows.group_by("user_id", maintain_order=True):
            parts.append(state.features_at(str(user), pairs["item_id"].to_list(), t).frame())
    if not parts:
        return FeatureRows(
            "", [], 0, state.columns, np.zeros((0, len(state.columns))), [], True
        ).frame()
    return pl.concat(parts)
