"""File-system faults are user errors: one line naming the path and a fix, exit 2, `latest` kept.

As root the faults are real (a read-only or a full tmpfs); otherwise the folder
is made read-only with chmod and the full disk is an ENOSPC raised where
matplotlib writes a plot.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from opslens.api import load_project
from opslens.runner import run_analysis
from tests.e2e.hardening.conftest import latest, project_yaml
from tests.fakes.cli import Result, run_cli


def one_error(result: Result, *words: str) -> str:
    """The one error line, the last line on stderr; exit code 2; no traceback."""
    assert result.code == 2, (result.code, result.err)
    lines = [s for s in result.err.splitlines() if s.strip()]
    errors = [s for s in lines if s.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.err
    assert "Traceback" not in result.err + result.out
    assert "fix:" in errors[0]
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


def _mount(target: Path, options: str) -> bool:
    if os.geteuid() != 0:
        return False
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], check=False
    )
    return done.returncode == 0


@pytest.fixture
def disk(project: Path) -> Iterator[tuple[Path, bool]]:
    """(project, mounted): runs_dir on its own tmpfs when root may mount one."""
    mounted = _mount(project / "disk", "size=16m")
    (project / "disk").mkdir(exist_ok=True)
    (project / "project.yaml").write_text(project_yaml("disk/runs"))
    try:
        yield project, mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(project / "disk")], check=False)
        else:
            for path in (project / "disk").rglob("*"):
                path.chmod(0o755) if path.is_dir() else None
            (project / "disk").chmod(0o755)


def _first_run(project: Path) -> str:
    return run_analysis(load_project(project / "project.yaml"), "trip-eta").run_id


def test_runs_dir_that_is_a_file(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (project / "runs").write_text("not a folder")
    result = run_cli(["run"], project, monkeypatch)
    one_error(result, f"{project / 'runs'} is a file, not a folder", "runs_dir")
    assert "stage prepare started" not in result.err  # found before the work


def test_read_only_runs_folder(disk: tuple[Path, bool], monkeypatch: pytest.MonkeyPatch) -> None:
    project, mounted = disk
    first = _first_run(project)
    if mounted:
        subprocess.run(["mount", "-o", "remount,ro", str(project / "disk")], check=True)
        why = "Read-only file system"
    else:
        for path in (project / "disk").rglob("*"):
            if path.is_dir():
                path.chmod(0o555)
        why = "Permission denied"
    line = one_error(run_cli(["run"], project, monkeypatch), "cannot write", why, "runs_dir")
    assert str(project / "disk" / "runs" / "trip-eta") in line
    assert latest(project, "disk/runs") == first
    # writing a report into the read-only run folder is a user error too
    one_error(run_cli(["report", "trip-eta"], project, monkeypatch), "report.html", why)


def test_full_disk(disk: tuple[Path, bool], monkeypatch: pytest.MonkeyPatch) -> None:
    project, mounted = disk
    first = _first_run(project)
    if mounted:
        stats = os.statvfs(project / "disk")
        room = stats.f_bavail * stats.f_frsize
        (project / "disk" / "filler").write_bytes(b"\0" * (room - 24 * 1024))
    else:
        import matplotlib.figure

        def full(self: object, *args: object, **kwargs: object) -> None:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(matplotlib.figure.Figure, "savefig", full)
    result = run_cli(["run"], project, monkeypatch)
    one_error(result, "no space left on the device while writing", "free disk space")
    assert latest(project, "disk/runs") == first
    assert not list((project / "disk" / "runs" / "trip-eta").glob(".tmp-*"))


def test_a_path_too_long_for_the_file_system(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deep = "/".join(["d" * 200] * 22)  # > PATH_MAX (4096)
    (project / "project.yaml").write_text(project_yaml(deep))
    one_error(run_cli(["run"], project, monkeypatch), "too long for the file system", "runs_dir")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--output", "."], ["--output . is a folder", "name a file"]),
        (["--output", "nowhere/out.jsonl"], ["the folder nowhere of --output", "does not exist"]),
        (["--plots-dir", "project.yaml"], ["--plots-dir project.yaml is a file", "name a folder"]),
        (["--plots-dir", "project.yaml/plots"], ["project.yaml is a file, not a folder"]),
    ],
)
def test_bad_stream_output_paths(
    project: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], words: list[str]
) -> None:
    result = run_cli(["stream", "trip-eta", "--input", "x.jsonl", *args], project, monkeypatch)
    one_error(result, *words)


def test_bad_stream_output_of_run_is_found_before_the_run(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "in.jsonl").write_text("{}\n")
    args = ["run", "--stream", "in.jsonl", "--stream-output", "no/such/out.jsonl"]
    result = run_cli(args, project, monkeypatch)
    one_error(result, "--stream-output", "does not exist")
    assert not (project / "runs" / "trip-eta").exists()
