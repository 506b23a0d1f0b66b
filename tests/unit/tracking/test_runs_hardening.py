"""Run folders under faults: reused pids, tampered pointers, damaged manifests, failed writes."""

from __future__ import annotations

import errno
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from opslens.errors import RunError
from opslens.tracking.runs import (
    RunWriter,
    damaged_runs,
    list_runs,
    open_run,
    process_alive,
    process_start,
    repair_latest,
    writing,
)


@pytest.fixture
def live_pid() -> Iterator[int]:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield child.pid
    finally:
        child.kill()
        child.wait()


def _run(root: Path, run_id: str, finished: str) -> Path:
    folder = root / "eta" / run_id
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({"status": "complete", "finished": finished}))
    return folder


def _temporary(root: Path, pid: int, started: str | None) -> Path:
    tmp = root / "eta" / ".tmp-20250101T000000Z-0old"
    tmp.mkdir(parents=True)
    (tmp / ".pid").write_text(str(pid))
    if started is not None:
        (tmp / ".pid-start").write_text(started)
    return tmp


def test_a_temporary_whose_pid_was_reused_is_removed(tmp_path: Path, live_pid: int) -> None:
    assert process_start(live_pid) is not None
    stale = _temporary(tmp_path, live_pid, started="1")  # another process had this pid then
    RunWriter(tmp_path, "eta")
    assert not stale.exists()


def test_a_temporary_of_the_live_process_that_made_it_is_kept(
    tmp_path: Path, live_pid: int
) -> None:
    busy = _temporary(tmp_path, live_pid, started=process_start(live_pid))
    RunWriter(tmp_path, "eta")
    assert busy.exists()


def test_a_writer_records_its_pid_and_start_time(tmp_path: Path) -> None:
    import os

    writer = RunWriter(tmp_path, "eta")
    started = (writer.path / ".pid-start").read_text()
    assert process_alive(int((writer.path / ".pid").read_text()), started)
    assert started == process_start(os.getpid())
    assert not process_alive(os.getpid(), "0")


@pytest.mark.parametrize(
    "run_id", ["../x", "../../etc", "/abs", "20260101T000000Z-aaaa/..", "", "a" * 300]
)
def test_run_ids_must_match_the_pattern(tmp_path: Path, run_id: str) -> None:
    _run(tmp_path, "20260101T000000Z-aaaa", "2026-01-01")
    with pytest.raises(RunError, match="not a run id"):
        open_run(tmp_path, "eta", run_id)


def test_a_tampered_latest_is_refused_and_repaired(tmp_path: Path) -> None:
    _run(tmp_path, "20260101T000000Z-aaaa", "2026-01-01")
    (tmp_path / "eta" / "latest").write_text("../../outside\n")
    with pytest.raises(RunError, match=r"names '\.\./\.\./outside', which is not a run id"):
        open_run(tmp_path, "eta")
    assert repair_latest(tmp_path, "eta") == "20260101T000000Z-aaaa"
    assert open_run(tmp_path, "eta").run_id == "20260101T000000Z-aaaa"


def test_repair_moves_latest_only_to_a_newer_complete_run(tmp_path: Path) -> None:
    _run(tmp_path, "20260101T000000Z-aaaa", "2026-01-01T00:00")
    _run(tmp_path, "20260102T000000Z-bbbb", "2026-01-02T00:00")
    (tmp_path / "eta" / "latest").write_text("20260102T000000Z-bbbb\n")
    assert repair_latest(tmp_path, "eta") is None  # already the newest
    (tmp_path / "eta" / "latest").write_text("20260101T000000Z-aaaa\n")
    assert repair_latest(tmp_path, "eta") == "20260102T000000Z-bbbb"
    assert repair_latest(tmp_path / "none", "eta") is None


def test_a_damaged_manifest_is_listed_apart(tmp_path: Path) -> None:
    _run(tmp_path, "20260101T000000Z-aaaa", "2026-01-01")
    bad = _run(tmp_path, "20260102T000000Z-bbbb", "2026-01-02")
    (bad / "manifest.json").write_text('{"status": "compl')
    odd = _run(tmp_path, "20260103T000000Z-cccc", "2026-01-03")
    (odd / "manifest.json").write_text("[1, 2]")
    assert [r.run_id for r in list_runs(tmp_path, "eta")] == ["20260101T000000Z-aaaa"]
    damaged = dict(damaged_runs(tmp_path, "eta"))
    assert sorted(damaged) == ["20260102T000000Z-bbbb", "20260103T000000Z-cccc"]
    assert "is damaged" in damaged["20260102T000000Z-bbbb"]
    with pytest.raises(RunError, match=r"manifest\.json is damaged"):
        _ = open_run(tmp_path, "eta", "20260102T000000Z-bbbb").manifest


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), "no space left on the device"),
        (OSError(errno.EROFS, "Read-only file system"), "cannot write"),
        (OSError(errno.ENAMETOOLONG, "File name too long"), "too long for the file system"),
        (
            pl.exceptions.ComputeError("parquet: underlying IO error: (os error 28)"),
            "no space left on the device",
        ),
    ],
)
def test_failed_writes_are_run_errors_naming_the_path(
    tmp_path: Path, error: Exception, words: str
) -> None:
    with pytest.raises(RunError, match=words) as caught, writing(tmp_path / "x.parquet"):
        raise error
    assert str(tmp_path / "x.parquet") in str(caught.value) and "runs_dir" in str(caught.value)


def test_other_polars_errors_pass_through(tmp_path: Path) -> None:
    with pytest.raises(pl.exceptions.ComputeError, match="not about files"), writing(tmp_path):
        raise pl.exceptions.ComputeError("not about files")
