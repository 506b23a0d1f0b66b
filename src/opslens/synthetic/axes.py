"""Machine axes: a trend per axis, noise, idle zeros and one planted fault.

``axis1`` rises linearly, ``axis2`` falls linearly and carries the fault (a step
of ``fault_size`` noise deviations for ``fault_length`` samples from
``fault_start`` × the series), ``axis3`` bends once halfway (piecewise linear), and
a share ``idle_share`` of ``axis1``'s samples are exactly 0 (the axis idle).
``layout="long"`` gives ``ts, axis_id, value`` rows instead of ``ts, axis1..N``.

Example:
    >>> data = make_axes(seed=0, n_samples=500)
    >>> data.frame.columns, data.frame.height
    (['ts', 'axis1', 'axis2', 'axis3'], 500)
    >>> data.fault
    {'axis': 'axis2', 'start': 450, 'end': 490}
    >>> make_axes(n_samples=10, layout="long").frame.columns
    ['ts', 'axis_id', 'value']
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np
import polars as pl

__all__ = ["AxesData", "make_axes"]


@dataclass(frozen=True)
class AxesData:
    """The samples, the planted fault (axis, first and past-last sample) and the true trends."""

    frame: pl.DataFrame
    fault: dict[str, Any]
    trends: dict[str, np.ndarray]


def make_axes(
    seed: int = 0,
    *,
    n_samples: int = 3000,
    dt_seconds: float = 2.0,
    start: str = "2025-09-01T00:00:00",
    noise: float = 0.5,
    fault_start: float = 0.9,
    fault_length: int = 40,
    fault_size: float = 6.0,
    idle_share: float = 0.02,
    layout: Literal["wide", "long"] = "wide",
) -> AxesData:
    """Three axes of ``n_samples`` every ``dt_seconds`` with the fault planted on axis2."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_samples) * dt_seconds
    span = float(t[-1]) if n_samples > 1 else 1.0
    half = span / 2
    trends = {
        "axis1": 10.0 + 4.0 * t / span,
        "axis2": 20.0 - 3.0 * t / span,
        "axis3": 5.0 + np.where(t < half, 2.0 * t / span, 1.0 + 8.0 * (t - half) / span),
    }
    values = {a: trend + rng.normal(0.0, noise, n_samples) for a, trend in trends.items()}
    first = int(n_samples * fault_start)
    last = min(n_samples, first + fault_length)
    values["axis2"][first:last] += fault_size * noise
    idle = rng.random(n_samples) < idle_share
    values["axis1"][idle] = 0.0
    t0 = datetime.fromisoformat(start)
    ts = [t0 + timedelta(seconds=float(s)) for s in t]
    wide = pl.DataFrame({"ts": ts, **values}).with_columns(pl.col("ts").dt.cast_time_unit("us"))
    if layout == "long":
        frame = (
            wide.unpivot(index="ts", variable_name="axis_id", value_name="value")
            .with_columns(pl.col("axis_id").str.strip_prefix("axis").cast(pl.Int64))
            .sort("ts", "axis_id")
        )
    else:
        frame = wide
    return AxesData(
        frame=frame, fault={"axis": "axis2", "start": first, "end": last}, trends=trends
    )
