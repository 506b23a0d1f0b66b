"""engine: spark that cannot run ends in one line and exit 2 before anything is written."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from opslens.engines.spark import SparkEngine, check_java, check_master
from opslens.errors import ConfigError
from tests.fakes.cli import run_cli

PROJECT = """
engine: spark
spark: {spark}
tracking: {{enabled: false}}
analyses:
  - name: fleet
    recipe: fleet
    source: {{kind: synthetic, generator: fleet, seed: 0, options: {{n_devices: 30, n_points: 100, n_failing: 2}}}}
    columns: {{entity: device_id, time: timestamp, metrics: [temperature]}}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spark: str) -> tuple[int, str]:
    (tmp_path / "project.yaml").write_text(PROJECT.format(spark=spark))
    result = run_cli(["run"], tmp_path, monkeypatch)
    assert not (tmp_path / "runs" / "fleet").exists() or not any(
        (tmp_path / "runs" / "fleet").iterdir()
    ), "nothing may be written"
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1, result.err
    return result.code, lines[0]


def test_unreachable_master(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = _free_port()
    code, line = _run(tmp_path, monkeypatch, f"{{master: 'spark://127.0.0.1:{port}'}}")
    assert code == 2
    assert f"spark.master spark://127.0.0.1:{port} is unreachable (Connection refused)" in line
    assert "fix: start the Spark master there" in line


def test_missing_java(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no java here
    code, line = _run(tmp_path, monkeypatch, "{master: 'local[2]'}")
    assert code == 2
    assert "engine: spark needs Java 17 or newer, and there is no java on PATH" in line
    assert "apt-get install openjdk-17-jre-headless" in line


def test_java_home_without_java(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk"))
    code, line = _run(tmp_path, monkeypatch, "{master: 'local[2]'}")
    assert code == 2 and f"JAVA_HOME={tmp_path / 'jdk'} holds no bin/java" in line


def test_java_too_old(tmp_path: Path) -> None:
    fake = tmp_path / "bin" / "java"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'openjdk version \"11.0.2\" 2019-01-15' >&2\n")
    fake.chmod(0o755)
    with pytest.raises(ConfigError, match=r"needs Java 17 or newer; .*java is Java 11"):
        check_java(str(tmp_path))


def test_missing_pyspark(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyspark", None)  # `import pyspark` raises ImportError
    code, line = _run(tmp_path, monkeypatch, "{master: 'local[2]'}")
    assert code == 2
    assert "engine: spark needs PySpark, which is not installed here" in line
    assert "pip install 'opslens[spark]'" in line


def test_unknown_master_and_conf_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, line = _run(tmp_path, monkeypatch, "{master: 'yarn'}")
    assert code == 2 and "spark.master 'yarn' is not a master opslens can start" in line
    code, line = _run(tmp_path, monkeypatch, "{conf: {driver.memory: 2g}}")
    assert code == 2 and "keys must start with 'spark.'" in line and "driver.memory" in line


def test_checks_pass_here() -> None:
    """This machine (and CI) has Java 17+ and PySpark: the checks themselves pass."""
    assert Path(check_java()).name == "java"
    check_master("local[2]")
    SparkEngine("local[*]").check()


def test_the_driver_heap_is_4g_in_local_mode_and_sparks_own_on_a_cluster() -> None:
    """Local mode runs the executors in the driver's JVM; on a cluster the driver holds
    counts and samples brought back in parts, and a larger heap only lets its JVM grow."""
    from opslens.engines.spark import LOCAL_DRIVER_MEMORY, SparkEngine

    assert SparkEngine("local[2]").conf["spark.driver.memory"] == LOCAL_DRIVER_MEMORY == "4g"
    assert "spark.driver.memory" not in SparkEngine("spark://127.0.0.1:7077").conf
    chosen = SparkEngine("spark://h:7077", conf={"spark.driver.memory": "2g"}).conf
    assert chosen["spark.driver.memory"] == "2g"
    assert (
        SparkEngine("local[*]", conf={"spark.driver.memory": "1g"}).conf["spark.driver.memory"]
        == "1g"
    )


def test_collected_arrow_batches_stay_chunks_so_the_driver_holds_one_copy() -> None:
    """Joining the batches into one chunk copied the whole table while the table was held
    (propensity's 2,000,000-row training sample: 0.8 GB twice on the driver)."""
    import pyarrow as pa

    from opslens.engines.spark import _polars

    table = pa.Table.from_batches(
        [pa.RecordBatch.from_pydict({"v": [float(i), float(i + 1)]}) for i in range(0, 6, 2)]
    )
    out = _polars(table)
    assert out.n_chunks() == 3
    assert out["v"].to_list() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
