"""The online checker: residuals, levels (ok / alert / error) and run lengths, per stream.

A sample's residual on an axis is ``value - trend(time_s)``. Per axis the
checker counts the consecutive samples above MinC (``run``) and above MaxC
(``run_error``) — with ``direction: below`` or ``both`` in the axis's entry, below
``-MinC_below`` / ``-MaxC_below`` too; the level is ``error`` once ``run_error >= T_short_steps``,
else ``alert`` once ``run >= T_long_steps``, else ``ok``. A sample at or below
MinC ends the run, so the level is back to ``ok`` at the first normal sample.

The state of a stream is JSON-ready (``{"runs": {axis: [run, run_error]},
"last_key": ..., "n": ...}``) so a service can keep it in Redis. A sample whose
key (its ``seq`` field, else its time) is not above the stream's last key is a
duplicate: answered with ``duplicate: true`` and not scored, so a message
delivered twice is never counted twice.

:func:`score_block` scores a whole array from a state with the same arithmetic
as one sample at a time, so both give identical answers.

Example:
    >>> runs_after(np.array([True, True, False, True]), start=3).tolist()
    [4, 5, 0, 1]
    >>> level_codes(np.array([0, 2, 3]), np.array([0, 0, 2]), t_long=2, t_short=2).tolist()
    [0, 1, 2]
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from opslens.errors import DataError, InstanceError
from opslens.recipes.residual.conditional import AxisConditional
from opslens.recipes.residual.params import HOLD_OFF
from opslens.recipes.residual.streaming import new_axis_state, push, push_block, warmup_length
from opslens.recipes.residual.trend import AxisTrend

if TYPE_CHECKING:
    from opslens.recipes.residual.predictor import ResidualPredictor

__all__ = [
    "LEVELS",
    "MISSING",
    "RECENT_KEYS",
    "OnlineChecker",
    "alarms_after",
    "level_codes",
    "new_state",
    "new_stream_state",
    "runs_after",
    "score_block",
    "score_one",
    "stream_block",
    "stream_one",
]

#: The levels, by code.
LEVELS = ("ok", "alert", "error")
#: The level of an axis whose reading is missing (NaN, Infinity, null): not scored, its runs
#: reset; the sample's level when no axis is in alert or error.
MISSING = "missing"
#: How many of a stream's newest keys are kept to tell a replay from a late sample.
RECENT_KEYS = 64
_NAMES = np.asarray(LEVELS, dtype=object)
_LOG = logging.getLogger("opslens.residual")


def new_state(axes: Sequence[str]) -> dict[str, Any]:
    """The state of a stream that has seen nothing.

    Example:
        >>> new_state(["axis1"])
        {'runs': {'axis1': [0, 0]}, 'last_key': None, 'n': 0}
    """
    return {"runs": {a: [0, 0] for a in axes}, "last_key": None, "n": 0}


def runs_after(above: np.ndarray, start: int) -> np.ndarray:
    """Consecutive-True counts at each position, continuing a run of ``start`` before it."""
    above = np.asarray(above, dtype=bool)
    idx = np.arange(above.size)
    last_false = np.maximum.accumulate(np.where(~above, idx, -1)) if above.size else idx
    return np.where(last_false >= 0, idx - last_false, start + idx + 1).astype(np.int64)


def level_codes(run: np.ndarray, run_error: np.ndarray, *, t_long: int, t_short: int) -> np.ndarray:
    """Indexes into :data:`LEVELS`: 2 (error) where ``run_error >= t_short``, 1 (alert) where
    ``run >= t_long``, else 0 (ok)."""
    return np.where(run_error >= t_short, 2, np.where(run >= t_long, 1, 0))


_LIMIT_KEYS = ("MinC", "MaxC", "MinC_below", "MaxC_below")


def _block_limits(
    limits: Mapping[str, Any],
    model: Any,
    context: Mapping[str, np.ndarray] | None,
    rows: np.ndarray,
) -> Mapping[str, Any]:
    """An axis's limits for the rows of a block: the entry's, or with per-mode limits an
    array per limit (each row its mode's; a mode without its own, the axis's)."""
    per_mode = limits.get("modes")
    if not per_mode or not isinstance(model, AxisConditional):
        return limits
    labels = model.mode_of_columns({c: (context or {})[c][rows] for c in model.inputs()})
    if labels is None:
        return limits
    # each distinct mode of the block looked up once, then spread to its rows
    modes, rows_mode = np.unique(np.asarray(labels), return_inverse=True)
    names = [str(m) for m in modes.tolist()]
    out: dict[str, Any] = {}
    for key in _LIMIT_KEYS:
        if key in limits:
            default = float(limits[key])
            table = np.array(
                [float(per_mode[m].get(key, default)) if m in per_mode else default for m in names]
            )
            out[key] = table[rows_mode]
    return out


def alarms_after(
    error: np.ndarray, *, was_error: bool, quiet: int, hold_off: int
) -> tuple[np.ndarray, bool, int]:
    """The alarm-flood guard: an alarm where the stream enters ``error`` (the sample before
    was not) unless an alarm fired in the ``hold_off`` samples before it.

    ``was_error`` and ``quiet`` (samples left in which no alarm fires) continue a stream's
    state; returns the alarms and the state after them. The levels are left as they are.

    Example:
        >>> error = np.array([True, True, False, True, False, False, True])
        >>> alarms_after(error, was_error=False, quiet=0, hold_off=3)[0].tolist()
        [True, False, False, False, False, False, True]
    """
    error = np.asarray(error, dtype=bool)
    before = np.concatenate([[was_error], error[:-1]]) if error.size else error
    alarm = np.zeros(error.size, dtype=bool)
    for i in np.flatnonzero(error & ~before).tolist():
        if i >= quiet:
            alarm[i] = True
            quiet = i + hold_off + 1
    last = bool(error[-1]) if error.size else was_error
    return alarm, last, max(0, quiet - error.size)


def score_block(
    predictor: ResidualPredictor,
    time_s: np.ndarray,
    values: np.ndarray,
    keys: np.ndarray,
    state: Mapping[str, Any] | None,
    context: Mapping[str, np.ndarray] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Score samples in order from ``state``: answer columns (arrays, masked where null) and the state after them.

    ``values`` is ``(n, n_axes)`` in ``predictor.axes`` order; ``keys`` the dedup keys;
    ``context`` the regressor and mode columns of models on other signals.
    """
    if getattr(predictor, "streaming", None) is not None:
        return stream_block(predictor, time_s, values, keys, state)
    axes = predictor.axes
    st = new_state(axes) if state is None else state
    n = time_s.size
    rows, count, cols, new_last, recent = _fresh_rows(time_s, keys, st)
    worst = np.zeros(rows.size, dtype=np.int64)
    any_missing = np.zeros(rows.size, dtype=bool)
    runs_out: dict[str, list[int]] = {}
    warned = bool(st.get("warned", False))
    if not warned and rows.size:
        picked = {k: np.asarray(v)[rows] for k, v in (context or {}).items()}
        warned = _guard_block(predictor, time_s[rows], count, picked)
    for j, axis in enumerate(axes):
        limits = predictor.thresholds[axis]
        t = time_s[rows]
        model = predictor.models[axis]
        if isinstance(model, AxisConditional):
            try:
                predicted = model.predict_columns(
                    {c: (context or {})[c][rows] for c in model.inputs()}
                )
            except (KeyError, ValueError) as e:
                problem, _, fix = str(e).strip("'\"").partition("; ")
                raise DataError(problem, fix=fix or None) from None
        else:
            predicted = model.predict(t)
        missing = ~np.isfinite(values[rows, j])
        residual = np.where(missing, np.nan, values[rows, j] - predicted)  # never beyond a limit
        start_run, start_err = (int(v) for v in st["runs"].get(axis, [0, 0]))
        side = limits.get("direction", "above")
        lim = _block_limits(limits, model, context, rows)
        if side == "above":
            run = runs_after(residual > lim["MinC"], start_run)
            run_error = runs_after(residual > lim["MaxC"], start_err)
        else:
            up = side == "both"
            minc = (-residual > lim["MinC_below"]) | (up & (residual > lim["MinC"]))
            maxc = (-residual > lim["MaxC_below"]) | (up & (residual > lim["MaxC"]))
            run, run_error = runs_after(minc, start_run), runs_after(maxc, start_err)
        code = level_codes(
            run, run_error, t_long=limits["T_long_steps"], t_short=limits["T_short_steps"]
        )
        worst = np.maximum(worst, code)
        any_missing |= missing
        cols[f"{axis}_predicted"] = _scatter(n, rows, predicted)
        cols[f"{axis}_residual"] = _scatter(n, rows, residual, missing)
        cols[f"{axis}_level"] = _scatter(n, rows, _level_names(code, missing))
        cols[f"{axis}_run"] = _scatter(n, rows, run)
        cols[f"{axis}_run_error"] = _scatter(n, rows, run_error)
        runs_out[axis] = [int(run[-1]), int(run_error[-1])] if rows.size else [start_run, start_err]
    cols["level"] = _scatter(n, rows, _level_names(worst, any_missing & (worst == 0)))
    st_fit: dict[str, Any] = {}
    _watch_block(predictor, st, st_fit, worst >= 1, count)
    alarm, was_error, quiet = alarms_after(
        worst == 2,
        was_error=bool(st.get("was_error", False)),
        quiet=int(st.get("quiet", 0)),
        hold_off=int(getattr(predictor, "hold_off", HOLD_OFF)),
    )
    cols["alarm"] = _scatter(n, rows, alarm)
    state_out: dict[str, Any] = {
        "runs": runs_out,
        "last_key": None if not np.isfinite(new_last) else new_last,
        "n": count + int(rows.size),
        "was_error": was_error,
        "quiet": quiet,
        "recent": recent,
        **st_fit,
    }
    if warned:
        state_out["warned"] = True
    return cols, state_out


