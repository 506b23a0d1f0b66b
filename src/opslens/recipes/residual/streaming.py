"""The streaming mode: every stream and axis learns its own normal from its first samples.

Per stream and axis (knobs in :class:`~opslens.recipes.residual.params.StreamingParams`):

1. **Warm-up.** The first ``warmup_samples`` finite values (fewer when the stream's
   length is known: ``warmup_share`` of it, as NAB's probation) are only collected.
   At the last of them the axis is fitted on them alone; nothing later is looked at.
2. **Baseline.** The median of the previous ``window`` values (``none``), or of the
   values one, two, … ``cycles`` periods back (a seasonal baseline with period
   ``P = round(period / dt)`` samples, ``dt`` the median interval of the warm-up).
   ``period: auto`` tries none, a day and a week (those with two periods inside the
   warm-up) and keeps the lowest median absolute error on the warm-up's last third.
3. **Limits.** On the warm-up residuals ``r`` (value − baseline), centre ``c = median(r)``;
   above: ``max(mad_k · 1.4826 · MAD(r), margin · quantile(max(r − c, 0), q))``, below
   the same on ``max(c − r, 0)``. ``direction`` says which sides alarm.
4. **Alarms.** ``error`` when ``sustain`` consecutive values lie beyond an alarming
   limit and no alarm was raised on the axis in the last ``hold_off`` samples;
   ``alert`` beyond a limit otherwise; ``ok`` inside (and during the warm-up).

A seasonal baseline is the median over ``cycles`` periods, so a fault shorter than
``cycles / 2`` periods leaves it unchanged; a longer one becomes, for a while, the
baseline of the same phase one period later (seen as an opposite deviation there).

:func:`score_stream` scores a whole stream at once with the same arithmetic as
:class:`AxisStream` one value at a time (the tests hold them equal).

Example:
    >>> import numpy as np
    >>> from opslens.recipes.residual.params import StreamingParams
    >>> p = StreamingParams(warmup_samples=50, window=20, period="none", hold_off=5)
    >>> y = np.r_[np.sin(np.arange(80.0)), np.sin(np.arange(80.0, 100.0)) - 5.0]
    >>> out = score_stream(y, dt_seconds=60.0, params=p)
    >>> out.fit.family, out.levels[50:80].tolist().count("error")
    ('none', 0)
    >>> int(np.flatnonzero(out.levels == "error")[0])
    80
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from numpy.lib.stride_tricks import sliding_window_view

from opslens.recipes.residual.params import StreamingParams

__all__ = [
    "AUTO_PERIODS",
    "AxisFit",
    "AxisStream",
    "StreamScore",
    "fit_axis",
    "new_axis_state",
    "past_median",
    "push",
    "push_block",
    "score_stream",
    "seasonal_median",
    "warmup_length",
]

#: The periods ``auto`` tries beside none: a day and a week, in seconds.
AUTO_PERIODS = (86400.0, 7 * 86400.0)
_MAD_SCALE = 1.4826
_CODES = np.asarray(("ok", "alert", "error"), dtype=object)


def warmup_length(params: StreamingParams, n_total: int | None = None) -> int:
    """Samples of warm-up: ``warmup_samples``, or ``floor(warmup_share · n_total)`` if fewer.

    Example:
        >>> warmup_length(StreamingParams(), 1882), warmup_length(StreamingParams(), 22695)
        (282, 750)
        >>> warmup_length(StreamingParams())
        750
    """
    n = params.warmup_samples
    if n_total is not None:
        n = min(n, math.floor(params.warmup_share * n_total))
    return max(n, 3)


def past_median(v: np.ndarray, window: int) -> np.ndarray:
    """``out[i]`` = the median of ``v[max(0, i - window):i]`` (NaN at 0): only the past.

    Example:
        >>> past_median(np.array([1.0, 3.0, 2.0, 10.0]), 2).tolist()
        [nan, 1.0, 2.0, 2.5]
    """
    return _past_median_from(np.asarray(v, dtype=np.float64), window, 0)


def seasonal_median(v: np.ndarray, period: int, cycles: int) -> np.ndarray:
    """``out[i]`` = the median of ``v[i - k·period]`` for ``k = 1 … cycles`` with ``i - k·period ≥ 0``.

    Example:
        >>> seasonal_median(np.array([1.0, 2.0, 3.0, 4.0, 5.0]), 2, 2).tolist()
        [nan, nan, 1.0, 2.0, 2.0]
    """
    v = np.asarray(v, dtype=np.float64)
    n = v.size
    stack = np.full((cycles, n), np.nan)
    for k in range(1, cycles + 1):
        if k * period < n:
            stack[k - 1, k * period :] = v[: n - k * period]
    out = np.full(n, np.nan)
    have = np.isfinite(stack).sum(axis=0)
    for count in range(1, cycles + 1):
        cols = have == count
        if cols.any():
            out[cols] = np.median(stack[:count, cols], axis=0)
    return out


@dataclass(frozen=True)
class AxisFit:
    """What a warm-up fitted on one axis: the baseline, its limits and why."""

    family: str
    """``none`` (rolling median) or ``seasonal``."""
    period_samples: int
    period_seconds: float | None
    centre: float
    above: float
    below: float
    direction: str
    warmup: int
    holdout_mae: dict[str, float] = field(default_factory=dict)
    reason: str = ""

    def describe(self) -> dict[str, Any]:
        """JSON-ready numbers of the fit."""
        return {
            "family": self.family,
            "period_samples": self.period_samples,
            "period_seconds": self.period_seconds,
            "centre": self.centre,
            "above": self.above,
            "below": self.below,
            "direction": self.direction,
            "warmup": self.warmup,
            "holdout_mae": dict(self.holdout_mae),
            "reason": self.reason,
        }


def _candidates(
    n: int, dt_seconds: float, params: StreamingParams, axis: str
) -> list[tuple[str, float | None, int]]:
    if params.period == "none":
        return [("none", None, 0)]
    if params.period == "auto":
        out: list[tuple[str, float | None, int]] = [("none", None, 0)]
        for seconds in AUTO_PERIODS:
            p = round(seconds / dt_seconds) if dt_seconds > 0 else 0
            if p >= 1 and 2 * p < n:
                out.append((f"{seconds / 86400:g}d", seconds, p))
        return out
    seconds = float(params.period)
    p = round(seconds / dt_seconds) if dt_seconds > 0 else 0
    if p < 1 or 2 * p >= n:
        raise ValueError(
            f"axis '{axis}': period {seconds:g} s is {p} samples, too long for a warm-up of "
            f"{n} samples (it needs two periods); set params.streaming.period to at most "
            f"{(n - 1) / 2 * dt_seconds:g} s, or raise params.streaming.warmup_samples"
        )
    return [(f"{seconds:g}s", seconds, p)]


def _baseline(v: np.ndarray, period: int, params: StreamingParams) -> np.ndarray:
    return (
        past_median(v, params.window) if period == 0 else seasonal_median(v, period, params.cycles)
    )


def fit_axis(
    values: np.ndarray,
    dt_seconds: float,
    params: StreamingParams,
    *,
    axis: str = "axis",
) -> AxisFit:
    """The baseline and limits of one axis from its warm-up ``values`` (in time order).

    Raises ValueError (naming the axis and the fix) for a fixed ``period`` that does
    not fit twice in the warm-up.
    """
    w = np.asarray(values, dtype=np.float64)
    n = w.size
    cands = _candidates(n, dt_seconds, params, axis)
    lo = 2 * n // 3
    errors: dict[str, float] = {}
    baselines: dict[str, np.ndarray] = {}
    for name, _, period in cands:
        b = _baseline(w, period, params)
        baselines[name] = b
        err = np.abs(w[lo:] - b[lo:])
        err = err[np.isfinite(err)]
        errors[name] = float(np.median(err)) if err.size else math.inf
    name, seconds, period = min(cands, key=lambda c: errors[c[0]])
    r = w - baselines[name]
    r = r[np.isfinite(r)]
    if r.size == 0:
        r = np.zeros(1)
    centre = float(np.median(r))
    spread = _MAD_SCALE * float(np.median(np.abs(r - centre)))
    above = max(
        params.mad_k * spread,
        params.margin * float(np.quantile(np.maximum(r - centre, 0.0), params.quantile)),
    )
    below = max(
        params.mad_k * spread,
        params.margin * float(np.quantile(np.maximum(centre - r, 0.0), params.quantile)),
    )
    shown = ", ".join(f"{k} {v:.4g}" for k, v in errors.items())
    if len(cands) > 1:
        reason = (
            f"{name} has the lowest median absolute error on the last {n - lo} warm-up "
            f"samples ({shown})"
        )
    elif params.period == "auto":
        reason = f"none: neither a day nor a week fits twice in the warm-up of {n} samples"
    else:
        reason = f"{name} as configured"
    return AxisFit(
        family="none" if period == 0 else "seasonal",
        period_samples=period,
        period_seconds=seconds,
        centre=centre,
        above=above,
        below=below,
        direction=params.direction_of(axis),
        warmup=n,
        holdout_mae=errors,
        reason=reason,
    )


def _median(s: Sequence[float]) -> float:
    m = len(s)
    h = m // 2
    return float(s[h]) if m % 2 else (s[h - 1] + s[h]) / 2


def _median_dt(times: Sequence[float] | np.ndarray) -> float:
    if len(times) < 2:
        return 0.0
    return float(np.median(np.diff(np.asarray(times, dtype=np.float64))))


def new_axis_state() -> dict[str, Any]:
    """The JSON-ready state of an axis that has seen nothing.

    Example:
        >>> sorted(new_axis_state())
        ['fit', 'hist', 'quiet', 'run', 'sorted', 'times', 'warm']
    """
    return {"warm": [], "times": [], "fit": None, "hist": [], "sorted": [], "run": 0, "quiet": 0}


def _start(st: dict[str, Any], params: StreamingParams, axis: str) -> None:
    """End of the warm-up: fit on it, keep the history the baseline needs."""
    warm: list[float] = st["warm"]
    fit = fit_axis(np.asarray(warm), _median_dt(st["times"]), params, axis=axis)
    size = max(params.window, fit.period_samples * params.cycles)
    st["fit"] = fit.describe()
    st["hist"] = warm[-size:]
    st["sorted"] = sorted(warm[-params.window :])
    st["warm"], st["times"] = [], []


def push(
    st: dict[str, Any],
    params: StreamingParams,
    warmup: int,
    time_s: float,
    value: float,
    axis: str = "axis",
) -> tuple[float | None, float | None, str, int]:
    """Score the next value of an axis in place of its state: ``(baseline, residual, level, run)``.

    ``run`` counts the consecutive values beyond a limit. In the warm-up (and for a
    missing value): ``(None, None, "ok", 0)``.
    """
    if not math.isfinite(value):
        return None, None, "ok", 0
    fit = st["fit"]
    if fit is None:
        st["warm"].append(value)
        st["times"].append(time_s)
        if len(st["warm"]) >= warmup:
            _start(st, params, axis)
        return None, None, "ok", 0
    hist: list[float] = st["hist"]
    period = fit["period_samples"]
    if period == 0:
        base = _median(st["sorted"])
    else:
        have = len(hist)
        base = _median(
            sorted(hist[-k * period] for k in range(1, params.cycles + 1) if k * period <= have)
        )
    residual = value - base
    d = residual - fit["centre"]
    side = fit["direction"]
    beyond = (side != "below" and d > fit["above"]) or (side != "above" and -d > fit["below"])
    run = st["run"] + 1 if beyond else 0
    st["run"] = run
    quiet = st["quiet"]
    level = "ok"
    if beyond:
        level = "alert"
        if quiet == 0 and run >= params.sustain:
            level = "error"
            quiet = params.hold_off + 1
    st["quiet"] = quiet - 1 if quiet else 0
    window = params.window
    srt: list[float] = st["sorted"]
    if len(hist) >= window:
        del srt[bisect_left(srt, hist[-window])]
    insort(srt, value)
    hist.append(value)
    if len(hist) > max(window, period * params.cycles):
        del hist[0]
    return base, residual, level, run


def _fit_of(description: dict[str, Any]) -> AxisFit:
    return AxisFit(**description)


class AxisStream:
    """One axis of one stream, one value at a time: warm-up, then baseline, limits, alarms.

    Example:
        >>> from opslens.recipes.residual.params import StreamingParams
        >>> s = AxisStream(StreamingParams(warmup_samples=10, window=5, period="none"))
        >>> [s.push(float(i), 1.0 + 0.01 * (i % 2))[2] for i in range(10)][-1]
        'ok'
        >>> s.fit.family, s.push(10.0, 9.0)[2], s.push(11.0, 9.0)[2]
        ('none', 'error', 'alert')
    """

    def __init__(
        self,
        params: StreamingParams,
        *,
        axis: str = "axis",
        warmup: int | None = None,
        state: dict[str, Any] | None = None,
    ) -> None:
        self.params = params
        self.axis = axis
        self.warmup = warmup_length(params) if warmup is None else warmup
        self.state = new_axis_state() if state is None else state

    @property
    def fit(self) -> AxisFit | None:
        """The warm-up's fit (None during the warm-up)."""
        fit = self.state["fit"]
        return None if fit is None else _fit_of(fit)

    def push(self, time_s: float, value: float) -> tuple[float | None, float | None, str]:
        """``(baseline, residual, level)`` of the next value (None, None, ok in the warm-up)."""
        return push(self.state, self.params, self.warmup, time_s, value, self.axis)[:3]


