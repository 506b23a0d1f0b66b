"""The whole fleet recipe at 1k, 10k, 30k and 100k devices × 1,000 points: per stage and per device.

    python benchmarks/fleet_scaling.py [--devices 1000 10000 30000 100000] [--points 1000] [--ari]

Each size runs in a fresh process (tracking off) on a synthetic fleet with three
metrics, planted groups and 4% failing devices (failure list with dates, so the
health stage's warning rule and its lead time run too). Fleets above 10,000 devices are made of 10,000-device
parts (seeds 0, 1, ...) so the generator's memory stays small. Per stage the child
records wall time, CPU time (``time.process_time``: every thread of the process,
so on a shared, loaded machine it is the steadier figure), the RSS it starts and ends
with, and its own peak RSS (VmHWM reset through ``/proc/self/clear_refs`` before the
stage). The run's peak is the largest of the stages' peaks and of the peaks between
them (loading the source).
Per size it prints the totals, the time per 1,000 devices and its growth against
the smallest size (near 1.0 = linear cost).

``--ari`` (sizes up to 10,000) also compares the sampled Ward and DBSCAN of the
``groups`` stage with the full methods on the same fingerprints: adjusted Rand
index between the labels.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

PART = 10_000

PROJECT = """
tracking: {enabled: false}
analyses:
  - name: fleet
    recipe: fleet
    source: {kind: file, path: readings.parquet}
    columns: {entity: device_id, time: timestamp, metrics: [temperature, vibration, current]}
    params:
      failures: {path: failures.csv}
      lead_time: {window: 7d, step: 1d, horizon: 14d, top_k: 50}
"""

WRITER = r"""
import sys
from pathlib import Path
import polars as pl
from opslens.synthetic.fleet import make_fleet
folder, n, points, part = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
files, failed = [], []
for i, lo in enumerate(range(0, n, part)):
    size = min(part, n - lo)
    d = make_fleet(n_devices=size, n_points=points, n_failing=max(3, size // 25), seed=i)
    r, t = d.readings, d.truth
    if n > part:  # distinct ids per part, still sorted by device
        r = r.with_columns(pl.format("p{}-{}", pl.lit(i), "device_id").alias("device_id"))
        t = t.with_columns(pl.format("p{}-{}", pl.lit(i), "device_id").alias("device_id"))
    files.append(folder / f"part{i}.parquet")
    r.write_parquet(files[-1])
    failed.append(t.filter(pl.col("failed")).select("device_id", "failure_time"))
    del d, r
pl.scan_parquet(files).sink_parquet(folder / "readings.parquet")
for f in files:
    f.unlink()
pl.concat(failed).write_csv(folder / "failures.csv")
"""

CHILD = r"""
import json, sys, time
import numpy as np
from opslens.api import load_project
from opslens.runner import run_analysis
from opslens.tracking.tracker import MemoryTracker
import opslens.recipes.fleet as fleet

def rss_mb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")

def reset_peak():
    # writing 5 to clear_refs resets VmHWM to the current RSS (Linux); the stage's own peak
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass

stats, kept, between = {}, {}, []
for stage in fleet.RECIPE.pipelines["train"]:
    def timed(*args, _f=stage.func, _name=stage.name, **kwargs):
        between.append(rss_mb("VmHWM"))  # the peak since the last stage (loading the source)
        reset_peak()
        start_mb = rss_mb("VmRSS")
        wall, cpu = time.perf_counter(), time.process_time()
        out = _f(*args, **kwargs)
        stats[_name] = {
            "wall_s": time.perf_counter() - wall,
            "cpu_s": time.process_time() - cpu,
            "start_mb": start_mb,
            "stage_peak_mb": rss_mb("VmHWM"),
            "end_mb": rss_mb("VmRSS"),
        }
        reset_peak()
        if _name == "fingerprint":
            kept["fingerprints"] = out.values["fingerprints"]
        return out
    object.__setattr__(stage, "func", timed)

project = load_project(sys.argv[1])
wall, cpu = time.perf_counter(), time.process_time()
result = run_analysis(project, "fleet", tracker=MemoryTracker())
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
between.append(rss_mb("VmHWM"))
out = {
    "wall_s": wall,
    "cpu_s": cpu,
    # resetting VmHWM resets ru_maxrss too: the run's peak is the largest of the parts
    "peak_mb": max(between + [s["stage_peak_mb"] for s in stats.values()]),
    "stages": stats,
    "metrics": result.metrics,
}
if sys.argv[2] == "ari":
    from sklearn.metrics import adjusted_rand_score
    from opslens.cluster.groups import find_groups
    from opslens.recipes.fleet.params import analysed_features
    fp = analysed_features(kept["fingerprints"], project.analysis("fleet").params)
    n = fp.height
    full = find_groups(fp, entity="device_id", max_agglomerative=n, max_dbscan=n)
    part = find_groups(fp, entity="device_id", max_agglomerative=5000, max_dbscan=5000)
    out["ari"] = {
        m: adjusted_rand_score(full.labels[m].to_numpy(), part.labels[m].to_numpy())
        for m in ("agglomerative", "dbscan")
    }
print(json.dumps(out))
"""


def run_size(n: int, points: int, ari: bool) -> dict[str, object]:
    """Write an ``n``-device fleet and run the recipe on it in a child process."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        subprocess.run(
            [sys.executable, "-c", WRITER, tmp, str(n), str(points), str(PART)], check=True, env=env
        )
        (folder / "project.yaml").write_text(PROJECT)
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(folder / "project.yaml"), "ari" if ari else "-"],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        )
        return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, nargs="+", default=[1000, 10000, 30000, 100000])
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--ari", action="store_true", help="sampled vs full groups (<= 10k)")
    args = parser.parse_args()
    rows = []
    for n in args.devices:
        r = run_size(n, args.points, args.ari and n <= PART)
        rows.append((n, r))
        print(
            f"{n:>7} devices: wall {r['wall_s']:.1f} s, CPU {r['cpu_s']:.1f} s, "
            f"peak {r['peak_mb']:.0f} MB",
            flush=True,
        )
        for name, s in r["stages"].items():  # type: ignore[attr-defined]
            print(
                f"    {name:<12} wall {s['wall_s']:>7.1f} s  CPU {s['cpu_s']:>7.1f} s  "
                f"RSS in {s['start_mb']:>6.0f} MB  stage peak {s['stage_peak_mb']:>6.0f} MB  "
                f"out {s['end_mb']:>6.0f} MB",
                flush=True,
            )
        if "ari" in r:
            print(f"    sampled vs full groups, ARI: {r['ari']}", flush=True)
    base_n, base = rows[0]
    base_cpu = float(base["cpu_s"]) / base_n  # type: ignore[arg-type]
    print("\ndevices  wall_s   cpu_s  peak_MB  cpu_s_per_1k  wall_s_per_1k  cpu_growth")
    for n, r in rows:
        cpu, wall = float(r["cpu_s"]), float(r["wall_s"])  # type: ignore[arg-type]
        print(
            f"{n:>7}  {wall:>6.1f}  {cpu:>6.1f}  {r['peak_mb']:>7.0f}  {cpu / n * 1000:>12.2f}  "
            f"{wall / n * 1000:>13.2f}  {cpu / n / base_cpu:>10.2f}"
        )


if __name__ == "__main__":
    main()
