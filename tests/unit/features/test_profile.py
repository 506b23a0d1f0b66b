"""profile_series: every number against numpy/scipy/statsmodels; ADF readings; bad input."""

from __future__ import annotations

import math
import warnings
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest
from scipy import stats
from statsmodels.tsa.stattools import adfuller

from opslens.errors import DataError
from opslens.features.profile import format_seconds, profile_series


def _adf(x: np.ndarray) -> tuple[float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = adfuller(x, autolag="AIC")
    return float(res[0]), float(res[1])


def test_numbers_match_reference_computations() -> None:
    rng = np.random.default_rng(3)
    v = rng.gamma(2.0, 1.5, size=400)
    v_missing = v.copy()
    v_missing[[10, 50]] = np.nan
    values: list[float | None] = v_missing.tolist()
    values[77] = None
    t = np.arange(400) * 600.0  # 10-minute steps
    keep = np.ones(400, dtype=bool)
    keep[[100, 101, 102, 250]] = False  # gaps: 40 min after 99 and 20 min after 249
    frame = pl.DataFrame({"t": t[keep], "v": [x for x, k in zip(values, keep, strict=True) if k]})
    p = profile_series(frame, time="t", value="v")

    finite = np.array([x for x in frame["v"].to_list() if x is not None and not math.isnan(x)])
    assert p.n_rows == 396
    assert p.missing == 3 and p.count == 393
    assert p.n_gaps == 2
    assert p.largest_gap_seconds == 2400.0 and p.largest_gap == "40min"
    assert p.interval_seconds == 600.0 and p.interval == "10min"
    assert p.mean == pytest.approx(finite.mean(), abs=1e-12)
    assert p.std == pytest.approx(finite.std(ddof=0), abs=1e-12)
    assert (p.min, p.max) == (finite.min(), finite.max())
    q = np.quantile(finite, [0.05, 0.25, 0.5, 0.75, 0.95])
    assert [p.p5, p.p25, p.p50, p.p75, p.p95] == pytest.approx(q.tolist(), abs=1e-12)
    assert p.skewness == pytest.approx(stats.skew(finite, bias=False), abs=1e-12)
    assert p.kurtosis == pytest.approx(stats.kurtosis(finite, bias=False), abs=1e-12)
    stat, pvalue = _adf(finite)
    assert p.adf_statistic == pytest.approx(stat, abs=1e-9)
    assert p.adf_pvalue == pytest.approx(pvalue, abs=1e-12)
    d = p.to_dict()
    assert d["count"] == 393 and set(d) >= {"adf_reading", "p95", "interval"}


def test_unsorted_datetime_time_is_sorted() -> None:
    start = datetime(2024, 3, 1)
    times = [start + timedelta(hours=h) for h in (3, 0, 1, 2, 9)]
    frame = pl.DataFrame({"ts": times, "x": [4.0, 1.0, 2.0, 3.0, 5.0]})
    p = profile_series(frame, time="ts", value="x")
    assert p.interval_seconds == 3600.0 and p.interval == "1h"
    assert p.n_gaps == 1 and p.largest_gap == "6h"


def test_adf_white_noise_stationary_random_walk_not() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(1000.0)
    noise = profile_series(pl.DataFrame({"t": t, "v": rng.normal(size=1000)}), time="t", value="v")
    walk = profile_series(
        pl.DataFrame({"t": t, "v": np.cumsum(rng.normal(size=1000))}), time="t", value="v"
    )
    assert noise.adf_pvalue < 0.05
    assert noise.adf_reading.startswith("stationary at the 5% level")
    assert walk.adf_pvalue > 0.1
    assert walk.adf_reading.startswith("not stationary")


@pytest.mark.parametrize("n", [0, 1, 2, 5])
def test_short_series_never_crash(n: int) -> None:
    frame = pl.DataFrame({"t": np.arange(n, dtype=float), "v": np.arange(n, dtype=float)})
    p = profile_series(frame, time="t", value="v")
    assert p.count == n
    assert math.isnan(p.adf_statistic) and math.isnan(p.adf_pvalue)
    assert p.adf_reading.startswith("too short") and "needs more" in p.adf_reading


def test_constant_and_all_missing() -> None:
    const = profile_series(pl.DataFrame({"t": range(50), "v": [2.0] * 50}), time="t", value="v")
    assert const.std == 0.0 and const.skewness == 0.0 and math.isnan(const.adf_pvalue)
    assert const.adf_reading.startswith("constant")
    empty = profile_series(
        pl.DataFrame({"t": range(4), "v": [None, np.nan, None, np.nan]}), time="t", value="v"
    )
    assert empty.count == 0 and empty.missing == 4 and math.isnan(empty.mean)


def test_bad_columns_named() -> None:
    frame = pl.DataFrame({"t": [1, 2, 3], "v": ["a", "b", "c"], "w": [1.0, 2.0, 3.0]})
    with pytest.raises(DataError, match="'speed'"):
        profile_series(frame, time="t", value="speed")
    with pytest.raises(DataError, match="'v' is String, not numeric"):
        profile_series(frame, time="t", value="v")
    with pytest.raises(DataError, match="time column 'v'"):
        profile_series(frame, time="v", value="w")


def test_format_seconds() -> None:
    assert [format_seconds(s) for s in (30.0, 90.0, 86400.0, 90061.0)] == [
        "30s",
        "1min 30s",
        "1d",
        "1d 1h",
    ]


def test_profile_and_fingerprint_share_one_moment_convention() -> None:
    from opslens.features.fingerprints import FingerprintConfig, series_fingerprint

    rng = np.random.default_rng(5)
    for values in (rng.gamma(2.0, size=200), np.full(20, 3.0), np.array([1.0, 2.0, 7.0])):
        frame = pl.DataFrame({"t": np.arange(values.size, dtype=float), "v": values})
        prof = profile_series(frame, time="t", value="v")
        fp = series_fingerprint(values, FingerprintConfig(window=2, lags=(1,)))
        for name in ("std", "skewness", "kurtosis"):
            a, b = getattr(prof, name), fp[name]
            assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, abs=1e-9), name
