"""Distribution with ``engine: spark`` keeps a small driver: the rows stay on the executors, the
histograms are counted there, and the driver holds only counts and a bounded sample of rows.

Trips written as one Parquet file are the source (read by the executors), with
``params.max_rows`` below the kept rows, so the row-level statistics (bin edges,
profiles, the classifier, the scores) use a seeded uniform sample drawn per row
position, the same rows on every engine. The run on ``local[2]`` and on the loopback
cluster (a master and two workers, conftest.py) gives the same metrics, facts,
histograms and input fingerprint as ``engine: local``; the planted shapes are found
from the sample; every frame the driver collects is recorded, and none is larger than
the sample (the source has four times as many rows).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from sklearn.metrics import adjusted_rand_score

import opslens.recipes as registry
from opslens.config import ProjectConfig
from opslens.runner import run_analysis
from opslens.synthetic.trips import make_trips
from tests.e2e.spark.conftest import CLUSTER_CONF, recorded_run
from tests.fakes.spark_cluster import LoopbackCluster

N_ROWS = 40_000
MAX_ROWS = 10_000  # params.max_rows: a quarter of the rows, so a sample is held
CATEGORICAL = ["route", "hour_band", "vehicle_type"]


def _project(folder: Path, trips: Path, engine: str, master: str = "local[2]") -> ProjectConfig:
    conf = CLUSTER_CONF if master.startswith("spark://") else {}
    analysis = {
        "name": "eta",
        "recipe": "distribution",
        "source": {"kind": "file", "path": str(trips)},
        "columns": {"time": "started_at", "target": "duration_min", "categorical": CATEGORICAL},
        "params": {"min_combination_size": 30, "k_max": 6, "max_rows": MAX_ROWS, "unit": "min"},
    }
    text = json.dumps(
        {
            "engine": engine,
            "spark": {"master": master, "rows_per_task": 10_000, "conf": conf},
            "runs_dir": str(folder / "runs"),
            "tracking": {"enabled": False},
            "analyses": [analysis],
        }
    )
    (folder / "project.yaml").write_text(text)
    return registry.load_project(folder / "project.yaml")


@pytest.fixture(scope="module")
def trips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40,000 trips of three planted duration shapes as one Parquet file."""
    path = tmp_path_factory.mktemp("trips") / "trips.parquet"
    make_trips(n_rows=N_ROWS, seed=3).trips.write_parquet(path, row_group_size=4_000)
    return path


@pytest.fixture(scope="module")
def local_run(trips: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    project = _project(tmp_path_factory.mktemp("local"), trips, "local")
    return run_analysis(project, "eta")


def test_the_sample_is_held_and_the_histograms_count_every_row(local_run: Any) -> None:
    prep = local_run.facts["prepare"]
    assert prep["rows_kept"] == N_ROWS - prep["rows_dropped_small"] > 30_000
    # a seeded uniform sample of about max_rows (binomial: sd ~ 87 rows)
    assert abs(prep["rows_held"] - MAX_ROWS) < 500
    assert local_run.table("quantized").height == prep["rows_held"]
    hist = local_run.table("histograms")
    assert int(hist["n_rows"].sum()) == prep["rows_kept"] - prep["holdout_rows"]
    # the planted shapes are found from the sample
    truth = make_trips(n_rows=N_ROWS, seed=3).truth.with_columns(
        pl.concat_str([pl.format(f"{c}={{}}", c) for c in CATEGORICAL], separator="|").alias("comb")
    )
    joined = local_run.table("clusters").join(truth.select("comb", "shape"), on="comb")
    assert joined.height == local_run.table("clusters").height
    assert adjusted_rand_score(joined["shape"], joined["cluster"]) >= 0.95
    assert local_run.metrics["beats_baselines"] == 1.0


def _spark_run(
    trips: Path, folder: Path, master: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[Any, list[tuple[int, int]]]:
    """The run on Spark at ``master``, and (height, width) of every frame the driver collected."""
    return recorded_run(_project(folder, trips, "spark", master), "eta", monkeypatch)


def _check(local: Any, spark: Any, seen: list[tuple[int, int]]) -> None:
    assert spark.metrics == local.metrics  # every headline metric, exactly
    assert spark.facts == {**local.facts, "analysis": spark.facts["analysis"]}
    fingerprints = [r.view.manifest["input"]["fingerprint"] for r in (local, spark)]
    assert fingerprints[0] == fingerprints[1] and len(fingerprints[0]) == 16
    a, b = local.table("histograms"), spark.table("histograms")
    assert_frame_equal(a.sort("comb"), b.sort("comb"))
    # the driver never held the trips: at most the sample
    held = local.facts["prepare"]["rows_held"]
    assert seen and max(h for h, _ in seen) <= held < N_ROWS / 3
    # the prepared rows are a Parquet folder written by the executors
    folder = spark.path / "tables" / "prepared.parquet"
    assert folder.is_dir() and any(folder.glob("part-*.parquet"))


def test_small_driver_on_local_2_equals_local(
    trips: Path, local_run: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spark, seen = _spark_run(trips, tmp_path, "local[2]", monkeypatch)
    _check(local_run, spark, seen)


def test_small_driver_on_the_cluster_equals_local(
    trips: Path,
    local_run: Any,
    cluster: LoopbackCluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spark, seen = _spark_run(trips, tmp_path, cluster.master_url, monkeypatch)
    _check(local_run, spark, seen)
    log = (spark.path / "run.log").read_text()
    assert "on the spark engine (the rows stay there)" in log
