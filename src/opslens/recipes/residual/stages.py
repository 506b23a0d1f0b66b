"""The residual recipe's stages: profile, prepare, fit, evaluate, thresholds.

Example:
    >>> from opslens.recipes.residual.params import ResidualParams
    >>> import polars as pl
    >>> from datetime import datetime
    >>> f = pl.DataFrame({"ts": pl.datetime_range(datetime(2025, 1, 1), datetime(2025, 1, 1, 0, 0, 9),
    ...     "1s", eager=True)})
    >>> resolve_train_end(f, "ts", "80%")
    datetime.datetime(2025, 1, 1, 0, 0, 8)
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from opslens.config import AnalysisConfig
from opslens.core.baselines import BaselineScore
from opslens.core.columns import require_numeric
from opslens.core.recipe import ModelArtifact, Out, StageContext
from opslens.errors import ConfigError, DataError
from opslens.recipes.residual.baselines import against_baselines, label_flags
from opslens.recipes.residual.conditional import AxisConditional
from opslens.recipes.residual.modes import ModeFinder
from opslens.recipes.residual.params import ResidualParams
from opslens.recipes.residual.plots import plot_fit, plot_residuals
from opslens.recipes.residual.predictor import ResidualPredictor
from opslens.recipes.residual.recalibration import normal_rates, recalibration_trigger
from opslens.recipes.residual.streaming import score_stream
from opslens.recipes.residual.thresholds import calibrate_axis, with_below
from opslens.recipes.residual.trend import AxisTrend, choose_family, regression_metrics

__all__ = [
    "check_columns",
    "evaluate",
    "fit",
    "mode_limits",
    "prepare",
    "profile",
    "resolve_train_end",
    "thresholds",
]

_RESERVED = ("stream", "seq")
AxisModel = AxisTrend | AxisConditional


def check_columns(analysis: AnalysisConfig) -> None:
    """ConfigError unless ``columns.time`` is named."""
    if analysis.columns.time is None:
        raise ConfigError(
            f"analysis '{analysis.name}' (residual) needs columns.time",
            fix="set columns.time to the time column (timestamps or epoch seconds)",
        )


def _axes(frame: pl.DataFrame, ctx: StageContext, p: ResidualParams) -> list[str]:
    time = str(ctx.analysis.columns.time)
    label = ctx.analysis.columns.target
    wanted = list(ctx.analysis.columns.metrics)
    if label is not None and label in wanted:
        raise ConfigError(
            f"column '{label}' is both the label (columns.target) and an axis (columns.metrics)",
            fix=f"remove '{label}' from columns.metrics, or unset columns.target",
        )
    mode = p.model.mode_column
    if mode is not None and mode in wanted:
        raise ConfigError(
            f"column '{mode}' is both the mode (params.model.mode_column) and an axis",
            fix=f"remove '{mode}' from columns.metrics, or unset params.model.mode_column",
        )
    if not wanted:
        exogenous = {c for cols in p.model.regressors.values() for c in cols}
        exogenous |= set(p.model.mode_signals)
        wanted = [
            c
            for c, d in frame.schema.items()
            if c not in (time, label, mode)
            and c not in _RESERVED
            and c not in exogenous
            and d.is_numeric()
        ]
        if not wanted:
            raise DataError(
                f"{ctx.source} has no numeric axis column besides '{time}'",
                fix="name the axes under columns.metrics",
            )
    unknown = [a for a in wanted if a not in frame.columns]
    if unknown:
        known = [c for c in frame.columns if c != time]
        raise DataError(
            f"axis '{unknown[0]}' (columns.metrics) is not in {ctx.source} "
            f"(axes there: {', '.join(known[:20]) or 'none'})",
            fix=f"name existing axes in columns.metrics (LONG axis ids read as {p.axis_prefix}<id>)",
        )
    return wanted


def _inputs(frame: pl.DataFrame, axes: list[str], p: ResidualParams, source: str) -> list[str]:
    """The regressor and mode columns that are not axes; DataError for one missing."""
    for axis, columns in p.model.regressors.items():
        if axis not in axes:
            raise ConfigError(
                f"params.model.regressors names axis '{axis}', which is not an axis "
                f"(axes: {', '.join(axes)})",
                fix="key params.model.regressors by axes of columns.metrics",
            )
        for c in columns:
            if c == axis or c not in frame.columns:
                raise DataError(
                    f"axis '{axis}': regressor column '{c}' is "
                    + ("the axis itself" if c == axis else f"not in {source}"),
                    fix="name existing columns other than the axis itself in "
                    "params.model.regressors",
                )
    mode = p.model.mode_column
    if mode is not None and mode not in frame.columns:
        raise DataError(
            f"the mode column '{mode}' (params.model.mode_column) is not in {source}",
            fix="name an existing column in params.model.mode_column, or unset it",
        )
    for c in p.model.mode_signals:
        if c in axes:
            raise ConfigError(
                f"params.model.mode_signals names '{c}', which is an axis: modes found from "
                "the values being checked would follow a fault and absorb it",
                fix="name columns that are not axes (speed, load, a set point) in "
                "params.model.mode_signals, or drop the axis from columns.metrics",
            )
        if c not in frame.columns or not frame[c].dtype.is_numeric():
            raise DataError(
                f"mode signal '{c}' (params.model.mode_signals) is "
                + ("not numeric" if c in frame.columns else f"not in {source}"),
                fix="name existing numeric columns in params.model.mode_signals",
            )
    wanted = [c for cols in p.model.regressors.values() for c in cols]
    wanted += [mode] if mode is not None else []
    wanted += list(p.model.mode_signals)
    return list(dict.fromkeys(c for c in wanted if c not in axes))


#: the largest magnitude an axis value may have (far beyond any sensor, far below float overflow
#: in the sums of squares a fit makes)
MAX_ABS_VALUE = 1e100


def _check_finite(frame: pl.DataFrame, axis: str, source: str) -> None:
    """DataError for infinite or absurdly large values of an axis (found before any work).

    Example:
        >>> _check_finite(pl.DataFrame({"a": [1.0, None]}), "a", "the data")
        >>> _check_finite(pl.DataFrame({"a": [1.0, float("inf")]}), "a", "the data")
        Traceback (most recent call last):
        ...
        opslens.errors.DataError: axis 'a' of the data holds 1 infinite value(s) (row 2 the first); fix: remove or fix those rows (a missing reading may be left empty), or drop 'a' from columns.metrics
    """
    v = frame[axis].cast(pl.Float64)
    inf = v.is_infinite().fill_null(False)
    if inf.any():
        first = int(inf.arg_true()[0]) + 1
        raise DataError(
            f"axis '{axis}' of {source} holds {int(inf.sum())} infinite value(s) "
            f"(row {first} the first)",
            fix="remove or fix those rows (a missing reading may be left empty), "
            f"or drop '{axis}' from columns.metrics",
        )
    big = float(v.abs().fill_nan(None).max() or 0.0)  # type: ignore[arg-type]
    if big > MAX_ABS_VALUE:
        raise DataError(
            f"axis '{axis}' of {source} has a value of magnitude {big:.3g}, "
            f"beyond {MAX_ABS_VALUE:.0e}",
            fix=f"rescale '{axis}' (e.g. to other units) or remove those rows",
        )


def _check_axis_keys(p: ResidualParams, axes: list[str]) -> None:
    """ConfigError for a per-axis setting keyed by a column that is not an axis."""
    for key, named in (
        ("params.model.axes", p.model.axes),
        ("params.thresholds.directions", p.thresholds.directions),
        ("params.streaming.directions", p.streaming.directions),
    ):
        unknown = [a for a in named if a not in axes]
        if unknown:
            raise ConfigError(
                f"{key} names axis '{unknown[0]}', which is not an axis (axes: {', '.join(axes)})",
                fix=f"key {key} by axes of columns.metrics (or drop '{unknown[0]}' from it)",
            )


def profile(ctx: StageContext, raw: pl.DataFrame) -> Out:
    """Axes found and checked; row counts, time range, median sampling interval ``dt_seconds``."""
    p: ResidualParams = ctx.params
    time = str(ctx.analysis.columns.time)
    renames = {c: f"{p.axis_prefix}{c}" for c in raw.columns if c.isdigit()}
    frame = raw.rename(renames) if renames else raw
    axes = _axes(frame, ctx, p)
    for axis in axes:
        frame = require_numeric(frame, axis, where=ctx.source)
        _check_finite(frame, axis, ctx.source)
    _check_axis_keys(p, axes)
    label = ctx.analysis.columns.target
    flags = [] if label is None else [label_flags(frame, label, ctx.source)]
    inputs = _inputs(frame, axes, p, ctx.source)
    frame = frame.select(time, *axes, *inputs, *flags).sort(time, maintain_order=True)
    counts: dict[str, dict[str, int]] = {}
    for axis in axes:
        nulls = int(frame[axis].null_count())
        zeros = int((frame[axis] == 0).sum())
        if nulls + zeros == frame.height:
            raise DataError(
                f"axis '{axis}' of {ctx.source} is 0 or empty in all {frame.height} rows; "
                "a trend needs non-zero values",
                fix="drop it from columns.metrics, or check the source",
            )
        counts[axis] = {"values": frame.height - nulls, "zeros": zeros, "missing": nulls}
    dt = _median_dt(frame, time)
    start, end = frame[time].min(), frame[time].max()
    facts = {
        "rows": frame.height,
        "axes": axes,
        "renamed": renames,
        "start": start,
        "end": end,
        "dt_seconds": dt,
        "per_axis": counts,
        "labels": label,
        "labelled_rows": None if label is None else int(frame[label].sum()),
    }
    return Out(
        values={"samples": frame},
        facts=facts,
        metrics={"rows": float(frame.height), "dt_seconds": dt},
    )


def _median_dt(frame: pl.DataFrame, time: str) -> float:
    """The median interval between consecutive samples, in seconds (0 for one sample)."""
    steps = frame[time].diff().dt.total_microseconds().drop_nulls()
    return float(steps.median()) / 1e6 if steps.len() else 0.0  # type: ignore[arg-type]


def _as_time(value: datetime | float) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    factor = 1e3 if abs(value) > 1e11 else 1e6
    return datetime(1970, 1, 1) + timedelta(microseconds=round(value * factor))


def resolve_train_end(frame: pl.DataFrame, time: str, bound: datetime | float | str) -> datetime:
    """The training window's end as a timestamp; a share ``"80%"`` → the time of that sample."""
    if isinstance(bound, str):
        k = int(frame.height * float(bound.rstrip("%")) / 100.0)
        k = min(max(k, 1), frame.height - 1)
        end: datetime = frame[time][k]
        return end
    return _as_time(bound)


