"""The online feature state gives the offline point-in-time features, value for value."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opslens.features.events import sessionize
from opslens.recipes import propensity
from opslens.recipes.propensity.online_state import OnlineState, replay
from opslens.recipes.propensity.params import PropensityParams
from opslens.recipes.propensity.point_in_time import EVENT_KINDS, point_in_time_features

DEMO = Path(propensity.__file__).parent / "demo" / "project.yaml"


def differing(online: pl.DataFrame, offline: pl.DataFrame) -> int:
    """Feature values whose bytes differ (float64 bit patterns, integers exactly)."""
    assert online.columns == offline.columns and online.height == offline.height
    assert online.select("user_id", "item_id", "prediction_time", "category").equals(
        offline.select("user_id", "item_id", "prediction_time", "category")
    )
    n = 0
    for c in online.columns[4:]:
        a, b = online[c].to_numpy(), offline[c].to_numpy()
        assert a.dtype == b.dtype, c
        n += int(
            (a.view(np.uint8).reshape(len(a), -1) != b.view(np.uint8).reshape(len(b), -1))
            .any(axis=1)
            .sum()
        )
    return n


def test_replaying_the_demo_gives_the_test_split_features_byte_for_byte(demo: dict) -> None:
    p: PropensityParams = demo["params"]
    bounds = demo["bounds"]
    cuts = bounds["start"].to_list()[1:]  # the offline split cuts sessions at its boundaries
    state = OnlineState(
        demo["items"],
        windows=p.features.windows,
        gap=p.sessions.gap,
        recency_cap_hours=p.features.recency_cap_hours,
        cuts=cuts,
    )
    offline = demo["test"].drop("label")
    online = replay(state, demo["events"], offline.select("user_id", "item_id", "prediction_time"))
    assert offline.height > 5_000 and offline["prediction_time"].n_unique() >= 2
    assert differing(online, offline) == 0
    assert online.equals(offline)
    # the state really was exercised: folding of old events and sessions, every kind
    assert (
        state.events
        == demo["events"].filter(pl.col("timestamp") < offline["prediction_time"].max()).height
    )


def test_a_session_crossing_a_cut_is_two_sessions_as_in_the_split() -> None:
    """The offline split cuts a session at its boundary; ``cuts`` does the same online."""
    cut = datetime(2024, 3, 2)
    log = pl.DataFrame(
        {
            "user_id": ["u1"] * 3,
            "item_id": ["x"] * 3,
            "event_type": ["view"] * 3,
            "timestamp": [
                cut - timedelta(minutes=10),
                cut + timedelta(minutes=10),
                cut + timedelta(minutes=20),
            ],
        }
    )
    split = pl.when(pl.col("timestamp") < cut).then(pl.lit("a")).otherwise(pl.lit("b"))
    cut_sessions = sessionize(log.with_columns(split=split), gap=GAP, by=["user_id", "split"])
    at = cut + timedelta(hours=1)
    rows = pl.DataFrame({"user_id": ["u1"], "item_id": ["x"], "prediction_time": [at]})
    offline = point_in_time_features(rows, cut_sessions.drop("split"), ITEMS, windows=WINDOWS)
    with_cut = replay(OnlineState(ITEMS, windows=WINDOWS, gap=GAP, cuts=[cut]), log, rows)
    without = replay(OnlineState(ITEMS, windows=WINDOWS, gap=GAP), log, rows)
    assert differing(with_cut, offline) == 0
    assert offline["user_sessions"].to_list() == [2] and without["user_sessions"].to_list() == [1]
    assert offline["session_events_so_far"].to_list() == [2]
    assert without["session_events_so_far"].to_list() == [3]


T0 = datetime(2024, 3, 1)
ITEMS = pl.DataFrame(
    {
        "item_id": ["x", "y", "z"],
        "category": ["c1", "c1", "c2"],
        "price": [5.0, 7.5, 1.25],
        "discount": [0.0, 0.1, 0.5],
    }
)
WINDOWS = [timedelta(hours=1), timedelta(hours=6)]
GAP = timedelta(minutes=30)


@st.composite
def event_logs(draw: st.DrawFn) -> pl.DataFrame:
    n = draw(st.integers(1, 60))
    # minutes on a coarse grid, so equal times, exact gaps and exact window edges happen
    minutes = draw(st.lists(st.integers(0, 24 * 60 // 5), min_size=n, max_size=n))
    return pl.DataFrame(
        {
            "user_id": draw(st.lists(st.sampled_from(["u1", "u2", "u3"]), min_size=n, max_size=n)),
            "item_id": draw(
                st.lists(st.sampled_from(["x", "y", "z", "w"]), min_size=n, max_size=n)
            ),
            "event_type": draw(st.lists(st.sampled_from(EVENT_KINDS), min_size=n, max_size=n)),
            "timestamp": [T0 + timedelta(minutes=5 * m) for m in minutes],
        }
    ).with_columns(pl.col("timestamp").cast(pl.Datetime("us")))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(log=event_logs(), hours=st.lists(st.integers(0, 26 * 12), min_size=1, max_size=4))
def test_a_random_event_log_gives_the_offline_features(log: pl.DataFrame, hours: list[int]) -> None:
    times = sorted({T0 + timedelta(minutes=5 * h) for h in hours})
    rows = (
        pl.DataFrame({"user_id": ["u1", "u2", "u3", "u9"]})
        .join(pl.DataFrame({"item_id": ["x", "y", "w"]}), how="cross")
        .join(pl.DataFrame({"prediction_time": times}), how="cross")
        .with_columns(pl.col("prediction_time").cast(pl.Datetime("us")))
    )
    offline = point_in_time_features(
        rows, sessionize(log, gap=GAP), ITEMS, windows=WINDOWS, recency_cap_hours=10.0
    )
    state = OnlineState(
        ITEMS, windows=WINDOWS, gap=GAP, recency_cap_hours=10.0, lateness=timedelta(days=2)
    )
    online = replay(state, log, rows)
    assert differing(online, offline) == 0


@pytest.mark.parametrize("kind", ["view", "purchase"])
@pytest.mark.parametrize(
    ("before", "inside"),
    [
        (timedelta(hours=1), 0),  # exactly w before t: outside the window
        (timedelta(hours=1) - timedelta(microseconds=1), 1),  # a microsecond later: inside
        (timedelta(hours=1, microseconds=1), 0),
        (timedelta(0), 0),  # at t: not counted at all
    ],
)
def test_the_window_edge_is_the_offline_one(kind: str, before: timedelta, inside: int) -> None:
    """``(t - w, t)``: an event exactly ``w`` before ``t`` is outside the ``w`` window, one
    microsecond later is inside, an event at ``t`` is not counted, online and offline alike."""
    at = T0 + timedelta(hours=10)
    log = pl.DataFrame(
        {"user_id": ["u1"], "item_id": ["x"], "event_type": [kind], "timestamp": [at - before]}
    )
    rows = pl.DataFrame({"user_id": ["u1"], "item_id": ["x"], "prediction_time": [at]})
    offline = point_in_time_features(rows, sessionize(log, gap=GAP), ITEMS, windows=WINDOWS)
    state = OnlineState(ITEMS, windows=WINDOWS, gap=GAP)
    state.ingest(log.row(0, named=True))
    online = state.features("u1", ["x"], at).frame()
    windowed = ["user_events_1h", "user_sessions_1h"]
    windowed += ["pair_views_1h", "item_views_1h"] if kind == "view" else []
    windowed += ["user_purchases_1h", "item_purchases_1h"] if kind == "purchase" else []
    for f in (online, offline):
        for c in windowed:
            assert f[c].to_list() == [inside], c
        assert f["user_events"].to_list() == [1 if before else 0]
        assert f["user_sessions"].to_list() == [1 if before else 0]
    assert differing(online, offline) == 0


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    log=event_logs(),
    delays=st.lists(st.integers(0, 10), min_size=60, max_size=60),
    spread=st.integers(1, 12),
)
def test_late_events_and_folded_history_give_the_offline_features(
    log: pl.DataFrame, delays: list[int], spread: int
) -> None:
    """Events arriving up to the lateness out of order, over days (old events folded into
    counts), asked once every event before the time has arrived."""
    lateness = timedelta(minutes=10)
    log = log.with_columns(  # spread over up to 12 days: the 6 h windows fold history
        timestamp=T0 + (pl.col("timestamp") - T0) * spread,
        _arrive=pl.Series([timedelta(minutes=d) for d in delays[: log.height]]),
    ).with_columns(_arrive=pl.col("timestamp") + pl.col("_arrive"))
    times = log["timestamp"].unique().sort().to_list()
    at_times = sorted({times[len(times) // 2], times[-1] + timedelta(minutes=1)})
    rows = (
        pl.DataFrame({"user_id": ["u1", "u2", "u3"]})
        .join(pl.DataFrame({"item_id": ["x", "y", "w"]}), how="cross")
        .join(pl.DataFrame({"prediction_time": at_times}), how="cross")
        .with_columns(pl.col("prediction_time").cast(pl.Datetime("us")))
        .sort("prediction_time", "user_id", "item_id")
    )
    offline = point_in_time_features(
        rows,
        sessionize(log.drop("_arrive"), gap=GAP),
        ITEMS,
        windows=WINDOWS,
        recency_cap_hours=100.0,
    )
    state = OnlineState(ITEMS, windows=WINDOWS, gap=GAP, recency_cap_hours=100.0, lateness=lateness)
    arrivals = log.sort("_arrive", maintain_order=True)
    parts, i = [], 0
    for at in at_times:
        while i < arrivals.height and arrivals["_arrive"][i] < at + lateness:
            state.ingest(arrivals.row(i, named=True))
            i += 1
        for user in ("u1", "u2", "u3"):
            parts.append(state.features(user, ["w", "x", "y"], at).frame())
    assert differing(pl.concat(parts), offline) == 0


DATED = pl.DataFrame(
    {
        "item_id": ["x", "x", "x", "y", "z"],
        "valid_from": [
            T0 - timedelta(days=1),
            T0 + timedelta(hours=5),
            T0 + timedelta(hours=9),
            T0 + timedelta(hours=2),
            T0 - timedelta(days=3),
        ],
        "category": ["c1", "c1", "c3", "c1", "c2"],
        "price": [5.0, 4.5, None, 7.5, 1.25],
        "discount": [0.0, 0.1, 0.3, 0.1, 0.5],
    }
).with_columns(pl.col("valid_from").cast(pl.Datetime("us")))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(log=event_logs(), hours=st.lists(st.integers(0, 26 * 12), min_size=1, max_size=4))
def test_a_price_history_is_read_as_of_each_time_online_as_offline(
    log: pl.DataFrame, hours: list[int]
) -> None:
    times = sorted({T0 + timedelta(minutes=5 * h) for h in hours})
    rows = (
        pl.DataFrame({"user_id": ["u1", "u2"]})
        .join(pl.DataFrame({"item_id": ["x", "y", "w"]}), how="cross")
        .join(pl.DataFrame({"prediction_time": times}), how="cross")
        .with_columns(pl.col("prediction_time").cast(pl.Datetime("us")))
    )
    offline = point_in_time_features(rows, sessionize(log, gap=GAP), DATED, windows=WINDOWS)
    online = replay(
        OnlineState(DATED, windows=WINDOWS, gap=GAP, lateness=timedelta(days=2)), log, rows
    )
    assert differing(online, offline) == 0


def test_the_price_valid_at_each_time_is_the_rows() -> None:
    log = pl.DataFrame(
        {"user_id": ["u1"], "item_id": ["x"], "event_type": ["view"], "timestamp": [T0]}
    )
    at = [T0 + timedelta(hours=h) for h in (1, 5, 10)]
    rows = pl.DataFrame({"user_id": ["u1"] * 3, "item_id": ["x"] * 3, "prediction_time": at})
    offline = point_in_time_features(rows, sessionize(log, gap=GAP), DATED, windows=WINDOWS)
    assert offline["price"].to_list() == [5.0, 4.5, 0.0]  # the last has no price: 0, as missing
    assert offline["discount"].to_list() == [0.0, 0.1, 0.3]
    assert offline["category"].to_list() == ["c3"] * 3  # the item's latest category
    online = replay(
        OnlineState(DATED, windows=WINDOWS, gap=GAP, lateness=timedelta(days=1)), log, rows
    )
    assert differing(online, offline) == 0
