"""Signals: Interrupted's exit codes, held sections, and how an interrupted run ends its tracker."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from opslens.errors import RunError
from opslens.recipes import project_from_mapping
from opslens.runner.interrupts import Interrupted, catch_signals, deferred
from opslens.runner.run import run_analysis
from opslens.tracking.tracker import MemoryTracker


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signals_become_interrupted_with_their_exit_code(signum: int, code: int) -> None:
    with catch_signals(), pytest.raises(Interrupted) as caught:
        os.kill(os.getpid(), signum)
    assert caught.value.exit_code == code
    assert isinstance(caught.value, KeyboardInterrupt)  # stops what stops cleanly on Ctrl-C


def test_a_held_signal_arrives_after_the_section() -> None:
    done = []
    with catch_signals() as received, pytest.raises(Interrupted):
        with deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            done.append("the section ran to its end")
    assert done == ["the section ran to its end"]
    assert received == [signal.SIGTERM]


def test_handlers_are_given_back() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with catch_signals(), deferred():
        pass
    assert signal.getsignal(signal.SIGTERM) is before


def test_outside_the_main_thread_nothing_is_installed() -> None:
    seen: list[object] = []

    def work() -> None:
        with catch_signals(), deferred():
            seen.append(signal.getsignal(signal.SIGINT))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert seen == [signal.getsignal(signal.SIGINT)]


def _project(tmp_path: Path) -> Any:
    return project_from_mapping(
        {
            "tracking": {"enabled": False},
            "runs_dir": str(tmp_path / "runs"),
            "analyses": [
                {
                    "name": "toy",
                    "recipe": "template",
                    "source": {"kind": "memory", "name": "frame"},
                    "columns": {"target": "minutes"},
                }
            ],
        },
        root=tmp_path,
    )


def _run(tmp_path: Path, tracker: MemoryTracker) -> Any:
    frame = pl.DataFrame({"minutes": [1.0, 2.0, 3.0, 6.0]})
    return run_analysis(_project(tmp_path), "toy", tracker=tracker, frames={"frame": frame})


class Failing(MemoryTracker):
    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error

    def log_metrics(self, metrics: dict[str, float]) -> None:
        raise self.error


def test_an_interrupted_run_ends_its_tracked_run_killed(
    tmp_path: Path, with_template: None
) -> None:
    tracker = Failing(KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, tracker)
    assert tracker.status == "KILLED"
    assert not (tmp_path / "runs" / "toy" / "latest").exists()


def test_a_failing_tracker_is_a_run_error_and_its_run_failed(
    tmp_path: Path, with_template: None
) -> None:
    tracker = Failing(RuntimeError("database is locked"))
    with pytest.raises(
        RunError, match=r"failed to log the metrics \(RuntimeError: database is locked\)"
    ):
        _run(tmp_path, tracker)
    assert tracker.status == "FAILED"
