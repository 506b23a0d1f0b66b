"""The calibration comparison with planted structure: limits fitted on a new normal beat the old
ones on it (false alarms down, planted faults still caught); limits fitted on data holding a
fault are widened by it and miss planted faults the champion catches: refused."""

from __future__ import annotations

import numpy as np
import polars as pl

from opslens.recipes.residual.params import RecalibrateParams
from opslens.recipes.residual.predictor import ResidualPredictor
from opslens.recipes.residual.recalibration import calibration_comparison, normal_rows
from opslens.recipes.residual.thresholds import calibrate_axis
from opslens.recipes.residual.trend import AxisTrend

DT = 60.0


def _predictor(values: np.ndarray) -> ResidualPredictor:
    t = np.arange(values.size) * DT
    trend = AxisTrend("median").fit(t, values)
    limits = calibrate_axis(
        values - trend.predict(t),
        dt_seconds=DT,
        alert_seconds_default=300,
        error_seconds_default=180,
    )
    return ResidualPredictor({"axis1": trend}, {"axis1": limits}, time_field="ts", t0_us=0)


def _held(values: np.ndarray) -> pl.DataFrame:
    ts = pl.from_epoch(pl.Series((np.arange(values.size) * DT * 1e6).astype(np.int64)), "us")
    return pl.DataFrame({"ts": ts, "axis1": values})


def test_a_new_normal_wins_and_a_window_holding_a_fault_is_refused() -> None:
    rng = np.random.default_rng(5)
    normal = 10.0 + 0.1 * rng.standard_normal(2000)
    champion = _predictor(normal)
    shifted = 11.0 + 0.1 * rng.standard_normal(2400)
    held = _held(shifted[2000:])
    new = calibration_comparison(champion, _predictor(shifted[:2000]), held, RecalibrateParams())
    d = new.details
    assert new.challenger_wins and d["false_alarm_rate"]["champion"] > 0.95
    assert d["false_alarm_rate"]["challenger"] < 0.02
    assert d["faults_caught"] == {"champion": 8, "challenger": 8, "planted": 8}
    assert new.summary().endswith("the recalibrated limits are better, promoted")
    # a window whose last 40% holds a fault (+3, 30 deviations): wider limits, faults missed
    faulty = normal.copy()
    faulty[1200:] += 3.0
    bad = calibration_comparison(
        champion, _predictor(faulty), _held(normal[:400]), RecalibrateParams()
    )
    caught = bad.details["faults_caught"]
    assert not bad.challenger_wins and caught["champion"] == 8 and caught["challenger"] <= 2
    assert "miss planted faults the champion catches, champion kept" in bad.summary()


def test_the_alarmed_samples_of_a_window_are_left_out() -> None:
    rng = np.random.default_rng(6)
    r = 0.1 * rng.standard_normal(1000)
    r[500:520] += 3.0  # a short fault the champion alarmed on
    alarmed = np.zeros(1000, bool)
    alarmed[500:520] = True
    keep, rule = normal_rows(r, alarmed, alert_rate=0.2, outlier_k=6.0)
    assert rule == "champion" and np.flatnonzero(~keep).tolist() == list(range(500, 520))
    # a whole new normal alarmed by the champion: only far outliers of a first fit go
    keep, rule = normal_rows(r, np.ones(1000, bool), alert_rate=0.2, outlier_k=6.0)
    assert rule == "outliers" and set(np.flatnonzero(~keep)) == set(range(500, 520))
