"""The CLI's shape: -q, one-line usage errors, -p for run, --skip-stages, run --report --stream."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opslens.tracking.runs import RunView, open_run
from tests.e2e.hardening.conftest import latest, project_yaml, stage_names
from tests.e2e.hardening.test_file_system import one_error
from tests.fakes.cli import run_cli

pytestmark = pytest.mark.slow


@pytest.fixture
def ran(project: Path, first: RunView) -> Path:
    """The project with one complete run."""
    return project


def test_run_takes_the_project_as_p_like_every_command(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_cli(["run", "-p", "project.yaml"], project, monkeypatch)
    assert result.code == 0, result.err
    assert f"trip-eta: run {latest(project)} complete" in result.out


def test_quiet_shows_nothing_but_the_error(ran: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ok = run_cli(["-q", "run", "--stages", stage_names()[-1]], ran, monkeypatch)
    assert ok.code == 0 and ok.err == "", ok.err
    bad = run_cli(["--quiet", "run", "--stages", "magic"], ran, monkeypatch)
    assert bad.code == 2
    assert bad.err.splitlines() == [bad.err.strip()] and bad.err.startswith("error: unknown stage")


def test_without_quiet_the_error_is_still_the_last_line(
    ran: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (ran / "project.yaml").write_text(project_yaml().replace("route, hour_band", "route, colour"))
    result = run_cli(["run"], ran, monkeypatch)
    one_error(result, "column 'colour'")
    assert not result.err.startswith("\n")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["run", "--bogus"], "No such option: --bogus; fix: see `opslens run --help`"),
        (["nonsense"], "No such command 'nonsense'; fix: see `opslens --help`"),
        (["report", "trip-eta", "--port", "abc"], "Invalid value for '--port'"),
    ],
)
def test_usage_errors_are_one_line(
    project: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], words: str
) -> None:
    result = run_cli(args, project, monkeypatch)
    assert result.code == 2
    assert result.err.strip().splitlines() == [result.err.strip()], result.err
    assert words in result.err and result.err.startswith("error: ")


def test_two_different_project_files_are_refused(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_cli(["run", "project.yaml", "-p", "other.yaml"], project, monkeypatch)
    one_error(result, "two project files were given")


def test_an_empty_stage_list_is_an_error_not_an_empty_run(
    ran: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = latest(ran)
    one_error(run_cli(["run", "--stages", ","], ran, monkeypatch), "--stages names no stage")
    assert latest(ran) == before


def test_skip_stages_runs_the_rest_from_the_latest_run(
    ran: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = open_run(ran / "runs", "trip-eta")
    result = run_cli(["run", "--skip-stages", "prepare,quantize"], ran, monkeypatch)
    assert result.code == 0, result.err
    after = open_run(ran / "runs", "trip-eta")
    stages = after.manifest["stages"]
    assert after.run_id != before.run_id
    skipped = {"prepare", "quantize"}
    assert {k: v["status"] for k, v in stages.items()} == {
        name: "reused" if name in skipped else "ran" for name in stage_names()
    }
    assert stages["prepare"]["run_id"] == before.run_id
    assert after.manifest["metrics"] == before.manifest["metrics"]  # same data, same seed


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--skip-stages", "magic"], "unknown stage(s) magic"),
        (["--skip-stages", ",".join(stage_names())], "leaves no stage"),
        (["--skip-stages", "prepare", "--stages", "classify"], "were both given"),
    ],
)
def test_bad_skip_stages(
    ran: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], words: str
) -> None:
    before = latest(ran)
    one_error(run_cli(["run", *args], ran, monkeypatch), words)
    assert latest(ran) == before


def test_run_report_and_stream_in_one_command(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [
        {"route": "R01", "hour_band": "morning"},
        {"route": "R02", "hour_band": "evening"},
        "not an object",
    ]
    (project / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = run_cli(["run", "--report", "--stream", "in.jsonl"], project, monkeypatch)
    assert result.code == 0, result.err
    run = open_run(project / "runs", "trip-eta")
    assert (run.path / "report.html").is_file()
    assert f"report: {run.path / 'report.html'}" in result.out
    out = project / "stream" / "trip-eta" / f"{run.run_id}.jsonl"
    lines = [json.loads(s) for s in out.read_text().splitlines()]
    assert [x["run_id"] for x in lines] == [run.run_id] * 3
    assert ["error" in x for x in lines] == [False, False, True]
    assert "stream: 2 scored (1 rejected)" in result.out


def test_run_stream_of_a_missing_file_fails_before_the_run(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one_error(run_cli(["run", "--stream", "none.jsonl"], project, monkeypatch), "none.jsonl")
    assert not (project / "runs").exists()


def test_a_tracking_uri_mlflow_cannot_use_fails_before_the_stages(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = project_yaml().replace("{enabled: false}", "{uri: 'sqlite:///project.yaml/mlflow.db'}")
    (project / "project.yaml").write_text(text)
    result = run_cli(["run"], project, monkeypatch)
    one_error(result, "project.yaml/mlflow.db' cannot be used by MLflow", "tracking.uri")
    assert "stage prepare" not in result.err
    assert not (project / "runs").exists()
