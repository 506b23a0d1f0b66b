"""engine: spark against engine: local on the bundled demo data, on local[2] (one real JVM)
and on a standalone cluster (a master and two workers on loopback, see conftest.py).

The same fingerprints and histograms (to 1e-9; in fact bit for bit), the same
sessions and point-in-time features exactly, the same predictions exactly, for
runs through the runner and for batch scoring with each recipe's model. Java 17
and PySpark are required (CI installs both): nothing here is skipped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import timedelta
from functools import partial
from importlib.resources import files
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import opslens.recipes as registry
from opslens.api import score
from opslens.config import ProjectConfig
from opslens.core.engine import LocalEngine
from opslens.engines import close_engines, make_engine
from opslens.engines.spark import SparkEngine
from opslens.features.events import sessionize
from opslens.features.fingerprints import fleet_fingerprints
from opslens.runner import run_analysis
from opslens.synthetic.clickstream import make_clickstream
from opslens.synthetic.fleet import make_fleet
from tests.e2e.spark.conftest import CLUSTER_CONF

RECIPES = ("distribution", "fleet", "segments", "propensity")
# Debian's libpostgresql-jdbc-java (CI installs it); OPSLENS_TEST_JDBC_JAR names another copy
JAR = os.environ.get("OPSLENS_TEST_JDBC_JAR", "/usr/share/java/postgresql.jar")


def _demo(recipe: str, folder: Path, engine: str, master: str = "local[2]") -> ProjectConfig:
    """The recipe's bundled demo project in ``folder`` (no MLflow), on ``engine`` at ``master``."""
    package = registry.get_recipe(recipe).package
    demo = registry.get_recipe(recipe).demo
    assert demo is not None
    for name in demo.files:
        (folder / name).write_text((files(package) / "demo" / name).read_text(encoding="utf-8"))
    text = (folder / "project.yaml").read_text()
    text = text.replace('tracking: {uri: "sqlite:///mlflow.db"}', "tracking: {enabled: false}")
    conf = {"spark.jars": JAR, **(CLUSTER_CONF if master.startswith("spark://") else {})}
    spark = {"master": master, "rows_per_task": 50000, "conf": conf}
    text = f"engine: {engine}\nspark: {json.dumps(spark)}\n" + text
    (folder / "project.yaml").write_text(text)
    return registry.load_project(folder / "project.yaml")


def engine_at(master: str, folder: Path) -> SparkEngine:
    """The engine a spark project at ``master`` gets (close it with ``close_engines``)."""
    engine = make_engine(_demo("fleet", folder, "spark", master))
    assert isinstance(engine, SparkEngine)
    return engine


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkEngine]:
    """The engine a spark project gets (one local[2] session for the module)."""
    yield engine_at("local[2]", tmp_path_factory.mktemp("s"))
    close_engines()  # one Spark session per process: the cluster module starts its own


_LOCAL_RUNS: dict[str, tuple[ProjectConfig, object]] = {}


def both_runs(recipe: str, spark: SparkEngine, tmp: pytest.TempPathFactory) -> dict[str, object]:
    """The recipe's demo run on the local engine (once per process) and at ``spark.master``."""
    out: dict[str, object] = {"recipe": recipe}
    if recipe not in _LOCAL_RUNS:
        project = _demo(recipe, tmp.mktemp("local"), "local")
        _LOCAL_RUNS[recipe] = (project, run_analysis(project, project.active_analyses()[0].name))
    out["local"] = _LOCAL_RUNS[recipe]
    project = _demo(recipe, tmp.mktemp("spark"), "spark", spark.master)
    out["spark"] = (project, run_analysis(project, project.active_analyses()[0].name))
    return out


@pytest.fixture(scope="module", params=RECIPES)
def runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, spark: SparkEngine
) -> dict[str, object]:
    """The recipe's demo run once on each engine."""
    return both_runs(str(request.param), spark, tmp_path_factory)


def _table(run: object, name: str) -> pl.DataFrame:
    return run.view.table(name)  # type: ignore[attr-defined, no-any-return]


# tables a stage makes with the engine, compared between the two runs (rows sorted first)
ENGINE_TABLES = {
    "distribution": ["histograms"],
    "fleet": ["fingerprints"],
    "segments": [],
    "propensity": ["sessionized_events", "train_features", "val_features", "test_features"],
}


def test_runs_on_both_engines_agree(runs: dict[str, object]) -> None:
    recipe = str(runs["recipe"])
    (_, local), (_, spark) = runs["local"], runs["spark"]  # type: ignore[misc]
    assert local.metrics == spark.metrics  # every headline metric, exactly
    for name in ENGINE_TABLES[recipe]:
        a, b = (_table(run, name) for run in (local, spark))
        a, b = a.sort(a.columns), b.sort(b.columns)
        assert_frame_equal(a, b, check_exact=False, rel_tol=0, abs_tol=1e-9)
        assert a.height > 0
    assert local.facts == {**spark.facts, "analysis": local.facts["analysis"]}


