"""`opslens demo`: every recipe's whole pipeline on bundled data, logged and registered in MLflow."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from tests.fakes.cli import run_cli

pytestmark = pytest.mark.slow


def test_demo_runs_everything_and_registers_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_cli(["demo", "--dir", "demo"], tmp_path, monkeypatch)
    assert result.code == 0, result.err
    reports = [
        line.split("report: ", 1)[1] for line in result.out.splitlines() if "report: " in line
    ]
    from opslens.recipes import recipe_names

    assert len(reports) == len(recipe_names()) and all(Path(r).is_file() for r in reports)
    predictions = tmp_path / "demo" / "distribution" / "trip-eta-predictions.jsonl"
    lines = [json.loads(x) for x in predictions.read_text().splitlines()]
    assert len(lines) == 6 and lines[-1]["unknown"] == ["route"]
    assert all(Path(x["plot"]).is_file() for x in lines)

    import mlflow

    # Every recipe registers version 1; the champion alias goes only where the model beat its
    # baselines on the held-out data (the manifest's promotion says which), and the alias
    # `current` of older projects names the same version.
    served = {}
    for folder in sorted(p.name for p in (tmp_path / "demo").iterdir() if p.is_dir()):
        project = tmp_path / "demo" / folder
        mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
        client = mlflow.MlflowClient()
        for name in [d.name for d in (project / "runs").iterdir() if (d / "latest").is_file()]:
            run_dir = (
                project / "runs" / name / (project / "runs" / name / "latest").read_text().strip()
            )
            manifest = json.loads((run_dir / "manifest.json").read_text())
            assert manifest["model_version"] == "1" and manifest["mlflow_run_id"]
            run = mlflow.get_run(manifest["mlflow_run_id"])
            assert run.data.metrics and run.data.params
            won = run.data.metrics.get("beats_baselines")
            promotion = manifest["promotion"]
            assert promotion["moved"] == (won != 0.0), (name, promotion, won)
            aliases = set(client.get_registered_model(name).aliases)
            served[name] = promotion["moved"]
            if not promotion["moved"]:
                assert aliases == set() and "held back" in promotion["why"]
                continue
            assert {"champion", "current"} <= aliases
            if folder in ("distribution", "fleet"):
                model = mlflow.pyfunc.load_model(f"models:/{name}@champion")
                example = pl.read_parquet(run_dir / "model" / "input_example.parquet")
                out = model.predict(example.to_pandas())
                # distribution answers each row; fleet answers each device of the readings
                expected = (
                    example.height
                    if folder == "distribution"
                    else example[example.columns[0]].n_unique()
                )
                assert len(out) == expected
    assert len(served) >= len(recipe_names()) and any(served.values())
    assert "WARNING mlflow" not in result.err