def prepare(ctx: StageContext, samples: pl.DataFrame) -> Out:
    """Optional interpolation, ``time_s`` (seconds from the first sample), the training split."""
    p: ResidualParams = ctx.params
    time = str(ctx.analysis.columns.time)
    axes = _axes(samples, ctx, p)
    frame = samples
    interpolated = {a: 0 for a in axes}
    if p.prep.interpolate:
        before = {a: int(frame[a].null_count()) for a in axes}
        frame = frame.with_columns(pl.col(a).interpolate_by(time) for a in axes)
        interpolated = {a: before[a] - int(frame[a].null_count()) for a in axes}
    first, last = frame[time].min(), frame[time].max()
    assert isinstance(first, datetime) and isinstance(last, datetime)
    start = (
        first
        if p.train_start is None or isinstance(p.train_start, str)
        else _as_time(p.train_start)
    )
    end = resolve_train_end(frame, time, p.train_end) if p.train_end is not None else None
    for name, bound in (("train_start", start), ("train_end", end)):
        if bound is not None and not first <= bound <= last:
            raise DataError(
                f"params.{name} {bound.isoformat()} is outside the data "
                f"({first.isoformat()} – {last.isoformat()})",
                fix=f"set params.{name} inside the data's time range, or a share such as '80%'",
            )
    if end is not None and end <= start:
        raise DataError(
            f"params.train_end {end.isoformat()} is not after train_start {start.isoformat()}",
            fix="set params.train_end after params.train_start",
        )
    t0_us = int((first - datetime(1970, 1, 1)) // timedelta(microseconds=1))
    in_train = pl.col(time) >= start
    if end is not None:
        in_train = in_train & (pl.col(time) < end)
    frame = frame.with_columns(
        ((pl.col(time).dt.cast_time_unit("us").cast(pl.Int64) - t0_us) / 1e6).alias("time_s"),
        pl.when(in_train).then(pl.lit("train")).otherwise(pl.lit("test")).alias("split"),
    )
    train = frame.filter(pl.col("split") == "train")
    for axis in axes:
        n = int(train.filter(pl.col(axis).is_not_null() & (pl.col(axis) != 0)).height)
        if n < p.min_train_rows:
            raise DataError(
                f"axis '{axis}' has {n} usable training rows (non-zero, in the window), "
                f"fewer than params.min_train_rows ({p.min_train_rows})",
                fix="widen the window with params.train_start / params.train_end, "
                "or lower params.min_train_rows",
            )
    stats = {
        "time": time,
        "axes": axes,
        "t0": first,
        "t0_us": t0_us,
        "dt_seconds": _median_dt(frame, time),
        "train_start": start,
        "train_end": end,
        "rows_train": train.height,
        "rows_test": frame.height - train.height,
        "interpolate": p.prep.interpolate,
        "interpolated": interpolated,
    }
    return Out(
        values={"prepared": frame, "prep_stats": stats},
        facts=stats,
        metrics={
            "rows_train": float(train.height),
            "rows_test": float(frame.height - train.height),
        },
    )


def _fit_rows(frame: pl.DataFrame, axis: str) -> pl.DataFrame:
    """An axis's training rows: not missing and not exactly 0 (the axis idle)."""
    return frame.filter(
        (pl.col("split") == "train") & pl.col(axis).is_not_null() & (pl.col(axis) != 0)
    )


def fit(ctx: StageContext, prepared: pl.DataFrame, prep_stats: dict[str, Any]) -> Out:
    """A trend per axis on its non-zero training rows; ``auto`` picks the family by held-out RMSE."""
    p: ResidualParams = ctx.params
    models: dict[str, AxisModel] = {}
    facts: dict[str, Any] = {}
    plots = {}
    finder, found = (
        find_modes(prepared, prep_stats["axes"], p) if p.model.mode_signals else (None, None)
    )
    for axis in prep_stats["axes"]:
        rows = _fit_rows(prepared, axis)
        t, y = rows["time_s"].to_numpy(), rows[axis].cast(pl.Float64).to_numpy()
        if axis in p.model.regressors or p.model.mode_column is not None or finder is not None:
            conditional = AxisConditional(
                tuple(p.model.regressors.get(axis, ())),
                p.model.mode_column,
                axis=axis,
                modes=finder,
            )
            rows = rows.drop_nulls(conditional.inputs())
            y = rows[axis].cast(pl.Float64).to_numpy()
            models[axis] = conditional.fit(_columns(rows, conditional), y)
            facts[axis] = {
                "requested": conditional.family,
                "family": conditional.family,
                "reason": "the axis on "
                + (", ".join(conditional.regressors) or "its operating point")
                + (f", a model per mode of '{p.model.mode_column}'" if p.model.mode_column else "")
                + (
                    f", a model per each of {len(finder.labels_)} modes found from "
                    + ", ".join(finder.signals)
                    if finder is not None
                    else ""
                ),
                **conditional.describe(),
                "rows_fitted": rows.height,
            }
            continue
        requested = p.family(axis)
        choice: dict[str, Any] = {}
        family = requested
        scored = prepared.filter(pl.col(axis).is_not_null())["time_s"].to_numpy()
        lo, hi = float(t.min()), float(t.max())
        reach = max(float(scored.max()) - hi, lo - float(scored.min())) / (hi - lo or 1.0)
        if requested == "auto" and reach > p.model.max_spans:
            family = "median"
            choice = {
                "reason": f"auto refuses a trend against time: the data reaches {reach:.1f} "
                f"training spans beyond the training window (params.model.max_spans "
                f"{p.model.max_spans:g}); a flat median level instead"
            }
        elif requested == "auto":
            choice = choose_family(
                t,
                y,
                n_segments=p.model.n_segments,
                huber_epsilon=p.model.huber_epsilon,
                holdout_share=p.model.holdout_share,
            )
            family = choice["family"]
        model = AxisTrend(
            family, n_segments=p.model.n_segments, huber_epsilon=p.model.huber_epsilon
        )
        models[axis] = model.fit(t, y)
        excluded = int(prepared.filter((pl.col("split") == "train") & (pl.col(axis) == 0)).height)
        facts[axis] = {
            "requested": requested,
            "family": family,
            "reason": choice.get("reason", f"{family} as configured"),
            "holdout_rmse": choice.get("holdout_rmse"),
            "slope": model.slope_,
            "intercept": model.intercept_,
            "knots": model.describe()["knots"],
            "rows_fitted": int(t.size),
            "rows_zero_excluded": excluded,
        }
        data = prepared.filter(pl.col(axis).is_not_null() & (pl.col(axis) != 0))
        plots[f"{axis}_fit"] = plot_fit(
            data["time_s"].to_numpy(),
            data[axis].cast(pl.Float64).to_numpy(),
            model,
            axis=axis,
            family=family,
            train_end_s=float(rows["time_s"].max()),  # type: ignore[arg-type]
        )
    return Out(values={"models": models}, facts={"axes": facts, "modes": found}, plots=plots)


#: within this share of the lowest held-out error, ``n_modes: auto`` takes fewer modes
MODES_TOLERANCE = 0.02


def find_modes(
    prepared: pl.DataFrame, axes: list[str], p: ResidualParams
) -> tuple[ModeFinder | None, dict[str, Any]]:
    """The operating modes of ``params.model.mode_signals`` (None: one mode) and why.

    Every number of modes tried (``n_modes``, or 1 to ``max_modes`` with ``auto``) clusters
    the training rows' signals; every axis gets a model per mode on four training rows in
    five and is scored on the fifth (interleaved, since a mode may run only once in the
    window); the error is the mean over axes of RMSE / the axis's standard deviation.
    """
    signals = list(p.model.mode_signals)
    train = prepared.filter(pl.col("split") == "train").drop_nulls(signals)
    if train.height < 10:
        raise DataError(
            f"only {train.height} training rows have every mode signal "
            f"({', '.join(signals)}); modes cannot be found",
            fix="widen the training window, or fill the signals in params.model.mode_signals",
        )
    held = (np.arange(train.height) % 5) == 4
    requested = p.model.n_modes
    tried = [requested] if isinstance(requested, int) else list(range(1, p.model.max_modes + 1))
    errors: dict[str, float] = {}
    finders: dict[int, ModeFinder] = {}
    sig = {c: train[c].cast(pl.Float64).to_numpy() for c in signals}
    for k in tried:
        finder = ModeFinder(tuple(signals), k).fit(sig)
        if len(finder.labels_) < k:  # fewer distinct points than modes
            continue
        finders[k] = finder
        scores = []
        for axis in axes:
            y = train[axis].cast(pl.Float64).to_numpy()
            cols = {c: train[c].to_numpy() for c in p.model.regressors.get(axis, [])}
            ok = np.isfinite(y) & (y != 0)
            for c in cols.values():
                ok &= ~pl.Series(c).is_null().to_numpy()
            fit_rows, test_rows = ok & ~held, ok & held
            if fit_rows.sum() < 3 or test_rows.sum() < 1:
                continue
            model = AxisConditional(tuple(cols), axis=axis, modes=finder)
            every = {**cols, **sig}
            model.fit({c: v[fit_rows] for c, v in every.items()}, y[fit_rows])
            pred = model.predict_columns({c: v[test_rows] for c, v in every.items()})
            spread = float(np.std(y[ok])) or 1.0
            scores.append(float(np.sqrt(np.mean((y[test_rows] - pred) ** 2))) / spread)
        errors[str(k)] = float(np.mean(scores)) if scores else math.inf
    best = min(errors.values())
    chosen = min(int(k) for k, e in errors.items() if e <= best * (1 + MODES_TOLERANCE) + 1e-12)
    shown = ", ".join(f"{k}: {e:.4g}" for k, e in errors.items())
    if len(tried) > 1:
        reason = (
            f"{chosen} mode(s): the fewest within {MODES_TOLERANCE:.0%} of the lowest held-out "
            f"error (RMSE / std, every 5th training row; {shown})"
        )
    else:
        reason = f"{chosen} mode(s) as configured (held-out error {shown})"
    finder = finders[chosen]
    facts = {
        "signals": signals,
        "n_modes": chosen,
        "requested": requested,
        "holdout_error": errors,
        "reason": reason,
        "centres": finder.describe()["centres"],
    }
    return (None if chosen == 1 else ModeFinder(tuple(signals), chosen).fit(sig)), facts


def _columns(frame: pl.DataFrame, model: AxisConditional) -> dict[str, np.ndarray]:
    return {c: frame[c].to_numpy() for c in model.inputs()}


def predict_rows(model: AxisModel, frame: pl.DataFrame) -> np.ndarray:
    """An axis model's predictions on a frame's rows (``time_s`` or the model's inputs).

    Raises DataError (naming the axis and the fix) when an input is missing or a mode unseen.
    """
    if isinstance(model, AxisConditional):
        try:
            return model.predict_columns(_columns(frame, model))
        except ValueError as e:
            problem, _, fix = str(e).partition("; ")
            raise DataError(problem, fix=fix) from None
    return model.predict(frame["time_s"].to_numpy())


def evaluate(ctx: StageContext, prepared: pl.DataFrame, models: dict[str, AxisModel]) -> Out:
    """R², MAE, RMSE per axis on training and held-out rows, with the training-mean baseline."""
    time = str(ctx.analysis.columns.time)
    rows, residual_parts, plots = [], [], {}
    metrics: dict[str, float] = {}
    for axis, model in models.items():
        data = prepared.filter(pl.col(axis).is_not_null() & (pl.col(axis) != 0))
        if isinstance(model, AxisConditional):
            data = data.drop_nulls(model.inputs())
        t = data["time_s"].to_numpy()
        y = data[axis].cast(pl.Float64).to_numpy()
        pred = predict_rows(model, data)
        labels = (
            model.mode_of_columns(_columns(data, model))
            if isinstance(model, AxisConditional)
            else None
        )
        split = data["split"].to_numpy()
        baseline = float(y[split == "train"].mean())
        for name in ("train", "test"):
            mask = split == name
            m = regression_metrics(y[mask], pred[mask])
            b = regression_metrics(y[mask], np.full(int(mask.sum()), baseline))
            rows.append({"axis": axis, "split": name, **m, "baseline_rmse": b["rmse"]})
            for key in ("r2", "mae", "rmse"):
                if m[key] is not None:
                    metrics[f"{axis}_{name}_{key}"] = float(m[key])  # type: ignore[arg-type]
        residual_parts.append(
            pl.DataFrame(
                {
                    time: data[time],
                    "time_s": t,
                    "split": split,
                    "axis": [axis] * data.height,
                    "value": y,
                    "predicted": pred,
                    "residual": y - pred,
                    "mode": pl.Series(
                        "mode",
                        [None] * data.height if labels is None else labels.tolist(),
                        dtype=pl.String,
                    ),
                }
            )
        )
        plots[f"{axis}_residual"] = plot_residuals(t, y - pred, axis=axis)
    table = pl.DataFrame(
        rows,
        schema={
            "axis": pl.String,
            "split": pl.String,
            "r2": pl.Float64,
            "mae": pl.Float64,
            "rmse": pl.Float64,
            "n": pl.Int64,
            "baseline_rmse": pl.Float64,
        },
    )
    return Out(
        values={"metrics": table, "residuals": pl.concat(residual_parts)},
        facts={"metrics": table.to_dicts()},
        metrics=metrics,
        plots=plots,
    )


def prep_stats_time(frame: pl.DataFrame, time: str, t0_us: int) -> np.ndarray:
    """Seconds since ``t0_us`` of a frame's time column."""
    us = frame[time].dt.cast_time_unit("us").cast(pl.Int64).to_numpy()
    return np.asarray((us - t0_us) / 1e6, dtype=np.float64)


def _check_period(p: ResidualParams, axes: list[str], dt_seconds: float) -> None:
    """DataError unless a fixed streaming period fits twice in the warm-up (named per axis)."""
    period = p.streaming.period
    if isinstance(period, str) or dt_seconds <= 0:
        return
    samples = round(period / dt_seconds)
    warmup = p.streaming.warmup_samples
    if 2 * samples >= warmup:
        raise DataError(
            f"axis '{axes[0]}': params.streaming.period {period:g} s is {samples} samples at "
            f"this data's interval ({dt_seconds:g} s), longer than half the warm-up of "
            f"{warmup} samples (params.streaming.warmup_samples)",
            fix=f"set params.streaming.period below {(warmup - 1) / 2 * dt_seconds:g} s or "
            f"auto, or raise params.streaming.warmup_samples above {2 * samples}",
        )


def mode_limits(
    r: pl.DataFrame, side: str, p: ResidualParams, dt_seconds: float
) -> dict[str, dict[str, float]]:
    """MinC / MaxC (and the below side's) per operating mode, on each mode's own training
    residuals; modes with fewer than ``min_pos_for_trim`` residuals are left out."""
    knobs = p.thresholds.policy()
    out: dict[str, dict[str, float]] = {}
    for (mode,), part in r.drop_nulls("mode").group_by("mode", maintain_order=True):
        res = part["residual"].to_numpy()
        if res.size < p.thresholds.min_pos_for_trim:
            continue
        above = calibrate_axis(res, dt_seconds=dt_seconds, **knobs)
        entry = {"MinC": float(above["MinC"]), "MaxC": float(above["MaxC"])}
        entry["rows"] = float(res.size)
        if side != "above":
            below = calibrate_axis(-res, dt_seconds=dt_seconds, **knobs)
            entry |= {"MinC_below": float(below["MinC"]), "MaxC_below": float(below["MaxC"])}
        out[str(mode)] = entry
    return dict(sorted(out.items()))


def thresholds(
    ctx: StageContext,
    samples: pl.DataFrame,
    residuals: pl.DataFrame,
    models: dict[str, AxisModel],
    prep_stats: dict[str, Any],
) -> Out:
    """MinC / MaxC and sustain steps per axis from training residuals; the online predictor."""
    p: ResidualParams = ctx.params
    knobs = p.thresholds.policy()
    limits: dict[str, dict[str, Any]] = {}
    for axis in models:
        r = residuals.filter((pl.col("axis") == axis) & (pl.col("split") == "train"))
        side = p.thresholds.directions.get(axis, p.thresholds.direction)
        try:
            limits[axis] = calibrate_axis(
                r["residual"].to_numpy(), dt_seconds=prep_stats["dt_seconds"], **knobs
            )
            if side != "above":
                below = calibrate_axis(
                    -r["residual"].to_numpy(), dt_seconds=prep_stats["dt_seconds"], **knobs
                )
                limits[axis] = with_below(limits[axis], below, side)
            if p.thresholds.per_mode and "mode" in r.columns:
                per_mode = mode_limits(r, side, p, prep_stats["dt_seconds"])
                if per_mode:
                    limits[axis]["modes"] = per_mode
        except ValueError as e:
            raise DataError(
                f"axis '{axis}': cannot set limits ({e})",
                fix="set params.thresholds.use_mad_fallback: true, or check the axis's data",
            ) from None
    time = prep_stats["time"]
    if p.mode == "streaming":
        _check_period(p, list(models), prep_stats["dt_seconds"])
    predictor = ResidualPredictor(
        models,
        limits,
        time_field=time,
        t0_us=prep_stats["t0_us"],
        streaming=p.streaming if p.mode == "streaming" else None,
        max_spans=p.model.max_spans,
        hold_off=p.thresholds.hold_off,
        fit_watch=(p.lifecycle.stream_window, p.lifecycle.alert_rate),
        recalibrate=recalibration_trigger(p),
        inputs=_inputs(samples, list(models), p, ctx.source),
    )
    test_end = prep_stats["train_end"]
    held = samples.filter(pl.col(time) >= test_end) if test_end is not None else samples.head(0)
    if predictor.streaming is None:  # what the limits let through on their own training samples
        fitted = samples.filter(pl.col(time) >= prep_stats["train_start"])
        fitted = fitted.filter(pl.col(time) < test_end) if test_end is not None else fitted
        predictor.normal_rates = normal_rates(predictor, fitted)
    levels = None
    stream_fits: dict[str, Any] | None = None
    if predictor.streaming is not None:
        stream_fits = {}
        for axis in models:
            fit = score_stream(
                samples[axis].cast(pl.Float64).fill_null(np.nan).to_numpy(),
                time_s=prep_stats_time(samples, time, prep_stats["t0_us"]),
                params=predictor.streaming,
                axis=axis,
            ).fit
            if fit is not None:
                stream_fits[axis] = fit.describe()
    if held.height and predictor.streaming is not None:
        # streaming: the stream warms up on its own first samples, the held-out rows are scored
        levels = predictor.predict_frame(samples).tail(held.height)
    elif held.height:
        levels = predictor.predict_frame(held)
    holdout: dict[str, dict[str, int]] = {}
    for axis in models:
        col = levels[f"{axis}_level"] if levels is not None else pl.Series([], dtype=pl.String)
        holdout[axis] = {k: int((col == k).sum()) for k in ("ok", "alert", "error")}
    table = pl.DataFrame(
        [
            {
                "axis": a,
                "MinC": t["MinC"],
                "MaxC": t["MaxC"],
                "T_long_steps": t["T_long_steps"],
                "T_short_steps": t["T_short_steps"],
                "dt_seconds": t["dt_seconds"],
                "method": t["policy"]["method"],
                "n_positive": t["policy"]["n_positive"],
                "n_trimmed": t["policy"]["n_trimmed"],
            }
            for a, t in limits.items()
        ]
    )
    scores: list[BaselineScore] = []
    held_out: dict[str, Any] | None = None
    if levels is not None:
        scores, held_out = against_baselines(ctx, held, levels, residuals, list(models))
    metrics = {f"{a}_holdout_{k}": float(v) for a, c in holdout.items() for k, v in c.items()}
    tables = (
        {"holdout_levels": pl.concat([held.select(time), levels], how="horizontal")}
        if levels is not None
        else {}
    )
    return Out(
        values={"thresholds": table},
        facts={"axes": limits, "holdout": holdout, "held_out": held_out, "streaming": stream_fits},
        metrics=metrics,
        tables=tables,
        baselines=scores,
        model=ModelArtifact(
            model=predictor,
            input_example=samples.select(time, *models, *predictor.inputs).head(5),
            metadata={"thresholds": limits, "prep_stats": prep_stats},
        ),
    )
