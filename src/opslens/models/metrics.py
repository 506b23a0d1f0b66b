"""Held-out quality of a probabilistic classifier.

:func:`classification_metrics` gives accuracy, the weighted one-vs-rest AUROC
(each class's AUROC weighted by its support, as scikit-learn's
``roc_auc_score(multi_class="ovr", average="weighted")``), the per-class
report and the confusion matrix, as a frozen, JSON-able result.

With two classes the AUROC is the plain binary AUROC of the second class.
Classes absent from ``y_true`` get weight 0 (their AUROC is undefined); when
``y_true`` holds a single class the AUROC is ``None``.

Scores of a predicted *distribution* over bins (one probability row per
instance, the bins' edges, the observed value), per row so a caller can take
means and standard errors: :func:`log_score` (log of the probability given
to the observed bin; higher is better), :func:`crps_histogram` (continuous
ranked probability score, in the target's unit; lower is better) and
:func:`hdr_covers` (whether the observed value lies in the prediction's
highest density region; the share of rows covered should be near the
nominal coverage).

Example:
    >>> import numpy as np
    >>> y = np.array([0, 0, 1, 1])
    >>> proba = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8]])
    >>> m = classification_metrics(y, proba, [0, 1])
    >>> m.accuracy, m.auroc_weighted, m.confusion
    (1.0, 1.0, [[2, 0], [0, 2]])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, roc_auc_score

from opslens.errors import DataError

__all__ = [
    "LOG_FLOOR",
    "ClassificationMetrics",
    "classification_metrics",
    "crps_histogram",
    "hdr_covers",
    "log_score",
]

LOG_FLOOR = 1e-4
"""The smallest probability a bin is scored with, so an empty bin costs log(1e-4), not -inf."""


@dataclass(frozen=True)
class ClassificationMetrics:
    """Accuracy, weighted OvR AUROC, per-class report and confusion matrix."""

    n: int
    classes: list[Any]
    accuracy: float
    auroc_weighted: float | None
    per_class: dict[str, dict[str, float | int]]
    confusion: list[list[int]]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of every field.

        Example:
            >>> ClassificationMetrics(2, [0, 1], 1.0, None, {}, [[1, 0], [0, 1]]).to_dict()["accuracy"]
            1.0
        """
        return asdict(self)


