"""Loading models: fresh runs, runs written by opslens 0.1.0, the CLI's error, the MLflow registry."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from tests.fakes.cli import run_cli

from opslens.errors import ConfigError, RunError
from opslens.recipes import load_project, project_from_mapping
from opslens.recipes.distribution.predictor import PatternPredictor
from opslens.synthetic.trips import make_trips
from opslens.tracking.models import OLD_PATHS, load_model, load_predictor, load_registered

OLD_RUNS = Path(__file__).resolve().parents[2] / "data" / "old_runs"
ETA_OLD_RUN = "20261201T081744Z-3eae"
FLEET_OLD_RUN = "20261201T081746Z-94c0"
COLUMNS = {"target": "duration_min", "categorical": ["route", "hour_band"]}
PARAMS = {"min_combination_size": 20, "xgboost": {"n_estimators": 10}}


@pytest.fixture
def old_project(tmp_path: Path) -> Path:
    """A copy of the 0.1.0 project: project.yaml (runs_dir defaults to runs/) beside runs/."""
    shutil.copy(OLD_RUNS / "project.yaml", tmp_path / "project.yaml")
    for analysis in ("eta-small", "fleet-small"):
        shutil.copytree(OLD_RUNS / analysis, tmp_path / "runs" / analysis)
    return tmp_path


def _project(tmp_path: Path, name: str, tracking: dict[str, Any]) -> Any:
    return project_from_mapping(
        {
            "runs_dir": "runs",
            "tracking": tracking,
            "analyses": [
                {
                    "name": name,
                    "recipe": "distribution",
                    "source": {"kind": "memory", "name": name},
                    "columns": COLUMNS,
                    "params": PARAMS,
                }
            ],
        },
        root=tmp_path,
    )


# --- a fresh run -------------------------------------------------------------------------------


@pytest.mark.slow
def test_load_predictor_of_a_fresh_run(tmp_path: Path) -> None:
    from opslens.runner import run_analysis

    project = _project(tmp_path, "eta", {"enabled": False})
    trips = make_trips(n_rows=3000, seed=1, n_routes=3).trips
    result = run_analysis(project, "eta", frames={"eta": trips})

    loaded = load_predictor(tmp_path / "runs", "eta")
    assert loaded.run_id == result.run_id
    assert loaded.run is not None
    assert loaded.run.path == result.path
    assert loaded.origin == f"run folder {result.path} (latest)"
    assert isinstance(loaded.predictor, PatternPredictor)
    assert loaded.metadata["stage"] == "classify"
    assert loaded.metadata == loaded.run.json("model/metadata.json")

    by_id = load_predictor(tmp_path / "runs", "eta", result.run_id)
    assert by_id.origin == f"run folder {result.path} ({result.run_id})"
    via_project = load_model(project, "eta")
    assert via_project.run_id == result.run_id
    assert via_project.origin == loaded.origin

    example = pl.read_parquet(result.path / "model" / "input_example.parquet")
    assert loaded.predictor.predict_frame(example).equals(result.predictor().predict_frame(example))


def test_load_predictor_of_a_run_without_a_model(tmp_path: Path) -> None:
    from opslens.tracking.runs import RunWriter

    writer = RunWriter(tmp_path, "eta", "20260101T000000Z-aaaa")
    writer.write_json("manifest.json", {"status": "complete"})
    writer.commit()
    with pytest.raises(RunError) as err:
        load_predictor(tmp_path, "eta")
    assert err.value.problem == "run 20260101T000000Z-aaaa of 'eta' holds no model to predict with"
    assert err.value.fix == "run all stages of the analysis (its training pipeline saves the model)"


def test_load_predictor_without_any_run(tmp_path: Path) -> None:
    with pytest.raises(RunError, match="analysis 'eta' has no complete run yet"):
        load_predictor(tmp_path, "eta")


# --- runs written by opslens 0.1.0 ---------------------------------------------------------------


def test_the_old_runs_are_what_these_tests_expect() -> None:
    manifest = json.loads((OLD_RUNS / "eta-small" / ETA_OLD_RUN / "manifest.json").read_text())
    assert manifest["versions"]["opslens"] == "0.1.0"
    assert (OLD_RUNS / "eta-small" / "latest").read_text().strip() == ETA_OLD_RUN
    assert (OLD_RUNS / "fleet-small" / "latest").read_text().strip() == FLEET_OLD_RUN
    pickled = (OLD_RUNS / "eta-small" / ETA_OLD_RUN / "model" / "model.joblib").read_bytes()
    assert b"opslens.models.pattern_predictor" in pickled
    pickled = (OLD_RUNS / "fleet-small" / FLEET_OLD_RUN / "model" / "model.joblib").read_bytes()
    assert b"opslens.models.rare_scorer" in pickled


def test_an_old_distribution_model_loads_through_its_old_class_path(old_project: Path) -> None:
    runs = old_project / "runs"
    loaded = load_predictor(runs, "eta-small")
    run_path = runs / "eta-small" / ETA_OLD_RUN

    assert loaded.run_id == ETA_OLD_RUN
    assert loaded.origin == f"run folder {run_path} (latest)"
    assert type(loaded.predictor) is PatternPredictor
    assert loaded.predictor.recipe == "distribution"
    assert loaded.metadata["inputs"] == ["route", "hour_band", "vehicle_type"]
    assert loaded.metadata["classes"] == [0, 1, 2]
    # the old module paths are not left behind in sys.modules
    assert not any(old in sys.modules for old in OLD_PATHS)

    example = pl.read_parquet(run_path / "model" / "input_example.parquet")
    assert example.columns == ["route", "hour_band", "vehicle_type"]
    assert example.height == 5
    frame = loaded.predictor.predict_frame(example)
    assert frame.columns == ["cluster", "p_0", "p_1", "p_2"]
    assert frame.height == 5
    proba = frame.select("p_0", "p_1", "p_2").to_numpy()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert frame["cluster"].to_list() == proba.argmax(axis=1).tolist()

    for i, row in enumerate(example.iter_rows(named=True)):
        answer = loaded.predictor.predict_one(row)
        assert answer["unknown"] == []
        assert answer["cluster"] == frame["cluster"][i]
        assert answer["probabilities"] == {
            "0": frame["p_0"][i],
            "1": frame["p_1"][i],
            "2": frame["p_2"][i],
        }
        assert answer["probability"] == max(answer["probabilities"].values())
        assert sum(answer["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)


def test_an_old_distribution_model_is_deterministic(old_project: Path) -> None:
    runs = old_project / "runs"
    example = pl.read_parquet(runs / "eta-small" / ETA_OLD_RUN / "model" / "input_example.parquet")
    first = load_predictor(runs, "eta-small").predictor
    second = load_predictor(runs, "eta-small", ETA_OLD_RUN).predictor
    a = first.predict_frame(example)
    assert a.equals(first.predict_frame(example))
    assert a.equals(second.predict_frame(example))
    assert a.equals(second.predict_frame(example.clone()))


def test_an_old_fleet_model_is_a_run_error_saying_to_rerun(old_project: Path) -> None:
    with pytest.raises(RunError) as err:
        load_predictor(old_project / "runs", "fleet-small")
    assert err.value.problem == (
        f"run {FLEET_OLD_RUN} of 'fleet-small' was made by an older opslens (0.1.0) whose "
        "RareDeviceScorer does not serve predictions to the stream, service or UI"
    )
    assert err.value.fix == "re-run it with this version: `opslens run --analysis fleet-small`"
    assert not any(old in sys.modules for old in OLD_PATHS)


def test_streaming_an_old_fleet_run_exits_2_with_one_error_line(
    old_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (old_project / "x.jsonl").write_text('{"device_id": "d1", "readings": []}\n')
    result = run_cli(
        ["stream", "fleet-small", "-p", "project.yaml", "--no-plots", "--input", "x.jsonl"],
        old_project,
        monkeypatch,
    )
    assert result.code == 2
    errors = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: run {FLEET_OLD_RUN} of 'fleet-small' was made by an older opslens (0.1.0) "
        "whose RareDeviceScorer does not serve predictions to the stream, service or UI; "
        "fix: re-run it with this version: `opslens run --analysis fleet-small`"
    ]
    assert "Traceback" not in result.err
    assert result.out == ""


def test_streaming_an_old_distribution_run_through_the_cli(
    old_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [
        {"route": "R03", "hour_band": "night", "vehicle_type": "tram"},
        {"route": "R08", "hour_band": "evening", "vehicle_type": "tram"},
    ]
    (old_project / "x.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = run_cli(
        [
            "stream",
            "eta-small",
            "-p",
            "project.yaml",
            "--no-plots",
            "--input",
            "x.jsonl",
            "--output",
            "out.jsonl",
        ],
        old_project,
        monkeypatch,
    )
    assert result.code == 0, result.err
    lines = [json.loads(x) for x in (old_project / "out.jsonl").read_text().splitlines()]
    expected = load_predictor(old_project / "runs", "eta-small").predictor.predict_frame(
        pl.DataFrame(rows)
    )
    assert [x["line"] for x in lines] == [1, 2]
    assert [x["run_id"] for x in lines] == [ETA_OLD_RUN, ETA_OLD_RUN]
    assert [x["cluster"] for x in lines] == expected["cluster"].to_list()
    assert [x["probabilities"]["2"] for x in lines] == expected["p_2"].to_list()


# --- load_model and the registry -------------------------------------------------------------


def test_load_model_from_the_registry_with_tracking_disabled(old_project: Path) -> None:
    project = load_project(old_project / "project.yaml")
    assert project.tracking.enabled is False
    assert project.runs_root() == old_project / "runs"
    with pytest.raises(RunError) as err:
        load_model(project, "eta-small", "registry")
    assert err.value.problem == (
        "the project has tracking disabled, so there is no registry to load from"
    )
    assert err.value.fix == "use --from latest, or set tracking.enabled: true"
    # "latest" still works
    assert load_model(project, "eta-small", "latest").run_id == ETA_OLD_RUN


def test_load_model_of_an_unknown_analysis(old_project: Path) -> None:
    project = load_project(old_project / "project.yaml")
    with pytest.raises(ConfigError):
        load_model(project, "no-such-analysis")


@pytest.mark.slow
def test_load_registered_without_a_registered_model(tmp_path: Path, isolated_mlflow: None) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    with pytest.raises(RunError) as err:
        load_registered(uri, "eta")
    assert err.value.problem.startswith(f"no registered model 'eta@champion' at {uri} (")
    assert err.value.fix == "run the analysis with tracking enabled, or use --from latest"


@pytest.mark.slow
def test_the_registry_serves_the_run_the_alias_names(tmp_path: Path, isolated_mlflow: None) -> None:
    import mlflow

    from opslens.runner import run_analysis

    name = "eta"
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    project = _project(tmp_path, name, {"uri": uri})
    assert project.tracking.enabled is True
    assert project.tracking_uri() == uri
    trips = make_trips(n_rows=3000, seed=1, n_routes=3).trips

    first = run_analysis(project, name, frames={name: trips})
    assert first.model_version == "1"
    registered = load_model(project, name, "registry")
    latest = load_model(project, name, "latest")
    assert registered.run_id == first.run_id == latest.run_id
    assert registered.run is None
    assert registered.origin == f"MLflow models:/{name}@champion (version 1, run {first.run_id})"
    assert registered.metadata["mlflow_run_id"] == first.mlflow_run_id
    assert isinstance(registered.predictor, PatternPredictor)

    example = pl.read_parquet(first.path / "model" / "input_example.parquet")
    frame = registered.predictor.predict_frame(example)
    assert frame.equals(latest.predictor.predict_frame(example))
    rows = trips.select("route", "hour_band").head(200)
    assert registered.predictor.predict_frame(rows).equals(latest.predictor.predict_frame(rows))
    for row in rows.head(5).iter_rows(named=True):
        assert registered.predictor.predict_one(row) == latest.predictor.predict_one(row)

    # a second run registers version 2 and moves the alias to it, after its commit
    second = run_analysis(project, name, frames={name: trips.head(2500)})
    assert second.model_version == "2"
    again = load_model(project, name, "registry")
    assert again.run_id == second.run_id
    assert again.origin == f"MLflow models:/{name}@champion (version 2, run {second.run_id})"
    client = mlflow.MlflowClient(tracking_uri=uri)
    assert str(client.get_model_version_by_alias(name, "champion").version) == "2"
    assert str(client.get_model_version_by_alias(name, "current").version) == "2"
    assert client.get_model_version(name, "1").aliases == []
    # a project registered before opslens 0.3 has only `current`: champion falls back to it
    client.delete_registered_model_alias(name, "champion")
    client.set_registered_model_alias(name, "current", "1")
    old = load_registered(uri, name)
    assert old.run_id == first.run_id and "@current (version 1" in old.origin
    # load_registered puts the process's tracking URI back as it found it
    before = mlflow.get_tracking_uri()
    load_registered(uri, name)
    assert mlflow.get_tracking_uri() == before
