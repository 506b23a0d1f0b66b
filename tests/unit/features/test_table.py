"""describe_table and filter_table: exact counts and statistics; errors name the column."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from opslens.errors import DataError
from opslens.features.table import describe_table, filter_table


@pytest.fixture
def frame() -> pl.DataFrame:
    rng = np.random.default_rng(0)
    n = 1000
    temp = rng.normal(20, 5, n)
    temp[:30] = np.nan
    site = np.array(["north", "south", "east"])[np.arange(n) % 3]
    return pl.DataFrame(
        {
            "ts": pl.datetime_range(
                datetime(2024, 1, 1),
                datetime(2024, 1, 1) + timedelta(hours=n - 1),
                "1h",
                eager=True,
            ),
            "site": site,
            "temp": temp,
            "count": np.arange(n) % 10,
            "ok": np.arange(n) % 4 != 0,
        }
    ).with_columns(
        pl.when(pl.int_range(pl.len()) < 5).then(None).otherwise(pl.col("site")).alias("site")
    )


def test_describe_exact(frame: pl.DataFrame) -> None:
    d = describe_table(frame)
    assert d["name"].to_list() == frame.columns
    rows = {r["name"]: r for r in d.iter_rows(named=True)}
    temp = frame["temp"].to_numpy()[30:]
    t = rows["temp"]
    assert (t["count"], t["nulls"], t["null_share"], t["unique"]) == (970, 30, 0.03, 970)
    assert t["mean"] == pytest.approx(temp.mean(), abs=1e-10)
    assert t["std"] == pytest.approx(temp.std(ddof=1), abs=1e-10)
    assert [t["min"], t["p25"], t["median"], t["p75"], t["max"]] == pytest.approx(
        np.quantile(temp, [0, 0.25, 0.5, 0.75, 1]).tolist(), abs=1e-10
    )
    c = rows["count"]
    assert (c["count"], c["unique"], c["mean"], c["min"], c["max"]) == (1000, 10, 4.5, 0.0, 9.0)
    s = rows["site"]
    assert (s["count"], s["nulls"], s["unique"], s["mean"]) == (995, 5, 3, None)
    # 334 north minus 2 nulled, 333 south minus 2, 333 east minus 1 → east and north tie at 332; smallest wins
    assert (s["top"], s["top_count"]) == ("east", 332)
    assert (rows["ok"]["top"], rows["ok"]["top_count"]) == ("true", 750)
    assert rows["ts"]["dtype"].startswith("Datetime") and rows["ts"]["mean"] is None


def test_filter_exact_counts(frame: pl.DataFrame) -> None:
    assert filter_table(frame).height == 1000
    assert filter_table(frame, equals={"site": ["north"]}).height == 332
    assert filter_table(frame, equals={"site": ["north", "east"], "count": [0, 1]}).height == (
        frame.filter(pl.col("site").is_in(["north", "east"]) & (pl.col("count") < 2)).height
    )
    assert filter_table(frame, ranges={"count": (3, 5)}).height == 300
    assert filter_table(frame, ranges={"count": (None, 2)}).height == 300
    assert filter_table(frame, ranges={"temp": (20.0, None)}).height == int(
        (frame["temp"].to_numpy() >= 20.0).sum()
    )
    day = filter_table(frame, time="ts", start="2024-01-02", end=datetime(2024, 1, 2, 23))
    assert day.height == 24
    assert filter_table(frame, time="ts", start=date(2024, 2, 11)).height == 16


def test_filter_time_zones_and_epoch(frame: pl.DataFrame) -> None:
    utc = frame.with_columns(pl.col("ts").dt.replace_time_zone("UTC"))
    start = datetime(2024, 1, 2, 6, tzinfo=UTC)
    assert filter_table(utc, time="ts", start=start, end="2024-01-02 11:00").height == 6
    epoch = frame.with_columns(pl.col("ts").dt.epoch("s").alias("sec"))
    assert (
        filter_table(epoch, time="sec", start="2024-01-01 10:00", end="2024-01-01 12:00").height
        == 3
    )


def test_errors_name_the_column(frame: pl.DataFrame) -> None:
    with pytest.raises(DataError, match=r"'plant'.*available: ts, site, temp, count, ok"):
        filter_table(frame, equals={"plant": ["a"]})
    with pytest.raises(DataError, match="'pressure'"):
        filter_table(frame, ranges={"pressure": (0, 1)})
    with pytest.raises(DataError, match="range column 'site'"):
        filter_table(frame, ranges={"site": (0, 1)})
    with pytest.raises(DataError, match="time column 'when'"):
        filter_table(frame, time="when", start="2024-01-01")
    with pytest.raises(DataError, match="time column 'site'"):
        filter_table(frame, time="site", start="2024-01-01")
    with pytest.raises(DataError, match="'count'"):
        filter_table(frame, equals={"count": ["many"]})
    with pytest.raises(DataError, match="start='yesterday'"):
        filter_table(frame, time="ts", start="yesterday")
