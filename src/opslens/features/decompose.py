"""Split one series into trend, seasonality and residual (STL), detecting the period.

The period is found from the autocorrelation function: after removing a
linear trend, the first local peak of the ACF that is significant
(Bonferroni-corrected over the lags scanned), stands out from the trough
before it, and is at least half as high as the highest such peak. No such
peak means no seasonality (``None``).

Strengths follow Wang, Smith & Hyndman (2006): ``F_T = max(0, 1 - Var(R)/Var(T+R))``
and ``F_S = max(0, 1 - Var(R)/Var(S+R))``, both in [0, 1].

Example:
    >>> import numpy as np
    >>> t = np.arange(240)
    >>> detect_period(np.sin(2 * np.pi * t / 24) + np.random.default_rng(0).normal(0, 0.3, 240))
    24
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
from scipy import stats

from opslens.core.frames import as_polars
from opslens.errors import DataError
from opslens.features.profile import prepare_series

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Decomposition", "decompose_series", "detect_period"]

_MIN_PROMINENCE = 0.1
_MIN_HEIGHT = 0.1


@dataclass(frozen=True)
class Decomposition:
    """STL components of one series, the period used and the strengths.

    ``frame`` holds ``time, observed, trend, seasonal, resid`` on a regular grid;
    ``n_inserted`` timestamps were added for gaps and ``n_interpolated`` values
    (inserted or NaN) were filled by linear interpolation before STL.

    Example:
        >>> import numpy as np, polars as pl
        >>> t = np.arange(96.0)
        >>> d = decompose_series(pl.DataFrame({"t": t, "v": np.sin(2 * np.pi * t / 24)}), time="t", value="v", period=24)
        >>> d.frame.columns, d.period, d.period_source
        (['time', 'observed', 'trend', 'seasonal', 'resid'], 24, 'given')
    """

    frame: pl.DataFrame
    period: int
    period_source: str
    trend_strength: float
    seasonal_strength: float
    n_inserted: int
    n_interpolated: int


def _acf(x: np.ndarray, nlags: int) -> np.ndarray:
    """Autocorrelation at lags 0..nlags by FFT (the biased estimator statsmodels uses)."""
    x = x - x.mean()
    n = x.size
    size = 1 << int(np.ceil(np.log2(2 * n)))
    f = np.fft.rfft(x, size)
    ac = np.fft.irfft(f * np.conj(f), size)[: nlags + 1]
    return np.asarray(ac / ac[0])


def detect_period(values: np.ndarray, *, max_period: int | None = None) -> int | None:
    """Return the dominant seasonal period (in samples) from the ACF, or None.

    NaN are linearly interpolated; a linear trend is removed first. Periods are
    searched in ``[2, max_period]`` (default: half the series length).

    Example:
        >>> import numpy as np
        >>> detect_period(np.random.default_rng(1).normal(size=500)) is None
        True
    """
    x = np.asarray(values, dtype=float).ravel()
    ok = np.isfinite(x)
    if ok.sum() < 8:
        return None
    idx = np.arange(x.size)
    x = np.interp(idx, idx[ok], x[ok])
    n = x.size
    x = x - np.polyval(np.polyfit(idx, x, 1), idx)
    if np.ptp(x) == 0:
        return None
    top = n // 2 if max_period is None else min(int(max_period), n - 2)
    if top < 2:
        return None
    ac = _acf(x, top + 1)
    lags = np.arange(2, top + 1)
    peaks = lags[(ac[lags] > ac[lags - 1]) & (ac[lags] >= ac[lags + 1])]
    if peaks.size == 0:
        return None
    # Bartlett's standard error of r_k under a short-memory null (the ACF summed up to
    # its first zero crossing), Bonferroni-corrected over the lags scanned.
    below = np.flatnonzero(ac[1:] <= 0)
    q = int(below[0]) + 1 if below.size else top
    se = np.sqrt((1.0 + 2.0 * np.sum(ac[1:q] ** 2)) / n)
    bound = max(float(stats.norm.isf(0.01 / top)) * se, _MIN_HEIGHT)
    trough = np.minimum.accumulate(ac)[peaks]
    good = peaks[(ac[peaks] > bound) & (ac[peaks] - trough > _MIN_PROMINENCE)]
    if good.size == 0:
        return None
    first = int(good[ac[good] >= 0.5 * ac[good].max()][0])
    return _refine(ac, first, top)


def _refine(ac: np.ndarray, guess: int, top: int) -> int:
    """Pick the period near ``guess`` whose multiples have the highest mean ACF."""
    candidates = np.arange(max(2, (3 * guess) // 4), min(top, (4 * guess) // 3) + 1)
    multiples = np.arange(1, 11)
    lag = candidates[:, None] * multiples[None, :]
    valid = lag <= top
    score = np.where(valid, ac[np.minimum(lag, top)], 0.0).sum(axis=1) / valid.sum(axis=1)
    return int(candidates[np.argmax(score)])


def _regular_grid(t: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Place readings on a regular grid at the median step when they sit on one."""
    if t.size < 3:
        return t, v, 0
    step = float(np.median(np.diff(t)))
    if step <= 0:
        return t, v, 0
    pos = np.rint((t - t[0]) / step).astype(np.int64)
    on_grid = np.allclose(t - t[0], pos * step, atol=1e-6 * step) and np.all(np.diff(pos) > 0)
    if not on_grid or pos[-1] == t.size - 1:
        return t, v, 0
    full = np.full(pos[-1] + 1, np.nan)
    full[pos] = v
    return t[0] + np.arange(pos[-1] + 1) * step, full, int(pos[-1] + 1 - t.size)


