"""Sensor health on the planted turbine fleets: faults found, kind named, healthy units left alone."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from opslens.errors import OpslensWarning
from opslens.recipes.fleet.daily import daily_panel
from opslens.recipes.fleet.sensors import SensorRules, mask_faults, sensor_faults
from opslens.synthetic.turbines import TurbineFleet, make_turbines


def _demo() -> TurbineFleet:
    return make_turbines(seed=0)


def _other() -> TurbineFleet:
    """A configuration nothing was tuned on: other seed, four sites, other names, 200 days."""
    return make_turbines(
        seed=7,
        n_sites=4,
        site_names=["north", "south", "east", "west"],
        metrics=("bearing_temp", "output_kw", "shaft_rpm"),
        id_prefix="t",
        n_days=200,
    )


@pytest.mark.parametrize("make", [_demo, _other], ids=["demo", "other"])
def test_planted_sensor_faults_found(make: object) -> None:
    fleet: TurbineFleet = make()  # type: ignore[operator]
    panel = daily_panel(
        fleet.readings,
        entity="turbine_id",
        time="timestamp",
        metrics=list(fleet.metrics),
        peer="site",
    )
    faults = sensor_faults(panel, entity="turbine_id")
    truth = fleet.truth.filter(pl.col("sensor_fault").is_not_null())
    hit = truth.join(
        faults, left_on=["turbine_id", "fault_metric"], right_on=["turbine_id", "metric"]
    )
    assert hit.height >= 9  # of 10
    # the kind is named right and the date within a week of the planted one (a cap shows
    # only on the first day the wind would have driven the turbine above it)
    assert (hit["kind"] == hit["sensor_fault"]).sum() >= 9
    late = (hit["since"].cast(pl.Datetime("us")) - hit["fault_start"]).dt.total_days().abs()
    assert int(late.max()) <= 7  # type: ignore[arg-type]
    # healthy and failing turbines are (almost) never called faulty
    others = faults.join(truth.select("turbine_id"), on="turbine_id", how="anti")
    assert others.height <= 2
    # the masked panel keeps every reading before the fault and none after
    masked = mask_faults(panel, faults, entity="turbine_id")
    row = hit.row(0, named=True)
    i = panel.row(row["turbine_id"])
    day = int((np.datetime64(row["since"], "D") - panel.days[0]).astype(np.int64))
    m = row["fault_metric"]
    assert np.isnan(masked.values[m][i, day:]).all()
    np.testing.assert_array_equal(masked.values[m][i, :day], panel.values[m][i, :day])


def _frame(values: dict[str, list[float]], peer: dict[str, str] | None = None) -> pl.DataFrame:
    start = datetime(2024, 1, 1)
    n = len(next(iter(values.values())))
    rows = [
        (d, (peer or {}).get(d, "all"), start + timedelta(days=k), v)
        for d, series in values.items()
        for k, v in enumerate(series)
    ]
    return pl.DataFrame(
        rows,
        schema={"d": pl.String, "site": pl.String, "t": pl.Datetime("us"), "v": pl.Float64},
        orient="row",
    ).head(len(values) * n)


def test_limits_dropouts_and_a_lonely_peer() -> None:
    rng = np.random.default_rng(1)
    base = {f"d{i}": list(rng.normal(20.0, 1.0, 60)) for i in range(5)}
    base["d1"][30] = 250.0  # out of the physical range
    base["d2"][20:32] = [float("nan")] * 12  # twelve days without a reading
    frame = _frame(base, peer={"d4": "alone"})
    with pytest.warns(OpslensWarning, match="alone in their peer group"):
        panel = daily_panel(frame, entity="d", time="t", metrics=["v"], peer="site")
    assert panel.lonely == ["d4"]
    # the lonely device is compared with the whole fleet's median, not with itself
    assert np.nanmax(np.abs(panel.relative["v"][panel.row("d4")])) > 0
    faults = sensor_faults(panel, entity="d", rules=SensorRules(limits={"v": (-40.0, 120.0)}))
    assert faults.select("d", "kind").rows() == [("d1", "out_of_range"), ("d2", "dropout")]
    assert "250" not in faults["detail"][0] and "[-40.0, 120.0]" in faults["detail"][0]
