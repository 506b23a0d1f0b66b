"""The online state's bookkeeping and the events it refuses (one reason each)."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
import pytest

from opslens.features.events import sessionize
from opslens.recipes.propensity.online_state import EventError, OnlineState, replay
from opslens.recipes.propensity.point_in_time import point_in_time_features

T0 = datetime(2024, 3, 1)
ITEMS = pl.DataFrame({"item_id": ["x"], "category": ["c"], "price": [2.0], "discount": [0.0]})
W = [timedelta(hours=1)]


def test_old_history_is_folded_into_counts_and_the_features_stay_exact() -> None:
    # a view every 20 minutes for 3 days (one long session), then one every 2 hours
    times = [T0 + timedelta(minutes=20 * k) for k in range(3 * 72)]
    times += [times[-1] + timedelta(hours=2 * k) for k in range(1, 40)]
    log = pl.DataFrame({"user_id": "u", "item_id": "x", "event_type": "view", "timestamp": times})
    at = times[-1] + timedelta(minutes=5)
    rows = pl.DataFrame({"user_id": ["u"], "item_id": ["x"], "prediction_time": [at]})
    state = OnlineState(ITEMS, windows=W, lateness=timedelta(minutes=5))
    online = replay(state, log, rows)
    kept = state.state_of("u")
    assert kept["events"] == len(times) and kept["kept"] < 10  # folded, counted
    offline = point_in_time_features(rows, sessionize(log), ITEMS, windows=W)
    assert online.equals(offline)
    assert online["user_sessions"].to_list() == [40]


def test_a_late_event_within_the_lateness_is_put_in_its_place() -> None:
    state = OnlineState(ITEMS, windows=W)
    for minutes in (0, 50, 20):  # 20 arrives after 50: it joins the two sessions into one
        state.ingest(
            {
                "user_id": "u",
                "item_id": "x",
                "event_type": "view",
                "timestamp": T0 + timedelta(minutes=minutes),
            }
        )
    assert state.state_of("u")["sessions"] == 1
    row = state.features("u", ["x"], T0 + timedelta(hours=1)).frame()
    assert row["session_events_so_far"].to_list() == [3]


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (
            {
                "user_id": "u",
                "item_id": "x",
                "event_type": "click",
                "timestamp": "2024-03-01T00:00:00",
            },
            "event_type 'click' is not one of view, add_to_cart, remove_from_cart, purchase; fix: map it",
        ),
        (
            {
                "user_id": None,
                "item_id": "x",
                "event_type": "view",
                "timestamp": "2024-03-01T00:00:00",
            },
            "the event has no user_id; fix: send user_id",
        ),
        (
            {"user_id": "u", "item_id": "x", "event_type": "view", "timestamp": "yesterday"},
            "timestamp 'yesterday' is not a time; fix: send an ISO 8601 time",
        ),
        (
            {
                "user_id": "u",
                "item_id": "x",
                "event_type": "view",
                "timestamp": "2024-03-01T08:59:59",
            },
            "more than the lateness before user 'u''s last event (2024-03-01T10:00:00); fix: send events",
        ),
        (["not", "an", "object"], "an event must be an object; fix:"),
    ],
)
def test_a_refused_event_says_why_and_the_rest_of_the_batch_is_kept(
    event: object, reason: str
) -> None:
    state = OnlineState(ITEMS, windows=W)
    ok = {"user_id": "u", "item_id": "x", "event_type": "view", "timestamp": "2024-03-01T10:00:00"}
    refused = state.ingest_many([ok, event, {**ok, "timestamp": "2024-03-01T10:05:00"}])  # type: ignore[list-item]
    assert len(refused) == 1 and refused[0][0] == 1 and reason in refused[0][1], refused
    assert state.events == 2
    with pytest.raises(EventError):
        state.ingest(event)  # type: ignore[arg-type]


def test_a_user_never_seen_is_a_cold_start_answered_from_the_item() -> None:
    state = OnlineState(ITEMS, windows=W)
    state.ingest({"user_id": "u", "item_id": "x", "event_type": "purchase", "timestamp": T0})
    rows = state.features("new", ["x"], T0 + timedelta(minutes=30))
    assert rows.cold_start and not state.features("u", ["x"], T0 + timedelta(minutes=30)).cold_start
    assert rows.column("item_purchases_1h") == [1.0] and rows.column("price") == [2.0]
    assert rows.column("user_events") == [0.0] and rows.column("user_hours_since_event") == [
        24 * 90
    ]


def test_asking_far_before_the_newest_event_is_refused() -> None:
    state = OnlineState(ITEMS, windows=W)
    state.ingest({"user_id": "u", "item_id": "x", "event_type": "view", "timestamp": T0})
    with pytest.raises(EventError, match="more than the lateness before the newest event"):
        state.features("u", ["x"], T0 - timedelta(hours=2))


def test_an_item_table_with_other_column_names_is_mapped_and_a_miss_is_named() -> None:
    import warnings

    from opslens.errors import OpslensWarning
    from opslens.recipes.propensity.prepare import EventColumns, item_table

    ev = pl.DataFrame({"item_id": ["x", "y"]})
    table = pl.DataFrame({"itemid": ["x", "y"], "categoryid": [3, 4], "price": [1.0, 2.0]})
    items = item_table(
        ev, ev, table, EventColumns(), "itemid", "items.csv", {"category": "categoryid"}
    )
    assert items["category"].to_list() == ["3", "4"] and items["price"].to_list() == [1.0, 2.0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        items = item_table(
            ev, ev, table, EventColumns(), "itemid", "items.csv", {"category": "cat_id"}
        )
    said = [str(w.message) for w in caught if issubclass(w.category, OpslensWarning)]
    assert len(said) == 1 and "params.items.columns maps category to 'cat_id'" in said[0]
    assert "items.csv" in said[0] and "categoryid" in said[0]
    assert items["category"].to_list() == ["unknown", "unknown"]


def test_an_item_table_with_valid_from_keeps_each_items_price_history() -> None:
    from opslens.recipes.propensity.prepare import EventColumns, item_table

    ev = pl.DataFrame({"item_id": ["x", "y"]})
    table = pl.DataFrame(
        {
            "item_id": ["x", "x", "y", "x"],
            "since": [
                "2024-03-01T00:00:00Z",
                "2024-03-05T00:00:00+02:00",
                "2024-03-01T00:00:00Z",
                "2024-03-01T00:00:00Z",
            ],
            "category": ["c", "c", "d", "c"],
            "price": [5.0, 4.0, 2.0, 9.0],
        }
    )
    items = item_table(ev, ev, table, EventColumns(), None, "items.csv", {"valid_from": "since"})
    assert items.columns == ["item_id", "valid_from", "category", "price", "discount"]
    assert items["price"].to_list() == [5.0, 4.0, 2.0]  # a repeated (item, time) kept once
    assert items["valid_from"].to_list()[1] == datetime(2024, 3, 4, 22)  # UTC
    state = OnlineState(items, windows=W)
    state.ingest(
        {"user_id": "u", "item_id": "x", "event_type": "view", "timestamp": "2024-03-06T00:00:00"}
    )
    rows = state.features("u", ["x", "y"], "2024-03-06T01:00:00")
    assert rows.column("price") == [4.0, 2.0]
