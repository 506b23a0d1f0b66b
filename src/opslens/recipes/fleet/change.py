"""Own-history and peer-relative change, and the warning rule built on them.

Per device and metric, on the daily panel (:mod:`~opslens.recipes.fleet.daily`), two
series are compared with the device's own past: its daily values (``own``) and its
distance to the same-day median of its peer group (``peer``, free of the weather,
load and season the group shares). The *baseline* is the device's first
``baseline_days`` days with readings (after its last repair, when maintenance events
are given); the *recent window* its last ``recent_days`` days. In robust units (the
baseline's median and 1.4826·MAD):

``level_z``   recent median − baseline median
``trend_z``   the recent window's least-squares slope, per day
``spread``    recent robust sd / baseline robust sd
``cusum``     the largest two-sided CUSUM of the standardised deviation (drift ``k``)
``since``     the change-point: the day the CUSUM excursion that reached that largest
              value left zero

and in the metric's own unit: ``shift`` (recent − baseline median) and ``slope`` (per day).

The *warning rule* raises a device on the first day the peer-relative CUSUM of any
metric exceeds ``h`` and keeps it raised while it stays above. The per-device
baseline rule a practitioner writes first is "the daily value above its peers by more
than ``3`` baseline sd for ``3`` days in a row" (:func:`streak_alarms`).

Example:
    >>> z = np.array([[0.0, 0.2, 3.0, 3.0, 3.0, 3.0]])
    >>> cusum(z, k=0.5).round(1).tolist()
    [[0.0, 0.0, 2.5, 5.0, 7.5, 10.0]]

The defaults (``k`` 1.5, ``h`` 10) raise the rule for a steady shift of two baseline sd after
about three weeks and for a shift of five within three days.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl
from scipy.stats import fisher_exact

from opslens.recipes.fleet.daily import DailyPanel

__all__ = [
    "ChangeRules",
    "baseline_stats",
    "change_table",
    "cusum",
    "cusum_alarms",
    "streak_alarms",
    "warning_lead_times",
    "warning_summary",
]

_MAD = 1.4826


@dataclass(frozen=True)
class ChangeRules:
    """Windows (days) and thresholds of the change scores and the warning rule (``params.change``)."""

    baseline_days: int = 56
    recent_days: int = 14
    k: float = 1.5
    h: float = 10.0
    streak_z: float = 3.0
    streak_days: int = 3


def baseline_length(start: np.ndarray, last: np.ndarray, baseline_days: int) -> np.ndarray:
    """Baseline days per row: ``baseline_days``, but at most the first half of a short history.

    Example:
        >>> baseline_length(np.array([0, 0]), np.array([199, 20]), 56).tolist()
        [56, 10]
    """
    span = np.maximum(last - start + 1, 0)
    out: np.ndarray = np.minimum(baseline_days, np.maximum(span // 2, 3))
    return out


def baseline_stats(
    mat: np.ndarray, baseline_days: int, resets: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: the baseline's median, robust sd (floored), and the baseline's first day.

    The baseline is the first ``baseline_days`` days (at most half the row's history)
    from the row's first reading, or from ``resets[row]`` (a repair day) when later.

    Example:
        >>> m = np.array([[1.0, 2.0, 3.0, 50.0]])
        >>> [a.tolist() for a in baseline_stats(m, 3)]
        [[2.0], [1.4826], [0]]
    """
    seen = np.isfinite(mat)
    start = np.where(seen.any(axis=1), np.argmax(seen, axis=1), 0)
    if resets is not None:
        start = np.maximum(start, resets)
    last = np.where(seen.any(axis=1), mat.shape[1] - 1 - np.argmax(seen[:, ::-1], axis=1), 0)
    length = baseline_length(start, last, baseline_days)
    days = np.arange(mat.shape[1])[None, :]
    inside = (days >= start[:, None]) & (days < (start + length)[:, None])
    base = np.where(inside, mat, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        centre = np.nanmedian(base, axis=1)
        sd = _MAD * np.nanmedian(np.abs(base - centre[:, None]), axis=1)
        fallback = np.nanstd(base, axis=1)
    sd = np.where(sd > 0, sd, fallback)
    floor = 1e-6 * np.maximum(np.abs(centre), 1.0)
    return centre, np.where(np.isfinite(sd) & (sd > floor), sd, floor), start


def cusum(z: np.ndarray, *, k: float) -> np.ndarray:
    """Two-sided CUSUM per row (max of the upper and lower sums); a missing day carries the sums."""
    up = np.zeros(z.shape[0])
    down = np.zeros(z.shape[0])
    out = np.zeros_like(z, dtype=float)
    for d in range(z.shape[1]):
        x = z[:, d]
        ok = np.isfinite(x)
        up = np.where(ok, np.maximum(0.0, up + np.where(ok, x, 0.0) - k), up)
        down = np.where(ok, np.maximum(0.0, down - np.where(ok, x, 0.0) - k), down)
        out[:, d] = np.maximum(up, down)
    return out


def _standardised(
    panel: DailyPanel, rules: ChangeRules, kind: str, resets: np.ndarray | None
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    series = panel.relative if kind == "peer" else panel.values
    out = {}
    for m, mat in series.items():
        centre, sd, start = baseline_stats(mat, rules.baseline_days, resets)
        seen = np.isfinite(mat)
        last = np.where(seen.any(axis=1), mat.shape[1] - 1 - np.argmax(seen[:, ::-1], axis=1), 0)
        length = baseline_length(start, last, rules.baseline_days)
        z = (mat - centre[:, None]) / sd[:, None]
        before = np.arange(mat.shape[1])[None, :] < (start + length)[:, None]
        z = np.where(before, np.nan, z)  # the rule watches the days after the baseline
        out[m] = (z, centre, sd, start)
    return out


def cusum_alarms(
    panel: DailyPanel, rules: ChangeRules, resets: np.ndarray | None = None
) -> np.ndarray:
    """Device × day: the warning rule is raised (peer-relative CUSUM of any metric above ``h``)."""
    raised = np.zeros((panel.devices.size, panel.days.size), dtype=bool)
    for z, *_ in _standardised(panel, rules, "peer", resets).values():
        raised |= cusum(z, k=rules.k) > rules.h
    return raised


def streak_alarms(
    panel: DailyPanel, rules: ChangeRules, resets: np.ndarray | None = None
) -> np.ndarray:
    """Device × day: the per-device baseline rule (``streak_days`` days beyond ``streak_z``)."""
    raised = np.zeros((panel.devices.size, panel.days.size), dtype=bool)
    for z, *_ in _standardised(panel, rules, "peer", resets).values():
        beyond = np.abs(z) > rules.streak_z
        run = np.zeros(z.shape[0], dtype=np.int64)
        for d in range(z.shape[1]):
            run = np.where(beyond[:, d], run + 1, np.where(np.isfinite(z[:, d]), 0, run))
            raised[:, d] |= run >= rules.streak_days
    return raised


def _day(panel: DailyPanel, index: int) -> date:
    value: date = panel.days[index].astype("datetime64[D]").item()
    return value


def change_table(
    panel: DailyPanel,
    *,
    entity: str,
    rules: ChangeRules | None = None,
    resets: np.ndarray | None = None,
) -> pl.DataFrame:
    """One row per device, metric and series (``own``, ``peer``): the change scores above."""
    rules = rules or ChangeRules()
    n_days = panel.days.size
    days = np.arange(n_days)
    frames = []
    for kind in ("own", "peer"):
        series = panel.relative if kind == "peer" else panel.values
        for m, (z, centre, sd, _start) in _standardised(panel, rules, kind, resets).items():
            mat = series[m]
            seen = np.isfinite(mat)
            last = np.where(seen.any(axis=1), n_days - 1 - np.argmax(seen[:, ::-1], axis=1), 0)
            recent = (days[None, :] > (last - rules.recent_days)[:, None]) & (
                days[None, :] <= last[:, None]
            )
            window = np.where(recent & np.isfinite(z), mat, np.nan)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                med = np.nanmedian(window, axis=1)
                spread = _MAD * np.nanmedian(np.abs(window - med[:, None]), axis=1)
                n = np.isfinite(window).sum(axis=1)
                t = np.where(np.isfinite(window), days[None, :], np.nan)
                tc = t - np.nanmean(t, axis=1, keepdims=True)
                slope = np.nansum(tc * (window - np.nanmean(window, axis=1, keepdims=True)), axis=1)
                slope = slope / np.nansum(tc**2, axis=1)
            path = cusum(z, k=rules.k)
            peak = np.argmax(path, axis=1)
            top = path[np.arange(path.shape[0]), peak]
            zero = np.where((path == 0) & (days[None, :] < peak[:, None]), days[None, :], -1)
            since = np.where(top > 0, zero.max(axis=1) + 1, -1)
            frames.append(
                pl.DataFrame(
                    {
                        entity: panel.devices.astype(str),
                        "metric": [m] * panel.devices.size,
                        "series": [kind] * panel.devices.size,
                        "level_z": np.where(n >= 3, (med - centre) / sd, np.nan),
                        "trend_z": np.where(n >= 3, slope / sd, np.nan),
                        "spread": np.where(n >= 3, spread / sd, np.nan),
                        "cusum": top,
                        "shift": np.where(n >= 3, med - centre, np.nan),
                        "slope": np.where(n >= 3, slope, np.nan),
                        "since": [_day(panel, int(s)) if s >= 0 else None for s in since],
                        "last": [_day(panel, int(x)) for x in last],
                    },
                    schema_overrides={"since": pl.Date, "last": pl.Date},
                ).with_columns(pl.col(pl.Float64).fill_nan(None))
            )
    return pl.concat(frames)


def warning_lead_times(
    alarms: np.ndarray,
    panel: DailyPanel,
    failure_days: Mapping[str, date],
    *,
    horizon_days: int,
    exclude: Sequence[str] = (),
    random_state: int = 0,
) -> pl.DataFrame:
    """Per device: was the rule raised within ``horizon_days`` before its (pseudo-)failure, and how early.

    Healthy devices (not failed, not in ``exclude``) get a pseudo-failure date drawn
    (seeded) from the real failure dates, as the chance baseline; ``ever_raised``
    says whether the rule was raised on any day of a healthy device's history (its
    per-device false alarm).
    """
    devices = [str(d) for d in panel.devices]
    row: dict[str, int] = {}
    for i, d in enumerate(devices):  # a dict, not list.index: linear, not quadratic
        row.setdefault(d, i)
    pool = sorted(failure_days.values())
    left_out = set(exclude)
    healthy = [d for d in devices if d not in failure_days and d not in left_out]
    picks = np.random.default_rng(random_state).integers(0, len(pool), size=len(healthy))
    dates = {
        **{d: failure_days[d] for d in devices if d in failure_days},
        **{d: pool[int(i)] for d, i in zip(healthy, picks, strict=True)},
    }
    first = panel.days[0]
    rows = []
    for dev, when in dates.items():
        i = row[dev]
        end = int((np.datetime64(when, "D") - first).astype(np.int64))
        lo, hi = max(0, end - horizon_days), min(end, alarms.shape[1] - 1)
        on = np.flatnonzero(alarms[i, lo : hi + 1]) + lo
        lead = int(end - on[0]) if on.size else None
        rows.append((dev, dev in failure_days, when, lead, bool(alarms[i].any())))
    return pl.DataFrame(
        rows,
        schema={
            "device": pl.String,
            "failed": pl.Boolean,
            "failure_day": pl.Date,
            "lead_days": pl.Int64,
            "ever_raised": pl.Boolean,
        },
        orient="row",
    ).sort(["failed", "device"], descending=[True, False])


def warning_summary(frame: pl.DataFrame) -> dict[str, float | int | None]:
    """Detected failures, median lead, healthy units warned at matched dates, and Fisher's p.

    Example:
        >>> f = pl.DataFrame({"failed": [True, True, False, False], "lead_days": [9, None, None, 3],
        ...     "ever_raised": [True, False, False, True]})
        >>> s = warning_summary(f)
        >>> s["n_detected"], s["median_lead_days"], s["healthy_warned"], s["healthy_ever_raised"]
        (1, 9.0, 1, 1)
    """
    failed = frame.filter("failed")
    healthy = frame.filter(~pl.col("failed"))
    det = failed.filter(pl.col("lead_days").is_not_null())
    h_det = healthy.filter(pl.col("lead_days").is_not_null())
    p = None
    if failed.height and healthy.height:
        table = [
            [det.height, failed.height - det.height],
            [h_det.height, healthy.height - h_det.height],
        ]
        p = float(fisher_exact(table, alternative="greater").pvalue)
    return {
        "n_failed": failed.height,
        "n_detected": det.height,
        "median_lead_days": float(det["lead_days"].median()) if det.height else None,  # type: ignore[arg-type]
        "n_healthy": healthy.height,
        "healthy_warned": h_det.height,
        "healthy_warned_share": h_det.height / healthy.height if healthy.height else None,
        "healthy_ever_raised": int(healthy["ever_raised"].sum()),
        "p_value": p,
    }
