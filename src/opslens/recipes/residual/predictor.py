"""What the residual recipe's online side loads: per-axis trends, limits and sustain steps.

An instance is one sample: the time field (ISO text, a timestamp or epoch
seconds) and a number per axis; optionally ``stream`` (which stream it belongs
to, default ``default``) and ``seq`` (a per-stream sequence number; without it
the sample's time orders the stream).

- :meth:`ResidualPredictor.step` scores a sample of a stream whose state the
  caller keeps (JSON-ready), with the sustain rules of :mod:`.checker`.
- :meth:`~ResidualPredictor.predict_frame` scores a frame as streams (rows in
  order, one stream per ``stream`` value), each from a fresh state: the same
  answers as ``step`` called row by row.
- :meth:`~ResidualPredictor.predict_one` answers a sample on its own (as the
  first of a new stream): residuals and limits, no history.

Example:
    >>> p = example_predictor()
    >>> answer, state = p.step({"ts": 0.0, "axis1": 10.0}, None)
    >>> answer["axis1_residual"], answer["axis1_level"], state["runs"]
    (9.0, 'ok', {'axis1': [1, 1]})
    >>> p.step({"ts": 1.0, "axis1": 10.0}, state)[0]["level"]
    'alert'
    >>> p.step({"ts": 0.0, "axis1": 10.0}, state)[0]["duplicate"]
    True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl

from opslens.core.columns import MAX_MAGNITUDE
from opslens.core.frames import as_polars
from opslens.core.predictor import BasePredictor, InputRule
from opslens.errors import DataError, InstanceError
from opslens.recipes.residual.checker import score_block, score_one
from opslens.recipes.residual.conditional import AxisConditional
from opslens.recipes.residual.params import HOLD_OFF, StreamingParams
from opslens.recipes.residual.trend import AxisTrend

__all__ = ["ResidualPredictor", "example_predictor"]

_EPOCH = datetime(1970, 1, 1)


def _epoch_us(value: Any, field: str) -> int:
    """Microseconds since the epoch (UTC) of a sample's time value."""
    if isinstance(value, bool):
        raise InstanceError(f"'{field}' is a boolean, not a time", fix=_TIME_FIX)
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise InstanceError(f"'{field}' is {value}, not a time", fix=_TIME_FIX)
        factor = 1_000 if abs(value) > 1e11 else 1_000_000
        return round(value * factor)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InstanceError(
                f"'{field}' value {value!r} is not a timestamp", fix=_TIME_FIX
            ) from None
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return int((value - _EPOCH) // _US)
    raise InstanceError(f"'{field}' is a {type(value).__name__}, not a time", fix=_TIME_FIX)


_US = datetime(1970, 1, 1, 0, 0, 0, 1) - _EPOCH
#: epoch seconds of 0001-01-01 and epoch milliseconds of 9999-12-31T23:59:59 (a number
#: above 1e11 is read as milliseconds)
_YEAR_1_S = -62_135_596_800
_YEAR_9999_MS = 253_402_300_799_000
_TIME_FIX = "send ISO 8601 text (2025-09-01T00:00:00Z) or epoch seconds"


class ResidualPredictor(BasePredictor):
    """Per-axis trend models with their thresholds entries (MinC, MaxC, T_long/T_short steps).

    With ``streaming`` (the recipe's ``mode: streaming``) the samples are scored by
    :mod:`.streaming` instead: every stream warms up on its own first samples; the
    trends and limits stay in the model as the training run's record.

    ``normal_rates`` is the share of the samples the limits were calibrated on that are at
    ``alert`` or ``error``, per axis and for the stream (``"level"``, the worst axis): what
    the limits let through on normal data, which the drift trigger allows on top of
    ``params.lifecycle.alert_rate`` (empty: none, as before it was recorded).
    """

    recipe = "residual"
    stream_field = "stream"
    seq_field = "seq"

    def __init__(
        self,
        models: Mapping[str, AxisTrend | AxisConditional],
        thresholds: Mapping[str, Mapping[str, Any]],
        *,
        time_field: str,
        t0_us: int,
        streaming: StreamingParams | None = None,
        max_spans: float = 1.0,
        inputs: Sequence[str] = (),
        hold_off: int = HOLD_OFF,
        fit_watch: tuple[int, float] = (0, 1.0),
        recalibrate: tuple[int, float, bool, int] | None = None,
        normal_rates: Mapping[str, float] | None = None,
    ) -> None:
        self.recal = recalibrate
        self.normal_rates = dict(normal_rates or {})
        self.streaming = streaming
        self.hold_off = int(hold_off)
        self.fit_watch = (int(fit_watch[0]), float(fit_watch[1]))
        self.max_spans = max_spans
        self.inputs = list(inputs)
        self.models = dict(models)
        self.thresholds = {a: dict(t) for a, t in thresholds.items()}
        self.axes = list(self.models)
        self.time_field = time_field
        self.t0_us = int(t0_us)

    def input_schema(self) -> dict[str, str]:
        """The time field, one number per axis, and the regressor / mode inputs if any
        (``stream`` and ``seq`` are optional)."""
        extra = {c: "any" for c in getattr(self, "inputs", [])}
        return {self.time_field: "datetime", **{a: "number" for a in self.axes}, **extra}

    def input_rules(self) -> dict[str, InputRule]:
        """The time (ISO text, or epoch seconds / milliseconds from year 1 to 9999), each
        axis a number or null (answered ``missing``), a mode column one of the modes seen in
        training, other inputs numbers; ``seq`` optional."""
        modes: dict[str, tuple[str, ...]] = {}
        for model in self.models.values():
            if isinstance(model, AxisConditional) and model.mode_column:
                seen = set(modes.get(model.mode_column, ())) | set(getattr(model, "coef_", {}))
                modes[model.mode_column] = tuple(sorted(seen))
        big = MAX_MAGNITUDE
        rules = {
            self.time_field: InputRule("time", False, minimum=_YEAR_1_S, maximum=_YEAR_9999_MS),
            **{a: InputRule("number", minimum=-big, maximum=big) for a in self.axes},
        }
        for c in getattr(self, "inputs", []):
            if c not in rules:
                rules[c] = (
                    InputRule("string", False, choices=modes[c])
                    if c in modes
                    else InputRule("number", minimum=-big, maximum=big)
                )
        rules[self.seq_field] = InputRule("number", minimum=-big, maximum=big, required=False)
        return rules

    def _check_inputs(self, names: Any) -> None:
        """InstanceError naming the axis whose model needs an input the samples lack."""
        for axis, model in self.models.items():
            if isinstance(model, AxisConditional):
                for c in model.inputs():
                    if c not in names:
                        raise InstanceError(
                            f"axis '{axis}': input column '{c}' is missing",
                            fix=f"send '{c}' with every sample (the model of '{axis}' was "
                            "fitted on it), or retrain without it in params.model.regressors "
                            "/ params.model.mode_column",
                        )

    def context(self, frame: pl.DataFrame) -> dict[str, np.ndarray]:
        """The regressor and mode columns of a frame of samples (DataError for one missing)."""
        try:
            self._check_inputs(frame.columns)
        except InstanceError as e:
            raise DataError(e.problem, fix=e.fix) from None
        wanted = list(getattr(self, "inputs", []))
        for model in self.models.values():  # an axis on other axes: they are inputs too
            if isinstance(model, AxisConditional):
                wanted += [c for c in model.inputs() if c in self.models]
        return {c: frame[c].to_numpy() for c in dict.fromkeys(wanted)}

    def stream_of(self, instance: Mapping[str, Any]) -> str:
        """The stream id of a sample: its ``stream`` field, else ``default``."""
        value = instance.get(self.stream_field)
        return "default" if value is None else str(value)

    def _sample(self, instance: Mapping[str, Any]) -> tuple[float, list[float], float]:
        if getattr(self, "inputs", None) and isinstance(instance, Mapping):
            self._check_inputs(instance)
        self.check_instance(instance)
        time_s = (_epoch_us(instance[self.time_field], self.time_field) - self.t0_us) / 1e6
        values = []
        for axis in self.axes:
            v = instance[axis]
            if v is None:  # a missing reading: answered at level missing
                v = math.nan
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise InstanceError(
                    f"axis '{axis}' is {v!r}, not a number", fix=f"send a number for {axis}"
                )
            values.append(float(v))
        seq = instance.get(self.seq_field)
        if seq is not None and (isinstance(seq, bool) or not isinstance(seq, int | float)):
            raise InstanceError(
                f"'{self.seq_field}' is {seq!r}, not a number",
                fix="send an increasing integer per stream, or leave seq out",
            )
        key = float(seq) if seq is not None else time_s
        return time_s, values, key

    def step(
        self, instance: Mapping[str, Any], state: Mapping[str, Any] | None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Score one sample of a stream from its state: ``(answer, new_state)``, both JSON-ready."""
        time_s, values, key = self._sample(instance)
        scored, new = score_one(self, time_s, values, key, state, instance)
        answer = {"stream": self.stream_of(instance), **scored}
        if self.seq_field in instance:
            answer["seq"] = instance[self.seq_field]
        return answer, new

    def recalibration_window(self) -> int:
        """How many recent samples per stream a stream keeps to recalibrate on (0: no trigger;
        ``params.recalibrate``; streaming mode learns every stream's own limits instead)."""
        recal = getattr(self, "recal", None)
        if recal is None or self.streaming is not None:
            return 0
        return int(recal[3])

    def recalibration_frame(self, instances: Sequence[Mapping[str, Any]]) -> pl.DataFrame:
        """A stream's recent samples as a batch to recalibrate on: the time as timestamps, the
        axes and inputs as numbers (a recalibration is a scored batch of the life cycle).

        Example:
            >>> frame = example_predictor().recalibration_frame([{"ts": 0.0, "axis1": 2.0}])
            >>> frame.columns, frame["ts"].dtype.time_unit
            (['ts', 'axis1'], 'us')
        """
        us = [_epoch_us(i[self.time_field], self.time_field) for i in instances]
        cols: dict[str, Any] = {self.time_field: pl.from_epoch(pl.Series(us), time_unit="us")}
        for c in [*self.axes, *getattr(self, "inputs", [])]:
            cols[c] = [i.get(c) for i in instances]
        return pl.DataFrame(cols)

    def predict_one(self, instance: Mapping[str, Any]) -> dict[str, Any]:
        """A sample on its own, as the first of a stream (no run lengths before it)."""
        return self.step(instance, None)[0]

    def arrays(self, frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``time_s``, the ``(n, n_axes)`` values and the dedup keys of a frame of samples."""
        frame = as_polars(frame, what="the samples")
        missing = [c for c in (self.time_field, *self.axes) if c not in frame.columns]
        if missing:
            raise DataError(
                f"the samples lack column(s) {', '.join(missing)}",
                fix=f"give every sample {', '.join([self.time_field, *self.axes])}",
            )
        col = frame[self.time_field]
        if isinstance(col.dtype, pl.Datetime):
            if col.dtype.time_zone:
                col = col.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
            us = col.dt.cast_time_unit("us").cast(pl.Int64).to_numpy()
        else:
            us = np.array([_epoch_us(v, self.time_field) for v in col.to_list()], dtype=np.int64)
        time_s = (us - self.t0_us) / 1e6
        values = np.empty((frame.height, len(self.axes)), dtype=np.float64)
        for j, axis in enumerate(self.axes):
            if not frame[axis].dtype.is_numeric():
                raise DataError(
                    f"axis column '{axis}' of the samples has type {frame[axis].dtype}, not numbers",
                    fix=f"send numbers for {axis}",
                )
            values[:, j] = frame[axis].cast(pl.Float64).fill_null(np.nan).to_numpy()
        keys = (
            frame[self.seq_field].cast(pl.Float64).to_numpy()
            if self.seq_field in frame.columns
            else time_s
        )
        return time_s, values, keys

    def answer_frame(self, cols: Mapping[str, np.ndarray], stream: str) -> pl.DataFrame:
        """Answer columns as a frame with a ``stream`` column first."""
        n = len(cols["time_s"])
        schema: dict[str, Any] = {"stream": pl.String, "sample": pl.Int64, "time_s": pl.Float64}
        schema["duplicate"] = pl.Boolean
        schema["out_of_order"] = pl.Boolean
        for axis in self.axes:
            schema |= {
                f"{axis}_predicted": pl.Float64,
                f"{axis}_residual": pl.Float64,
                f"{axis}_level": pl.String,
                f"{axis}_run": pl.Int64,
                f"{axis}_run_error": pl.Int64,
            }
        schema["level"] = pl.String
        schema["alarm"] = pl.Boolean
        data = {"stream": np.full(n, stream), **cols}
        return pl.DataFrame([pl.Series(k, data[k], dtype=t) for k, t in schema.items()])

    def predict_frame(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Every row scored, streams (``stream`` column) in row order, each from a fresh state."""
        frame = as_polars(frame, what="the samples")
        if self.stream_field not in frame.columns:
            time_s, values, keys = self.arrays(frame)
            cols = score_block(self, time_s, values, keys, None, self.context(frame))[0]
            return self.answer_frame(cols, "default")
        frame = frame.with_row_index("_row")
        parts = []
        for (sid,), part in frame.group_by(self.stream_field, maintain_order=True):
            time_s, values, keys = self.arrays(part)
            cols = score_block(self, time_s, values, keys, None, self.context(part))[0]
            answers = self.answer_frame(cols, str(sid))
            parts.append(answers.with_columns(part["_row"]))
        return pl.concat(parts).sort("_row").drop("_row")

    def limits(self) -> dict[str, dict[str, Any]]:
        """The thresholds entry of every axis (the registry's thresholds.json)."""
        return {a: dict(t) for a, t in self.thresholds.items()}


def example_predictor() -> ResidualPredictor:
    """A one-axis predictor for examples: trend y = 1, MinC 5, MaxC 8, alert after 2, error after 4.

    Example:
        >>> example_predictor().axes
        ['axis1']
    """
    model = AxisTrend("linear").fit(np.array([0.0, 1e9]), np.array([1.0, 1.0]))  # flat, ~30 years
    limits = {"MinC": 5.0, "MaxC": 8.0, "T_long_steps": 2, "T_short_steps": 4, "dt_seconds": 1.0}
    return ResidualPredictor({"axis1": model}, {"axis1": limits}, time_field="ts", t0_us=0)
