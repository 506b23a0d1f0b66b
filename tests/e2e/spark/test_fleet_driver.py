"""Fleet with ``engine: spark`` keeps a small driver: the readings stay on the executors.

A fleet written as Parquet is the source (read by the executors, never by the
driver's loader). The run on ``local[2]`` and on the loopback cluster (a master and
two workers, conftest.py) gives the same metrics, facts, fingerprints and input
fingerprint as ``engine: local``. Every frame the driver collects is recorded: the
largest is far below the readings (the daily means, devices × days), and the
fingerprint table comes back as one row per device.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import opslens.recipes as registry
import opslens.runner.stages as stages
from opslens.config import ProjectConfig
from opslens.runner import run_analysis
from opslens.synthetic.fleet import make_fleet
from tests.e2e.spark.conftest import CLUSTER_CONF, recorded_run
from tests.fakes.spark_cluster import LoopbackCluster

DEVICES, POINTS = 120, 400  # hourly readings: about 17 days per device


def _project(folder: Path, data: Path, engine: str, master: str = "local[2]") -> ProjectConfig:
    conf = CLUSTER_CONF if master.startswith("spark://") else {}
    spark = {"master": master, "rows_per_task": 20_000, "conf": conf}
    analysis = {
        "name": "fleet",
        "recipe": "fleet",
        "source": {"kind": "file", "path": str(data / "readings.parquet")},
        "columns": {
            "entity": "device_id",
            "time": "timestamp",
            "metrics": ["temperature", "vibration", "current"],
        },
        "params": {
            "failures": {"path": str(data / "failures.csv")},
            "lead_time": {"window": "3d", "step": "1d", "horizon": "5d", "top_k": 10},
            "rare": {"top_n": 10},
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
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """120 devices × 400 hourly readings as one Parquet file, and the failure list."""
    folder = tmp_path_factory.mktemp("fleet")
    fleet = make_fleet(n_devices=DEVICES, n_points=POINTS, n_failing=8, seed=3)
    fleet.readings.write_parquet(folder / "readings.parquet", row_group_size=10_000)
    failed = fleet.truth.filter(pl.col("failed")).select("device_id", "failure_time")
    failed.write_csv(folder / "failures.csv")
    return folder


@pytest.fixture(scope="module")
def local_run(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    return run_analysis(_project(tmp_path_factory.mktemp("local"), data, "local"), "fleet")


def _spark_run(
    data: Path, folder: Path, master: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[Any, list[tuple[int, int]]]:
    """The run on Spark at ``master``, and (height, width) of every frame the driver collected;
    the driver's source loader fails the run if it is called."""

    def no_loader(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the driver loaded the source")

    monkeypatch.setattr(stages, "load_source", no_loader)
    return recorded_run(_project(folder, data, "spark", master), "fleet", monkeypatch)


def _check(local: Any, spark: Any, seen: list[tuple[int, int]]) -> None:
    assert spark.metrics == local.metrics  # every headline metric, exactly
    assert spark.facts == {**local.facts, "analysis": spark.facts["analysis"]}
    assert local.facts["failures"]["configured"] and local.facts["health"]
    fingerprints = [r.view.manifest["input"]["fingerprint"] for r in (local, spark)]
    assert fingerprints[0] == fingerprints[1]
    a, b = local.table("fingerprints"), spark.table("fingerprints")
    assert_frame_equal(a, b.select(a.columns))  # bit for bit, sorted by device on both
    # the driver never held the readings: its largest frame is the daily means
    readings = local.facts["prepare"]["readings"]
    assert readings > DEVICES * POINTS * 0.9  # make_fleet leaves a few gaps
    assert seen and max(h for h, _ in seen) < readings / 10
    n_features = a.width
    assert (DEVICES, n_features) in seen  # the fingerprint table: one row per device
    # the readings are a Parquet folder written by the executors
    folder = spark.path / "tables" / "readings.parquet"
    assert folder.is_dir() and any(folder.glob("part-*.parquet"))
    r = spark.table("readings")
    assert r.height == readings


def test_fleet_small_driver_on_local_2_equals_local(
    data: Path, local_run: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spark, seen = _spark_run(data, tmp_path, "local[2]", monkeypatch)
    _check(local_run, spark, seen)


def test_fleet_small_driver_on_the_cluster_equals_local(
    data: Path,
    local_run: Any,
    cluster: LoopbackCluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spark, seen = _spark_run(data, tmp_path, cluster.master_url, monkeypatch)
    _check(local_run, spark, seen)
    log = (spark.path / "run.log").read_text()
    assert "on the spark engine (the rows stay there)" in log
    assert "spark device_facts per device_id" in log  # prepare's summary ran on the cluster
