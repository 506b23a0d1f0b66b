"""Paths stay inside the project; pointers heal; damaged runs are named, not fatal."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from opslens.api import load_project
from opslens.runner import run_analysis
from opslens.tracking.runs import RunView, open_run
from tests.e2e.hardening.conftest import latest, stage_names
from tests.e2e.hardening.test_file_system import one_error
from tests.fakes.cli import run_cli

pytestmark = pytest.mark.slow


def _copy_as(run: Path, run_id: str, finished: str) -> Path:
    """A second complete run folder (as a kill after the rename would leave it)."""
    copy = run.parent / run_id
    shutil.copytree(run, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest.update(run_id=run_id, finished=finished)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


@pytest.mark.parametrize("run_id", ["../../../outside", "..", "/etc", ".tmp-20260101T000000Z-aaaa"])
def test_report_of_a_run_id_outside_the_runs_folder_is_refused(
    project: Path, first: RunView, monkeypatch: pytest.MonkeyPatch, run_id: str
) -> None:
    result = run_cli(["report", "trip-eta", "--run", run_id], project, monkeypatch)
    one_error(result, "is not a run id", "opslens runs")
    assert not list(project.parent.glob("*.html")) and not (project.parent / "outside").exists()


def test_a_tampered_latest_loads_nothing_from_outside(
    project: Path,
    first: RunView,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    outside = tmp_path_factory.mktemp("outside")
    shutil.copytree(first.path, outside / first.run_id)
    pointer = project / "runs" / "trip-eta" / "latest"
    pointer.write_text(f"../../../{outside.name}/{first.run_id}\n")
    one_error(run_cli(["stream", "trip-eta", "--input", "-"], project, monkeypatch), "not a run id")
    # a run folder that is a symlink to somewhere else is not inside either
    shutil.rmtree(first.path)
    first.path.symlink_to(outside / first.run_id)
    pointer.write_text(first.run_id + "\n")
    one_error(run_cli(["report", "trip-eta"], project, monkeypatch), "missing or incomplete")
    assert not (outside / first.run_id / "report.html").exists()


def test_runs_repairs_latest_after_a_kill_between_rename_and_pointer(
    project: Path, first: RunView, monkeypatch: pytest.MonkeyPatch
) -> None:
    newer = _copy_as(first.path, "20991231T000000Z-ffff", "2099-12-31T00:00:00+00:00")
    assert latest(project) == first.run_id
    result = run_cli(["runs"], project, monkeypatch)
    assert result.code == 0, result.err
    assert latest(project) == newer.name
    assert f"{newer.name} (latest)" in result.out


def test_the_next_run_repairs_latest_too(project: Path, first: RunView) -> None:
    (project / "runs" / "trip-eta" / "latest").unlink()  # killed before the first pointer move
    second = run_analysis(
        load_project(project / "project.yaml"), "trip-eta", stages=[stage_names()[-1]]
    )
    assert open_run(project / "runs", "trip-eta").run_id == second.run_id
    assert (
        open_run(project / "runs", "trip-eta", second.run_id).manifest["based_on"] == first.run_id
    )


def test_a_damaged_manifest_is_listed_and_the_others_shown(
    project: Path, first: RunView, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = _copy_as(first.path, "20200101T000000Z-0bad", "2020-01-01T00:00:00+00:00")
    (broken / "manifest.json").write_text('{"run_id": "20200101T000000Z-0ba')  # cut short
    result = run_cli(["runs"], project, monkeypatch)
    assert result.code == 0, result.err
    assert f"{first.run_id} (latest)" in result.out
    assert f"{broken.name} (damaged)" in result.out
    assert "is damaged" in " ".join(result.err.split())
    one_error(
        run_cli(["report", "trip-eta", "--run", broken.name], project, monkeypatch), "is damaged"
    )


def test_a_truncated_model_is_a_one_line_error(
    project: Path, first: RunView, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = first.path / "model" / "model.joblib"
    model.write_bytes(model.read_bytes()[:200])
    (project / "in.jsonl").write_text('{"route": "R01", "hour_band": "morning"}\n')
    result = run_cli(["stream", "trip-eta", "--input", "in.jsonl"], project, monkeypatch)
    one_error(result, f"the model file {model} is damaged", "opslens run")
