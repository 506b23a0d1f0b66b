"""Residual limits (MinC, MaxC) and sustain steps, calibrated on the training residuals.

The policy, step by step (every knob in ``params.thresholds``):

1. Take the positive residuals (``r > 0``) of the training rows.
2. With at least ``min_pos_for_trim`` of them, drop the ``floor(n * trim_top_ratio)``
   largest, then MinC and MaxC are the ``minc_percentile`` / ``maxc_percentile``
   percentiles of what is left (linear interpolation, numpy's default).
3. With fewer, and ``use_mad_fallback``: median + MAD over *all* training residuals,
   ``MinC = median + mad_minc_k · 1.4826 · MAD``, ``MaxC = median + mad_maxc_k · 1.4826 · MAD``.
   Without the fallback, the percentiles of the untrimmed positives.
4. Sustain steps start from the defaults, ``ceil(seconds / dt_seconds)`` (at least 1):
   ``T_long_steps`` for an alert from ``alert_seconds_default``, ``T_short_steps`` for an
   error from ``error_seconds_default``.
5. Runs of consecutive training samples above MinC (alert) and above MaxC (error) raise
   them: ``T = max(default, ceil(quantile(runs, q)))`` with ``alert_quantile`` and
   ``error_quantile``; shorter observed runs leave the defaults.

Example:
    >>> import numpy as np
    >>> r = np.array([-1.0, 1.0, 2.0, 3.0, 4.0, -2.0, 5.0])
    >>> t = calibrate_axis(r, dt_seconds=2.0, minc_percentile=50, maxc_percentile=100,
    ...     trim_top_ratio=0.0, min_pos_for_trim=3)
    >>> t["MinC"], t["MaxC"], t["T_long_steps"], t["T_short_steps"]
    (3.0, 5.0, 3, 2)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["MAD_SCALE", "calibrate_axis", "default_steps", "run_lengths", "with_below"]

#: MAD × 1.4826 estimates the standard deviation of normal data.
MAD_SCALE = 1.4826


def run_lengths(above: np.ndarray) -> np.ndarray:
    """Lengths of the runs of consecutive True values.

    Example:
        >>> run_lengths(np.array([True, True, False, True, False, True, True, True])).tolist()
        [2, 1, 3]
    """
    b = np.concatenate([[False], np.asarray(above, dtype=bool), [False]])
    edges = np.flatnonzero(np.diff(b.astype(np.int8)))
    return (edges[1::2] - edges[::2]).astype(np.int64)


def default_steps(seconds: float, dt_seconds: float) -> int:
    """A duration in samples: ``ceil(seconds / dt_seconds)``, at least 1.

    Example:
        >>> default_steps(5.0, 1.891), default_steps(3.0, 1.891), default_steps(5.0, 0.0)
        (3, 2, 1)
    """
    if dt_seconds <= 0 or not math.isfinite(dt_seconds):
        return 1
    return max(1, math.ceil(seconds / dt_seconds - 1e-12))


def _raised(default: int, runs: np.ndarray, q: float) -> tuple[int, float | None]:
    if runs.size == 0:
        return default, None
    observed = float(np.quantile(runs, q))
    return max(default, math.ceil(observed - 1e-12)), observed


def calibrate_axis(
    residuals: np.ndarray,
    *,
    dt_seconds: float,
    minc_percentile: float = 75.0,
    maxc_percentile: float = 95.0,
    trim_top_ratio: float = 0.02,
    min_pos_for_trim: int = 20,
    use_mad_fallback: bool = True,
    mad_minc_k: float = 2.0,
    mad_maxc_k: float = 3.0,
    alert_seconds_default: float = 5.0,
    error_seconds_default: float = 3.0,
    alert_quantile: float = 0.80,
    error_quantile: float = 0.50,
) -> dict[str, Any]:
    """One axis's thresholds entry, in the registry's shape, from its training residuals in time order.

    Raises ValueError when there are no residuals, or no positive one and no fallback.
    """
    r = np.asarray(residuals, dtype=np.float64)
    r = r[np.isfinite(r)]
    if r.size == 0:
        raise ValueError("no residuals to calibrate on")
    pos = r[r > 0]
    n_trimmed = 0
    if pos.size >= min_pos_for_trim:
        n_trimmed = math.floor(pos.size * trim_top_ratio)
        kept = np.sort(pos)[: pos.size - n_trimmed]
        method = "percentile_trimmed" if n_trimmed else "percentile"
    elif use_mad_fallback:
        kept = pos
        method = "median_mad"
    else:
        kept = pos
        method = "percentile"
    if method == "median_mad":
        median = float(np.median(r))
        spread = MAD_SCALE * float(np.median(np.abs(r - median)))
        minc, maxc = median + mad_minc_k * spread, median + mad_maxc_k * spread
    else:
        if kept.size == 0:
            raise ValueError("no positive residuals, and use_mad_fallback is off")
        minc = float(np.percentile(kept, minc_percentile))
        maxc = float(np.percentile(kept, maxc_percentile))
    long_default = default_steps(alert_seconds_default, dt_seconds)
    short_default = default_steps(error_seconds_default, dt_seconds)
    t_long, alert_run_q = _raised(long_default, run_lengths(r > minc), alert_quantile)
    t_short, error_run_q = _raised(short_default, run_lengths(r > maxc), error_quantile)
    return {
        "MinC": minc,
        "MaxC": maxc,
        "T_long_steps": t_long,
        "T_short_steps": t_short,
        "dt_seconds": dt_seconds,
        "policy": {
            "minc_percentile": float(minc_percentile),
            "maxc_percentile": float(maxc_percentile),
            "alert_seconds_default": float(alert_seconds_default),
            "error_seconds_default": float(error_seconds_default),
            "alert_quantile": float(alert_quantile),
            "error_quantile": float(error_quantile),
            "method": method,
            "trim_top_ratio": float(trim_top_ratio),
            "min_pos_for_trim": int(min_pos_for_trim),
            "n_residuals": int(r.size),
            "n_positive": int(pos.size),
            "n_trimmed": n_trimmed,
            "T_long_default": long_default,
            "T_short_default": short_default,
            "alert_run_quantile": alert_run_q,
            "error_run_quantile": error_run_q,
        },
    }


def with_below(above: dict[str, Any], below: dict[str, Any], direction: str) -> dict[str, Any]:
    """An entry that also alarms below the model: ``below`` is :func:`calibrate_axis` of the
    negated residuals; ``direction`` is ``below`` or ``both``. The sustain steps are the
    alarming sides' longest.

    Example:
        >>> a = {"MinC": 1.0, "MaxC": 2.0, "T_long_steps": 3, "T_short_steps": 2, "policy": {}}
        >>> b = {"MinC": 1.5, "MaxC": 2.5, "T_long_steps": 4, "T_short_steps": 1, "policy": {}}
        >>> e = with_below(a, b, "both")
        >>> e["MinC_below"], e["MaxC_below"], e["T_long_steps"], e["T_short_steps"], e["direction"]
        (1.5, 2.5, 4, 2, 'both')
    """
    entry = dict(above)
    steps = (below,) if direction == "below" else (above, below)
    entry["T_long_steps"] = max(int(x["T_long_steps"]) for x in steps)
    entry["T_short_steps"] = max(int(x["T_short_steps"]) for x in steps)
    entry["MinC_below"], entry["MaxC_below"] = float(below["MinC"]), float(below["MaxC"])
    entry["direction"] = direction
    entry["below_policy"] = below["policy"]
    return entry
