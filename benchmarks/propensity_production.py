"""The propensity recipe at the production size (100,000 users, 365 days) end to end:
wall time and peak memory per stage, in a fresh process, tracking off.

Peak memory per stage: a thread samples the process's resident size every 0.2 s and
books it to the stage the runner's log says is running. Progress (each stage's start and
end, each features bucket) is printed to stderr as it happens. Prediction times are weekly
(``every: 7d``, ``lookback: 3d``): daily rows for 100,000 users over a year would be
about 10^8 rows.

    python benchmarks/propensity_production.py [num_users] [num_days]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

PROJECT = """
tracking: {{enabled: false}}
analyses:
  - name: shop
    recipe: propensity
    source:
      kind: synthetic
      generator: clickstream
      seed: 42
      options: {{num_users: {users}, num_items: 5000, num_days: {days}, start_date: "2024-01-01"}}
    params:
      features: {{every: 7d, lookback: 3d, horizon: 7d}}
"""

CHILD = r"""
import json, logging, os, sys, threading, time
from opslens.api import load_project
from opslens.runner import run_analysis
from opslens.tracking.tracker import MemoryTracker

current = {"stage": "load"}
peaks = {}
cpu = {}  # CPU seconds per stage (all threads): a figure a busy machine does not inflate
page = os.sysconf("SC_PAGE_SIZE")
stop = threading.Event()

def sample():
    while not stop.is_set():
        with open("/proc/self/statm") as f:
            mb = int(f.read().split()[1]) * page / 2**20
        peaks[current["stage"]] = max(peaks.get(current["stage"], 0.0), mb)
        time.sleep(0.2)

class Stages(logging.Handler):
    def emit(self, record):
        msg = record.getMessage()
        if msg.startswith("stage ") and msg.endswith(" started"):
            current["stage"] = msg.split()[1]
            cpu[current["stage"]] = -time.process_time()
        if msg.startswith("stage ") and " done in " in msg:
            cpu[msg.split()[1]] += time.process_time()
        if msg.startswith(("stage ", "loaded ", "features: ")):  # progress, as it happens
            rss = peaks.get(current["stage"], 0.0)
            print(f"[{time.perf_counter() - t0:7.1f} s] {msg} (stage peak so far {rss:,.0f} MB)",
                  file=sys.stderr, flush=True)

t0 = time.perf_counter()
logging.getLogger("opslens").addHandler(Stages())
logging.getLogger("opslens").setLevel(logging.INFO)
threading.Thread(target=sample, daemon=True).start()
result = run_analysis(load_project(sys.argv[1]), "shop", tracker=MemoryTracker())
wall = time.perf_counter() - t0
stop.set()
manifest = json.loads((result.path / "manifest.json").read_text())
# the program's own peak (VmHWM): ru_maxrss may keep a forking parent's
peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024
print(json.dumps({"wall_s": wall, "cpu_s": time.process_time(), "peak_mb": peak,
                  "stages": manifest["stage_seconds"], "stage_cpu_s": cpu,
                  "stage_peak_mb": peaks, "metrics": result.metrics}))
"""


def main() -> None:
    users = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    days = int(sys.argv[2]) if len(sys.argv) > 2 else 365
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "project.yaml"
        project.write_text(PROJECT.format(users=users, days=days))
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(project)],
            check=True,
            stdout=subprocess.PIPE,  # the result; progress goes to stderr as it happens
            text=True,
            env=env,
        )
        got = json.loads(out.stdout.strip().splitlines()[-1])
    print(
        f"{users:,} users, {days} days: {got['wall_s']:.0f} s end to end "
        f"({got['cpu_s']:.0f} s CPU), peak RSS {got['peak_mb']:,.0f} MB"
    )
    for stage, seconds in got["stages"].items():
        print(
            f"  {stage:<11} {seconds:8.1f} s  {got['stage_cpu_s'].get(stage, float('nan')):8.1f} s CPU"
            f"   peak {got['stage_peak_mb'].get(stage, float('nan')):8,.0f} MB"
        )
    print(
        "  (generation and loading happen before data-gen: "
        f"peak {got['stage_peak_mb'].get('load', float('nan')):,.0f} MB)"
    )
    print("  metrics: " + ", ".join(f"{k}={v:.4g}" for k, v in got["metrics"].items()))
    print("  metrics (all digits): " + json.dumps(got["metrics"], sort_keys=True))


if __name__ == "__main__":
    main()
