"""The single-sample fast path (issue 27): ``predict_one`` on Python floats gives exactly the
answer of the batch path on a one-row frame, for every trend family and for models on other
signals; ``AxisTrend.predict_at`` equals ``predict`` bit for bit."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from opslens.recipes import project_from_mapping
from opslens.recipes.residual.trend import AxisTrend
from opslens.runner import run_analysis
from opslens.synthetic.axes import make_axes


@pytest.mark.parametrize("family", ["linear", "huber", "piecewise", "median"])
def test_predict_at_is_predict_bit_for_bit(family: str) -> None:
    rng = np.random.default_rng(3)
    t = np.sort(rng.uniform(0, 1000, 400))
    model = AxisTrend(family, n_segments=5).fit(
        t, 0.01 * t + np.sin(t / 50) + rng.normal(0, 0.1, 400)
    )
    probe = np.r_[rng.uniform(-500, 1500, 2000), model.knots_, t[:50]]
    batch = model.predict(probe)
    one = np.array([model.predict_at(float(x)) for x in probe])
    assert np.array_equal(batch, one)
    assert math.isnan(model.predict_at(math.nan))


def _trained(tmp_path: Path, params: dict[str, Any]) -> Any:
    project = project_from_mapping(
        {
            "tracking": {"enabled": False},
            "runs_dir": str(tmp_path / "runs"),
            "analyses": [
                {
                    "name": "axes",
                    "recipe": "residual",
                    "source": {"kind": "memory"},
                    "columns": {"time": "ts", "metrics": ["axis1", "axis2", "axis3"]},
                    "params": {"registry": {"root_dir": str(tmp_path / "reg")}, **params},
                }
            ],
        }
    )
    frame = make_axes(seed=1, n_samples=1500).frame
    return run_analysis(project, "axes", frames={"frame": frame}).predictor(), frame


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"model": {"type": "piecewise"}, "thresholds": {"direction": "both"}},
        {"model": {"regressors": {"axis2": ["axis1"]}}},
    ],
    ids=["reference", "piecewise-both", "regression"],
)
def test_predict_one_is_the_batch_answer_of_a_one_row_frame(
    tmp_path: Path, params: dict[str, Any]
) -> None:
    predictor, frame = _trained(tmp_path, params)
    rows = frame.tail(200).to_dicts()
    for row in rows:
        one = predictor.predict_one(row)
        batch = predictor.predict_frame(pl.DataFrame([row])).row(0, named=True)
        assert one == batch
