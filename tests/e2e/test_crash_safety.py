"""A run killed with SIGKILL mid-stage leaves `latest` on the previous complete run.

The kill is driven by an event, not by timing: the child's log line "stage classify
started" (read from its stderr as it is written) says it is inside that stage.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from opslens.api import load_project
from opslens.runner import run_analysis
from opslens.synthetic.trips import make_trips
from opslens.tracking.runs import list_runs, open_run

pytestmark = pytest.mark.slow

PROJECT = """
tracking: {enabled: false}
analyses:
  - name: trip-eta
    recipe: distribution
    source: {kind: file, path: trips.parquet}
    columns: {target: duration_min, categorical: [route, hour_band, vehicle_type]}
    params: {xgboost: {n_estimators: 400}}
"""


def test_sigkill_mid_stage_keeps_previous_run(tmp_path: Path) -> None:
    make_trips(n_rows=120_000, seed=2).trips.write_parquet(tmp_path / "trips.parquet")
    (tmp_path / "project.yaml").write_text(PROJECT)
    project = load_project(tmp_path / "project.yaml")
    first = run_analysis(project, "trip-eta")
    analysis_dir = tmp_path / "runs" / "trip-eta"

    proc = subprocess.Popen(
        [sys.executable, "-m", "opslens.cli", "run", str(tmp_path / "project.yaml")],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"},
    )
    killed_in = None
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # blocks until the child writes; ends when it exits
            if "stage classify started" in line:
                os.kill(proc.pid, signal.SIGKILL)
                killed_in = "classify"
                break
    finally:
        if proc.poll() is None and killed_in is None:
            proc.kill()
        proc.wait(timeout=30)
    assert killed_in == "classify", (
        "the run finished or stalled before it could be killed mid-stage"
    )
    assert proc.returncode == -signal.SIGKILL

    assert (analysis_dir / "latest").read_text().strip() == first.run_id
    assert [r.run_id for r in list_runs(tmp_path / "runs", "trip-eta")] == [first.run_id]
    visible = [p.name for p in analysis_dir.iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert visible == [first.run_id]
    for tmp in analysis_dir.glob(".tmp-*"):
        assert not (tmp / "manifest.json").exists()
    assert open_run(tmp_path / "runs", "trip-eta").run_id == first.run_id

    second = run_analysis(project, "trip-eta")
    assert open_run(tmp_path / "runs", "trip-eta").run_id == second.run_id
    assert not list(analysis_dir.glob(".tmp-*")), "the killed run's temporary folder is cleaned up"
    assert second.metrics == first.metrics


def test_sigkill_between_rename_and_latest_is_repaired_by_the_next_run(tmp_path: Path) -> None:
    """The kill lands exactly there (the runner's `commit:renamed` checkpoint), no timing."""
    make_trips(n_rows=3_000, seed=2, n_routes=4).trips.write_parquet(tmp_path / "trips.parquet")
    (tmp_path / "project.yaml").write_text(PROJECT.replace("400", "10"))
    project = load_project(tmp_path / "project.yaml")
    first = run_analysis(project, "trip-eta")
    done = subprocess.run(
        [sys.executable, "-m", "opslens.cli", "-q", "run", "project.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "OPSLENS_FAULT_AT": "commit:renamed"},
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    analysis_dir = tmp_path / "runs" / "trip-eta"
    assert (analysis_dir / "latest").read_text().strip() == first.run_id
    orphan = next(r for r in list_runs(tmp_path / "runs", "trip-eta") if r.run_id != first.run_id)
    assert orphan.manifest["status"] == "complete"  # whole, just not pointed at yet

    third = run_analysis(project, "trip-eta", stages=["classify"])
    assert third.view.manifest["based_on"] == orphan.run_id  # the repaired latest was the base
    assert open_run(tmp_path / "runs", "trip-eta").run_id == third.run_id


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_sigkill_in_a_rerun_that_links_the_base_files_leaves_them_whole(tmp_path: Path) -> None:
    """A rerun links the base run's files into its temporary folder; killed inside its stage,
    the base run is byte for byte what it was, and the next run clears the leftover links."""
    make_trips(n_rows=3_000, seed=2, n_routes=4).trips.write_parquet(tmp_path / "trips.parquet")
    (tmp_path / "project.yaml").write_text(PROJECT.replace("400", "10"))
    project = load_project(tmp_path / "project.yaml")
    first = run_analysis(project, "trip-eta")
    before = _digests(first.path)
    done = subprocess.run(
        [sys.executable, "-m", "opslens.cli", "-q", "run", "project.yaml", "--stages", "classify"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "OPSLENS_FAULT_AT": "stage:classify"},
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    analysis_dir = tmp_path / "runs" / "trip-eta"
    (leftover,) = analysis_dir.glob(".tmp-*")
    linked = leftover / "tables" / "quantized.parquet"
    assert linked.stat().st_ino == (first.path / "tables" / "quantized.parquet").stat().st_ino
    assert (analysis_dir / "latest").read_text().strip() == first.run_id
    assert _digests(first.path) == before

    again = run_analysis(project, "trip-eta", stages=["classify"])
    assert not leftover.exists() and _digests(first.path) == before
    assert again.metrics == first.metrics
