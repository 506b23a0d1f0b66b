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

import pytest

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
