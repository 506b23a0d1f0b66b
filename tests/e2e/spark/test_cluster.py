"""engine: spark on a real standalone cluster: a master and two workers on loopback (conftest.py).

The parity tests of test_parity.py run here again at ``spark://127.0.0.1:PORT``
(the fleet, distribution and propensity examples, batch scoring, Parquet and
JDBC read by the executors): the same results as ``engine: local``. Then what
only a cluster has: a worker killed mid-job (Spark retries its tasks on the
other worker, same results), executors whose Python differs from the driver's,
an input the executors cannot read, a master that is not there — each a
one-line error and exit code 2 — and the jobs' progress in the run's log.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from opslens.core.engine import LocalEngine
from opslens.engines import close_engines
from opslens.engines.spark import SparkEngine, check_executors
from opslens.errors import SourceError
from opslens.features.fingerprints import fleet_fingerprints
from opslens.synthetic.fleet import make_fleet
from tests.e2e.spark.test_parity import (
    both_runs,
    engine_at,
    test_batch_scoring_on_spark_equals_local,
    test_fingerprints_from_a_postgres_table_over_jdbc,
    test_fingerprints_from_parquet_read_by_spark,
    test_runs_on_both_engines_agree,
)
from tests.fakes.spark_cluster import LoopbackCluster

__all__ = [  # the parity tests, collected here again with this module's fixtures
    "test_batch_scoring_on_spark_equals_local",
    "test_fingerprints_from_a_postgres_table_over_jdbc",
    "test_fingerprints_from_parquet_read_by_spark",
    "test_runs_on_both_engines_agree",
]

ON_CLUSTER = ("distribution", "fleet", "propensity")


@pytest.fixture(scope="module")
def spark(
    spark_cluster: LoopbackCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SparkEngine]:
    """The engine a project with ``spark.master: spark://127.0.0.1:PORT`` gets."""
    yield engine_at(spark_cluster.master_url, tmp_path_factory.mktemp("s"))
    close_engines()


@pytest.fixture(scope="module", params=ON_CLUSTER)
def runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, spark: SparkEngine
) -> dict[str, object]:
    """The recipe's demo run on the local engine and on the cluster."""
    return both_runs(str(request.param), spark, tmp_path_factory)


def test_the_session_runs_on_the_cluster_with_this_python(
    spark: SparkEngine, spark_cluster: LoopbackCluster
) -> None:
    context = spark.session.sparkContext
    assert context.master == spark_cluster.master_url
    assert check_executors(spark.session) == sys.version_info[:2] == (3, 11)
    apps = spark_cluster.state()["activeapps"]
    assert len(apps) == 1 and apps[0]["cores"] == 2  # one executor of 1 core on each worker
    source = str(Path(__file__).resolve().parents[3] / "src")
    assert spark.conf["spark.executorEnv.PYTHONPATH"].split(os.pathsep)[0] == source


def test_progress_of_the_spark_jobs_is_in_the_run_log(runs: dict[str, object]) -> None:
    _, run = runs["spark"]  # type: ignore[misc]
    text = (run.path / "run.log").read_text()  # type: ignore[attr-defined]
    done = re.findall(r"spark (.+?): (\d+)/(\d+) jobs done \((\d+) tasks\) in [\d.]+ s", text)
    assert len(done) >= 1, text[-2000:]
    assert all(int(a) == int(b) >= 1 and int(t) >= 1 for _, a, b, t in done)
    # propensity: its features are made by the executors as they write its tables
    work = {"distribution": "counts by", "fleet": "fleet_fingerprints per", "propensity": "write"}
    assert any(work[str(runs["recipe"])] in what for what, *_ in done)


def test_an_input_the_executors_cannot_read_is_one_line(spark: SparkEngine, tmp_path: Path) -> None:
    readings = make_fleet(n_devices=40, n_points=50, seed=1, n_failing=2).readings
    path = tmp_path / "readings.parquet"
    readings.write_parquet(path)
    frame = spark.read_parquet(path)  # the driver lists the file ...
    path.rename(tmp_path / "elsewhere.parquet")  # ... which the executors then do not find
    func = partial(fleet_fingerprints, entity="device_id", time="timestamp", metrics=["current"])
    with pytest.raises(SourceError) as caught:
        spark.per_group(frame, "device_id", func)
    message = str(caught.value)
    assert message.startswith(
        f"the Spark executors at {spark.master} cannot read {path} (file does not exist there); "
        "fix: put the input where every worker reads it under the same path"
    )
    assert "\n" not in message and len(message) < 400
    with pytest.raises(SourceError, match=rf"^Spark finds no input at {tmp_path}/nothing\.parquet"):
        spark.read_parquet(tmp_path / "nothing.parquet")


