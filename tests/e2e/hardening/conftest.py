"""A small trips project for the hardening tests: one analysis, fast to run (a few seconds)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from opslens.synthetic.trips import make_trips
from opslens.tracking.runs import RunView, open_run

MESSAGE = "interrupted; the previous complete run is untouched"


def stage_names() -> list[str]:
    """The distribution recipe's stages, in order (the tests follow the recipe as it grows)."""
    from opslens.recipes import get_recipe

    return get_recipe("distribution").stage_names()


def project_yaml(
    runs: str = "runs", *, tracking: bool = False, extra: str = "", data: str = "trips.parquet"
) -> str:
    """The project file text: tracking off (or MLflow in sqlite beside it)."""
    track = "{uri: 'sqlite:///mlflow.db'}" if tracking else "{enabled: false}"
    return f"""
tracking: {track}
runs_dir: {runs}
analyses:
  - name: trip-eta
    recipe: distribution
    source: {{kind: file, path: {data}}}
    columns: {{target: duration_min, categorical: [route, hour_band]}}
    params: {{min_combination_size: 20, xgboost: {{n_estimators: 10}}}}
{extra}"""


@pytest.fixture(scope="session")
def trips_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("trips") / "trips.parquet"
    make_trips(n_rows=3_000, seed=1, n_routes=4).trips.write_parquet(path)
    return path


@pytest.fixture
def project(tmp_path: Path, trips_file: Path) -> Path:
    """A project folder (tracking off) with the data; no run yet."""
    (tmp_path / "trips.parquet").symlink_to(trips_file)
    (tmp_path / "project.yaml").write_text(project_yaml(data=str(trips_file)))
    return tmp_path


@pytest.fixture(scope="session")
def baseline(tmp_path_factory: pytest.TempPathFactory, trips_file: Path) -> Path:
    """A project folder with one complete run (tracking off), made once for the session."""
    from opslens.api import load_project
    from opslens.runner import run_analysis

    folder = tmp_path_factory.mktemp("baseline")
    (folder / "project.yaml").write_text(project_yaml(data=str(trips_file)))
    run_analysis(load_project(folder / "project.yaml"), "trip-eta")
    return folder


@pytest.fixture
def first(project: Path, baseline: Path) -> RunView:
    """The project with a copy of the baseline's complete run; that run."""
    shutil.copytree(baseline / "runs", project / "runs", symlinks=True)
    return open_run(project / "runs", "trip-eta")


@pytest.fixture
def tracked(tmp_path: Path, trips_file: Path) -> Path:
    """A project folder with MLflow tracking in ./mlflow.db; no run yet."""
    (tmp_path / "trips.parquet").symlink_to(trips_file)
    (tmp_path / "project.yaml").write_text(project_yaml(tracking=True))
    return tmp_path


def latest(folder: Path, runs: str = "runs") -> str:
    return (folder / runs / "trip-eta" / "latest").read_text().strip()


def opslens(folder: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start `opslens ARGS` as a child process in ``folder`` (stderr piped, line by line)."""
    return subprocess.Popen(
        [sys.executable, "-m", "opslens.cli", *args],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200", **(env or {})},
    )


@pytest.fixture
def isolated_mlflow(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Undo MLflow's process-wide state after an in-process tracked run."""
    import mlflow
    from mlflow.tracking import fluent
    from mlflow.tracking._tracking_service import utils

    monkeypatch.setattr(utils, "_tracking_uri", utils._tracking_uri)
    monkeypatch.setattr(fluent, "_active_experiment_id", fluent._active_experiment_id)
    for var in (
        "MLFLOW_TRACKING_URI",
        "MLFLOW_EXPERIMENT_ID",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR",
    ):
        monkeypatch.setenv(var, "")
        monkeypatch.delenv(var)
    yield
    while mlflow.active_run() is not None:
        mlflow.end_run()


def mlflow_statuses(folder: Path) -> dict[str, str]:
    """run name -> MLflow status of every run of the trip-eta experiment."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("trip-eta")
    if experiment is None:
        return {}
    runs = client.search_runs([experiment.experiment_id], max_results=500)
    return {r.info.run_name: r.info.status for r in runs}
