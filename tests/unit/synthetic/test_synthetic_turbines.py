"""make_turbines: deterministic, shaped as a daily turbine fleet, with its planted truth."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from opslens.errors import DataError
from opslens.synthetic import generate
from opslens.synthetic.turbines import FAULT_KINDS, TurbineFleet, make_turbines


@pytest.fixture(scope="module")
def fleet() -> TurbineFleet:
    return make_turbines(seed=0)


def test_shape_and_truth(fleet: TurbineFleet) -> None:
    r, t = fleet.readings, fleet.truth
    assert r.columns == [
        "turbine_id",
        "site",
        "timestamp",
        "gearbox_temp_c",
        "power_kw",
        "rotor_speed_rpm",
    ]
    assert r["turbine_id"].n_unique() == t.height == 300
    assert sorted(r["site"].unique()) == ["site-A", "site-B", "site-C"]
    assert int(t["failed"].sum()) == 12
    faults = t.filter(pl.col("sensor_fault").is_not_null())
    assert faults.height == 10 and not faults["failed"].any()
    counts = dict(faults.group_by("sensor_fault").len().iter_rows())
    assert counts == {"flatline": 3, "stuck": 2, "unit_change": 2, "curtailment": 3}
    assert set(counts) == set(FAULT_KINDS)
    # missing days: fewer rows than turbines × days, and failed turbines stop at their failure
    assert r.height < 300 * 240
    last = r.group_by("turbine_id").agg(pl.col("timestamp").max().alias("last"))
    failed = t.filter("failed").join(last, on="turbine_id")
    assert (failed["last"] == failed["failure_time"]).all()
    assert ((failed["failure_time"] - failed["heat_start"]).dt.total_days() >= 20).all()


def test_planted_heat_up_and_shared_weather(fleet: TurbineFleet) -> None:
    r, t = fleet.readings, fleet.truth
    # turbines of one site share the weather: their daily power correlates strongly
    wide = (
        r.filter(pl.col("site") == "site-A")
        .pivot("turbine_id", index="timestamp", values="power_kw")
        .sort("timestamp")
    )
    a, b = wide.columns[1], wide.columns[2]
    both = wide.select(a, b).drop_nulls().fill_nan(None).drop_nulls()
    assert np.corrcoef(both[a], both[b])[0, 1] > 0.8
    # the last week before a failure runs hot against the site's same-day median
    med = r.group_by("site", "timestamp").agg(pl.col("gearbox_temp_c").median().alias("med"))
    rel = r.join(med, on=["site", "timestamp"]).with_columns(
        (pl.col("gearbox_temp_c") - pl.col("med")).alias("rel")
    )
    for row in t.filter("failed").iter_rows(named=True):
        dev = rel.filter(pl.col("turbine_id") == row["turbine_id"])
        early = dev.filter(pl.col("timestamp") < row["heat_start"])["rel"].median()
        late = dev.filter(pl.col("timestamp") > row["failure_time"] - pl.duration(days=7))
        assert late["rel"].median() - early > 5.0  # type: ignore[operator]


def test_deterministic_and_configurable() -> None:
    a = make_turbines(n_turbines=40, n_sites=2, n_days=90, n_failing=2, n_sensor_faults=3, seed=4)
    b = make_turbines(n_turbines=40, n_sites=2, n_days=90, n_failing=2, n_sensor_faults=3, seed=4)
    assert a.readings.equals(b.readings) and a.truth.equals(b.truth)
    other = make_turbines(
        n_turbines=40,
        n_sites=2,
        site_names=["north", "south"],
        metrics=("bearing_temp", "output_kw", "shaft_rpm"),
        n_days=90,
        n_failing=2,
        n_sensor_faults=3,
        id_prefix="t",
        seed=5,
    )
    assert other.metrics == ("bearing_temp", "output_kw", "shaft_rpm")
    assert set(other.readings["site"].unique()) == {"north", "south"}
    assert other.failures().height == 2
    assert generate("turbines", seed=1, options={"n_turbines": 30, "n_days": 80}).height > 2000


@pytest.mark.parametrize(
    "options",
    [
        {"metrics": ("a", "b")},
        {"n_sites": 2, "site_names": ["x"]},
        {"n_turbines": 10},
        {"missing_share": 0.5},
    ],
)
def test_bad_options(options: dict[str, object]) -> None:
    with pytest.raises(DataError):
        make_turbines(seed=0, **options)  # type: ignore[arg-type]
