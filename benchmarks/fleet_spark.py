"""The fleet recipe with ``engine: spark`` on a loopback cluster: the driver's memory and time.

    python benchmarks/fleet_spark.py [--devices 10000 30000 100000] [--points 1000]
        [--engine spark|local] [--master cluster|local[2]|spark://h:p]

The fleet (three metrics, hourly readings, 4% failing devices with failure times, as
benchmarks/fleet_scaling.py makes it, in 10,000-device parts) is written as Parquet by
another process, so the driver never holds it: with ``engine: spark`` the executors read
it, prepare it and fingerprint it, and the driver collects per-device answers only
(opslens.recipes.fleet.kept). Per size, a fresh run (tracking off) reports the wall time,
the driver Python's peak (VmHWM) and per stage, the driver JVM's peak RSS and each
worker's executors (JVM and Python workers summed), sampled every 0.5 s from outside —
the same measurement as ``benchmarks/propensity_production.py --engine spark``.
``--master cluster`` starts a master and two workers on loopback (one core and
``--worker-memory`` each, executors of ``--executor-memory``). ``--engine local`` runs
the same project on the local engine, for the time and peak to compare with.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent

PROJECT = """
engine: {engine}
spark: {spark}
tracking: {{enabled: false}}
analyses:
  - name: fleet
    recipe: fleet
    source: {{kind: file, path: {path}}}
    columns: {{entity: device_id, time: timestamp, metrics: [temperature, vibration, current]}}
    params:
      failures: {{path: {failures}}}
      lead_time: {{window: 7d, step: 1d, horizon: 14d, top_k: 50}}
"""


def _module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_one(devices: int, args: argparse.Namespace) -> dict[str, object]:
    """One fresh run at ``devices``: its figures (and the sampler's peaks for Spark)."""
    scaling = _module("fleet_scaling")

    def write(folder: Path) -> None:
        subprocess.run(
            [sys.executable, "-c", scaling.WRITER, str(folder), str(devices), str(args.points),
             str(scaling.PART)],
            check=True,
        )  # fmt: skip

    def project(folder: Path, spark: str) -> str:
        return PROJECT.format(
            engine=args.engine,
            spark=spark,
            path=folder / "readings.parquet",
            failures=folder / "failures.csv",
        )

    return measure(write, project, "fleet", args)


def measure(
    write: Callable[[Path], None],
    project: Callable[[Path, str], str],
    analysis: str,
    args: argparse.Namespace,
) -> dict[str, object]:
    """``write`` the data into a fresh folder, then run ``analysis`` of the ``project`` text
    (given the folder and the ``spark:`` settings) in a child process: its figures, and the
    peaks of the driver JVM and each worker's executors sampled from outside.
    ``args.master == "cluster"`` starts a master and two workers on loopback."""
    production = _module("propensity_production")
    child_code = production.CHILD.replace('"shop"', json.dumps(analysis))
    cluster = None
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        write(folder)
        written = time.perf_counter() - t0
        master = args.master
        conf: dict[str, str] = {}
        if args.engine == "spark" and master == "cluster":
            sys.path.insert(0, str(HERE.parent))
            from tests.fakes.spark_cluster import LoopbackCluster

            cluster = LoopbackCluster(
                folder / "cluster", workers=2, cores=1, memory=args.worker_memory
            ).start()
            master = cluster.master_url
            conf = {
                "spark.executor.memory": args.executor_memory,
                "spark.executor.cores": "1",
                "spark.cores.max": "2",
                "spark.driver.host": "127.0.0.1",
                "spark.driver.bindAddress": "127.0.0.1",
            }
        path = folder / "project.yaml"
        path.write_text(project(folder, json.dumps({"master": master, "conf": conf})))
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        try:
            child = subprocess.Popen(
                [sys.executable, "-c", child_code, str(path)],
                stdout=subprocess.PIPE, text=True, env=env,
            )  # fmt: skip
            workers = [p.popen.pid for p in cluster._procs[1:]] if cluster else []
            sampler = production.Sampler(child.pid, workers)
            sampler.thread.start()
            out, _ = child.communicate()
            sampler.stop.set()
            sampler.thread.join()
            if child.returncode:
                raise SystemExit(f"the run failed ({child.returncode})")
        finally:
            if cluster is not None:
                cluster.stop()
    got: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    got["written_s"] = written
    got["jvm_peaks"] = dict(sampler.peaks)
    return got


def report(what: str, got: dict[str, object]) -> None:
    """The run's figures: time, the driver's peaks (whole run, per stage), the metrics."""
    print(
        f"{what}: {got['wall_s']:.0f} s end to end ({got['cpu_s']:.0f} s driver CPU); "
        f"driver Python peak {got['peak_mb']:,.0f} MB",
        flush=True,
    )
    for name, mb in got["jvm_peaks"].items():  # type: ignore[attr-defined]
        print(f"  {name:<26} peak {mb:8,.0f} MB")
    for stage, seconds in got["stages"].items():  # type: ignore[attr-defined]
        peak = got["stage_peak_mb"].get(stage, float("nan"))  # type: ignore[attr-defined]
        print(f"  {stage:<11} {seconds:8.1f} s   driver Python peak {peak:8,.0f} MB")
    print("  metrics (all digits): " + json.dumps(got["metrics"], sort_keys=True), flush=True)


def arguments(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """The engine and cluster options every cluster benchmark takes, parsed."""
    parser.add_argument("--engine", choices=["local", "spark"], default="spark")
    parser.add_argument("--master", default="cluster", help="cluster, local[2] or spark://h:p")
    parser.add_argument("--worker-memory", default="4g")
    parser.add_argument("--executor-memory", default="3g")
    return parser.parse_args()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, nargs="*", default=[10_000, 30_000])
    parser.add_argument("--points", type=int, default=1000)
    args = arguments(parser)
    for devices in args.devices:
        where = f"spark at {args.master}" if args.engine == "spark" else "local"
        what = f"{devices:,} devices × {args.points:,} points, engine {where}"
        report(what, run_one(devices, args))


if __name__ == "__main__":
    main()
