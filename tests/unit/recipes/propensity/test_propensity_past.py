"""Propensity's counting kernels (``_past``) against the straightforward definitions: every
count, lookup and recency the same bit for bit, on random data with ties, equal timestamps,
keys with one event, rows whose key has no event and null keys."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl
import pytest

from opslens.recipes.propensity._past import HOUR_US, Past, counts_between, sorted_unique

SHIFTS = [0, 5, 60, 61, 400]


def _data(seed: int, big_keys: bool = False) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Events on a coarse clock (many equal timestamps), rows at times that are often event
    times exactly, keys 0..29 (some with one event, some with none), a few null row keys."""
    rng = np.random.default_rng(seed)
    n_ev, n_rows = int(rng.integers(1, 400)), int(rng.integers(1, 300))
    key = rng.integers(0, 20, n_ev)
    key[: min(3, n_ev)] = [25, 26, 27][: min(3, n_ev)]  # keys with one event each
    ts = rng.integers(0, 40, n_ev) * 15  # minutes: many ties
    row_key = rng.integers(0, 30, n_rows).astype(object)  # 20..24, 28, 29: no event
    row_key[rng.random(n_rows) < 0.05] = None
    row_t = np.where(
        rng.random(n_rows) < 0.5, rng.integers(0, 40, n_rows) * 15, rng.integers(0, 700, n_rows)
    )
    offset = 2**55 if big_keys else 0  # keys too wide to pack beside the times
    t0 = datetime(2024, 1, 1)
    ev = pl.DataFrame(
        {
            "k": (key + offset).astype(np.int64),
            "event_type": rng.choice(["view", "purchase"], n_ev),
            "timestamp": [t0] * n_ev,
        }
    ).with_columns(pl.col("timestamp") + pl.Series(ts * 60_000_000).cast(pl.Duration("us")))
    rows = pl.DataFrame(
        {"k": pl.Series([None if k is None else k + offset for k in row_key], dtype=pl.Int64)}
    ).with_columns(
        prediction_time=pl.lit(t0).cast(pl.Datetime("us"))
        + pl.Series(row_t * 60_000_000).cast(pl.Duration("us"))
    )
    return ev, rows.sort("prediction_time")


def _plain_count(ev: pl.DataFrame, rows: pl.DataFrame, shift: int, through: bool) -> np.ndarray:
    """Per row, its key's events with timestamp < t - shift (<= if ``through``), one by one."""
    key, ts = ev["k"].to_numpy(), ev["timestamp"].to_physical().to_numpy()
    out = []
    for k, t in zip(
        rows["k"].to_list(), rows["prediction_time"].to_physical().to_list(), strict=True
    ):
        end = t - shift
        seen = (ts <= end) if through else (ts < end)
        out.append(0 if k is None else int(np.sum(seen & (key == k))))
    return np.array(out, dtype=np.int64)


def _plain_hours(ev: pl.DataFrame, rows: pl.DataFrame, cap: float) -> np.ndarray:
    """Per row, hours since its key's last event strictly before t (``cap`` if none), divided
    as polars divides (the features always were)."""
    key, ts = ev["k"].to_numpy(), ev["timestamp"].to_physical().to_numpy()
    at = rows["prediction_time"].to_physical().to_numpy()
    last, found = at.copy(), np.zeros(len(at), dtype=bool)
    for i, k in enumerate(rows["k"].to_list()):
        mine = ts[(key == k) & (ts < at[i])] if k is not None else ts[:0]
        if len(mine):
            last[i], found[i] = mine.max(), True
    hours = np.where(found, (pl.Series(at - last) / HOUR_US).to_numpy(), cap)
    return np.minimum(hours, cap)


