"""Planted gradual degradation and sensor faults on two turbine fleets, found as an engineer would.

The demo configuration (3 sites, seed 0) and one nothing was tuned on (4 sites with
other names, other metric names, 200 days, seed 7) run through the whole recipe; on both:
the failure-risk ranking separates the 12 failed turbines (AUROC >= 0.95, precision@10 >=
0.6), the warning rule warns >= 10 of 12 at <= 10% of healthy turbines, >= 7 days ahead
in the median, beats chance (p < 0.01) and the per-device streak rule, >= 9 of 10 sensor
faults are listed and none of them is among the 10 riskiest, and the run beats both
baselines. Bad peer-group and limits settings stop the run in one line, exit 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
from tests.fakes.cli import run_cli

from opslens.api import load_project
from opslens.runner import run_analysis
from opslens.synthetic.turbines import TurbineFleet, make_turbines
from opslens.tracking.runs import open_run
from opslens.tracking.tracker import MemoryTracker

pytestmark = pytest.mark.slow

PROJECT = """
tracking: {{enabled: false}}
analyses:
  - name: wind
    recipe: fleet
    source: {{kind: file, path: readings.parquet}}
    columns:
      entity: turbine_id
      time: timestamp
      metrics: [{metrics}]
      peer_group: {peer}
    params:
      fingerprint: {{window: 7d, lags: [1, 2, 7]}}
      failures: {{path: failures.csv, id_column: turbine_id, time_column: failure_time}}
      lead_time: {{horizon: 30d}}
      units: {{{temp}: "°C"}}
      {extra}