def score_one(
    predictor: ResidualPredictor,
    time_s: float,
    values: Sequence[float],
    key: float,
    state: Mapping[str, Any] | None,
    sample: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One sample scored from ``state``: the answer of :func:`score_block` for an array of one.

    ``sample`` holds the inputs of models on other signals (regressors, the mode).

    The same comparisons and arithmetic on Python scalars (the trend through
    :meth:`AxisTrend.predict_at`), without the array overhead that would make a
    stream of single samples several times slower; the tests hold the two equal.
    """
    if "_guard_said" not in predictor.__dict__:
        _guard_off_warning(predictor)
    if getattr(predictor, "streaming", None) is not None:
        return stream_one(predictor, time_s, values, key, state)
    st = new_state(predictor.axes) if state is None else state
    last = st.get("last_key")
    count = int(st.get("n", 0))
    recent = _recent(st)
    if last is not None and not key > float(last):
        answer = _not_scored(predictor, time_s, replay=key in recent)
        kept = {"runs": {a: list(r) for a, r in st["runs"].items()}, "last_key": last, "n": count}
        kept |= {"was_error": bool(st.get("was_error", False)), "quiet": int(st.get("quiet", 0))}
        kept["recent"] = list(recent)
        kept |= {k: st[k] for k in ("fit_n", "fit_bad", "unfit", "cal_n", "cal_t0") if k in st}
        return answer, kept | ({"warned": True} if st.get("warned") else {})
    answer = {"sample": count + 1, "time_s": time_s, "duplicate": False, "out_of_order": False}
    runs: dict[str, list[int]] = {}
    worst = 0
    missing_any = False
    for axis, value in zip(predictor.axes, values, strict=True):
        limits = predictor.thresholds[axis]
        model = predictor.models[axis]
        if isinstance(model, AxisConditional):
            try:
                predicted = model.predict_row(sample or {})
            except ValueError as e:
                problem, _, fix = str(e).partition("; ")
                raise InstanceError(problem, fix=fix or None) from None
            per_mode = limits.get("modes")
            if per_mode:
                mode = model.mode_of_row(sample or {})
                limits = {**limits, **per_mode.get(str(mode), {})}
        else:
            predicted = model.predict_at(time_s)
        # a missing reading, or a prediction that cannot be made (a regressor missing, or
        # beyond floating point): answered at level missing
        missing = not math.isfinite(value) or not math.isfinite(predicted)
        residual = math.nan if missing else value - predicted  # never beyond a limit
        if not missing and not math.isfinite(residual):  # beyond floating point
            missing, residual = True, math.nan
        before, before_error = st["runs"].get(axis, [0, 0])
        side = limits.get("direction", "above")
        if side == "above":
            run = int(before) + 1 if residual > limits["MinC"] else 0
            run_error = int(before_error) + 1 if residual > limits["MaxC"] else 0
        else:
            up = side == "both"
            minc = -residual > limits["MinC_below"] or (up and residual > limits["MinC"])
            maxc = -residual > limits["MaxC_below"] or (up and residual > limits["MaxC"])
            run = int(before) + 1 if minc else 0
            run_error = int(before_error) + 1 if maxc else 0
        code = (
            2 if run_error >= limits["T_short_steps"] else 1 if run >= limits["T_long_steps"] else 0
        )
        worst = max(worst, code)
        missing_any |= missing
        answer[f"{axis}_predicted"] = predicted if math.isfinite(predicted) else None
        answer[f"{axis}_residual"] = None if missing else residual
        answer[f"{axis}_level"] = MISSING if missing else LEVELS[code]
        answer[f"{axis}_run"] = run
        answer[f"{axis}_run_error"] = run_error
        runs[axis] = [run, run_error]
    answer["level"] = MISSING if missing_any and worst == 0 else LEVELS[worst]
    quiet = int(st.get("quiet", 0))
    fire = worst == 2 and not st.get("was_error", False) and quiet == 0
    if fire:
        quiet = int(getattr(predictor, "hold_off", HOLD_OFF)) + 1
    answer["alarm"] = fire
    new: dict[str, Any] = {"runs": runs, "last_key": key, "n": count + 1}
    new |= {"was_error": worst == 2, "quiet": quiet - 1 if quiet else 0}
    new["recent"] = [*recent[1 - RECENT_KEYS :], key]
    _watch_one(predictor, st, new, worst >= 1, count + 1)
    if getattr(predictor, "recal", None) is not None:
        _due_one(predictor, st, new, answer, time_s)
    if st.get("warned") or _guard_one(predictor, time_s, count + 1, sample):
        new["warned"] = True
    return answer, new


def _guard_off_warning(predictor: ResidualPredictor) -> None:
    """Once per predictor served one sample at a time (a live stream, the service, MQTT):
    a warning on the ``opslens.residual`` logger when its alarm-flood guard is off
    (``hold_off: 0``, a setting for batch analysis)."""
    predictor.__dict__["_guard_said"] = True
    streaming = getattr(predictor, "streaming", None)
    key = "streaming.hold_off" if streaming is not None else "thresholds.hold_off"
    hold_off = streaming.hold_off if streaming is not None else getattr(predictor, "hold_off", 1)
    if hold_off == 0:
        _LOG.warning(
            "params.%s is 0: the alarm-flood guard is off, every entry into error is an alarm "
            "(a setting for batch analysis; on NAB it scores below never alarming); fix: "
            "retrain with params.%s: %d (the default) or more for a live stream",
            key,
            key,
            HOLD_OFF,
        )


def _extrapolation_warning(axis: str, what: str, spans: float, sample: int) -> None:
    """A warning on the ``opslens.residual`` logger (a stream or service keeps running)."""
    _LOG.warning(
        "axis '%s': %s is scored %.1f training spans beyond the range it was fitted on "
        "(sample %d of this stream); the model may no longer describe the machine; fix: "
        "retrain on recent data, or set params.mode: streaming or params.model.type: median",
        axis,
        what,
        spans,
        sample,
    )


def _ranges(predictor: ResidualPredictor) -> list[tuple[str, str, str | None, float, float]]:
    """What each model was fitted on: ``(axis, what, input or None for time, low, high)``
    (worked out once per predictor: the single-sample path asks for it every sample)."""
    cached = predictor.__dict__.get("_ranges")
    if cached is not None and cached[0] is predictor.models:
        return cached[1]  # type: ignore[no-any-return]
    out: list[tuple[str, str, str | None, float, float]] = []
    for axis, model in predictor.models.items():
        if isinstance(model, AxisTrend) and model.family != "median":
            lo, hi = getattr(model, "t_range_", (float(model.knots_[0]), float(model.knots_[-1])))
            out.append((axis, f"its {model.family} trend against time", None, lo, hi))
        elif isinstance(model, AxisConditional):
            for name, (lo, hi) in getattr(model, "x_range_", {}).items():
                out.append((axis, f"its regressor '{name}'", name, lo, hi))
    predictor.__dict__["_ranges"] = (predictor.models, out)
    return out


def _spans(value: np.ndarray, lo: float, hi: float) -> np.ndarray:
    span = hi - lo if hi > lo else 1.0
    return np.asarray(np.maximum(value - hi, lo - value) / span, dtype=np.float64)


def _guard_one(
    predictor: ResidualPredictor,
    time_s: float,
    sample: int,
    inputs: Mapping[str, Any] | None = None,
) -> bool:
    """Warn (once per stream: True goes into its state) when a model is scored too far out of
    the range it was fitted on: a trend's time, a regressor's values."""
    limit = getattr(predictor, "max_spans", 1.0)
    for axis, what, name, lo, hi in _ranges(predictor):
        given = np.nan if name is None else (inputs or {}).get(name)
        value = time_s if name is None else float(np.nan if given is None else given)
        if lo - limit * (hi - lo) <= value <= hi + limit * (hi - lo) or value != value:
            continue
        spans = float(_spans(np.asarray(value), lo, hi))
        if spans > limit:
            _extrapolation_warning(axis, what, spans, sample)
            return True
    return False


def _guard_block(
    predictor: ResidualPredictor,
    time_s: np.ndarray,
    count: int,
    inputs: Mapping[str, np.ndarray] | None = None,
) -> bool:
    """:func:`_guard_one` over samples in order: warns at the first one too far out."""
    limit = getattr(predictor, "max_spans", 1.0)
    first: tuple[int, str, str, float] | None = None
    for axis, what, name, lo, hi in _ranges(predictor):
        if name is None:
            value = time_s
        else:
            value = np.asarray((inputs or {}).get(name, np.full(time_s.size, np.nan)), dtype=float)
        spans = _spans(value, lo, hi)
        far = np.flatnonzero(spans > limit)
        if far.size and (first is None or far[0] < first[0]):
            first = (int(far[0]), axis, what, float(spans[far[0]]))
    if first is None:
        return False
    _extrapolation_warning(first[1], first[2], first[3], count + first[0] + 1)
    return True


def new_stream_state(axes: Sequence[str]) -> dict[str, Any]:
    """The state of a stream in streaming mode that has seen nothing (JSON-ready).

    Example:
        >>> new_stream_state(["a"])["axes"]["a"]["fit"] is None
        True
    """
    return {"axes": {a: new_axis_state() for a in axes}, "last_key": None, "n": 0}


def _unfit_limit(predictor: ResidualPredictor) -> tuple[int, float, float]:
    """The fit watch's window, ``alert_rate`` and the share of samples beyond the limits it
    allows: ``alert_rate`` on top of what the limits let through on their own training
    samples (:func:`~.recalibration.normal_rates`; none recorded: 0)."""
    window, rate = getattr(predictor, "fit_watch", (0, 1.0))
    normal = float((getattr(predictor, "normal_rates", None) or {}).get("level", 0.0))
    return int(window), float(rate), rate + normal


def _unfit_warning(predictor: ResidualPredictor, share: float, sample: int) -> None:
    """The model no longer fits the stream: a warning on the ``opslens.residual`` logger."""
    window, rate, limit = _unfit_limit(predictor)
    _LOG.warning(
        "%.0f%% of the last %d samples of this stream (up to sample %d) are beyond the limits "
        "(params.lifecycle.alert_rate %.0f%% above the %.0f%% of their training samples): the "
        "model no longer fits this machine; fix: recalibrate it (opslens retrain NAME --reason "
        "'...', then opslens promote; opslens batch does both on drift) and follow the champion "
        "(opslens stream --from registry)",
        100 * share,
        window,
        sample,
        100 * rate,
        100 * (limit - rate),
    )


def _watch_one(
    predictor: ResidualPredictor,
    st: Mapping[str, Any],
    out: dict[str, Any],
    bad: bool,
    sample: int,
) -> None:
    """Count a scored sample in the stream's fit watch (windows of ``stream_window``
    samples); warn once per stream when a window's share beyond the limits passes the rate."""
    window, _, limit = _unfit_limit(predictor)
    if not window:
        return
    n, b = int(st.get("fit_n", 0)) + 1, int(st.get("fit_bad", 0)) + int(bad)
    unfit = bool(st.get("unfit", False))
    if n >= window:
        if b > limit * window and not unfit:
            _unfit_warning(predictor, b / window, sample)
            unfit = True
        n = b = 0
    out["fit_n"], out["fit_bad"] = n, b
    if unfit:
        out["unfit"] = True


