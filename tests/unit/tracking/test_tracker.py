"""The tracker seam: MemoryTracker, flatten_params, and MlflowTracker on a real sqlite store."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from opslens.tracking.tracker import MemoryTracker, ModelToLog, Tracker, flatten_params

# --- MemoryTracker -----------------------------------------------------------------------------


def test_memory_tracker_records_everything_it_is_told(tmp_path: Path) -> None:
    tracker = MemoryTracker()
    _: Tracker = tracker  # the runner's protocol (checked by mypy)
    first = ModelToLog(
        model="m1", input_example=None, output_example=None, registered_name="eta", tags={"a": "b"}
    )
    second = ModelToLog(model="m2", input_example=None, output_example=None, registered_name="eta")

    tracker.start(experiment="eta", run_name="r1")
    tracker.log_params({"source.kind": "file", "params.k": "3"})
    tracker.log_params({"params.k": "4", "random_state": "0"})
    tracker.log_metrics({"auroc": 0.93, "k": 3.0})
    tracker.log_metrics({"auroc": 0.95})
    tracker.log_artifacts(tmp_path / "a")
    tracker.log_artifacts(tmp_path / "b")
    assert tracker.log_model(first) == "1"
    assert tracker.log_model(second) == "2"
    assert tracker.aliases == {}  # logging a model moves no alias
    tracker.set_alias("eta", "2")
    tracker.set_alias("fleet", "7")
    assert tracker.status is None
    assert tracker.end("FINISHED") == "eta/r1"

    assert tracker.runs == ["eta/r1"]
    assert tracker.params == {"source.kind": "file", "params.k": "4", "random_state": "0"}
    assert tracker.metrics == {"auroc": 0.95, "k": 3.0}
    assert tracker.artifacts == [tmp_path / "a", tmp_path / "b"]
    assert tracker.models == [first, second]
    assert tracker.models[0].tags == {"a": "b"}
    assert tracker.models[1].tags == {}
    assert tracker.models[1].description == ""
    assert tracker.aliases == {"eta": "2", "fleet": "7"}
    assert tracker.status == "FINISHED"


def test_memory_tracker_end_names_the_last_run_and_keeps_the_status() -> None:
    tracker = MemoryTracker()
    assert tracker.end("FAILED") is None
    assert tracker.status == "FAILED"
    tracker.start(experiment="eta", run_name="r1")
    tracker.start(experiment="fleet", run_name="r2")
    tracker.set_alias("eta", "1")
    tracker.set_alias("eta", "3")
    assert tracker.end("FINISHED") == "fleet/r2"
    assert tracker.runs == ["eta/r1", "fleet/r2"]
    assert tracker.aliases == {"eta": "3"}
    assert tracker.status == "FINISHED"


def test_memory_trackers_do_not_share_state() -> None:
    a, b = MemoryTracker(), MemoryTracker()
    a.log_params({"x": "1"})
    a.set_alias("eta", "1")
    assert b.params == {}
    assert b.aliases == {}


# --- flatten_params ------------------------------------------------------------------------


def test_flatten_params_joins_nested_keys_and_drops_empty_values() -> None:
    config = {
        "name": "eta",
        "source": {"kind": "file", "path": "x.csv", "options": {}},
        "columns": {"target": "minutes", "categorical": ["route", "hour"], "metrics": []},
        "params": {"k": [2, 8], "xgboost": {"n_estimators": 30, "max_depth": None}, "on": True},
        "random_state": 0,
        "window": None,
    }
    assert flatten_params(config) == {
        "name": "eta",
        "source.kind": "file",
        "source.path": "x.csv",
        "columns.target": "minutes",
        "columns.categorical": "['route', 'hour']",
        "params.k": "[2, 8]",
        "params.xgboost.n_estimators": "30",
        "params.on": "True",
        "random_state": "0",
    }


def test_flatten_params_cuts_long_values_and_takes_a_prefix() -> None:
    out = flatten_params({"query": "x" * 800, "n": 1.5}, prefix="source.")
    assert out == {"source.query": "x" * 500, "source.n": "1.5"}
    assert flatten_params({}) == {}


# --- MlflowTracker on a real sqlite store ------------------------------------------------------


@pytest.mark.slow
def test_mlflow_tracker_registers_a_version_and_moves_the_alias_only_when_told(
    tmp_path: Path, isolated_mlflow: None
) -> None:
    import mlflow
    from mlflow.exceptions import MlflowException

    import opslens
    from opslens.synthetic.trips import make_trips
    from opslens.tracking.mlflow_tracker import ALIAS, MlflowTracker

    result = opslens.run(
        make_trips(n_rows=3000, seed=1, n_routes=3).trips,
        recipe="distribution",
        runs_dir=tmp_path / "runs",
        columns={"target": "duration_min", "categorical": ["route", "hour_band"]},
        params={"min_combination_size": 20, "xgboost": {"n_estimators": 10}},
    )
    predictor = result.predictor()
    example = pl.read_parquet(result.path / "model" / "input_example.parquet")
    output = predictor.predict_frame(example)

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    before = mlflow.get_tracking_uri()
    tracker = MlflowTracker(uri, artifact_root=tmp_path / "mlartifacts")
    tracker.start(experiment="eta", run_name=result.run_id)
    tracker.log_params({"params.k": "3", "source.kind": "memory"})
    tracker.log_metrics({"auroc": 0.875, "k": 3, "broken": float("nan")})
    version = tracker.log_model(
        ModelToLog(
            model=predictor,
            input_example=example.to_pandas(),
            output_example=output.to_pandas(),
            registered_name="eta",
            description=f"opslens distribution model, run {result.run_id}",
            tags={"opslens_run_id": result.run_id, "opslens_recipe": "distribution"},
        )
    )
    assert version == "1"

    client = mlflow.MlflowClient(tracking_uri=uri)
    mv = client.get_model_version("eta", "1")
    assert mv.aliases == []
    assert mv.tags == {"opslens_run_id": result.run_id, "opslens_recipe": "distribution"}
    assert mv.description == f"opslens distribution model, run {result.run_id}"
    with pytest.raises(MlflowException, match="alias champion not found"):
        client.get_model_version_by_alias("eta", ALIAS)

    mlflow_run_id = tracker.end("FINISHED")
    assert mlflow_run_id is not None
    assert mv.run_id == mlflow_run_id
    # ending the run does not move the alias either
    with pytest.raises(MlflowException, match="alias champion not found"):
        client.get_model_version_by_alias("eta", ALIAS)

    tracker.set_alias("eta", "1")
    assert ALIAS == "champion"
    fresh = mlflow.MlflowClient(tracking_uri=uri)
    # the serving alias, and its synonym for projects made before opslens 0.3
    assert str(fresh.get_model_version_by_alias("eta", "champion").version) == "1"
    assert str(fresh.get_model_version_by_alias("eta", "current").version) == "1"

    run = client.get_run(mlflow_run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == result.run_id
    assert run.data.params == {"params.k": "3", "source.kind": "memory"}
    assert run.data.metrics == {"auroc": 0.875, "k": 3.0}  # the NaN is not logged
    experiment = client.get_experiment_by_name("eta")
    assert experiment is not None
    assert experiment.artifact_location == (tmp_path / "mlartifacts" / "eta").resolve().as_uri()

    # the caller's MLflow settings are given back when the run ends
    assert mlflow.get_tracking_uri() == before != uri
    # the registered pyfunc answers as the predictor does, bit for bit
    mlflow.set_tracking_uri(uri)
    loaded = mlflow.pyfunc.load_model(f"models:/eta@{ALIAS}")
    assert pl.from_pandas(loaded.predict(example.to_pandas())).equals(output)
