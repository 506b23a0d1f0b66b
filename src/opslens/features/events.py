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

The features come in two parts: :func:`user_features` (everything that depends only on
the row's own user's events: the user, the user-item pair, the user-category, the
sessions; and the item's price, discount and category) and :func:`item_features` (the
item's popularity, from everyone's events). Each is exact on any subset of users (items),
so the first can run in buckets of users with bounded memory;
:func:`point_in_time_features` is the two side by side.

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

import copy
from collections.abc import Sequence
from datetime import timedelta

import numpy as np
import polars as pl

from opslens.errors import DataError
from opslens.features._session_kernel import session_columns

__all__ = [
    "EVENT_KINDS",
    "FEATURE_COLUMNS",
    "candidate_rows",
    "feature_columns",
    "item_features",
    "item_popularity",
    "join_features",
    "label_rows",
    "point_in_time_features",
    "sessionize",
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
    text by hash; several keys by the first, then the next) and in time order
    within a key, ties in input order.

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
    fast = _sessionize_sorted_codes(events, keys, gap, time)
    if fast is not None:
        return fast
    return _sessionize_plain(events, keys, gap, time)


_PER_SECOND = {"ns": 1_000_000_000, "us": 1_000_000, "ms": 1_000}


def _key_codes(events: pl.DataFrame, keys: list[str]) -> tuple[np.ndarray, list[bool]] | None:
    """One non-negative integer per row ordering the keys (integers ascending, text by hash,
    several keys by the first, then the next); ``None`` when they do not fit in 40 bits.

    The second value says, per key, whether its codes are hashes (a collision is possible).
    """
    code: np.ndarray | None = None
    hashed: list[bool] = []
    for key in keys:
        col = events[key]
        if col.dtype.is_integer():
            low, high = int(col.min()), int(col.max())  # type: ignore[arg-type]
            c = (col.cast(pl.Int64) - low).to_numpy()
            n_codes = high - low + 1
            hashed.append(False)
        else:  # text: number the keys by their (seeded, deterministic) hash, far cheaper than text
            h = col.hash(_HASH_SEED)
            levels = h.unique().sort()
            n_codes = levels.len()
            c = h.replace_strict(
                levels, pl.int_range(n_codes, eager=True), return_dtype=pl.Int64
            ).to_numpy()
            hashed.append(True)
        if code is None:
            code = c
        else:
            if int(code.max()) * n_codes + n_codes > 1 << 40:
                return None
            code = code * n_codes + c
    assert code is not None
    if int(code.max()).bit_length() > 40:
        return None
    return code, hashed


