"""Point-in-time features for about 1,000,000 (user, item, prediction time) rows: opslens
(polars ``join_asof`` on cumulative counts) against a per-user pandas loop in the same run.

The pandas loop computes, for each row, a subset of the features (9 of them: recency of
each event kind, the user's events in 1/7/30 days, the pair's views and carts) from the
user's events strictly before the prediction time. It runs on a sample of users and its
time is extrapolated to every row (said in the output). Peak memory is the process's
peak resident size after each step (the data itself included).

    python benchmarks/propensity_features.py [num_users] [num_days] [sample_users]
"""

from __future__ import annotations

import resource
import sys
import time
from datetime import timedelta

import numpy as np
import pandas as pd
import polars as pl

from opslens.features.events import sessionize
from opslens.recipes.propensity.point_in_time import candidate_rows, point_in_time_features
from opslens.synthetic.clickstream import make_clickstream

WINDOWS = (timedelta(days=1), timedelta(days=7), timedelta(days=30))


def peak_mb() -> float:
    """Peak resident set size of this process so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pandas_loop(rows: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """Per user, per row: filter the user's earlier events and count (the obvious way)."""
    out = []
    by_user = dict(tuple(events.groupby("user_id", sort=False)))
    for user, mine in rows.groupby("user_id", sort=False):
        ev = by_user.get(user, events.iloc[:0])
        for r in mine.itertuples(index=False):
            past = ev[ev["timestamp"] < r.prediction_time]
            feats = {"user_id": user, "item_id": r.item_id, "prediction_time": r.prediction_time}
            for kind in ("view", "add_to_cart", "remove_from_cart", "purchase"):
                last = past.loc[past["event_type"] == kind, "timestamp"].max()
                feats[f"hours_since_{kind}"] = (r.prediction_time - last) / pd.Timedelta(hours=1)
            for w in WINDOWS:
                feats[f"user_events_{w.days}d"] = int(
                    (past["timestamp"] >= r.prediction_time - w).sum()
                )
            pair = past[past["item_id"] == r.item_id]
            feats["pair_views"] = int((pair["event_type"] == "view").sum())
            feats["pair_carts"] = int((pair["event_type"] == "add_to_cart").sum())
            out.append(feats)
    return pd.DataFrame(out)


def main() -> None:
    users = int(sys.argv[1]) if len(sys.argv) > 1 else 4_000
    days = int(sys.argv[2]) if len(sys.argv) > 2 else 60
    sample = int(sys.argv[3]) if len(sys.argv) > 3 else 40
    data = make_clickstream(seed=0, num_users=users, num_items=500, num_days=days)
    events = sessionize(data.events)
    start = events["timestamp"].min().replace(hour=0, minute=0, second=0)  # type: ignore[union-attr]
    times = [start + timedelta(days=k) for k in range(1, days + 1)]
    rows = candidate_rows(events, times, lookback=timedelta(days=14))
    base = peak_mb()
    print(
        f"{events.height:,} events of {users:,} users over {days} days; {rows.height:,} prediction rows"
    )
    t0 = time.perf_counter()
    feats = point_in_time_features(rows, events, data.items, windows=WINDOWS)
    ours = time.perf_counter() - t0
    print(
        f"opslens point_in_time_features: {ours:.2f} s for {feats.height:,} rows x "
        f"{feats.width - 4} features; peak RSS {peak_mb():,.0f} MB (before: {base:,.0f} MB)"
    )
    chosen = rows["user_id"].unique().sort().sample(sample, seed=0)
    sub = rows.filter(pl.col("user_id").is_in(chosen.implode()))
    t0 = time.perf_counter()
    got = pandas_loop(
        sub.to_pandas(), events.select("user_id", "item_id", "event_type", "timestamp").to_pandas()
    )
    loop = time.perf_counter() - t0
    per_row = loop / max(sub.height, 1)
    print(
        f"pandas per-user loop: {loop:.2f} s for {sub.height:,} rows of {sample} users "
        f"({1e3 * per_row:.2f} ms/row, 9 features) -> extrapolated {per_row * rows.height:,.0f} s for "
        f"all {rows.height:,} rows; peak RSS {peak_mb():,.0f} MB"
    )
    check = feats.join(pl.from_pandas(got), on=["user_id", "item_id", "prediction_time"])
    assert check.height == sub.height
    assert (check["pair_views"] == check["pair_views_right"]).all()
    assert (check["user_events_7d"] == check["user_events_7d_right"]).all()
    assert np.allclose(
        check["user_hours_since_cart"].to_numpy(),
        check["hours_since_add_to_cart"]
        .fill_nan(None)
        .fill_null(24 * 90.0)
        .clip(upper_bound=24 * 90)
        .to_numpy(),
    )
    print(
        f"features agree on the sample; speed-up (extrapolated): {per_row * rows.height / ours:.0f}x"
    )


if __name__ == "__main__":
    main()
