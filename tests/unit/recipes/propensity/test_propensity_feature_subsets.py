"""Propensity's user and item features are exact on subsets of users and items, and its
point-in-time features are the two side by side (moved from tests/unit/features, unchanged)."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from opslens.features.events import sessionize
from opslens.recipes.propensity._past import counts_between
from opslens.recipes.propensity.point_in_time import (
    feature_columns,
    item_features,
    point_in_time_features,
    user_features,
)
from opslens.synthetic.clickstream import make_clickstream

WINDOWS = (timedelta(hours=6), timedelta(days=1), timedelta(days=7))
KEYS = ["user_id", "item_id", "prediction_time"]


@pytest.fixture(scope="module")
def data() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    d = make_clickstream(seed=3, num_users=400, num_items=60, num_days=40)
    events = sessionize(d.events)
    start = datetime(2024, 8, 2)
    times = [start + timedelta(hours=12 * k) for k in range(75)]
    rows = (
        events.select("user_id", "item_id")
        .unique()
        .sort("user_id", "item_id")
        .join(pl.DataFrame({"prediction_time": times}), how="cross")
        .with_columns(pl.col("prediction_time").cast(pl.Datetime("us")))
        .filter(pl.col("user_id").hash(1) % 7 == 0)
    )
    return rows, events, d.items


def test_user_features_on_a_subset_of_users_are_the_whole_filtered(
    data: tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame],
) -> None:
    rows, events, items = data
    whole = user_features(rows, events, items, windows=WINDOWS)
    users = rows["user_id"].unique().sort()
    for chosen in (users[:3], users.gather_every(2), users[-1:]):
        mine = pl.col("user_id").is_in(chosen.implode())
        part = user_features(rows.filter(mine), events.filter(mine), items, windows=WINDOWS)
        assert part.height > 0
        assert part.equals(whole.filter(mine))
    assert "item_views_1d" not in whole.columns and whole["pair_views"].sum() > 0


def test_item_features_on_a_subset_of_items_are_the_whole_filtered(
    data: tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame],
) -> None:
    rows, events, _ = data
    whole = item_features(rows, events, windows=WINDOWS)
    assert whole.columns == [
        *KEYS,
        "item_views_6h",
        "item_views_1d",
        "item_views_7d",
        "item_purchases_6h",
        "item_purchases_1d",
        "item_purchases_7d",
    ]
    assert whole["item_views_7d"].sum() > 0 and whole["item_purchases_7d"].sum() > 0
    item_ids = rows["item_id"].unique().sort()
    for chosen in (item_ids[:2], item_ids.gather_every(3)):
        mine = pl.col("item_id").is_in(chosen.implode())
        part = item_features(rows.filter(mine), events.filter(mine), windows=WINDOWS)
        assert part.height > 0
        assert part.equals(whole.filter(mine))


def test_point_in_time_features_are_the_user_and_item_features_joined(
    data: tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame],
) -> None:
    rows, events, items = data
    got = point_in_time_features(rows, events, items, windows=WINDOWS)
    assert got.columns == [*KEYS, "category", *feature_columns(WINDOWS)]
    users = user_features(rows, events, items, windows=WINDOWS)
    popularity = item_features(rows, events, windows=WINDOWS)
    joined = users.join(popularity, on=KEYS, how="inner").select(got.columns)
    assert joined.height == got.height == rows.height
    assert got.equals(joined.sort("prediction_time", "user_id", "item_id"))
    assert got.select(KEYS).equals(rows.sort("prediction_time", "user_id", "item_id"))


@pytest.mark.parametrize("key_scale", [1, 1 << 40])  # small keys: packed microseconds; huge: ranks
def test_counts_between_equal_a_brute_force_count(key_scale: int) -> None:
    rng = np.random.default_rng(key_scale % 97)
    key = rng.integers(0, 6, 4000).astype(np.int64) * key_scale
    t = rng.integers(0, 500, 4000).astype(np.int64) * 1_000_000
    q_key = rng.integers(0, 7, 300).astype(np.int64) * key_scale
    q_t = rng.integers(0, 520, 300).astype(np.int64) * 1_000_000
    shift = 60_000_000
    got = counts_between(key, t, q_key, q_t, shift)
    expected = [
        int(((key == k) & (t > qt - shift) & (t < qt)).sum())
        for k, qt in zip(q_key, q_t, strict=True)
    ]
    assert got.tolist() == expected and sum(expected) > 100
    assert counts_between(key[:0], t[:0], q_key, q_t, shift).tolist() == [0] * 300