def _sort_order(code: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Positions sorted by (code, t), ties in input order, and the sorted codes; ``None`` if
    already sorted.

    One ``np.sort`` of packed integers (code, time, row), several times faster than an
    arg-sort: when the time does not fit next to the row number it is coarsened, and rows
    sharing a coarse (code, time) are then put in exact order among themselves.
    """
    n = len(code)
    dc = np.diff(code)
    if (dc >= 0).all() and (np.diff(t)[dc == 0] >= 0).all():
        return None
    row_bits = max(1, (n - 1).bit_length())
    code_bits = int(code.max()).bit_length()
    rel = t - t.min()
    if (np.diff(t) >= 0).all():  # time already ascending: a stable sort by code is enough
        rel = np.zeros(n, dtype=np.int64)
    t_bits = 63 - row_bits - code_bits
    if t_bits < 8:
        by = np.lexsort((np.arange(n), t, code))
        return by, code[by]
    coarse = max(0, int(rel.max()).bit_length() - t_bits)
    packed = (code << (t_bits + row_bits)) | ((rel >> coarse) << row_bits) | np.arange(n)
    packed.sort()
    order: np.ndarray = packed & ((1 << row_bits) - 1)
    if coarse:
        group = packed >> row_bits
        same = group[1:] == group[:-1]
        if same.any():
            mark = np.zeros(n, dtype=bool)
            mark[1:] |= same
            mark[:-1] |= same
            at = np.flatnonzero(mark)
            sub = order[at]
            order[at] = sub[np.lexsort((sub, t[sub], group[at]))]
    return order, packed >> (t_bits + row_bits)  # the codes, read off the sorted packing


def _sessionize_sorted_codes(
    events: pl.DataFrame, keys: list[str], gap: timedelta, time: str
) -> pl.DataFrame | None:
    """Sessions with integer codes, one packed sort and one compiled pass over the sorted
    rows; ``None`` where it does not apply (no rows, nulls, a time that is not a datetime,
    too many keys or a hash collision).

    ``session_id`` text is assembled from small tables (each key's text, each index's
    ``-<i>``) rather than formatted 10^7 times.
    """
    dtype = events.schema.get(time)
    if events.height == 0 or not isinstance(dtype, pl.Datetime):
        return None
    if any(events[c].null_count() for c in [*keys, time]):
        return None
    coded = _key_codes(events, keys)
    if coded is None:
        return None
    code, hashed = coded
    texts = [k for k, is_hash in zip(keys, hashed, strict=True) if is_hash]
    for key in texts:  # two texts sharing a hash (about 1e-9 at 200,000 keys): sort plainly
        # a second, independent hash must be the same on every row of a code
        second = events[key].hash(_HASH_SEED + 1).to_numpy()
        per_code = np.zeros(int(code.max()) + 1, dtype=second.dtype)
        per_code[code] = second
        if not np.array_equal(per_code[code], second):
            return None
    t = events[time].to_physical().to_numpy()
    sorting = _sort_order(code, t)
    n = events.height
    order = None if sorting is None else sorting[0]
    rows = np.arange(n) if order is None else order
    if sorting is not None:
        code = sorting[1]
    key_change = np.empty(n, dtype=bool)
    key_change[0] = True
    np.not_equal(code[1:], code[:-1], out=key_change[1:])
    key_rank = pl.Series(np.cumsum(key_change) - 1)
    at_key = pl.Series(rows[np.flatnonzero(key_change)])  # each key's first row (input order)
    # text keys: one value per key, repeated (cheaper than gathering 10^7 texts)
    sorted_keys = {k: events[k].gather(at_key).gather(key_rank) for k in texts}
    rest = [c for c in events.columns if c not in sorted_keys]
    moved = events.select(rest) if order is None else events.select(rest)[pl.Series(order)]
    out = pl.DataFrame([sorted_keys[c] if c in sorted_keys else moved[c] for c in events.columns])
    if order is not None:
        t = out[time].to_physical().to_numpy()  # the sorted times, already gathered
    per_second = _PER_SECOND[dtype.time_unit]
    gap_units = gap * per_second // timedelta(seconds=1)  # gap in the time's unit, rounded down
    if "event_type" in out.columns:
        cart = (out["event_type"] == "add_to_cart").fill_null(False).to_numpy()
    else:
        cart = np.zeros(n, dtype=bool)
    index, start, end, n_events, event, carts, seconds = session_columns(
        key_change,
        t,
        gap_units,
        cart,
        1 / per_second,  # seconds as polars' ``total_seconds``
    )
    text = [
        sorted_keys[k]
        if k in sorted_keys
        else events[k].gather(at_key).cast(pl.String).gather(key_rank)
        for k in keys
    ]
    suffix = pl.Series([f"-{i}" for i in range(int(index.max()) + 1)]).gather(pl.Series(index))
    label = text[0]
    for part in text[1:]:
        label = label + "-" + part
    columns = [
        pl.Series("session_index", index),
        (label + suffix).alias("session_id"),
        pl.Series("session_start", start).cast(dtype),
        pl.Series("session_end", end).cast(dtype),
        pl.Series("session_events", n_events),
        pl.Series("session_event", event),
    ]
    if "event_type" in out.columns:
        columns.append(pl.Series("session_carts", carts))
    columns.append(pl.Series("session_seconds", seconds))
    return out.with_columns(columns)


def _sessionize_plain(
    events: pl.DataFrame, keys: list[str], gap: timedelta, time: str
) -> pl.DataFrame:
    """Sessions by a plain sort and fills over the sorted rows (nulls, several wide keys)."""
    out = events.sort([*keys, time], maintain_order=True)
    # sorted by key and time: the first event of a key, or a gap over ``gap``, starts a session.
    # Per-session columns are forward/backward fills over the sorted rows, not group-wise
    # ``over()`` windows: with millions of sessions those were 10x slower than the sort.
    first_of_key = pl.any_horizontal(
        pl.int_range(pl.len()) == 0, *(pl.col(k).ne_missing(pl.col(k).shift()) for k in keys)
    )
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
    # in time order, a running sum per key is the cumulative count (no sort by the keys)
    return (
        ev.group_by(*keys, "timestamp")
        .len()
        .sort("timestamp")
        .with_columns(cum=pl.col("len").cum_sum().over(keys).cast(pl.Int64))
        .drop("len")
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


def _label(w: timedelta) -> str:
    seconds = int(w.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


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


_WINDOWS = (timedelta(days=1), timedelta(days=7), timedelta(days=30))
_KEYS = ["user_id", "item_id", "prediction_time"]


class _Past:
    """Events strictly before each row's time, per integer key, by one ``np.searchsorted``.

    Every time involved (the events', the rows' and each window's start) is replaced by its
    rank among them all, so (key, time) packs into one sortable integer; a table holds one
    entry per key and time, sorted, and a row's entry is the last one packed below its own.
    """

    def __init__(self, ev: pl.DataFrame, out: pl.DataFrame, keys: list[str], shifts: list[int]):
        t = ev["timestamp"].cast(pl.Datetime("us")).to_physical().to_numpy()
        self.at = out["prediction_time"].to_physical().to_numpy()
        self.times = np.unique(np.concatenate([t, *(self.at - s for s in shifts), self.at]))
        self.bits = max(1, len(self.times).bit_length())
        self.ev = ev.with_columns(_r=pl.Series(np.searchsorted(self.times, t)))
        self.rank = {s: np.searchsorted(self.times, self.at - s) for s in [0, *shifts]}
        self.keys: dict[str, np.ndarray] = {}
        for key in keys:
            high = max(int(ev[key].max() or 0), int(out[key].max() or 0))  # type: ignore[arg-type]
            if high.bit_length() + self.bits > 62:  # number the keys densely
                both = pl.concat([ev[key], out[key]]).drop_nulls().unique().sort()
                ev_k, out_k = (
                    f[key].replace_strict(both, pl.int_range(both.len(), eager=True), default=None)
                    for f in (ev, out)
                )
                self.ev = self.ev.with_columns(ev_k.cast(pl.Int64).alias(key))
                out = out.with_columns(out_k.cast(pl.Int64).alias(key))
            self.keys[key] = out[key].fill_null(-1).to_numpy()

    def only(self, predicate: pl.Expr) -> _Past:
        """The same rows and times, of the events matching ``predicate``."""
        other = copy.copy(self)
        other.ev = self.ev.filter(predicate)
        return other

    def table(self, key: str, kind: str | None, **aggs: pl.Expr) -> pl.DataFrame:
        """One row per key and time of the events of ``kind``: ``_c`` (packed, sorted), ``_r``,
        ``cum`` (the key's events up to and including it) and ``aggs``."""
        ev = self.ev if kind is None else self.ev.filter(pl.col("event_type") == kind)
        g = (
            ev.filter(pl.col(key).is_not_null())
            .group_by(key, "_r")
            .agg(pl.len().alias("_len"), **aggs)
            .with_columns(_c=pl.col(key) * (1 << self.bits) + pl.col("_r"))
            .sort("_c")
        )
        n, k = g["_len"].to_numpy(), g[key].to_numpy()
        total = np.cumsum(n, dtype=np.int64)
        first = np.ones(len(k), dtype=bool)
        first[1:] = k[1:] != k[:-1]
        before = np.maximum.accumulate(np.where(first, total - n, 0))
        return g.with_columns(cum=pl.Series(total - before))

    def find(self, table: pl.DataFrame, key: str, shift: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Each row's last table entry strictly before its time minus ``shift``: (index, found)."""
        k = self.keys[key]
        packed = table["_c"].to_numpy()
        at = np.searchsorted(packed, (k << self.bits) | self.rank[shift], side="left") - 1
        safe = np.maximum(at, 0)
        found = (at >= 0) & (k >= 0)
        if len(packed):
            found &= table[key].to_numpy()[safe] == k
        else:
            found[:] = False
        return safe, found

    def count(self, table: pl.DataFrame, key: str, shift: int = 0) -> np.ndarray:
        safe, found = self.find(table, key, shift)
        cum = table["cum"].to_numpy()
        return np.where(found, cum[safe] if len(cum) else 0, 0).astype(np.int64)

    def hours_since(self, table: pl.DataFrame, key: str, cap: float) -> np.ndarray:
        safe, found = self.find(table, key)
        last = self.times[table["_r"].to_numpy()[safe]] if table.height else self.at
        # polars' division, as the features were always computed (numpy's differs in the last bit)
        hours = np.where(found, (pl.Series(self.at - last) / _HOUR_US).to_numpy(), cap)
        return np.minimum(hours, cap)  # type: ignore[no-any-return]

    def windows(
        self, table: pl.DataFrame, key: str, name: str, windows: Sequence[timedelta], total: bool
    ) -> dict[str, np.ndarray]:
        """``name`` (every event before t) and ``name_<w>`` (events in [t - w, t))."""
        every = self.count(table, key)
        out = {f"{name}_{_label(w)}": every - self.count(table, key, _us(w)) for w in windows}
        return {name: every, **out} if total else out


def _us(w: timedelta) -> int:
    return w // timedelta(microseconds=1)


def _item_columns(windows: Sequence[timedelta]) -> list[str]:
    w = [_label(x) for x in windows]
    return [f"item_views_{x}" for x in w] + [f"item_purchases_{x}" for x in w]


def _prediction_rows(rows: pl.DataFrame) -> pl.DataFrame:
    return rows.select(
        "user_id", "item_id", pl.col("prediction_time").cast(pl.Datetime("us"))
    ).sort("prediction_time")


def _codes(frames: Sequence[pl.DataFrame], column: str, name: str) -> list[pl.DataFrame]:
    """``name``: an integer per distinct text of ``column``, the same in all ``frames`` (null
    stays null); joins and groups on integers are several times faster than on text."""
    values = pl.concat([f[column].cast(pl.String) for f in frames]).drop_nulls().unique()
    kind = pl.Enum(values)
    code = pl.col(column).cast(pl.String).cast(kind).to_physical().cast(pl.Int64).alias(name)
    return [f.with_columns(code) for f in frames]


def _with_codes(*frames: pl.DataFrame) -> list[pl.DataFrame]:
    """``_user``, ``_pair`` (user, item) and ``_user_category`` integer keys (null if a part is)."""
    coded = list(frames)
    for column, name in (("user_id", "_user"), ("item_id", "_i"), ("category", "_c")):
        coded = _codes(coded, column, name)
    n_items = 1 + max(int(f["_i"].max() or 0) for f in coded)  # type: ignore[arg-type]
    n_cats = 1 + max(int(f["_c"].max() or 0) for f in coded)  # type: ignore[arg-type]
    keys = (
        (pl.col("_user") * n_items + pl.col("_i")).alias("_pair"),
        (pl.col("_user") * n_cats + pl.col("_c")).alias("_user_category"),
    )
    return [f.with_columns(keys).drop("_i", "_c") for f in coded]


def user_features(
    rows: pl.DataFrame,
    events: pl.DataFrame,
    items: pl.DataFrame,
    *,
    windows: Sequence[timedelta] = _WINDOWS,
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
    ev, out = _with_codes(
        events.select(*used, "session_carts").join(
            items.select("item_id", "category"), on="item_id", how="left"
        ),
        _prediction_rows(rows).join(
            items.select("item_id", "category", "price", "discount"), on="item_id", how="left"
        ),
    )
    user, pair, cat = "_user", "_pair", "_user_category"
    past = _Past(ev, out, [user, pair, cat], [_us(w) for w in wins])
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
    item_cols = set(_item_columns(wins))
    cols = [c for c in feature_columns(wins) if c not in item_cols]
    return (
        out.with_columns(
            pl.col("price").cast(pl.Float64).fill_null(0.0),
            pl.col("discount").cast(pl.Float64).fill_null(0.0),
            pl.col("category").fill_null("unknown"),
        )
        .select(*_KEYS, "category", *cols)
        .sort("prediction_time", "user_id", "item_id")
    )


def _counts_between(
    key: np.ndarray, t: np.ndarray, q_key: np.ndarray, q_t: np.ndarray, shift: int
) -> np.ndarray:
    """Per query, the events of its key with ``q_t - shift <= t < q_t``: one sort of the events
    packed as (key, time), two ``np.searchsorted`` (times as ranks if they do not fit).

    Item popularity counts everyone's events, so it does not go through :class:`_Past`'s
    per-(key, time) tables: on 8.3 million events that was 8x slower and twice the memory.
    """
    low = min(int(t.min()) if len(t) else 0, int(q_t.min()) - shift)
    if len(t) == 0:
        return np.zeros(len(q_key), dtype=np.int64)
    t_rel, q_rel = t - low, q_t - low
    high = max(int(t_rel.max()), int(q_rel.max()))
    key_bits = max(1, int(max(key.max(), q_key.max())).bit_length())
    if key_bits + high.bit_length() > 62:  # rank the times instead (a sort of all of them)
        times = np.unique(np.concatenate([t_rel, q_rel, q_rel - shift]))
        t_rel, q_rel = np.searchsorted(times, t_rel), np.searchsorted(times, q_rel)
        q_from = np.searchsorted(times, q_t - low - shift)
        bits = max(1, len(times).bit_length())
    else:
        q_from = q_rel - shift
        bits = high.bit_length()
    packed = np.sort((key << bits) | t_rel)
    upto = np.searchsorted(packed, (q_key << bits) | q_rel, side="left")
    since = np.searchsorted(packed, (q_key << bits) | q_from, side="left")
    return (upto - since).astype(np.int64)  # type: ignore[no-any-return]


def item_popularity(
    points: pl.DataFrame,
    events: pl.DataFrame,
    *,
    windows: Sequence[timedelta] = _WINDOWS,
) -> pl.DataFrame:
    """``item_views_<w>`` and ``item_purchases_<w>`` of each distinct (item_id,
    prediction_time) in ``points``: the item's views and purchases by anyone in ``[t - w, t)``.

    One row per distinct point (sorted by prediction time and item): with a handful of
    prediction times it is small, so it can be computed once and joined to any rows.

    Example:
        >>> from datetime import datetime
        >>> ev = pl.DataFrame({"item_id": ["x", "x"], "event_type": ["view", "view"],
        ...     "timestamp": [datetime(2024, 1, 1), datetime(2024, 1, 3)]})
        >>> pts = pl.DataFrame({"item_id": ["x", "x"],
        ...     "prediction_time": [datetime(2024, 1, 2), datetime(2024, 1, 4)]})
        >>> item_popularity(pts, ev, windows=[timedelta(days=3)])["item_views_3d"].to_list()
        [1, 2]
    """
    wins = list(windows)
    pts = (
        points.select("item_id", pl.col("prediction_time").cast(pl.Datetime("us")))
        .unique()
        .sort("prediction_time", "item_id")
    )
    pts, ev = _codes([pts, events.select("item_id", "event_type", "timestamp")], "item_id", "_item")
    q_key = pts["_item"].fill_null(-1).to_numpy()
    q_t = pts["prediction_time"].to_physical().to_numpy()
    found = q_key >= 0
    counts: dict[str, np.ndarray] = {}
    for kind, name in (("view", "item_views"), ("purchase", "item_purchases")):
        sub = ev.select("_item", "timestamp", "event_type").filter(
            (pl.col("event_type") == kind) & pl.col("_item").is_not_null()
        )
        key = sub["_item"].to_numpy()
        t = sub["timestamp"].cast(pl.Datetime("us")).to_physical().to_numpy()
        del sub
        for w in wins:
            n = _counts_between(key, t, np.maximum(q_key, 0), q_t, _us(w))
            counts[f"{name}_{_label(w)}"] = np.where(found, n, 0)
    return pts.select("item_id", "prediction_time").with_columns(
        pl.Series(k, v) for k, v in counts.items()
    )


def item_features(
    rows: pl.DataFrame,
    events: pl.DataFrame,
    *,
    windows: Sequence[timedelta] = _WINDOWS,
) -> pl.DataFrame:
    """The item popularity of each row: ``item_views_<w>`` and ``item_purchases_<w>``, the
    item's views and purchases by anyone in ``[t - w, t)``.

    They depend only on the item's events: run on the rows and events of any subset of
    items it gives exactly those items' rows of the whole. Computed once per distinct
    (item, prediction time) (:func:`item_popularity`), so the cost hardly grows with the
    rows. Columns: the keys and the counts; sorted by prediction time, user and item.

    Example:
        >>> from datetime import datetime
        >>> ev = pl.DataFrame({"user_id": ["a", "b", "b"], "item_id": ["x", "x", "y"],
        ...     "event_type": ["view", "purchase", "view"],
        ...     "timestamp": [datetime(2024, 1, 1, h) for h in (1, 2, 3)]})
        >>> rows = pl.DataFrame({"user_id": ["c", "c"], "item_id": ["x", "y"],
        ...     "prediction_time": [datetime(2024, 1, 1, 3)] * 2})
        >>> f = item_features(rows, ev, windows=[timedelta(days=1)])
        >>> f["item_views_1d"].to_list(), f["item_purchases_1d"].to_list()
        ([1, 0], [1, 0])
    """
    keys = _prediction_rows(rows).sort("prediction_time", "user_id", "item_id")
    return with_popularity(keys, item_popularity(keys, events, windows=windows), windows)


def with_popularity(
    rows: pl.DataFrame, popularity: pl.DataFrame, windows: Sequence[timedelta] = _WINDOWS
) -> pl.DataFrame:
    """The keys of ``rows`` (in their order) and their item popularity, looked up in a table of
    :func:`item_popularity` (a point missing from it counts 0).

    Example:
        >>> from datetime import datetime
        >>> t = datetime(2024, 1, 2)
        >>> pop = pl.DataFrame({"item_id": ["x"], "prediction_time": [t], "item_views_1d": [4],
        ...     "item_purchases_1d": [1]})
        >>> rows = pl.DataFrame({"user_id": ["a", "b"], "item_id": ["x", "y"], "prediction_time": [t, t]})
        >>> with_popularity(rows, pop, [timedelta(days=1)])["item_views_1d"].to_list()
        [4, 0]
    """
    cols = _item_columns(windows)
    on = ["item_id", "prediction_time"]
    return (
        rows.select(_KEYS)
        .join(popularity.select(*on, *cols), on=on, how="left", maintain_order="left")
        .with_columns(pl.col(c).fill_null(0).cast(pl.Int64) for c in cols)
    )


def point_in_time_features(
    rows: pl.DataFrame,
    events: pl.DataFrame,
    items: pl.DataFrame,
    *,
    windows: Sequence[timedelta] = _WINDOWS,
    recency_cap_hours: float = 24 * 90,
) -> pl.DataFrame:
    """Features of each (user_id, item_id, prediction_time) row from events strictly before it.

    ``events`` must hold the session columns of :func:`sessionize`; ``items`` holds
    ``item_id``, ``category``, ``price``, ``discount``. The result is sorted by
    prediction time, user and item, with ``category`` and :func:`feature_columns`:
    :func:`user_features` and :func:`item_features` side by side (joined on the keys).

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
    users = user_features(rows, events, items, windows=wins, recency_cap_hours=recency_cap_hours)
    return join_features(users, item_features(rows, events, windows=wins), wins)


def join_features(
    users: pl.DataFrame, items: pl.DataFrame, windows: Sequence[timedelta] = _WINDOWS
) -> pl.DataFrame:
    """:func:`user_features` and :func:`item_features` of the same rows as one frame, the
    columns of :func:`point_in_time_features`.

    Both come sorted by the keys, and the features of equal keys are equal, so the item
    columns are put beside the user columns row by row (also right for repeated rows).

    Example:
        >>> from datetime import datetime
        >>> ev = sessionize(pl.DataFrame({"user_id": ["a"], "item_id": ["x"], "event_type": ["view"],
        ...     "timestamp": [datetime(2024, 1, 1)]}))
        >>> items = pl.DataFrame({"item_id": ["x"], "category": ["c"], "price": [9.0], "discount": [0.0]})
        >>> rows = pl.DataFrame({"user_id": ["a"], "item_id": ["x"], "prediction_time": [datetime(2024, 1, 2)]})
        >>> w = [timedelta(days=1)]
        >>> f = join_features(user_features(rows, ev, items, windows=w), item_features(rows, ev, windows=w), w)
        >>> f.columns[-4:], f["item_views_1d"].to_list()
        (['item_views_1d', 'item_purchases_1d', 'price', 'discount'], [1])
    """
    if users.height != items.height or not users.select(_KEYS).equals(items.select(_KEYS)):
        raise DataError(
            "the user and item features are not of the same rows",
            fix="compute both on the same rows (user_features and item_features)",
        )
    return users.hstack(items.drop(_KEYS)).select(*_KEYS, "category", *feature_columns(windows))


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
