"""The service on real runs registered in MLflow: answers equal the library's, and a live promotion.

One project holds a distribution and a fleet analysis (the demo projects, made
small). Both are run with MLflow tracking; the distribution analysis is run a
second time on other data, so the registry holds two versions whose answers
differ. The service serves ``@champion`` over real HTTP.
"""

from __future__ import annotations

import threading
from typing import Any

import httpx
import mlflow
import polars as pl
import pytest

from opslens.api import load_project
from opslens.online.service import ServiceSettings, create_app
from opslens.recipes import get_recipe
from opslens.runner import load_input, run_analysis
from opslens.synthetic.fleet import make_fleet
from opslens.synthetic.trips import make_trips
from opslens.tracking.models import load_registered
from tests.e2e.service.helpers import LiveServer, wait_for

pytestmark = pytest.mark.slow

PROJECT = """
tracking: {uri: "sqlite:///mlflow.db"}
analyses:
  - name: trip-eta
    recipe: distribution
    source: {kind: file, path: trips.parquet}
    columns: {time: started_at, target: duration_min, categorical: [route, hour_band, vehicle_type]}
    params: {min_combination_size: 20, k_max: 5, unit: min, xgboost: {n_estimators: 20}}
  - name: device-fleet
    recipe: fleet
    source: {kind: file, path: readings.parquet}
    columns: {entity: device_id, time: timestamp, metrics: [temperature, vibration, current]}
    params:
      failures: {path: failures.csv}
      lead_time: {window: 3d, step: 1d, horizon: 10d, top_k: 5}
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = tmp_path_factory.mktemp("served")
    fleet = make_fleet(n_devices=40, n_points=240, n_failing=4, seed=2)
    fleet.readings.write_parquet(folder / "readings.parquet")
    fleet.truth.filter(pl.col("failed")).select("device_id", "failure_time").write_csv(
        folder / "failures.csv"
    )
    (folder / "project.yaml").write_text(PROJECT)
    project = load_project(folder / "project.yaml")
    for seed in (0, 1):  # two versions of trip-eta, trained on different trips
        make_trips(n_rows=3000, seed=seed, n_routes=3).trips.write_parquet(folder / "trips.parquet")
        run_analysis(project, "trip-eta")
    client = mlflow.MlflowClient(tracking_uri=project.tracking_uri())
    for version in ("1", "2"):
        client.set_registered_model_alias("trip-eta", f"trained-{version}", version)
    client.set_registered_model_alias("trip-eta", "champion", "1")
    return project


def _instances(project: Any, name: str) -> list[dict[str, Any]]:
    analysis = project.analysis(name)
    spec = get_recipe(analysis.recipe).demo
    return [dict(r) for r in spec.instances(load_input(analysis).frame, analysis)]


@pytest.fixture(scope="module")
def with_fleet(project: Any) -> Any:
    run_analysis(project, "device-fleet")
    # this small fleet (the old generator, 40 devices) loses to its own-history baseline, so
    # the gate gives it no champion; what is tested here is serving, so the alias is forced
    client = mlflow.MlflowClient(tracking_uri=project.tracking_uri())
    client.set_registered_model_alias("device-fleet", "champion", "1")
    return project


def test_answers_equal_the_librarys(with_fleet: Any) -> None:
    project = with_fleet
    uri = project.tracking_uri()
    app = create_app(ServiceSettings(project=project.root / "project.yaml"))
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        models = {m["analysis"]: m for m in client.get("/models").json()["models"]}
        assert models["trip-eta"]["version"] == "1"
        assert models["device-fleet"]["version"] == "1"
        for name in ("trip-eta", "device-fleet"):
            library = load_registered(uri, name).predictor
            instances = _instances(project, name)
            good = instances[:-1]  # the last demo instance is the refused / unseen one
            expected = [library.predict_one(i) for i in good]
            singles = [client.post(f"/predict/{name}", json=i) for i in good]
            assert [r.json()["answer"] for r in singles] == expected
            assert {r.json()["run_id"] for r in singles} == {models[name]["run_id"]}
            batch = client.post(f"/predict/{name}", json={"instances": good})
            assert batch.json()["answers"] == expected
        unseen = _instances(project, "trip-eta")[-1]
        answer = client.post("/predict/trip-eta", json=unseen).json()["answer"]
        assert answer["unknown"] == ["route"]
        assert answer == load_registered(uri, "trip-eta").predictor.predict_one(unseen)
        short = _instances(project, "device-fleet")[-1]
        r = client.post("/predict/device-fleet", json=short)
        assert r.status_code == 422
        # the schema publishes the model's minimum (3 readings), so the refusal names the field
        (error,) = r.json()["detail"]
        assert error["loc"] == ["body", "readings"]
        assert error["msg"].startswith("List should have at least 3 items")


def test_a_promotion_during_a_stream_of_requests_loses_none(project: Any) -> None:
    uri = project.tracking_uri()
    instance = _instances(project, "trip-eta")[0]
    by_version = {
        v: load_registered(uri, "trip-eta", f"trained-{v}").predictor.predict_one(instance)
        for v in "12"
    }
    assert by_version["1"] != by_version["2"]  # the two versions are told apart by their answers
    app = create_app(ServiceSettings(project=project.root / "project.yaml", poll_seconds=0.2))
    answers: list[dict[str, Any]] = []
    failures: list[str] = []
    done = threading.Event()

    def stream(url: str) -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            while not done.is_set():
                r = client.post("/predict/trip-eta", json=instance)
                if r.status_code == 200:
                    answers.append(r.json())
                else:
                    failures.append(r.text)

    client = mlflow.MlflowClient(tracking_uri=uri)
    try:
        with LiveServer(app) as server:
            threads = [threading.Thread(target=stream, args=(server.url,)) for _ in range(3)]
            for t in threads:
                t.start()
            try:
                wait_for(lambda: len(answers) >= 50, "50 answers from version 1")
                client.set_registered_model_alias("trip-eta", "champion", "2")
                wait_for(
                    lambda: len(answers) >= 200 and any(a["version"] == "2" for a in answers[-20:]),
                    "answers from version 2",
                )
            finally:
                done.set()
                for t in threads:
                    t.join()
    finally:
        client.set_registered_model_alias("trip-eta", "champion", "1")
    assert failures == []
    versions = [a["version"] for a in answers]
    assert {"1", "2"} == set(versions)
    for a in answers:
        assert a["answer"] == by_version[a["version"]]  # made by the version it names, never mixed