@pytest.mark.parametrize("seed", range(40))
def test_counts_and_recency_equal_the_plain_definitions(seed: int) -> None:
    ev, rows = _data(seed, big_keys=seed % 5 == 0)
    shifts_us = [s * 60_000_000 for s in SHIFTS]
    past = Past(ev, rows, ["k"], shifts_us[1:])
    table = past.table("k", None)
    for s in shifts_us:
        got = past.count(table, "k", s, through=s > 0)
        assert np.array_equal(got, _plain_count(ev, rows, s, through=s > 0)), s
    assert np.array_equal(past.count(table, "k"), _plain_count(ev, rows, 0, through=False))
    hours = past.hours_since(table, "k", cap=2.5)
    assert np.array_equal(hours, _plain_hours(ev, rows, 2.5))
    views = past.table("k", "view")
    plain_views = _plain_count(ev.filter(pl.col("event_type") == "view"), rows, 0, False)
    assert np.array_equal(past.count(views, "k"), plain_views)


@pytest.mark.parametrize("seed", range(10))
def test_find_gives_each_rows_own_last_entry(seed: int) -> None:
    ev, rows = _data(seed)
    past = Past(ev, rows, ["k"], [])
    table = past.table("k", None)
    at, found = past.find(table, "k")
    keys, ranks = table["k"].to_numpy(), table["_r"].to_numpy()
    expect = _plain_count(ev, rows, 0, through=False) > 0
    assert np.array_equal(found, expect)
    row_t = rows["prediction_time"].to_physical().to_numpy()
    row_k = rows["k"].fill_null(-1).to_numpy()
    for i in np.flatnonzero(found):  # the key's latest time before the row's
        assert keys[at[i]] == row_k[i]
        assert past.times[ranks[at[i]]] == max(
            t
            for k, t in zip(keys, past.times[ranks], strict=True)
            if k == row_k[i] and t < row_t[i]
        )


def test_no_events_and_no_rows() -> None:
    ev, rows = _data(1)
    past = Past(ev.clear(), rows, ["k"], [60])
    assert past.count(past.table("k", None), "k").tolist() == [0] * rows.height
    empty = Past(ev, rows.clear(), ["k"], [60])
    assert empty.count(empty.table("k", None), "k", 60, through=True).tolist() == []


@pytest.mark.parametrize("seed", range(20))
def test_sorted_unique_and_counts_between_equal_the_plain_ones(seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = rng.integers(-5, 50, int(rng.integers(0, 200)))
    assert np.array_equal(sorted_unique(values), np.unique(values))
    key, t = rng.integers(0, 6, 300), rng.integers(0, 100, 300)
    q_key, q_t = rng.integers(0, 8, 120), rng.integers(0, 120, 120)
    for shift in (1, 7, 30):
        got = counts_between(key, t, q_key, q_t, shift)
        plain = [
            int(np.sum((key == k) & (t > qt - shift) & (t < qt)))
            for k, qt in zip(q_key, q_t, strict=True)
        ]
        assert got.tolist() == plain


@pytest.mark.parametrize("seed", range(8))
def test_a_table_without_aggregates_equals_the_grouped_one(seed: int) -> None:
    """The runs of the key's events sorted once equal a group-by per table (forced here by an
    aggregate), for every kind, with null event keys, and on a subset (``only``)."""
    ev, rows = _data(seed, big_keys=seed % 4 == 0)
    ev = ev.with_columns(
        k=pl.when(pl.int_range(pl.len()) % 7 == 3).then(None).otherwise(pl.col("k")),
        first=pl.int_range(pl.len()) % 2 == 0,
    )
    past = Past(ev, rows, ["k"], [60_000_000])
    for p in (past, past.only(pl.col("first")), past):
        for kind in (None, "view", "purchase", "add_to_cart"):
            fast = p.table("k", kind)
            grouped = p.table("k", kind, _x=pl.len()).select(fast.columns)
            assert fast.height == grouped.height > 0 or kind == "add_to_cart"
            for column in fast.columns:
                assert np.array_equal(fast[column].to_numpy(), grouped[column].to_numpy()), column