def _past_median_from(full: np.ndarray, window: int, start: int) -> np.ndarray:
    """``past_median(full, window)[start:]`` without the medians before ``start``."""
    n = full.size
    out = np.full(n - start, np.nan)
    head = min(n, window + 1)
    if start < head:  # fewer than `window` values before: a growing sorted list
        seen = sorted(full[: max(start, 1) - 1].tolist())
        for p in range(max(start, 1), head):
            insort(seen, float(full[p - 1]))
            out[p - start] = _median(seen)
    first = max(start, window + 1)
    if n > first and window % 2:
        # an odd window's median is one of its values: polars' rolling median gives it exactly
        medians = pl.Series(full[first - window : n - 1]).rolling_median(window).to_numpy()
        out[first - start :] = medians[window - 1 :]
    elif n > first:
        views = sliding_window_view(full[first - window : n - 1], window)
        for lo in range(0, views.shape[0], 4096):
            block = views[lo : lo + 4096]
            out[first - start + lo : first - start + lo + block.shape[0]] = np.median(block, axis=1)
    return out


def push_block(
    st: dict[str, Any],
    params: StreamingParams,
    warmup: int,
    time_s: np.ndarray,
    values: np.ndarray,
    axis: str = "axis",
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Values in order, from and into a state: what :func:`push` gives one at a time.

    Returns baseline, residual (NaN where none), level codes (0 ok, 1 alert, 2 error)
    and runs, per value.
    """
    v = np.asarray(values, dtype=np.float64)
    n = v.size
    predicted = np.full(n, np.nan)
    residual = np.full(n, np.nan)
    codes = np.zeros(n, dtype=np.int64)
    runs = np.zeros(n, dtype=np.int64)
    finite = np.flatnonzero(np.isfinite(v))
    k = 0
    while st["fit"] is None and k < finite.size:
        i = int(finite[k])
        push(st, params, warmup, float(time_s[i]), float(v[i]), axis)
        k += 1
    rows = finite[k:]
    if rows.size == 0:
        return predicted, residual, codes, runs
    fit = st["fit"]
    x = v[rows]
    hist: list[float] = st["hist"]
    h = len(hist)
    full = np.concatenate([np.asarray(hist, dtype=np.float64), x])
    period = fit["period_samples"]
    if period == 0:
        base = _past_median_from(full, params.window, h)
    else:
        base = seasonal_median(full, period, params.cycles)[h:]
    r = x - base
    d = r - fit["centre"]
    side = fit["direction"]
    beyond = ((side != "below") & (d > fit["above"])) | ((side != "above") & (-d > fit["below"]))
    # runs of consecutive values beyond a limit, continuing the state's run
    idx = np.arange(x.size)
    last_in = np.maximum.accumulate(np.where(~beyond, idx, -1))
    run = np.where(last_in >= 0, idx - last_in, st["run"] + idx + 1)
    run = np.where(beyond, run, 0)
    code = beyond.astype(np.int64)
    quiet = int(st["quiet"])  # values of this block before index `quiet` cannot fire
    sustain, hold = params.sustain, params.hold_off
    for i in np.flatnonzero(beyond & (run >= sustain)).tolist():
        if i >= quiet:
            code[i] = 2
            quiet = i + hold + 1
    st["run"] = int(run[-1])
    st["quiet"] = max(0, quiet - x.size)
    size = max(params.window, period * params.cycles)
    st["hist"] = full[-size:].tolist()
    st["sorted"] = sorted(st["hist"][-params.window :])
    predicted[rows], residual[rows], codes[rows], runs[rows] = base, r, code, run
    return predicted, residual, codes, runs


@dataclass(frozen=True)
class StreamScore:
    """One axis of a whole stream scored: baseline, residual, level per sample, and the fit."""

    predicted: np.ndarray
    residual: np.ndarray
    levels: np.ndarray
    fit: AxisFit | None


def score_stream(
    values: np.ndarray,
    *,
    dt_seconds: float | None = None,
    time_s: np.ndarray | None = None,
    params: StreamingParams,
    axis: str = "axis",
    warmup: int | None = None,
) -> StreamScore:
    """One axis of a whole stream, in order: the answers :class:`AxisStream` gives one by one.

    ``time_s`` (seconds; the warm-up's median interval sets the period in samples) or
    ``dt_seconds``. Missing values (NaN) are skipped: level ``ok``, baseline and residual NaN.
    """
    v = np.asarray(values, dtype=np.float64)
    if time_s is None:
        time_s = np.arange(v.size) * (dt_seconds or 0.0)
    nw = warmup_length(params) if warmup is None else warmup
    st = new_axis_state()
    predicted, residual, codes, _ = push_block(st, params, nw, np.asarray(time_s), v, axis)
    fit = None if st["fit"] is None else _fit_of(st["fit"])
    return StreamScore(predicted, residual, _CODES[codes], fit)
