"""`--stages` after a config change: the reused results' settings are recorded; warned or refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from opslens.tracking.runs import RunView, open_run
from tests.e2e.hardening.conftest import latest, stage_names
from tests.e2e.hardening.test_file_system import one_error
from tests.fakes.cli import run_cli

pytestmark = pytest.mark.slow


def _edit(project: Path, old: str, new: str) -> None:
    text = (project / "project.yaml").read_text()
    assert old in text
    (project / "project.yaml").write_text(text.replace(old, new))


def test_changed_params_are_recorded_and_warned(
    project: Path, first: RunView, monkeypatch: pytest.MonkeyPatch
) -> None:
    _edit(project, "n_estimators: 10", "n_estimators: 12")
    result = run_cli(["run", "--stages", "classify"], project, monkeypatch)
    assert result.code == 0, result.err
    said = " ".join(result.err.split())
    assert "cluster: reused results made with other settings" in said
    assert "params.xgboost.n_estimators: 10 -> 12" in said
    new = open_run(project / "runs", "trip-eta")
    manifest = new.manifest
    assert manifest["configs"][first.run_id]["params"]["xgboost"]["n_estimators"] == 10
    assert manifest["config"]["params"]["xgboost"]["n_estimators"] == 12
    assert manifest["stages"]["cluster"]["run_id"] == first.run_id
    assert manifest["stages"]["cluster"]["changed_since"] == [
        "params.xgboost.n_estimators: 10 -> 12"
    ]
    assert any("params.xgboost.n_estimators: 10 -> 12" in w for w in manifest["warnings"])


def test_another_seed_is_refused_unless_forced(
    project: Path, first: RunView, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = (project / "project.yaml").read_text()
    (project / "project.yaml").write_text(text + "    random_state: 7\n")
    refused = run_cli(["run", "--stages", "classify"], project, monkeypatch)
    one_error(refused, "stage 'quantize'", "random_state: 0 -> 7", "--force")
    assert latest(project) == first.run_id

    forced = run_cli(["run", "--stages", "classify", "--force"], project, monkeypatch)
    assert forced.code == 0, forced.err
    manifest = open_run(project / "runs", "trip-eta").manifest
    assert manifest["based_on"] == first.run_id
    assert any("random_state: 0 -> 7" in w for w in manifest["warnings"])


def test_unchanged_settings_reuse_silently(
    project: Path, first: RunView, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_cli(["-q", "run", "--stages", stage_names()[-1]], project, monkeypatch)
    assert result.code == 0 and result.err == "", result.err
    manifest = open_run(project / "runs", "trip-eta").manifest
    assert manifest["warnings"] == [] and "changed_since" not in manifest["stages"]["cluster"]
    assert set(manifest["configs"]) == {first.run_id}
