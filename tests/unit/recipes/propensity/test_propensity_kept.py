"""The pieces of propensity's distributed path that run batch by batch give the whole's answer:
item popularity from summed per-batch deltas equals ``item_popularity``, the training sample
is the same rows in any batches, and the input digest adds up over batches."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
from polars.testing import assert_frame_equal

from opslens.core.engine import LocalEngine
from opslens.io.load import fingerprint_rows, row_digest, rows_fingerprint
from opslens.recipes.propensity.kept import popularity_deltas, popularity_table
from opslens.recipes.propensity.popularity import item_popularity
from opslens.recipes.propensity.training import keep_rate, stratified_sample
from opslens.synthetic.clickstream import make_clickstream

WINDOWS = [timedelta(days=1), timedelta(days=7), timedelta(hours=30)]


def test_popularity_from_batch_deltas_equals_item_popularity() -> None:
    stream = make_clickstream(seed=5, num_users=300, num_items=40, num_days=30)
    events = stream.events
    # times on the hour, at midnight, and exactly a window after some events (open ends)
    grid = [
        datetime(2024, 8, 1) + timedelta(days=d, hours=h) for d in range(0, 31, 3) for h in (0, 7)
    ]
    grid += [events["timestamp"][5] + timedelta(days=1), events["timestamp"][9]]
    items = stream.items.select("item_id")
    points = items.join(pl.DataFrame({"prediction_time": grid}), how="cross")
    expected = item_popularity(points, events, windows=WINDOWS)
    batches = [events.slice(i, 1_700) for i in range(0, events.height, 1_700)]
    deltas = pl.concat([popularity_deltas(b, grid=grid, windows=WINDOWS) for b in batches])
    summed = LocalEngine().summarise(
        deltas, {"delta": ("sum", "delta")}, by=["item_id", "column", "k"]
    )
    got = popularity_table(items, grid, summed, WINDOWS)
    assert_frame_equal(got, expected)
    assert int(expected["item_views_7d"].sum()) > 1_000


def test_the_training_sample_is_the_same_rows_in_any_batches() -> None:
    n = 20_000
    frame = pl.DataFrame(
        {
            "user_id": [f"u{i % 997}" for i in range(n)],
            "item_id": [f"i{i % 13}" for i in range(n)],
            "prediction_time": [datetime(2024, 1, 1) + timedelta(days=i % 31) for i in range(n)],
            "label": [int(i % 50 == 0) for i in range(n)],
        }
    ).unique(["user_id", "item_id", "prediction_time"])
    rate = keep_rate(frame.height, int(frame["label"].sum()), 5_000)
    whole = stratified_sample(frame, rate=rate, seed=3)
    parts = pl.concat(
        stratified_sample(frame.slice(i, 999), rate=rate, seed=3)
        for i in range(0, frame.height, 999)
    )
    assert_frame_equal(whole, parts)
    assert int(whole["label"].sum()) == int(frame["label"].sum())  # every positive
    assert 4_500 < whole.height < 5_500
    assert stratified_sample(frame, rate=rate, seed=4).height != whole.height or not whole.equals(
        stratified_sample(frame, rate=rate, seed=4)
    )
    assert keep_rate(frame.height, 10, frame.height) == 1.0


def test_the_input_digest_adds_up_over_batches_in_any_order() -> None:
    frame = make_clickstream(seed=2, num_users=50, num_items=10, num_days=5).events
    parts = [row_digest(frame.slice(i, 333)) for i in range(0, frame.height, 333)][::-1]
    sums = pl.concat(parts).sum().row(0)
    assert rows_fingerprint(frame.schema, *sums) == fingerprint_rows(frame)
    assert fingerprint_rows(frame.sample(fraction=1.0, shuffle=True, seed=1)) == fingerprint_rows(
        frame
    )
    # the types an engine may read back (UInt32 as a long, a category as text) hash the same
    wider = frame.with_columns(pl.col("item_id").cast(pl.Categorical))
    assert fingerprint_rows(wider) == fingerprint_rows(frame)
    assert fingerprint_rows(frame.head(frame.height - 1)) != fingerprint_rows(frame)
