"""The Runs page: every analysis's runs and metrics, reports inline, runs started from the page."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import opslens
from opslens.tracking.runs import list_runs, open_run

PAGE = str(Path(__file__).resolve().parents[3] / "src/opslens/ui/pages/runs.py")

PROJECT = """\
tracking: {enabled: false}
analyses:
  - name: eta
    recipe: distribution
    source: {kind: synthetic, generator: trips, seed: 1, options: {n_rows: 4000, n_routes: 4}}
    columns: {target: duration_min, categorical: [route, hour_band]}
    params: {min_combination_size: 20, xgboost: {n_estimators: 20}}
  - name: fleet
    recipe: fleet
    source: {kind: synthetic, generator: fleet, seed: 1, options: {n_devices: 40, n_points: 300, n_failing: 4}}
    columns: {entity: device_id, time: timestamp, metrics: [temperature, vibration, current]}
    params: {rare: {methods: [ecod]}, inspect_top: 0}
  - name: empty
    recipe: distribution
    source: {kind: synthetic, generator: trips, seed: 2, options: {n_rows: 4000, n_routes: 4}}
    columns: {target: duration_min, categorical: [route, hour_band]}
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project folder whose distribution and fleet analyses ran once ('empty' never ran)."""
    folder = tmp_path_factory.mktemp("runs-built")
    (folder / "project.yaml").write_text(PROJECT)
    for analysis in ("eta", "fleet"):
        opslens.run(folder / "project.yaml", analysis=analysis)
    return folder


@pytest.fixture
def project_file(built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the built project (tests may add runs), set as the app's project."""
    folder = tmp_path / "project"
    shutil.copytree(built, folder)
    monkeypatch.setenv("OPSLENS_PROJECT", str(folder / "project.yaml"))
    return folder / "project.yaml"


def _page() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.run()
    assert not at.exception
    return at


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


@pytest.mark.slow
def test_every_analysis_and_its_runs_are_listed(project_file: Path) -> None:
    at = _page()
    assert [t.label for t in at.tabs] == ["eta", "fleet", "empty"]
    eta, fleet, empty = at.tabs
    runs = project_file.parent / "runs"
    for tab, name in ((eta, "eta"), (fleet, "fleet")):
        table = tab.dataframe[0].value
        assert len(table) == 1
        assert table["run"].tolist() == [open_run(runs, name).run_id]
        assert table["latest"].tolist() == [True] and table["status"].tolist() == ["complete"]
    eta_run = open_run(runs, "eta")
    log_score = eta_run.manifest["metrics"]["log_score"]
    assert eta.dataframe[0].value["log_score"].tolist() == [log_score]
    metrics = {m.label: m.value for m in eta.metric}
    assert float(metrics["log_score"]) == pytest.approx(log_score, abs=1e-3)
    assert {m.label: m.value for m in fleet.metric}["devices"] == "40"
    assert "no complete run yet" in empty.info[0].value and not empty.error
    # the reports were written and shown inline; the plots shown
    assert open_run(runs, "eta").has("report.html") and open_run(runs, "fleet").has("report.html")
    assert len(at.get("iframe")) == 2
    images = [h for h in eta.get("html") if h.value.startswith('<img src="data:image/png')]
    assert len(images) == len(open_run(runs, "eta").plots()) > 0


@pytest.mark.slow
def test_run_now_adds_a_run_and_selects_it(project_file: Path) -> None:
    runs = project_file.parent / "runs"
    before = open_run(runs, "fleet").run_id
    at = _page()
    at.button(key="start_fleet").click().run()
    assert not at.exception and not at.error
    fleet_runs = list_runs(runs, "fleet")
    assert len(fleet_runs) == 2 and fleet_runs[1].run_id == before
    new = fleet_runs[0].run_id
    assert open_run(runs, "fleet").run_id == new
    fleet = at.tabs[1]
    assert fleet.dataframe[0].value["run"].tolist() == [new, before]
    assert at.selectbox(key="run_fleet").value == new
    assert any(new in s.value for s in fleet.success)
    assert len(list_runs(runs, "eta")) == 1


@pytest.mark.slow
def test_choosing_an_older_run_shows_its_metrics(project_file: Path) -> None:
    opslens.run(project_file, analysis="eta")
    runs = project_file.parent / "runs"
    older = list_runs(runs, "eta")[1]
    at = _page()
    at.selectbox(key="run_eta").set_value(older.run_id).run()
    assert not at.exception
    assert any(older.run_id in c.value for c in at.tabs[0].caption)
    assert older.has("report.html")
    at.button(key="report_eta").click().run()
    assert not at.exception and older.has("report.html")


@pytest.mark.slow
def test_a_failing_run_is_an_error_and_leaves_the_previous_runs(project_file: Path) -> None:
    project_file.write_text(
        PROJECT.replace(
            "[route, hour_band]}\n    params: {min", "[route, nosuch]}\n    params: {min", 1
        )
    )
    at = _page()
    at.button(key="start_eta").click().run()
    assert not at.exception
    assert "nosuch" in at.tabs[0].error[0].value
    runs = project_file.parent / "runs"
    assert len(list_runs(runs, "eta")) == 1
    assert len(at.tabs[0].dataframe[0].value) == 1


def test_without_a_project_the_page_says_how_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPSLENS_PROJECT", raising=False)
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    assert "opslens ui -p project.yaml" in at.info[0].value


def _plant_facts(project_file: Path, analysis: str, change: dict[str, object]) -> None:
    """Rewrite the latest run's facts.json with ``change`` merged in (as a later writer might)."""
    run = open_run(project_file.parent / "runs", analysis)
    target = run.path / "facts.json"
    target.chmod(0o644)
    target.write_text(json.dumps({**run.facts, **change}))


LOSS = {
    "scores": [
        {
            "baseline": "global",
            "label": "one global LightGBM",
            "metric": "rmse_duration_min",
            "metric_label": "RMSE of duration_min",
            "model": 13.5,
            "value": 12.2,
            "higher_is_better": False,
            "n": 400,
        }
    ],
    "model_wins": False,
    "losses": ["global"],
    "verdict": "one global LightGBM is better on RMSE of duration_min: 12.2 against 13.5 "
    "(400 held-out rows)",
}


@pytest.mark.slow
def test_the_page_says_which_won_against_the_baselines(project_file: Path) -> None:
    _plant_facts(project_file, "eta", {"baselines": LOSS})
    at = _page()
    eta = at.tabs[0]
    assert eta.dataframe[0].value["against the baselines"].tolist() == [
        "loses to one global LightGBM on RMSE of duration_min (12.2 against 13.5)"
    ]
    assert [w.value for w in eta.warning] == [f"Against the baselines: {LOSS['verdict']}."]


@pytest.mark.slow
def test_facts_the_model_rejects_are_shown_as_the_error_naming_the_field(
    project_file: Path,
) -> None:
    _plant_facts(project_file, "fleet", {"rare": {"n_rare": "several"}})
    at = _page()
    assert not at.exception
    fleet = at.tabs[1]
    errors = [e.value for e in fleet.error]
    assert any("does not match the fleet recipe's facts model at 'rare." in e for e in errors)
