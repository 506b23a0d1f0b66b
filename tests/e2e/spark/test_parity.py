"""engine: spark (local[2], a real JVM) against engine: local on the bundled demo data.

The same fingerprints and histograms (to 1e-9; in fact bit for bit), the same
sessions and point-in-time features exactly, the same predictions exactly, for
runs through the runner and for batch scoring with each recipe's model. Java 17
and PySpark are required (CI installs both): nothing here is skipped.
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from importlib.resources import files
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import opslens.recipes as registry
from opslens.api import score
from opslens.config import ProjectConfig
from opslens.core.engine import LocalEngine
from opslens.engines import make_engine
from opslens.engines.spark import SparkEngine
from opslens.features.events import sessionize
from opslens.features.fingerprints import fleet_fingerprints
from opslens.runner import run_analysis
from opslens.synthetic.clickstream import make_clickstream
from opslens.synthetic.fleet import make_fleet

RECIPES = ("distribution", "fleet", "segments", "propensity")
JAR = "/usr/share/java/postgresql.jar"  # Debian's libpostgresql-jdbc-java (CI installs it)


def _demo(recipe: str, folder: Path, engine: str) -> ProjectConfig:
    """The recipe's bundled demo project in ``folder`` (no MLflow), on ``engine``."""
    package = registry.get_recipe(recipe).package
    demo = registry.get_recipe(recipe).demo
    assert demo is not None
    for name in demo.files:
        (folder / name).write_text((files(package) / "demo" / name).read_text(encoding="utf-8"))
    text = (folder / "project.yaml").read_text()
    text = text.replace('tracking: {uri: "sqlite:///mlflow.db"}', "tracking: {enabled: false}")
    spark = f'{{master: "local[2]", rows_per_task: 50000, conf: {{spark.jars: "{JAR}"}}}}'
    text = f"engine: {engine}\nspark: {spark}\n" + text
    (folder / "project.yaml").write_text(text)
    return registry.load_project(folder / "project.yaml")


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> SparkEngine:
    """The engine a spark project gets (one session for the module)."""
    engine = make_engine(_demo("fleet", tmp_path_factory.mktemp("s"), "spark"))
    assert isinstance(engine, SparkEngine)
    return engine


@pytest.fixture(scope="module", params=RECIPES)
def runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, spark: SparkEngine
) -> dict[str, object]:
    """The recipe's demo run once on each engine."""
    out: dict[str, object] = {"recipe": request.param}
    for engine in ("local", "spark"):
        project = _demo(request.param, tmp_path_factory.mktemp(engine), engine)
        name = project.active_analyses()[0].name
        out[engine] = (project, run_analysis(project, name))
    return out


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
