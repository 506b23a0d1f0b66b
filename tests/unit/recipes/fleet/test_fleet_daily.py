"""The daily panel taken in chunks of whole devices is the panel taken at once."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from opslens.errors import OpslensWarning
from opslens.recipes.fleet.daily import DailyPanel, daily_panel
from opslens.synthetic.fleet import make_fleet


def _same(a: DailyPanel, b: DailyPanel) -> None:
    assert a.devices.tolist() == b.devices.tolist()
    assert a.days.tolist() == b.days.tolist()
    assert a.peers.tolist() == b.peers.tolist()
    assert a.peer_names == b.peer_names
    assert a.lonely == b.lonely
    for field in ("values", "relative", "peer_level"):
        left, right = getattr(a, field), getattr(b, field)
        assert list(left) == list(right)
        for m in left:  # NaN in the same cells, every other cell the same float (polars sums
            # a group's mean in an order of its own: two whole-table runs may differ in the
            # last bits, so the floats are compared to 1e-12)
            assert np.array_equal(np.isnan(left[m]), np.isnan(right[m]))
            np.testing.assert_allclose(left[m], right[m], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shuffled", [False, True], ids=["sorted", "shuffled"])
def test_chunked_panel_is_the_whole_panel(shuffled: bool) -> None:
    fleet = make_fleet(n_devices=60, n_points=24 * 20, n_failing=3, seed=0)  # hourly, 20 days
    r = fleet.readings.with_columns(  # three sites of 20 devices, one device alone
        pl.format("s{}", pl.col("device_id").rank("dense") % 3).alias("site")
    ).with_columns(
        pl.when(pl.col("device_id") == pl.col("device_id").max())
        .then(pl.lit("alone"))
        .otherwise("site")
        .alias("site")
    )
    metrics = ["temperature", "vibration", "current"]
    if shuffled:  # devices not in runs: chunks are hash buckets of devices
        r = r.sample(fraction=1.0, shuffle=True, seed=1)
    with pytest.warns(OpslensWarning, match="alone in their peer group"):
        whole = daily_panel(
            r,
            entity="device_id",
            time="timestamp",
            metrics=metrics,
            peer="site",
            rows_per_chunk=None,
        )
    per_device = r.height // 60
    for rows in (per_device, 7 * per_device, r.height):
        with pytest.warns(OpslensWarning, match="alone in their peer group"):
            chunked = daily_panel(
                r,
                entity="device_id",
                time="timestamp",
                metrics=metrics,
                peer="site",
                rows_per_chunk=rows,
            )
        _same(whole, chunked)
    # the planted structure: 60 devices, 20 days, three sites and the lone device
    assert whole.devices.size == 60 and whole.days.size == 20
    assert whole.peer_names == ["alone", "s0", "s1", "s2"]
    assert whole.lonely == [str(r["device_id"].max())]
    # a day's value is the mean of its 24 hourly readings; relative = value - site median
    first = r.filter(
        (pl.col("device_id") == whole.devices[0])
        & (pl.col("timestamp").dt.date() == pl.col("timestamp").min().dt.date())
    )
    assert first.height == 24
    assert whole.values["temperature"][0, 0] == pytest.approx(first["temperature"].mean())
    site = whole.peers == whole.peers[0]
    day0 = whole.values["temperature"][site, 0]
    assert whole.relative["temperature"][0, 0] == pytest.approx(day0[0] - np.median(day0))


def test_chunked_panel_without_peers_keeps_first_values() -> None:
    t = pl.datetime_range(pl.datetime(2024, 1, 1), pl.datetime(2024, 1, 3, 23), "6h", eager=True)
    n = t.len()
    r = pl.DataFrame(
        {
            "d": ["a"] * n + ["b"] * n + ["c"] * n,
            "t": pl.concat([t, t, t]),
            "v": np.arange(3 * n, dtype=float),
        }
    )
    whole = daily_panel(r, entity="d", time="t", metrics=["v"], rows_per_chunk=None)
    chunked = daily_panel(r, entity="d", time="t", metrics=["v"], rows_per_chunk=n)
    _same(whole, chunked)
    # four readings a day: device a's first day is the mean of 0..3
    assert whole.values["v"][0].tolist() == [1.5, 5.5, 9.5]
