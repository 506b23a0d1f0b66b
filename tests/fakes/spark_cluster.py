"""A real Spark standalone cluster on loopback: one master and N workers, for the tests.

Started from the pyspark distribution's own launcher (``bin/spark-class``) with
the master and worker classes, on free 127.0.0.1 ports, each worker with its
own core and memory limit and its own work folder. ``start`` returns once every
worker has registered with the master (read from the master's
``http://127.0.0.1:<ui>/json``); ``stop`` ends every process it started (the
executors are the workers' children and end with them).

Example (not run here: each JVM takes a few seconds):
    >>> cluster = LoopbackCluster(Path("/tmp/c"), workers=2)  # doctest: +SKIP
    >>> cluster.start().master_url  # doctest: +SKIP
    'spark://127.0.0.1:40123'
    >>> cluster.stop()  # doctest: +SKIP
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

__all__ = ["ClusterError", "LoopbackCluster", "free_port", "spark_home"]


class ClusterError(RuntimeError):
    """The cluster did not come up (the message names the process and its log)."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spark_home() -> Path:
    """The pyspark package's folder, which holds ``bin/spark-class`` and ``jars/``."""
    import pyspark

    return Path(pyspark.__file__).parent


@dataclass
class _Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    ui_port: int


@dataclass
class LoopbackCluster:
    """A master and ``workers`` workers on 127.0.0.1 (see the module docstring)."""

    root: Path
    workers: int = 2
    cores: int = 1
    memory: str = "1g"
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    ui_port: int = 0
    _procs: list[_Proc] = field(default_factory=list)

    @property
    def master_url(self) -> str:
        """``spark://127.0.0.1:<port>``."""
        return f"spark://127.0.0.1:{self.port}"

    def _spawn(self, name: str, cls: str, *args: str, ui_port: int) -> _Proc:
        log = self.root / f"{name}.log"
        env = {
            **os.environ,
            "SPARK_HOME": str(spark_home()),
            "SPARK_LOCAL_IP": "127.0.0.1",
            "SPARK_DAEMON_MEMORY": "256m",  # the master's and the workers' own JVMs
            "SPARK_LOG_DIR": str(self.root),
            **self.env,
        }
        command = [str(spark_home() / "bin" / "spark-class"), cls, *args]
        with log.open("wb") as out:
            popen = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.root,
                start_new_session=True,  # its own process group: stop() ends the executors too
            )
        return _Proc(name, popen, log, ui_port)

    def state(self) -> dict[str, Any]:
        """The master's JSON status (workers, their state, running applications)."""
        url = f"http://127.0.0.1:{self.ui_port}/json"
        with urllib.request.urlopen(url, timeout=2) as answer:
            return dict(json.loads(answer.read()))

    def alive_workers(self) -> int:
        """Workers the master counts as ALIVE."""
        try:
            return sum(w.get("state") == "ALIVE" for w in self.state().get("workers", []))
        except OSError:
            return 0

    def _worker(self, i: int) -> _Proc:
        work = self.root / f"work-{i}"
        work.mkdir(exist_ok=True)
        ui = free_port()
        return self._spawn(
            f"worker-{i}",
            "org.apache.spark.deploy.worker.Worker",
            self.master_url,
            "--host", "127.0.0.1", "--cores", str(self.cores), "--memory", self.memory,
            "--work-dir", str(work), "--webui-port", str(ui),
            ui_port=ui,
        )  # fmt: skip

    def wait_for_workers(self, n: int, timeout: float = 60.0) -> int:
        """Poll the master until exactly ``n`` workers are ALIVE (or ``timeout``); the count."""
        deadline = time.monotonic() + timeout
        while (alive := self.alive_workers()) != n and time.monotonic() < deadline:
            time.sleep(0.5)
        return alive

    def restart_worker(self, i: int, timeout: float = 90.0) -> None:
        """Start worker ``i`` again (after :meth:`kill_worker`) and wait until it registered."""
        self._procs[1 + i] = self._worker(i)
        self.wait_for_workers(self.workers, timeout)

    def start(self, timeout: float = 90.0) -> Self:
        """Start the master and the workers; return once all workers are ALIVE at the master."""
        self.root.mkdir(parents=True, exist_ok=True)
        atexit.register(self.stop)
        self.port, self.ui_port = free_port(), free_port()
        master = self._spawn(
            "master",
            "org.apache.spark.deploy.master.Master",
            "--host", "127.0.0.1", "--port", str(self.port), "--webui-port", str(self.ui_port),
            ui_port=self.ui_port,
        )  # fmt: skip
        self._procs.append(master)
        for i in range(self.workers):
            self._procs.append(self._worker(i))
        deadline = time.monotonic() + timeout
        while self.alive_workers() < self.workers:
            for proc in self._procs:
                if proc.popen.poll() is not None:
                    tail = proc.log.read_text(errors="replace").strip().splitlines()[-3:]
                    self.stop()
                    raise ClusterError(
                        f"Spark {proc.name} exited with {proc.popen.returncode}: "
                        + " | ".join(tail)
                    )
            if time.monotonic() > deadline:
                self.stop()
                raise ClusterError(
                    f"{self.workers} Spark workers did not register within {timeout:.0f} s "
                    f"(logs in {self.root})"
                )
            time.sleep(0.5)
        return self

    def worker_pids(self, i: int) -> list[int]:
        """Worker ``i``'s JVM and every process under it (its executors, their Python)."""
        proc = self._procs[1 + i]
        return [proc.popen.pid, *_descendants(proc.popen.pid)]

    def kill_worker(self, i: int) -> list[int]:
        """SIGKILL worker ``i``'s JVM and its executors (a machine lost mid-job); their pids."""
        proc = self._procs[1 + i]
        pids = [proc.popen.pid, *_descendants(proc.popen.pid)]
        _signal_group(proc.popen.pid, signal.SIGKILL)
        proc.popen.wait(timeout=10)
        return pids

    def stop(self) -> None:
        """End the workers (with their executors), then the master."""
        for proc in reversed(self._procs):
            _signal_group(proc.popen.pid, signal.SIGTERM)
        for proc in reversed(self._procs):
            try:
                proc.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
            _signal_group(proc.popen.pid, signal.SIGKILL)  # anything left in its group
            proc.popen.wait(timeout=5)
        self._procs.clear()


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc's children lists)."""
    out: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = Path(f"/proc/{parent}/task").iterdir()
            children = [int(c) for t in tasks for c in (t / "children").read_text().split()]
        except OSError:
            continue
        out.extend(children)
        todo.extend(children)
    return out
