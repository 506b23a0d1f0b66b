"""The fast sessionization paths against the plain one, exactly."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from opslens.features.events import _sessionize_plain, sessionize


def _shuffled_events(n: int, seed: int, unit: str, span: timedelta) -> pl.DataFrame:
    """Unsorted events of 5 users, many ties, gaps around 30 minutes, over ``span``."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, int(span / timedelta(minutes=10)), n) * 600_000_000
    us = base + rng.choice([0, 1, 1_800_000_000, 1_800_000_001], n)
    ts = pl.Series(us + 1_704_067_200_000_000).cast(pl.Datetime("us")).cast(pl.Datetime(unit))
    return pl.DataFrame(
        {
            "user_id": pl.Series([f"u{k}" for k in range(5)])[rng.integers(0, 5, n)],
            "event_type": pl.Series(["view", "add_to_cart"])[rng.integers(0, 2, n)],
            "timestamp": ts,
        }
    ).with_row_index("row")


@pytest.mark.parametrize(
    ("unit", "span"),
    [
        ("us", timedelta(days=2)),  # exact packed sort
        ("ns", timedelta(days=3000)),  # time coarsened in the packed sort, then put in order
        ("ms", timedelta(days=30)),
    ],
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_sessionize_equals_the_plain_one(unit: str, span: timedelta, seed: int) -> None:
    ev = _shuffled_events(3000, seed, unit, span)
    gap = timedelta(minutes=30)
    fast = sessionize(ev, gap=gap)
    plain = _sessionize_plain(ev, ["user_id"], gap, "timestamp")
    assert fast.columns == plain.columns
    assert fast.sort("row").equals(plain.sort("row"))
    # within a key, time order with ties in input order
    assert (
        fast.group_by("user_id", maintain_order=True)
        .agg(
            ok=(pl.col("timestamp").diff().fill_null(timedelta(0)) >= timedelta(0)).all()
            & ((pl.col("timestamp").diff() > timedelta(0)) | (pl.col("row").diff() > 0))
            .fill_null(True)
            .all()
        )["ok"]
        .all()
    )
    # already sorted, time sorted, integer keys and two keys give the same sessions
    again = sessionize(fast.drop(c for c in fast.columns if c.startswith("session")), gap=gap)
    assert again.equals(fast)
    by_time = ev.sort("timestamp", maintain_order=True)
    assert sessionize(by_time, gap=gap).equals(fast)
    ints = ev.with_columns(pl.col("user_id").str.slice(1).cast(pl.Int64))
    got = sessionize(ints, gap=gap)
    assert got["user_id"].diff().drop_nulls().min() >= 0  # type: ignore[operator]
    assert got.sort("row")["session_index"].equals(plain.sort("row")["session_index"])
    two = sessionize(ev.with_columns(part=pl.col("row") % 2), gap=gap, by=["user_id", "part"])
    plain_two = _sessionize_plain(
        ev.with_columns(part=pl.col("row") % 2), ["user_id", "part"], gap, "timestamp"
    )
    assert two.sort("row").equals(plain_two.sort("row"))


def test_sessionize_keeps_nulls_and_empty_frames_on_the_plain_path() -> None:
    ev = pl.DataFrame(
        {
            "user_id": ["a", None, "a"],
            "timestamp": [datetime(2024, 1, 1), datetime(2024, 1, 1), datetime(2024, 1, 1, 2)],
        }
    )
    assert sessionize(ev)["session_index"].to_list() == [0, 0, 1]
    assert sessionize(ev.head(0)).height == 0
