"""detect_period and decompose_series: planted cycles recovered, gaps filled, errors explained."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest
from statsmodels.tsa.seasonal import STL

from opslens.errors import DataError
from opslens.features.decompose import decompose_series, detect_period
from opslens.plots.series import plot_decomposition


def _daily(seed: int, n: int = 24 * 40) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return np.asarray(10 + 0.002 * t + 2 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 0.7, n))


@pytest.mark.parametrize("seed", range(5))
def test_detects_daily_cycle_in_hourly_data(seed: int) -> None:
    assert detect_period(_daily(seed)) == 24


@pytest.mark.parametrize("seed", range(5))
def test_detects_weekly_cycle_in_daily_data(seed: int) -> None:
    rng = np.random.default_rng(seed)
    day = np.arange(2 * 365)
    weekly = np.where(day % 7 >= 5, -1.0, 0.4)  # quiet weekends
    assert detect_period(weekly + rng.normal(0, 0.7, day.size)) == 7


@pytest.mark.parametrize("seed", range(10))
def test_no_period_in_noise_or_random_walk(seed: int) -> None:
    rng = np.random.default_rng(seed)
    assert detect_period(rng.normal(size=1000)) is None
    assert detect_period(np.cumsum(rng.normal(size=1000))) is None


def test_max_period_bounds_the_search() -> None:
    assert detect_period(_daily(0), max_period=20) is None


def test_stl_components_and_strength() -> None:
    values = _daily(1)
    frame = pl.DataFrame({"t": np.arange(values.size) * 3600.0, "v": values})
    d = decompose_series(frame, time="t", value="v")
    assert d.period == 24 and d.period_source == "detected from autocorrelation"
    assert d.seasonal_strength > 0.8
    assert d.frame.columns == ["time", "observed", "trend", "seasonal", "resid"]
    parts = d.frame.select(pl.col("trend") + pl.col("seasonal") + pl.col("resid"))
    np.testing.assert_allclose(parts.to_series().to_numpy(), values, atol=1e-9)
    ref = STL(values, period=24, robust=True).fit()
    np.testing.assert_allclose(d.frame["seasonal"].to_numpy(), ref.seasonal, atol=1e-9)
    resid, seasonal, trend = ref.resid, ref.seasonal, ref.trend
    f_s = max(0.0, 1 - np.var(resid) / np.var(seasonal + resid))
    f_t = max(0.0, 1 - np.var(resid) / np.var(trend + resid))
    assert d.seasonal_strength == pytest.approx(f_s, abs=1e-12)
    assert d.trend_strength == pytest.approx(f_t, abs=1e-12)


def test_white_noise_has_weak_seasonality_when_forced() -> None:
    rng = np.random.default_rng(0)
    frame = pl.DataFrame({"t": np.arange(960.0), "v": rng.normal(size=960)})
    d = decompose_series(frame, time="t", value="v", period=24)
    assert d.period_source == "given"
    assert d.seasonal_strength < 0.3


def test_gaps_reinserted_and_interpolated_on_datetime_axis() -> None:
    values = _daily(2)
    start = datetime(2024, 1, 1)
    times = [start + timedelta(hours=int(h)) for h in range(values.size)]
    frame = pl.DataFrame({"ts": times, "v": values})
    dropped = frame.filter(~pl.int_range(pl.len()).is_in([100, 101, 102, 500]))
    dropped = dropped.with_columns(
        pl.when(pl.int_range(pl.len()) == 200).then(None).otherwise(pl.col("v")).alias("v")
    )
    d = decompose_series(dropped, time="ts", value="v", period=24)
    assert d.n_inserted == 4 and d.n_interpolated == 5
    assert d.frame.height == values.size
    assert d.frame["time"].dtype == pl.Datetime("us")
    assert d.frame["time"].to_list() == times
    obs = d.frame["observed"].to_numpy()
    assert obs[101] == pytest.approx((values[99] + values[103]) / 2, abs=1e-12)
    assert obs[200 + 3] == pytest.approx((values[199 + 3] + values[201 + 3]) / 2, abs=1e-12)
    assert np.isfinite(obs).all()


def test_errors_explain_and_suggest_period() -> None:
    rng = np.random.default_rng(0)
    noise = pl.DataFrame({"t": np.arange(500.0), "v": rng.normal(size=500)})
    with pytest.raises(DataError, match=r"no seasonal period.*'v'.*fix: set period to"):
        decompose_series(noise, time="t", value="v")
    with pytest.raises(DataError, match=r"fix: set params.inspect.period to the readings"):
        decompose_series(noise, time="t", value="v", setting="params.inspect.period")
    with pytest.raises(DataError, match="fewer than two periods"):
        decompose_series(noise.head(40), time="t", value="v", period=24)
    with pytest.raises(DataError, match="'missing'"):
        decompose_series(noise, time="t", value="missing", period=24)


def test_plot_decomposition_has_four_panels() -> None:
    values = _daily(3)
    d = decompose_series(
        pl.DataFrame({"t": np.arange(values.size), "v": values}), time="t", value="v"
    )
    fig = plot_decomposition(d, title="pump 7")
    assert [ax.get_ylabel() for ax in fig.axes] == ["observed", "trend", "seasonal", "resid"]
    assert "period 24" in fig.get_suptitle()
