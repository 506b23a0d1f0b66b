"""A synthetic device fleet: planted behaviour groups and devices that drift, then fail.

Every device belongs to one of ``n_groups`` behaviour groups. Per metric, the
groups differ in level, daily-cycle amplitude, noise, autocorrelation (an
AR(1) coefficient) and spike rate; devices jitter around their group's values.
Each metric follows

    value = level + daily cycle + AR(1) noise + spikes

sampled every ``freq_minutes`` (hourly by default, so the daily period is 24
points). Readings are dropped at random (single readings and short outages,
``gap_share`` of all rows) and a few metric cells are NaN.

``n_failing`` devices, all from ONE group, fail: their series stop at a random
point between 60% and 95% of the horizon (``failure_time`` is their last
timestamp) and over the last 20-30% of their life their noise grows (up to 3×),
their level drifts (up to +2.5 noise sd) and spikes become frequent. Devices of
other groups never fail. Everything is drawn from ``numpy.random.default_rng(seed)``
over a devices × points array (no per-point Python loop).

Example:
    >>> fleet = make_fleet(n_devices=20, n_points=200, n_failing=3, seed=1)
    >>> fleet.readings.columns
    ['device_id', 'timestamp', 'temperature', 'vibration', 'current']
    >>> fleet.truth.filter("failed")["group"].n_unique(), fleet.truth.height
    (1, 20)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import polars as pl
from scipy import fft as sp_fft

from opslens.errors import DataError

__all__ = ["FleetData", "make_fleet"]

# (base level, scale = typical noise sd) per known metric; others get the default.
_METRICS: dict[str, tuple[float, float]] = {
    "temperature": (45.0, 2.0),
    "vibration": (3.0, 0.3),
    "current": (12.0, 0.8),
    "pressure": (6.0, 0.25),
}
_DEFAULT_METRIC = (100.0, 5.0)
# Group-level ranges, in units of the metric's scale (spike rate per reading, AR coefficient).
_LEVEL = (-1.5, 1.5)
_AMPLITUDE = (0.4, 2.0)
_NOISE = (0.5, 1.2)
_AR = (0.3, 0.85)
_SPIKE_RATE = (0.001, 0.01)
_START = datetime(2024, 1, 1)
_CHUNK = 2000


@dataclass(frozen=True)
class FleetData:
    """Readings (device_id, timestamp, one Float64 column per metric) and the planted truth.

    ``truth`` has one row per device: device_id, group, failed, failure_time.

    Example:
        >>> f = make_fleet(n_devices=6, n_points=48, n_groups=2, n_failing=1, seed=0)
        >>> f.truth.columns
        ['device_id', 'group', 'failed', 'failure_time']
    """

    readings: pl.DataFrame
    truth: pl.DataFrame


def _group_values(
    rng: np.random.Generator, lo_hi: tuple[float, float], n_groups: int
) -> np.ndarray:
    """Spread a characteristic evenly over the groups, in a random order."""
    lo, hi = lo_hi
    if n_groups == 1:
        return np.array([(lo + hi) / 2])
    return lo + (hi - lo) * rng.permutation(n_groups) / (n_groups - 1)


def _ar1(rng: np.random.Generator, phi: np.ndarray, n_points: int) -> np.ndarray:
    """Unit-variance stationary AR(1) paths, one per row, filtered in the frequency domain.

    Shocks are filtered by the AR(1) frequency response sqrt(1-φ²)/(1-φe^{-iω})
    (a circular filter); a discarded burn-in makes the wrap-around negligible.
    """
    burn = int(np.ceil(np.log(1e-8) / np.log(max(float(phi.max()), 0.05)))) + 1
    size = sp_fft.next_fast_len(n_points + burn, real=True)
    burn = size - n_points
    omega = 2 * np.pi * np.arange(size // 2 + 1) / size
    out = np.empty((phi.size, n_points))
    for lo in range(0, phi.size, _CHUNK):  # bounded memory on large fleets
        p = phi[lo : lo + _CHUNK, None]
        response = np.sqrt(1.0 - p**2) / (1.0 - p * np.exp(-1j * omega)[None, :])
        spectrum = sp_fft.rfft(rng.standard_normal((p.shape[0], size)), axis=1) * response
        out[lo : lo + _CHUNK] = sp_fft.irfft(spectrum, n=size, axis=1)[:, burn:]
    return out


def _outages(rng: np.random.Generator, shape: tuple[int, int], share: float) -> np.ndarray:
    """Mask of dropped readings: single drops plus outages of 2-12 readings."""
    n_dev, n_pts = shape
    drop = rng.random(shape) < share / 2
    mean_len = 7.0
    starts = np.flatnonzero(rng.random(n_dev * n_pts) < share / 2 / mean_len)
    lengths = rng.integers(2, 13, size=starts.size)
    edges = np.zeros(n_dev * (n_pts + 13), dtype=np.int64)
    row, col = np.divmod(starts, n_pts)
    base = row * (n_pts + 13) + col
    np.add.at(edges, base, 1)
    np.add.at(edges, base + lengths, -1)
    block = np.cumsum(edges.reshape(n_dev, n_pts + 13), axis=1)[:, :n_pts] > 0
    return drop | block


def make_fleet(
    *,
    n_devices: int = 300,
    n_points: int = 1000,
    metrics: Sequence[str] = ("temperature", "vibration", "current"),
    n_groups: int = 3,
    n_failing: int = 12,
    freq_minutes: int = 60,
    gap_share: float = 0.01,
    seed: int = 0,
) -> FleetData:
    """Generate a deterministic fleet with planted behaviour groups and failing devices.

    Example:
        >>> f = make_fleet(n_devices=30, n_points=100, n_failing=4, seed=0)
        >>> f.readings["device_id"][0], int(f.truth["failed"].sum())
        ('dev-0000', 4)
    """
    names = list(metrics)
    if n_devices < 1 or n_points < 10 or n_groups < 1 or not names:
        raise DataError(
            f"cannot make a fleet of {n_devices} devices × {n_points} points, {n_groups} groups, metrics {names}",
            fix="use n_devices >= 1, n_points >= 10, n_groups >= 1 and at least one metric",
        )
    if len(set(names)) != len(names) or {"device_id", "timestamp"} & set(names):
        raise DataError(
            f"metric names {names} repeat or clash with device_id/timestamp",
            fix="give distinct metric names",
        )
    if not 0.0 <= gap_share < 0.5 or freq_minutes < 1:
        raise DataError(
            f"gap_share={gap_share} or freq_minutes={freq_minutes} is out of range",
            fix="use 0 <= gap_share < 0.5 and freq_minutes >= 1",
        )
    rng = np.random.default_rng(seed)
    group = rng.permutation(np.arange(n_devices) % n_groups)
    fail_group = int(rng.integers(n_groups))
    members = np.flatnonzero(group == fail_group)
    if n_failing > members.size:
        raise DataError(
            f"n_failing={n_failing} exceeds the {members.size} devices of the failing group",
            fix="lower n_failing or raise n_devices",
        )
    failing = np.sort(rng.choice(members, size=n_failing, replace=False))
    failed = np.zeros(n_devices, dtype=bool)
    failed[failing] = True

    # Life span, and the drift ramp r in [0, 1] over the last 20-30% of a failing device's life.
    life = np.full(n_devices, n_points)
    life[failing] = np.rint(n_points * rng.uniform(0.6, 0.95, n_failing)).astype(int)
    t = np.arange(n_points)
    drift_len = np.maximum(np.rint(life[failing] * rng.uniform(0.2, 0.3, n_failing)), 1.0)
    ramp = np.clip((t[None, :] - (life[failing] - drift_len)[:, None]) / drift_len[:, None], 0, 1)

    angle = 2 * np.pi * (t * freq_minutes / 60.0) / 24.0
    basis = np.stack([np.cos(angle), np.sin(angle), np.cos(2 * angle), np.sin(2 * angle)])
    columns: dict[str, np.ndarray] = {}
    for name in names:  # a handful of metrics; everything inside is devices × points
        base, scale = _METRICS.get(name, _DEFAULT_METRIC)
        level = base + scale * (
            _group_values(rng, _LEVEL, n_groups)[group] + rng.normal(0, 0.6, n_devices)
        )
        amp = (
            scale * _group_values(rng, _AMPLITUDE, n_groups)[group] * rng.normal(1, 0.2, n_devices)
        )
        sd = scale * _group_values(rng, _NOISE, n_groups)[group] * rng.normal(1, 0.15, n_devices)
        phi = np.clip(
            _group_values(rng, _AR, n_groups)[group] + rng.normal(0, 0.05, n_devices), 0.0, 0.95
        )
        rate = _group_values(rng, _SPIKE_RATE, n_groups)[group]
        peak = 2 * np.pi * (rng.uniform(13.0, 16.0) + rng.normal(0, 0.5, n_devices)) / 24.0
        # amp·(cos(a - p) + 0.25·cos(2a - 2p)) as a (devices × 4) @ (4 × points) product
        coef = amp[:, None] * np.stack(
            [np.cos(peak), np.sin(peak), 0.25 * np.cos(2 * peak), 0.25 * np.sin(2 * peak)], axis=1
        )
        values = coef @ basis
        values += level[:, None]
        noise = _ar1(rng, phi, n_points)
        noise *= sd[:, None]
        noise[failing] *= 1.0 + 2.0 * ramp
        noise[failing] += 2.5 * sd[failing, None] * ramp**1.5
        values += noise
        spiking = rng.random((n_devices, n_points)) < rate[:, None]
        spiking[failing] |= rng.random((n_failing, n_points)) < 0.04 * ramp
        spike_dev, spike_t = np.nonzero(spiking)
        values[spike_dev, spike_t] += sd[spike_dev] * rng.uniform(4.0, 8.0, spike_dev.size)
        holes = rng.choice(values.size, size=int(0.001 * values.size), replace=False)
        values.ravel()[holes] = np.nan
        columns[name] = values

    keep = (t[None, :] < life[:, None]) & ~_outages(rng, (n_devices, n_points), gap_share)
    keep[np.arange(n_devices), life - 1] = True  # a device's last reading marks its end
    dev_idx, t_idx = np.nonzero(keep)

    ids = pl.Series("device_id", np.arange(n_devices)).cast(pl.String).str.zfill(4)
    ids = ("dev-" + ids).alias("device_id")
    step_us = freq_minutes * 60_000_000
    origin = pl.lit(_START).cast(pl.Datetime("us"))
    readings = pl.DataFrame(
        [
            ids.gather(dev_idx),
            pl.Series("timestamp", t_idx.astype(np.int64) * step_us),
            *(pl.Series(n, columns[n][keep], dtype=pl.Float64) for n in names),
        ]
    ).with_columns((origin + pl.duration(microseconds=pl.col("timestamp"))).alias("timestamp"))
    end_us = (life - 1).astype(np.int64) * step_us
    truth = pl.DataFrame(
        [
            ids,
            pl.Series("group", group, dtype=pl.Int64),
            pl.Series("failed", failed),
            pl.Series("failure_time", np.where(failed, end_us, 0)),
        ]
    ).with_columns(
        pl.when("failed")
        .then(origin + pl.duration(microseconds=pl.col("failure_time")))
        .otherwise(None)
        .alias("failure_time")
    )
    return FleetData(readings=readings, truth=truth)
