"""make_fleet: deterministic, well-shaped, gappy, and its planted structure is recoverable."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl
import pytest
from scipy.stats import fisher_exact
from sklearn.cluster import KMeans
from sklearn.ensemble import IsolationForest
from sklearn.metrics import adjusted_rand_score, roc_auc_score
from sklearn.preprocessing import StandardScaler

from opslens.errors import DataError
from opslens.features.decompose import detect_period
from opslens.synthetic.fleet import FleetData, make_fleet

METRICS = ["temperature", "vibration", "current"]


@pytest.fixture(scope="module")
def fleet() -> FleetData:
    return make_fleet(seed=0)


def _features(readings: pl.DataFrame) -> pl.DataFrame:
    """Mean, std and lag-1 autocorrelation of every metric, one row per device."""
    exprs = []
    for m in METRICS:
        x = pl.col(m)
        exprs += [
            x.mean().alias(f"{m}_mean"),
            x.std().alias(f"{m}_std"),
            pl.corr(x, x.shift(1)).alias(f"{m}_ac1"),
        ]
    return readings.fill_nan(None).group_by("device_id").agg(exprs).sort("device_id")


def _matrix(features: pl.DataFrame) -> np.ndarray:
    return np.asarray(StandardScaler().fit_transform(features.drop("device_id").to_numpy()))


def test_deterministic() -> None:
    a = make_fleet(n_devices=40, n_points=200, n_failing=4, seed=5)
    b = make_fleet(n_devices=40, n_points=200, n_failing=4, seed=5)
    c = make_fleet(n_devices=40, n_points=200, n_failing=4, seed=6)
    assert a.readings.equals(b.readings) and a.truth.equals(b.truth)
    assert not a.readings.equals(c.readings)


def test_shapes_and_types(fleet: FleetData) -> None:
    r, truth = fleet.readings, fleet.truth
    assert dict(r.schema) == {
        "device_id": pl.String,
        "timestamp": pl.Datetime("us"),
        **dict.fromkeys(METRICS, pl.Float64),
    }
    assert dict(truth.schema) == {
        "device_id": pl.String,
        "group": pl.Int64,
        "failed": pl.Boolean,
        "failure_time": pl.Datetime("us"),
    }
    assert truth.height == 300 and truth["device_id"].n_unique() == 300
    assert truth["device_id"][7] == "dev-0007"
    assert r["timestamp"].min() == datetime(2024, 1, 1)
    assert r["timestamp"].max() == datetime(2024, 1, 1) + 999 * (
        datetime(2024, 1, 1, 1) - datetime(2024, 1, 1)
    )
    assert r.select(pl.struct("device_id", "timestamp").is_unique().all()).item()
    assert r.equals(r.sort("device_id", "timestamp"))
    assert sorted(truth["group"].unique().to_list()) == [0, 1, 2]
    assert truth["group"].value_counts()["count"].to_list() == [100, 100, 100]


def test_gaps_and_nans_exist(fleet: FleetData) -> None:
    r, truth = fleet.readings, fleet.truth
    life = truth.select(
        "device_id",
        pl.when("failed")
        .then((pl.col("failure_time") - datetime(2024, 1, 1)).dt.total_hours() + 1)
        .otherwise(1000)
        .alias("expected"),
    )
    counts = r.group_by("device_id").len().join(life, on="device_id")
    dropped = float((counts["expected"] - counts["len"]).sum()) / float(counts["expected"].sum())
    assert 0.005 < dropped < 0.02  # gap_share = 1%
    step = r.select(pl.col("timestamp").diff().over("device_id").dt.total_hours().max()).item()
    assert step >= 3  # at least one outage of several readings
    nan_share = r.select(pl.col(m).is_nan().mean() for m in METRICS).to_numpy()
    assert ((nan_share > 0) & (nan_share < 0.005)).all()


def test_failures_planted_in_one_group(fleet: FleetData) -> None:
    truth, r = fleet.truth, fleet.readings
    failed = truth.filter("failed")
    assert failed.height == 12
    assert failed["group"].n_unique() == 1
    assert truth.filter(~pl.col("failed"))["failure_time"].null_count() == 288
    last = r.group_by("device_id").agg(pl.col("timestamp").max().alias("last"))
    joined = failed.join(last, on="device_id")
    assert (joined["failure_time"] == joined["last"]).all()
    assert (joined["last"] < datetime(2024, 2, 11, 15)).all()  # they stop early
    g = failed["group"][0]
    in_group = truth.filter(pl.col("group") == g)
    table = [[12, in_group.height - 12], [0, truth.height - in_group.height]]
    assert fisher_exact(table, alternative="greater")[1] < 0.01


def test_daily_period_visible(fleet: FleetData) -> None:
    one = fleet.readings.filter(pl.col("device_id") == "dev-0001")["temperature"].to_numpy()
    assert detect_period(one) == 24


def test_groups_recoverable(fleet: FleetData) -> None:
    feats = _features(fleet.readings).join(fleet.truth.select("device_id", "group"), on="device_id")
    X = _matrix(feats.drop("group"))
    labels = KMeans(n_clusters=3, n_init=10, random_state=0).fit_predict(X)
    assert adjusted_rand_score(feats["group"], labels) >= 0.8


def test_failing_devices_rare_in_last_window(fleet: FleetData) -> None:
    last = fleet.readings.filter(
        pl.int_range(pl.len()).over("device_id") >= 0.7 * pl.len().over("device_id")
    )
    feats = _features(last).join(fleet.truth.select("device_id", "failed"), on="device_id")
    X = _matrix(feats.drop("failed"))
    score = -IsolationForest(random_state=0).fit(X).score_samples(X)
    assert roc_auc_score(feats["failed"], score) >= 0.85


def test_other_metric_names_and_bad_arguments() -> None:
    f = make_fleet(n_devices=12, n_points=48, metrics=["pressure", "flow"], n_failing=2, seed=1)
    assert f.readings.columns == ["device_id", "timestamp", "pressure", "flow"]
    with pytest.raises(DataError, match="n_failing=50"):
        make_fleet(n_devices=30, n_points=48, n_failing=50)
    with pytest.raises(DataError, match="timestamp"):
        make_fleet(n_devices=30, n_points=48, metrics=["timestamp"])