def _cli(folder: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``opslens ...`` in a subprocess (its own Spark session: one per process)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    return subprocess.run(
        [sys.executable, "-m", "opslens", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _fleet_project(folder: Path, master: str, **conf: str) -> Path:
    from tests.e2e.spark.test_parity import _demo

    _demo("fleet", folder, "spark", master)
    text = (folder / "project.yaml").read_text().splitlines()
    spark = json.loads(text[1].removeprefix("spark: "))
    spark["conf"].update(conf)
    text[1] = "spark: " + json.dumps(spark)
    (folder / "project.yaml").write_text("\n".join(text) + "\n")
    return folder / "project.yaml"


FAKE_DAEMON = """\
# a Python that reports another minor version once PySpark's worker is loaded
import collections, runpy, sys
import pyspark.worker  # noqa: F401  (imported with the real version)
V = collections.namedtuple("version_info", "major minor micro releaselevel serial")
sys.version_info = V(3, 10, 0, "final", 0)
module = sys.argv[sys.argv.index("-m") + 1]
sys.argv = [module, *sys.argv[sys.argv.index("-m") + 2:]]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


def test_executors_on_another_python_are_one_line_and_exit_2(
    spark_cluster: LoopbackCluster, tmp_path: Path
) -> None:
    (tmp_path / "fake_daemon.py").write_text(FAKE_DAEMON)
    python = tmp_path / "python3.10"
    python.write_text(f'#!/bin/sh\nexec {sys.executable} {tmp_path / "fake_daemon.py"} "$@"\n')
    python.chmod(0o755)
    _fleet_project(tmp_path, spark_cluster.master_url, **{"spark.pyspark.python": str(python)})
    done = _cli(tmp_path, "run", "project.yaml")
    assert done.returncode == 2, done.stderr[-3000:]
    lines = [line for line in done.stderr.strip().splitlines() if line.startswith("error:")]
    assert lines == [
        "error: the Spark executors run Python 3.10 and this driver runs Python 3.11 "
        f"({python} on the workers); fix: point PYSPARK_PYTHON (or spark.conf "
        "spark.pyspark.python) at a Python 3.11 that has opslens installed on every worker, "
        "or set engine: local in project.yaml"
    ]


def test_a_worker_killed_mid_job_recovers_with_the_same_results(
    spark: SparkEngine, spark_cluster: LoopbackCluster
) -> None:
    readings = make_fleet(n_devices=120, n_points=400, seed=4).readings
    func = partial(
        fleet_fingerprints, entity="device_id", time="timestamp", metrics=["temperature", "current"]
    )
    expected = LocalEngine().per_group(readings, "device_id", func).sort("device_id")

    def slow(frame: pl.DataFrame) -> pl.DataFrame:  # long enough to be killed mid-way
        time.sleep(1.0)
        return func(frame)

    session = spark.session
    session.conf.set("spark.sql.adaptive.coalescePartitions.enabled", "false")  # 8 tasks
    out: dict[str, object] = {}

    def job() -> None:
        try:
            out["result"] = spark.per_group(readings, "device_id", slow, rows=4_000)
        except BaseException as e:
            out["error"] = e

    runner = threading.Thread(target=job)
    runner.start()
    tracker = session.sparkContext.statusTracker()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:  # until both executors run a task of the job
        active = [tracker.getStageInfo(s) for s in tracker.getActiveStageIds()]
        if sum(s.numActiveTasks for s in active if s is not None) >= 2:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the job never ran a task on both workers")
    killed = spark_cluster.kill_worker(1)
    runner.join(timeout=300)
    session.conf.unset("spark.sql.adaptive.coalescePartitions.enabled")
    try:
        assert len(killed) >= 2  # the worker's JVM and its executor's
        assert "error" not in out, out.get("error")
        assert spark_cluster.wait_for_workers(1) == 1  # the master saw it go
        result = out["result"]
        assert isinstance(result, pl.DataFrame)
        assert result.height == expected.height == 120
        assert_frame_equal(expected, result.sort("device_id"))  # exactly, after the retries
    finally:
        spark_cluster.restart_worker(1)
    assert spark_cluster.wait_for_workers(2) == 2