def _strength(component: np.ndarray, resid: np.ndarray) -> float:
    total = np.var(component + resid)
    return float(max(0.0, 1.0 - np.var(resid) / total)) if total > 0 else 0.0


def decompose_series(
    frame: pl.DataFrame | pd.DataFrame,
    *,
    time: str,
    value: str,
    period: int | None = None,
    robust: bool = True,
    setting: str = "period",
) -> Decomposition:
    """Decompose ``value`` over ``time`` with STL; detect the period when not given.

    ``setting`` is how the caller's user sets the period (e.g.
    ``params.inspect.period``); the fix of a DataError names it.

    Readings on a regular grid with missing timestamps get those timestamps
    back; gaps and NaN are linearly interpolated (counts reported).

    Example:
        >>> import numpy as np, polars as pl
        >>> t = np.arange(24 * 10.0)
        >>> v = 5 + 0.01 * t + np.sin(2 * np.pi * t / 24)
        >>> d = decompose_series(pl.DataFrame({"t": t, "v": v}), time="t", value="v")
        >>> d.period, d.period_source, d.seasonal_strength > 0.9
        (24, 'detected from autocorrelation', True)
    """
    from statsmodels.tsa.seasonal import STL

    frame = as_polars(frame, what="frame")
    t, v = prepare_series(frame, time=time, value=value)
    grid_t, grid_v, inserted = _regular_grid(t, v)
    ok = np.isfinite(grid_v)
    if ok.sum() < 4:
        raise DataError(
            f"column {value!r} has {int(ok.sum())} finite readings, too few to decompose",
            fix="select a longer time range or another series",
        )
    n_interp = int((~ok).sum())
    idx = np.arange(grid_v.size)
    filled = np.interp(idx, idx[ok], grid_v[ok])

    source = "given"
    if period is None:
        period = detect_period(filled)
        source = "detected from autocorrelation"
        if period is None:
            raise DataError(
                f"no seasonal period was found in {value!r} (its autocorrelation has no significant peak)",
                fix=f"set {setting} to the readings per cycle, e.g. 24 for a daily cycle in "
                "hourly data",
            )
    if period < 2:
        raise DataError(f"period {period} is too short for STL", fix=f"set {setting} to 2 or more")
    if filled.size < 2 * period:
        raise DataError(
            f"{value!r} has {filled.size} readings, fewer than two periods of {period}",
            fix=f"set a shorter {setting} or select a longer time range",
        )
    res = STL(filled, period=int(period), robust=robust).fit()
    trend, seasonal, resid = (
        np.asarray(c, dtype=float) for c in (res.trend, res.seasonal, res.resid)
    )

    tdtype = frame.schema[time]
    tcol = pl.Series("time", grid_t)
    if isinstance(tdtype, pl.Datetime) or tdtype == pl.Date:
        unit = tdtype.time_unit if isinstance(tdtype, pl.Datetime) else "us"
        tz = tdtype.time_zone if isinstance(tdtype, pl.Datetime) else None
        scale = {"ns": 1e9, "us": 1e6, "ms": 1e3}[unit]
        tcol = pl.Series("time", np.rint(grid_t * scale).astype(np.int64)).cast(pl.Datetime(unit))
        if tz is not None:
            tcol = tcol.dt.replace_time_zone("UTC").dt.convert_time_zone(tz)
    out = pl.DataFrame(
        [
            tcol,
            pl.Series("observed", filled),
            pl.Series("trend", trend),
            pl.Series("seasonal", seasonal),
            pl.Series("resid", resid),
        ]
    )
    return Decomposition(
        frame=out,
        period=int(period),
        period_source=source,
        trend_strength=_strength(trend, resid),
        seasonal_strength=_strength(seasonal, resid),
        n_inserted=inserted,
        n_interpolated=n_interp,
    )