"""

CONFIGS = {
    "demo": {"seed": 0},
    "other": {
        "seed": 7,
        "n_sites": 4,
        "site_names": ["north", "south", "east", "west"],
        "metrics": ("bearing_temp", "output_kw", "shaft_rpm"),
        "id_prefix": "t",
        "n_days": 200,
    },
}


def _project(folder: Path, fleet: TurbineFleet, *, peer: str = "site", extra: str = "") -> None:
    fleet.readings.write_parquet(folder / "readings.parquet")
    fleet.failures().write_csv(folder / "failures.csv")
    (folder / "project.yaml").write_text(
        PROJECT.format(
            metrics=", ".join(fleet.metrics), peer=peer, temp=fleet.metrics[0], extra=extra
        )
    )


@pytest.fixture(scope="module", params=list(CONFIGS))
def run(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[TurbineFleet, dict[str, Any], Path]:
    fleet = make_turbines(**CONFIGS[request.param])  # type: ignore[arg-type]
    folder = tmp_path_factory.mktemp(f"wind-{request.param}")
    _project(folder, fleet)
    run_analysis(load_project(folder / "project.yaml"), "wind", tracker=MemoryTracker())
    handle = open_run(folder / "runs", "wind")
    return fleet, handle.facts, handle.path


def test_the_risk_ranking_finds_the_failing_turbines(
    run: tuple[TurbineFleet, dict[str, Any], Path],
) -> None:
    fleet, facts, _ = run
    ranking = facts["failures"]["ranking"]
    assert ranking["auroc"] >= 0.95 and ranking["precision_at"]["10"] >= 0.6
    assert ranking["auroc_p"] < 0.01
    assert facts["baselines"]["model_wins"]
    assert facts["failures"]["n_failed"] == 12
    # the explanation of the riskiest turbine names the heated metric in its unit, and when
    top = facts["health"]["top"][0]
    assert top["explanation"].startswith(f"{fleet.metrics[0]} has run ")
    assert " °C above its usual level against its peers' median since " in top["explanation"]
    # the equal-weight ranking is stated beside the learned weights
    assert facts["health"]["weights_from"] == "learned"
    assert facts["health"]["equal_weights_auroc"] is not None
    assert facts["health"]["equal_weights_precision_at_10"] is not None
    # validated out of fold: 5 folds, each device scored with weights learned without it
    assert len(facts["health"]["fold_weights"]) == 5


def test_the_warning_rule_warns_early_and_rarely(
    run: tuple[TurbineFleet, dict[str, Any], Path],
) -> None:
    _, facts, path = run
    lead = facts["failures"]["lead_time"]
    assert lead["n_failed"] == 12 and lead["n_detected"] >= 10
    assert lead["healthy_share_detected"] <= 0.10
    assert lead["median_lead_days"] >= 7
    assert lead["p_value"] < 0.01 and lead["beats_chance"]
    assert lead["beats_baseline"]
    base = lead["baseline"]
    assert lead["n_detected"] >= base["n_detected"]
    assert lead["healthy_detected"] <= base["healthy_warned"]
    table = pl.read_parquet(path / "tables" / "lead_times.parquet")
    assert table.filter(~pl.col("failed")).height == lead["n_healthy"]
    # device by device against the baseline rule: the difference with its spread and a test
    c = lead["comparison"]
    assert c["healthy_warned_diff"] == lead["healthy_detected"] - base["healthy_warned"] <= 0
    lo, hi = c["healthy_warned_interval"]
    assert lo <= c["healthy_warned_diff"] <= hi and 0 < c["healthy_warned_p"] <= 1
    assert c["lead_days_diff"] >= 0 and c["lead_days_interval"][1] > 0
    assert "device by device against it: " in lead["sentence"]
    # the model against its baselines: a paired permutation p beside the bootstrap interval
    for score in facts["baselines"]["scores"]:
        if score["metric"] == "auroc":
            assert score["p_value"] is not None and score["interval"] is not None
            assert score["model"] > score["value"] and score["interval"][0] > 0


def test_sensor_faults_are_listed_apart(run: tuple[TurbineFleet, dict[str, Any], Path]) -> None:
    fleet, facts, path = run
    faults = pl.read_parquet(path / "tables" / "sensor_faults.parquet")
    truth = fleet.truth.filter(pl.col("sensor_fault").is_not_null())
    hit = truth.join(
        faults, left_on=["turbine_id", "fault_metric"], right_on=["turbine_id", "metric"]
    )
    assert hit.height >= 9
    risk = pl.read_parquet(path / "tables" / "risk.parquet").sort("rank")
    top10 = set(risk.head(10)["turbine_id"].to_list())
    assert not top10 & set(truth["turbine_id"].to_list())
    assert facts["health"]["n_sensor_faults"] == faults.height


def test_bad_peer_group_and_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fleet = make_turbines(n_turbines=30, n_sites=2, n_days=80, n_failing=2, n_sensor_faults=2)
    for peer, extra, expected in (
        ("model", "", "columns.peer_group names 'model', which is not in"),
        ("site", "limits: {vibration: [0, 10]}", "params.limits names 'vibration'"),
    ):
        _project(tmp_path, fleet, peer=peer, extra=extra)
        result = run_cli(["run"], tmp_path, monkeypatch)
        assert result.code == 2, result.err
        lines = [x for x in result.err.splitlines() if x.startswith("error:")]
        assert len(lines) == 1 and expected in lines[0] and "fix:" in lines[0], result.err


def test_a_peer_group_of_one_is_compared_with_the_fleet(tmp_path: Path) -> None:
    fleet = make_turbines(n_turbines=30, n_sites=2, n_days=80, n_failing=2, n_sensor_faults=2)
    lonely = fleet.readings["turbine_id"][0]
    readings = fleet.readings.with_columns(
        pl.when(pl.col("turbine_id") == lonely)
        .then(pl.lit("island"))
        .otherwise("site")
        .alias("site")
    )
    _project(tmp_path, TurbineFleet(readings, fleet.truth, fleet.metrics))
    run_analysis(load_project(tmp_path / "project.yaml"), "wind", tracker=MemoryTracker())
    handle = open_run(tmp_path / "runs", "wind")
    assert handle.facts["health"]["lonely_devices"] == [lonely]
    log = (handle.path / "run.log").read_text()
    assert "1 device(s) are alone in their peer group (columns.peer_group 'site')" in log


def test_a_recent_week_is_compared_with_recent_weeks(
    run: tuple[TurbineFleet, dict[str, Any], Path],
) -> None:
    """The last 7 days of healthy training turbines: compared with 7-day windows of the
    training turbines, not with their whole histories (all of them were called rare
    before), and none is called rare at the default threshold (a per-device false-alarm
    rate: at most 5% of training turbines have any window above it)."""
    import joblib

    fleet, _, path = run
    model = joblib.load(path / "model" / "model.joblib")
    entity = "turbine_id"
    last = fleet.readings.filter(
        pl.col("timestamp") > pl.col("timestamp").max().over(entity) - pl.duration(days=7)
    )
    healthy = fleet.truth.filter(~pl.col("failed") & pl.col("sensor_fault").is_null())[entity]
    week = model.predict_frame(last.filter(pl.col(entity).is_in(healthy.implode())))
    assert week["compared_with"].unique().to_list() == ["7-day windows of the training devices"]
    assert week.height == 278 and week["is_rare"].sum() == 0
    whole = model.predict_frame(fleet.readings.filter(pl.col(entity).is_in(healthy.implode())))
    assert whole["compared_with"].unique().to_list() == ["whole history"]
    # a device with less history than the window is told so, and still answered
    short = fleet.readings.filter(pl.col(entity) == healthy[0]).head(4)
    answer = model.predict_one(
        {
            entity: healthy[0],
            "readings": short.drop(entity, "site")
            .with_columns(pl.col("timestamp").dt.strftime("%Y-%m-%dT%H:%M:%S"))
            .to_dicts(),
        }
    )
    assert answer["note"] == "has 3.0 days of readings, less than the 7 days the model compares"


def test_maintenance_events_reach_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fleet = make_turbines(
        n_turbines=40, n_sites=2, n_days=120, n_failing=3, n_sensor_faults=2, n_repairs=4, seed=2
    )
    assert fleet.events is not None
    fleet.events.write_csv(tmp_path / "events.csv")
    repaired = str(fleet.events["turbine_id"][0])
    _project(
        tmp_path,
        fleet,
        extra=f"events: {{path: events.csv}}\n      inspect: {{devices: [{repaired}]}}",
    )
    run_analysis(load_project(tmp_path / "project.yaml"), "wind", tracker=MemoryTracker())
    handle = open_run(tmp_path / "runs", "wind")
    # the inspected device's events are on its timeline (plots) and in its facts
    inspected = handle.facts["inspect"]["devices"][0]
    mine = fleet.events.filter(pl.col("turbine_id") == repaired)
    assert inspected["device"] == repaired
    assert [e["kind"] for e in inspected["events"]] == mine["kind"].to_list()
    assert (handle.path / "plots" / f"device_{repaired}_anomalies.png").exists()
    assert handle.facts["health"]["events"] == {
        "n_events": 4,
        "kinds": {"repair": 4},
        "devices_reset": 4,
    }
    risk = pl.read_parquet(handle.path / "tables" / "risk.parquet")
    assert risk["events_repair"].sum() == 4
    _project(tmp_path, fleet, extra="events: {path: events.csv, kind_column: type}")
    result = run_cli(["run"], tmp_path, monkeypatch)
    assert result.code == 2, result.err
    lines = [x for x in result.err.splitlines() if x.startswith("error:")]
    assert len(lines) == 1 and "(params.events.kind_column) is not in" in lines[0], result.err