def _due_one(
    predictor: ResidualPredictor,
    st: Mapping[str, Any],
    out: dict[str, Any],
    answer: dict[str, Any],
    time_s: float,
) -> None:
    """The recalibration trigger of a stream (``params.recalibrate``): on the sample where the
    stream's fit watch finds the limits no longer fit (``on_drift``), or ``every`` samples or
    seconds of data since the last trigger, the answer carries ``recalibrate`` (why); the
    counters restart and the fit watch is re-armed."""
    every_n, every_s, on_drift, _ = predictor.recal or (0, 0.0, False, 0)
    n = int(st.get("cal_n", 0)) + 1
    t0 = st.get("cal_t0")
    t0 = time_s if t0 is None else float(t0)
    reason = None
    if on_drift and out.get("unfit") and not st.get("unfit"):
        window, _, limit = _unfit_limit(predictor)
        reason = (
            f"automatic: over {100 * limit:.0f}% of the last {window} samples beyond the limits "
            "(the limits no longer fit)"
        )
    elif every_n and n >= every_n:
        reason = f"scheduled: {n} samples since the last calibration (every {every_n})"
    elif every_s and time_s - t0 >= every_s:
        reason = (
            f"scheduled: {(time_s - t0) / 86400:.3g} days of data since the last calibration "
            f"(every {every_s / 86400:g} days)"
        )
    if reason is not None:
        answer["recalibrate"] = reason
        out.pop("unfit", None)
        n, t0 = 0, time_s
    out["cal_n"], out["cal_t0"] = n, t0


