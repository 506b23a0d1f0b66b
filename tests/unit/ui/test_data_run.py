"""The Data page's "Run now": a real run (the runner `opslens run` uses) of a project's analysis
or of the fleet recipe on the data in use, its stages listed as they finish, then the run
folder and the verdict against the baselines; a failing run is one error in the app's words."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from opslens.errors import RunError, SourceError
from opslens.synthetic.fleet import make_fleet
from opslens.tracking.runs import list_runs, open_run
from opslens.ui.running import app_words
from opslens.ui.state import DATA, LoadedData
from opslens.ui.views.data import TABLE_ANALYSIS

PAGE = str(Path(__file__).resolve().parents[3] / "src/opslens/ui/pages/data.py")

PROJECT = """\
tracking: {enabled: false}
analyses:
  - name: eta
    recipe: distribution
    source: {kind: synthetic, generator: trips, seed: 1, options: {n_rows: 4000, n_routes: 4}}
    columns: {target: duration_min, categorical: [route, hour_band]}
    params: {min_combination_size: 20, xgboost: {n_estimators: 20}}
  - name: broken
    recipe: distribution
    source: {kind: synthetic, generator: trips, seed: 1, options: {n_rows: 4000, n_routes: 4}}
    columns: {target: duration_min, categorical: [route, nosuch]}
"""


@pytest.fixture
def project_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "project.yaml"
    path.write_text(PROJECT)
    monkeypatch.setenv("OPSLENS_PROJECT", str(path))
    return path


def _choose(at: AppTest, name: str) -> None:
    box = at.selectbox(key="run_choice")
    box.set_value(next(o for o in box.options if o.startswith(name))).run()


@pytest.mark.slow
def test_run_now_commits_a_run_and_shows_its_stages_and_verdict(project_file: Path) -> None:
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    _choose(at, "eta (distribution")
    at.button(key="run_now").click().run()
    assert not at.exception and not at.error
    runs = list_runs(project_file.parent / "runs", "eta")
    assert len(runs) == 1 and open_run(project_file.parent / "runs", "eta").run_id == runs[0].run_id
    stages = [m.value for m in at.markdown if m.value.startswith("✓ stage")]
    assert len(stages) == len(runs[0].manifest["stages"]) > 1
    assert any(str(runs[0].path) in s.value and runs[0].run_id in s.value for s in at.success)
    verdict = [m.value for m in (*at.success, *at.warning) if "Against the baselines" in m.value]
    assert len(verdict) == 1
    table = at.dataframe[-1].value
    assert "model" in table.columns and len(table) >= 1
    # the result stays when the page reruns
    at.run()
    assert any(runs[0].run_id in s.value for s in at.success)


@pytest.mark.slow
def test_a_failing_run_is_one_error_and_commits_nothing(project_file: Path) -> None:
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    _choose(at, "broken")
    at.button(key="run_now").click().run()
    assert not at.exception
    assert len(at.error) == 1 and "nosuch" in at.error[0].value
    assert list_runs(project_file.parent / "runs", "broken") == []


@pytest.mark.slow
def test_the_data_in_use_runs_with_the_fleet_recipe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPSLENS_PROJECT", raising=False)
    monkeypatch.chdir(tmp_path)
    readings = make_fleet(seed=1, n_devices=30, n_points=200, n_failing=3).readings
    metrics = ["temperature", "vibration", "current"]
    at = AppTest.from_file(PAGE, default_timeout=300)
    at.session_state[DATA] = LoadedData(readings, "device_id", "timestamp", metrics, "a fleet")
    at.run()
    assert at.selectbox(key="run_choice").options == [
        "the data in use, with the fleet recipe (a fleet)"
    ]
    at.button(key="run_now").click().run()
    assert not at.exception and not at.error
    runs = list_runs(tmp_path / "runs", TABLE_ANALYSIS)
    assert len(runs) == 1
    assert runs[0].manifest["metrics"]["devices"] == 30
    assert any(str(runs[0].path) in s.value for s in at.success)


def test_without_data_or_project_the_section_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPSLENS_PROJECT", raising=False)
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    assert any("Use this data" in c.value for c in at.caption)
    assert "run_now" not in [b.key for b in at.button]


@pytest.mark.parametrize(
    ("fix", "told"),
    [
        ("run `opslens run --analysis eta` first", "press Run now first"),
        ("re-run it: `opslens run --analysis eta`", "press Run now again"),
        ("run `opslens runs` to list the run ids", "open the Runs page to list the run ids"),
    ],
)
def test_cli_advice_is_told_in_the_app_s_words(fix: str, told: str) -> None:
    error = app_words(RunError("no run", fix=fix))
    assert isinstance(error, RunError) and error.fix == told and error.problem == "no run"
    same = SourceError("gone", fix="check source.path in project.yaml")
    assert app_words(same) is same
