"""Propensity's point-in-time features never see the future; labels and candidate rows come
from their own windows (moved here from tests/unit/features/test_events.py, unchanged)."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.unit.features.test_events import GAP, T0, event, frame

from opslens.features.events import sessionize
from opslens.recipes.propensity.point_in_time import (
    candidate_rows,
    feature_columns,
    label_rows,
    point_in_time_features,
)

ITEMS = pl.DataFrame(
    {
        "item_id": ["x", "y", "z"],
        "category": ["c1", "c1", "c2"],
        "price": [10.0, 20.0, 5.0],
        "discount": [0.0, 0.2, 0.0],
    }
)
WINDOWS = (timedelta(hours=6), timedelta(days=1), timedelta(days=3))


def _features(ev: pl.DataFrame, rows: pl.DataFrame) -> pl.DataFrame:
    return point_in_time_features(rows, sessionize(ev, gap=GAP), ITEMS, windows=WINDOWS)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(event, min_size=1, max_size=30),
    st.lists(event, min_size=1, max_size=15),
    st.integers(1, 40),
)
def test_events_after_the_prediction_time_change_no_feature(
    before: list[tuple[str, str, str, int]], after: list[tuple[str, str, str, int]], cut_k: int
) -> None:
    cut = cut_k * 15
    past = [r for r in before if r[3] < cut] or [("a", "x", "view", 0)]
    later = [(u, i, k, cut + m) for u, i, k, m in after]  # at or after the prediction time
    rows = pl.DataFrame(
        {
            "user_id": ["a", "b", "c", "a"],
            "item_id": ["x", "y", "z", "z"],
            "prediction_time": [T0 + timedelta(minutes=cut)] * 3
            + [T0 + timedelta(minutes=max(cut - 15, 0))],
        }
    )
    base = _features(frame(past), rows)
    grown = _features(frame(past + later), rows)
    assert base.equals(grown)
    assert set(feature_columns(WINDOWS)) <= set(base.columns)


def test_features_count_only_strictly_earlier_events() -> None:
    ev = frame(
        [
            ("a", "x", "view", 0),  # exactly 1 day before: outside the 1d window
            ("a", "x", "view", 60),
            ("a", "x", "add_to_cart", 61),
            ("a", "y", "view", 24 * 60),  # exactly at the prediction time: not counted
            ("b", "x", "purchase", 100),
        ]
    )
    t = T0 + timedelta(days=1)
    rows = pl.DataFrame({"user_id": ["a", "a"], "item_id": ["x", "y"], "prediction_time": [t, t]})
    f = _features(ev, rows).sort("item_id")
    x, y = f.row(0, named=True), f.row(1, named=True)
    assert x["pair_views"] == 2 and x["pair_carts"] == 1 and x["pair_net_cart"] == 1
    assert x["user_events"] == 3 and x["user_events_6h"] == 0 and x["user_events_1d"] == 2
    assert y["pair_views"] == 0 and y["pair_events"] == 0
    assert x["user_hours_since_cart"] == pytest.approx((24 * 60 - 61) / 60)
    assert x["category_events"] == 3 and x["category_share"] == 1.0
    assert (
        x["item_purchases_1d"] == 1 and x["session_events_so_far"] == 2
    )  # 61 → 24h: new session later
    assert x["price"] == 10.0 and y["discount"] == 0.2


def test_labels_come_only_from_the_window_after_the_prediction_time() -> None:
    t = T0 + timedelta(days=1)
    h = timedelta(days=2)
    ev = frame(
        [
            ("a", "x", "purchase", 0),  # before t: not a label
            ("b", "x", "purchase", 24 * 60),  # at t: in the window
            ("c", "x", "purchase", 3 * 24 * 60),  # at t + h: outside
            ("d", "x", "purchase", 3 * 24 * 60 - 1),  # just inside
            ("e", "x", "view", 25 * 60),  # not a purchase
        ]
    )
    rows = pl.DataFrame(
        {"user_id": list("abcde"), "item_id": ["x"] * 5, "prediction_time": [t] * 5}
    )
    assert label_rows(rows, ev, horizon=h)["label"].to_list() == [0, 1, 0, 1, 0]


@settings(max_examples=60, deadline=None)
@given(st.lists(event, min_size=1, max_size=30))
def test_candidates_are_the_pairs_active_in_the_lookback(
    rows: list[tuple[str, str, str, int]],
) -> None:
    ev = frame(rows)
    times = [T0 + timedelta(minutes=m) for m in (0, 90, 240, 600)]
    lookback = timedelta(hours=2)
    got = candidate_rows(ev, times, lookback=lookback)
    expected = {
        (r["user_id"], r["item_id"], t)
        for t in times
        for r in ev.iter_rows(named=True)
        if t - lookback <= r["timestamp"] < t
    }
    assert set(got.iter_rows()) == expected and got.height == len(expected)
