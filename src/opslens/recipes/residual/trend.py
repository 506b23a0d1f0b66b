"""Trend models of one axis against time: linear, robust (Huber) and piecewise linear lines.

Every family is fitted with scikit-learn and then kept as a piecewise-linear
function (knots and values), so a prediction is the same arithmetic for one
sample and for an array: ``np.interp`` between knots, the end slopes beyond
them. A straight line has two knots.

Example:
    >>> import numpy as np
    >>> t = np.arange(100.0)
    >>> y = 2.0 * t + 1.0
    >>> model = AxisTrend("linear").fit(t, y)
    >>> round(model.slope_, 6), round(model.intercept_, 6)
    (2.0, 1.0)
    >>> float(model.predict(np.array([200.0]))[0])
    401.0
    >>> choose_family(t, np.where(t < 50, t, 50 + 3 * (t - 50)), n_segments=2)["family"]
    'piecewise'
"""

from __future__ import annotations

import math
from bisect import bisect_right
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.linear_model import HuberRegressor, LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import SplineTransformer
from sklearn.utils.validation import check_is_fitted

__all__ = ["FAMILIES", "TREND_FAMILIES", "AxisTrend", "choose_family", "regression_metrics"]

#: The families against time; ``auto`` chooses among them.
TREND_FAMILIES = ("linear", "huber", "piecewise")
#: Every family: the time trends and ``median``, the training rows' median as a flat level.
FAMILIES = (*TREND_FAMILIES, "median")


class AxisTrend(BaseEstimator):  # type: ignore[misc]
    """y = f(t) for one axis: ``linear`` (least squares), ``huber`` (robust), ``piecewise``
    or ``median`` (a flat level: no trend to extrapolate).

    ``piecewise`` fits a degree-1 B-spline with ``n_segments`` pieces (knots at
    quantiles of t) by least squares; beyond the training range it continues
    the first / last piece. ``t_range_`` is the fitted time range (seconds) and
    :meth:`spans_beyond` says how far a time lies outside it, in training spans.

    Example:
        >>> import numpy as np
        >>> t = np.arange(50.0); y = 0.5 * t
        >>> y[10] = 500.0  # one outlier
        >>> round(AxisTrend("huber").fit(t, y).slope_, 3)
        0.5
    """

    def __init__(
        self, family: str = "linear", n_segments: int = 3, huber_epsilon: float = 1.35
    ) -> None:
        self.family = family
        self.n_segments = n_segments
        self.huber_epsilon = huber_epsilon

    def fit(self, t: Any, y: Any) -> AxisTrend:
        """Fit on times ``t`` (seconds) and values ``y``; returns self."""
        self.__dict__.pop("_plan", None)
        t = np.asarray(t, dtype=np.float64).ravel()
        y = np.asarray(y, dtype=np.float64).ravel()
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {FAMILIES}, not {self.family!r}")
        if t.size < 2 or t.size != y.size:
            raise ValueError("fit needs at least two (t, y) pairs of equal length")
        lo, hi = float(t.min()), float(t.max())
        span = hi - lo if hi > lo else 1.0
        x = ((t - lo) / span).reshape(-1, 1)  # scaled: Huber's solver needs it
        if self.family == "median":
            knots_x = np.array([0.0, 1.0])
            level = float(np.median(y))
            self.knots_ = lo + knots_x * span
            self.values_ = np.array([level, level])
            self.slopes_ = np.zeros(1)
            self.slope_, self.intercept_ = 0.0, level
            self.t_range_ = (lo, hi)
            return self
        if self.family == "piecewise" and t.size > self.n_segments + 1:
            model = make_pipeline(
                SplineTransformer(
                    n_knots=self.n_segments + 1,
                    degree=1,
                    knots="quantile",
                    extrapolation="linear",
                ),
                LinearRegression(),
            ).fit(x, y)
            knots_x = np.unique(model[0].bsplines_[0].t[1:-1])
        else:
            model = (
                HuberRegressor(epsilon=self.huber_epsilon, max_iter=500)
                if self.family == "huber"
                else LinearRegression()
            ).fit(x, y)
            knots_x = np.array([0.0, 1.0])
        self.knots_ = lo + knots_x * span
        self.values_ = np.asarray(model.predict(knots_x.reshape(-1, 1)), dtype=np.float64)
        self.slopes_ = np.diff(self.values_) / np.diff(self.knots_)
        self.slope_ = float(self.slopes_[-1])
        self.intercept_ = float(self.values_[-1] - self.slope_ * self.knots_[-1])
        self.t_range_ = (lo, hi)
        return self

    def spans_beyond(self, t: float) -> float:
        """How far ``t`` lies outside the fitted time range, in training spans (0 inside).

        Example:
            >>> m = AxisTrend().fit(np.array([0.0, 10.0]), np.array([1.0, 2.0]))
            >>> m.spans_beyond(5.0), m.spans_beyond(110.0), m.spans_beyond(-20.0)
            (0.0, 10.0, 2.0)
        """
        check_is_fitted(self, "knots_")
        lo, hi = getattr(self, "t_range_", (float(self.knots_[0]), float(self.knots_[-1])))
        span = hi - lo if hi > lo else 1.0
        if t > hi:
            return (t - hi) / span
        if t < lo:
            return (lo - t) / span
        return 0.0

    def predict(self, t: Any) -> np.ndarray:
        """The trend at times ``t`` (an array of seconds)."""
        check_is_fitted(self, "knots_")
        t = np.asarray(t, dtype=np.float64)
        out = np.interp(t, self.knots_, self.values_)
        before, after = t < self.knots_[0], t > self.knots_[-1]
        out = np.where(before, self.values_[0] + self.slopes_[0] * (t - self.knots_[0]), out)
        out = np.where(after, self.values_[-1] + self.slopes_[-1] * (t - self.knots_[-1]), out)
        return np.asarray(out, dtype=np.float64)

    def predict_at(self, t: float) -> float:
        """The trend at one time: the same arithmetic as :meth:`predict` (NumPy's ``interp``
        step for step) on Python floats, without array overhead.

        Example:
            >>> m = AxisTrend("piecewise", n_segments=3).fit(np.arange(30.0), np.arange(30.0) ** 2)
            >>> all(m.predict_at(t) == m.predict(np.array([t]))[0] for t in (-3.0, 0.0, 7.3, 29.0, 31.5))
            True
        """
        plan = self.__dict__.get("_plan")
        if plan is None:  # the knots as Python floats, once
            plan = self.__dict__["_plan"] = (
                self.knots_.tolist(),
                self.values_.tolist(),
                self.slopes_.tolist(),
            )
        knots, values, slopes = plan
        if t < knots[0]:
            return values[0] + slopes[0] * (t - knots[0])  # type: ignore[no-any-return]
        if t > knots[-1]:
            return values[-1] + slopes[-1] * (t - knots[-1])  # type: ignore[no-any-return]
        if t != t:
            return math.nan
        j = bisect_right(knots, t) - 1
        if j >= len(knots) - 1 or t == knots[j]:
            return values[j]  # type: ignore[no-any-return]
        slope = (values[j + 1] - values[j]) / (knots[j + 1] - knots[j])
        out = slope * (t - knots[j]) + values[j]
        if out != out:  # as NumPy: from the right end when the left gives NaN
            out = slope * (t - knots[j + 1]) + values[j + 1]
        return out  # type: ignore[no-any-return]

    def describe(self) -> dict[str, Any]:
        """The fitted function in numbers: family, knots, values, slopes (JSON-ready)."""
        check_is_fitted(self, "knots_")
        return {
            "family": self.family,
            "knots": [float(v) for v in self.knots_],
            "values": [float(v) for v in self.values_],
            "slopes": [float(v) for v in self.slopes_],
        }