def _watch_block(
    predictor: ResidualPredictor,
    st: Mapping[str, Any],
    out: dict[str, Any],
    bad: np.ndarray,
    count: int,
) -> None:
    """:func:`_watch_one` over the scored samples of a block, in order."""
    window, _, limit = _unfit_limit(predictor)
    if not window:
        return
    n0 = int(st.get("fit_n", 0))
    unfit = bool(st.get("unfit", False))
    cum = int(st.get("fit_bad", 0)) + np.cumsum(bad.astype(np.int64))
    base = 0
    for e in range(window - n0 - 1, bad.size, window):
        b = int(cum[e]) - base
        if b > limit * window and not unfit:
            _unfit_warning(predictor, b / window, count + e + 1)
            unfit = True
        base = int(cum[e])
    out["fit_n"] = (n0 + bad.size) % window
    out["fit_bad"] = (int(cum[-1]) - base) if bad.size else int(st.get("fit_bad", 0))
    if unfit:
        out["unfit"] = True


def _recent(st: Mapping[str, Any]) -> list[float]:
    """The newest keys a stream scored (a state without them: its last key); not a copy."""
    found = st.get("recent")
    if found is not None:
        return found  # type: ignore[no-any-return]
    last = st.get("last_key")
    return [] if last is None else [float(last)]


