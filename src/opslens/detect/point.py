"""Point anomalies in one series: z-score, robust z (median/MAD) and IQR (Tukey fences).

Every detector follows one sub-API: ``fit(values)`` learns a centre and a
spread from the finite values, ``score_samples(values)`` returns a
non-negative score where **higher score = more anomalous**, and
``predict(values)`` flags ``score > threshold``. NaN values score NaN and are
never flagged.

A robust spread of zero (MAD or IQR 0: more than half the readings are one
value, as a sensor stuck at 0 most of the time) falls back to the mean absolute
deviation from the centre, rescaled to the same units (the normal's ratio), so a
healthy reading of a mostly dead sensor is not flagged for the zero spread alone.
Constant series (every spread 0): a value equal to the centre scores 0, any
other value scores ``inf`` and is flagged. So a flat series has no flags, and a
flat series with one different reading flags exactly that reading.

Example:
    >>> import numpy as np
    >>> x = np.r_[np.zeros(99), 25.0]
    >>> RobustZScoreDetector().fit(x).predict(x).nonzero()[0].tolist()
    [99]
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from typing import TYPE_CHECKING, Literal

import numpy as np
import polars as pl
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from opslens.core.frames import as_polars
from opslens.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "IQRDetector",
    "RobustZScoreDetector",
    "ZScoreDetector",
    "point_anomalies",
]

Method = Literal["zscore", "robust_z", "iqr"]


def _as_1d(values: object) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.ravel()
    if arr.ndim != 1:
        raise DataError(
            f"expected one series (1-D values), got an array of shape {arr.shape}",
            fix="pass a single column of values",
        )
    return arr


def _finite(values: np.ndarray) -> np.ndarray:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        raise DataError(
            "the series has no finite values to learn from", fix="select a series with readings"
        )
    return np.asarray(finite)


def _scaled(distance: np.ndarray, spread: float) -> np.ndarray:
    """Divide a non-negative distance by the spread; a zero spread gives 0 or inf."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if spread > 0:
            return distance / spread
        return np.where(distance > 0, np.inf, np.where(np.isnan(distance), np.nan, 0.0))


# mean absolute deviation of a normal = 0.7979 sd; MAD = 0.6745 sd; IQR = 1.349 sd
_MEAN_AD_TO_MAD = 0.6745 / 0.7979
_MEAN_AD_TO_IQR = 1.349 / 0.7979


def _robust_spread(spread: float, finite: np.ndarray, centre: float, to_units: float) -> float:
    """``spread``, or when it is 0 the mean absolute deviation from ``centre`` in its units."""
    if spread > 0:
        return spread
    return float(np.mean(np.abs(finite - centre)) * to_units)


class _PointDetector(BaseEstimator, metaclass=ABCMeta):  # type: ignore[misc]
    """Shared predict: flag finite scores above the threshold."""

    @abstractmethod
    def _limit(self) -> float:
        """The score above which a value is flagged."""

    @abstractmethod
    def score_samples(self, values: object) -> np.ndarray:
        """Return a non-negative score per value (higher = more anomalous)."""

    def predict(self, values: object) -> np.ndarray:
        """Return a boolean flag per value: True where score > threshold."""
        score = self.score_samples(values)
        with np.errstate(invalid="ignore"):
            return np.asarray(np.nan_to_num(score, nan=-np.inf) > self._limit())


class ZScoreDetector(_PointDetector):
    """Flag values more than ``threshold`` standard deviations from the mean.

    Example:
        >>> import numpy as np
        >>> x = np.r_[np.tile([-1.0, 1.0], 50), 30.0]
        >>> ZScoreDetector(threshold=3.0).fit(x).predict(x).sum()
        np.int64(1)
    """

    def __init__(self, threshold: float = 3.0) -> None:
        self.threshold = threshold

    def _limit(self) -> float:
        return float(self.threshold)

    def fit(self, values: object, y: object = None) -> ZScoreDetector:
        """Learn the mean and (population) standard deviation of the finite values."""
        finite = _finite(_as_1d(values))
        self.center_ = float(finite.mean())
        self.scale_ = float(finite.std())
        return self

    def score_samples(self, values: object) -> np.ndarray:
        """Return |x - mean| / std for each value (higher = more anomalous)."""
        check_is_fitted(self, "center_")
        return _scaled(np.abs(_as_1d(values) - self.center_), self.scale_)


