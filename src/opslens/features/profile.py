"""Profile one time series: counts, missing values, gaps, sampling, moments, ADF.

The time column may be a polars Datetime/Date or numeric epoch seconds. Rows
are sorted by time before gaps are measured. Statistics use the finite
readings only (nulls and NaN are counted as missing). Moments follow the one
convention of :mod:`opslens.features.fingerprints`, so a profile and a
fingerprint of the same series agree: ``std`` is the population standard
deviation (``ddof=0``, NaN without readings); skewness and kurtosis are the
bias-corrected estimators (scipy ``bias=False``, as pandas' ``skew``/``kurt``;
kurtosis is the Fisher *excess* kurtosis, 0 for a normal), NaN for fewer than 3
/ 4 readings and 0 for a constant series.

Example:
    >>> import polars as pl
    >>> frame = pl.DataFrame({"t": [0.0, 60.0, 120.0, 300.0], "v": [1.0, 2.0, None, 4.0]})
    >>> p = profile_series(frame, time="t", value="v")
    >>> (p.count, p.missing, p.n_gaps, p.interval)
    (3, 1, 1, '1min')
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
from scipy import stats
from threadpoolctl import threadpool_limits

from opslens.core.frames import as_polars
from opslens.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SeriesProfile", "format_seconds", "prepare_series", "profile_series"]

_STATIONARY = "stationary at the 5% level: the series returns to a stable mean"
_NOT_STATIONARY = (
    "not stationary at the 5% level: the series wanders, "
    "e.g. a trend or level shifts; difference or detrend it before modelling"
)
_TOO_SHORT = "too short: the ADF test needs more readings (at least 8 finite values)"
_CONSTANT = "constant: every reading is the same, so the ADF test does not apply"
_MIN_ADF = 8


@dataclass(frozen=True)
class SeriesProfile:
    """Summary of one series: counts, gaps, sampling interval, moments and ADF.

    Example:
        >>> import polars as pl
        >>> p = profile_series(pl.DataFrame({"t": [0, 1, 2], "v": [1.0, 2.0, 3.0]}), time="t", value="v")
        >>> p.to_dict()["mean"]
        2.0
    """

    column: str
    n_rows: int
    count: int
    missing: int
    missing_share: float
    n_gaps: int
    largest_gap_seconds: float
    largest_gap: str
    interval_seconds: float
    interval: str
    mean: float
    std: float
    min: float
    max: float
    p5: float
    p25: float
    p50: float
    p75: float
    p95: float
    skewness: float
    kurtosis: float
    adf_statistic: float
    adf_pvalue: float
    adf_lags: int | None
    adf_reading: str

    def to_dict(self) -> dict[str, Any]:
        """Return the profile as a plain dict (JSON-friendly values).

        Example:
            >>> import polars as pl
            >>> p = profile_series(pl.DataFrame({"t": [0, 1, 2], "v": [1.0, 1.0, 1.0]}), time="t", value="v")
            >>> p.to_dict()["adf_reading"].startswith("too short")
            True
        """
        return dataclasses.asdict(self)


def format_seconds(seconds: float) -> str:
    """Write a duration in seconds as a short readable string ('1h', '15min', '1d 2h').

    Example:
        >>> format_seconds(3600.0), format_seconds(900.0), format_seconds(93600.0), format_seconds(0.5)
        ('1h', '15min', '1d 2h', '0.5s')
    """
    if not np.isfinite(seconds):
        return "n/a"
    if seconds < 1:
        return f"{seconds:g}s"
    parts: list[str] = []
    rest = round(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return " ".join(parts[:2])


def prepare_series(frame: pl.DataFrame, *, time: str, value: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate the columns and return (time in seconds, values as float), sorted by time.

    Nulls in the value column become NaN; rows with a null time are dropped.

    Example:
        >>> import polars as pl
        >>> t, v = prepare_series(pl.DataFrame({"t": [2, 1], "v": [5, None]}), time="t", value="v")
        >>> t.tolist(), v.tolist()
        ([1.0, 2.0], [nan, 5.0])
    """
    for name in (time, value):
        if name not in frame.columns:
            raise DataError(
                f"column {name!r} is not in the table (columns: {', '.join(frame.columns)})",
                fix="name an existing column",
            )
    tdtype, vdtype = frame.schema[time], frame.schema[value]
    if not vdtype.is_numeric():
        raise DataError(
            f"value column {value!r} is {vdtype}, not numeric",
            fix=f"cast {value!r} to a number or choose a numeric column",
        )
    if tdtype == pl.Date:
        texpr = pl.col(time).cast(pl.Datetime("us")).dt.epoch("us").cast(pl.Float64) / 1e6
    elif isinstance(tdtype, pl.Datetime):
        texpr = pl.col(time).dt.epoch("us").cast(pl.Float64) / 1e6
    elif tdtype.is_numeric():
        texpr = pl.col(time).cast(pl.Float64)
    else:
        raise DataError(
            f"time column {time!r} is {tdtype}, neither a datetime nor epoch seconds",
            fix=f"parse {time!r} to a datetime (e.g. str.to_datetime) before profiling",
        )
    sub = (
        frame.select(texpr.alias("t"), pl.col(value).cast(pl.Float64).fill_null(np.nan).alias("v"))
        .drop_nulls("t")
        .sort("t")
    )
    return sub["t"].to_numpy().astype(float), sub["v"].to_numpy().astype(float)


