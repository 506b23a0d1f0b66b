"""The Series page: profile, decomposition and point anomalies of one series (AppTest)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from streamlit.testing.v1 import AppTest

from opslens.synthetic.fleet import make_fleet
from opslens.ui.state import DATA, LoadedData

ROOT = Path(__file__).resolve().parents[3]
PAGE = str(ROOT / "src/opslens/recipes/fleet/pages/series.py")
START = datetime(2024, 1, 1)
N = 240
SPIKE = 100  # the index of the planted spike on device "spiky"


def _planted() -> LoadedData:
    """Device 'spiky': a 24-hour cycle with a +15 std spike; 'short': five readings."""
    rng = np.random.default_rng(0)
    hours = np.arange(N)
    base = 10 + 2 * np.sin(2 * np.pi * hours / 24) + rng.normal(0, 0.3, N)
    values = base.copy()
    values[SPIKE] += 15 * base.std()
    times = [START + timedelta(hours=int(h)) for h in hours]
    frame = pl.DataFrame(
        {
            "device_id": ["spiky"] * N + ["short"] * 5,
            "timestamp": times + times[:5],
            "temperature": [*values, 1.0, 2.0, 1.5, 2.5, 1.0],
        }
    )
    return LoadedData(frame, "device_id", "timestamp", ["temperature"], "planted spike")


def _app(data: LoadedData | None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    if data is not None:
        at.session_state[DATA] = data
    return at.run()


def _metric(at: AppTest, label: str) -> str:
    return str(next(m.value for m in at.metric if m.label == label))


def _texts(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown]


def test_without_data_the_page_points_at_the_data_page() -> None:
    at = _app(None)
    assert not at.exception
    assert any("Data page" in i.value for i in at.info)
    assert not at.selectbox


def test_the_planted_spike_is_flagged_by_every_method() -> None:
    at = _app(_planted())
    assert not at.exception
    assert at.selectbox(key="series_device").value == "short"  # devices sorted
    at.selectbox(key="series_device").set_value("spiky").run()
    assert not at.exception and not at.error
    for label in ("z-score", "robust z", "IQR"):
        assert int(_metric(at, label)) >= 1, label
    flagged = at.dataframe[-1].value
    spike_time = START + timedelta(hours=SPIKE)
    row = flagged[flagged["timestamp"] == spike_time]
    assert len(row) == 1
    assert row["flagged by"].item() == "z-score, robust z, IQR"
    # the thresholds are adjustable: a low one flags many more readings
    before = int(_metric(at, "z-score"))
    at.slider(key="thr_zscore").set_value(1.0).run()
    assert int(_metric(at, "z-score")) > 10 * before


def _specs(at: AppTest) -> list[dict[str, Any]]:
    return [json.loads(chart.proto.spec) for chart in at.get("vega_lite_chart")]


def test_the_charts_zoom_and_mark_the_flagged_points() -> None:
    at = _app(_planted())
    at.selectbox(key="series_device").set_value("spiky").run()
    components, anomalies = _specs(at)
    assert [c["encoding"]["y"]["field"] for c in components["vconcat"]] == [
        "observed",
        "trend",
        "seasonal",
        "resid",
    ]
    assert all(p["bind"] == "scales" for p in components["params"])
    assert anomalies["params"][0]["bind"] == "scales"  # .interactive()
    line, marks = anomalies["layer"]
    assert marks["mark"]["type"] == "point"
    assert marks["encoding"]["color"]["field"] == "method"
    assert [t["field"] for t in line["encoding"]["tooltip"]] == ["time", "value"]


def test_the_profile_reads_counts_interval_and_stationarity() -> None:
    at = _app(_planted())
    at.selectbox(key="series_device").set_value("spiky").run()
    assert _metric(at, "Readings") == f"{N:,}"
    assert _metric(at, "Missing") == "0"
    assert _metric(at, "Gaps") == "0"
    assert _metric(at, "Sampling interval") == "1h"
    assert float(_metric(at, "Skewness")) > 0  # the spike pulls the right tail
    quantiles = at.dataframe[0].value
    assert quantiles["statistic"].tolist()[:3] == ["min", "p5", "p25"]
    assert any(t.startswith("**Stationarity (ADF test):** stationary") for t in _texts(at))


def test_the_decomposition_detects_period_24_or_uses_the_given_one() -> None:
    at = _app(_planted())
    at.selectbox(key="series_device").set_value("spiky").run()
    assert any("Period: 24 readings (detected from autocorrelation)" in t for t in _texts(at))
    assert len(at.get("vega_lite_chart")) == 2  # components + anomalies
    at.number_input(key="series_period").set_value(12).run()
    assert not at.exception
    assert any("Period: 12 readings (given)" in t for t in _texts(at))


def test_a_too_short_series_shows_the_decomposition_error_and_the_rest_works() -> None:
    at = _app(_planted())  # 'short' is the first device
    assert not at.exception
    assert len(at.error) == 1
    assert "no seasonal period was found in 'temperature'" in at.error[0].value
    assert _metric(at, "Readings") == "5"
    assert _metric(at, "z-score") == "0"
    assert any("too short" in t for t in _texts(at))  # the ADF reading in words
    at.number_input(key="series_period").set_value(4).run()
    assert "fewer than two periods of 4" in at.error[0].value


def test_a_fleet_series_switches_metric() -> None:
    fleet = make_fleet(seed=0, n_devices=60, n_points=400)
    metrics = ["temperature", "vibration", "current"]
    at = _app(LoadedData(fleet.readings, "device_id", "timestamp", metrics, "fleet"))
    assert not at.exception
    assert at.selectbox(key="series_device").value == "dev-0000"
    at.selectbox(key="series_metric").set_value("vibration").run()
    assert not at.exception
    readings = fleet.readings.filter(pl.col("device_id") == "dev-0000")["vibration"]
    assert _metric(at, "Readings") == f"{readings.is_finite().sum():,}"  # NaN are missing
