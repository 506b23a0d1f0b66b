"""The calibration comparison with planted structure: limits fitted on a new normal beat the old
ones on it (false alarms down, planted faults still caught); limits fitted on data holding a
fault are widened by it and miss planted faults the champion catches: refused. Normal data
does not fire the drift trigger, even where the reference limits alert on a third of it."""

from __future__ import annotations

import logging
import tempfile
from typing import Any

import numpy as np
import polars as pl
import pytest

from opslens.recipes import project_from_mapping
from opslens.recipes.residual import OnlineChecker
from opslens.recipes.residual.lifecycle import retrain_reason, score_batch
from opslens.recipes.residual.params import RecalibrateParams, ResidualParams
from opslens.recipes.residual.predictor import ResidualPredictor
from opslens.recipes.residual.recalibration import calibration_comparison, normal_rows
from opslens.recipes.residual.thresholds import calibrate_axis
from opslens.recipes.residual.trend import AxisTrend
from opslens.runner import run_analysis

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


def _trained_both_sides(n: int, rng: np.random.Generator) -> tuple[ResidualPredictor, Any]:
    """The recipe's reference limits on two planted normal axes (noise 0.1), ``direction:
    both`` and a sustain of one sample: MinC per side is the 75th percentile of that side's
    residuals, so about a quarter of normal samples alert per axis."""
    ts = pl.from_epoch(pl.Series(1_700_000_000 + 60 * np.arange(n)), time_unit="s")
    frame = pl.DataFrame(
        {
            "ts": ts,
            "axis1": 10 + 0.1 * rng.standard_normal(n),
            "axis2": 5 + 0.1 * rng.standard_normal(n),
        }
    )
    params = {
        "model": {"type": "median"},
        "thresholds": {"direction": "both", "alert_seconds_default": 1, "error_seconds_default": 1},
        "lifecycle": {"stream_window": 200},
    }
    with tempfile.TemporaryDirectory() as tmp:
        project = project_from_mapping(
            {
                "tracking": {"enabled": False},
                "runs_dir": tmp,
                "analyses": [
                    {
                        "name": "both",
                        "recipe": "residual",
                        "source": {"kind": "memory"},
                        "columns": {"time": "ts", "metrics": ["axis1", "axis2"]},
                        "params": {"registry": {"root_dir": f"{tmp}/registry"}, **params},
                    }
                ],
            }
        )
        predictor = run_analysis(project, "both", frames={"frame": frame}).predictor()
    assert isinstance(predictor, ResidualPredictor)
    return predictor, ResidualParams.model_validate(params)


def _samples(start: int, a1: np.ndarray, a2: np.ndarray) -> pl.DataFrame:
    ts = pl.from_epoch(pl.Series(start + 60 * np.arange(a1.size)), time_unit="s")
    return pl.DataFrame({"ts": ts, "axis1": a1, "axis2": a2})


def test_planted_data_without_drift_never_recalibrates_with_both_sides_and_a_sustain_of_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rng = np.random.default_rng(21)
    predictor, params = _trained_both_sides(3000, rng)
    assert {a: predictor.thresholds[a]["T_long_steps"] for a in predictor.axes} == {
        "axis1": 1,
        "axis2": 1,
    }
    start = 1_700_000_000 + 60 * 3000
    normal = _samples(
        start, 10 + 0.1 * rng.standard_normal(2000), 5 + 0.1 * rng.standard_normal(2000)
    )
    checker = OnlineChecker(predictor)
    with caplog.at_level(logging.WARNING, logger="opslens.residual"):
        answers = [checker.update(row) for row in normal.iter_rows(named=True)]
    beyond = np.mean([a["level"] != "ok" for a in answers])
    assert 0.3 < beyond < 0.6, beyond  # the limits' own share, past alert_rate 0.2: not drift
    assert not [a["recalibrate"] for a in answers if "recalibrate" in a]
    assert "no longer fits" not in caplog.text
    # a batch of the same normal data: no drift trigger either
    record = score_batch(None, normal, normal, predictor, "1").values["record"]  # type: ignore[arg-type]
    assert record["axis1_alert_rate"] > 0.2 and retrain_reason([record], params, None, None) is None
    # a real drift (axis1 +10 deviations) still fires on the first window, stream and batch
    shifted = _samples(
        start + 60 * 2000, 11 + 0.1 * rng.standard_normal(400), 5 + 0.1 * rng.standard_normal(400)
    )
    fired = [
        i
        for i, row in enumerate(shifted.iter_rows(named=True))
        if "recalibrate" in checker.update(row)
    ]
    assert fired[:1] == [199], fired  # (and every window after while nothing recalibrates)
    record = score_batch(None, normal, shifted, predictor, "1").values["record"]  # type: ignore[arg-type]
    assert (retrain_reason([record], params, None, None) or "").startswith("automatic: axis1")


def test_normal_rates_count_unscored_and_missing_samples_as_not_alarming() -> None:
    from opslens.recipes.residual.predictor import example_predictor
    from opslens.recipes.residual.recalibration import normal_rates

    # MinC 5, alert after 2: samples 1-3 alert; a null reading, and a repeated time not scored
    rows = pl.DataFrame({"ts": [0.0, 1, 2, 3, 3, 4, 5, 6], "axis1": [9.0, 9, 9, 9, 9, None, 0, 0]})
    assert normal_rates(example_predictor(), rows) == {"axis1": 0.375, "level": 0.375}
