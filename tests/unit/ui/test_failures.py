"""The Known failures page: enrichment, ranking quality, verdict and lead time (AppTest)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from opslens.explain.failures import ranking_quality
from opslens.recipes.fleet.pages.failures import (
    _failures_from_input,
    duration_text,
    parse_failure_text,
)
from opslens.recipes.fleet.pages.fleet import FLEET, FleetResult
from opslens.synthetic.fleet import make_fleet
from opslens.ui.state import DATA, FAILURES, FailureList, LoadedData

ROOT = Path(__file__).resolve().parents[3]
FAILURES_PAGE = str(ROOT / "src/opslens/recipes/fleet/pages/failures.py")
FLEET_PAGE = str(ROOT / "src/opslens/recipes/fleet/pages/fleet.py")
METRICS = ["temperature", "vibration", "current"]


@pytest.fixture(scope="module")
def fleet() -> Any:
    return make_fleet(seed=0, n_devices=60, n_points=400, n_failing=12)


@pytest.fixture(scope="module")
def data(fleet: Any) -> LoadedData:
    return LoadedData(fleet.readings, "device_id", "timestamp", METRICS, "synthetic fleet")


@pytest.fixture(scope="module")
def computed(data: LoadedData) -> FleetResult:
    """The Fleet page's results, computed by the Fleet page with its defaults."""
    at = AppTest.from_file(FLEET_PAGE, default_timeout=120)
    at.session_state[DATA] = data
    at.run()
    at.button(key="compute_fleet").click().run()
    assert not at.exception
    result = at.session_state[FLEET]
    assert isinstance(result, FleetResult)
    return result


def _failed_text(fleet: Any, *, times: bool = True) -> str:
    failed = fleet.truth.filter(pl.col("failed"))
    if not times:
        return "\n".join(failed["device_id"].to_list())
    return "\n".join(
        f"{d},{t.isoformat(sep=' ')}"
        for d, t in zip(failed["device_id"], failed["failure_time"], strict=True)
    )


def _app(data: LoadedData | None, result: FleetResult | None = None) -> AppTest:
    at = AppTest.from_file(FAILURES_PAGE, default_timeout=120)
    if data is not None:
        at.session_state[DATA] = data
    if result is not None:
        at.session_state[FLEET] = result
    return at.run()


def _check(at: AppTest, text: str) -> AppTest:
    at.text_area(key="failed_ids").input(text)
    return at.button(key="check_failures").click().run()


def test_no_data_points_at_the_data_page() -> None:
    at = _app(None)
    assert not at.exception
    assert any("Data page" in i.value for i in at.info)


def test_without_fleet_results_it_offers_to_compute_them_here(data: LoadedData) -> None:
    at = _app(data)
    assert not at.exception
    assert any("compute the Fleet page first" in i.value for i in at.info)
    assert not at.text_area  # no input before the fleet results exist
    at.button(key="compute_fleet_here").click().run()
    assert not at.exception
    assert isinstance(at.session_state[FLEET], FleetResult)
    assert at.text_area(key="failed_ids").label == (
        "Failed device ids (one per line, optionally ',<failure time>')"
    )
    at.run()  # the next run finds the results in the session
    assert not any("compute the Fleet page first" in i.value for i in at.info)


