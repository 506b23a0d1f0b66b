"""A real Spark standalone cluster for the spark tests: a master and two workers on loopback.

Session-scoped: started once (from the pyspark distribution's ``spark-class``,
see :mod:`tests.fakes.spark_cluster`) when a test first asks for it, torn down
at the end. Each worker offers 2 cores and 2 GB; an application takes at most 2
cores in executors of 1 core and 1 GB (``CLUSTER_CONF``), so the tests' own
session (one executor on each worker) leaves room for a second application
(the CLI runs of the error tests). With ``CI=true`` a cluster that does not
start fails the test; elsewhere it skips with the reason.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import polars as pl
import pytest

from opslens.config import ProjectConfig
from opslens.engines import close_engines
from opslens.engines.spark import SparkEngine
from opslens.runner import run_analysis
from tests.fakes.spark_cluster import ClusterError, LoopbackCluster

# what an application on the loopback cluster asks for (the driver stays on 127.0.0.1)
CLUSTER_CONF = {
    "spark.executor.memory": "1g",
    "spark.executor.cores": "1",
    "spark.cores.max": "2",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
}


@pytest.fixture(scope="session")
def spark_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackCluster]:
    """A running master with two registered workers (``.master_url``)."""
    cluster = LoopbackCluster(
        tmp_path_factory.mktemp("spark-cluster"), workers=2, cores=2, memory="2g"
    )
    try:
        cluster.start()
    except (ClusterError, OSError) as e:
        message = f"the loopback Spark cluster did not start ({e})"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " and CI=true requires it", pytrace=False)
        pytest.skip(message)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture()
def cluster(spark_cluster: LoopbackCluster) -> Iterator[LoopbackCluster]:
    """The loopback cluster, with no Spark session open in this process (one per process)."""
    close_engines()
    yield spark_cluster


def recorded_run(
    project: ProjectConfig, name: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[Any, list[tuple[int, int]]]:
    """The run of ``name`` on Spark, and (height, width) of every frame the driver collected;
    the session is closed after (the next master starts its own)."""
    seen: list[tuple[int, int]] = []
    collect = SparkEngine.collect

    def recording(self: SparkEngine, frame: Any, *args: Any, **kwargs: Any) -> pl.DataFrame:
        out = collect(self, frame, *args, **kwargs)
        if not isinstance(frame, pl.DataFrame):  # a Spark frame came to the driver
            seen.append((out.height, out.width))
        return out

    monkeypatch.setattr(SparkEngine, "collect", recording)
    try:
        run = run_analysis(project, name)
    finally:
        close_engines()
    return run, seen
