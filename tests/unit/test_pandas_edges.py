"""Pandas at the API's edges: every public function that takes a frame takes a pandas one too.

A pandas DataFrame gives the same result as the polars one it came from, and
anything that is not a frame is refused with a :class:`DataError` naming the
argument (never an ``AttributeError`` from deep inside polars). pandas has one
missing marker (NaN) where polars has two (null and NaN); the functions treat
both as missing, so only the ``filter_table`` rows, which are returned as they
are, are compared with NaN read as null.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import opslens
from opslens.errors import DataError
from opslens.features.fingerprints import FingerprintConfig, device_fingerprint
from opslens.synthetic.fleet import make_fleet
from opslens.synthetic.trips import make_trips

METRICS = ["temperature", "vibration", "current"]
CONFIG = FingerprintConfig(window=12)


@pytest.fixture(scope="module")
def readings() -> pl.DataFrame:
    return make_fleet(seed=0, n_devices=30, n_points=200, n_failing=3).readings


@pytest.fixture(scope="module")
def device(readings: pl.DataFrame) -> pl.DataFrame:
    """The rows of the device with the most missing temperatures (NaN in polars)."""
    nans = readings.group_by("device_id").agg(pl.col("temperature").is_nan().sum().alias("n"))
    worst = nans.sort(["n", "device_id"], descending=[True, False])["device_id"][0]
    one = readings.filter(pl.col("device_id") == worst)
    assert one["temperature"].is_nan().any()  # so the pandas round trip has NaN to carry
    return one


@pytest.fixture(scope="module")
def fingerprints(readings: pl.DataFrame) -> pl.DataFrame:
    return opslens.fleet_fingerprints(
        readings, entity="device_id", time="timestamp", metrics=METRICS, config=CONFIG
    )


@pytest.fixture(scope="module")
def labels(fingerprints: pl.DataFrame) -> np.ndarray:
    groups = opslens.find_groups(fingerprints, entity="device_id", methods=("kmeans",), k_max=4)
    return groups.labels["kmeans"].to_numpy()


def _same_mapping(a: Mapping[str, Any], b: Mapping[str, Any]) -> None:
    """Equal keys and values, NaN equal to NaN."""
    assert list(a) == list(b)
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
            continue
        assert x == y, key


def _nan_as_null(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.col(pl.Float32, pl.Float64).fill_nan(None))


# ---- same result from pandas and polars -------------------------------------------------------
def test_fleet_fingerprints(readings: pl.DataFrame, fingerprints: pl.DataFrame) -> None:
    got = opslens.fleet_fingerprints(
        readings.to_pandas(), entity="device_id", time="timestamp", metrics=METRICS, config=CONFIG
    )
    assert isinstance(got, pl.DataFrame)
    assert_frame_equal(got, fingerprints)


def test_device_fingerprint(device: pl.DataFrame) -> None:
    want = device_fingerprint(device, metrics=METRICS, config=CONFIG)
    got = device_fingerprint(device.to_pandas(), metrics=METRICS, config=CONFIG)
    _same_mapping(got, want)


def test_profile_series(device: pl.DataFrame) -> None:
    want = opslens.profile_series(device, time="timestamp", value="temperature")
    got = opslens.profile_series(device.to_pandas(), time="timestamp", value="temperature")
    assert want.missing > 0
    _same_mapping(got.to_dict(), want.to_dict())


def test_decompose_series(device: pl.DataFrame) -> None:
    kwargs: dict[str, Any] = {"time": "timestamp", "value": "temperature", "period": 24}
    want = opslens.decompose_series(device, **kwargs)
    got = opslens.decompose_series(device.to_pandas(), **kwargs)
    assert want.n_interpolated > 0
    assert_frame_equal(got.frame, want.frame)
    for name in ("period", "period_source", "trend_strength", "seasonal_strength"):
        assert getattr(got, name) == getattr(want, name), name
    assert (got.n_inserted, got.n_interpolated) == (want.n_inserted, want.n_interpolated)


@pytest.mark.parametrize("method", ["zscore", "robust_z", "iqr"])
def test_point_anomalies(device: pl.DataFrame, method: str) -> None:
    kwargs: dict[str, Any] = {"time": "timestamp", "value": "temperature", "method": method}
    want = opslens.point_anomalies(device, **kwargs)
    assert_frame_equal(opslens.point_anomalies(device.to_pandas(), **kwargs), want)


def test_rank_rare_devices(fingerprints: pl.DataFrame) -> None:
    kwargs: dict[str, Any] = {"entity": "device_id", "top_n": 5, "methods": ("ecod",)}
    want = opslens.rank_rare_devices(fingerprints, **kwargs)
    got = opslens.rank_rare_devices(fingerprints.to_pandas(), **kwargs)
    assert_frame_equal(got.scores, want.scores)
    assert_frame_equal(got.top, want.top)
    assert (got.feature_names, got.dropped_features) == (want.feature_names, want.dropped_features)


def test_find_groups(fingerprints: pl.DataFrame) -> None:
    want = opslens.find_groups(fingerprints, entity="device_id", k_max=4)
    got = opslens.find_groups(fingerprints.to_pandas(), entity="device_id", k_max=4)
    assert_frame_equal(got.labels, want.labels)
    assert_frame_equal(got.summary, want.summary)
    assert_frame_equal(got.embedding, want.embedding)
    assert (got.k_choice.k, got.eps, got.best_method) == (
        want.k_choice.k,
        want.eps,
        want.best_method,
    )


def test_group_contrasts(fingerprints: pl.DataFrame, labels: np.ndarray) -> None:
    want = opslens.group_contrasts(fingerprints, labels, entity="device_id", top=None)
    got = opslens.group_contrasts(fingerprints.to_pandas(), labels, entity="device_id", top=None)
    assert want.height > 0
    assert_frame_equal(got, want)


def test_describe_table(readings: pl.DataFrame) -> None:
    want = opslens.describe_table(readings)
    assert want.filter(pl.col("name") == "temperature")["nulls"].item() > 0  # NaN is missing
    assert_frame_equal(opslens.describe_table(readings.to_pandas()), want)


def test_filter_table(readings: pl.DataFrame) -> None:
    kwargs: dict[str, Any] = {
        "equals": {"device_id": ["dev-0001", "dev-0002", "dev-0007"]},
        "ranges": {"vibration": (None, 3.0)},
        "time": "timestamp",
        "start": readings["timestamp"].min(),
        "end": "2099-01-01",
    }
    want = opslens.filter_table(readings, **kwargs)
    got = opslens.filter_table(readings.to_pandas(), **kwargs)
    assert 0 < want.height < readings.height
    assert_frame_equal(got, _nan_as_null(want))
    # no condition at all: the frame comes back, as polars
    assert_frame_equal(opslens.filter_table(readings.to_pandas()), _nan_as_null(readings))


# ---- anything else is refused with a DataError ------------------------------------------------
EDGES: dict[str, tuple[str, Callable[[Any], object]]] = {
    "fleet_fingerprints": (
        "long",
        lambda x: opslens.fleet_fingerprints(
            x, entity="device_id", time="timestamp", metrics=METRICS
        ),
    ),
    "device_fingerprint": ("frame", lambda x: device_fingerprint(x, metrics=METRICS)),
    "profile_series": (
        "frame",
        lambda x: opslens.profile_series(x, time="timestamp", value="temperature"),
    ),
    "decompose_series": (
        "frame",
        lambda x: opslens.decompose_series(x, time="timestamp", value="temperature"),
    ),
    "point_anomalies": (
        "frame",
        lambda x: opslens.point_anomalies(x, time="timestamp", value="temperature", method="iqr"),
    ),
    "rank_rare_devices": (
        "fingerprints",
        lambda x: opslens.rank_rare_devices(x, entity="device_id"),
    ),
    "find_groups": ("fingerprints", lambda x: opslens.find_groups(x, entity="device_id")),
    "group_contrasts": (
        "fingerprints",
        lambda x: opslens.group_contrasts(x, [0, 1, 0], entity="device_id"),
    ),
    "describe_table": ("frame", lambda x: opslens.describe_table(x)),
    "filter_table": ("frame", lambda x: opslens.filter_table(x, equals={"device_id": ["a"]})),
}


@pytest.mark.parametrize("name", sorted(EDGES))
@pytest.mark.parametrize(
    "bad",
    [
        [{"device_id": "a", "timestamp": 0, "temperature": 1.0}],
        pd.Series([1.0, 2.0], name="temperature"),
    ],
    ids=["list", "pandas-series"],
)
def test_a_non_frame_is_a_data_error_naming_the_argument(name: str, bad: object) -> None:
    argument, call = EDGES[name]
    kind = type(bad).__name__
    with pytest.raises(DataError) as info:
        call(bad)
    assert not isinstance(info.value, AttributeError)
    message = str(info.value)
    assert message.startswith(f"{argument} must be a polars or pandas DataFrame, not {kind}")
    assert "fix: pass pl.DataFrame(...) or pd.DataFrame(...)" in message


def test_the_edges_cover_the_public_frame_functions() -> None:
    frame_functions = {
        "fleet_fingerprints",
        "profile_series",
        "decompose_series",
        "point_anomalies",
        "rank_rare_devices",
        "find_groups",
        "group_contrasts",
        "describe_table",
        "filter_table",
    }
    assert frame_functions <= set(opslens.__all__)
    assert set(EDGES) == frame_functions | {"device_fingerprint"}


# ---- the recipes' predictors ------------------------------------------------------------------
@pytest.mark.slow
def test_pattern_predictor_predict_frame_takes_pandas(tmp_path: Path) -> None:
    trips = make_trips(n_rows=4000, seed=1, n_routes=4).trips
    result = opslens.run(
        trips,
        recipe="distribution",
        runs_dir=tmp_path,
        columns={"target": "duration_min", "categorical": ["route", "hour_band"]},
        params={"min_combination_size": 20, "xgboost": {"n_estimators": 20}},
    )
    model = result.predictor()
    assert isinstance(model, opslens.PatternPredictor)
    instances = trips.head(200)
    want = model.predict_frame(instances)
    assert want.height == 200
    assert_frame_equal(model.predict_frame(instances.to_pandas()), want)
    with pytest.raises(DataError, match="the instances must be a polars or pandas DataFrame"):
        model.predict_frame(instances.to_dicts())


@pytest.mark.slow
def test_fleet_predictor_predict_frame_takes_pandas(readings: pl.DataFrame, tmp_path: Path) -> None:
    result = opslens.run(
        readings,
        recipe="fleet",
        runs_dir=tmp_path,
        columns={"entity": "device_id", "time": "timestamp", "metrics": METRICS},
        params={"rare": {"methods": ["ecod"]}, "inspect_top": 0},
    )
    model = result.predictor()
    assert isinstance(model, opslens.FleetPredictor)
    want = model.predict_frame(readings)
    assert want.height == readings["device_id"].n_unique()
    assert {"score", "is_rare", "group"} <= set(want.columns)
    assert_frame_equal(model.predict_frame(readings.to_pandas()), want)
    with pytest.raises(DataError, match="the readings must be a polars or pandas DataFrame"):
        model.predict_frame(readings.head(3).to_dicts())
