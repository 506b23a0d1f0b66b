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
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from opslens.recipes.residual.params import StreamingParams

__all__ = [
    "AUTO_PERIODS",
    "AxisFit",
    "AxisStream",
    "StreamScore",
    "fit_axis",
    "past_median",
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
    v = np.asarray(v, dtype=np.float64)
    n = v.size
    out = np.full(n, np.nan)
    head = min(n, window + 1)
    for i in range(1, head):
        out[i] = np.median(v[:i])
    if n > window:
        views = sliding_window_view(v[:-1], window)
        for start in range(0, views.shape[0], 4096):
            block = views[start : start + 4096]
            out[window + start : window + start + block.shape[0]] = np.median(block, axis=1)
    return out


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
    reason = (
        f"{name} as configured"
        if len(cands) == 1
        else f"{name} has the lowest median absolute error on the last {n - lo} warm-up "
        f"samples ({shown})"
    )
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

    def __init__(self, params: StreamingParams, *, axis: str = "axis", warmup: int | None = None):
        self.params = params
        self.axis = axis
        self.warmup = warmup_length(params) if warmup is None else warmup
        self.fit: AxisFit | None = None
        self._warm: list[float] = []
        self._times: list[float] = []
        self._hist: deque[float] = deque()
        self._sorted: list[float] = []
        self._run = 0
        self._quiet = 0
        self._hi = self._lo = True

    def _start(self) -> None:
        fit = fit_axis(np.asarray(self._warm), _median_dt(self._times), self.params, axis=self.axis)
        self.fit = fit
        window = self.params.window
        size = max(window, fit.period_samples * self.params.cycles)
        self._hist = deque(self._warm[-size:], maxlen=size)
        self._sorted = sorted(self._warm[-window:])
        self._hi = fit.direction in ("above", "both")
        self._lo = fit.direction in ("below", "both")
        self._warm, self._times = [], []

    def push(self, time_s: float, value: float) -> tuple[float | None, float | None, str]:
        """``(baseline, residual, level)`` of the next value (None, None, ok in the warm-up)."""
        if not math.isfinite(value):
            return None, None, "ok"
        fit = self.fit
        if fit is None:
            self._warm.append(value)
            self._times.append(time_s)
            if len(self._warm) >= self.warmup:
                self._start()
            return None, None, "ok"
        hist = self._hist
        period = fit.period_samples
        if period == 0:
            base = _median(self._sorted)
        else:
            have = len(hist)
            base = _median(
                sorted(
                    hist[-k * period]
                    for k in range(1, self.params.cycles + 1)
                    if k * period <= have
                )
            )
        residual = value - base
        d = residual - fit.centre
        beyond = (self._hi and d > fit.above) or (self._lo and -d > fit.below)
        self._run = self._run + 1 if beyond else 0
        level = "ok"
        if beyond:
            level = "alert"
            if self._quiet == 0 and self._run >= self.params.sustain:
                level = "error"
                self._quiet = self.params.hold_off + 1
        if self._quiet:
            self._quiet -= 1
        window = self.params.window
        srt = self._sorted
        if len(hist) >= window:
            del srt[bisect_left(srt, hist[-window])]
        insort(srt, value)
        hist.append(value)
        return base, residual, level


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

    ``dt_seconds`` (or ``time_s``, whose warm-up intervals give it) sets the period in
    samples. Missing values (NaN) are skipped: level ``ok``, baseline and residual NaN.
    """
    v = np.asarray(values, dtype=np.float64)
    n = v.size
    finite = np.flatnonzero(np.isfinite(v))
    x = v[finite]
    nw = warmup_length(params) if warmup is None else warmup
    predicted = np.full(n, np.nan)
    residual = np.full(n, np.nan)
    levels = np.full(n, "ok", dtype=object)
    if x.size < nw:
        return StreamScore(predicted, residual, levels, None)
    if dt_seconds is None:
        dt_seconds = _median_dt(np.asarray(time_s)[finite[:nw]]) if time_s is not None else 0.0
    fit = fit_axis(x[:nw], dt_seconds, params, axis=axis)
    base = _baseline(x, fit.period_samples, params)[nw:]
    r = x[nw:] - base
    d = r - fit.centre
    hi = fit.direction in ("above", "both")
    lo = fit.direction in ("below", "both")
    beyond = (hi & (d > fit.above)) | (lo & (-d > fit.below))
    codes = beyond.astype(np.int8)
    run = quiet = 0
    sustain, hold = params.sustain, params.hold_off
    for i in np.flatnonzero(beyond).tolist() if sustain == 1 else range(beyond.size):
        if sustain == 1:
            # runs and hold-off only matter at samples beyond a limit
            if i >= quiet:
                codes[i] = 2
                quiet = i + hold + 1
            continue
        run = run + 1 if beyond[i] else 0
        if beyond[i] and i >= quiet and run >= sustain:
            codes[i] = 2
            quiet = i + hold + 1
    rows = finite[nw:]
    predicted[rows] = base
    residual[rows] = r
    levels[rows] = _CODES[codes]
    return StreamScore(predicted, residual, levels, fit)
