"""ECOD: empirical-CDF outlier detection (Li et al., 2022), parameter-free.

Higher score = more anomalous.

For each feature the training data gives an empirical CDF. A point's left-tail
probability is the share of training values at or below it, its right-tail
probability the share at or above it. ECOD sums ``-log`` of these tail
probabilities over features three ways (left tails, right tails, and the tail
chosen by each feature's skewness: left when the training skewness is negative,
right otherwise) and keeps the largest of the three sums.

Tail probabilities are smoothed as ``(count + 1) / (n + 1)`` so a point beyond
the training range gets a finite score (``log(n + 1)`` per feature at most).
ECOD is rank-based: it rewards being in the tail of many features at once,
not the size of a single deviation.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(size=(50, 3)), [[3.0, 3.0, -3.0]]])
    >>> scores = ECOD().fit(X).score_samples(X)
    >>> int(np.argmax(scores))
    50
"""

from __future__ import annotations

import numpy as np
from scipy.stats import skew
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_array, check_is_fitted

__all__ = ["ECOD"]


class ECOD(BaseEstimator):  # type: ignore[misc]
    """Empirical-CDF outlier detector; ``score_samples`` is higher for rarer rows.

    Example:
        >>> import numpy as np
        >>> X = np.array([[0.0], [1.0], [2.0], [3.0], [30.0]])
        >>> det = ECOD().fit(X)
        >>> det.score_samples(X).round(2).tolist()
        [1.1, 0.69, 0.41, 0.69, 1.1]
        >>> det.score_samples(np.array([[100.0]])).round(2).tolist()
        [1.79]
    """

    def __init__(self) -> None:
        pass

    def fit(self, X: np.ndarray, y: object = None) -> ECOD:
        """Store each feature's sorted training values and skewness.

        Example:
            >>> import numpy as np
            >>> ECOD().fit(np.arange(10.0).reshape(5, 2)).n_features_in_
            2
        """
        X = check_array(X, dtype=np.float64)
        self.sorted_ = np.sort(X, axis=0)
        sk = skew(X, axis=0, bias=True)
        self.skewness_ = np.nan_to_num(np.asarray(sk, dtype=float), nan=0.0)
        self.n_features_in_ = X.shape[1]
        return self

    def tail_scores(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-feature ``-log`` left and right tail probabilities of each row.

        Example:
            >>> import numpy as np
            >>> left, right = ECOD().fit(np.array([[0.0], [1.0], [2.0]])).tail_scores(np.array([[2.0]]))
            >>> round(float(left[0, 0]), 3), round(float(right[0, 0]), 3)
            (0.0, 0.693)
        """
        check_is_fitted(self, "sorted_")
        X = check_array(X, dtype=np.float64)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but ECOD was fitted with {self.n_features_in_}"
            )
        n = self.sorted_.shape[0]
        at_or_below = np.empty(X.shape, dtype=float)
        at_or_above = np.empty(X.shape, dtype=float)
        for j in range(X.shape[1]):  # one vectorised search per feature, not per row
            col = self.sorted_[:, j]
            order = np.argsort(X[:, j], kind="stable")  # sorted needles: a cache-friendly search
            needles = X[order, j]
            at_or_below[order, j] = np.searchsorted(col, needles, side="right")
            at_or_above[order, j] = n - np.searchsorted(col, needles, side="left")
        left = np.log(n + 1.0) - np.log(at_or_below + 1.0)
        right = np.log(n + 1.0) - np.log(at_or_above + 1.0)
        return left, right

    def score_one(self, x: np.ndarray) -> np.ndarray:
        """:meth:`score_samples` of one row (1-D, finite, ``n_features_in_`` long) without the
        input checks and the per-feature searches: the tail counts by one comparison with every
        training value (the same integers), then the same sums; an array of one score.

        Example:
            >>> import numpy as np
            >>> det = ECOD().fit(np.array([[0.0, 1.0], [1.0, 3.0], [2.0, 2.0]]))
            >>> bool(det.score_one(np.array([1.5, 9.0]))[0] == det.score_samples(np.array([[1.5, 9.0]]))[0])
            True
        """
        top = np.log(self.sorted_.shape[0] + 1.0)
        left = top - np.log(np.count_nonzero(self.sorted_ <= x, axis=0) + 1.0)
        right = top - np.log(np.count_nonzero(self.sorted_ >= x, axis=0) + 1.0)
        skewed = np.where(self.skewness_ < 0, left, right)
        return np.array([np.max([left.sum(), right.sum(), skewed.sum()])])

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        """ECOD outlier score of each row (higher = more anomalous).

        Example:
            >>> import numpy as np
            >>> det = ECOD().fit(np.array([[0.0], [1.0], [2.0], [3.0]]))
            >>> bool(det.score_samples(np.array([[10.0]]))[0] > det.score_samples(np.array([[1.5]]))[0])
            True
        """
        left, right = self.tail_scores(X)
        use_left = self.skewness_ < 0
        skewed = np.where(use_left[None, :], left, right)
        sums = np.vstack([left.sum(axis=1), right.sum(axis=1), skewed.sum(axis=1)])
        return np.asarray(sums.max(axis=0))
