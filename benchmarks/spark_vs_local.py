"""Fingerprints and sessionization on engine spark (local[2]) against engine local, 3 sizes each.

    python benchmarks/spark_vs_local.py [--fleet 1000 5000 20000] [--events 1000000 3000000 10000000]

Both engines start from the same Parquet file and end with a polars frame on the
driver: local reads it with polars and calls the function (in slices of whole
devices); Spark reads the file itself, hashes devices (users) into tasks and runs
the *same* fingerprint function per task with ``groupBy().applyInArrow``
(sessionization: Spark window functions over the file Spark read), then collects. Spark's session start
(JVM) is timed once and reported apart; every figure after it is a warm run.
Both results are checked equal (fingerprints bit for bit, sessions exactly).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import timedelta
from functools import partial
from pathlib import Path

import numpy as np
import polars as pl
from polars.testing import assert_frame_equal

from opslens.core.engine import LocalEngine
from opslens.engines.spark import SparkEngine
from opslens.features.events import sessionize
from opslens.features.fingerprints import fleet_fingerprints

METRICS = ["temperature", "vibration", "current"]
GAP = timedelta(minutes=30)


def fleet(devices: int, points: int = 500, seed: int = 0) -> pl.DataFrame:
    """Random-walk readings, sorted by device and time (what the recipe's prepare leaves)."""
    rng = np.random.default_rng(seed)
    n = devices * points
    t0 = np.datetime64("2024-01-01T00:00:00", "us")
    return pl.DataFrame(
        {
            "device_id": np.repeat([f"dev-{i:06d}" for i in range(devices)], points),
            "timestamp": np.tile(t0 + np.arange(points) * np.timedelta64(3600, "s"), devices),
            **{m: rng.normal(size=n).cumsum() for m in METRICS},
        }
    )


def events(n: int, users: int, seed: int = 0) -> pl.DataFrame:
    """Unsorted events over 90 days (as benchmarks/propensity_sessionize.py)."""
    rng = np.random.default_rng(seed)
    ts = rng.integers(0, 90 * 24 * 4, n) * 900 + rng.integers(0, 900, n)
    kinds = np.array(["view", "add_to_cart", "remove_from_cart", "purchase"])
    return pl.DataFrame(
        {
            "user_id": pl.Series([f"u{u:06d}" for u in range(users)])[rng.integers(0, users, n)],
            "event_type": kinds[rng.choice(4, n, p=[0.9, 0.06, 0.03, 0.01])],
            "timestamp": (pl.Series(ts) * 1_000_000 + 1_722_470_400_000_000).cast(
                pl.Datetime("us")
            ),
        }
    )


def timed(fn):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fleet", type=int, nargs="*", default=[1000, 5000, 20000])
    ap.add_argument("--events", type=int, nargs="*", default=[1_000_000, 3_000_000, 10_000_000])
    args = ap.parse_args()
    spark = SparkEngine("local[2]", rows_per_task=1_000_000)
    _, start = timed(lambda: spark.session.range(1).count())
    print(f"Spark local[2] session start: {start:.1f} s (not counted below)")
    local = LocalEngine()
    with tempfile.TemporaryDirectory() as tmp:
        print("\nfingerprints (500 readings per device, 3 metrics, 102 features)")
        print("devices  rows        local s  spark s  spark/local")
        for devices in args.fleet:
            path = Path(tmp) / f"fleet{devices}.parquet"
            fleet(devices).write_parquet(path)
            func = partial(
                fleet_fingerprints, entity="device_id", time="timestamp", metrics=METRICS
            )
            a, t_local = timed(
                lambda p=path, f=func: local.per_group(pl.read_parquet(p), "device_id", f)
            )
            b, t_spark = timed(
                lambda p=path, f=func: spark.per_group(spark.read_parquet(p), "device_id", f)
            )
            assert_frame_equal(a.sort("device_id"), b.sort("device_id"))
            print(
                f"{devices:>7,}  {devices * 500:>10,}  {t_local:7.1f}  {t_spark:7.1f}  {t_spark / t_local:5.2f}x"
            )
        print("\nsessionization (unsorted events, 1 user per 50 events, gap 30 min)")
        print("events       local s  spark s  spark/local")
        for n in args.events:
            path = Path(tmp) / f"events{n}.parquet"
            events(n, max(n // 50, 1)).with_row_index("row").write_parquet(path)
            a, t_local = timed(lambda p=path: sessionize(pl.read_parquet(p), gap=GAP))
            b, t_spark = timed(
                lambda p=path: spark.sessionize(
                    spark.read_parquet(p), gap=GAP, by="user_id", time="timestamp"
                )
            )
            b = b.with_columns(pl.col("row").cast(pl.UInt32))  # Spark has no unsigned integers
            assert_frame_equal(a.sort("row"), b.sort("row"))
            print(f"{n:>11,}  {t_local:7.1f}  {t_spark:7.1f}  {t_spark / t_local:5.2f}x")
    spark.close()


if __name__ == "__main__":
    main()
