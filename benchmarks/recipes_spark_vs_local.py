"""Whole recipes on engine local against engine spark on a loopback cluster: when does a cluster pay?

    python benchmarks/recipes_spark_vs_local.py [--fleet 2000 10000] [--distribution 1000000 5000000]
        [--propensity 2000 5000] [--days 180] [--repeat 1]

For each recipe and size the source is written as Parquet by another process (fleet:
devices × 1,000 hourly points, 3 metrics, 4% failing, as benchmarks/fleet_scaling.py;
distribution: synthetic trips, rows, 4 categoricals; propensity: users × ``--days`` days
of clickstream, weekly prediction times), then the same project runs in a fresh process
on ``engine: local`` and on ``engine: spark`` at a master and two workers on loopback
(one core each, executors of ``--executor-memory``; the cluster is started once and its
start is not counted, each Spark run's own session start is). Per run: wall time, the
driver's CPU time, the driver Python's peak (VmHWM), the driver JVM's and the executors'
peak RSS (sampled every 0.5 s from outside, as benchmarks/propensity_production.py does).
The two runs' metrics are checked equal. ``--repeat n`` runs each n times and prints the
median with min–max.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent

HEAD = """
engine: {engine}
spark: {spark}
tracking: {{enabled: false}}
analyses:
"""

ANALYSES = {
    "fleet": """
  - name: run
    recipe: fleet
    source: {{kind: file, path: {folder}/readings.parquet}}
    columns: {{entity: device_id, time: timestamp, metrics: [temperature, vibration, current]}}
    params:
      failures: {{path: {folder}/failures.csv}}
      lead_time: {{window: 7d, step: 1d, horizon: 14d, top_k: 50}}
""",
    "distribution": """
  - name: run
    recipe: distribution
    source: {{kind: file, path: {folder}/trips.parquet}}
    columns: {{time: started_at, target: duration_min, categorical: [route, hour_band, vehicle_type, weekday]}}
    params: {{min_combination_size: 30, unit: min}}
""",
    "propensity": """
  - name: run
    recipe: propensity
    source: {{kind: file, path: {folder}/events.parquet}}
    columns: {{entity: user_id, group: item_id, target: event_type, time: timestamp}}
    random_state: 42
    params:
      features: {{every: 7d, lookback: 3d, horizon: 7d}}
""",
}

TRIPS = r"""
import sys
from pathlib import Path
from opslens.synthetic.trips import make_trips
make_trips(n_rows=int(sys.argv[2]), seed=0).trips.write_parquet(Path(sys.argv[1]) / "trips.parquet")
"""


def _module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PRODUCTION = _module("propensity_production")
SCALING = _module("fleet_scaling")


def write(recipe: str, size: int, folder: Path, days: int) -> None:
    """The recipe's source at ``size`` as Parquet in ``folder`` (another process)."""
    if recipe == "fleet":
        argv = ["-c", SCALING.WRITER, str(folder), str(size), "1000", str(SCALING.PART)]
    elif recipe == "distribution":
        argv = ["-c", TRIPS, str(folder), str(size)]
    else:
        argv = ["-c", PRODUCTION.WRITE, str(size), str(days), str(folder / "events.parquet")]
    subprocess.run([sys.executable, *argv], check=True, capture_output=True)


def run(
    recipe: str, folder: Path, engine: str, master: str, conf: dict[str, str], workers: list[int]
) -> dict[str, Any]:
    """One fresh run of the recipe's project on ``engine``: the child's figures and the peaks."""
    spark = json.dumps({"master": master, "conf": conf})
    text = HEAD.format(engine=engine, spark=spark) + ANALYSES[recipe].format(folder=folder)
    project = folder / f"project-{engine}.yaml"
    project.write_text(text)
    code = PRODUCTION.CHILD.replace('"shop"', '"run"')
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(project)], stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True, env=env,
    )  # fmt: skip
    sampler = PRODUCTION.Sampler(child.pid, workers)
    sampler.thread.start()
    out, _ = child.communicate()
    sampler.stop.set()
    sampler.thread.join()
    if child.returncode:
        raise SystemExit(f"{recipe} on {engine} failed ({child.returncode})")
    got: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    got["peaks"] = dict(sampler.peaks)
    return got


def _shown(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:7.0f}"
    return f"{statistics.median(values):7.0f} ({min(values):.0f}–{max(values):.0f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fleet", type=int, nargs="*", default=[2_000, 10_000])
    ap.add_argument("--distribution", type=int, nargs="*", default=[1_000_000, 5_000_000])
    ap.add_argument("--propensity", type=int, nargs="*", default=[2_000, 5_000])
    ap.add_argument("--days", type=int, default=180)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--worker-memory", default="3g")
    ap.add_argument("--executor-memory", default="2g")
    ap.add_argument("--driver-memory", default="4g", help="the driver JVM's heap")
    args = ap.parse_args()
    sys.path.insert(0, str(HERE.parent))
    from tests.fakes.spark_cluster import LoopbackCluster

    with tempfile.TemporaryDirectory() as tmp:
        cluster = LoopbackCluster(
            Path(tmp) / "cluster", workers=2, cores=1, memory=args.worker_memory
        ).start()
        conf = {
            "spark.driver.memory": args.driver_memory,
            "spark.executor.memory": args.executor_memory,
            "spark.executor.cores": "1",
            "spark.cores.max": "2",
            "spark.driver.host": "127.0.0.1",
            "spark.driver.bindAddress": "127.0.0.1",
        }
        workers = [p.popen.pid for p in cluster._procs[1:]]
        print("recipe        size        local s (CPU s, peak MB)   spark s (driver CPU s, "
              "Python peak MB, JVM peak MB, executors peak MB)   spark/local", flush=True)  # fmt: skip
        try:
            for recipe in ("fleet", "distribution", "propensity"):
                for size in getattr(args, recipe):
                    folder = Path(tmp) / f"{recipe}-{size}"
                    folder.mkdir()
                    write(recipe, size, folder, args.days)
                    local = [
                        run(recipe, folder, "local", "local[2]", {}, []) for _ in range(args.repeat)
                    ]
                    spark = [
                        run(recipe, folder, "spark", cluster.master_url, conf, workers)
                        for _ in range(args.repeat)
                    ]
                    same = local[0]["metrics"] == spark[0]["metrics"]
                    lw = [r["wall_s"] for r in local]
                    sw = [r["wall_s"] for r in spark]
                    executors = max(
                        (v for k, v in spark[0]["peaks"].items() if k.startswith("worker")),
                        default=float("nan"),
                    )
                    print(
                        f"{recipe:<13} {size:>9,}  {_shown(lw)} ({local[0]['cpu_s']:.0f}, "
                        f"{local[0]['peak_mb']:,.0f})   {_shown(sw)} ({spark[0]['cpu_s']:.0f}, "
                        f"{spark[0]['peak_mb']:,.0f}, "
                        f"{spark[0]['peaks'].get('driver JVM', float('nan')):,.0f}, "
                        f"{executors:,.0f})   {statistics.median(sw) / statistics.median(lw):5.2f}x"
                        f"{'' if same else '  METRICS DIFFER'}",
                        flush=True,
                    )
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
