"""Through the CLI on a tmp MLflow: the first `opslens run` logs the parent run and its child
runs in the experiment named after the analysis; a calendar counter among the segmenting
features never retrains in a loop, the batch names it with its share of rows, and `opslens
retrain` is refused in one line with exit code 2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml
from tests.fakes.cli import run_cli

from opslens.synthetic.patients import FEATURES, make_patient_batches, make_patients

pytestmark = pytest.mark.slow
NAME = "trips"
STEPS = {
    "preprocessing",
    "hdbscan",
    "knn-fallback",
    "series-models",
    "resource-models",
    "performance-report",
}


def _with_month(frame: pl.DataFrame, months: list[int], seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return frame.with_columns(pl.Series("month", rng.choice(months, frame.height).astype(float)))


def _project(folder: Path) -> None:
    _with_month(make_patients(n_rows=2000, seed=0).frame, list(range(1, 10)), 0).write_parquet(
        folder / "train.parquet"
    )
    spec = {
        "analyses": [
            {
                "name": NAME,
                "recipe": "segments",
                "source": {"kind": "file", "path": "train.parquet"},
                "columns": {
                    "target": "next_score",
                    "metrics": [*FEATURES, "month"],
                    "categorical": ["ward"],
                },
                "params": {
                    "model_features": ["score_lag1", "score_lag2"],
                    "lgb_series": {"n_estimators": 40},
                    "lgb_resource": {"n_estimators": 40},
                    "monitor": {"noise_threshold": 0.25, "window_batches": 1},
                },
            }
        ]
    }
    (folder / "project.yaml").write_text(yaml.safe_dump(spec))
    for i, b in enumerate(make_patient_batches(2, 400, drift_batch=99, seed=3)):
        _with_month(b.frame, [10 + i], i).write_parquet(folder / f"m{10 + i}.parquet")


def test_first_run_children_and_a_calendar_counter_refused(tmp_path: Path, monkeypatch) -> None:
    import mlflow

    _project(tmp_path)
    r = run_cli(["run"], tmp_path, monkeypatch)
    assert r.code == 0, r.err
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(NAME)  # the experiment is the analysis's name
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1
    parent = parents[0]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert {c.info.run_name for c in children} == STEPS
    report = next(c for c in children if c.info.run_name == "performance-report")
    assert {"model_rmse_next_score", "global_rmse_next_score"} <= set(report.data.metrics)
    series = next(c for c in children if c.info.run_name == "series-models")
    assert "choice" in series.data.params

    for month in (10, 11):  # each month past the training range: no retraining, named
        b = run_cli(["batch", NAME, "--input", f"m{month}.parquet"], tmp_path, monkeypatch)
        assert b.code == 0, b.err
        assert "retrained" not in b.out
        assert "out_of_range month 1 > 0.05" in b.out
        assert "inside it in no segment)" in b.out  # the noise ratio split by range
        assert "'month' outside its training range in 100% of the rows" in b.out
    refused = run_cli(["retrain", NAME, "--reason", "new quarter"], tmp_path, monkeypatch)
    assert refused.code == 2
    said = refused.err.strip().splitlines()[-1]  # after the run's own log lines: one line
    assert said.startswith("error: feature 'month' is above its training range (1–9)")
    assert "drop 'month' from columns.metrics" in said
    history = run_cli(["models", "history", NAME], tmp_path, monkeypatch).out.strip()
    assert len(history.splitlines()) == 1, "only the first champion: nothing retrained"
