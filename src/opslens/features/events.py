"""Event streams: sessionization and point-in-time features for (user, item, prediction time).

Sessions: events of one key (a user) sorted by time; a new session starts when
the gap to the previous event is **greater than** the inactivity gap (a gap
exactly equal to it stays in the session); events at the same timestamp are
in the same session, in input order.

Point-in-time features for a row ``(user, item, t)`` use only events with
``timestamp < t`` (strictly): every count is a cumulative count looked up with
``join_asof(..., allow_exact_matches=False)`` on a table with one row per key and
timestamp, so an event at or after ``t`` never reaches the row. Labels use the
window ``t <= timestamp < t + horizon``.

The event frame holds ``user_id``, ``item_id``, ``event_type`` (``view``,
``add_to_cart``, ``remove_from_cart``, ``purchase``), ``timestamp`` and, for the
features, ``category``, ``price``, ``discount`` and the session columns that
:func:`sessionize` adds.

Example:
    >>> from datetime import datetime, timedelta
    >>> t0 = datetime(2024, 1, 1)
    >>> ev = pl.DataFrame({"user_id": ["a", "a", "a"], "item_id": ["x", "x", "y"],
    ...     "event_type": ["view", "view", "view"],
    ...     "timestamp": [t0, t0 + timedelta(minutes=30), t0 + timedelta(minutes=61)]})
    >>> sessionize(ev, gap=timedelta(minutes=30))["session_index"].to_list()
    [0, 0, 1]
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import polars as pl

__all__ = [
    "EVENT_KINDS",
    "FEATURE_COLUMNS",
    "candidate_rows",
    "label_rows",
    "point_in_time_features",
    "sessionize",
]

EVENT_KINDS = ("view", "add_to_cart", "remove_from_cart", "purchase")
_SHORT = {
    "view": "view",
    "add_to_cart": "cart",
    "remove_from_cart": "remove",
    "purchase": "purchase",
}
_HOUR_US = 3_600_000_000
_HASH_SEED = 20240801


def sessionize(
    events: pl.DataFrame,
    *,
    gap: timedelta = timedelta(minutes=30),
    by: str | Sequence[str] = "user_id",
    time: str = "timestamp",
) -> pl.DataFrame:
    """Sort by ``by`` and time; add ``session_id``, index, start, end, duration and counts.

    Rows come back grouped by key (in a deterministic order: integers ascending,
    text by hash) and in time order within a key, ties in input order.

    ``session_id`` is ``<key>-<index>`` (stable when later events are appended);
    ``session_event`` numbers events inside a session from 1; ``session_carts``
    counts the add-to-carts so far (running, for point-in-time use).

    Example:
        >>> from datetime import datetime
        >>> ev = pl.DataFrame({"user_id": ["b", "a", "a"], "timestamp": [datetime(2024, 1, 1, 1),
        ...     datetime(2024, 1, 1, 2), datetime(2024, 1, 1, 0)]})
        >>> sorted(sessionize(ev, gap=timedelta(minutes=30))["session_id"].to_list())
        ['a-0', 'a-1', 'b-0']
    """
    keys = [by] if isinstance(by, str) else list(by)
    out = _sort_by_key_and_time(events, keys, time)
    # sorted by key and time: the first event of a key, or a gap over ``gap``, starts a session.
    # Per-session columns are forward/backward fills over the sorted rows, not group-wise
    # ``over()`` windows: with millions of sessions those were 10x slower than the sort.
    first_of_key = pl.any_horizontal(pl.col(k).ne_missing(pl.col(k).shift()) for k in keys)
    new = first_of_key | (pl.col(time).diff() > gap).fill_null(True)
    out = out.with_columns(_new=new, _key_start=first_of_key, _row=pl.int_range(pl.len()))
    out = out.with_columns(
        _sid=pl.col("_new").cast(pl.Int64).cum_sum(),
        _last=pl.col("_new").shift(-1).fill_null(True),
        _first_row=pl.when("_new").then(pl.col("_row")).forward_fill(),
    )
    index = pl.col("_sid") - pl.when("_key_start").then(pl.col("_sid")).forward_fill()
    out = out.with_columns(session_index=index.cast(pl.Int32))
    label = pl.concat_str(
        [*(pl.col(k).cast(pl.String) for k in keys), pl.col("session_index")], separator="-"
    )
    columns = [
        label.alias("session_id"),
        pl.when("_new").then(pl.col(time)).forward_fill().alias("session_start"),
        pl.when("_last").then(pl.col(time)).backward_fill().alias("session_end"),
        (pl.when("_last").then(pl.col("_row")).backward_fill() - pl.col("_first_row") + 1)
        .cast(pl.Int32)
        .alias("session_events"),
        (pl.col("_row") - pl.col("_first_row") + 1).cast(pl.Int32).alias("session_event"),
    ]
    if "event_type" in out.columns:
        carts = (pl.col("event_type") == "add_to_cart").cast(pl.Int32)
        before = pl.when("_new").then(carts.cum_sum() - carts).forward_fill()
        columns.append((carts.cum_sum() - before).cast(pl.Int32).alias("session_carts"))
    out = out.with_columns(columns).with_columns(
        session_seconds=(pl.col("session_end") - pl.col("session_start")).dt.total_seconds(
            fractional=True
        ),
    )
    out = out.drop("_new", "_key_start", "_sid", "_row", "_last", "_first_row")
    return out


def _sort_by_key_and_time(events: pl.DataFrame, keys: list[str], time: str) -> pl.DataFrame:
    """Stable sort by key then time, keys in a deterministic order (integers ascending, text
    by hash); several keys sort plainly.

    Sorting text and time together is the slow part of sessionization; one integer
    (key code, µs since the first event) sorts several times faster.
    """
    if len(keys) != 1 or events.height == 0 or events[time].null_count():
        return events.sort([*keys, time], maintain_order=True)
    key = keys[0]
    first, last = events[time].min(), events[time].max()
    span = int((last - first) / timedelta(microseconds=1)) + 1  # type: ignore[operator]
    shift = span.bit_length()
    if events.schema[key].is_integer() and not events[key].null_count():
        low, high = int(events[key].min()), int(events[key].max())  # type: ignore[arg-type]
        n_codes = high - low + 1
        code = pl.col(key).cast(pl.Int64) - low
    else:  # text: number the keys by their (seeded, deterministic) hash, far cheaper than text
        hashed = events[key].hash(_HASH_SEED)
        levels = hashed.unique().sort()
        n_codes = levels.len()
        code = pl.lit(
            hashed.replace_strict(levels, pl.int_range(n_codes, eager=True), return_dtype=pl.Int64)
        )
    if shift + n_codes.bit_length() > 62:
        return events.sort([*keys, time], maintain_order=True)
    us = (pl.col(time) - pl.lit(first)).dt.total_microseconds()
    order = events.select(pl.arg_sort_by((code * (1 << shift)) + us, maintain_order=True))
    out = events[order.to_series()]
    blocks = int(out[key].ne_missing(out[key].shift()).sum())
    if blocks != n_codes:  # two keys share a hash (about 1e-9 at 200,000 keys): sort the text
        return events.sort([*keys, time], maintain_order=True)
    return out


def candidate_rows(
    events: pl.DataFrame,
    times: Sequence[object],
    *,
    lookback: timedelta,
) -> pl.DataFrame:
    """(user, item, prediction_time) for every pair with an event in ``[t - lookback, t)``.

    Example:
        >>> from datetime import datetime
        >>> ev = pl.DataFrame({"user_id": ["a"], "item_id": ["x"], "timestamp": [datetime(2024, 1, 1, 5)]})
        >>> rows = candidate_rows(ev, [datetime(2024, 1, 1), datetime(2024, 1, 2), datetime(2024, 1, 9)],
        ...                       lookback=timedelta(days=7))
        >>> rows["prediction_time"].dt.day().to_list()
        [2]
    """
    grid = pl.DataFrame({"prediction_time": list(times)}).with_columns(
        pl.col("prediction_time").cast(pl.Datetime("us"))
    )
    if grid.height == 0:
        return pl.DataFrame(
            schema={
                "user_id": pl.String,
                "item_id": pl.String,
                "prediction_time": pl.Datetime("us"),
            }
        )
    grid = grid.sort("prediction_time").with_row_index("k")
    points = grid.select(pl.col("prediction_time").alias("_p"), "k")
    # each event makes its pair a candidate at the grid points p with ts < p <= ts + lookback
    spans = (
        events.group_by("user_id", "item_id", "timestamp")
        .len()
        .sort("timestamp")
        .join_asof(
            points,
            left_on="timestamp",
            right_on="_p",
            strategy="forward",
            allow_exact_matches=False,
        )
        .drop_nulls("k")
        .group_by("user_id", "item_id", "k")
        .agg(until=(pl.col("timestamp") + lookback).max())
        .sort("until")
        .join_asof(
            points.rename({"k": "k_last"}), left_on="until", right_on="_p", strategy="backward"
        )
        .filter(pl.col("k_last") >= pl.col("k"))
    )
    rows = (
        spans.select("user_id", "item_id", k=pl.int_ranges("k", pl.col("k_last") + 1))
        .explode("k")
        .unique()
        .join(grid, on="k")
        .select("user_id", "item_id", "prediction_time")
        .sort("prediction_time", "user_id", "item_id")
    )
    return rows


def _counts(events: pl.DataFrame, keys: list[str], kind: str | None) -> pl.DataFrame:
    """One row per key and timestamp with the cumulative count up to and including it."""
    ev = events if kind is None else events.filter(pl.col("event_type") == kind)
    return (
        ev.group_by(*keys, "timestamp")
        .len()
        .sort([*keys, "timestamp"])
        .with_columns(cum=pl.col("len").cum_sum().over(keys).cast(pl.Int64))
        .drop("len")
        .sort("timestamp")
    )


def _before(
    rows: pl.DataFrame, table: pl.DataFrame, keys: list[str], at: str, values: dict[str, str]
) -> pl.DataFrame:
    """Add ``values`` (table column → new name) from the last table row with timestamp < ``at``."""
    right = table.select(*keys, pl.col("timestamp").alias("_t"), *values).rename(values)
    return rows.join_asof(
        right,
        left_on=at,
        right_on="_t",
        by=keys,
        strategy="backward",
        allow_exact_matches=False,
        check_sortedness=False,
    ).drop("_t")


def _count_in(
    rows: pl.DataFrame,
    table: pl.DataFrame,
    keys: list[str],
    name: str,
    windows: Sequence[timedelta],
    *,
    total: bool = True,
) -> pl.DataFrame:
    """``name`` (all events before t) and ``name_<w>`` (events in [t - w, t)) for each window."""
    rows = _before(rows, table, keys, "prediction_time", {"cum": "_all"})
    new = []
    for w in windows:
        col = f"_at_{_label(w)}"
        rows = rows.with_columns((pl.col("prediction_time") - w).alias(col))
        rows = _before(rows, table, keys, col, {"cum": f"_c_{_label(w)}"}).drop(col)
        new.append(
            (pl.col("_all").fill_null(0) - pl.col(f"_c_{_label(w)}").fill_null(0)).alias(
                f"{name}_{_label(w)}"
            )
        )
    rows = rows.with_columns(*new)
    if total:
        rows = rows.with_columns(pl.col("_all").fill_null(0).alias(name))
    return rows.drop("_all", *(f"_c_{_label(w)}" for w in windows))


def _label(w: timedelta) -> str:
    seconds = int(w.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _hours_since(at: str, last: str, cap: float) -> pl.Expr:
    return (
        ((pl.col(at) - pl.col(last)).dt.total_microseconds() / _HOUR_US)
        .fill_null(cap)
        .clip(upper_bound=cap)
    )


def feature_columns(windows: Sequence[timedelta]) -> list[str]:
    """The numeric feature columns :func:`point_in_time_features` adds, in order.

    Example:
        >>> feature_columns([timedelta(days=7)])[:3]
        ['user_hours_since_view', 'user_hours_since_cart', 'user_hours_since_remove']
    """
    w = [_label(x) for x in windows]
    cols = [f"user_hours_since_{_SHORT[k]}" for k in EVENT_KINDS]
    cols += ["user_hours_since_event", "pair_hours_since_event", "pair_hours_since_cart"]
    cols += ["user_events", *(f"user_events_{x}" for x in w)]
    for k in ("cart", "remove", "purchase"):
        cols += [f"user_{k}s_{x}" for x in w]
    cols += ["user_sessions", *(f"user_sessions_{x}" for x in w)]
    cols += ["pair_views", *(f"pair_views_{x}" for x in w)]
    cols += ["pair_carts", "pair_removes", "pair_purchases", "pair_net_cart", "pair_repeat_view"]
    cols += ["pair_events", "pair_share", "category_events", "category_share"]
    cols += ["session_events_so_far", "session_minutes_so_far", "session_carts_so_far"]
    cols += [f"item_views_{x}" for x in w] + [f"item_purchases_{x}" for x in w]
    cols += ["price", "discount"]
    return cols


FEATURE_COLUMNS = feature_columns([timedelta(days=1), timedelta(days=7), timedelta(days=30)])


def point_in_time_features(
    rows: pl.DataFrame,
    events: pl.DataFrame,
    items: pl.DataFrame,
    *,
    windows: Sequence[timedelta] = (timedelta(days=1), timedelta(days=7), timedelta(days=30)),
    recency_cap_hours: float = 24 * 90,
) -> pl.DataFrame:
    """Features of each (user_id, item_id, prediction_time) row from events strictly before it.

    ``events`` must hold the session columns of :func:`sessionize`; ``items`` holds
    ``item_id``, ``category``, ``price``, ``discount``. The result is sorted by
    prediction time, user and item, with ``category`` and :func:`feature_columns`.

    Example:
        >>> from datetime import datetime
        >>> t = [datetime(2024, 1, 1, h) for h in (1, 2, 3)]
        >>> ev = sessionize(pl.DataFrame({"user_id": ["a"] * 3, "item_id": ["x"] * 3,
        ...     "event_type": ["view", "view", "purchase"], "timestamp": t}))
        >>> items = pl.DataFrame({"item_id": ["x"], "category": ["c"], "price": [9.0], "discount": [0.0]})
        >>> rows = pl.DataFrame({"user_id": ["a"], "item_id": ["x"], "prediction_time": [datetime(2024, 1, 1, 3)]})
        >>> f = point_in_time_features(rows, ev, items)
        >>> f["pair_views"].to_list(), f["pair_purchases"].to_list(), f["user_hours_since_view"].to_list()
        ([2], [0], [1.0])
    """
    wins = list(windows)
    used = ["user_id", "item_id", "event_type", "timestamp", "session_event", "session_start"]
    ev = events.select(*used, "session_carts").join(
        items.select("item_id", "category"), on="item_id", how="left"
    )
    out = (
        rows.select("user_id", "item_id", pl.col("prediction_time").cast(pl.Datetime("us")))
        .join(items.select("item_id", "category", "price", "discount"), on="item_id", how="left")
        .sort("prediction_time")
    )
    user, pair, cat, item = (
        ["user_id"],
        ["user_id", "item_id"],
        ["user_id", "category"],
        ["item_id"],
    )
    cap = recency_cap_hours
    # recency per kind (user), of any event (user, pair) and of a cart (pair)
    for kind in EVENT_KINDS:
        last = ev.filter(pl.col("event_type") == kind).group_by(*user, "timestamp").len()
        out = _before(
            out,
            last.sort("timestamp").with_columns(last=pl.col("timestamp")),
            user,
            "prediction_time",
            {"last": "_last"},
        )
        out = out.with_columns(
            _hours_since("prediction_time", "_last", cap).alias(f"user_hours_since_{_SHORT[kind]}")
        ).drop("_last")
    recents: tuple[tuple[list[str], str, str | None], ...] = (
        (user, "user_hours_since_event", None),
        (pair, "pair_hours_since_event", None),
        (pair, "pair_hours_since_cart", "add_to_cart"),
    )
    for keys, name, only in recents:
        sub = ev if only is None else ev.filter(pl.col("event_type") == only)
        last = sub.group_by(*keys, "timestamp").len().sort("timestamp")
        out = _before(
            out,
            last.with_columns(last=pl.col("timestamp")),
            keys,
            "prediction_time",
            {"last": "_last"},
        )
        out = out.with_columns(_hours_since("prediction_time", "_last", cap).alias(name)).drop(
            "_last"
        )
    # frequency in windows (user: all events, carts, removals, purchases; sessions)
    out = _count_in(out, _counts(ev, user, None), user, "user_events", wins)
    for kind in ("add_to_cart", "remove_from_cart", "purchase"):
        out = _count_in(
            out, _counts(ev, user, kind), user, f"user_{_SHORT[kind]}s", wins, total=False
        )
    starts = (
        ev.filter(pl.col("session_event") == 1)
        .group_by(*user, "timestamp")
        .len()
        .sort([*user, "timestamp"])
        .with_columns(cum=pl.col("len").cum_sum().over(user).cast(pl.Int64))
        .sort("timestamp")
    )
    out = _count_in(out, starts, user, "user_sessions", wins)
    # user-item intent and affinity
    out = _count_in(out, _counts(ev, pair, "view"), pair, "pair_views", wins)
    for kind in ("add_to_cart", "remove_from_cart", "purchase"):
        out = _before(
            out, _counts(ev, pair, kind), pair, "prediction_time", {"cum": f"pair_{_SHORT[kind]}s"}
        )
    out = _before(out, _counts(ev, pair, None), pair, "prediction_time", {"cum": "pair_events"})
    out = _before(out, _counts(ev, cat, None), cat, "prediction_time", {"cum": "category_events"})
    counts = ["pair_carts", "pair_removes", "pair_purchases", "pair_events", "category_events"]
    out = out.with_columns(pl.col(c).fill_null(0) for c in counts).with_columns(
        pair_net_cart=(pl.col("pair_carts") - pl.col("pair_removes") - pl.col("pair_purchases")),
        pair_repeat_view=(pl.col("pair_views") >= 2).cast(pl.Int8),
        pair_share=pl.col("pair_events") / pl.max_horizontal(pl.col("user_events"), 1),
        category_share=pl.col("category_events") / pl.max_horizontal(pl.col("user_events"), 1),
    )
    # the user's latest session so far (running counts: nothing after t)
    sess = (
        ev.group_by(*user, "timestamp")
        .agg(
            pl.col("session_event").max().alias("_n"),
            pl.col("session_start").first().alias("_start"),
            pl.col("session_carts").max().alias("_carts"),
        )
        .sort("timestamp")
    )
    out = _before(
        out,
        sess.with_columns(_last=pl.col("timestamp")),
        user,
        "prediction_time",
        {
            "_n": "session_events_so_far",
            "_start": "_start",
            "_carts": "session_carts_so_far",
            "_last": "_slast",
        },
    )
    out = out.with_columns(
        pl.col("session_events_so_far").fill_null(0),
        pl.col("session_carts_so_far").fill_null(0),
        session_minutes_so_far=(
            (pl.col("_slast") - pl.col("_start")).dt.total_seconds(fractional=True) / 60
        ).fill_null(0.0),
    ).drop("_start", "_slast")
    # item popularity
    out = _count_in(out, _counts(ev, item, "view"), item, "item_views", wins, total=False)
    out = _count_in(out, _counts(ev, item, "purchase"), item, "item_purchases", wins, total=False)
    cols = feature_columns(wins)
    return (
        out.with_columns(
            pl.col("price").cast(pl.Float64).fill_null(0.0),
            pl.col("discount").cast(pl.Float64).fill_null(0.0),
            pl.col("category").fill_null("unknown"),
        )
        .select("user_id", "item_id", "prediction_time", "category", *cols)
        .sort("prediction_time", "user_id", "item_id")
    )


def label_rows(
    rows: pl.DataFrame, events: pl.DataFrame, *, horizon: timedelta, kind: str = "purchase"
) -> pl.DataFrame:
    """``label`` = 1 if the pair has a ``kind`` event in ``[t, t + horizon)``, else 0.

    Example:
        >>> from datetime import datetime
        >>> ev = pl.DataFrame({"user_id": ["a"], "item_id": ["x"], "event_type": ["purchase"],
        ...                    "timestamp": [datetime(2024, 1, 3)]})
        >>> rows = pl.DataFrame({"user_id": ["a", "a"], "item_id": ["x", "x"],
        ...     "prediction_time": [datetime(2024, 1, 1), datetime(2024, 1, 3, 1)]})
        >>> label_rows(rows, ev, horizon=timedelta(days=7))["label"].to_list()
        [1, 0]
    """
    pair = ["user_id", "item_id"]
    table = _counts(events, pair, kind)
    out = rows.with_row_index("_i").sort("prediction_time")
    out = _before(out, table, pair, "prediction_time", {"cum": "_a"})
    out = out.with_columns(_end=pl.col("prediction_time") + horizon).sort("_end")
    out = _before(out, table, pair, "_end", {"cum": "_b"})
    return (
        out.with_columns(
            label=((pl.col("_b").fill_null(0) - pl.col("_a").fill_null(0)) > 0).cast(pl.Int8)
        )
        .sort("_i")
        .drop("_i", "_a", "_b", "_end")
    )