class RobustZScoreDetector(_PointDetector):
    """Flag values whose robust z, 0.6745·|x - median| / MAD, exceeds ``threshold``.

    Example:
        >>> import numpy as np
        >>> x = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 100.0])
        >>> RobustZScoreDetector().fit(x).score_samples(np.array([3.5, 100.0])).round(2).tolist()
        [0.0, 43.39]
    """

    def __init__(self, threshold: float = 3.5) -> None:
        self.threshold = threshold

    def _limit(self) -> float:
        return float(self.threshold)

    def fit(self, values: object, y: object = None) -> RobustZScoreDetector:
        """Learn the median and the median absolute deviation of the finite values."""
        finite = _finite(_as_1d(values))
        self.center_ = float(np.median(finite))
        mad = float(np.median(np.abs(finite - self.center_)))
        self.scale_ = _robust_spread(mad, finite, self.center_, _MEAN_AD_TO_MAD)
        return self

    def score_samples(self, values: object) -> np.ndarray:
        """Return 0.6745·|x - median| / MAD for each value (higher = more anomalous)."""
        check_is_fitted(self, "center_")
        return 0.6745 * _scaled(np.abs(_as_1d(values) - self.center_), self.scale_)


class IQRDetector(_PointDetector):
    """Flag values outside Tukey's fences [Q1 - k·IQR, Q3 + k·IQR].

    The score is the distance outside the box [Q1, Q3] in IQR units (0 inside),
    so ``score > k`` is exactly "outside the fences".

    Example:
        >>> import numpy as np
        >>> x = np.arange(1.0, 101.0)
        >>> IQRDetector(k=1.5).fit(x).predict(np.array([50.0, 149.0, 151.0])).tolist()
        [False, False, True]
    """

    def __init__(self, k: float = 1.5) -> None:
        self.k = k

    def _limit(self) -> float:
        return float(self.k)

    def fit(self, values: object, y: object = None) -> IQRDetector:
        """Learn the quartiles Q1, Q3 of the finite values."""
        finite = _finite(_as_1d(values))
        q1, q3 = np.quantile(finite, [0.25, 0.75])
        self.q1_, self.q3_ = float(q1), float(q3)
        centre = float(np.median(finite))
        self.iqr_ = _robust_spread(self.q3_ - self.q1_, finite, centre, _MEAN_AD_TO_IQR)
        return self

    def score_samples(self, values: object) -> np.ndarray:
        """Return the distance outside [Q1, Q3] divided by the IQR (higher = more anomalous)."""
        check_is_fitted(self, "q1_")
        x = _as_1d(values)
        with np.errstate(invalid="ignore"):
            outside = np.maximum(np.maximum(self.q1_ - x, x - self.q3_), 0.0)
        outside = np.where(np.isnan(x), np.nan, outside)
        return _scaled(outside, self.iqr_)


def _detector(method: str, threshold: float | None) -> _PointDetector:
    if method == "zscore":
        return ZScoreDetector() if threshold is None else ZScoreDetector(threshold)
    if method == "robust_z":
        return RobustZScoreDetector() if threshold is None else RobustZScoreDetector(threshold)
    if method == "iqr":
        return IQRDetector() if threshold is None else IQRDetector(threshold)
    raise DataError(
        f"unknown point-anomaly method {method!r}", fix="use 'zscore', 'robust_z' or 'iqr'"
    )


def point_anomalies(
    frame: pl.DataFrame | pd.DataFrame,
    *,
    time: str,
    value: str,
    method: Method,
    threshold: float | None = None,
) -> pl.DataFrame:
    """Score and flag each reading of ``value``; returns time, value, score, is_anomaly.

    ``threshold`` defaults to 3.0 (zscore), 3.5 (robust_z) or 1.5 (iqr, the
    fence multiplier k). Rows keep their order in ``frame``.

    Example:
        >>> import polars as pl
        >>> frame = pl.DataFrame({"t": range(7), "v": [1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 40.0]})
        >>> point_anomalies(frame, time="t", value="v", method="iqr")["is_anomaly"].to_list()
        [False, False, False, False, False, False, True]
    """
    frame = as_polars(frame, what="frame")
    for name in (time, value):
        if name not in frame.columns:
            raise DataError(
                f"column {name!r} is not in the table (columns: {', '.join(frame.columns)})",
                fix="name an existing column",
            )
    if not frame.schema[value].is_numeric():
        raise DataError(
            f"value column {value!r} is {frame.schema[value]}, not numeric",
            fix=f"cast {value!r} to a number or choose a numeric column",
        )
    values = frame[value].cast(pl.Float64).fill_null(np.nan).to_numpy()
    detector = _detector(method, threshold).fit(values)
    return pl.DataFrame(
        [
            frame[time].alias("time"),
            pl.Series("value", values),
            pl.Series("score", detector.score_samples(values)),
            pl.Series("is_anomaly", detector.predict(values)),
        ]
    )