def _not_scored(predictor: ResidualPredictor, time_s: float, *, replay: bool) -> dict[str, Any]:
    """The answer to a sample whose key is not above the stream's last: a replay of one of
    the :data:`RECENT_KEYS` newest keys (``duplicate``), else a late sample (``out_of_order``)."""
    answer: dict[str, Any] = {"sample": None, "time_s": time_s}
    answer |= {"duplicate": replay, "out_of_order": not replay}
    for axis in predictor.axes:
        for suffix in ("predicted", "residual", "level", "run", "run_error"):
            answer[f"{axis}_{suffix}"] = None
    answer["level"] = answer["alarm"] = None
    return answer


def stream_one(
    predictor: ResidualPredictor,
    time_s: float,
    values: Sequence[float],
    key: float,
    state: Mapping[str, Any] | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One sample in streaming mode (:func:`.streaming.push` per axis); the state is updated
    in place and returned. ``run`` and ``run_error`` are both the run beyond a limit."""
    params = predictor.streaming
    assert params is not None
    st = new_stream_state(predictor.axes) if state is None else dict(state)
    last = st.get("last_key")
    recent = _recent(st)
    if last is not None and not key > float(last):
        st["recent"] = recent
        return _not_scored(predictor, time_s, replay=key in recent), st
    count = int(st.get("n", 0))
    warmup = warmup_length(params)
    answer: dict[str, Any] = {"sample": count + 1, "time_s": time_s, "duplicate": False}
    answer["out_of_order"] = False
    worst = 0
    missing_any = False
    axes = st["axes"]
    for axis, value in zip(predictor.axes, values, strict=True):
        try:
            base, residual, level, run = push(axes[axis], params, warmup, time_s, value, axis)
        except ValueError as e:
            problem, _, fix = str(e).partition("; ")
            raise InstanceError(problem, fix=fix or None) from None
        code = LEVELS.index(level)
        worst = max(worst, code)
        missing = not math.isfinite(value)
        missing_any |= missing
        answer[f"{axis}_predicted"] = base
        answer[f"{axis}_residual"] = residual
        answer[f"{axis}_level"] = MISSING if missing else level
        answer[f"{axis}_run"] = run
        answer[f"{axis}_run_error"] = run
    answer["level"] = MISSING if missing_any and worst == 0 else LEVELS[worst]
    answer["alarm"] = worst == 2
    _watch_one(predictor, st, st, worst >= 1, count + 1)
    st["last_key"], st["n"] = key, count + 1
    recent.append(key)  # the stream's state is updated in place, as its axes' are
    if len(recent) > RECENT_KEYS:
        del recent[0]
    st["recent"] = recent
    return answer, st


def stream_block(
    predictor: ResidualPredictor,
    time_s: np.ndarray,
    values: np.ndarray,
    keys: np.ndarray,
    state: Mapping[str, Any] | None,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Samples in order in streaming mode: the answers of :func:`stream_one` one by one."""
    params = predictor.streaming
    assert params is not None
    st = new_stream_state(predictor.axes) if state is None else dict(state)
    n = time_s.size
    rows, count, cols, new_last, recent = _fresh_rows(time_s, keys, st)
    warmup = warmup_length(params)
    worst = np.zeros(rows.size, dtype=np.int64)
    any_missing = np.zeros(rows.size, dtype=bool)
    t = time_s[rows]
    for j, axis in enumerate(predictor.axes):
        try:
            base, residual, code, run = push_block(
                st["axes"][axis], params, warmup, t, values[rows, j], axis
            )
        except ValueError as e:
            problem, _, fix = str(e).partition("; ")
            raise DataError(problem, fix=fix or None) from None
        worst = np.maximum(worst, code)
        missing = ~np.isfinite(values[rows, j])
        any_missing |= missing
        cols[f"{axis}_predicted"] = _scatter(n, rows, base, np.isnan(base))
        cols[f"{axis}_residual"] = _scatter(n, rows, residual, np.isnan(residual))
        cols[f"{axis}_level"] = _scatter(n, rows, _level_names(code, missing))
        cols[f"{axis}_run"] = _scatter(n, rows, run)
        cols[f"{axis}_run_error"] = _scatter(n, rows, run)
    cols["level"] = _scatter(n, rows, _level_names(worst, any_missing & (worst == 0)))
    cols["alarm"] = _scatter(n, rows, worst == 2)
    _watch_block(predictor, st, st, worst >= 1, count)
    st["last_key"] = None if not np.isfinite(new_last) else new_last
    st["n"] = count + int(rows.size)
    st["recent"] = recent
    return cols, st


def _fresh_rows(
    time_s: np.ndarray, keys: np.ndarray, st: Mapping[str, Any]
) -> tuple[np.ndarray, int, dict[str, np.ndarray], float, list[float]]:
    """The rows newer than every key seen before them, the samples counted so far, the answer
    columns every block starts with, the newest key seen after the block (-inf: none yet)
    and the :data:`RECENT_KEYS` newest keys scored after it.

    A row that is not fresh is a ``duplicate`` when its key is one of the newest keys scored
    before it (a replay), else ``out_of_order`` (a late sample), as :func:`score_one` says.
    """
    n = time_s.size
    last = st.get("last_key")
    prior = -np.inf if last is None else float(last)
    running = np.maximum.accumulate(np.concatenate([[prior], keys]))[:-1] if n else keys
    fresh = keys > running
    rows = np.flatnonzero(fresh)
    recent = _recent(st)
    late = np.zeros(n, dtype=bool)
    for i in np.flatnonzero(~fresh).tolist():
        before = keys[rows[: int(np.searchsorted(rows, i))]].tolist()
        late[i] = float(keys[i]) not in [*recent, *before][-RECENT_KEYS:]
    count = int(st.get("n", 0))
    cols: dict[str, np.ndarray] = {
        "sample": _scatter(n, rows, np.arange(count + 1, count + rows.size + 1)),
        "time_s": time_s,
        "duplicate": ~fresh & ~late,
        "out_of_order": late,
    }
    new_last = float(max(running[-1], keys[-1])) if n else prior
    return rows, count, cols, new_last, [*recent, *keys[rows].tolist()][-RECENT_KEYS:]


def _level_names(codes: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """Level names of ``codes``, :data:`MISSING` where ``missing``."""
    names: np.ndarray = _NAMES[codes]
    if missing.any():
        names = names.copy()
        names[missing] = MISSING
    return names


def _scatter(
    n: int, rows: np.ndarray, values: np.ndarray, null: np.ndarray | None = None
) -> np.ndarray:
    """``values`` at ``rows`` of a column of ``n``, null (masked) elsewhere and where ``null``
    (a missing reading has no residual, the warm-up no baseline).

    Example:
        >>> _scatter(3, np.array([0, 2]), np.array([1.5, 2.5])).tolist()
        [1.5, None, 2.5]
    """
    values = np.asarray(values)
    if rows.size == n and (null is None or not null.any()):
        return values
    data = np.full(n, None if values.dtype == object else 0, dtype=values.dtype)
    data[rows] = values
    mask = np.ones(n, dtype=bool)
    mask[rows] = False if null is None else null
    return np.ma.MaskedArray(data, mask=mask)


class OnlineChecker:
    """A stateful checker of many streams, one state per stream id, over a residual predictor.

    Example:
        >>> from opslens.recipes.residual.predictor import example_predictor
        >>> checker = OnlineChecker(example_predictor())
        >>> [checker.update({"ts": float(i), "axis1": 10.0})["level"] for i in range(4)]
        ['ok', 'alert', 'alert', 'error']
        >>> checker.update({"ts": 5.0, "axis1": 0.0}, stream="other")["axis1_run"]
        0
    """

    def __init__(self, predictor: ResidualPredictor) -> None:
        self.predictor = predictor
        self.states: dict[str, dict[str, Any]] = {}

    def update(self, sample: Mapping[str, Any], stream: str | None = None) -> dict[str, Any]:
        """Score one sample of ``stream`` (default: the sample's stream field, else ``default``)."""
        sid = stream if stream is not None else self.predictor.stream_of(sample)
        answer, self.states[sid] = self.predictor.step(
            {**sample, self.predictor.stream_field: sid}, self.states.get(sid)
        )
        return answer

    def update_many(self, samples: pl.DataFrame, stream: str = "default") -> pl.DataFrame:
        """Score a frame of samples of one stream in order; same answers as :meth:`update` each."""
        time_s, values, keys = self.predictor.arrays(samples)
        cols, self.states[stream] = score_block(
            self.predictor,
            time_s,
            values,
            keys,
            self.states.get(stream),
            self.predictor.context(samples),
        )
        return self.predictor.answer_frame(cols, stream)

    def state(self, stream: str = "default") -> dict[str, Any] | None:
        """The JSON-ready state of ``stream`` (None before its first sample)."""
        return self.states.get(stream)
