"""The extrapolation guard: a time trend scored far beyond its fitted range warns (on the
``opslens.residual`` logger) once per stream, saying how far out; a flat median never warns; ``auto`` refuses a time trend when the
data reaches beyond ``max_spans`` training spans."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from opslens.recipes.residual.checker import OnlineChecker
from opslens.recipes.residual.predictor import ResidualPredictor
from opslens.recipes.residual.trend import AxisTrend

LIMITS = {"MinC": 1.0, "MaxC": 2.0, "T_long_steps": 2, "T_short_steps": 2}


def _predictor(family: str = "linear") -> ResidualPredictor:
    t = np.arange(101.0)  # fitted on 0 … 100 s: one span is 100 s
    models = {"a": AxisTrend(family).fit(t, 0.1 * t), "b": AxisTrend("median").fit(t, t * 0)}
    return ResidualPredictor(models, {"a": LIMITS, "b": LIMITS}, time_field="ts", t0_us=0)


def _far(n: int = 50) -> pl.DataFrame:
    t = 1100.0 + np.arange(n)  # 10 spans beyond the end of the fitted range
    return pl.DataFrame({"ts": t, "a": 0.1 * t, "b": np.zeros(n)})


def test_scoring_ten_spans_beyond_warns_once_per_stream_with_how_far(
    caplog: pytest.LogCaptureFixture,
) -> None:
    checker = OnlineChecker(_predictor())
    with caplog.at_level(logging.WARNING, logger="opslens.residual"):
        for row in _far().to_dicts():
            checker.update(row, stream="pump-1")
        for row in _far().to_dicts():
            checker.update(row, stream="pump-2")
        checker.update_many(_far(), stream="pump-3")
        checker.update_many(_far(), stream="pump-3")  # the same stream again: no new warning
    messages = [r.getMessage() for r in caplog.records if r.name == "opslens.residual"]
    assert len(messages) == 3
    assert all("axis 'a': its linear trend" in m for m in messages)
    assert all("10.0 training spans beyond" in m for m in messages)
    assert "fix: retrain on recent data" in messages[0]


def test_inside_the_range_or_a_flat_median_never_warns(caplog: pytest.LogCaptureFixture) -> None:
    near = pl.DataFrame({"ts": [50.0, 150.0, 199.0], "a": [5.0, 15.0, 19.9], "b": [0.0] * 3})
    with caplog.at_level(logging.WARNING, logger="opslens.residual"):
        OnlineChecker(_predictor()).update_many(near)  # within one span after the end
        OnlineChecker(_predictor("median")).update_many(_far())
    assert not [r for r in caplog.records if r.name == "opslens.residual"]


def test_auto_refuses_a_time_trend_for_data_far_beyond_the_training_window(
    tmp_path: Path,
) -> None:
    from opslens.recipes import project_from_mapping
    from opslens.runner import run_analysis

    rng = np.random.default_rng(0)
    n = 1100
    ts = np.datetime64("2025-01-01T00:00:00", "us") + np.arange(n).astype("timedelta64[m]")
    frame = pl.DataFrame({"ts": ts, "temp": 60 + 0.01 * np.arange(n) + rng.normal(0, 0.3, n)})
    project = project_from_mapping(
        {
            "tracking": {"enabled": False},
            "runs_dir": str(tmp_path / "runs"),
            "analyses": [
                {
                    "name": "pump",
                    "recipe": "residual",
                    "source": {"kind": "memory"},
                    "columns": {"time": "ts", "metrics": ["temp"]},
                    "params": {
                        "train_end": "9%",  # ~100 minutes train, the rest ~10 spans later
                        "model": {"type": "auto"},
                        "registry": {"root_dir": str(tmp_path / "registry")},
                    },
                }
            ],
        }
    )
    result = run_analysis(project, "pump", frames={"frame": frame})
    fit = result.facts["fit"]["axes"]["temp"]
    assert fit["family"] == "median"
    assert "auto refuses a trend against time" in fit["reason"]
    assert "params.model.max_spans" in fit["reason"]


@pytest.mark.parametrize("family", ["linear", "huber", "piecewise", "median"])
def test_every_family_records_its_fitted_range(family: str) -> None:
    m = AxisTrend(family).fit(np.arange(10.0, 21.0), np.arange(11.0))
    assert m.t_range_ == (10.0, 20.0) and m.spans_beyond(40.0) == 2.0


def test_a_regressor_scored_far_outside_its_fitted_range_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from opslens.recipes.residual.conditional import AxisConditional

    speed = np.linspace(1000.0, 1500.0, 200)
    flow = AxisConditional(("speed",), axis="flow").fit({"speed": speed}, 0.06 * speed)
    p = ResidualPredictor(
        {"flow": flow}, {"flow": LIMITS}, time_field="ts", t0_us=0, inputs=["speed"]
    )
    far = pl.DataFrame({"ts": np.arange(20.0), "speed": 6500.0, "flow": 0.06 * 6500.0})
    checker = OnlineChecker(p)
    with caplog.at_level(logging.WARNING, logger="opslens.residual"):
        for row in far.to_dicts():
            checker.update(row, stream="one")
        checker.update_many(far, stream="many")
        checker.update_many(far, stream="many")
    messages = [r.getMessage() for r in caplog.records if r.name == "opslens.residual"]
    assert len(messages) == 2
    assert all(
        "axis 'flow': its regressor 'speed' is scored 10.0 training spans" in m for m in messages
    )
