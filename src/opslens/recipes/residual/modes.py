"""Operating modes found by clustering signals that are not axes (speed, load, a set point).

A machine runs at a few operating points; a model per operating point describes it where
one model for all does not. When no column names the mode (``params.model.mode_column``),
:class:`ModeFinder` finds it: the training rows' ``params.model.mode_signals`` are
standardised (training mean and standard deviation) and clustered with k-means
(scikit-learn, ``n_init=10``, a fixed seed); a sample's mode is its nearest centre. The
modes are named ``mode1`` … ``modek`` in the order of their centres on the first signal,
so a refit on similar data names them alike.

The signals must not be axes: a mode found from the values being checked would follow a
fault and absorb it.

Example:
    >>> import numpy as np
    >>> speed = np.r_[np.full(50, 1000.0), np.full(50, 1500.0)] + np.tile([0.0, 5.0], 50)
    >>> finder = ModeFinder(("speed",), 2).fit({"speed": speed})
    >>> finder.predict_columns({"speed": np.array([990.0, 1490.0])}).tolist()
    ['mode1', 'mode2']
    >>> finder.predict_row({"speed": 1510.0}), round(finder.describe()["centres"]["mode1"]["speed"], 6)
    ('mode2', 1002.5)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.cluster import KMeans
from sklearn.utils.validation import check_is_fitted

__all__ = ["ModeFinder"]


class ModeFinder(BaseEstimator):  # type: ignore[misc]
    """k operating modes of the ``signals`` columns (k-means on standardised values)."""

    def __init__(self, signals: Sequence[str] = (), n_modes: int = 2, *, seed: int = 0) -> None:
        self.signals = signals
        self.n_modes = n_modes
        self.seed = seed

    def _matrix(self, columns: Mapping[str, Any]) -> np.ndarray:
        return np.column_stack([np.asarray(columns[s], dtype=np.float64) for s in self.signals])

    def fit(self, columns: Mapping[str, Any]) -> ModeFinder:
        """Cluster the rows of ``columns`` (one array per signal, no missing values)."""
        x = self._matrix(columns)
        self.mean_ = x.mean(axis=0)
        std = x.std(axis=0)
        self.scale_ = np.where(std > 0, std, 1.0)
        z = (x - self.mean_) / self.scale_
        k = max(1, min(int(self.n_modes), len(np.unique(z, axis=0))))
        km = KMeans(n_clusters=k, n_init=10, random_state=self.seed).fit(z)
        order = np.argsort(km.cluster_centers_[:, 0], kind="stable")
        self.centres_ = km.cluster_centers_[order]
        self.labels_ = [f"mode{i + 1}" for i in range(k)]
        self._names = np.asarray(self.labels_, dtype=object)
        return self

    def predict_columns(self, columns: Mapping[str, Any]) -> np.ndarray:
        """The mode of every row (object array of names)."""
        check_is_fitted(self, "centres_")
        z = (self._matrix(columns) - self.mean_) / self.scale_
        d = ((z[:, None, :] - self.centres_[None, :, :]) ** 2).sum(axis=2)
        out: np.ndarray = self._names[np.argmin(d, axis=1)]
        return out

    def predict_row(self, sample: Mapping[str, Any]) -> str:
        """The mode of one sample (a mapping holding every signal)."""
        best, name = np.inf, self.labels_[0]
        for label, centre in zip(self.labels_, self.centres_, strict=True):
            d = 0.0
            for j, s in enumerate(self.signals):
                v = (float(sample[s]) - self.mean_[j]) / self.scale_[j] - centre[j]
                d += v * v
            if d < best:
                best, name = d, label
        return name

    def describe(self) -> dict[str, Any]:
        """The modes' centres in the signals' own units (JSON-ready)."""
        check_is_fitted(self, "centres_")
        centres = self.centres_ * self.scale_ + self.mean_
        return {
            "signals": list(self.signals),
            "n_modes": len(self.labels_),
            "centres": {
                label: {s: float(c[j]) for j, s in enumerate(self.signals)}
                for label, c in zip(self.labels_, centres, strict=True)
            },
        }
