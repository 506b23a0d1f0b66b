"""The segments recipe in service, through the CLI and fresh processes, on a tmp MLflow (sqlite):
drift-driven retraining and promotion, a worse challenger kept out, the alias audit, the
champion loaded elsewhere, bad batches, a retraining killed midway, concurrent writers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml
from tests.fakes.cli import run_cli

from opslens.api import load_project
from opslens.core.lifecycle import CHALLENGER, CHAMPION
from opslens.lifecycle.registry import open_stores
from opslens.runner import run_analysis
from opslens.runner.lifecycle import PAUSE_ENV, Deployment
from opslens.synthetic.patients import make_patient_batches

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[3]
DRIFT_AT = 6
NAME = "patients"


def make_project(folder: Path, n_batches: int = 8, **monitor: Any) -> Path:
    spec = yaml.safe_load((ROOT / "examples" / "segments" / "project.yaml").read_text())
    a = spec["analyses"][0]
    a["source"]["options"] = {"n_rows": 2000}
    a["params"]["lgb_series"] = {"n_estimators": 60}
    a["params"]["lgb_resource"] = {"n_estimators": 60}
    a["params"]["monitor"].update(monitor)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "project.yaml").write_text(yaml.safe_dump(spec))
    for i, b in enumerate(make_patient_batches(n_batches, 400, drift_batch=DRIFT_AT, seed=0)):
        b.frame.write_parquet(folder / f"b{i}.parquet")
    return folder / "project.yaml"


def champion_pipeline(project_file: Path) -> tuple[Deployment, Any]:
    """Train in this process (a run of the train pipeline), registered as champion."""
    project = load_project(project_file)
    result = run_analysis(project, NAME, reason="initial training", promote=True)
    life = Deployment(project, NAME, *open_stores(project, NAME))
    assert life.ensure_champion() == result.model_version == "1"
    return life, result.predictor().model


@pytest.fixture(scope="module")
def trained(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, Deployment, Any]:
    folder = tmp_path_factory.mktemp("segments")
    project_file = make_project(folder, n_batches=2, noise_threshold=0.99)
    life, pipe = champion_pipeline(project_file)
    return folder, life, pipe


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT / "src")}


def test_drift_retrains_at_the_planted_batch_and_promotes(tmp_path: Path, monkeypatch) -> None:
    make_project(tmp_path)
    fired = []
    for i in range(8):
        r = run_cli(["batch", NAME, "--input", f"b{i}.parquet"], tmp_path, monkeypatch)
        assert r.code == 0, r.err
        assert "400 rows in, 400 scored, 0 rejected" in r.out
        if "retrained (automatic: noise ratio" in r.out:
            fired.append(i)
            assert "promoted" in r.out
    assert fired and DRIFT_AT <= fired[0] <= DRIFT_AT + 2 and len(fired) == 1, fired
    assert (tmp_path / "b0.predictions.parquet").is_file()
    hist = run_cli(["models", "history", NAME], tmp_path, monkeypatch)
    lines = hist.out.strip().splitlines()
    assert lines[0].startswith("champion: version 1 (was -)") and "initial training" in lines[0]
    assert lines[1].startswith("challenger: version 2") and "retrained (automatic" in lines[1]
    assert (
        lines[2].startswith("champion: version 2 (was 1)") and "promoted over version 1" in lines[2]
    )
    assert "until now" not in lines[0], "the first champion's term ended"
    health = run_cli(["health", NAME], tmp_path, monkeypatch)
    assert health.code == 0 and "champion version 2" in health.out and "8 batches" in health.out
    import mlflow

    from opslens.tracking.runs import list_runs

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    # every training, batch and retraining is a run folder (its pipeline in the manifest)
    # and a tracked MLflow run of the analysis's experiment
    manifests = [v.manifest for v in list_runs(tmp_path / "runs", NAME)]
    batch_runs = [m for m in manifests if m.get("pipeline") == "batch"]
    assert len(batch_runs) == 8
    assert [m.get("pipeline") for m in manifests].count("train") == 1
    (retraining,) = [m for m in manifests if m.get("pipeline") == "retrain"]
    assert retraining["reason"].startswith("automatic: noise ratio")
    tracked = client.get_run(retraining["mlflow_run_id"])
    for key in ("challenger_rmse_series", "champion_rmse_series", "rmse_ratio"):
        assert key in tracked.data.metrics
    assert tracked.info.experiment_id == client.get_experiment_by_name(NAME).experiment_id
    runs = client.search_runs([tracked.info.experiment_id])
    children = {
        r.info.run_name
        for r in runs
        if r.data.tags.get("mlflow.parentRunId") == retraining["mlflow_run_id"]
    }
    assert children == {
        "preprocessing",
        "hdbscan",
        "knn-fallback",
        "series-models",
        "resource-models",
        "performance-report",
    }
    mv = client.get_model_version_by_alias(NAME, CHAMPION)
    assert str(mv.version) == "2"
    assert str(getattr(mv, "current_stage", "None")) == "None", "aliases only, never stages"


def test_a_worse_challenger_keeps_the_champion(tmp_path: Path, monkeypatch) -> None:
    make_project(tmp_path, n_batches=1, expanding_window_size=200)
    assert run_cli(["batch", NAME, "--input", "b0.parquet"], tmp_path, monkeypatch).code == 0
    r = run_cli(["retrain", NAME, "--reason", "tiny window"], tmp_path, monkeypatch)
    assert r.code == 0, r.err
    assert "retrained (manual: tiny window)" in r.out and "champion kept" in r.out
    lines = run_cli(["models", "history", NAME], tmp_path, monkeypatch).out.strip().splitlines()
    assert len(lines) == 2 and lines[1].startswith("challenger: version 2")
    health = run_cli(["health", NAME], tmp_path, monkeypatch).out
    assert "champion version 1, challenger version 2" in health


def test_the_champion_in_a_fresh_process_predicts_identically(trained, tmp_path: Path) -> None:
    folder, life, model = trained
    batch = folder / "b0.parquet"
    out = tmp_path / "fresh.parquet"
    code = (
        "import sys, polars as pl\n"
        "from opslens.tracking.models import load_registered\n"
        f"p = load_registered({life.registry.uri!r}, {NAME!r}, 'champion').predictor\n"
        f"p.predict_frame(pl.read_parquet({str(batch)!r})).write_parquet({str(out)!r})\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=_env(), cwd=folder, timeout=300)
    fresh = pl.read_parquet(out)
    assert fresh.equals(model.score(pl.read_parquet(batch)))


def _bad(folder: Path, name: str, frame: pl.DataFrame) -> str:
    frame.write_parquet(folder / name)
    return name


def test_bad_batches_get_one_line_errors_or_counted_rejections(trained, monkeypatch) -> None:
    folder, _, _ = trained
    good = pl.read_parquet(folder / "b1.parquet").head(50)
    cases = {
        "missing": (good.drop("age"), "error: column 'age' is missing from the batch; fix:"),
        "dtype": (
            good.with_columns(pl.col("bmi").cast(pl.String)),
            "error: column 'bmi' of the batch is String, not a number; fix:",
        ),
        "empty": (good.head(0), "error: the batch has no rows; fix:"),
    }
    for name, (frame, message) in cases.items():
        r = run_cli(
            ["batch", NAME, "--input", _bad(folder, f"{name}.parquet", frame)], folder, monkeypatch
        )
        assert r.code == 2, (name, r.err)
        assert r.err.startswith(message) and r.err.count("\n") == 1, (name, r.err)
    rows = good.with_columns(
        age=pl.when(pl.int_range(pl.len()) < 3).then(None).otherwise(pl.col("age")),
        ward=pl.when(pl.int_range(pl.len()).is_between(3, 4))
        .then(pl.lit("mars"))
        .otherwise(pl.col("ward")),
        bmi=pl.when(pl.int_range(pl.len()) == 5).then(float("nan")).otherwise(pl.col("bmi")),
    )
    r = run_cli(["batch", NAME, "--input", _bad(folder, "rows.parquet", rows)], folder, monkeypatch)
    assert r.code == 0, r.err
    assert (
        "50 rows in, 44 scored, 6 rejected (null or non-finite age: 3, unseen category: 2, "
        "null or non-finite bmi: 1)"
    ) in r.out
    written = pl.read_parquet(folder / "rows.predictions.parquet")
    assert written.height == 50 and (written["status"] == "rejected").sum() == 6
    one = run_cli(
        ["batch", NAME, "--input", _bad(folder, "one.parquet", good.head(1))], folder, monkeypatch
    )
    assert one.code == 0 and "1 rows in, 1 scored, 0 rejected" in one.out
    health = run_cli(["health", NAME], folder, monkeypatch)
    assert "errors: 3 {'batch': 3}" in health.out and "rows rejected: 6" in health.out


def test_a_retraining_killed_midway_leaves_the_champion(tmp_path: Path) -> None:
    project_file = make_project(tmp_path, n_batches=1)
    life, _ = champion_pipeline(project_file)
    life.batch(pl.read_parquet(tmp_path / "b0.parquet"))  # labelled rows to retrain on
    pause = tmp_path / "pause"
    env = {**_env(), PAUSE_ENV: f"retrain:challenger-registered={pause}"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "opslens.cli",
            "retrain",
            NAME,
            "--reason",
            "killed",
            "-p",
            str(project_file),
        ],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 300
    while not (pause / "reached").exists():
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() < deadline, "the retraining never reached its checkpoint"
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    assert life.registry.version_of(CHAMPION) == "1"
    assert life.registry.version_of(CHALLENGER) == "2"
    moves = life.alias_history()
    assert [(m["alias"], m["version"]) for m in moves] == [("champion", "1"), ("challenger", "2")]


@pytest.mark.services
def test_two_batch_processes_at_once_lose_no_history_entry(
    trained, pg_url: str, pg_schema: str
) -> None:
    folder, _, _ = trained
    spec = yaml.safe_load((folder / "project.yaml").read_text())
    url = (
        pg_url.replace("postgresql://", "postgresql+psycopg://")
        + f"?options=-csearch_path%3D{pg_schema}"
    )
    spec["analyses"][0]["params"]["monitor"]["history_url"] = url
    (folder / "pg.yaml").write_text(yaml.safe_dump(spec))
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "opslens.cli",
                "batch",
                NAME,
                "--input",
                f"b{i}.parquet",
                "-o",
                f"pg{i}.parquet",
                "-p",
                "pg.yaml",
            ],
            env=_env(),
            cwd=folder,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in (0, 1)
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()
    from opslens.lifecycle.history import HistoryStore

    store = HistoryStore(url)
    batches = store.batches(NAME)
    assert len(batches) == 2 and {b["batch"] for b in batches} == {1, 2}
    assert sorted(b["rows_in"] for b in batches) == [400, 400]
    store.dispose()


def test_retrain_if_due_and_its_options(trained, monkeypatch) -> None:
    folder, _, _ = trained
    r = run_cli(["retrain", NAME, "--if-due"], folder, monkeypatch)
    assert r.code == 0 and r.out.strip() == f"{NAME}: no retraining due"
    for args in ([], ["--if-due", "--reason", "x"]):
        r = run_cli(["retrain", NAME, *args], folder, monkeypatch)
        assert r.code == 2 and r.err.startswith(
            "error: give exactly one of --reason TEXT or --if-due"
        )
    r = run_cli(["batch", "nosuch", "--input", "b0.parquet"], folder, monkeypatch)
    assert r.code == 2 and r.err.startswith("error: no analysis named 'nosuch'")
