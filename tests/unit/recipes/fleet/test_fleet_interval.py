"""The sampling interval counted in chunks is polars' median gap of the whole column."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl

from opslens.recipes.fleet.prepare import _median_gap, sampling_interval


def _polars_median_gap(readings: pl.DataFrame) -> timedelta | None:
    """What the interval was before it was chunked: a diff, a filter and a median of the column."""
    within = np.ones(readings.height, dtype=bool)
    within[np.cumsum(readings["d"].rle().struct.field("len").to_numpy())[:-1]] = False
    gap = readings["t"].diff().filter(pl.Series(within)).median()
    return gap if isinstance(gap, timedelta) and gap > timedelta(0) else None


def test_chunked_median_gap_is_the_whole_columns() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):  # fleets of 1-5 devices, odd and even gap counts, three time units
        rows: list[tuple[str, int]] = []
        for d in range(int(rng.integers(1, 6))):
            t = np.cumsum(rng.choice([1, 2, 3, 7, 3_600_000_000], size=int(rng.integers(1, 8))))
            rows += [(f"d{d}", int(x)) for x in t]
        unit = str(rng.choice(["us", "ns", "ms"]))
        frame = pl.DataFrame(rows, schema={"d": pl.String, "t": pl.Int64}, orient="row")
        frame = frame.with_columns(pl.col("t").cast(pl.Datetime(unit)))  # type: ignore[arg-type]
        assert sampling_interval(frame, "d", "t") == _polars_median_gap(frame)
        stamp = frame["t"].to_physical().to_numpy()
        starts = np.cumsum(frame["d"].rle().struct.field("len").to_numpy())[:-1]
        whole = _median_gap(stamp, starts)
        for chunk in (1, 2, 3):
            assert _median_gap(stamp, starts, chunk=chunk) == whole


def test_hourly_fleet_with_a_gap_reads_one_hour() -> None:
    hours = (
        np.array([0, 1, 2, 3, 10, 11], dtype="timedelta64[h]") + np.datetime64("2024-01-01")
    ).astype("datetime64[us]")
    frame = pl.DataFrame({"d": ["a"] * 6 + ["b"] * 6, "t": np.concatenate([hours, hours])})
    assert sampling_interval(frame, "d", "t") == timedelta(hours=1)  # gaps 1,1,1,7,1 per device
    assert _median_gap(np.array([5]), np.array([], dtype=np.int64)) is None
