"""Predicted distributions and their held-out scores (pure functions of the distribution recipe).

Three predictions of an instance's distribution over its segment's bins are
compared on the time-ordered holdout:

* ``global``: the histogram of every training row of the segment;
* ``own``: the raw histogram of the instance's own combination (``global``
  when the combination has no training rows);
* ``blended`` (what the model predicts): ``w·own + (1 − w)·pattern`` with
  ``w = n / (n + strength)`` for a combination with ``n`` training rows, the
  pattern being its cluster's mean histogram; a combination never seen gets
  the classifier's mixture of the patterns. ``strength`` is chosen on the
  holdout from :data:`STRENGTHS` (0 is the own histogram, ∞ the pattern).

Example:
    >>> own = np.array([[1.0, 0.0]]); pattern = np.array([[0.5, 0.5]])
    >>> blend(own, np.array([10.0]), pattern, 10.0).tolist()
    [[0.75, 0.25]]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from opslens.models.metrics import crps_histogram, hdr_covers, log_score

__all__ = ["STRENGTHS", "blend", "distribution_scores"]

STRENGTHS: tuple[float, ...] = (0.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0, math.inf)
"""Shrinkage strengths scanned (pseudo-rows given to the pattern)."""


def blend(own: np.ndarray, n: np.ndarray, pattern: np.ndarray, strength: float) -> np.ndarray:
    """Rows of ``w·own + (1 − w)·pattern``, ``w = n / (n + strength)`` (0 when ``n`` is 0).

    Example:
        >>> blend(np.array([[1.0, 0.0]]), np.array([5.0]), np.array([[0.0, 1.0]]), math.inf).tolist()
        [[0.0, 1.0]]
    """
    rows = np.asarray(n, dtype=float)
    if math.isinf(strength):
        w = np.zeros_like(rows)
    else:
        w = np.where(rows > 0, rows / np.maximum(rows + strength, 1e-12), 0.0)
    out: np.ndarray = w[:, None] * own + (1.0 - w)[:, None] * pattern
    return out


def distribution_scores(
    pred: np.ndarray,
    *,
    observed: np.ndarray,
    bins: np.ndarray,
    segment: np.ndarray,
    edges: Mapping[str, np.ndarray],
    coverages: Sequence[float],
) -> dict[str, float]:
    """Mean log score (and its standard error), mean CRPS and HDR coverage of ``pred`` rows.

    Each row is scored on its segment's edges (the first ``len(edges) − 1`` bins,
    renormalised).

    Example:
        >>> e = {"all": np.array([0.0, 1.0, 2.0])}
        >>> s = distribution_scores(np.array([[0.9, 0.1]] * 2), observed=np.array([0.5, 0.6]),
        ...     bins=np.array([0, 0]), segment=np.array(["all", "all"]), edges=e, coverages=[0.8])
        >>> round(s["log_score"], 3), s["coverage_80"]
        (-0.105, 1.0)
    """
    n = observed.shape[0]
    logs = np.empty(n)
    crps = np.empty(n)
    covered = {c: np.zeros(n, dtype=bool) for c in coverages}
    for seg, e in edges.items():
        mask = segment == seg
        if not mask.any():
            continue
        k = len(e) - 1
        p = pred[mask][:, :k]
        p = p / np.maximum(p.sum(axis=1, keepdims=True), 1e-300)
        logs[mask] = log_score(p, bins[mask])
        crps[mask] = crps_histogram(p, e, observed[mask])
        for c in coverages:
            covered[c][mask] = hdr_covers(p, e, observed[mask], c)
    out = {
        "log_score": float(logs.mean()),
        "log_score_se": float(logs.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0,
        "crps": float(crps.mean()),
    }
    for c in coverages:
        out[f"coverage_{round(c * 100)}"] = float(covered[c].mean())
    return out
