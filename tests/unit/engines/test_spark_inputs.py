"""engine: spark's inputs: the one-line errors for unreadable paths and ``spark.jdbc``, no JVM.

(tests/e2e/spark starts one; test_spark_errors.py holds the master and Java checks.)
"""

from __future__ import annotations

import pytest

from opslens.engines import close_engines, make_engine
from opslens.engines.spark import SparkEngine, _translate
from opslens.errors import SourceError
from opslens.recipes import project_from_mapping

FIX_LOCAL = "or set engine: local in project.yaml"


def test_a_file_the_executors_do_not_find_names_the_path() -> None:
    error = RuntimeError(
        "An error occurred while calling o125.getResult.\n"
        ": org.apache.spark.SparkException: Job aborted due to stage failure: Task 0 in stage 5.0 "
        "failed 4 times, most recent failure: Lost task 0.3 (TID 9) (127.0.0.1 executor 1): "
        "org.apache.spark.SparkException: [FAILED_READ_FILE.FILE_NOT_EXIST] Encountered error "
        "while reading file file:///data/in/readings.parquet. File does not exist. It is possible "
        "the underlying files have been updated.\n\tat org.apache.spark.sql.errors..."
    )
    out = _translate(error, "spark://10.0.0.5:7077")
    assert isinstance(out, SourceError)
    assert str(out) == (
        "the Spark executors at spark://10.0.0.5:7077 cannot read /data/in/readings.parquet "
        "(file does not exist there); fix: put the input where every worker reads it under the "
        f"same path (a shared folder, HDFS or S3), readable by the workers' user, {FIX_LOCAL}"
    )
    denied = _translate(
        RuntimeError("java.nio.file.AccessDeniedException: /data/in/x.parquet"), "spark://h:1"
    )
    assert str(denied).startswith(
        "the Spark executors at spark://h:1 cannot read /data/in/x.parquet (permission denied)"
    )


def test_a_path_spark_does_not_find_and_other_failures() -> None:
    missing = _translate(
        RuntimeError("[PATH_NOT_FOUND] Path does not exist: file:/d/none.parquet. SQLSTATE: 42K03"),
        "local[2]",
    )
    assert str(missing) == (
        "Spark finds no input at /d/none.parquet; fix: give a path that exists (a shared folder, "
        f"HDFS or S3 on a cluster), {FIX_LOCAL}"
    )
    other = ValueError("division by zero")
    assert _translate(other, "local[2]") is other  # not the user's input: unchanged


ANALYSES = [
    {
        "name": "a",
        "recipe": "fleet",
        "source": {"kind": "file", "path": "x.csv"},
        "columns": {"entity": "d", "time": "t", "metrics": ["v"]},
    }
]


def test_spark_jdbc_partitioning_reaches_the_engine() -> None:
    jdbc = {"partition_column": "id", "num_partitions": 6}
    project = {"engine": "spark", "spark": {"master": "local[1]", "jdbc": jdbc}}
    engine = make_engine(project_from_mapping({**project, "analyses": ANALYSES}))
    try:
        assert isinstance(engine, SparkEngine)
        assert engine.jdbc == {**jdbc, "lower_bound": None, "upper_bound": None}
    finally:
        close_engines()
    wrong = {"engine": "spark", "spark": {"jdbc": {"partition_column": "id", "num_partitions": 0}}}
    with pytest.raises(Exception, match="num_partitions"):
        project_from_mapping({**wrong, "analyses": ANALYSES})
