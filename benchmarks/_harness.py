"""Benchmark helpers: run a recipe on generated data in a fresh process, report wall time and peak RSS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from opslens.api import load_project
from opslens.runner import run_analysis
from opslens.tracking.tracker import MemoryTracker
project = load_project(sys.argv[1])
t0 = time.perf_counter()
result = run_analysis(project, sys.argv[2], tracker=MemoryTracker())
wall = time.perf_counter() - t0
stages = json.loads((result.path / "manifest.json").read_text())["stage_seconds"]
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"wall_s": wall, "peak_mb": peak_mb, "stages": stages, "metrics": result.metrics}))
"""


def run_recipe(project_yaml: str, analysis: str, data_writer: str) -> dict[str, object]:
    """Write data with ``data_writer`` (Python code, gets ``folder``), then run the analysis in a child."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        exec(data_writer, {"folder": folder})
        (folder / "project.yaml").write_text(project_yaml)
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(folder / "project.yaml"), analysis],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        )
        return dict(json.loads(out.stdout.strip().splitlines()[-1]))
