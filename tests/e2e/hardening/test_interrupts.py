"""Ctrl-C and SIGTERM end a run with one line and 130/143; MLflow runs never stay RUNNING.

The signals are sent on events (a stage's "started" log line, or from inside the
MLflow call), never after a sleep.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from opslens.api import load_project
from opslens.runner import run_analysis
from tests.e2e.hardening.conftest import MESSAGE, latest, mlflow_statuses, opslens
from tests.fakes.cli import run_cli

pytestmark = pytest.mark.slow


def _signal_at(folder: Path, line: str, signum: int) -> tuple[int, str]:
    proc = opslens(folder, "run", "project.yaml")
    assert proc.stderr is not None
    seen: list[str] = []
    for text in proc.stderr:
        seen.append(text)
        if line in text:
            proc.send_signal(signum)
            break
    rest = proc.communicate(timeout=120)[1]
    assert any(line in s for s in seen), "".join(seen)
    return proc.returncode, "".join(seen) + rest


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_mid_stage_is_one_line_and_its_exit_code(
    project: Path, signum: int, code: int
) -> None:
    first = run_analysis(load_project(project / "project.yaml"), "trip-eta")
    returncode, err = _signal_at(project, "stage cluster started", signum)
    assert returncode == code, err
    lines = [s for s in err.splitlines() if s.strip()]
    assert lines[-1] == MESSAGE, err
    assert err.count(MESSAGE) == 1
    assert "Traceback" not in err and "error" not in err.lower()
    assert latest(project) == first.run_id
    assert not list((project / "runs" / "trip-eta").glob(".tmp-*"))


def test_ctrl_c_during_mlflow_logging_ends_the_mlflow_run_killed(
    tracked: Path, monkeypatch: pytest.MonkeyPatch, isolated_mlflow: None
) -> None:
    from opslens.tracking.mlflow_tracker import MlflowTracker

    assert run_cli(["run", "project.yaml"], tracked, monkeypatch).code == 0
    before = latest(tracked)
    original = MlflowTracker.log_params

    def interrupted(self: MlflowTracker, params: dict[str, Any]) -> None:
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C arrives while MLflow writes
        original(self, params)

    monkeypatch.setattr(MlflowTracker, "log_params", interrupted)
    result = run_cli(["run", "project.yaml"], tracked, monkeypatch)
    assert result.code == 130, result.err
    assert result.err.strip().splitlines()[-1] == MESSAGE
    assert "Traceback" not in result.err and "locked" not in result.err
    assert latest(tracked) == before
    statuses = mlflow_statuses(tracked)
    assert statuses[before] == "FINISHED"
    assert sorted(statuses.values()) == ["FINISHED", "KILLED"]


def test_the_next_run_marks_runs_left_running_by_a_kill(
    tracked: Path, monkeypatch: pytest.MonkeyPatch, isolated_mlflow: None
) -> None:
    proc = opslens(tracked, "run", "project.yaml", env={"OPSLENS_FAULT_AT": "tracker:model"})
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert list(mlflow_statuses(tracked).values()) == ["RUNNING"]
    killed = next(iter(mlflow_statuses(tracked)))

    result = run_cli(["run", "project.yaml"], tracked, monkeypatch)
    assert result.code == 0, result.err
    statuses = mlflow_statuses(tracked)
    assert statuses[killed] == "KILLED"
    assert statuses[latest(tracked)] == "FINISHED"
    assert "left RUNNING by a process that died" in " ".join(result.err.split())
