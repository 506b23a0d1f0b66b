"""Sessionization against a slow reference (the generic sessionizer; propensity's point-in-time
features are tested in tests/unit/recipes/propensity/test_propensity_point_in_time.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from opslens.features.events import sessionize

T0 = datetime(2024, 1, 1)
GAP = timedelta(minutes=30)
KINDS = ("view", "add_to_cart", "remove_from_cart", "purchase")


def frame(rows: list[tuple[str, str, str, int]]) -> pl.DataFrame:
    """Events from (user, item, kind, minutes after T0)."""
    return pl.DataFrame(
        {
            "user_id": [r[0] for r in rows],
            "item_id": [r[1] for r in rows],
            "event_type": [r[2] for r in rows],
            "timestamp": [T0 + timedelta(minutes=r[3]) for r in rows],
        },
        schema={
            "user_id": pl.String,
            "item_id": pl.String,
            "event_type": pl.String,
            "timestamp": pl.Datetime("us"),
        },
    )


def slow_sessions(ev: pl.DataFrame, gap: timedelta) -> dict[int, tuple[str, int]]:
    """Row number → (user, session index): a plain loop over each user's events in time order."""
    out: dict[int, tuple[str, int]] = {}
    rows = list(enumerate(ev.iter_rows(named=True)))
    for user in {r["user_id"] for _, r in rows}:
        mine = sorted(
            ((i, r) for i, r in rows if r["user_id"] == user),
            key=lambda x: (x[1]["timestamp"], x[0]),
        )
        index, prev = -1, None
        for i, r in mine:
            if prev is None or r["timestamp"] - prev > gap:
                index += 1
            out[i] = (user, index)
            prev = r["timestamp"]
    return out


event = st.tuples(
    st.sampled_from(["a", "b", "c"]),
    st.sampled_from(["x", "y", "z"]),
    st.sampled_from(KINDS),
    # minutes on a coarse grid: ties and gaps of exactly 30 minutes are common
    st.integers(0, 40).map(lambda k: k * 15),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(event, min_size=1, max_size=40))
def test_sessionize_equals_the_slow_reference(rows: list[tuple[str, str, str, int]]) -> None:
    ev = frame(rows).with_row_index("row")  # unsorted input, ties included
    got = sessionize(ev, gap=GAP)
    expected = slow_sessions(ev.drop("row"), GAP)
    assert got.height == ev.height
    for r in got.iter_rows(named=True):
        assert (r["user_id"], r["session_index"]) == expected[r["row"]]
        assert r["session_id"] == f"{r['user_id']}-{r['session_index']}"
    per = got.group_by("session_id").agg(
        pl.len(), pl.col("session_events").first(), pl.col("session_event").max()
    )
    assert (per["len"] == per["session_events"]).all() and (
        per["len"] == per["session_event"]
    ).all()


def test_a_gap_equal_to_the_threshold_stays_in_the_session() -> None:
    ev = frame(
        [
            ("a", "x", "view", 0),
            ("a", "x", "view", 30),
            ("a", "x", "view", 61),
            ("a", "x", "view", 61),
        ]
    )
    got = sessionize(ev, gap=GAP)
    assert got["session_index"].to_list() == [0, 0, 1, 1]
    assert got["session_seconds"].to_list() == [1800.0, 1800.0, 0.0, 0.0]
