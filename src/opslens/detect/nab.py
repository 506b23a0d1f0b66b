"""The Numenta Anomaly Benchmark (NAB) score of an alarm series against labelled windows.

NAB's rules (Lavin & Ahmad 2015; the scoring profiles of NAB's ``config/profiles.json``),
written here from their description, checked against NAB's own per-file scores:

* A labelled anomaly window is an inclusive range of rows ``(first, last)``; its
  width ``W = last - first + 1``.
* Every row gets a weight from the scaled sigmoid ``S(y) = 2·σ(-5y) - 1``
  (``-1`` for ``y >= 3``). Inside a window, ``y = -(last - i + 1) / W``, so the
  first row is worth almost ``S(-1)`` and the last about 0; the weight is
  ``tp · S(y) / S(-1)`` (the earliest detection is worth exactly ``tp``). Outside,
  ``y = (i - last_prev) / (W_prev - 1)`` from the end of the previous window (``y = 3``
  before the first) and the weight is ``fp · S(y)``: a false alarm just after a
  window costs little, one far from any window ``-fp``.
* The first ``min(floor(p · n), p · 5000)`` rows are probationary (``p``:
  ``probation_percent``, 0.15 in NAB) and count for nothing.
* The raw score: per window, the largest weight of its alarmed rows (``-fn`` when
  none is alarmed), plus the weights of the alarmed rows outside every window.
* Normalised: ``100 · (raw - null) / (perfect - null)`` with ``null = -fn · windows``
  (the detector that never alarms, 0) and ``perfect = tp · windows`` (100).

Example:
    >>> import numpy as np
    >>> alarms = np.zeros(100, dtype=bool)
    >>> alarms[[40, 90]] = True
    >>> s = nab_score(alarms, [(40, 49)])
    >>> round(s.raw, 4), s.tp, s.fp, round(s.normalised, 1)
    (0.89, 1, 1, 94.5)
    >>> nab_score(np.zeros(100, dtype=bool), [(40, 49)]).normalised
    0.0
    >>> windows_from_labels(np.array([0, 1, 1, 0, 0, 1], dtype=bool))
    [(1, 2), (5, 5)]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from opslens.errors import DataError

__all__ = [
    "PROFILES",
    "CostMatrix",
    "NabScore",
    "nab_score",
    "scaled_sigmoid",
    "sweep_weights",
    "windows_from_labels",
    "windows_from_times",
]


@dataclass(frozen=True)
class CostMatrix:
    """The weights of a NAB scoring profile."""

    tp: float
    fp: float
    fn: float


#: NAB's scoring profiles (NAB ``config/profiles.json``).
PROFILES = {
    "standard": CostMatrix(tp=1.0, fp=0.11, fn=1.0),
    "reward_low_FP_rate": CostMatrix(tp=1.0, fp=0.22, fn=1.0),
    "reward_low_FN_rate": CostMatrix(tp=1.0, fp=0.11, fn=2.0),
}


def scaled_sigmoid(y: np.ndarray) -> np.ndarray:
    """``2·σ(-5y) - 1``, and ``-1`` from ``y = 3`` on.

    Example:
        >>> scaled_sigmoid(np.array([-1.0, 0.0, 3.0])).round(5).tolist()
        [0.98661, 0.0, -1.0]
    """
    y = np.asarray(y, dtype=np.float64)
    with np.errstate(over="ignore"):
        s = 2.0 / (1.0 + np.exp(5.0 * y)) - 1.0
    return np.where(y >= 3.0, -1.0, s)


def windows_from_labels(labels: np.ndarray) -> list[tuple[int, int]]:
    """The runs of True in a row-label series as inclusive ``(first, last)`` row ranges."""
    b = np.concatenate([[False], np.asarray(labels, dtype=bool), [False]])
    edges = np.flatnonzero(np.diff(b.astype(np.int8)))
    return [(int(a), int(z) - 1) for a, z in zip(edges[::2], edges[1::2], strict=True)]


def windows_from_times(
    times: np.ndarray, windows: Sequence[tuple[np.datetime64, np.datetime64]]
) -> list[tuple[int, int]]:
    """Time windows as row ranges of sorted ``times``: the rows inside each, inclusive.

    A window holding no row is dropped.

    Example:
        >>> t = np.arange(10).astype("datetime64[h]")
        >>> windows_from_times(t, [(t[2], t[4]), (t[9] + 1, t[9] + 5)])
        [(2, 4)]
    """
    t = np.asarray(times)
    out = []
    for lo, hi in windows:
        first = int(np.searchsorted(t, np.datetime64(lo), side="left"))
        last = int(np.searchsorted(t, np.datetime64(hi), side="right")) - 1
        if last >= first:
            out.append((first, last))
    return out


def _check(n: int, windows: Sequence[tuple[int, int]]) -> None:
    previous = -1
    for first, last in windows:
        if not previous < first <= last < n:
            raise DataError(
                f"NAB windows must be ordered, disjoint row ranges inside {n} rows; "
                f"got ({first}, {last}) after a window ending at row {previous}",
                fix="merge overlapping labelled windows and sort them by time",
            )
        previous = last


def sweep_weights(
    n: int, windows: Sequence[tuple[int, int]], costs: CostMatrix = PROFILES["standard"]
) -> np.ndarray:
    """The NAB weight of an alarm on each of ``n`` rows (NAB's ``S(t)`` column)."""
    _check(n, windows)
    i = np.arange(n, dtype=np.float64)
    y = np.full(n, 3.0)
    inside = np.zeros(n, dtype=bool)
    for k, (first, last) in enumerate(windows):
        width = last - first + 1
        inside[first : last + 1] = True
        y[first : last + 1] = -(last - i[first : last + 1] + 1) / width
        end = windows[k + 1][0] if k + 1 < len(windows) else n
        after = i[last + 1 : end]
        y[last + 1 : end] = (after - last) / (width - 1) if width > 1 else 3.0
    s = scaled_sigmoid(y)
    top = float(scaled_sigmoid(np.array([-1.0]))[0])
    return np.where(inside, s * costs.tp / top, s * costs.fp)


@dataclass(frozen=True)
class NabScore:
    """A NAB score: raw, the null and perfect scores, normalised, and row counts.

    ``contributions`` splits ``raw`` over rows (a window's part on its first scored
    row, a false alarm's on its own): summed per day, they bootstrap.
    """

    raw: float
    null: float
    perfect: float
    windows: int
    tp: int
    fp: int
    fn: int
    tn: int
    contributions: np.ndarray

    @property
    def normalised(self) -> float:
        """``100 · (raw - null) / (perfect - null)``; NaN without a window to find."""
        span = self.perfect - self.null
        return 100.0 * (self.raw - self.null) / span if span > 0 else math.nan


def nab_score(
    alarms: np.ndarray,
    windows: Sequence[tuple[int, int]],
    *,
    profile: str = "standard",
    probation_percent: float = 0.0,
) -> NabScore:
    """The NAB score of a boolean alarm per row against ``windows`` (inclusive row ranges).

    ``probation_percent`` is NAB's probationary share (0.15 in the benchmark; 0 on
    held-out rows, where the model has already learned).
    """
    if profile not in PROFILES:
        raise DataError(f"unknown NAB profile {profile!r}", fix=f"use one of {', '.join(PROFILES)}")
    costs = PROFILES[profile]
    a = np.asarray(alarms, dtype=bool)
    n = a.size
    weights = sweep_weights(n, windows, costs)
    probation = min(math.floor(probation_percent * n), probation_percent * 5000)
    scored = np.arange(n) >= probation
    inside = np.zeros(n, dtype=bool)
    contributions = np.zeros(n)
    counted = 0
    for first, last in windows:
        inside[first : last + 1] = True
        rows = np.flatnonzero(scored[first : last + 1]) + first
        if rows.size == 0:
            continue  # a window wholly in probation counts for nothing
        counted += 1
        hits = rows[a[rows]]
        contributions[rows[0]] += float(weights[hits].max()) if hits.size else -costs.fn
    false = a & ~inside & scored
    contributions[false] += weights[false]
    return NabScore(
        raw=float(contributions.sum()),
        null=-costs.fn * counted,
        perfect=costs.tp * counted,
        windows=counted,
        tp=int((a & inside & scored).sum()),
        fp=int(false.sum()),
        fn=int((~a & inside & scored).sum()),
        tn=int((~a & ~inside & scored).sum()),
        contributions=contributions,
    )
