"""The distribution recipe's life cycle through the CLI: labelled batches of trips are scored by
the champion with their held-out log score; durations doubled from batch 2 on drop it and fire a
retraining at batch 2 exactly, which wins; a transient (two thirds of one batch doubled) fires a
retraining that loses on the batch's normal last third, and the champion stays. A recipe without
a life cycle (fleet) refuses `batch` in one line, exit 2."""

from __future__ import annotations

from pathlib import Path

import mlflow
import polars as pl
import pytest
from tests.fakes.cli import run_cli

from opslens.synthetic.trips import make_trips

pytestmark = pytest.mark.slow
NAME = "trip-eta"
TRAIN, SIZE, N_BATCHES, DRIFT_AT = 3000, 900, 4, 2

PROJECT = f"""
tracking: {{uri: "sqlite:///mlflow.db"}}
analyses:
  - name: {NAME}
    recipe: distribution
    source: {{kind: file, path: train.parquet}}
    columns: {{time: started_at, target: duration_min, categorical: [route, hour_band]}}
    params: {{min_combination_size: 20, k_max: 4, unit: min, xgboost: {{n_estimators: 20}}}}
  - name: devices
    recipe: fleet
    source: {{kind: file, path: train.parquet}}
    columns: {{entity: route, time: started_at, metrics: [duration_min]}}
active: [{NAME}]
"""


def _project(folder: Path, transient: bool = False) -> list[str]:
    trips = make_trips(n_rows=TRAIN + SIZE * N_BATCHES, seed=4, n_routes=3, n_vehicles=1)
    frame = trips.trips.sort("started_at")
    frame.head(TRAIN).write_parquet(folder / "train.parquet")
    (folder / "project.yaml").write_text(PROJECT)
    names = []
    for i in range(N_BATCHES):
        batch = frame.slice(TRAIN + i * SIZE, SIZE)
        if (not transient and i >= DRIFT_AT) or (transient and i == DRIFT_AT):
            cut = SIZE * 2 // 3 if transient else SIZE
            slow = pl.int_range(pl.len()) < cut
            batch = batch.with_columns(
                pl.when(slow).then(pl.col("duration_min") * 2).otherwise(pl.col("duration_min"))
            )
        batch.write_parquet(folder / f"b{i}.parquet")
        names.append(f"b{i}.parquet")
    return names


def _champion(folder: Path) -> str:
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")
    return str(client.get_model_version_by_alias(NAME, "champion").version)


def test_slower_trips_from_batch_2_retrain_there_and_win(tmp_path: Path, monkeypatch) -> None:
    names = _project(tmp_path)
    assert run_cli(["run", "-p", "project.yaml"], tmp_path, monkeypatch).code == 0
    fired = []
    for i, name in enumerate(names):
        r = run_cli(["batch", NAME, "--input", name], tmp_path, monkeypatch)
        assert r.code == 0, r.err
        if "retrained (automatic: log score" in r.out:
            fired.append(i)
            assert "promoted" in r.out, r.out
    assert fired and fired[0] == DRIFT_AT, fired
    assert _champion(tmp_path) == "2"
    lines = run_cli(["models", "history", NAME], tmp_path, monkeypatch).out.splitlines()
    assert lines[1].startswith("challenger: version 2") and "automatic: log score" in lines[1]
    assert lines[2].startswith("champion: version 2 (was 1)")
    predictions = pl.read_parquet(tmp_path / "b0.predictions.parquet")
    assert predictions.height == SIZE and "cluster" in predictions.columns


def test_a_retraining_on_a_transient_loses_and_the_champion_stays(
    tmp_path: Path, monkeypatch
) -> None:
    names = _project(tmp_path, transient=True)
    assert run_cli(["run", "-p", "project.yaml"], tmp_path, monkeypatch).code == 0
    for name in names[: DRIFT_AT + 1]:
        r = run_cli(["batch", NAME, "--input", name], tmp_path, monkeypatch)
        assert r.code == 0, r.err
    assert "retrained (automatic: log score" in r.out and "champion kept" in r.out, r.out
    assert _champion(tmp_path) == "1"


def test_batch_on_a_recipe_without_a_life_cycle_is_refused(tmp_path: Path, monkeypatch) -> None:
    names = _project(tmp_path)
    r = run_cli(["batch", "devices", "--input", names[0]], tmp_path, monkeypatch)
    assert (
        r.code == 2
        and r.err.startswith(
            "error: analysis 'devices' uses the fleet recipe, which has no life cycle"
        )
        and r.err.count("\n") == 1
    )
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "runs").exists()
