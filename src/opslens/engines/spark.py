"""``engine: spark``: the recipes' per-entity functions, run on PySpark.

The same functions as the local engine, not a second implementation:

* ``per_group``: entities are hashed into tasks of about
  ``rows_per_task`` rows (``xxhash64(key) mod n``) and each task's rows go, as
  Arrow, to the very function the local engine calls
  (``groupBy(bucket).applyInArrow`` — the Arrow flavour of ``applyInPandas``,
  without a pandas round trip, so dtypes and nulls come back exactly);
* ``count_by``: a Spark aggregation (``groupBy(keys).count()``);
* ``sessionize``: Spark window functions (``lag`` over user and time, a running
  sum of new-session flags, per-session windows), equal to
  :func:`opslens.features.events.sessionize` row for row;
* ``map_batches``: batch scoring with ``mapInArrow``; the model is broadcast
  once and every task scores its Arrow batches with ``predict_frame``.

The output schema a function returns is read off one call on the driver on a
small sample (the first entity), so callers pass no Spark types. Frames come
in as polars (or as a Spark DataFrame from :meth:`SparkEngine.read_parquet` /
:meth:`SparkEngine.read_jdbc`) and results come back as polars, in the
schema the function returned.

Missing PySpark, missing or too old Java, and a master that cannot be reached
are :class:`~opslens.errors.ConfigError` with one line and a fix.

Example (the session starts on first use; tests/e2e/spark runs it for real):
    >>> eng = SparkEngine("local[2]", rows_per_task=500_000)
    >>> eng.name, eng.master, eng.conf["spark.sql.session.timeZone"]
    ('spark', 'local[2]', 'UTC')
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import warnings
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from opslens.core.engine import AGGREGATIONS, BUCKET_SEED, FrameFunc, Track
from opslens.errors import ConfigError, ContractError, SourceError

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame as SparkFrame
    from pyspark.sql import SparkSession

__all__ = [
    "RESULT_ROWS",
    "SparkEngine",
    "SparkProgress",
    "check_executors",
    "check_java",
    "check_master",
]

log = logging.getLogger(__name__)
_GROUPS = itertools.count(1)
_LOCAL = re.compile(r"^local(\[(\d+|\*)(,\d+)?\])?$")
_DEFAULT_CONF = {
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "8",
    "spark.sql.adaptive.enabled": "true",
    "spark.driver.maxResultSize": "0",
}
#: the driver's heap in local mode, where the executors run in the driver's JVM; on a cluster
#: Spark's own default (1g): the driver holds counts, samples brought back a part at a time
#: (:data:`RESULT_ROWS`) and models, and a larger heap only lets its JVM grow (2.4 GB resident
#: for propensity at 30,000 users with 4g)
LOCAL_DRIVER_MEMORY = "4g"
_FIX_LOCAL = "or set engine: local in project.yaml"
#: rows per task result of a large collect (:meth:`SparkEngine.collect`'s ``rows``)
RESULT_ROWS = 100_000


def check_java(java_home: str | None = None) -> str:
    """The ``java`` Spark will start (``JAVA_HOME/bin/java``, else the PATH's); ConfigError if
    there is none or it is older than 17.

    Example:
        >>> check_java("/nonexistent")
        Traceback (most recent call last):
        ...
        opslens.errors.ConfigError: engine: spark needs Java 17 or newer, and JAVA_HOME=/nonexistent holds no bin/java; fix: point JAVA_HOME at a JDK 17 (e.g. /usr/lib/jvm/java-17-openjdk-amd64), or set engine: local in project.yaml
    """
    home = java_home if java_home is not None else os.environ.get("JAVA_HOME")
    if home:
        java = Path(home) / "bin" / "java"
        if not java.is_file():
            raise ConfigError(
                f"engine: spark needs Java 17 or newer, and JAVA_HOME={home} holds no bin/java",
                fix="point JAVA_HOME at a JDK 17 (e.g. /usr/lib/jvm/java-17-openjdk-amd64), "
                + _FIX_LOCAL,
            )
        path = str(java)
    else:
        found = shutil.which("java")
        if found is None:
            raise ConfigError(
                "engine: spark needs Java 17 or newer, and there is no java on PATH "
                "and no JAVA_HOME",
                fix="install one (apt-get install openjdk-17-jre-headless) or set JAVA_HOME, "
                + _FIX_LOCAL,
            )
        path = found
    try:
        shown = subprocess.run(
            [path, "-version"], capture_output=True, text=True, timeout=30, check=False
        ).stderr
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ConfigError(f"engine: spark could not run {path}: {e}", fix=_FIX_LOCAL) from None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', shown)
    major = int(match.group(1)) if match else 0
    if major == 1 and match and match.group(2):  # "1.8.0" is Java 8
        major = int(match.group(2))
    if major < 17:
        raise ConfigError(
            f"engine: spark needs Java 17 or newer; {path} is "
            + (f"Java {major}" if major else "not a Java runtime"),
            fix="install a JDK 17 and point JAVA_HOME at it, " + _FIX_LOCAL,
        )
    return path


def check_master(master: str, *, timeout: float = 5.0) -> None:
    """ConfigError when ``spark.master`` is neither ``local[...]`` nor a reachable ``spark://``.

    Example:
        >>> check_master("local[2]")
        >>> check_master("mesos://x")
        Traceback (most recent call last):
        ...
        opslens.errors.ConfigError: spark.master 'mesos://x' is not a master opslens can start; fix: write local[2], local[*] or spark://host:7077 under spark.master
    """
    if _LOCAL.match(master):
        return
    match = re.match(r"^spark://([^:/]+):(\d+)$", master)
    if match is None:
        raise ConfigError(
            f"spark.master {master!r} is not a master opslens can start",
            fix="write local[2], local[*] or spark://host:7077 under spark.master",
        )
    host, port = match.group(1), int(match.group(2))
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise ConfigError(
            f"spark.master {master} is unreachable ({reason})",
            fix="start the Spark master there, correct spark.master, " + _FIX_LOCAL,
        ) from None


def check_executors(session: SparkSession, python: str = sys.executable) -> tuple[int, int]:
    """The executors' Python (major, minor), from a tiny job; ConfigError (one line) when it
    differs from this driver's or the executors cannot run Python at all.

    Example (a stand-in session whose executors answer Python 3.9; tests/e2e/spark runs the
    real thing on a cluster):
        >>> from types import SimpleNamespace as Stub
        >>> job = Stub(defaultParallelism=1, collect=lambda: [(3, 9)])
        >>> job.parallelize = job.map = lambda *args: job
        >>> check_executors(Stub(sparkContext=job), "/usr/bin/python3.9")
        Traceback (most recent call last):
        ...
        opslens.errors.ConfigError: the Spark executors run Python 3.9 and this driver runs Python 3.11; fix: point PYSPARK_PYTHON (or spark.conf spark.pyspark.python) at a Python 3.11 that has opslens installed on every worker, or set engine: local in project.yaml
    """
    driver = (sys.version_info[0], sys.version_info[1])
    here = f"{driver[0]}.{driver[1]}"
    fix = (
        f"point PYSPARK_PYTHON (or spark.conf spark.pyspark.python) at a Python {here} "
        "that has opslens installed on every worker, " + _FIX_LOCAL
    )
    context = session.sparkContext
    n = max(1, int(context.defaultParallelism))
    try:
        seen = set(
            context.parallelize(range(n), n)
            .map(lambda _: (sys.version_info[0], sys.version_info[1]))
            .collect()
        )
    except Exception as e:
        text = str(e)
        match = re.search(
            r"worker has different version:? \(?([\d., ]+?)\)? than that in driver:? "
            r"\(?([\d.]+)",
            text,
        )
        if match:
            there = match.group(1).replace(", ", ".").replace(",", ".")
            raise ConfigError(
                f"the Spark executors run Python {there} and this driver runs Python "
                f"{match.group(2)} ({python} on the workers)",
                fix=fix,
            ) from None
        raise ConfigError(
            f"the Spark executors could not run {python}: {_first_line(text)}", fix=fix
        ) from None
    other = sorted(v for v in seen if v != driver)
    if other:
        there = ", ".join(f"{a}.{b}" for a, b in other)
        raise ConfigError(
            f"the Spark executors run Python {there} and this driver runs Python {here}",
            fix=fix,
        )
    return driver


def _executor_env() -> dict[str, str]:
    """Conf for executors on other JVMs: this driver's Python and opslens source on their path
    (harmless where opslens is installed on the workers; enough where they share this disk)."""
    source = str(Path(__file__).resolve().parents[2])
    parts = [source, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {"spark.executorEnv.PYTHONPATH": os.pathsep.join(dict.fromkeys(parts))}


def _first_line(text: str) -> str:
    """The first non-empty line of a JVM or Python error, without the error class' brackets."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else "no message"


_UNREADABLE = (
    re.compile(r"\[(FAILED_READ_FILE[.\w]*|PATH_NOT_FOUND)\][^\n]*"),
    re.compile(r"(FileNotFoundException|AccessDeniedException|Permission denied)[^\n]*"),
)


def _translate(error: Exception, master: str) -> Exception:
    """A Spark failure as a one-line :class:`~opslens.errors.SourceError` where the cause is an
    input path (not there for the driver, or not readable by the executors); else unchanged.

    Example:
        >>> str(_translate(RuntimeError("[FAILED_READ_FILE.FILE_NOT_EXIST] Encountered error "
        ...     "while reading file file:///d/x.parquet. File does not exist."), "spark://h:7077"))
        "the Spark executors at spark://h:7077 cannot read /d/x.parquet (file does not exist there); fix: put the input where every worker reads it under the same path (a shared folder, HDFS or S3), readable by the workers' user, or set engine: local in project.yaml"
    """
    text = str(error)
    found = next((m for p in _UNREADABLE if (m := p.search(text))), None)
    if found is None:
        return error
    line = found.group(0)
    path = re.search(r"(?:file:/*|hdfs:|s3a?:|gs:|abfss?:)?(/[^\s,;'\"]+?)\.?(?:\s|$)", line)
    where = path.group(1) if path else "the input"
    if "PATH_NOT_FOUND" in line:
        return SourceError(
            f"Spark finds no input at {where}",
            fix="give a path that exists (a shared folder, HDFS or S3 on a cluster), " + _FIX_LOCAL,
        )
    lower = line.lower()
    reason = (
        "file does not exist there"
        if "not exist" in lower or "notfound" in lower
        else "permission denied"
        if "denied" in lower
        else line[:120]
    )
    return SourceError(
        f"the Spark executors at {master} cannot read {where} ({reason})",
        fix="put the input where every worker reads it under the same path (a shared folder, "
        "HDFS or S3), readable by the workers' user, " + _FIX_LOCAL,
    )


def _arrow(frame: pl.DataFrame) -> pa.Table:
    """Arrow types Spark reads: plain strings, signed integers."""
    wider: dict[Any, pl.DataType] = {pl.UInt8: pl.Int16(), pl.UInt16: pl.Int32()}
    casts: dict[Any, Any] = {
        c: wider.get(d, pl.Int64()) for c, d in frame.schema.items() if d.is_unsigned_integer()
    }
    return (frame.cast(casts) if casts else frame).to_arrow(compat_level=pl.CompatLevel.oldest())


def _polars(data: pa.Table | pa.RecordBatch) -> pl.DataFrame:
    """The Arrow data as polars, its batches kept as chunks: numbers are not copied (joining
    the batches copied the whole table while the table was still held: a 2,000,000-row
    training sample, 0.8 GB, twice on the driver)."""
    out = pl.from_arrow(data, rechunk=False)
    assert isinstance(out, pl.DataFrame)
    return out


class SparkProgress:
    """Jobs of one :meth:`SparkEngine.watch` block as the status tracker last saw them."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.jobs = 0
        self.jobs_done = 0
        self.tasks = 0
        self.tasks_done = 0
        self.lines = 0

    def _read(self, context: Any, group: str) -> tuple[int, int, int, int]:
        tracker = context.statusTracker()
        ids = tracker.getJobIdsForGroup(group)
        done = tasks = tasks_done = 0
        for job in ids:
            info = tracker.getJobInfo(job)
            if info is None:
                continue
            done += info.status == "SUCCEEDED"
            for stage in info.stageIds:
                sinfo = tracker.getStageInfo(stage)
                if sinfo is not None:
                    tasks += sinfo.numTasks
                    tasks_done += sinfo.numCompletedTasks
        return len(ids), done, tasks, tasks_done

    def poll(self, context: Any, group: str, stop: threading.Event, every: float) -> None:
        """Read the tracker every ``every`` s until ``stop``; log each change and the end."""
        started = time.monotonic()
        shown: tuple[int, int, int, int] | None = None
        while True:
            ended = stop.wait(every)
            try:
                seen = self._read(context, group)
            except Exception:  # the session is going away: the last figures stand
                log.debug("spark status tracker unavailable", exc_info=True)
                return
            self.jobs, self.jobs_done, self.tasks, self.tasks_done = seen
            if ended:
                # the tracker learns of a job's end from Spark's listener bus, which can lag
                # behind the results the driver already has: wait for it a little
                settle = time.monotonic() + 5.0
                while self.jobs_done < self.jobs and time.monotonic() < settle:
                    time.sleep(0.1)
                    try:
                        seen = self._read(context, group)
                    except Exception:
                        break
                    self.jobs, self.jobs_done, self.tasks, self.tasks_done = seen
                if self.jobs:
                    log.info(
                        "spark %s: %d/%d jobs done (%d tasks) in %.1f s",
                        self.what,
                        self.jobs_done,
                        self.jobs,
                        self.tasks_done,
                        time.monotonic() - started,
                    )
                    self.lines += 1
                return
            if seen != shown and self.jobs:
                log.info(
                    "spark %s: %d/%d jobs done, tasks %d/%d",
                    self.what,
                    self.jobs_done,
                    self.jobs,
                    self.tasks_done,
                    self.tasks,
                )
                self.lines += 1
                shown = seen


class SparkEngine:
    """Run the per-entity functions on PySpark at ``master`` (see the module docstring).

    The session starts on first use (a ``local[2]`` JVM takes a few seconds)
    and is reused until :meth:`close`.
    """

    name = "spark"
    distributed = True

    def __init__(
        self,
        master: str = "local[2]",
        *,
        app_name: str = "opslens",
        conf: Mapping[str, Any] | None = None,
        rows_per_task: int = 1_000_000,
        jdbc: Mapping[str, Any] | None = None,
    ) -> None:
        self.master = master
        self.app_name = app_name
        self.conf = {
            **_DEFAULT_CONF,
            **({"spark.driver.memory": LOCAL_DRIVER_MEMORY} if _LOCAL.match(master) else {}),
            **{
                k: str(v).lower() if isinstance(v, bool) else str(v)
                for k, v in (conf or {}).items()
            },
        }
        self.rows_per_task = rows_per_task
        self.jdbc = dict(jdbc or {})  # spark.jdbc: read_jdbc's partitioning by default
        self._session: SparkSession | None = None
        # per Spark frame (an immutable plan): its row count and one entity's rows per key,
        # asked once; each is a job over the whole input when the input is not sorted by
        # the key (fleet's prepare calls per_group twice on its source: 100,000 devices,
        # about 160 s of jobs saved)
        self._known: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()

    # -- the session ---------------------------------------------------------------------
    @property
    def session(self) -> SparkSession:
        """The SparkSession (started on first use; the checks' errors are one line)."""
        if self._session is None:
            self._session = self._start()
        return self._session

    def check(self) -> None:
        """ConfigError (one line) unless PySpark imports, Java 17+ runs and the master answers."""
        try:
            import pyspark  # noqa: F401
        except ImportError:
            raise ConfigError(
                "engine: spark needs PySpark, which is not installed here",
                fix="pip install 'opslens[spark]' (PySpark 4 and Java 17), " + _FIX_LOCAL,
            ) from None
        check_master(self.master)
        check_java()

    def _start(self) -> SparkSession:
        self.check()
        from pyspark.sql import SparkSession

        # the executors' Python: spark.pyspark.python, else PYSPARK_PYTHON, else this one; PySpark
        # ships PYSPARK_PYTHON with every Python function, so the conf must reach the variable
        given = self.conf.get("spark.pyspark.python")
        if given:
            os.environ["PYSPARK_PYTHON"] = given
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        if self.master.startswith("local"):  # no "hostname resolves to a loopback" warning
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        # PySpark warns on every call that it does not fully support pandas 3; opslens
        # passes Arrow to its functions, not pandas
        warnings.filterwarnings("ignore", "PySpark does not yet fully support", FutureWarning)
        quiet = f"-Dlog4j2.configurationFile={Path(__file__).with_name('log4j2.properties')}"
        self.conf.setdefault("spark.driver.extraJavaOptions", quiet)
        if not _LOCAL.match(self.master):  # executors on other JVMs: this Python, this source
            for key, value in _executor_env().items():
                self.conf.setdefault(key, value)
        builder = SparkSession.builder.master(self.master).appName(self.app_name)
        builder = builder.config("spark.pyspark.python", os.environ["PYSPARK_PYTHON"])
        for key, value in self.conf.items():
            builder = builder.config(key, value)
        try:
            session = builder.getOrCreate()
        except Exception as e:  # the JVM's own message, first line
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ConfigError(
                f"Spark did not start at {self.master}: {first}",
                fix="check spark.master and spark.conf, " + _FIX_LOCAL,
            ) from None
        session.sparkContext.setLogLevel("ERROR")
        running = session.sparkContext.master
        if running != self.master:  # getOrCreate hands back a session already running here
            raise ConfigError(
                f"this process already runs a Spark session at {running}, not {self.master}",
                fix="close the other engine first (opslens.engines.close_engines()), "
                "or use one spark.master per process",
            )
        if not _LOCAL.match(self.master):
            try:
                check_executors(session, os.environ["PYSPARK_PYTHON"])
            except BaseException:
                session.stop()
                raise
        return session

    def close(self) -> None:
        """Stop the session (a later call starts a new one)."""
        if self._session is not None:
            self._session.stop()
            self._session = None

    # -- data in and out -----------------------------------------------------------------
    def to_spark(self, frame: pl.DataFrame | SparkFrame) -> SparkFrame:
        """A Spark DataFrame of ``frame`` (naive datetimes as TIMESTAMP_NTZ: no time zone shift)."""
        if not isinstance(frame, pl.DataFrame):
            return frame
        from pyspark.sql.pandas.types import from_arrow_schema

        table = _arrow(frame)
        return self.session.createDataFrame(table, schema=from_arrow_schema(table.schema))

    def read_parquet(self, *paths: str | Path) -> SparkFrame:
        """Parquet files (or folders, globs) read by Spark itself, never through this process
        (the driver lists the files; the executors read them)."""
        try:
            return self.session.read.parquet(*(str(p) for p in paths))
        except Exception as e:
            raise _translate(e, self.master) from None

    def read_jdbc(
        self,
        url: str,
        table: str,
        *,
        partition_column: str | None = None,
        num_partitions: int | None = None,
        lower_bound: int | str | None = None,
        upper_bound: int | str | None = None,
    ) -> SparkFrame:
        """A database table read by the executors over JDBC (``postgresql://user@host:5432/db``
        or ``jdbc:...``); the driver jar goes in ``spark.conf: {spark.jars: ...}``.

        With ``partition_column`` (a number, date or timestamp column; default from
        ``spark.jdbc``) the read is ``num_partitions`` range queries run by the executors in
        parallel (``partitionColumn``/``lowerBound``/``upperBound``/``numPartitions``); the
        bounds, when not given, come from one ``min``/``max`` query the database answers.

        Example (needs a database and a session; tests/e2e/spark runs it):
            >>> engine.read_jdbc(url, "readings", partition_column="id",  # doctest: +SKIP
            ...                  num_partitions=4).rdd.getNumPartitions()
            4
        """
        jdbc, props = _jdbc(url)
        column = partition_column or self.jdbc.get("partition_column")
        n = num_partitions or self.jdbc.get("num_partitions") or 8
        low = lower_bound if lower_bound is not None else self.jdbc.get("lower_bound")
        high = upper_bound if upper_bound is not None else self.jdbc.get("upper_bound")
        reader = self.session.read
        try:
            if column is None:
                return reader.jdbc(jdbc, table, properties=props)
            if low is None or high is None:
                bounds = f"(select min({column}) as lo, max({column}) as hi from {table}) bounds"
                row = reader.jdbc(jdbc, bounds, properties=props).first()
                if row is None or row["lo"] is None:  # an empty table: one partition
                    return reader.jdbc(jdbc, table, properties=props)
                low = row["lo"] if low is None else low
                high = row["hi"] if high is None else high
            options = {  # the option form: read.jdbc() takes integer bounds only
                **props,
                "url": jdbc,
                "dbtable": table,
                "partitionColumn": column,
                "lowerBound": str(_bound(low)),
                "upperBound": str(_bound(high)),
                "numPartitions": str(int(n)),
            }
            return reader.format("jdbc").options(**options).load()
        except Exception as e:
            first = _first_line(str(e))
            if "ClassNotFoundException" in str(e) or "No suitable driver" in str(e):
                raise ConfigError(
                    "the JDBC driver for this database is not on Spark's class path",
                    fix="apt-get install libpostgresql-jdbc-java and set spark.conf: "
                    "{spark.jars: /usr/share/java/postgresql.jar}",
                ) from None
            raise ConfigError(
                f"Spark could not read table {table!r}: {first}",
                fix="check the source url, the table name, spark.jdbc.partition_column "
                "(a number, date or timestamp column) and the server",
            ) from None

    @contextmanager
    def watch(self, what: str, *, every: float = 2.0) -> Iterator[SparkProgress]:
        """Log the progress of the Spark jobs started inside (jobs done / submitted, and the
        running stages' tasks) every ``every`` seconds while they change, from the
        SparkContext's status tracker polled in a thread; a last line when they end.

        Example (needs a session; tests/e2e/spark runs it):
            >>> with engine.watch("fingerprints") as progress:  # doctest: +SKIP
            ...     engine.collect(frame)
            >>> progress.jobs_done, progress.jobs  # doctest: +SKIP
            (2, 2)
        """
        context = self.session.sparkContext
        group = f"opslens-{next(_GROUPS)}"
        context.setJobGroup(group, what)
        progress = SparkProgress(what)
        stop = threading.Event()
        poller = threading.Thread(
            target=contextvars.copy_context().run,  # its log lines belong to the current run
            args=(progress.poll, context, group, stop, every),
            name=f"spark-progress-{group}",
            daemon=True,
        )
        poller.start()
        try:
            yield progress
        finally:
            stop.set()
            poller.join(timeout=10)
            context.setLocalProperty("spark.jobGroup.id", None)  # type: ignore[arg-type]
            context.setLocalProperty("spark.job.description", None)  # type: ignore[arg-type]

    def collect(
        self,
        frame: SparkFrame | pl.DataFrame,
        schema: pl.Schema | None = None,
        *,
        what: str = "collect",
        rows: int | None = None,
    ) -> pl.DataFrame:
        """The Spark frame as polars (cast to ``schema`` when given), its jobs' progress in
        the log (:meth:`watch`); an input the executors cannot read is a one-line
        :class:`~opslens.errors.SourceError`.

        ``rows`` (about how many rows the frame has) above :data:`RESULT_ROWS`: the frame is
        spread over parts of at most that many rows first, and each part's answer is a task
        result of its own, so the driver's JVM holds a few of them at a time (Spark's answer
        per task holds a whole partition: a 2,000,000-row training sample in 3 partitions
        needed more than a 1 GB driver). The rows come back in another order, and the driver's
        JVM gives the heap the parts took back to the system afterwards (a full collection:
        G1 keeps a grown heap otherwise; 1.3 GB resident after a 0.7 GB sample, 0.6 GB after
        the collection, while the driver's Python goes on to train on it)."""
        if isinstance(frame, pl.DataFrame):
            return frame.cast(schema) if schema else frame
        large = rows is not None and rows > RESULT_ROWS
        if large:
            frame = frame.repartition(-(-(rows or 0) // RESULT_ROWS))
        try:
            with self.watch(what):
                table = frame.toArrow()
        except Exception as e:
            raise _translate(e, self.master) from None
        if large:
            self.session.sparkContext._jvm.java.lang.System.gc()  # type: ignore[union-attr]
        out = _polars(table)
        return out.cast(schema) if schema else out

    # -- the engine contract -------------------------------------------------------------
    def _tasks(self, height: int, rows: int | None = None) -> int:
        """Tasks of at most ``rows_per_task`` (or ``rows``) rows, and at least one per core."""
        size = min(self.rows_per_task, rows) if rows else self.rows_per_task
        cores = int(self.session.sparkContext.defaultParallelism)
        return max(cores, -(-height // size))

    def _memo(self, frame: SparkFrame) -> dict[str, Any]:
        """What is known of ``frame`` already (filled by :meth:`_height` and :meth:`_sample`)."""
        try:
            return self._known.setdefault(frame, {})
        except TypeError:  # a frame that takes no weak reference: asked again each time
            return {}

    def _height(self, frame: pl.DataFrame | SparkFrame) -> int:
        if isinstance(frame, pl.DataFrame):
            return frame.height
        known = self._memo(frame)
        if "height" not in known:
            try:
                with self.watch("count rows"):
                    known["height"] = int(frame.count())
            except Exception as e:  # the first job on an input the executors may not read
                raise _translate(e, self.master) from None
        return int(known["height"])

    def _sample(self, frame: pl.DataFrame | SparkFrame, by: str) -> pl.DataFrame:
        """The rows of one entity, for reading off a function's output schema."""
        if isinstance(frame, pl.DataFrame):
            head = frame.head(1)
            return frame.filter(pl.col(by).eq_missing(head[by][0])) if head.height else frame
        from pyspark.sql import functions as F

        known = self._memo(frame)
        if f"sample:{by}" in known:
            return known[f"sample:{by}"]  # type: ignore[no-any-return]
        first = self.collect(frame.select(by).limit(1), what="one entity")
        if first.height == 0:
            sample = self.head(frame, 0)
        else:
            key = first[by][0]
            which = F.col(by).isNull() if key is None else F.col(by) == F.lit(key)
            sample = self.collect(frame.filter(which), what="one entity's rows")
        known[f"sample:{by}"] = sample
        return sample

    def per_group(
        self,
        frame: pl.DataFrame | SparkFrame,
        by: str,
        func: FrameFunc,
        *,
        track: Track | None = None,
        rows: int | None = None,
        keep: bool = False,
    ) -> Any:
        """``groupBy(bucket of by).applyInArrow(func)`` — whole entities per call, tasks of
        at most ``rows`` rows when given (``track`` is for local parts: Spark shows its own).
        With ``keep`` the answer stays on the executors: a Spark frame, kept on their disks
        once made (``DISK_ONLY``), so the facts and the writes that read it run it once."""
        from pyspark.sql import functions as F

        sdf = self.to_spark(frame)
        sample = self._sample(frame, by)
        in_schema = sample.schema
        out_schema = func(sample).schema
        spark_schema, arrow_schema = _schemas(out_schema)

        batch_rows = int(self.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch", 10_000))

        def run(table: pa.Table) -> pa.Table:
            import pyarrow as pa

            part = _polars(table).drop("_bucket").cast(in_schema)
            out = _arrow(func(part).cast(out_schema)).cast(arrow_schema)
            # back to the executor's JVM in batches, not one batch of the whole answer: a
            # task's heap holds one batch at a time (propensity's answer is millions of rows)
            return pa.Table.from_batches(out.to_batches(max_chunksize=batch_rows), arrow_schema)

        n = self._tasks(self._height(frame), rows)
        bucketed = sdf.withColumn(
            "_bucket", F.pmod(F.xxhash64(F.col(by), F.lit(BUCKET_SEED)), F.lit(n))
        )
        grouped = bucketed.groupBy("_bucket").applyInArrow(run, spark_schema)
        if keep:
            return _kept(grouped)
        return self.collect(grouped, out_schema, what=f"{_named(func)} per {by} ({n} tasks)")

    def count_by(self, frame: pl.DataFrame | SparkFrame, keys: Sequence[str]) -> pl.DataFrame:
        """``groupBy(keys).count()`` in Spark; ``count`` as UInt32 like polars' ``len``."""
        counted = self.to_spark(frame).groupBy(*keys).count()
        counts = self.collect(counted, what=f"counts by {', '.join(keys)}")
        return counts.with_columns(pl.col("count").cast(pl.UInt32))

    def sessions(
        self,
        events: pl.DataFrame | SparkFrame,
        *,
        gap: timedelta,
        by: str | Sequence[str],
        time: str,
        keep: bool = False,
    ) -> Any:
        """:meth:`sessionize` (the engine contract's name)."""
        return self.sessionize(events, gap=gap, by=by, time=time, keep=keep)

    def sessionize(
        self,
        events: pl.DataFrame | SparkFrame,
        *,
        gap: timedelta,
        by: str | Sequence[str],
        time: str,
        keep: bool = False,
    ) -> Any:
        """The columns of :func:`opslens.features.events.sessionize`, from Spark window
        functions; rows sorted by key, time and input order (Spark's order for a Spark frame).
        With ``keep``: a Spark frame of the same columns, kept on the executors' disks once
        made (in no particular order)."""
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        keys = [by] if isinstance(by, str) else list(by)
        if isinstance(events, pl.DataFrame):
            schema = events.schema
            sdf = self.to_spark(events.with_row_index("_row"))
        else:
            schema = self.head(events, 0).schema
            sdf = events.withColumn("_row", F.monotonically_increasing_id())
        micros = F.unix_micros(F.col(time).cast("timestamp"))
        gap_us = int(gap / timedelta(microseconds=1))
        ordered = Window.partitionBy(*keys).orderBy(time, "_row")
        new = F.lag(micros).over(ordered).isNull() | (
            (micros - F.lag(micros).over(ordered)) > gap_us
        )
        running = ordered.rowsBetween(Window.unboundedPreceding, Window.currentRow)
        out = sdf.withColumn("_new", new.cast("int")).withColumn(
            "session_index", (F.sum("_new").over(running) - 1).cast("int")
        )
        session = Window.partitionBy(*keys, "session_index")
        in_session = session.orderBy(time, "_row")
        in_running = in_session.rowsBetween(Window.unboundedPreceding, Window.currentRow)
        label = [F.col(k).cast("string") for k in keys]
        cols = [
            F.concat_ws("-", *label, F.col("session_index").cast("string")).alias("session_id"),
            F.min(time).over(session).alias("session_start"),
            F.max(time).over(session).alias("session_end"),
            F.count(F.lit(1)).over(session).cast("int").alias("session_events"),
            F.row_number().over(in_session).cast("int").alias("session_event"),
        ]
        if "event_type" in schema:
            carts = (F.col("event_type") == "add_to_cart").cast("int")
            cols.append(F.sum(carts).over(in_running).cast("int").alias("session_carts"))
        out = out.select("*", *cols).drop("_new")
        added: dict[str, Any] = {
            "session_index": pl.Int32,
            "session_id": pl.String,
            "session_start": schema[time],
            "session_end": schema[time],
            "session_events": pl.Int32,
            "session_event": pl.Int32,
        }
        if "event_type" in schema:
            added["session_carts"] = pl.Int32
        if keep:
            span = F.unix_micros(F.col("session_end").cast("timestamp")) - F.unix_micros(
                F.col("session_start").cast("timestamp")
            )
            kept = out.select(*schema, *added).withColumn(
                "session_seconds", span.cast("double") / F.lit(1_000_000.0)
            )
            return _kept(kept)
        local = self.collect(out, what=f"sessions per {', '.join(keys)}")
        span_pl = pl.col("session_end") - pl.col("session_start")
        return (
            local.sort(*keys, time, "_row")
            .select(*schema, *added)
            .cast(pl.Schema({**dict(schema), **added}))
            .with_columns(session_seconds=span_pl.dt.total_seconds(fractional=True))
        )

    # -- engine frames -------------------------------------------------------------------
    def summarise(
        self,
        frame: pl.DataFrame | SparkFrame,
        aggs: Mapping[str, tuple[str, str]],
        by: Sequence[str] = (),
    ) -> pl.DataFrame:
        """The aggregations as one Spark job (``groupBy(by).agg``); the small answer as polars,
        sorted by ``by`` (``median`` is exact: Spark's ``percentile`` of 0.5, interpolated as
        polars does)."""
        from pyspark.sql import functions as F

        if isinstance(frame, pl.DataFrame):
            from opslens.core.engine import LocalEngine

            return LocalEngine().summarise(frame, aggs, by)
        exprs = []
        for name, (op, column) in aggs.items():
            if op not in AGGREGATIONS:
                raise ValueError(f"summarise knows {', '.join(AGGREGATIONS)}, not {op!r}")
            col = F.col(column) if op != "count" else F.lit(1)
            expr = {
                "count": lambda c: F.count(c).cast("long"),
                "sum": F.sum,
                "min": F.min,
                "max": F.max,
                "mean": F.avg,
                "median": lambda c: F.percentile(c, F.lit(0.5)),
                "n_unique": lambda c: F.countDistinct(c).cast("long"),
            }[op](col)
            exprs.append(expr.alias(name))
        grouped = frame.groupBy(*by).agg(*exprs) if by else frame.agg(*exprs)
        out = self.collect(grouped, what=f"summary{' by ' + ', '.join(by) if by else ''}")
        return out.sort(list(by), nulls_last=True) if by else out

    def head(self, frame: pl.DataFrame | SparkFrame, n: int) -> pl.DataFrame:
        """At most ``n`` rows as polars (``limit(n)``; the schema alone for ``n = 0``)."""
        if isinstance(frame, pl.DataFrame):
            return frame.head(n)
        if n <= 0:  # the schema alone: no job
            import pyarrow as pa
            from pyspark.sql.pandas.types import to_arrow_schema

            return _polars(pa.Table.from_batches([], to_arrow_schema(frame.schema)))
        return self.collect(frame.limit(n), what=f"first {n} rows")

    def height(self, frame: pl.DataFrame | SparkFrame) -> int:
        """The number of rows (a count job for a Spark frame)."""
        return self._height(frame)

    def concat(self, frames: Sequence[pl.DataFrame | SparkFrame]) -> SparkFrame:
        """``unionByName`` of the frames (as Spark frames): nothing moves until it is used."""
        out = self.to_spark(frames[0])
        for other in frames[1:]:
            out = out.unionByName(self.to_spark(other))
        return out

    def numbered(self, frame: pl.DataFrame | SparkFrame, name: str) -> SparkFrame:
        """``monotonically_increasing_id`` as ``name``: increasing in the order the frame's
        partitions hold the rows (a Parquet file's order within each file), not consecutive."""
        from pyspark.sql import functions as F

        return self.to_spark(frame).withColumn(name, F.monotonically_increasing_id())

    def positions(self, frame: pl.DataFrame | SparkFrame, name: str) -> SparkFrame:
        """Consecutive positions 0, 1, 2, ... as ``name`` in the frame's row order: each
        ``monotonically_increasing_id`` (the partition in its upper 31 bits) plus the rows of
        the partitions before it (one small job counts the rows per partition). The numbered
        frame is kept on the executors' disks first, so later jobs see the same numbers."""
        from pyspark.sql import functions as F

        ids = _kept(self.numbered(frame, "_id"))
        part = F.shiftright(F.col("_id"), 33)
        counts = self.collect(ids.groupBy(part.alias("p")).count(), what="rows per partition")
        counts = counts.sort("p").with_columns(start=pl.col("count").cum_sum() - pl.col("count"))
        pairs = [F.lit(int(v)) for row in counts.select("p", "start").iter_rows() for v in row]
        within = F.col("_id").bitwiseAND(F.lit((1 << 33) - 1))
        offset = F.create_map(*pairs)[part] if pairs else F.lit(0)
        return ids.withColumn(name, (offset + within).cast("long")).drop("_id")

    def store(self, frame: pl.DataFrame | SparkFrame, path: Path) -> None:
        """Write ``frame`` as a Parquet folder at ``path`` (part files written by the executors,
        so the folder must be one they reach under the same path); a kept frame's disk copy is
        let go once written."""
        sdf = self.to_spark(frame)
        try:
            with self.watch(f"write {Path(path).name}"):
                sdf.write.mode("error").parquet(str(path))
        except Exception as e:
            raise _translate(e, self.master) from None
        if sdf.is_cached:
            sdf.unpersist()

    def read(self, source: str | Path, *, table: str | None = None) -> SparkFrame:
        """A Parquet file or folder (:meth:`read_parquet`), or the SQL ``table`` at the URL
        ``source`` (:meth:`read_jdbc`, partitioned by ``spark.jdbc``): read by the executors."""
        if table is not None:
            return self.read_jdbc(str(source), table)
        return self.read_parquet(source)

    def _map_kept(self, frame: pl.DataFrame | SparkFrame, func: FrameFunc) -> SparkFrame:
        """``func`` on every Arrow batch (``mapInArrow``), the answers left on the executors."""
        sdf = self.to_spark(frame)
        sample = self.head(sdf, 100)
        in_schema = sample.schema
        out_schema = func(sample).schema
        spark_schema, arrow_schema = _schemas(out_schema)
        shared = self.session.sparkContext.broadcast(func)

        def batches(it: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            for batch in it:
                answers = shared.value(_polars(batch).cast(in_schema)).cast(out_schema)
                yield from _arrow(answers).cast(arrow_schema).to_batches()

        return sdf.mapInArrow(batches, spark_schema)

    def map_batches(
        self,
        frame: pl.DataFrame | SparkFrame,
        func: FrameFunc,
        *,
        key: str | None = None,
        keep: bool = False,
    ) -> Any:
        """Batch scoring: ``func`` broadcast once to the tasks; ``mapInArrow`` over the rows,
        answers back in input order (whole ``key`` groups via ``applyInArrow`` when given).
        With ``keep`` the answers stay on the executors (a Spark frame, in no order; ``func``
        may give any number of rows per batch: a filter, an aggregation of the batch)."""
        from pyspark.sql import functions as F

        if key is not None:
            shared = self.session.sparkContext.broadcast(func)
            return self.per_group(frame, key, lambda part: shared.value(part), keep=keep)
        if keep:
            return self._map_kept(frame, func)
        if isinstance(frame, pl.DataFrame):
            sample, sdf = frame.head(100), self.to_spark(frame.with_row_index("_row"))
        else:  # a Spark frame (Parquet read by Spark): its order is Spark's
            sample = self.collect(frame.limit(100))
            sdf = frame.withColumn("_row", F.monotonically_increasing_id())
        in_schema = sample.schema
        out_schema = func(sample).schema
        spark_schema, arrow_schema = _schemas(
            pl.Schema([*out_schema.items(), ("_row", pl.Int64())])
        )
        shared = self.session.sparkContext.broadcast(func)

        def batches(it: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            for batch in it:
                part = _polars(batch)
                rows = part["_row"].cast(pl.Int64)
                answers = shared.value(part.drop("_row").cast(in_schema)).cast(out_schema)
                yield from _arrow(_in_place(answers, rows)).cast(arrow_schema).to_batches()

        scored = sdf.mapInArrow(batches, spark_schema)
        result = self.collect(scored, what=f"{_named(func)} on batches").sort("_row")
        if "row" in out_schema and not isinstance(frame, pl.DataFrame):
            result = result.with_columns(pl.col("row").rank("dense").cast(pl.Int64) - 1)
        return result.drop("_row").cast(out_schema)


def _kept(frame: SparkFrame) -> SparkFrame:
    """``frame`` kept on the executors' disks once made (the facts and the writes of a stage
    read it several times; the driver holds none of it)."""
    from pyspark import StorageLevel

    return frame.persist(StorageLevel.DISK_ONLY)


def _named(func: Any) -> str:
    """A function's name for the log, through ``functools.partial``; a step composed of two
    (``then=``: a row selection, then the per-group work) is named by its second.

    Example:
        >>> from functools import partial
        >>> def pick(p): return p
        >>> def facts(p, k): return p
        >>> _named(partial(facts, k=1)), _named(partial(pick, then=partial(facts, k=1)))
        ('facts', 'facts')
    """
    while isinstance(func, partial):
        func = func.keywords.get("then", func.func)
    return str(getattr(func, "__name__", type(func).__name__))


def _in_place(answers: pl.DataFrame, rows: pl.Series) -> pl.DataFrame:
    """Answers of a batch with the batch rows' positions in the whole input: ``_row`` (one answer
    per row), and ``row`` (an answer's position, where the model reports one) made global."""
    if answers.height != rows.len():
        raise ContractError(
            f"a batch of {rows.len()} rows got {answers.height} answers; batch scoring needs one "
            "answer per row"
        )
    if "row" in answers.columns:
        answers = answers.with_columns(row=rows.gather(answers["row"]))
    return answers.with_columns(_row=rows)


def _schemas(schema: pl.Schema) -> tuple[Any, pa.Schema]:
    """The Spark schema of a polars schema, and the Arrow schema Spark expects back."""
    from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

    empty = _arrow(pl.DataFrame(schema=schema))
    spark = from_arrow_schema(empty.schema)
    return spark, to_arrow_schema(spark)


def _bound(value: Any) -> int | str:
    """A JDBC partition bound as Spark takes it: an integer, or a date/timestamp as text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    return str(value)


def _jdbc(url: str) -> tuple[str, dict[str, str]]:
    """``postgresql://user:pw@host:5432/db`` → (``jdbc:postgresql://host:5432/db``, properties)."""
    if url.startswith("jdbc:"):
        return url, {}
    from sqlalchemy.engine.url import make_url

    u = make_url(url)
    backend = u.get_backend_name()
    if backend not in ("postgresql", "mysql", "mariadb"):
        raise ConfigError(
            f"engine: spark reads no '{backend}' tables over JDBC",
            fix="use a postgresql:// or mysql:// source, or engine: local",
        )
    props = {
        "driver": {"postgresql": "org.postgresql.Driver"}.get(backend, "org.mariadb.jdbc.Driver")
    }
    if u.username:
        props["user"] = u.username
    if u.password:
        props["password"] = str(u.password)
    port = f":{u.port}" if u.port else ""
    return f"jdbc:{backend}://{u.host or '127.0.0.1'}{port}/{u.database or ''}", props