def _adf(values: np.ndarray) -> tuple[float, float, int | None, str]:
    """ADF statistic, p-value, lags used and a plain reading; NaN when undefined."""
    from statsmodels.tsa.stattools import adfuller

    if values.size < _MIN_ADF:
        return np.nan, np.nan, None, _TOO_SHORT
    if np.ptp(values) == 0:
        return np.nan, np.nan, None, _CONSTANT
    try:
        # one BLAS thread: adfuller's many small SVDs were 3x slower with a thread pool
        # competing for the cores (see opslens.cluster.groups)
        with warnings.catch_warnings(), threadpool_limits(1):
            warnings.simplefilter("ignore")
            res = adfuller(values, autolag="AIC")
    except (ValueError, np.linalg.LinAlgError):
        return np.nan, np.nan, None, _TOO_SHORT
    stat, pvalue, lags = float(res[0]), float(res[1]), int(res[2])
    return stat, pvalue, lags, _STATIONARY if pvalue < 0.05 else _NOT_STATIONARY


def profile_series(frame: pl.DataFrame | pd.DataFrame, *, time: str, value: str) -> SeriesProfile:
    """Profile the ``value`` column of ``frame`` ordered by ``time``.

    A gap is an interval longer than 1.5 × the median sampling interval.
    Series too short or constant get NaN ADF fields and a reading saying why.

    Example:
        >>> import numpy as np, polars as pl
        >>> rng = np.random.default_rng(0)
        >>> frame = pl.DataFrame({"t": np.arange(200.0), "v": rng.normal(size=200)})
        >>> p = profile_series(frame, time="t", value="v")
        >>> p.adf_pvalue < 0.05, p.adf_reading.startswith("stationary")
        (True, True)
    """
    frame = as_polars(frame, what="frame")
    t, v = prepare_series(frame, time=time, value=value)
    n_rows = int(v.size)
    finite = v[np.isfinite(v)]
    count = int(finite.size)
    missing = n_rows - count

    steps = np.diff(t)
    if steps.size:
        interval = float(np.median(steps))
        gaps = steps[steps > 1.5 * interval]
        n_gaps = int(gaps.size)
        largest = float(gaps.max()) if n_gaps else 0.0
    else:
        interval, n_gaps, largest = np.nan, 0, 0.0

    if count:
        q = np.quantile(finite, [0.05, 0.25, 0.5, 0.75, 0.95])
        mean, vmin, vmax = float(finite.mean()), float(finite.min()), float(finite.max())
    else:
        q = np.full(5, np.nan)
        mean = vmin = vmax = np.nan
    std = float(finite.std(ddof=0)) if count else np.nan
    varies = count > 0 and np.ptp(finite) > 0
    skew = (float(stats.skew(finite, bias=False)) if varies else 0.0) if count > 2 else np.nan
    kurt = (float(stats.kurtosis(finite, bias=False)) if varies else 0.0) if count > 3 else np.nan
    adf_stat, adf_p, adf_lags, reading = _adf(finite)

    return SeriesProfile(
        column=value,
        n_rows=n_rows,
        count=count,
        missing=missing,
        missing_share=missing / n_rows if n_rows else np.nan,
        n_gaps=n_gaps,
        largest_gap_seconds=largest,
        largest_gap=format_seconds(largest) if n_gaps else "none",
        interval_seconds=interval,
        interval=format_seconds(interval),
        mean=mean,
        std=std,
        min=vmin,
        max=vmax,
        p5=float(q[0]),
        p25=float(q[1]),
        p50=float(q[2]),
        p75=float(q[3]),
        p95=float(q[4]),
        skewness=skew,
        kurtosis=kurt,
        adf_statistic=adf_stat,
        adf_pvalue=adf_p,
        adf_lags=adf_lags,
        adf_reading=reading,
    )
