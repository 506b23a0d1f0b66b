"""The Score and Runs pages on the bundled demo projects, as `opslens demo` writes them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import opslens
from tests.unit.ui.conftest import all_recipes_project

PAGES = Path(__file__).resolve().parents[3] / "src" / "opslens" / "ui" / "pages"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The distribution and fleet demo projects in one folder, run once (MLflow off)."""
    folder = tmp_path_factory.mktemp("demo")
    project = all_recipes_project(folder, recipes=("distribution", "fleet"), smaller=False)
    for analysis in ("trip-eta", "device-fleet"):
        opslens.run(project, analysis=analysis)
    return project


def _page(name: str, project: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("OPSLENS_PROJECT", str(project))
    at = AppTest.from_file(str(PAGES / f"{name}.py"), default_timeout=120)
    at.run()
    assert not at.exception
    return at


def test_score_the_distribution_demo(demo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _page("score", demo, monkeypatch)
    assert at.selectbox(key="score_analysis").options == ["trip-eta", "device-fleet"]
    at.selectbox(key="score_analysis").set_value("trip-eta").run()
    at.selectbox(key="score_field_route").set_value("R02").run()
    at.button(key="score").click().run()
    assert not at.exception and not at.error
    answer = json.loads(at.json[0].value)
    instance = {
        "route": "R02",
        "hour_band": at.selectbox(key="score_field_hour_band").value,
        "vehicle_type": at.selectbox(key="score_field_vehicle_type").value,
    }
    expected = opslens.load_predictor(demo, "trip-eta").predict_one(instance)
    assert answer["probabilities"] == expected["probabilities"]
    assert "Probabilities" in [s.value for s in at.subheader]


def test_runs_of_the_demo_projects(demo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _page("runs", demo, monkeypatch)
    assert [t.label for t in at.tabs] == ["trip-eta", "device-fleet"]
    metrics = {m.label: m.value for m in at.metric}
    assert float(metrics["log_score"]) >= float(metrics["log_score_own"])
    # the model against its baselines is shown beside the first metrics
    assert float(metrics["model.log_score"]) > float(metrics["baseline.global.log_score"])