def _py(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _weighted_ovr(y: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> float | None:
    present = np.isin(classes, y)
    if present.sum() < 2:
        return None
    if len(classes) == 2:
        return float(roc_auc_score(y == classes[1], proba[:, 1]))
    if present.all():
        return float(roc_auc_score(y, proba, multi_class="ovr", average="weighted", labels=classes))
    scores = [roc_auc_score(y == c, proba[:, j]) for j, c in enumerate(classes) if present[j]]
    weights = [np.sum(y == c) for c in classes[present]]
    return float(np.average(scores, weights=weights))


def classification_metrics(
    y_true: np.ndarray | Sequence[Any], proba: np.ndarray, classes: Sequence[Any] | np.ndarray
) -> ClassificationMetrics:
    """Score class probabilities ``proba`` (columns in ``classes`` order) against ``y_true``.

    The predicted class of a row is its most probable class.

    Example:
        >>> y = np.array(["a", "b", "c", "c"])
        >>> p = np.array([[0.8, 0.1, 0.1], [0.2, 0.5, 0.3], [0.1, 0.6, 0.3], [0.1, 0.1, 0.8]])
        >>> m = classification_metrics(y, p, ["a", "b", "c"])
        >>> m.accuracy, m.per_class["c"]["recall"], m.confusion[2]
        (0.75, 0.5, [0, 1, 1])
    """
    y = np.asarray(y_true)
    cls = np.asarray(classes)
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or p.shape != (y.shape[0], cls.shape[0]):
        raise DataError(
            f"probabilities have shape {p.shape}, expected ({y.shape[0]}, {cls.shape[0]})",
            fix="pass one probability column per class, one row per label",
        )
    if y.shape[0] == 0:
        raise DataError(
            "no held-out rows to score", fix="lower params.test_size or provide more rows"
        )
    unknown = sorted(set(np.unique(y).tolist()) - set(cls.tolist()))
    if unknown:
        raise DataError(
            f"labels {unknown} are not among the classes {cls.tolist()}", fix="pass every class"
        )
    p = p / p.sum(axis=1, keepdims=True)
    y_pred = cls[p.argmax(axis=1)]
    names = [str(c) for c in cls.tolist()]
    report = classification_report(
        y, y_pred, labels=cls, target_names=names, output_dict=True, zero_division=0
    )
    per_class = {
        name: {k: int(v) if k == "support" else float(v) for k, v in report[name].items()}
        for name in names
    }
    return ClassificationMetrics(
        n=int(y.shape[0]),
        classes=[_py(c) for c in cls.tolist()],
        accuracy=float(accuracy_score(y, y_pred)),
        auroc_weighted=_weighted_ovr(y, p, cls),
        per_class=per_class,
        confusion=confusion_matrix(y, y_pred, labels=cls).tolist(),
    )


def _check_rows(proba: np.ndarray, n: int, n_bins: int) -> np.ndarray:
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or p.shape != (n, n_bins):
        raise DataError(
            f"predicted distributions have shape {p.shape}, expected ({n}, {n_bins})",
            fix="pass one probability row per observation, one column per bin",
        )
    return p


def log_score(
    proba: np.ndarray, observed_bin: np.ndarray, *, floor: float = LOG_FLOOR
) -> np.ndarray:
    """Per row, the natural log of the probability the prediction gave the observed bin.

    Rows are renormalised after flooring every bin at ``floor``.

    Example:
        >>> p = np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
        >>> log_score(p, np.array([0, 2])).round(3).tolist()
        [-0.693, -0.0]
    """
    b = np.asarray(observed_bin, dtype=np.int64)
    p = _check_rows(proba, b.shape[0], np.asarray(proba).shape[-1])
    if b.size and (b.min() < 0 or b.max() >= p.shape[1]):
        raise DataError("observed bins lie outside the histogram", fix="quantize with its edges")
    p = np.maximum(p, floor)
    p = p / p.sum(axis=1, keepdims=True)
    scores: np.ndarray = np.log(p[np.arange(b.size), b])
    return scores


def crps_histogram(proba: np.ndarray, edges: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Per row, the CRPS of a histogram distribution (uniform within each bin) at the observed value.

    ``CRPS = ∫ (F(x) - 1[x ≥ y])² dx``, exact for the piecewise-linear CDF
    (each bin contributes ``w (a² + ab + b²) / 3``); a value beyond the outer
    edges adds its distance to them. Lower is better; it is in the target's unit.

    Example:
        >>> edges = np.array([0.0, 1.0, 2.0])
        >>> crps_histogram(np.array([[1.0, 0.0], [0.0, 1.0]]), edges, np.array([0.5, 0.5])).round(3).tolist()
        [0.083, 0.833]
    """
    e = np.asarray(edges, dtype=np.float64)
    y = np.asarray(observed, dtype=np.float64)
    p = _check_rows(proba, y.shape[0], e.size - 1)
    p = p / p.sum(axis=1, keepdims=True)
    w = np.diff(e)
    F = np.concatenate([np.zeros((p.shape[0], 1)), np.cumsum(p, axis=1)], axis=1)
    F[:, -1] = 1.0

    def sq(a: np.ndarray, b: np.ndarray, width: np.ndarray) -> np.ndarray:
        out: np.ndarray = width * (a * a + a * b + b * b) / 3.0
        return out

    left = np.concatenate(
        [np.zeros((p.shape[0], 1)), np.cumsum(sq(F[:, :-1], F[:, 1:], w), axis=1)], axis=1
    )
    right_bins = sq(1.0 - F[:, :-1], 1.0 - F[:, 1:], w)
    right = np.concatenate(
        [np.cumsum(right_bins[:, ::-1], axis=1)[:, ::-1], np.zeros((p.shape[0], 1))], axis=1
    )
    yc = np.clip(y, e[0], e[-1])
    j = np.clip(np.searchsorted(e, yc, side="right") - 1, 0, e.size - 2)
    r = np.arange(y.size)
    fj, fj1 = F[r, j], F[r, j + 1]
    fy = fj + (fj1 - fj) * (yc - e[j]) / w[j]
    total = (
        left[r, j]
        + sq(fj, fy, yc - e[j])
        + sq(1.0 - fy, 1.0 - fj1, e[j + 1] - yc)
        + right[r, j + 1]
    )
    crps: np.ndarray = total + np.abs(y - yc)
    return crps


def hdr_covers(
    proba: np.ndarray, edges: np.ndarray, observed: np.ndarray, coverage: float
) -> np.ndarray:
    """Per row, whether the observed value lies in the prediction's ``coverage`` HDR.

    The region is that of :func:`opslens.cluster.hdr.hdr_from_histogram` with
    ``partial=True`` (densest bins, the last one cut to the mass still needed),
    computed for every row at once: memory and time grow with rows x bins.

    Example:
        >>> p = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4]])
        >>> hdr_covers(p, np.array([0.0, 1.0, 2.0]), np.array([0.5, 1.5, 1.2]), 0.8).tolist()
        [True, False, True]
        >>> from opslens.cluster.hdr import hdr_from_histogram
        >>> hdr_from_histogram([0.6, 0.4], np.array([0.0, 1.0, 2.0]), 0.8, partial=True)
        [(0.0, 1.5)]
    """
    e = np.asarray(edges, dtype=np.float64)
    y = np.asarray(observed, dtype=np.float64)
    p = _check_rows(proba, y.shape[0], e.size - 1)
    if y.size == 0:
        return np.zeros(0, dtype=bool)
    p = p / p.sum(axis=1, keepdims=True)
    n, n_bins = p.shape
    w = np.diff(e)
    order = np.argsort(-(p / w), axis=1, kind="stable")
    cum = np.cumsum(np.take_along_axis(p, order, axis=1), axis=1)
    k = np.minimum(np.argmax(cum >= coverage - 1e-12, axis=1), n_bins - 1)
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(n_bins)[None, :].repeat(n, axis=0), axis=1)
    chosen = rank <= k[:, None]
    r = np.arange(n)
    b = np.clip(np.searchsorted(e[1:-1], y, side="right"), 0, n_bins - 1)
    inside = rank[r, b] < k
    last = rank[r, b] == k
    need = coverage - np.where(k > 0, cum[r, np.maximum(k - 1, 0)], 0.0)
    pb = p[r, b]
    frac = np.where(pb > 0, need / np.where(pb > 0, pb, 1.0), 1.0)
    left = (b > 0) & chosen[r, np.maximum(b - 1, 0)]
    right = (b < n_bins - 1) & chosen[r, np.minimum(b + 1, n_bins - 1)]
    whole = frac >= 1.0
    width = w[b] * np.minimum(frac, 1.0)
    lo = np.where(
        left, e[b], np.where(right, e[b + 1] - width, 0.5 * (e[b] + e[b + 1]) - width / 2)
    )
    cut = (y >= lo) & (y <= lo + width)
    inside |= last & (whole | cut)
    result: np.ndarray = inside & (y >= e[0]) & (y <= e[-1])
    return result
