"""Held-out quality of a probabilistic classifier.

:func:`classification_metrics` gives accuracy, the weighted one-vs-rest AUROC
(each class's AUROC weighted by its support, as scikit-learn's
``roc_auc_score(multi_class="ovr", average="weighted")``), the per-class
report and the confusion matrix, as a frozen, JSON-able result.

With two classes the AUROC is the plain binary AUROC of the second class.
Classes absent from ``y_true`` get weight 0 (their AUROC is undefined); when
``y_true`` holds a single class the AUROC is ``None``.

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

__all__ = ["ClassificationMetrics", "classification_metrics"]


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
