"""Sensor health, apart from failure risk: readings that say more about the sensor than the machine.

On the daily panel (:mod:`~opslens.recipes.fleet.daily`), per device and metric:

``flatline``     the sensor reads 0 for ``min_run`` days or more while its peers vary
``stuck``        the same non-zero value for ``min_run`` days or more while its peers vary
``curtailment``  capped: ``min_run`` days or more at exactly the device's maximum while its
                 peers run well above that cap on those days
``unit_change``  an impossible jump: the peer-relative level moves by more than ``jump_z``
                 robust units from one week to the next, each week steady (°C → °F is one)
``dropout``      a burst of ``max_gap`` days or more without a reading between two readings
``out_of_range`` a daily value outside ``params.limits`` for the metric

Each fault is one row (device, metric, kind, since, detail) with ``since`` the first day
of the fault; :func:`mask_faults` blanks a faulty metric from that day on, so the failure
risk is computed on what the sensors still say.

Example:
    >>> from datetime import datetime, timedelta
    >>> t = [datetime(2024, 1, 1) + timedelta(days=d) for d in range(30)]
    >>> rng = np.random.default_rng(0)
    >>> v = {f"d{i}": list(rng.normal(50, 1, 30)) for i in range(4)}
    >>> v["d0"][10:] = [0.0] * 20
    >>> r = pl.DataFrame({"d": [k for k in v for _ in t], "t": t * 4,
    ...     "v": [x for k in v for x in v[k]]})
    >>> from opslens.recipes.fleet.daily import daily_panel
    >>> faults = sensor_faults(daily_panel(r, entity="d", time="t", metrics=["v"]), entity="d")
    >>> faults.select("d", "kind").rows()
    [('d0', 'flatline')]
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from opslens.recipes.fleet.daily import DailyPanel

__all__ = ["SensorRules", "mask_faults", "sensor_faults"]

_MAD = 1.4826


@dataclass(frozen=True)
class SensorRules:
    """Thresholds of the sensor checks (``params.sensors``), in days and robust units."""

    min_run: int = 5
    jump_z: float = 12.0
    max_gap: int = 7
    limits: Mapping[str, tuple[float | None, float | None]] | None = None


def _robust_sd(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    if x.size < 3:
        return float("nan")
    return float(_MAD * np.median(np.abs(x - np.median(x))))


def _ffill(mat: np.ndarray) -> np.ndarray:
    """Forward-fill NaN along each row (a missing day does not break a run)."""
    idx = np.where(np.isfinite(mat), np.arange(mat.shape[1])[None, :], 0)
    np.maximum.accumulate(idx, axis=1, out=idx)
    return mat[np.arange(mat.shape[0])[:, None], idx]


def _longest_runs(mat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row, the longest run of readings equal to the previous reading: (length, first, last day).

    Missing days neither break nor lengthen a run; the length counts readings.
    """
    filled = _ffill(mat)
    seen = np.isfinite(mat)
    n = mat.shape[0]
    run, start = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    best, first, last = (np.zeros(n, dtype=np.int64) for _ in range(3))
    for d in range(mat.shape[1]):
        same = seen[:, d] & (filled[:, d] == filled[:, d - 1]) if d else np.zeros_like(seen[:, 0])
        fresh = seen[:, d] & ~same
        run = np.where(same, run + 1, np.where(fresh, 1, run))
        start = np.where(fresh, d, start)
        longer = run > best
        best = np.where(longer, run, best)
        first = np.where(longer, start, first)
        last = np.where(longer, d, last)
    return best, first, last


