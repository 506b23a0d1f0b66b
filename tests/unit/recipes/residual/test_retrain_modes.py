"""A retrain of a per-mode, two-sided model refits the same kind of model (the same inputs and
modes) and both sides' limits on the recent window, not a line against time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.fakes.cli import run_cli

from opslens.synthetic.pump import make_pump

pytestmark = pytest.mark.slow

PROJECT = """
tracking: {uri: "sqlite:///mlflow.db"}
analyses:
  - name: pump
    recipe: residual
    source: {kind: file, path: train.parquet}
    columns: {time: ts, metrics: [flow, temperature]}
    params:
      model: {mode_column: mode, regressors: {flow: [speed]}}
      thresholds: {direction: both, alert_seconds_default: 600, error_seconds_default: 300,
                   per_mode: true}
"""


def test_retrain_keeps_the_models_on_other_signals_and_both_sides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import opslens
    from opslens.recipes.residual.conditional import AxisConditional

    frame = make_pump(seed=1, days=9, slow_start=0.999, sudden_start=0.9995).frame  # no fault
    cut = frame.height * 7 // 9
    frame.head(cut).write_parquet(tmp_path / "train.parquet")
    frame.slice(cut, 1440).write_parquet(tmp_path / "b0.parquet")
    (tmp_path / "project.yaml").write_text(PROJECT)
    assert run_cli(["run", "-p", "project.yaml"], tmp_path, monkeypatch).code == 0
    b = run_cli(["batch", "pump", "--input", "b0.parquet"], tmp_path, monkeypatch)
    assert b.code == 0, b.err
    r = run_cli(["retrain", "pump", "--reason", "test"], tmp_path, monkeypatch)
    assert r.code == 0, r.err
    predictor = opslens.load_predictor(tmp_path / "project.yaml", "pump")
    assert isinstance(predictor.models["flow"], AxisConditional)
    assert predictor.models["flow"].regressors == ("speed",)
    assert set(predictor.models["temperature"].coef_) == {"high", "idle", "low"}
    assert predictor.thresholds["flow"]["direction"] == "both"
    # the retrained version has limits per mode again, from the window's residuals
    runs = (tmp_path / "runs" / "pump").glob("2*")
    run = next(r for r in runs if "retrain" in json.loads((r / "facts.json").read_text()))
    assert json.loads((run / "facts.json").read_text())["retrain"]["challenger_wins"]
    limits = json.loads((run / "model" / "metadata.json").read_text())["thresholds"]
    per_mode = limits["temperature"]["modes"]
    assert set(per_mode) == {"high", "idle", "low"}
    assert all(m["MinC_below"] > 0 for m in per_mode.values())
