"""The versioned folder registry and the same version under an MLflow alias."""

from __future__ import annotations

import json
import os
from pathlib import Path

import mlflow
import polars as pl
import pytest
import yaml

from opslens.api import load_project
from opslens.errors import RunError
from opslens.runner import run_analysis
from opslens.tracking.versions import load_version, publish_latest

PROJECT = """
tracking: {{uri: "sqlite:///mlflow.db"}}
analyses:
  - name: axes
    recipe: residual
    source: {{kind: synthetic, generator: axes, seed: 1, options: {{n_samples: 400}}}}
    columns: {{time: ts}}
    params: {{registry: {{root_dir: models, version_tag: {tag}}}}}
"""


def test_versions_latest_pointer_and_mlflow_alias(tmp_path: Path) -> None:
    path = tmp_path / "project.yaml"
    path.write_text(PROJECT.format(tag="null"))
    project = load_project(path)
    first = run_analysis(project, "axes")  # a complete run is published by the run itself
    v1 = tmp_path / "models" / "v1"
    assert v1 == tmp_path / "models" / "v1"
    assert sorted(p.name for p in v1.iterdir()) == [
        "meta.yaml",
        "metrics.csv",
        "models.joblib",
        "prep_stats.json",
        "thresholds.json",
    ]
    thresholds = json.loads((v1 / "thresholds.json").read_text())
    assert thresholds == first.facts["thresholds"]["axes"]
    assert set(thresholds["axis1"]) == {
        "MinC",
        "MaxC",
        "T_long_steps",
        "T_short_steps",
        "dt_seconds",
        "policy",
    }
    assert pl.read_csv(v1 / "metrics.csv").height == 6  # 3 axes x train/test
    latest = tmp_path / "models" / "latest"
    assert latest.is_symlink() and os.readlink(latest) == "v1"

    path.write_text(PROJECT.format(tag="release-2"))
    project = load_project(path)
    second = run_analysis(project, "axes")
    v2 = tmp_path / "models" / "release-2"
    assert os.readlink(latest) == "release-2"
    meta = yaml.safe_load((v2 / "meta.yaml").read_text())
    assert meta["run_id"] == second.run_id and meta["mlflow"]["version"] == "2"
    client = mlflow.MlflowClient(tracking_uri=project.tracking_uri())
    assert str(client.get_model_version_by_alias("axes", "tag-v1").version) == "1"
    assert str(client.get_model_version_by_alias("axes", "release-2").version) == "2"
    # the folder's model answers as the run's does
    predictor, meta = load_version(tmp_path / "models")
    sample = {"ts": "2025-09-01T00:20:00", "axis1": 11.0, "axis2": 19.0, "axis3": 6.0}
    assert predictor.predict_one(sample) == second.predictor().predict_one(sample)
    # the MLflow alias of a version serves the model of that version
    from opslens.tracking.models import load_registered

    by_alias = load_registered(project.tracking_uri(), "axes", "tag-v1")
    assert by_alias.run_id == first.run_id
    assert by_alias.predictor.predict_one(sample) == first.predictor().predict_one(sample)
    with pytest.raises(RunError, match="version 'release-2' already exists"):
        publish_latest(project, "axes")
    # a rerun with the same tag is refused before it starts (no run it could not publish);
    # the registry keeps its version
    runs = project.runs_root() / "axes"
    before = sorted(p.name for p in runs.iterdir())
    with pytest.raises(RunError, match="version 'release-2' already exists"):
        run_analysis(project, "axes")
    assert sorted(p.name for p in runs.iterdir()) == before
    assert yaml.safe_load((v2 / "meta.yaml").read_text())["run_id"] == second.run_id


def test_latest_is_a_copy_where_links_are_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "project.yaml"
    path.write_text(
        PROJECT.format(tag="a").replace('{uri: "sqlite:///mlflow.db"}', "{enabled: false}")
    )
    project = load_project(path)

    def no_links(*args: object, **kw: object) -> None:
        raise OSError("symbolic links are not available here")

    monkeypatch.setattr(os, "symlink", no_links)
    run_analysis(project, "axes")  # publishes version "a"
    latest = tmp_path / "models" / "latest"
    assert latest.is_dir() and not latest.is_symlink()
    assert (latest / "thresholds.json").read_text() == (
        tmp_path / "models" / "a" / "thresholds.json"
    ).read_text()
    publish_latest(project, "axes", tag="b")
    assert yaml.safe_load((latest / "meta.yaml").read_text())["version_tag"] == "b"
