"""A wind-turbine fleet with planted gradual degradation and sensor faults, one reading a day.

Turbines stand on ``n_sites`` sites; every site has its own weather (daily wind
speed and ambient temperature, seasonal with AR(1) noise) that all its turbines
share. Per turbine and day, with the three metric roles (named by ``metrics``):

* temperature (gearbox): ambient + load·wind + the turbine's offset + noise, °C
* power: the site's wind through a power curve × the turbine's efficiency + noise
* speed (rotor): the site's wind through a speed curve + noise

``n_failing`` turbines fail: over the 20-45 days before their failure day their
gearbox temperature rises gradually (to 7-13 °C above their usual level, faster at
the end), and they report nothing after it. ``n_sensor_faults`` other turbines get
a sensor fault on one metric from a day on: a flatline (the sensor reads 0), a
stuck value (the reading of that day repeated), a unit change (temperature in °F)
or curtailment (power capped at 40-60% of its median). Days are missing at random
(``missing_share``: single days and outages of 2-4 days) and a few cells are NaN.
``n_repairs`` healthy turbines get a gearbox repair (``events``: id, time, kind) after
which they run 5-8 °C cooler.
Everything is drawn from ``numpy.random.default_rng(seed)``.

Example:
    >>> t = make_turbines(n_turbines=30, n_sites=2, n_days=120, n_failing=3,
    ...     n_sensor_faults=4, seed=1)
    >>> t.readings.columns
    ['turbine_id', 'site', 'timestamp', 'gearbox_temp_c', 'power_kw', 'rotor_speed_rpm']
    >>> int(t.truth["failed"].sum()), int(t.truth["sensor_fault"].is_not_null().sum())
    (3, 4)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import polars as pl

from opslens.errors import DataError

__all__ = ["FAULT_KINDS", "TurbineFleet", "make_turbines"]

#: The planted sensor-fault kinds, in the order they are dealt to faulty turbines.
FAULT_KINDS = ("flatline", "stuck", "unit_change", "curtailment")
_DEAL = (0, 2, 3, 1, 0, 3, 2, 1, 0, 3)  # 3 flatlines, 2 stuck, 2 unit changes, 3 curtailments
_START = datetime(2024, 1, 1)


@dataclass(frozen=True)
class TurbineFleet:
    """Daily readings (id, site, timestamp, three metrics) and the planted truth.

    ``truth``: one row per turbine: id, site, failed, failure_time, heat_start (the
    first day of the planted heat-up), sensor_fault (a kind of :data:`FAULT_KINDS`
    or null), fault_metric, fault_start. :meth:`failures` is the failure list.

    Example:
        >>> t = make_turbines(n_turbines=12, n_sites=2, n_days=100, n_failing=2,
        ...     n_sensor_faults=2, seed=0)
        >>> t.failures().columns
        ['turbine_id', 'failure_time']
    """

    readings: pl.DataFrame
    truth: pl.DataFrame
    metrics: tuple[str, str, str]
    events: pl.DataFrame | None = None

    def failures(self) -> pl.DataFrame:
        """The failed turbines and their failure days (a failure list)."""
        return self.truth.filter("failed").select(self.truth.columns[0], "failure_time")


def _seasonal_ar(
    rng: np.random.Generator, n_rows: int, n_days: int, mean: float, season: float, sd: float
) -> np.ndarray:
    """Rows of mean + season·sin(yearly) + AR(1) (φ = 0.7) noise of stationary sd ``sd``."""
    phase = rng.uniform(0, 2 * np.pi, n_rows)[:, None]
    days = np.arange(n_days)[None, :]
    shocks = rng.standard_normal((n_rows, n_days)) * sd * np.sqrt(1 - 0.7**2)
    noise = np.empty_like(shocks)
    noise[:, 0] = rng.standard_normal(n_rows) * sd
    for d in range(1, n_days):  # days, not readings: a few hundred steps over all rows
        noise[:, d] = 0.7 * noise[:, d - 1] + shocks[:, d]
    out: np.ndarray = mean + season * np.sin(2 * np.pi * days / 365.0 + phase) + noise
    return out


def _missing(rng: np.random.Generator, shape: tuple[int, int], share: float) -> np.ndarray:
    """Mask of missing days: single days plus outages of 2-4 days."""
    drop = rng.random(shape) < share / 2
    starts = np.argwhere(rng.random(shape) < share / 6)
    for row, col in starts:
        drop[row, col : col + int(rng.integers(2, 5))] = True
    return drop


def make_turbines(
    *,
    n_turbines: int = 300,
    n_sites: int = 3,
    n_days: int = 240,
    metrics: Sequence[str] = ("gearbox_temp_c", "power_kw", "rotor_speed_rpm"),
    site_names: Sequence[str] | None = None,
    rated_power: float = 2000.0,
    n_failing: int = 12,
    n_sensor_faults: int = 10,
    missing_share: float = 0.02,
    n_repairs: int = 0,
    id_prefix: str = "wt",
    entity: str = "turbine_id",
    seed: int = 0,
) -> TurbineFleet:
    """Generate a deterministic turbine fleet with planted failures and sensor faults.

    Example:
        >>> t = make_turbines(n_turbines=20, n_sites=2, n_days=100, n_failing=2,
        ...     n_sensor_faults=2, seed=3)
        >>> t.readings["turbine_id"][0], t.readings["site"].n_unique()
        ('wt-000', 2)
    """
    names = tuple(metrics)
    sites = (
        list(site_names)
        if site_names is not None
        else [f"site-{chr(65 + i)}" for i in range(n_sites)]
    )
    if len(names) != 3 or len(set(names)) != 3 or {entity, "site", "timestamp"} & set(names):
        raise DataError(
            f"metrics {list(names)} must be three distinct names other than {entity}/site/timestamp",
            fix="give three metric names: gearbox temperature, power, rotor speed",
        )
    if n_sites < 1 or len(sites) != n_sites or n_days < 60:
        raise DataError(
            f"cannot make {n_sites} sites named {sites} over {n_days} days",
            fix="use n_sites >= 1 with as many site_names, and n_days >= 60",
        )
    if (
        n_turbines < n_failing + n_sensor_faults + n_repairs + n_sites
        or not 0 <= missing_share < 0.3
    ):
        raise DataError(
            f"{n_turbines} turbines cannot hold {n_failing} failures and {n_sensor_faults} "
            f"sensor faults on {n_sites} sites (missing_share={missing_share})",
            fix="raise n_turbines or lower n_failing/n_sensor_faults; use 0 <= missing_share < 0.3",
        )
    rng = np.random.default_rng(seed)
    site = rng.permutation(np.arange(n_turbines) % n_sites)
    wind = np.clip(_seasonal_ar(rng, n_sites, n_days, 7.5, 1.5, 2.2), 0.5, None)
    ambient = _seasonal_ar(rng, n_sites, n_days, 12.0, 9.0, 2.0)

    # the turbine's own character
    efficiency = rng.normal(1.0, 0.05, n_turbines)[:, None]
    temp_offset = rng.normal(0.0, 2.0, n_turbines)[:, None]
    load_gain = rng.normal(22.0, 2.0, n_turbines)[:, None]
    w = wind[site]
    curve = 1.0 / (1.0 + np.exp(-(w - 8.0) / 1.3))  # the share of rated power
    power = rated_power * np.clip(
        curve * efficiency + rng.normal(0, 0.03, (n_turbines, n_days)), 0, 1
    )
    speed = np.clip(6.0 + 1.1 * w + rng.normal(0, 0.4, (n_turbines, n_days)), 0, 16.5)
    temp = ambient[site] + 20.0 + load_gain * curve + temp_offset
    temp += rng.normal(0, 1.2, (n_turbines, n_days))

    order = rng.permutation(n_turbines)
    failing, faulty = np.sort(order[:n_failing]), order[n_failing : n_failing + n_sensor_faults]
    repaired = np.sort(order[n_failing + n_sensor_faults : n_failing + n_sensor_faults + n_repairs])
    days = np.arange(n_days)
    life = np.full(n_turbines, n_days)
    life[failing] = rng.integers(int(0.5 * n_days), n_days, n_failing)
    heat_len = rng.integers(20, 46, n_failing)
    heat_start = life[failing] - heat_len
    ramp = np.clip((days[None, :] - heat_start[:, None]) / heat_len[:, None], 0, 1)
    temp[failing] += rng.uniform(7.0, 13.0, n_failing)[:, None] * (0.6 * ramp + 0.4 * ramp**2)

    # a repaired gearbox runs cooler from the repair day on (a new, better-lubricated unit)
    repair_day = np.zeros(0, dtype=np.int64)
    if n_repairs:  # drawn only when asked, so fleets without repairs stay as they were
        repair_day = rng.integers(int(0.4 * n_days), int(0.8 * n_days), repaired.size)
        for dev, at in zip(repaired, repair_day, strict=True):
            temp[dev, at:] -= rng.uniform(5.0, 8.0)
    values = [temp, power, speed]
    kinds = np.array([_DEAL[i % len(_DEAL)] for i in range(n_sensor_faults)], dtype=int)
    fault_metric = np.where(
        kinds == 2, 0, np.where(kinds == 3, 1, rng.integers(0, 3, n_sensor_faults))
    )
    fault_start = rng.integers(int(0.3 * n_days), n_days - 25, n_sensor_faults)
    for dev, kind, m, start in zip(faulty, kinds, fault_metric, fault_start, strict=True):
        series = values[m][dev]
        if kind == 0:
            series[start:] = 0.0
        elif kind == 1:
            series[start:] = round(float(series[start]), 1)
        elif kind == 2:
            series[start:] = series[start:] * 1.8 + 32.0
        else:
            cap = round(float(np.median(series) * rng.uniform(0.4, 0.6)), 0)
            series[start:] = np.minimum(series[start:], cap)
    for v in values:  # a few unreadable cells
        v.ravel()[rng.choice(v.size, size=int(0.0005 * v.size), replace=False)] = np.nan

    keep = (days[None, :] < life[:, None]) & ~_missing(rng, (n_turbines, n_days), missing_share)
    keep[np.arange(n_turbines), life - 1] = True  # the last day marks a failure
    keep[faulty[:, None], fault_start[:, None] + np.arange(3)[None, :]] = True  # a fault is seen
    dev_idx, day_idx = np.nonzero(keep)

    width = max(3, len(str(n_turbines - 1)))
    ids = np.array([f"{id_prefix}-{i:0{width}d}" for i in range(n_turbines)])
    site_arr = np.array(sites)[site]
    readings = pl.DataFrame({entity: ids[dev_idx], "site": site_arr[dev_idx]}).with_columns(
        (pl.lit(_START) + pl.duration(days=pl.lit(pl.Series(day_idx))))
        .cast(pl.Datetime("us"))
        .alias("timestamp"),
        *(pl.Series(n, values[i][keep], dtype=pl.Float64) for i, n in enumerate(names)),
    )
    failed = np.zeros(n_turbines, dtype=bool)
    failed[failing] = True
    heat = np.full(n_turbines, -1)
    heat[failing] = heat_start
    kind_col: list[str | None] = [None] * n_turbines
    metric_col: list[str | None] = [None] * n_turbines
    start_col = np.full(n_turbines, -1)
    for dev, kind, m, start in zip(faulty, kinds, fault_metric, fault_start, strict=True):
        kind_col[dev], metric_col[dev], start_col[dev] = FAULT_KINDS[kind], names[m], start

    def day(values: np.ndarray) -> pl.Series:
        return pl.Series([_START + timedelta(days=int(d)) if d >= 0 else None for d in values])

    truth = pl.DataFrame(
        {
            entity: ids,
            "site": site_arr,
            "failed": failed,
            "failure_time": day(np.where(failed, life - 1, -1)),
            "heat_start": day(heat),
            "sensor_fault": pl.Series(kind_col, dtype=pl.String),
            "fault_metric": pl.Series(metric_col, dtype=pl.String),
            "fault_start": day(start_col),
        }
    )
    events = None
    if n_repairs:
        events = pl.DataFrame(
            {
                entity: ids[repaired],
                "time": day(repair_day),
                "kind": ["repair"] * repaired.size,
            }
        ).sort(entity)
    return TurbineFleet(
        readings=readings, truth=truth, metrics=(names[0], names[1], names[2]), events=events
    )
