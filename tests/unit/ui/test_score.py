"""The Score page: a form from the model's input schema, answers equal to the predictor's own."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

import opslens
from opslens.synthetic import generate
from opslens.tracking.runs import open_run
from opslens.ui.state import DATA, LoadedData
from opslens.ui.views.score import OTHER

PAGE = str(Path(__file__).resolve().parents[3] / "src/opslens/ui/pages/score.py")
FLEET = {"n_devices": 40, "n_points": 300, "n_failing": 4}
METRICS = ["temperature", "vibration", "current"]

PROJECT = f"""\
tracking: {{enabled: false}}
analyses:
  - name: eta
    recipe: distribution
    source: {{kind: synthetic, generator: trips, seed: 1, options: {{n_rows: 4000, n_routes: 4}}}}
    columns: {{target: duration_min, categorical: [route, hour_band]}}
    params: {{min_combination_size: 20, xgboost: {{n_estimators: 20}}}}
  - name: fleet
    recipe: fleet
    source: {{kind: synthetic, generator: fleet, seed: 1, options: {json.dumps(FLEET)}}}
    columns: {{entity: device_id, time: timestamp, metrics: [{", ".join(METRICS)}]}}
    params: {{rare: {{methods: [ecod]}}, inspect_top: 0}}
  - name: untrained
    recipe: distribution
    source: {{kind: synthetic, generator: trips, seed: 2, options: {{n_rows: 4000, n_routes: 4}}}}
    columns: {{target: duration_min, categorical: [route, hour_band]}}
"""


@pytest.fixture(scope="module")
def project_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with a trained distribution and fleet analysis, and one never run."""
    path = tmp_path_factory.mktemp("score") / "project.yaml"
    path.write_text(PROJECT)
    for analysis in ("eta", "fleet"):
        opslens.run(path, analysis=analysis)
    return path


@pytest.fixture
def page(project_file: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("OPSLENS_PROJECT", str(project_file))
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.run()
    assert not at.exception
    return at


def _fleet_data(frame: pl.DataFrame | None = None) -> LoadedData:
    frame = generate("fleet", seed=1, options=FLEET) if frame is None else frame
    return LoadedData(frame, "device_id", "timestamp", METRICS, "the synthetic fleet")


def _answer(at: AppTest) -> dict[str, object]:
    answer: dict[str, object] = json.loads(at.json[0].value)
    return answer


@pytest.mark.slow
def test_only_trained_analyses_are_offered(page: AppTest, project_file: Path) -> None:
    assert page.selectbox(key="score_analysis").options == ["eta", "fleet"]
    latest = open_run(project_file.parent / "runs", "eta").run_id
    assert any(f"The model of run {latest}" in c.value for c in page.caption)


@pytest.mark.slow
def test_distribution_answer_is_the_predictors(page: AppTest, project_file: Path) -> None:
    at = page
    at.selectbox(key="score_analysis").set_value("eta").run()
    route = at.selectbox(key="score_field_route")
    assert route.options == ["R01", "R02", "R03", "R04", OTHER]
    route.set_value("R03").run()
    at.selectbox(key="score_field_hour_band").set_value("evening").run()
    at.number_input(key="score_target").set_value(42.0).run()
    at.button(key="score").click().run()
    assert not at.exception and not at.error
    assert "Probabilities" in [s.value for s in at.subheader]
    # the instance against its predicted distribution, drawn into the page (a data URL)
    assert [h.value.startswith('<img src="data:image/png;base64,') for h in at.get("html")] == [
        True
    ]
    model = opslens.load_predictor(project_file, "eta")
    expected = model.predict_one({"route": "R03", "hour_band": "evening"})
    answer = _answer(at)
    assert answer["probabilities"] == expected["probabilities"]
    assert answer["cluster"] == expected["cluster"] and answer["unknown"] == []
    assert {m.label: m.value for m in at.metric}["cluster"] == str(expected["cluster"])


@pytest.mark.slow
def test_a_level_not_seen_in_training_is_scored_as_unknown(page: AppTest) -> None:
    at = page
    at.selectbox(key="score_analysis").set_value("eta").run()
    at.selectbox(key="score_field_route").set_value(OTHER).run()
    at.text_input(key="score_other_route").input("R99").run()
    at.button(key="score").click().run()
    assert not at.exception
    assert _answer(at)["unknown"] == ["route"]


@pytest.mark.slow
def test_fleet_device_score_is_predict_frames(page: AppTest, project_file: Path) -> None:
    at = page
    data = _fleet_data()
    at.session_state[DATA] = data
    at.selectbox(key="score_analysis").set_value("fleet").run()
    device = data.devices()[7]
    at.selectbox(key="score_device").set_value(device).run()
    at.button(key="score").click().run()
    assert not at.exception and not at.error
    model = opslens.load_predictor(project_file, "fleet")
    expected = model.predict_frame(data.frame.filter(pl.col("device_id") == device)).row(
        0, named=True
    )
    answer = _answer(at)
    assert answer["device_id"] == device
    assert answer["score"] == expected["score"] and answer["is_rare"] == expected["is_rare"]
    assert "Explanation" in [s.value for s in at.subheader]
    features = at.dataframe[0].value
    assert len(features) == 5 and list(features.columns) == ["feature", "robust_z"]


@pytest.mark.slow
def test_an_uploaded_csv_of_one_device_is_scored(page: AppTest, project_file: Path) -> None:
    at = page
    at.selectbox(key="score_analysis").set_value("fleet").run()
    assert at.radio(key="score_readings_source").options == ["An uploaded CSV of one device"]
    readings = generate("fleet", seed=1, options=FLEET)
    device = readings["device_id"].unique().sort()[3]
    one = readings.filter(pl.col("device_id") == device)
    at.file_uploader(key="score_upload").set_value(("d.csv", one.write_csv().encode(), "text/csv"))
    at.run()
    at.button(key="score").click().run()
    assert not at.exception and not at.error
    expected = opslens.load_predictor(project_file, "fleet").predict_frame(one)["score"][0]
    answer = _answer(at)
    assert answer["device_id"] == device and answer["score"] == expected
    two = readings.filter(pl.col("device_id").is_in(readings["device_id"].unique().sort()[:2]))
    at.file_uploader(key="score_upload").set_value(("d.csv", two.write_csv().encode(), "text/csv"))
    at.run()
    assert "holds 2 devices" in at.error[0].value


@pytest.mark.slow
def test_readings_the_model_cannot_use_are_an_error_in_the_page(page: AppTest) -> None:
    at = page
    at.session_state[DATA] = _fleet_data(generate("fleet", seed=1, options=FLEET).drop("current"))
    at.selectbox(key="score_analysis").set_value("fleet").run()
    at.button(key="score").click().run()
    assert not at.exception
    assert "lack current" in at.error[0].value
    assert not at.json


def test_without_a_project_the_page_says_how_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPSLENS_PROJECT", raising=False)
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    assert "opslens ui -p project.yaml" in at.info[0].value