def _peers_vary(rel: np.ndarray, lo: int, hi: int) -> bool:
    """Whether the device's distance to its peers moved during days lo..hi (they varied, it did not).

    Moved: by more than 4 robust sd of that distance on the other days.
    """
    seg = rel[lo : hi + 1]
    seg = seg[np.isfinite(seg)]
    scale = _robust_sd(np.concatenate([rel[:lo], rel[hi + 1 :]]))
    return seg.size >= 2 and float(np.ptp(seg)) > max(
        1e-9, 4 * (scale if np.isfinite(scale) else 0.0)
    )


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def _flat(panel: DailyPanel, m: str, rules: SensorRules) -> dict[int, tuple[str, int, str]]:
    values = panel.values[m]
    length, first, end = _longest_runs(values)
    found: dict[int, tuple[str, int, str]] = {}
    for i in np.flatnonzero(length >= rules.min_run):
        lo = int(first[i])
        if not _peers_vary(panel.relative[m][i], lo, int(end[i])):
            continue
        value = float(_ffill(values[i : i + 1])[0, end[i]])
        kind = "flatline" if value == 0.0 else "stuck"
        found[int(i)] = (
            kind,
            lo,
            f"{m} read {_fmt(value)} for {int(length[i])} days while its peers varied",
        )
    return found


def _capped(panel: DailyPanel, m: str, rules: SensorRules) -> dict[int, tuple[str, int, str]]:
    """A value the device repeats, never exceeds from its first time on, while peers run above it."""
    values, peer = panel.values[m], panel.peer_level[m]
    ordered = np.sort(values, axis=1)  # NaN last: equal values sit together
    count, _, last = _longest_runs(ordered)
    found: dict[int, tuple[str, int, str]] = {}
    for i in np.flatnonzero(count >= rules.min_run):
        cap = float(ordered[i, last[i]])
        at = values[i] == cap
        lo = int(np.flatnonzero(at)[0])
        later = values[i, lo:]
        later = later[np.isfinite(later)]
        if np.sum(later < cap) < 2 or np.mean(later > cap) > 0.02:  # stuck, or not a cap
            continue
        scale = _robust_sd(panel.relative[m][i][:lo])
        gap = peer[i][at] - cap
        gap = gap[np.isfinite(gap)]
        if not np.isfinite(scale) or gap.size < rules.min_run or np.median(gap) <= 3 * scale:
            continue
        found[int(i)] = (
            "curtailment",
            lo,
            f"{m} capped at {_fmt(cap)} on {int(at.sum())} days while its peers "
            f"ran {_fmt(float(np.median(gap)))} higher",
        )
    return found


def _filled(mat: np.ndarray) -> np.ndarray:
    """Forward-filled, the days before a row's first reading given that reading (0 if none)."""
    out = _ffill(mat)
    first = np.argmax(np.isfinite(mat), axis=1)
    head = mat[np.arange(mat.shape[0]), first]
    head = np.where(np.isfinite(head), head, 0.0)
    lead = np.arange(mat.shape[1])[None, :] < first[:, None]
    return np.where(lead | ~np.isfinite(out), head[:, None], out)