def test_failures_with_times_show_enrichment_quality_verdict_and_lead_time(
    fleet: Any, data: LoadedData, computed: FleetResult
) -> None:
    at = _check(_app(data, computed), _failed_text(fleet))
    assert not at.exception
    assert not at.error and not at.warning

    failed = set(fleet.truth.filter(pl.col("failed"))["device_id"].to_list())
    stored = at.session_state[FAILURES]
    assert isinstance(stored, FailureList)
    assert set(stored.ids) == failed and set(stored.times) == failed

    assert "Enrichment per group" in [s.value for s in at.subheader]
    enrichment = at.dataframe[0].value
    assert {"group", "failure_rate", "lift", "fisher_p"} <= set(enrichment.columns)
    holding = enrichment.sort_values("n_failed").iloc[-1]
    assert holding["n_failed"] >= 10  # the planted failures sit in one group
    assert holding["fisher_p"] < 0.01 and bool(holding["enriched"])

    metrics = {m.label: m.value for m in at.metric}
    assert float(metrics["AUROC"]) >= 0.8
    assert 0 <= float(metrics["precision@10"]) <= 1
    assert 0 <= float(metrics["recall@10"]) <= 1
    verdict = ranking_quality(computed.rare.scores.select("device_id", "combined"), failed).verdict
    assert any(verdict in m.value for m in at.markdown)
    assert verdict.startswith("useful risk indicator")

    charts = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    assert any("Precision and recall at k" in json.dumps(c.get("title", "")) for c in charts)

    assert "Lead time before failure" in [s.value for s in at.subheader]
    assert metrics["median lead time"].endswith(("days", "hours", "minutes"))
    assert metrics["detected before failing"].endswith("of 12")
    assert metrics["chance baseline"] == f"{10 * 48 / 60:.1f}"  # k × healthy / devices
    assert float(metrics["healthy devices in the top 10"]) >= 0
    lead = next(d.value for d in at.dataframe if "lead_time" in d.value.columns)
    assert len(lead) == 12

    findings = at.markdown[-1].value
    assert "Fisher p" in findings and "entered the top 10 before failing" in findings

    # another grouping: the table follows the radio, nothing else is asked again
    at.radio(key="failure_group_method").set_value("kmeans").run()
    assert not at.exception
    kmeans = at.dataframe[0].value
    assert kmeans.sort_values("n_failed").iloc[-1]["n_failed"] == 12
    assert "-1" not in kmeans["group"].astype(str).tolist()


def test_ids_without_times_skip_the_lead_time(
    fleet: Any, data: LoadedData, computed: FleetResult
) -> None:
    at = _check(_app(data, computed), _failed_text(fleet, times=False))
    assert not at.exception
    assert {m.label for m in at.metric} == {"AUROC", "precision@10", "recall@10"}
    assert any("Give failure times" in c.value for c in at.caption)
    assert at.session_state[FAILURES].times == {}


def test_an_unknown_id_is_warned_about_and_ignored(
    fleet: Any, data: LoadedData, computed: FleetResult
) -> None:
    at = _check(_app(data, computed), _failed_text(fleet) + "\nnot-a-device,2024-01-10")
    assert not at.exception
    assert any("not-a-device" in w.value and "ignored" in w.value for w in at.warning)
    assert "not-a-device" not in at.session_state[FAILURES].ids
    assert len(at.session_state[FAILURES].ids) == 12
    assert float({m.label: m.value for m in at.metric}["AUROC"]) >= 0.8


def test_an_empty_list_is_an_error(data: LoadedData, computed: FleetResult) -> None:
    at = _check(_app(data, computed), "  \n\n")
    assert not at.exception
    assert any("No failed device ids given" in e.value for e in at.error)
    assert FAILURES not in at.session_state


def test_only_unknown_ids_is_an_error(data: LoadedData, computed: FleetResult) -> None:
    at = _check(_app(data, computed), "ghost-1\nghost-2")
    assert not at.exception
    assert any("None of the 2 given ids" in e.value for e in at.error)
    assert any("ghost-1" in w.value for w in at.warning)


def test_a_bad_failure_time_is_shown_in_the_page(data: LoadedData, computed: FleetResult) -> None:
    at = _check(_app(data, computed), "dev-0001,not a time")
    assert not at.exception
    assert any("not timestamps" in e.value for e in at.error)


def test_a_bad_lead_time_setting_is_an_error(
    fleet: Any, data: LoadedData, computed: FleetResult
) -> None:
    at = _check(_app(data, computed), _failed_text(fleet))
    at.text_input(key="lead_window").input("a week").run()
    assert not at.exception
    assert any("not a duration" in e.value for e in at.error)


def test_failures_from_text_and_csv_upload() -> None:
    csv = b"device_id,failure_time\nd2,2024-01-03T00:00:00\n,2024-01-04\nd3,\n"
    ids, times = _failures_from_input("d1, 2024-01-02 06:00\n", csv, "device_id")
    assert ids == {"d1", "d2", "d3"}
    assert times == {"d1": datetime(2024, 1, 2, 6), "d2": datetime(2024, 1, 3)}
    ids, times = _failures_from_input("", b"serial\n7\n8\n", "device_id")
    assert ids == {"7", "8"} and times == {}


def test_parse_failure_text_and_duration_text() -> None:
    frame = parse_failure_text("device_id;failure_time\nd1;2024-01-02\n\td2\n# x\n", "device_id")
    assert frame.rows() == [("d1", "2024-01-02"), ("d2", None)]
    assert parse_failure_text("", "device_id").height == 0
    assert duration_text(timedelta(minutes=30)) == "30m"
