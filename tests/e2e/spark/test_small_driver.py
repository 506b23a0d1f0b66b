"""Propensity with ``engine: spark`` keeps a small driver: the events and features stay on the
executors, and the driver collects only small answers and the training sample.

A clickstream written as Parquet is the source (read by the executors). The run on
``local[2]`` and on the loopback cluster (a master and two workers, conftest.py) gives
the same metrics, facts and input fingerprint as ``engine: local``, with the training
sample active (``max_train_rows`` below the train rows: the same rows are sampled on
both engines). Every frame the driver collects is recorded: none holds the events, and
no feature-wide frame is larger than the training sample.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import opslens.recipes as registry
from opslens.config import ProjectConfig
from opslens.runner import run_analysis
from opslens.synthetic.clickstream import make_clickstream
from tests.e2e.spark.conftest import CLUSTER_CONF, recorded_run
from tests.fakes.spark_cluster import LoopbackCluster

SAMPLE_ROWS = 3_000  # params.models.max_train_rows: below the train rows, so a sample is taken


def _project(folder: Path, events: Path, engine: str, master: str = "local[2]") -> ProjectConfig:
    conf = CLUSTER_CONF if master.startswith("spark://") else {}
    spark = {"master": master, "rows_per_task": 20_000, "conf": conf}
    analysis = {
        "name": "shop",
        "recipe": "propensity",
        "source": {"kind": "file", "path": str(events)},
        "columns": {
            "entity": "user_id",
            "group": "item_id",
            "target": "event_type",
            "time": "timestamp",
        },
        "random_state": 7,
        "params": {
            "features": {"every": "2d", "lookback": "7d", "horizon": "4d"},
            "models": {"n_estimators": 40, "bootstrap": 200, "max_train_rows": SAMPLE_ROWS},
        },
    }
    text = json.dumps(
        {
            "engine": engine,
            "spark": spark,
            "runs_dir": str(folder / "runs"),
            "tracking": {"enabled": False},
            "analyses": [analysis],
        }
    )
    (folder / "project.yaml").write_text(text)
    return registry.load_project(folder / "project.yaml")


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """400 users over 40 days as one Parquet file, as a user would give them."""
    path = tmp_path_factory.mktemp("events") / "events.parquet"
    stream = make_clickstream(seed=11, num_users=400, num_items=60, num_days=40)
    stream.events.write_parquet(path, row_group_size=5_000)
    return path


@pytest.fixture(scope="module")
def local_run(events: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    project = _project(tmp_path_factory.mktemp("local"), events, "local")
    return run_analysis(project, "shop")


def _spark_run(
    events: Path, folder: Path, master: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[Any, list[tuple[int, int]]]:
    """The run on Spark at ``master``, and (height, width) of every frame the driver collected."""
    return recorded_run(_project(folder, events, "spark", master), "shop", monkeypatch)


def _check(local: Any, spark: Any, seen: list[tuple[int, int]]) -> None:
    assert spark.metrics == local.metrics  # every headline metric, exactly
    assert spark.facts == {**local.facts, "analysis": spark.facts["analysis"]}
    train = local.facts["train"]
    n_events = local.facts["data-gen"]["events"]
    assert train["negative_weight"] > 1.0  # the sample was taken ...
    assert train["sample_rows"] < train["train_rows"]  # ... and is smaller than the split
    assert train["sample_rows"] < SAMPLE_ROWS * 1.2
    fingerprints = [r.view.manifest["input"]["fingerprint"] for r in (local, spark)]
    assert fingerprints[0] == fingerprints[1] and len(fingerprints[0]) == 16
    # the driver never held the events nor a feature table beyond the sample
    assert seen, "no collect recorded"
    assert max(h for h, _ in seen) < n_events
    wide = [h for h, w in seen if w >= 20]  # frames with the feature columns
    assert wide and max(wide) <= train["sample_rows"]
    # the engine's tables are Parquet folders written by the executors, read like files
    folder = spark.path / "tables" / "train_features.parquet"
    assert folder.is_dir() and any(folder.glob("part-*.parquet"))
    a, b = local.table("test_features"), spark.table("test_features")
    assert a.sort(a.columns).equals(b.sort(b.columns).select(a.columns).cast(a.schema))


def test_small_driver_on_local_2_equals_local(
    events: Path, local_run: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spark, seen = _spark_run(events, tmp_path, "local[2]", monkeypatch)
    _check(local_run, spark, seen)


def test_small_driver_on_the_cluster_equals_local(
    events: Path,
    local_run: Any,
    cluster: LoopbackCluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spark, seen = _spark_run(events, tmp_path, cluster.master_url, monkeypatch)
    _check(local_run, spark, seen)
    log = (spark.path / "run.log").read_text()
    assert "on the spark engine (the rows stay there)" in log