def _jumps(
    panel: DailyPanel, m: str, rules: SensorRules, week: int = 7
) -> dict[int, tuple[str, int, str]]:
    rel, values = _filled(panel.relative[m]), panel.values[m]
    n_days = rel.shape[1]
    found: dict[int, tuple[str, int, str]] = {}
    if n_days < 2 * week + 1:
        return found
    diffs = np.diff(rel, axis=1)
    mad = np.median(np.abs(diffs - np.median(diffs, axis=1, keepdims=True)), axis=1)
    scale = _MAD * mad / np.sqrt(2)
    windows = np.lib.stride_tricks.sliding_window_view(
        rel, week, axis=1
    )  # (dev, n - week + 1, week)
    q25, med, q75 = np.percentile(windows, [25, 50, 75], axis=2)
    iqr = q75 - q25
    before, after = slice(0, n_days - 2 * week + 1), slice(week, n_days - week + 1)
    step = med[:, after] - med[:, before]
    # the largest one-day move within the fortnight around the step: a jump, not a ramp
    daily = np.abs(np.diff(rel, axis=1, prepend=rel[:, :1]))
    one_day = np.lib.stride_tricks.sliding_window_view(daily, 2 * week, axis=1).max(axis=2)
    seen = np.lib.stride_tricks.sliding_window_view(
        np.isfinite(panel.relative[m]), week, axis=1
    ).sum(axis=2)
    ok = (
        (np.minimum(seen[:, before], seen[:, after]) > week // 2)
        & (np.abs(step) > rules.jump_z * scale[:, None])
        & (np.abs(step) > 4 * np.maximum(iqr[:, before], iqr[:, after]))
        & (one_day[:, : step.shape[1]] > 0.6 * np.abs(step))
    )
    size = np.where(ok, np.abs(step), 0.0)
    for i in np.flatnonzero(size.max(axis=1) > 0):
        t = int(np.argmax(size[i])) + week  # the first day after the jump
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            b = float(np.nanmedian(values[i, t - week : t]))
            a = float(np.nanmedian(values[i, t : t + week]))
        hint = " (as °C to °F would)" if abs(a - (1.8 * b + 32)) < 0.05 * abs(a) + 1 else ""
        found[int(i)] = (
            "unit_change",
            t,
            f"{m} jumped from about {_fmt(b)} to {_fmt(a)} within a week{hint}",
        )
    return found


def _gaps(panel: DailyPanel, m: str, rules: SensorRules) -> dict[int, tuple[str, int, str]]:
    seen = np.isfinite(panel.values[m])
    found: dict[int, tuple[str, int, str]] = {}
    for i in np.flatnonzero(seen.any(axis=1)):
        idx = np.flatnonzero(seen[i])
        gaps = np.diff(idx) - 1
        if gaps.size and gaps.max() >= rules.max_gap:
            j = int(np.argmax(gaps))
            found[int(i)] = ("dropout", int(idx[j] + 1), f"{m}: no reading for {int(gaps[j])} days")
    return found


def _range(panel: DailyPanel, m: str, rules: SensorRules) -> dict[int, tuple[str, int, str]]:
    lo, hi = (rules.limits or {}).get(m, (None, None))
    values = panel.values[m]
    bad = np.zeros(values.shape, dtype=bool)
    if lo is not None:
        bad |= values < lo
    if hi is not None:
        bad |= values > hi
    found: dict[int, tuple[str, int, str]] = {}
    for i in np.flatnonzero(bad.any(axis=1)):
        first = int(np.flatnonzero(bad[i])[0])
        found[int(i)] = (
            "out_of_range",
            first,
            f"{m} outside its limits [{lo}, {hi}] on {int(bad[i].sum())} days",
        )
    return found


def sensor_faults(
    panel: DailyPanel, *, entity: str, rules: SensorRules | None = None
) -> pl.DataFrame:
    """One row per faulty (device, metric): the first fault found in the order of the kinds above."""
    rules = rules or SensorRules()
    rows: list[tuple[str, str, str, date, str]] = []
    for m in panel.values:
        found: dict[int, tuple[str, int, str]] = {}
        for check in (_range, _capped, _flat, _jumps, _gaps):
            for i, fault in check(panel, m, rules).items():
                found.setdefault(i, fault)
        for i, (kind, day, detail) in sorted(found.items()):
            since = panel.days[day].astype("datetime64[D]").item()
            rows.append((str(panel.devices[i]), m, kind, since, detail))
    return pl.DataFrame(
        rows,
        schema={
            entity: pl.String,
            "metric": pl.String,
            "kind": pl.String,
            "since": pl.Date,
            "detail": pl.String,
        },
        orient="row",
    ).sort(entity, "metric")


def mask_faults(panel: DailyPanel, faults: pl.DataFrame, *, entity: str) -> DailyPanel:
    """The panel with each faulty metric blanked from its fault's first day on (dropouts kept)."""
    values = {m: v.copy() for m, v in panel.values.items()}
    relative = {m: v.copy() for m, v in panel.relative.items()}
    for dev, m, kind, since in faults.select(entity, "metric", "kind", "since").iter_rows():
        if kind == "dropout":
            continue
        i = panel.row(dev)
        d = int((np.datetime64(since, "D") - panel.days[0]).astype(np.int64))
        values[m][i, d:] = np.nan
        relative[m][i, d:] = np.nan
    return DailyPanel(
        devices=panel.devices,
        days=panel.days,
        peers=panel.peers,
        peer_names=panel.peer_names,
        values=values,
        relative=relative,
        peer_level=panel.peer_level,
        lonely=panel.lonely,
    )
