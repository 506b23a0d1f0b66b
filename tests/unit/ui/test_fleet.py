"""The Fleet page: fingerprints, rare devices, behaviour groups and findings (AppTest)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import streamlit as st
from sklearn.metrics import adjusted_rand_score
from streamlit.testing.v1 import AppTest

from opslens.recipes.fleet.pages import fleet as fleet_view
from opslens.recipes.fleet.pages.fleet import FLEET, FleetResult, deviation_sentences
from opslens.runner import run_in_memory
from opslens.synthetic.fleet import make_fleet
from opslens.ui.state import DATA, LoadedData

ROOT = Path(__file__).resolve().parents[3]
PAGE = str(ROOT / "src/opslens/recipes/fleet/pages/fleet.py")
METRICS = ["temperature", "vibration", "current"]


@pytest.fixture(scope="module")
def fleet() -> Any:
    return make_fleet(seed=0, n_devices=60, n_points=400)


def _data(fleet: Any) -> LoadedData:
    return LoadedData(fleet.readings, "device_id", "timestamp", METRICS, "synthetic fleet")


def _app(data: LoadedData | None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=120)
    if data is not None:
        at.session_state[DATA] = data
    return at.run()


def test_no_data_points_at_the_data_page() -> None:
    at = _app(None)
    assert not at.exception
    assert any("Data page" in i.value for i in at.info)
    assert not at.button  # nothing to compute


def test_before_computing_the_page_asks_for_a_click(fleet: Any) -> None:
    at = _app(_data(fleet))
    assert not at.exception
    assert at.button(key="compute_fleet").label == "Compute fingerprints and groups"
    assert at.number_input(key="fp_window").value == 24
    assert at.multiselect(key="rare_methods").value == [
        "isolation_forest",
        "one_class_svm",
        "ecod",
        "autoencoder",
    ]
    assert any("Compute fingerprints and groups" in i.value for i in at.info)
    assert not at.metric


def test_a_bad_k_range_is_an_error_in_the_page(fleet: Any) -> None:
    at = _app(_data(fleet))
    at.number_input(key="k_min").set_value(6)
    at.number_input(key="k_max").set_value(3).run()
    assert not at.exception
    assert any("k_max (3) must be >= k_min (6)" in e.value for e in at.error)
    assert at.button(key="compute_fleet").disabled


def test_no_detector_chosen_is_an_error(fleet: Any) -> None:
    at = _app(_data(fleet))
    at.multiselect(key="rare_methods").set_value([]).run()
    assert not at.exception
    assert any("at least one rare-device detector" in e.value for e in at.error)


def test_compute_shows_devices_rare_table_groups_and_findings(
    fleet: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    st.cache_data.clear()
    calls: list[str] = []
    seen: list[Any] = []

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append("run_in_memory")
        seen.append((args, kwargs))
        return run_in_memory(*args, **kwargs)

    monkeypatch.setattr(fleet_view, "run_in_memory", counted)
    at = _app(_data(fleet))
    at.number_input(key="top_n").set_value(12)
    at.button(key="compute_fleet").click().run()
    assert not at.exception
    # one in-memory run of the recipe's own stages, seeded from the config (default 0)
    assert calls == ["run_in_memory"]
    (project, name), kwargs = seen[0]
    assert kwargs["stages"] == ("prepare", "fingerprint", "rare", "health", "groups", "explain")
    assert project.analysis(name).recipe == "fleet"
    assert project.analysis(name).params.rare.top_n == 12
    assert at.session_state[FLEET].random_state == 0

    metrics = {m.label: m.value for m in at.metric}
    assert metrics["devices"] == "60"
    assert int(metrics["features"]) > 50
    assert int(metrics["rare devices"]) >= 1

    rare = at.dataframe[0].value
    assert len(rare) == 12
    assert list(rare.columns) == [
        "device_id",
        "combined score",
        "rank",
        "rare",
        "deviating features",
    ]
    assert rare["rank"].tolist() == list(range(1, 13))

    result = at.session_state[FLEET]
    assert isinstance(result, FleetResult)
    # sensor faults apart, then the devices most at risk with their explanations
    subheaders = [h.value for h in at.subheader]
    assert subheaders.index("Sensor faults") < subheaders.index("Devices most at risk")
    risk = next(d.value for d in at.dataframe if "explanation" in d.value.columns)
    assert list(risk.columns) == ["rank", "device_id", "risk", "explanation"]
    assert risk["explanation"].str.contains("against its peers' median").all()
    truth = fleet.truth.select("device_id", "group")
    labels = result.groups.labels.join(truth, on="device_id")
    best = result.best_method
    assert at.radio(key="group_method").value == best
    assert adjusted_rand_score(labels["group"], labels[best]) >= 0.8

    summary = next(d.value for d in at.dataframe if "silhouette" in d.value.columns)
    assert summary["method"].tolist() == ["kmeans", "dbscan", "agglomerative"]
    contrasts = next(d.value for d in at.dataframe if "smd" in d.value.columns)
    assert contrasts["group"].nunique() >= 2

    assert [s.value for s in at.subheader][-1] == "Findings"
    findings = at.markdown[-1].value
    assert findings.startswith("- ") and "separates the fleet best" in findings
    assert "60 devices behave rarely" in findings

    charts = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    map_spec = next(c for c in charts if "behaviour group" in json.dumps(c.get("title", "")))
    assert map_spec["encoding"]["shape"]["field"] == "kind"
    assert map_spec["encoding"]["color"]["field"] == "group"

    # switching the method re-runs the page from the session's results: nothing recomputed
    # (counted, not timed: the speed is measured in benchmarks/ui_fleet_page.py)
    at.radio(key="group_method").set_value("kmeans").run()
    assert not at.exception
    assert len(calls) == 1
    assert adjusted_rand_score(labels["group"], labels["kmeans"]) >= 0.8
    title = next(
        json.dumps(json.loads(c.proto.spec).get("title", ""))
        for c in at.get("vega_lite_chart")
        if "behaviour group" in c.proto.spec
    )
    assert "K-Means" in title

    # a page switch and back (a fresh run of the script with the same session) shows the results
    at.run()
    assert {m.label: m.value for m in at.metric}["devices"] == "60"
    assert len(calls) == 1

    # other data loaded on the Data page: the old results are not shown as if they were its own
    fewer = fleet.readings.filter(pl.col("device_id") != "dev-0000")
    at.session_state[DATA] = LoadedData(fewer, "device_id", "timestamp", METRICS, "fewer")
    at.run()
    assert not at.exception
    assert not at.metric
    assert any("Compute fingerprints and groups" in i.value for i in at.info)


def test_drill_down_shows_the_series_and_the_deviations_in_words(fleet: Any) -> None:
    at = _app(_data(fleet))
    at.button(key="compute_fleet").click().run()
    result: FleetResult = at.session_state[FLEET]
    third = result.rare.top.row(2, named=True)
    device = str(third["device_id"])
    at.selectbox(key="drill_device").set_value(device).run()
    assert not at.exception
    words = deviation_sentences(str(third["deviating_features"]), METRICS)
    shown = "\n".join(m.value for m in at.markdown)
    assert f"**{device}**" in shown
    assert all(w in shown for w in words) and "the fleet's median" in shown
    metric = str(third["deviating_features"]).split("__")[0]
    series = next(
        json.loads(c.proto.spec) for c in at.get("vega_lite_chart") if device in c.proto.spec
    )
    assert f"{device}: {metric}" in json.dumps(series["title"] if "title" in series else series)


def test_deviation_sentences_read_the_ranking_text() -> None:
    assert deviation_sentences("current__adf_pvalue +31.2σ, temperature__min -4.0σ", METRICS) == [
        "current adf_pvalue is 31.2σ above the fleet's median",
        "temperature min is 4.0σ below the fleet's median",
    ]
    assert deviation_sentences("", METRICS) == []


def test_the_seed_comes_from_the_projects_fleet_analysis(
    fleet: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project.yaml"
    project.write_text(
        "tracking: {enabled: false}\nanalyses:\n"
        "  - {name: devices, recipe: fleet, source: {kind: file, path: fleet.parquet},\n"
        "     columns: {entity: device_id, time: timestamp, metrics: [temperature]},\n"
        "     random_state: 7}\n"
    )
    monkeypatch.setenv("OPSLENS_PROJECT", str(project))
    at = _app(_data(fleet))
    at.button(key="compute_fleet").click().run()
    assert not at.exception
    result: FleetResult = at.session_state[FLEET]
    assert result.random_state == 7
    # the same stages with the same seed outside the app give the same ranking
    again = fleet_view._compute(
        fleet.readings, "device_id", "timestamp", tuple(METRICS), result.params.model_dump_json(), 7
    )
    assert again.rare.scores["combined"].to_list() == result.rare.scores["combined"].to_list()


def test_uploaded_events_are_drawn_on_the_device_timeline(fleet: Any) -> None:
    """An uploaded event list reaches the run and is drawn on the device's timeline (a
    dotted rule per event, coloured by kind); a list without a kind column is one error."""
    at = _app(_data(fleet))
    at.button(key="compute_fleet").click().run()
    device = str(at.session_state[FLEET].rare.top.row(2, named=True)["device_id"])
    times = fleet.readings.filter(pl.col("device_id") == device)["timestamp"].sort()
    when = [times[len(times) // 3], times[2 * len(times) // 3]]
    csv = (
        "device_id,time,kind\n"
        + f"{device},{when[0]:%Y-%m-%d %H:%M:%S},repair\n"
        + f"{device},{when[1]:%Y-%m-%d %H:%M:%S},error_e17\n"
    ).encode()
    at.file_uploader(key="events_upload").set_value(("events.csv", csv, "text/csv")).run()
    at.button(key="compute_fleet").click().run()
    assert not at.exception
    result: FleetResult = at.session_state[FLEET]
    assert result.events.height == 2
    at.selectbox(key="drill_device").set_value(device).run()
    assert not at.exception
    shown = "\n".join(m.value for m in at.markdown)
    assert (
        f"Events (dotted lines): repair {when[0]:%Y-%m-%d}, error_e17 {when[1]:%Y-%m-%d}" in shown
    )
    spec = next(
        json.loads(c.proto.spec) for c in at.get("vega_lite_chart") if device in c.proto.spec
    )
    layers = json.dumps(spec)
    assert "dotted: its events" in layers and '"rule"' in layers and '"kind"' in layers
    # a list without a kind column: one error naming the column, nothing computed
    bad = f"device_id,time,type\n{device},2024-01-01,repair\n".encode()
    at.file_uploader(key="events_upload").set_value(("events.csv", bad, "text/csv")).run()
    assert not at.exception
    assert any("(params.events.kind_column) is not in" in e.value for e in at.error)
    assert at.button(key="compute_fleet").disabled
