"""Trend families recover planted lines; auto picks by held-out error; the estimator contract."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from opslens.recipes.residual.trend import AxisTrend, choose_family

rng = np.random.default_rng(0)
T = np.arange(500.0) * 2.0
Y = 3.0 + 0.01 * T + rng.normal(0, 0.2, T.size)


def test_linear_recovers_slope_and_intercept() -> None:
    m = AxisTrend("linear").fit(T, Y)
    assert abs(m.slope_ - 0.01) < 5e-4 and abs(m.intercept_ - 3.0) < 0.05


def test_huber_resists_outliers_that_pull_least_squares() -> None:
    y = Y.copy()
    y[-40:] += 30.0  # the last 8% of samples far off
    lin, hub = AxisTrend("linear").fit(T, y), AxisTrend("huber").fit(T, y)
    assert abs(hub.slope_ - 0.01) < 1e-3 < abs(lin.slope_ - 0.01)


def test_piecewise_follows_a_bend_and_auto_picks_it() -> None:
    y = np.where(T < 500, 0.0, 0.05 * (T - 500)) + rng.normal(0, 0.1, T.size)
    pw, lin = AxisTrend("piecewise", n_segments=4).fit(T, y), AxisTrend("linear").fit(T, y)
    err = lambda m: float(np.sqrt(np.mean((m.predict(T) - y) ** 2)))  # noqa: E731
    assert err(pw) < 0.2 < err(lin)
    assert choose_family(T, y, n_segments=4)["family"] == "piecewise"
    choice = choose_family(T, Y)
    assert choice["family"] == "linear", choice  # a straight line stays linear
    assert set(choice["holdout_rmse"]) == {"linear", "huber", "piecewise"}


def test_estimator_contract() -> None:
    with pytest.raises(NotFittedError):
        AxisTrend().predict(T)
    m = AxisTrend("piecewise", n_segments=3)
    assert clone(m).get_params() == m.get_params()
    t, y = T.copy(), Y.copy()
    fitted = m.fit(t, y)
    assert fitted is m and np.array_equal(t, T) and np.array_equal(y, Y)
    again = pickle.loads(pickle.dumps(m))
    assert np.array_equal(again.predict(T), m.predict(T))
    # one sample at a time gives the same numbers as the array
    assert [float(m.predict(np.array([v]))[0]) for v in T[:50]] == m.predict(T[:50]).tolist()
