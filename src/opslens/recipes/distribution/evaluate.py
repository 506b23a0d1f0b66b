"""Predicted distributions and their held-out scores (pure functions of the distribution recipe).

Three predictions of an instance's distribution over its segment's bins are
compared on the time-ordered holdout:

* ``global``: the histogram of every training row of the segment;
* ``own``: the raw histogram of the instance's own combination (``global``
  when the combination has no training rows);
* ``blended`` (what the model predicts): ``w·own + (1 − w)·pattern`` with
  ``w = n / (n + strength)`` for a combination with ``n`` training rows, the
  pattern being its cluster's mean histogram; a combination never seen gets
  the classifier's mixture of the patterns. ``strength`` is chosen from
  :data:`STRENGTHS` (0 is the own histogram, ∞ the pattern) by :func:`choose_strength`
  on an inner split of the *training* period, never on the holdout it is scored on.

:func:`baseline_scores` turns the per-row scores of the model and of each baseline
into :class:`~opslens.core.baselines.BaselineScore` comparisons with a paired
bootstrap interval over combinations (the held-out unit).

Example:
    >>> own = np.array([[1.0, 0.0]]); pattern = np.array([[0.5, 0.5]])
    >>> blend(own, np.array([10.0]), pattern, 10.0).tolist()
    [[0.75, 0.25]]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from opslens.core.baselines import BaselineScore
from opslens.models.compare import paired_interval, paired_p_value
from opslens.models.metrics import crps_histogram, hdr_covers, log_score

__all__ = [
    "STRENGTHS",
    "RowScores",
    "baseline_scores",
    "blend",
    "blend_weight",
    "choose_strength",
    "mean_log_score",
    "row_scores",
]

STRENGTHS: tuple[float, ...] = (
    0.0,
    *(m * 10.0**e for e in range(4) for m in (1.0, 2.0, 5.0)),
    10_000.0,
    math.inf,
)
"""Shrinkage strengths scanned (pseudo-rows given to the pattern): 0 (the own histogram),
1, 2, 5, 10, ... 10,000, and ∞ (the pattern alone)."""


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


def blend_weight(n: float, strength: float) -> float:
    """The weight ``n / (n + strength)`` a combination of ``n`` training rows gives its own histogram.

    Example:
        >>> blend_weight(300, 100.0), blend_weight(300, math.inf), blend_weight(0, 0.0)
        (0.75, 0.0, 0.0)
    """
    if math.isinf(strength) or n <= 0:
        return 0.0
    return float(n) / (float(n) + strength)


@dataclass(frozen=True)
class RowScores:
    """Per held-out row: log score, CRPS and whether each HDR coverage held the value."""

    log: np.ndarray
    crps: np.ndarray
    covered: dict[float, np.ndarray]

    def summary(self) -> dict[str, float]:
        """Mean log score (and its standard error), mean CRPS and coverage per HDR.

        Example:
            >>> r = RowScores(np.array([-1.0, -3.0]), np.array([2.0, 4.0]),
            ...     {0.9: np.array([True, False])})
            >>> r.summary()
            {'log_score': -2.0, 'log_score_se': 1.0, 'crps': 3.0, 'coverage_90': 0.5}
        """
        n = self.log.size
        out = {
            "log_score": float(self.log.mean()),
            "log_score_se": float(self.log.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0,
            "crps": float(self.crps.mean()),
        }
        for c, hit in self.covered.items():
            out[f"coverage_{round(c * 100)}"] = float(hit.mean())
        return out


def _segment_rows(pred: np.ndarray, mask: np.ndarray, e: np.ndarray) -> np.ndarray:
    p = pred[mask][:, : len(e) - 1]
    out: np.ndarray = p / np.maximum(p.sum(axis=1, keepdims=True), 1e-300)
    return out


def row_scores(
    pred: np.ndarray,
    *,
    observed: np.ndarray,
    bins: np.ndarray,
    segment: np.ndarray,
    edges: Mapping[str, np.ndarray],
    coverages: Sequence[float],
) -> RowScores:
    """Log score, CRPS and HDR coverage of each ``pred`` row on its segment's edges.

    Each row is scored on the first ``len(edges) − 1`` bins of its segment, renormalised.

    Example:
        >>> e = {"all": np.array([0.0, 1.0, 2.0])}
        >>> r = row_scores(np.array([[0.9, 0.1]] * 2), observed=np.array([0.5, 1.5]),
        ...     bins=np.array([0, 1]), segment=np.array(["all", "all"]), edges=e, coverages=[0.8])
        >>> r.log.round(3).tolist(), r.covered[0.8].tolist()
        ([-0.105, -2.303], [True, False])
    """
    n = observed.shape[0]
    logs = np.full(n, np.nan)
    crps = np.full(n, np.nan)
    covered = {c: np.zeros(n, dtype=bool) for c in coverages}
    for seg, e in edges.items():
        mask = segment == seg
        if not mask.any():
            continue
        p = _segment_rows(pred, mask, e)
        logs[mask] = log_score(p, bins[mask])
        crps[mask] = crps_histogram(p, e, observed[mask])
        for c in coverages:
            covered[c][mask] = hdr_covers(p, e, observed[mask], c)
    return RowScores(log=logs, crps=crps, covered=covered)


def mean_log_score(
    pred: np.ndarray, bins: np.ndarray, segment: np.ndarray, edges: Mapping[str, np.ndarray]
) -> float:
    """Mean log score of ``pred`` rows, each on its segment's bins (no CRPS, no HDR: fast).

    Example:
        >>> mean_log_score(np.array([[0.5, 0.5]]), np.array([1]), np.array(["all"]),
        ...     {"all": np.array([0.0, 1.0, 2.0])}) == math.log(0.5)
        True
    """
    total = 0.0
    for seg, e in edges.items():
        mask = segment == seg
        if mask.any():
            total += float(log_score(_segment_rows(pred, mask, e), bins[mask]).sum())
    return total / max(bins.size, 1)


def choose_strength(
    own: np.ndarray,
    n: np.ndarray,
    pattern: np.ndarray,
    *,
    bins: np.ndarray,
    segment: np.ndarray,
    edges: Mapping[str, np.ndarray],
) -> tuple[float, list[dict[str, float]]]:
    """The strength of :data:`STRENGTHS` whose blend scores best on these rows, and the scan.

    Call it with histograms of one period and rows of a later one (never the rows the
    chosen blend is then reported on).

    Example:
        >>> own = np.array([[1.0, 0.0]] * 4); pattern = np.array([[0.5, 0.5]] * 4)
        >>> s, scan = choose_strength(own, np.array([2.0] * 4), pattern, bins=np.array([0, 1, 0, 1]),
        ...     segment=np.array(["all"] * 4), edges={"all": np.array([0.0, 1.0, 2.0])})
        >>> s, len(scan)
        (inf, 15)
    """
    scan = [
        {
            "strength": s,
            "log_score": mean_log_score(blend(own, n, pattern, s), bins, segment, edges),
        }
        for s in STRENGTHS
    ]
    best = max(scan, key=lambda r: r["log_score"])
    return float(best["strength"]), scan


def baseline_scores(
    model: RowScores,
    baselines: Mapping[str, tuple[str, RowScores]],
    *,
    groups: np.ndarray,
    unit: str = "",
    random_state: int = 0,
) -> list[BaselineScore]:
    """Log score (gating) and CRPS of the model against each baseline on the same rows.

    ``baselines`` maps a baseline's name to its label and per-row scores; the interval is a
    paired bootstrap over ``groups`` (the combination of each row), seeded by ``random_state``.

    Example:
        >>> m = RowScores(np.array([-1.0, -1.2, -0.9]), np.array([1.0, 1.0, 2.0]), {})
        >>> b = RowScores(np.array([-1.5, -1.4, -1.0]), np.array([1.5, 1.0, 2.0]), {})
        >>> s = baseline_scores(m, {"own": ("its own histogram", b)}, groups=np.array([0, 1, 1]))
        >>> [(x.metric, x.model_wins, x.gate) for x in s]
        [('log_score', True, True), ('crps', True, False)]
    """
    out: list[BaselineScore] = []
    crps_label = "mean CRPS" + (f" in {unit}" if unit else "")
    metrics = (
        ("log_score", "mean log score per held-out row", True, True),
        ("crps", crps_label, False, False),
    )
    for name, (label, base) in baselines.items():
        for metric, metric_label, higher, gate in metrics:
            a = model.log if metric == "log_score" else model.crps
            b = base.log if metric == "log_score" else base.crps
            keep = np.isfinite(a) & np.isfinite(b)
            _, interval = paired_interval(
                a[keep], b[keep], groups=groups[keep], random_state=random_state
            )
            p = paired_p_value(a[keep], b[keep], groups=groups[keep], random_state=random_state)
            out.append(
                BaselineScore(
                    baseline=name,
                    label=label,
                    metric=metric,
                    metric_label=metric_label,
                    model=float(a[keep].mean()),
                    value=float(b[keep].mean()),
                    higher_is_better=higher,
                    n=int(keep.sum()),
                    interval=interval,
                    p_value=p,
                    gate=gate,
                )
            )
    return out