def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float | None]:
    """R², MAE and RMSE of ``pred`` against ``y`` (R² None for fewer than 2 rows).

    Example:
        >>> regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0]))
        {'r2': 0.5, 'mae': 0.3333333333333333, 'rmse': 0.5773502691896257, 'n': 3}
    """
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    n = int(y.size)
    if n == 0:
        return {"r2": None, "mae": None, "rmse": None, "n": 0}
    return {
        "r2": float(r2_score(y, pred)) if n >= 2 else None,
        "mae": float(mean_absolute_error(y, pred)),
        "rmse": float(np.sqrt(mean_squared_error(y, pred))),
        "n": n,
    }


def choose_family(
    t: np.ndarray,
    y: np.ndarray,
    *,
    n_segments: int = 3,
    huber_epsilon: float = 1.35,
    holdout_share: float = 0.2,
) -> dict[str, Any]:
    """Fit every family on the earlier rows, score RMSE on the later ones, keep the lowest.

    Ties (within 0.5%) go to the simpler family (linear, then huber, then piecewise).
    Returns ``family``, the held-out RMSE per family and the reason in words.
    """
    n = t.size
    cut = max(2, min(n - 1, round(n * (1 - holdout_share))))
    order = np.argsort(t, kind="stable")
    fit_idx, hold_idx = order[:cut], order[cut:]
    errors: dict[str, float] = {}
    for family in TREND_FAMILIES:
        model = AxisTrend(family, n_segments=n_segments, huber_epsilon=huber_epsilon)
        model.fit(t[fit_idx], y[fit_idx])
        residual = y[hold_idx] - model.predict(t[hold_idx])
        errors[family] = float(np.sqrt(np.mean(residual**2)))
    best = min(errors.values())
    family = next(f for f in TREND_FAMILIES if errors[f] <= best * 1.005)
    shown = ", ".join(f"{f} {errors[f]:.4g}" for f in TREND_FAMILIES)
    reason = (
        f"{family} has the lowest RMSE on the last {hold_idx.size} training rows "
        f"held out ({shown}); fitted again on all training rows"
    )
    return {"family": family, "holdout_rmse": errors, "reason": reason}