def _scoring_rows(recipe: str, project: ProjectConfig, run: object) -> pl.DataFrame:
    from opslens.runner import load_input

    if recipe == "propensity":
        return _table(run, "test_features")
    analysis = project.active_analyses()[0]
    frame = load_input(analysis, {}).frame
    return frame.head(20_000)


def test_batch_scoring_on_spark_equals_local(runs: dict[str, object], spark: SparkEngine) -> None:
    recipe = str(runs["recipe"])
    project, run = runs["local"]  # type: ignore[misc]
    predictor = run.predictor()
    rows = _scoring_rows(recipe, project, run)
    local = score(predictor, rows, engine=LocalEngine(rows_per_slice=5_000))
    remote = score(predictor, rows, engine=spark)
    assert remote.height == local.height > 0
    if predictor.batch_key is not None:  # one answer per entity: in no particular order
        local, remote = local.sort(predictor.batch_key), remote.sort(predictor.batch_key)
    assert_frame_equal(local, remote)  # exactly, in input order


def test_fingerprints_and_counts_bit_for_bit(spark: SparkEngine) -> None:
    readings = make_fleet(n_devices=120, n_points=400, seed=4).readings
    func = partial(
        fleet_fingerprints,
        entity="device_id",
        time="timestamp",
        metrics=["temperature", "vibration", "current"],
    )
    local = LocalEngine().per_group(readings, "device_id", func).sort("device_id")
    remote = spark.per_group(readings, "device_id", func).sort("device_id")
    assert_frame_equal(local, remote)  # exactly: the same function on the same rows
    binned = readings.with_columns(
        b=(pl.col("temperature").fill_nan(None) // 2).cast(pl.Int64, strict=False)
    )
    counts = [
        e.count_by(binned, ["device_id", "b"]).sort("device_id", "b")
        for e in (LocalEngine(), spark)
    ]
    assert_frame_equal(*counts)


def test_fingerprints_from_parquet_read_by_spark(spark: SparkEngine, tmp_path: Path) -> None:
    readings = make_fleet(n_devices=40, n_points=300, seed=2, n_failing=2).readings
    readings.write_parquet(tmp_path / "readings.parquet")
    func = partial(fleet_fingerprints, entity="device_id", time="timestamp", metrics=["current"])
    remote = spark.per_group(spark.read_parquet(tmp_path / "readings.parquet"), "device_id", func)
    assert_frame_equal(func(readings), remote.sort("device_id"))


def test_a_frame_is_counted_and_sampled_once(
    spark: SparkEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two per-device passes over one Spark frame (fleet's prepare makes two on its source)
    count its rows and read one device's rows once: each is a job over the whole input."""
    readings = make_fleet(n_devices=12, n_points=200, seed=3, n_failing=1).readings
    readings.write_parquet(tmp_path / "readings.parquet")
    frame = spark.read_parquet(tmp_path / "readings.parquet")
    jobs: list[str] = []
    watch = spark.watch

    def watched(what: str, **kw: Any) -> Any:
        jobs.append(what)
        return watch(what, **kw)

    monkeypatch.setattr(spark, "watch", watched)
    func = partial(fleet_fingerprints, entity="device_id", time="timestamp", metrics=["current"])
    first = spark.per_group(frame, "device_id", func)
    again = spark.per_group(frame, "device_id", func)
    assert jobs.count("count rows") == 1 and jobs.count("one entity's rows") == 1, jobs
    assert spark.height(frame) == readings.height and jobs.count("count rows") == 1
    assert_frame_equal(first.sort("device_id"), again.sort("device_id"))
    assert_frame_equal(func(readings), again.sort("device_id"))
    other = spark.read_parquet(tmp_path / "readings.parquet")  # another frame: asked again
    spark.per_group(other, "device_id", func)
    assert jobs.count("count rows") == 2 and jobs.count("one entity's rows") == 2, jobs


def test_fingerprints_from_a_postgres_table_over_jdbc(
    spark: SparkEngine, pg_url: str, pg_schema: str
) -> None:
    import sqlalchemy as sa

    readings = make_fleet(n_devices=30, n_points=200, seed=6, n_failing=2).readings
    engine = sa.create_engine(pg_url)
    readings.write_database(f"{pg_schema}.readings", engine, if_table_exists="replace")
    assert Path(JAR).is_file(), "apt-get install libpostgresql-jdbc-java (CI does)"
    table = spark.read_jdbc(pg_url, f"{pg_schema}.readings")
    func = partial(fleet_fingerprints, entity="device_id", time="timestamp", metrics=["vibration"])
    remote = spark.per_group(table, "device_id", func).sort("device_id")
    assert_frame_equal(func(readings), remote)
    # partitioned: 3 range reads of the timestamp column by the executors (bounds from min/max)
    ranges = spark.read_jdbc(
        pg_url, f"{pg_schema}.readings", partition_column="timestamp", num_partitions=3
    )
    assert ranges.rdd.getNumPartitions() == 3
    assert ranges.count() == readings.height == 5_882  # 30 devices x 200, some readings dropped
    remote = spark.per_group(ranges, "device_id", func).sort("device_id")
    assert_frame_equal(func(readings), remote)


def test_sessions_with_window_functions_equal_local(spark: SparkEngine) -> None:
    events = make_clickstream(num_users=300, num_items=50, num_days=20, seed=3).events
    # ties and gaps exactly at the threshold, unsorted
    extra = events.head(200).with_columns(pl.col("timestamp") + timedelta(minutes=30))
    events = pl.concat([events, events.head(100), extra]).sample(fraction=1.0, shuffle=True, seed=1)
    gap = timedelta(minutes=30)
    order = ["user_id", "timestamp", "_in"]
    indexed = events.with_row_index("_in")
    local = sessionize(indexed, gap=gap).sort(order)
    remote = spark.sessionize(indexed, gap=gap, by="user_id", time="timestamp").sort(order)
    assert_frame_equal(local, remote)
    assert local["session_id"].n_unique() > 300


def test_positions_are_consecutive_in_row_order(spark: SparkEngine, tmp_path: Path) -> None:
    """A row-wise function of the position (the distribution recipe's holdout and sample
    draws) then sees the same positions as on the local engine."""
    frame = pl.DataFrame({"v": list(range(5_000))})
    frame.write_parquet(tmp_path / "v.parquet", row_group_size=500)
    shipped = spark.to_spark(frame)
    conf = spark.session.conf
    before = conf.get("spark.sql.files.maxPartitionBytes")
    conf.set("spark.sql.files.maxPartitionBytes", str((tmp_path / "v.parquet").stat().st_size // 4))
    try:  # the file read in several splits, each a partition
        read = spark.read_parquet(tmp_path / "v.parquet").cache()
        read.count()
    finally:
        conf.set("spark.sql.files.maxPartitionBytes", str(before))
    for sdf in (shipped, read):
        assert sdf.rdd.getNumPartitions() >= 2
        got = spark.collect(spark.positions(sdf, "p")).sort("p")
        assert got["p"].to_list() == list(range(5_000))
        assert got["v"].to_list() == list(range(5_000))  # in the rows' order


def test_a_large_collect_comes_back_in_parts_of_at_most_result_rows(
    spark: SparkEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The driver's JVM holds a few parts' answers at a time, never the whole frame: with
    ``rows`` given, a frame in one partition comes back as ceil(rows / RESULT_ROWS) task
    results, the same rows (propensity's training sample, 2,000,000 rows, took more than a
    1 GB driver heap as 3 task results)."""
    import itertools

    import opslens.engines.spark as module

    monkeypatch.setattr(module, "RESULT_ROWS", 1_000)
    monkeypatch.setattr(module, "_GROUPS", itertools.count(9_000))
    frame = spark.to_spark(pl.DataFrame({"v": list(range(5_000))})).coalesce(1)
    whole = spark.collect(frame)  # job group opslens-9000
    parts = spark.collect(frame, rows=5_000)  # opslens-9001
    assert whole["v"].to_list() == list(range(5_000))
    assert sorted(parts["v"].to_list()) == list(range(5_000))
    tracker = spark.session.sparkContext.statusTracker()

    def result_tasks(group: str) -> int:  # the widest stage of the group's jobs
        jobs = [tracker.getJobInfo(j) for j in tracker.getJobIdsForGroup(group)]
        stages = [tracker.getStageInfo(s) for job in jobs if job for s in job.stageIds]
        return max(s.numTasks for s in stages if s is not None)

    assert result_tasks("opslens-9000") == 1
    assert result_tasks("opslens-9001") == 5


def test_after_a_large_collect_the_driver_jvm_gives_its_grown_heap_back(
    spark: SparkEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large collect (``rows`` above RESULT_ROWS) ends with one full collection of the
    driver's JVM, which returns the heap the parts took to the system (G1 keeps it otherwise:
    1.3 GB resident after a 0.7 GB sample); a small collect does not pay for one."""
    import opslens.engines.spark as module

    monkeypatch.setattr(module, "RESULT_ROWS", 1_000)
    jvm = spark.session.sparkContext._jvm
    assert jvm is not None
    beans = jvm.java.lang.management.ManagementFactory.getGarbageCollectorMXBeans()

    def full_collections() -> int:
        return sum(int(b.getCollectionCount()) for b in beans if "Old" in str(b.getName()))

    frame = spark.to_spark(pl.DataFrame({"v": list(range(5_000))}))
    before = full_collections()
    spark.collect(frame)
    assert full_collections() == before
    spark.collect(frame, rows=5_000)
    assert full_collections() == before + 1
