"""A synthetic e-commerce clickstream: users with personas, an item catalog, sessions of events.

Deterministic from ``seed``. Users are *browsers* (many short sessions, rarely
buy), *researchers* (view the same item over several sessions, buy mostly when
it is discounted) and *buyers* (few sessions, decide fast). Each user follows
"journeys": a run of sessions spread over days around one item of interest,
ending in a purchase with a probability set by persona, discount and price
(an interaction a linear model cannot express); between journeys they browse
items of their favourite categories. Session starts follow a diurnal (evening
peak) and weekly (weekend peak) pattern; events inside a session are a minute
or two apart. Purchases are about 1% of events: a realistic, extreme imbalance.

Event types: ``view``, ``add_to_cart``, ``remove_from_cart``, ``purchase``.

Example:
    >>> data = make_clickstream(seed=0, num_users=200, num_items=50, num_days=20)
    >>> sorted(data.events["event_type"].unique().to_list())
    ['add_to_cart', 'purchase', 'remove_from_cart', 'view']
    >>> sorted(data.users["persona"].unique().to_list())
    ['browser', 'buyer', 'researcher']
    >>> data.events.equals(make_clickstream(seed=0, num_users=200, num_items=50, num_days=20).events)
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import polars as pl

__all__ = ["EVENT_TYPES", "PERSONAS", "Clickstream", "clickstream_frame", "make_clickstream"]

EVENT_TYPES = ("view", "add_to_cart", "remove_from_cart", "purchase")

# persona → share of users, journeys per 30 days, sessions per journey (mean), browse sessions
# per 30 days, base purchase log-odds, extra log-odds when the item is discounted, price effect
PERSONAS: dict[str, dict[str, float]] = {
    "browser": {
        "share": 0.6,
        "journeys": 1.0,
        "sessions": 1.5,
        "browse": 6.0,
        "base": -3.0,
        "discount": 0.5,
        "price": -0.8,
    },
    "researcher": {
        "share": 0.3,
        "journeys": 1.5,
        "sessions": 4.0,
        "browse": 3.0,
        "base": -3.0,
        "discount": 4.5,
        "price": 0.0,
    },
    "buyer": {
        "share": 0.1,
        "journeys": 2.5,
        "sessions": 2.0,
        "browse": 1.5,
        "base": 0.5,
        "discount": 0.3,
        "price": 0.0,
    },
}
_CATEGORIES = (
    "electronics",
    "fashion",
    "home",
    "beauty",
    "sports",
    "books",
    "toys",
    "grocery",
)
# hour-of-day weights (evening peak) and day-of-week weights (Mon..Sun, weekend peak)
_HOURS = np.array(
    [
        1,
        0.6,
        0.4,
        0.3,
        0.3,
        0.5,
        1,
        2,
        3,
        3.5,
        3.5,
        4,
        4.5,
        4,
        3.5,
        3.5,
        4,
        4.5,
        5.5,
        7,
        8,
        7,
        4.5,
        2.5,
    ]
)
_WEEKDAYS = np.array([0.9, 0.85, 0.85, 0.9, 1.0, 1.35, 1.3])


@dataclass(frozen=True)
class Clickstream:
    """Users (persona and behaviour parameters), items (category, price, discount), events."""

    users: pl.DataFrame
    items: pl.DataFrame
    events: pl.DataFrame


def _items(rng: np.random.Generator, num_items: int) -> pl.DataFrame:
    cat = rng.choice(len(_CATEGORIES), size=num_items, p=np.linspace(2, 1, len(_CATEGORIES)) / 12)
    base_price = np.array([250, 45, 60, 25, 70, 15, 30, 8])[cat]
    price = np.round(base_price * rng.lognormal(0, 0.5, num_items), 2)
    discount = np.where(
        rng.random(num_items) < 0.3, rng.choice([0.1, 0.2, 0.3, 0.5], num_items), 0.0
    )
    popularity = rng.zipf(1.6, num_items).clip(max=50).astype(float)
    return pl.DataFrame(
        {
            "item_id": [f"i{i:05d}" for i in range(num_items)],
            "category": [_CATEGORIES[c] for c in cat],
            "price": price,
            "discount": discount,
            "popularity": popularity,
        }
    )


def _users(rng: np.random.Generator, num_users: int) -> pl.DataFrame:
    names = list(PERSONAS)
    persona = rng.choice(len(names), size=num_users, p=[PERSONAS[n]["share"] for n in names])
    return pl.DataFrame(
        {
            "user_id": [f"u{i:06d}" for i in range(num_users)],
            "persona": [names[p] for p in persona],
            "activity": rng.gamma(4.0, 0.25, num_users),
            "favourite_category": rng.integers(0, len(_CATEGORIES), num_users),
        }
    )


def _pick_items(
    rng: np.random.Generator, fav: np.ndarray, items: pl.DataFrame, focus: float
) -> np.ndarray:
    """An item index per row: from the favourite category with probability ``focus``."""
    cats = np.array([_CATEGORIES.index(c) for c in items["category"]])
    pop = items["popularity"].to_numpy()
    out = rng.choice(len(cats), size=len(fav), p=pop / pop.sum())
    by_cat = [np.flatnonzero(cats == c) for c in range(len(_CATEGORIES))]
    use_fav = rng.random(len(fav)) < focus
    for c, members in enumerate(by_cat):
        sel = np.flatnonzero(use_fav & (fav == c))
        if len(members) and len(sel):
            w = pop[members] / pop[members].sum()
            out[sel] = members[rng.choice(len(members), size=len(sel), p=w)]
    return out


def _session_starts(
    rng: np.random.Generator, day: np.ndarray, num_days: int, start: datetime
) -> np.ndarray:
    """Session start (µs since epoch) on ``day`` at a diurnal hour; weekly thinning via -1."""
    weekday = (np.array(start.weekday()) + day) % 7
    keep = rng.random(len(day)) < _WEEKDAYS[weekday] / _WEEKDAYS.max()
    hour = rng.choice(24, size=len(day), p=_HOURS / _HOURS.sum())
    seconds = day * 86400 + hour * 3600 + rng.integers(0, 3600, len(day))
    origin = int((start - datetime(1970, 1, 1)).total_seconds()) * 1_000_000
    out = origin + seconds.astype(np.int64) * 1_000_000
    return np.where(keep & (day < num_days) & (day >= 0), out, -1)


def make_clickstream(
    *,
    seed: int = 0,
    num_users: int = 2_000,
    num_items: int = 300,
    num_days: int = 60,
    start_date: str | date = "2024-08-01",
) -> Clickstream:
    """Generate users, items and their clickstream events (sorted by time).

    Example:
        >>> ev = make_clickstream(seed=1, num_users=100, num_items=30, num_days=10).events
        >>> ev.columns
        ['user_id', 'item_id', 'event_type', 'timestamp']
    """
    return _generate(
        seed=seed,
        num_users=num_users,
        num_items=num_items,
        num_days=num_days,
        start_date=start_date,
    )[0]


def _generate(
    *,
    seed: int = 0,
    num_users: int = 2_000,
    num_items: int = 300,
    num_days: int = 60,
    start_date: str | date = "2024-08-01",
) -> tuple[Clickstream, np.ndarray, np.ndarray]:
    """The clickstream and each event's user and item (row numbers in the tables).

    Vectorised throughout: the text columns are gathered from the user and item tables.
    """
    if min(num_users, num_items, num_days) < 1:
        raise TypeError("num_users, num_items and num_days must be at least 1")
    rng = np.random.default_rng(seed)
    start = datetime.combine(date.fromisoformat(str(start_date)), datetime.min.time())
    items = _items(rng, num_items)
    users = _users(rng, num_users)
    persona = users["persona"].to_numpy()
    params = {k: np.array([PERSONAS[p][k] for p in persona]) for k in PERSONAS["buyer"]}
    activity = users["activity"].to_numpy()
    fav = users["favourite_category"].to_numpy()

    # journeys: sessions around one item of interest, maybe ending in a purchase
    n_j = rng.poisson(params["journeys"] * activity * num_days / 30)
    j_user = np.repeat(np.arange(num_users), n_j)
    j_item = _pick_items(rng, fav[j_user], items, focus=0.8)
    j_k = 1 + rng.poisson(params["sessions"][j_user] - 1)
    disc = items["discount"].to_numpy()[j_item] > 0
    price_z = np.log(items["price"].to_numpy()[j_item] / 40)
    logit = (
        params["base"][j_user]
        + params["discount"][j_user] * disc
        + params["price"][j_user] * price_z
        - 1.5 * (~disc & (persona[j_user] == "researcher"))
    )
    j_buy = rng.random(len(j_user)) < 1 / (1 + np.exp(-logit))
    j_start = rng.uniform(-3, num_days, len(j_user))
    s_j = np.repeat(np.arange(len(j_user)), j_k)
    s_pos = np.arange(len(s_j)) - np.repeat(np.cumsum(j_k) - j_k, j_k)
    gaps = rng.exponential(1.5, len(s_j)) * (s_pos > 0)
    cum = np.cumsum(gaps)
    if len(s_j):
        cum -= np.repeat(cum[np.cumsum(j_k) - j_k], j_k)  # days since the journey's first session
    s_day = np.floor(j_start[s_j] + cum).astype(int)
    s_last = s_pos == j_k[s_j] - 1
    s_time = _session_starts(rng, s_day, num_days, start)
    late = (s_pos + 1) / j_k[s_j]
    s_user = j_user[s_j]
    s_buy = j_buy[s_j] & s_last
    # intent before a purchase: journeys that end in one cart (and keep) the item more often
    p_cart = late * (0.15 + 0.35 * j_buy[s_j]) * (1 + (persona[s_user] == "buyer"))
    s_cart = s_buy | (rng.random(len(s_j)) < p_cart)
    s_remove = s_cart & ~s_buy & (rng.random(len(s_j)) < np.where(j_buy[s_j], 0.2, 0.6))
    s_focus_views = 1 + rng.poisson(0.3 + (persona[s_user] == "researcher") * 0.8, len(s_j))
    s_browse = rng.poisson(1.5, len(s_j))
    s_item = j_item[s_j]

    # browse sessions: views of favourite-category items, rarely a cart that is removed
    n_b = rng.poisson(params["browse"] * activity * num_days / 30)
    b_user = np.repeat(np.arange(num_users), n_b)
    b_time = _session_starts(rng, rng.integers(0, num_days, len(b_user)), num_days, start)
    b_item = _pick_items(rng, fav[b_user], items, focus=0.6)
    b_cart = rng.random(len(b_user)) < 0.04
    b_views = 1 + rng.poisson(0.4, len(b_user))
    b_browse = rng.poisson(2.5, len(b_user))

    sess_user = np.concatenate([s_user, b_user])
    sess_time = np.concatenate([s_time, b_time])
    sess_item = np.concatenate([s_item, b_item])
    views = np.concatenate([s_focus_views, b_views])
    browse = np.concatenate([s_browse, b_browse])
    cart = np.concatenate([s_cart, b_cart])
    remove = np.concatenate([s_remove, b_cart])
    buy = np.concatenate([s_buy, np.zeros(len(b_user), dtype=bool)])
    ok = sess_time >= 0
    sess_user, sess_time, sess_item = sess_user[ok], sess_time[ok], sess_item[ok]
    views, browse, cart, remove, buy = views[ok], browse[ok], cart[ok], remove[ok], buy[ok]
    n_sess = len(sess_user)

    # events: views (focus item and browsed items, shuffled), then cart, removal, purchase
    sid = np.arange(n_sess)
    v_sid = np.repeat(sid, views)
    b_sid = np.repeat(sid, browse)
    b_items = _pick_items(rng, fav[sess_user[b_sid]], items, focus=0.7)
    parts = [
        (v_sid, sess_item[v_sid], 0, rng.random(len(v_sid))),
        (b_sid, b_items, 0, rng.random(len(b_sid))),
        (sid[cart], sess_item[cart], 1, np.full(int(cart.sum()), 2.0)),
        (sid[remove], sess_item[remove], 2, np.full(int(remove.sum()), 3.0)),
        (sid[buy], sess_item[buy], 3, np.full(int(buy.sum()), 4.0)),
    ]
    e_sid = np.concatenate([p[0] for p in parts])
    e_item = np.concatenate([p[1] for p in parts])
    e_kind = np.concatenate([np.full(len(p[0]), p[2]) for p in parts])
    e_order = np.concatenate([p[3] for p in parts])
    order = np.lexsort((e_order, e_sid))
    e_sid, e_item, e_kind = e_sid[order], e_item[order], e_kind[order]
    gap_us = (rng.exponential(75, len(e_sid)) + 5).astype(np.int64) * 1_000_000
    first = np.r_[True, e_sid[1:] != e_sid[:-1]] if len(e_sid) else np.zeros(0, bool)
    gap_us[first] = 0
    cum_us = np.cumsum(gap_us)
    starts = np.flatnonzero(first)
    cum_us -= np.repeat(cum_us[starts], np.diff(np.r_[starts, len(e_sid)]))
    ts = sess_time[e_sid] + cum_us
    e_user = sess_user[e_sid]
    # sorted by time, then user id (the ids' text order is their number's up to 10^6 users),
    # ties in generation order; text columns gathered from the small tables last
    if num_users <= 1_000_000:
        order = np.lexsort((e_user, ts))
    else:
        order = np.lexsort((users["user_id"].to_numpy()[e_user], ts))
    e_user, e_item, e_kind, ts = e_user[order], e_item[order], e_kind[order], ts[order]
    events = pl.DataFrame(
        {
            "user_id": users["user_id"].gather(pl.Series(e_user)),
            "item_id": items["item_id"].gather(pl.Series(e_item)),
            "event_type": pl.Series(EVENT_TYPES).gather(pl.Series(e_kind)),
            "timestamp": pl.Series(ts).cast(pl.Datetime("us")),
        }
    )
    users = users.with_columns(
        pl.col("favourite_category").replace_strict(
            list(range(len(_CATEGORIES))), list(_CATEGORIES), return_dtype=pl.String
        )
    )
    return Clickstream(users=users, items=items.drop("popularity"), events=events), e_user, e_item


def clickstream_frame(seed: int = 0, **options: object) -> pl.DataFrame:
    """The events with each item's category, price and discount and each user's persona.

    This is what ``source: {kind: synthetic, generator: clickstream}`` reads.

    Example:
        >>> clickstream_frame(seed=0, num_users=50, num_items=20, num_days=7).columns
        ['user_id', 'item_id', 'event_type', 'timestamp', 'category', 'price', 'discount', 'persona']
    """
    data, user, item = _generate(seed=seed, **options)  # type: ignore[arg-type]
    at_item, at_user = pl.Series(item), pl.Series(user)
    return data.events.with_columns(
        data.items[c].gather(at_item) for c in ("category", "price", "discount")
    ).with_columns(data.users["persona"].gather(at_user))
