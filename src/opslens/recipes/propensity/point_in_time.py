"""Propensity's clickstream features: candidate rows, point-in-time features and labels for
(user, item, prediction time).

Point-in-time features for a row ``(user, item, t)`` use only events with
``timestamp < t`` (strictly): every count is a cumulative count of events before ``t``
looked up per key (:mod:`opslens.recipes.propensity._past`), so an event at or after
``t`` never reaches the row. Labels use the window ``t <= timestamp < t + horizon``.

The features come in two parts: :func:`user_features` (everything that depends only on
the row's own user's events: the user, the user-item pair, the user-category, the
sessions; and the item's price, discount and category) and :func:`item_features` (the
item's popularity, from everyone's events). Each is exact on any subset of users (items),
so the first can run in buckets of users with bounded memory;
:func:`point_in_time_features` is the two side by side.

The event frame holds ``user_id``, ``item_id``, ``event_type`` (``view``,
``add_to_cart``, ``remove_from_cart``, ``purchase``), ``timestamp`` and, for the
features, ``category``, ``price``, ``discount`` and the session columns that the
generic :func:`opslens.features.events.sessionize` adds.

Example:
    >>> feature_columns([timedelta(days=1)])[-4:]
    ['item_views_1d', 'item_purchases_1d', 'price', 'discount']
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta

import numpy as np
import polars as pl

from opslens.errors import DataError
from opslens.recipes.propensity._past import (
    KEYS,
    WINDOWS,
    Past,
    cumulative_counts,
    item_columns,
    last_before,
    micros,
    prediction_rows,
    window_label,
    with_codes,
)
from opslens.recipes.propensity.popularity import item_features, item_popularity, with_popularity

__all__ = [
    "EVENT_KINDS",
    "FEATURE_COLUMNS",
    "candidate_rows",
    "feature_columns",
    "item_catalog",
    "item_features",
    "item_popularity",
    "join_features",
    "label_rows",
    "point_in_time_features",
    "user_features",
    "with_popularity",
]

EVENT_KINDS = ("view", "add_to_cart", "remove_from_cart", "purchase")
_SHORT = {
    "view": "view",
    "add_to_cart": "cart",
    "remove_from_cart": "remove",
    "purchase": "purchase",
}


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


def feature_columns(windows: Sequence[timedelta]) -> list[str]:
    """The numeric feature columns :func:`point_in_time_features` adds, in order.

    Example:
        >>> feature_columns([timedelta(days=7)])[:3]
        ['user_hours_since_view', 'user_hours_since_cart', 'user_hours_since_remove']
    """
    w = [window_label(x) for x in windows]
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


def user_features(
    rows: pl.DataFrame,
    events: pl.DataFrame,
    items: pl.DataFrame,
    *,
    windows: Sequence[timedelta] = WINDOWS,
    recency_cap_hours: float = 24 * 90,
) -> pl.DataFrame:
    """The features of each row that depend only on its own user's events strictly before it.

    The user's recency, counts and sessions, the user-item pair's and the user-category's
    counts, the latest session so far, and the item's ``category``, ``price`` and
    ``discount``: run on the rows and events of any subset of users it gives exactly
    those users' rows of the whole (so it can run in buckets of users). Columns: the keys,
    ``category`` and :func:`feature_columns` without the item popularity; sorted by
    prediction time, user and item.

    Example:
        >>> from datetime import datetime
        >>> from opslens.features.events import sessionize
        >>> t = [datetime(2024, 1, 1, h) for h in (1, 2, 3)]
        >>> ev = sessionize(pl.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["x"] * 3,
        ...     "event_type": ["view", "add_to_cart", "view"], "timestamp": t}))
        >>> items = pl.DataFrame({"item_id": ["x"], "category": ["c"], "price": [9.0], "discount": [0.0]})
        >>> rows = pl.DataFrame({"user_id": ["a", "b"], "item_id": ["x", "x"],
        ...     "prediction_time": [datetime(2024, 1, 1, 4)] * 2})
        >>> f = user_features(rows, ev, items)
        >>> f["pair_views"].to_list(), f["pair_carts"].to_list(), f["user_hours_since_event"].to_list()
        ([1, 1], [1, 0], [2.0, 1.0])
        >>> f.equals(user_features(rows.filter(pl.col("user_id") == "a"), ev.filter(pl.col("user_id") == "a"), items)
        ...     .vstack(user_features(rows.filter(pl.col("user_id") == "b"), ev.filter(pl.col("user_id") == "b"), items))
        ...     .sort("prediction_time", "user_id", "item_id"))
        True
    """
    wins = list(windows)
    used = ["user_id", "item_id", "event_type", "timestamp", "session_event", "session_start"]
    static, priced = item_catalog(items)
    ev, out = with_codes(
        events.select(*used, "session_carts").join(static, on="item_id", how="left"),
        priced(prediction_rows(rows).join(static, on="item_id", how="left")),
    )
    user, pair, cat = "_user", "_pair", "_user_category"
    past = Past(ev, out, [user, pair, cat], [micros(w) for w in wins])
    cap = recency_cap_hours
    f: dict[str, np.ndarray] = {}
    # recency per kind (user), of any event (user, pair) and of a cart (pair)
    for kind in EVENT_KINDS:
        f[f"user_hours_since_{_SHORT[kind]}"] = past.hours_since(past.table(user, kind), user, cap)
    every = {user: past.table(user, None), pair: past.table(pair, None)}
    f["user_hours_since_event"] = past.hours_since(every[user], user, cap)
    f["pair_hours_since_event"] = past.hours_since(every[pair], pair, cap)
    carts = past.table(pair, "add_to_cart")
    f["pair_hours_since_cart"] = past.hours_since(carts, pair, cap)
    # frequency in windows (user: all events, carts, removals, purchases; sessions)
    f |= past.windows(every[user], user, "user_events", wins, total=True)
    for kind in ("add_to_cart", "remove_from_cart", "purchase"):
        table = past.table(user, kind)
        f |= past.windows(table, user, f"user_{_SHORT[kind]}s", wins, total=False)
    sessions = past.only(pl.col("session_event") == 1)
    f |= sessions.windows(sessions.table(user, None), user, "user_sessions", wins, total=True)
    # user-item intent and affinity
    f |= past.windows(past.table(pair, "view"), pair, "pair_views", wins, total=True)
    f["pair_carts"] = past.count(carts, pair)
    f["pair_removes"] = past.count(past.table(pair, "remove_from_cart"), pair)
    f["pair_purchases"] = past.count(past.table(pair, "purchase"), pair)
    f["pair_events"] = past.count(every[pair], pair)
    f["category_events"] = past.count(past.table(cat, None), cat)
    # the user's latest session so far (running counts: nothing after t)
    sess = past.table(
        user,
        None,
        _n=pl.col("session_event").max(),
        _start=pl.col("session_start").first(),
        _carts=pl.col("session_carts").max(),
    )
    at, found = past.find(sess, user)
    latest = sess.select("_n", "_start", "_carts", "_r")
    latest = (
        latest[pl.Series(at)].with_columns(pl.when(pl.Series(found)).then(pl.all()))
        if latest.height
        else latest.clear(len(at))
    )
    last = pl.Series(past.times[latest["_r"].fill_null(0).to_numpy()]).cast(pl.Datetime("us"))
    minutes = (last - latest["_start"].cast(pl.Datetime("us"))).dt.total_seconds(fractional=True)
    out = out.with_columns(pl.Series(k, v) for k, v in f.items()).with_columns(
        pair_net_cart=(pl.col("pair_carts") - pl.col("pair_removes") - pl.col("pair_purchases")),
        pair_repeat_view=(pl.col("pair_views") >= 2).cast(pl.Int8),
        pair_share=pl.col("pair_events") / pl.max_horizontal(pl.col("user_events"), 1),
        category_share=pl.col("category_events") / pl.max_horizontal(pl.col("user_events"), 1),
        session_events_so_far=latest["_n"].fill_null(0),
        session_minutes_so_far=(minutes / 60).fill_null(0.0),
        session_carts_so_far=latest["_carts"].fill_null(0),
    )
    item_cols = set(item_columns(wins))
    cols = [c for c in feature_columns(wins) if c not in item_cols]
    return (
        out.with_columns(
            pl.col("price").cast(pl.Float64).fill_null(0.0),
            pl.col("discount").cast(pl.Float64).fill_null(0.0),
            pl.col("category").fill_null("unknown"),
        )
        .select(*KEYS, "category", *cols)
        .sort("prediction_time", "user_id", "item_id")
    )


def item_catalog(
    items: pl.DataFrame,
) -> tuple[pl.DataFrame, Callable[[pl.DataFrame], pl.DataFrame]]:
    """One category per item, and a function adding each row's ``price`` and ``discount``.

    With a ``valid_from`` column the table holds each item's price history: a row's price
    and discount are the ones valid at its prediction time (the latest ``valid_from`` at
    or before it; none yet: no price), and its category the item's latest. Without one,
    one row per item.

    Example:
        >>> from datetime import datetime
        >>> items = pl.DataFrame({"item_id": ["x", "x"], "category": ["c", "c"], "price": [5.0, 4.0],
        ...     "discount": [0.0, 0.2], "valid_from": [datetime(2024, 1, 1), datetime(2024, 1, 5)]})
        >>> static, priced = item_catalog(items)
        >>> rows = pl.DataFrame({"item_id": ["x", "x"],
        ...     "prediction_time": [datetime(2024, 1, 3), datetime(2024, 1, 5)]})
        >>> priced(rows)["price"].to_list()
        [5.0, 4.0]
    """
    if "valid_from" not in items.columns:
        static = items.select("item_id", "category")

        def fixed(frame: pl.DataFrame) -> pl.DataFrame:
            return frame.join(
                items.select("item_id", "price", "discount"), on="item_id", how="left"
            )

        return static, fixed
    history = items.select(
        "item_id",
        pl.col("valid_from").cast(pl.Datetime("us")),
        "category",
        pl.col("price").cast(pl.Float64),
        pl.col("discount").cast(pl.Float64),
    ).sort("valid_from", "item_id", maintain_order=True)
    static = history.unique("item_id", keep="last", maintain_order=True).select(
        "item_id", "category"
    )
    prices = history.select("item_id", "valid_from", "price", "discount")

    def as_of(frame: pl.DataFrame) -> pl.DataFrame:
        order = frame.with_row_index("_row").sort("prediction_time")
        joined = order.join_asof(
            prices,
            left_on="prediction_time",
            right_on="valid_from",
            by="item_id",
            strategy="backward",
            check_sortedness=False,
        )
        return joined.sort("_row").drop("_row", "valid_from")

    return static, as_of


def point_in_time_features(
    rows: pl.DataFrame,
    events: pl.DataFrame,
    items: pl.DataFrame,
    *,
    windows: Sequence[timedelta] = WINDOWS,
    recency_cap_hours: float = 24 * 90,
) -> pl.DataFrame:
    """Features of each (user_id, item_id, prediction_time) row from events strictly before it.

    ``events`` must hold the session columns of :func:`sessionize`; ``items`` holds
    ``item_id``, ``category``, ``price``, ``discount``. The result is sorted by
    prediction time, user and item, with ``category`` and :func:`feature_columns`:
    :func:`user_features` and :func:`item_features` side by side (joined on the keys).

    Example:
        >>> from datetime import datetime
        >>> from opslens.features.events import sessionize
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
    users = user_features(rows, events, items, windows=wins, recency_cap_hours=recency_cap_hours)
    return join_features(users, item_features(rows, events, windows=wins), wins)


