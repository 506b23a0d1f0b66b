"""A pump on a plant floor: several sensors, operating modes by shift, a slow and a sudden fault.

One sample a minute (``dt_seconds``) over ``days`` days. The plant runs two shifts on
weekdays at ``high`` load (06:00-22:00), ``low`` load at night and ``idle`` at the weekend;
the mode is logged in the ``mode`` column. Sensors:

* ``speed`` (rpm): the mode's set point, a slow wander of a few rpm and noise;
* ``flow`` (m³/h) and ``pressure`` (bar): follow speed (affinity laws, linearised) plus noise;
* ``temperature`` (°C, motor): the mode's load heating, the hall's daily cycle (±1.5 °C,
  warmest mid-afternoon) and noise;
* ``vibration`` (mm/s): the mode's level and noise.

Two faults are planted after the first half (the fault-free training window):

* **slow** — bearing wear: from ``slow_start`` (share of the series) vibration and
  temperature creep up linearly for ``slow_days`` days (+2.5 mm/s, +6 °C at the end, then it stays worn);
* **sudden** — a blocked impeller: from ``sudden_start`` flow drops 30% at the same
  speed and pressure rises 15% for ``sudden_hours`` hours.

The ``fault`` column (1 from the bearing's first wear on, and while the impeller is
blocked) is the maintenance log: the labels the recipe scores its alarms and the 3-sigma
band's against. Real data has holes: the flow sensor drops out (missing values) for two hours on day 3,
and the logger misses half a day (no rows) on day 5.

Example:
    >>> data = make_pump(seed=0, days=14)
    >>> data.frame.columns
    ['ts', 'mode', 'speed', 'flow', 'pressure', 'temperature', 'vibration', 'fault']
    >>> sorted(data.frame["mode"].unique())
    ['high', 'idle', 'low']
    >>> data.faults["sudden"]["axes"], data.faults["slow"]["axes"]
    (['flow', 'pressure'], ['vibration', 'temperature'])
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

__all__ = ["PumpData", "make_pump"]

_SPEED = {"idle": 400.0, "low": 1000.0, "high": 1450.0}
_HEAT = {"idle": 4.0, "low": 12.0, "high": 20.0}
_VIB = {"idle": 0.8, "low": 1.6, "high": 2.4}


@dataclass(frozen=True)
class PumpData:
    """The samples and the planted faults (axes, first and past-last timestamp)."""

    frame: pl.DataFrame
    faults: dict[str, dict[str, Any]]


def make_pump(
    seed: int = 0,
    *,
    days: int = 14,
    dt_seconds: float = 60.0,
    start: datetime = datetime(2025, 3, 3),  # a Monday
    slow_start: float = 0.6,
    slow_days: float = 3.0,
    sudden_start: float = 0.85,
    sudden_hours: float = 6.0,
) -> PumpData:
    """The pump's samples; deterministic for a seed."""
    rng = np.random.default_rng(seed)
    n = int(days * 86400 / dt_seconds)
    t = np.arange(n) * dt_seconds
    ts = np.datetime64(start, "us") + (t * 1e6).astype("timedelta64[us]")
    hour = (t / 3600.0) % 24
    weekday = ((t // 86400).astype(int) + start.weekday()) % 7
    mode = np.where(weekday >= 5, "idle", np.where((hour >= 6) & (hour < 22), "high", "low"))
    set_point = np.vectorize(_SPEED.get)(mode)
    speed = set_point + np.cumsum(rng.normal(0, 0.3, n)) % 15 + rng.normal(0, 3, n)
    flow = 0.06 * speed + rng.normal(0, 0.6, n)
    pressure = 0.0028 * speed + 0.3 + rng.normal(0, 0.05, n)
    daily = 1.5 * np.sin(2 * np.pi * (hour - 9) / 24)
    temperature = 25.0 + np.vectorize(_HEAT.get)(mode) + daily + rng.normal(0, 0.4, n)
    vibration = np.vectorize(_VIB.get)(mode) + np.abs(rng.normal(0, 0.15, n))

    s0, s1 = int(slow_start * n), int((slow_start + slow_days * 86400 / dt_seconds / n) * n)
    ramp = np.clip((np.arange(n) - s0) / max(s1 - s0, 1), 0.0, 1.0)  # then stays worn
    vibration = vibration + 2.5 * ramp
    temperature = temperature + 6.0 * ramp
    u0 = int(sudden_start * n)
    u1 = min(n, u0 + int(sudden_hours * 3600 / dt_seconds))
    flow[u0:u1] *= 0.7
    pressure[u0:u1] *= 1.15

    frame = pl.DataFrame(
        {
            "ts": ts,
            "mode": mode,
            "speed": speed.round(1),
            "flow": flow.round(2),
            "pressure": pressure.round(3),
            "temperature": temperature.round(2),
            "vibration": vibration.round(3),
            # 1 while the machine is faulty: from the bearing's first wear on (it stays worn)
            # and while the impeller is blocked (what a maintenance log would say)
            "fault": ((np.arange(n) >= s0) | ((np.arange(n) >= u0) & (np.arange(n) < u1))).astype(
                np.int8
            ),
        }
    )
    per_minute = int(60 / dt_seconds) or 1
    dropout = int(3.4 * 86400 / dt_seconds)
    frame = frame.with_columns(
        pl.when(pl.int_range(pl.len()).is_between(dropout, dropout + 120 * per_minute))
        .then(None)
        .otherwise(pl.col("flow"))
        .alias("flow")
    )
    gap = int(5.2 * 86400 / dt_seconds)
    frame = frame.filter(~pl.int_range(pl.len()).is_between(gap, gap + 720 * per_minute))
    faults = {
        "slow": {"axes": ["vibration", "temperature"], "start": ts[s0], "end": ts[min(s1, n - 1)]},
        "sudden": {"axes": ["flow", "pressure"], "start": ts[u0], "end": ts[u1 - 1]},
    }
    return PumpData(frame, faults)
