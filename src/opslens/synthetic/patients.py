"""Synthetic patient time series with planted segments, outskirt noise, two targets and a drift.

Each row is one patient-day. Six vitals (``heart_rate``, ``systolic_bp``,
``resp_rate``, ``temperature``, ``age``, ``bmi``) place a patient in one of
``n_segments`` planted segments (well-separated centres). A share
``noise_share`` of the rows are drawn from their segment with a three times
wider spread: HDBSCAN leaves most of them as noise, but their planted segment
is known (``truth``), so a fallback that assigns them can be scored.

Two targets depend on the features with *segment-specific* coefficients:

- ``next_score`` (a time-series target): ``a_s + phi_s * score_lag1 + b_s * heart_rate_z``
  plus noise, where ``score_lag1`` / ``score_lag2`` are the patient's previous values;
- ``resource_hours`` (resource usage): ``c_s + g_s * age_z + d_s * bmi_z`` plus a ward
  effect and noise.

:func:`make_patient_batches` gives later batches of the same population; from
batch ``drift_batch`` on, ``drift_share`` of each batch comes from a new
population between the segments (higher noise ratio, different relationships).

Example:
    >>> data = make_patients(n_rows=400, seed=1)
    >>> data.frame.columns[:4]
    ['patient_id', 'day', 'ward', 'heart_rate']
    >>> sorted(set(data.truth.tolist())) == [0, 1, 2, 3]
    True
    >>> batches = make_patient_batches(n_batches=3, batch_size=50, drift_batch=2, seed=1)
    >>> [b.frame.height for b in batches], [bool(b.drifted.any()) for b in batches]
    ([50, 50, 50], [False, False, True])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from opslens.errors import DataError

__all__ = [
    "FEATURES",
    "RESOURCE_TARGET",
    "SERIES_TARGET",
    "PatientData",
    "make_patient_batches",
    "make_patients",
]

FEATURES = ("heart_rate", "systolic_bp", "resp_rate", "temperature", "age", "bmi")
"""The vitals that define the segments."""
SERIES_TARGET = "next_score"
RESOURCE_TARGET = "resource_hours"
_WARDS = ("cardio", "general", "icu")
_MEANS = np.array([75.0, 120.0, 16.0, 37.0, 55.0, 26.0])
_SCALES = np.array([10.0, 15.0, 3.0, 0.6, 15.0, 4.0])
# segment centres in standard units (rows: segments), far apart in 6 dims
_CENTRES = np.array(
    [
        [-2.0, -2.0, 0.0, 0.0, -2.0, 0.0],
        [2.0, 2.0, 2.0, 0.0, 0.0, 0.0],
        [0.0, -2.0, 2.0, 2.0, 2.0, 2.0],
        [2.0, 0.0, -2.0, -2.0, 2.0, -2.0],
        [-2.0, 2.0, -2.0, 2.0, -2.0, 2.0],
        [0.0, 0.0, 0.0, -2.5, -2.5, -2.5],
    ]
)
_DRIFT_CENTRE = np.array([-2.5, 2.5, 2.5, -2.5, 0.0, 2.5])
# per-segment coefficients: (a, phi, b) for next_score, (c, g, d) for resource_hours
_SERIES = np.array(
    [[10.0, 0.8, 4.0], [40.0, 0.2, -5.0], [25.0, 0.5, 8.0], [5.0, 0.9, -3.0], [30.0, 0.3, 1.0]]
)
_RESOURCE = np.array(
    [[4.0, 2.0, -1.0], [12.0, -2.0, 3.0], [8.0, 0.5, 2.5], [20.0, 3.0, 0.0], [6.0, -1.0, -2.0]]
)
_WARD_EFFECT = np.array([1.0, 0.0, 4.0])
_SPREAD = 0.45


@dataclass(frozen=True)
class PatientData:
    """Generated rows (``frame``), each row's planted segment (``truth``; -1 for drifted rows),
    whether it was drawn as outskirt noise (``outskirt``) and from the drift population
    (``drifted``)."""

    frame: pl.DataFrame
    truth: np.ndarray
    outskirt: np.ndarray
    drifted: np.ndarray


def _draw(
    rng: np.random.Generator,
    n: int,
    n_segments: int,
    noise_share: float,
    drift_share: float,
    start_day: int,
) -> PatientData:
    seg = rng.integers(0, n_segments, n)
    outskirt = rng.random(n) < noise_share
    drifted = rng.random(n) < drift_share
    centres = np.where(drifted[:, None], _DRIFT_CENTRE, _CENTRES[seg])
    spread = np.where(outskirt, 3.0 * _SPREAD, _SPREAD)[:, None]
    z = centres + rng.normal(0.0, 1.0, (n, len(FEATURES))) * spread
    ward = rng.integers(0, len(_WARDS), n)
    s_coef = np.where(drifted[:, None], np.array([60.0, -0.4, 12.0]), _SERIES[seg])
    r_coef = np.where(drifted[:, None], np.array([30.0, -4.0, 6.0]), _RESOURCE[seg])
    lag2 = rng.normal(50.0, 10.0, n)
    lag1 = 0.5 * lag2 + rng.normal(25.0, 6.0, n)
    series = s_coef[:, 0] + s_coef[:, 1] * lag1 + s_coef[:, 2] * z[:, 0] + rng.normal(0, 1.0, n)
    resource = (
        r_coef[:, 0]
        + r_coef[:, 1] * z[:, 4]
        + r_coef[:, 2] * z[:, 5]
        + _WARD_EFFECT[ward]
        + rng.normal(0, 0.5, n)
    )
    vitals = _MEANS + z * _SCALES
    frame = pl.DataFrame(
        {
            "patient_id": [f"P{start_day + i:06d}" for i in range(n)],
            "day": np.arange(start_day, start_day + n, dtype=np.int64),
            "ward": [_WARDS[w] for w in ward],
            **{name: vitals[:, j] for j, name in enumerate(FEATURES)},
            "score_lag1": lag1,
            "score_lag2": lag2,
            SERIES_TARGET: series,
            RESOURCE_TARGET: resource,
        }
    )
    truth = np.where(drifted, -1, seg).astype(np.int64)
    return PatientData(frame=frame, truth=truth, outskirt=outskirt, drifted=drifted)


def _check(n_rows: int, n_segments: int, noise_share: float) -> None:
    if n_rows < 1:
        raise DataError(f"n_rows must be at least 1, not {n_rows}", fix="set source.options.n_rows")
    if not 2 <= n_segments <= len(_SERIES):
        raise DataError(
            f"n_segments must be 2..{len(_SERIES)}, not {n_segments}",
            fix="set source.options.n_segments",
        )
    if not 0 <= noise_share < 1:
        raise DataError(
            f"noise_share must be in [0, 1), not {noise_share}",
            fix="set source.options.noise_share",
        )


def make_patients(
    n_rows: int = 3_000, *, n_segments: int = 4, noise_share: float = 0.06, seed: int = 0
) -> PatientData:
    """Training rows: ``n_rows`` patient-days over ``n_segments`` planted segments.

    Example:
        >>> make_patients(n_rows=10, seed=0).frame.height
        10
    """
    _check(n_rows, n_segments, noise_share)
    rng = np.random.default_rng(seed)
    return _draw(rng, n_rows, n_segments, noise_share, 0.0, 0)


def make_patient_batches(
    n_batches: int = 10,
    batch_size: int = 500,
    *,
    n_segments: int = 4,
    noise_share: float = 0.06,
    drift_batch: int = 6,
    drift_share: float = 0.4,
    seed: int = 0,
) -> list[PatientData]:
    """Later batches of the same population; from batch ``drift_batch`` (0-based) on,
    ``drift_share`` of the rows come from the drift population.

    Example:
        >>> [int(b.drifted.sum() > 0) for b in make_patient_batches(4, 100, drift_batch=2)]
        [0, 0, 1, 1]
    """
    _check(batch_size, n_segments, noise_share)
    out = []
    for b in range(n_batches):
        rng = np.random.default_rng([seed, 1_000 + b])
        share = drift_share if b >= drift_batch else 0.0
        start = 10_000_000 + b * batch_size
        out.append(_draw(rng, batch_size, n_segments, noise_share, share, start))
    return out