def join_features(
    users: pl.DataFrame, items: pl.DataFrame, windows: Sequence[timedelta] = WINDOWS
) -> pl.DataFrame:
    """:func:`user_features` and :func:`item_features` of the same rows as one frame, the
    columns of :func:`point_in_time_features`.

    Both come sorted by the keys, and the features of equal keys are equal, so the item
    columns are put beside the user columns row by row (also right for repeated rows).

    Example:
        >>> from datetime import datetime
        >>> from opslens.features.events import sessionize
        >>> ev = sessionize(pl.DataFrame({"user_id": ["a"], "item_id": ["x"], "event_type": ["view"],
        ...     "timestamp": [datetime(2024, 1, 1)]}))
        >>> items = pl.DataFrame({"item_id": ["x"], "category": ["c"], "price": [9.0], "discount": [0.0]})
        >>> rows = pl.DataFrame({"user_id": ["a"], "item_id": ["x"], "prediction_time": [datetime(2024, 1, 1, 12)]})
        >>> w = [timedelta(days=1)]
        >>> f = join_features(user_features(rows, ev, items, windows=w), item_features(rows, ev, windows=w), w)
        >>> f.columns[-4:], f["item_views_1d"].to_list()
        (['item_views_1d', 'item_purchases_1d', 'price', 'discount'], [1])
    """
    if users.height != items.height or not users.select(KEYS).equals(items.select(KEYS)):
        raise DataError(
            "the user and item features are not of the same rows",
            fix="compute both on the same rows (user_features and item_features)",
        )
    return users.hstack(items.drop(KEYS)).select(*KEYS, "category", *feature_columns(windows))


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
    table = cumulative_counts(events, pair, kind)
    out = rows.with_row_index("_i").sort("prediction_time")
    out = last_before(out, table, pair, "prediction_time", {"cum": "_a"})
    out = out.with_columns(_end=pl.col("prediction_time") + horizon).sort("_end")
    out = last_before(out, table, pair, "_end", {"cum": "_b"})
    return (
        out.with_columns(
            label=((pl.col("_b").fill_null(0) - pl.col("_a").fill_null(0)) > 0).cast(pl.Int8)
        )
        .sort("_i")
        .drop("_i", "_a", "_b", "_end")
    )
