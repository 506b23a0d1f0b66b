"""make_trips: schema, determinism, and the planted shapes are really there."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from opslens.errors import DataError
from opslens.synthetic.trips import SHAPE_NAMES, make_trips

KEYS = ["route", "hour_band", "vehicle_type"]


@pytest.fixture(scope="module")
def data():
    return make_trips(n_rows=60_000, seed=0)


def test_schema_and_sizes(data) -> None:
    assert data.trips.schema == pl.Schema(
        {
            "trip_id": pl.Int64,
            "started_at": pl.Datetime("us"),
            "route": pl.String,
            "hour_band": pl.String,
            "vehicle_type": pl.String,
            "weekday": pl.String,
            "duration_min": pl.Float64,
        }
    )
    assert data.trips.height == 60_000
    assert data.trips["trip_id"].to_list() == list(range(1, 60_001))
    assert data.trips["started_at"].is_sorted()
    assert data.truth.height == 9 * 4 * 3  # 8 routes + RX
    assert int(data.truth["n_rows"].sum()) == 60_000
    assert sorted(data.trips["weekday"].unique().to_list()) == sorted(
        ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    )
    assert data.trips["duration_min"].min() >= 1.0


def test_deterministic_per_seed() -> None:
    a = make_trips(n_rows=3_000, seed=5)
    b = make_trips(n_rows=3_000, seed=5)
    c = make_trips(n_rows=3_000, seed=6)
    assert a.trips.equals(b.trips) and a.truth.equals(b.truth)
    assert not a.trips.equals(c.trips)


def test_weekday_and_hour_band_agree_with_started_at(data) -> None:
    t = data.trips.with_columns(
        wd=pl.col("started_at").dt.weekday(), hour=pl.col("started_at").dt.hour()
    )
    names = {1: "Mon", 2: "Tue", 3: "Wed", 4: "Thu", 5: "Fri", 6: "Sat", 7: "Sun"}
    assert (t["wd"].replace_strict(names) == t["weekday"]).all()
    band_of_hour = {"night": (0, 6), "morning": (6, 12), "midday": (12, 18), "evening": (18, 24)}
    for band, (lo, hi) in band_of_hour.items():
        hours = t.filter(pl.col("hour_band") == band)["hour"]
        assert hours.min() >= lo and hours.max() < hi


def test_shape_rule_and_not_one_column(data) -> None:
    truth = data.truth
    main = truth.filter(pl.col("route") != "RX")
    assert main.height >= 60
    assert main.group_by("shape").len().sort("shape")["len"].to_list() == [38, 30, 28]
    # the rule: (route + band) mod 3, tram at night always fast
    r = main["route"].str.slice(1).cast(pl.Int64) - 1
    h = main["hour_band"].replace_strict({"night": 0, "morning": 1, "midday": 2, "evening": 3})
    expected = ((r + h) % 3).to_numpy().copy()
    tram_night = ((main["vehicle_type"] == "tram") & (main["hour_band"] == "night")).to_numpy()
    expected[tram_night] = 0
    assert np.array_equal(main["shape"].to_numpy(), expected)
    # no single column determines the shape: every level of every column has all 3 shapes
    for col in KEYS:
        per_level = main.group_by(col).agg(pl.col("shape").n_unique().alias("k"))
        assert per_level["k"].min() == 3, col
    assert truth["shape_name"].unique().sort().to_list() == sorted(SHAPE_NAMES)


def test_planted_shapes_in_the_durations(data) -> None:
    rows = data.trips.join(data.truth.select(*KEYS, "shape"), on=KEYS)
    stats = (
        rows.group_by("shape")
        .agg(
            med=pl.col("duration_min").median(),
            mean=pl.col("duration_min").mean(),
            p95=pl.col("duration_min").quantile(0.95),
            middle=((pl.col("duration_min") > 24) & (pl.col("duration_min") < 36)).mean(),
        )
        .sort("shape")
    )
    fast, slow, bimodal = stats.iter_rows(named=True)
    assert 11.5 < fast["med"] < 12.5 and fast["p95"] < 16
    assert 33 < slow["mean"] < 37 and slow["p95"] > 65  # right tail
    assert bimodal["middle"] < 0.01  # nothing between the modes 15 and 45
    assert 29 < bimodal["mean"] < 31


def test_rare_route_gives_small_combinations(data) -> None:
    rx = data.truth.filter(pl.col("route") == "RX")
    assert rx["n_rows"].max() < 30
    main = data.truth.filter(pl.col("route") != "RX")
    assert main["n_rows"].min() > 500


def test_other_sizes_and_bad_arguments() -> None:
    small = make_trips(n_rows=500, n_routes=3, n_hour_bands=6, n_vehicles=2, rare_share=0.0)
    assert small.truth.height == 4 * 6 * 2
    assert small.trips["hour_band"].unique().sort().to_list()[0] == "h00-04"
    assert "RX" not in small.trips["route"].to_list()
    with pytest.raises(DataError, match="n_rows=0"):
        make_trips(n_rows=0)
    with pytest.raises(DataError, match="n_vehicles=9"):
        make_trips(n_vehicles=9)


def test_delivery_scenario_plants_five_shapes_of_different_scales() -> None:
    import numpy as np
    import polars as pl

    from opslens.synthetic.trips import DELIVERY_SHAPE_NAMES, make_trips

    data = make_trips(n_rows=20_000, seed=2, scenario="delivery")
    assert data.combination_columns == ["zone", "hour_band", "vehicle_type", "day_type"]
    rows = data.trips.join(
        data.truth.select(*data.combination_columns, "shape"), on=data.combination_columns
    )
    medians = (
        rows.group_by("shape").agg(pl.col("duration_min").median()).sort("shape")["duration_min"]
    )
    assert np.all(np.diff(medians.to_numpy()[:4]) > 0)  # bike < scooter < van < truck
    assert medians[0] < 12 and medians[3] > 130
    weekend = rows.filter(pl.col("shape") == 4)["duration_min"].to_numpy()
    assert ((weekend > 130) & (weekend < 180)).mean() < 0.05  # bimodal: little in the middle
    assert sorted(data.truth["shape_name"].unique()) == sorted(DELIVERY_SHAPE_NAMES)
    assert (rows["duration_min"] > 1000).sum() >= 1  # stuck parcels


def test_city_scenario_looks_like_a_year_of_trips_with_a_small_bimodal_shape() -> None:
    from opslens.synthetic.trips import CITY_SHAPE_NAMES

    data = make_trips(n_rows=40_000, seed=5, scenario="city", n_days=182, outlier_share=0.002)
    truth, trips = data.truth, data.trips
    assert sorted(truth["shape_name"].unique()) == sorted(CITY_SHAPE_NAMES)
    ferry = truth.filter(pl.col("shape") == 4)
    assert ferry.height == 9 and 400 <= ferry["n_rows"].sum() <= 520  # small and bimodal
    assert truth.filter(pl.col("shape") != 4)["n_rows"].min() >= 30
    rows = trips.join(truth.select(*KEYS, "shape"), on=KEYS)
    v = rows.filter(pl.col("shape") == 4)["duration_min"].to_numpy()
    assert ((v > 26) & (v < 34)).mean() < 0.05  # two peaks, little between
    # calendar: missing days, fewer trips at the weekend, weekend trips faster
    days = trips["started_at"].dt.date()
    assert 160 <= days.n_unique() < 182
    by_day = trips.group_by(pl.col("started_at").dt.weekday().alias("wd")).len().sort("wd")
    assert by_day["len"][5] < 0.75 * by_day["len"][0]
    # R03 reports nothing for ten days (a sensor fault)
    r03 = trips.filter(pl.col("route") == "R03")["started_at"].dt.date().unique()
    assert days.n_unique() - r03.n_unique() >= 9
    # outliers both ways
    d = trips["duration_min"].to_numpy()
    assert (d > 300).sum() >= 10 and (d < 1.0).sum() >= 40 and d.min() > 0
    again = make_trips(n_rows=40_000, seed=5, scenario="city", n_days=182, outlier_share=0.002)
    assert again.trips.equals(trips)
