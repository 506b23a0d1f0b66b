"""Bad fleet inputs are found when the run starts, in one line naming the real key, exit 2.

And the settings that fit the data's rhythm: window and lags as durations, a
warning when a series is too short for a lag.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from tests.fakes.cli import run_cli

from opslens.synthetic.fleet import make_fleet
from opslens.tracking.runs import open_run

PROJECT = """
tracking: {{enabled: false}}
analyses:
  - name: fleet
    recipe: fleet
    source: {{kind: file, path: r.csv}}
    columns: {{entity: device_id, time: timestamp, metrics: {metrics}}}
    params: {params}
"""


def _small() -> pl.DataFrame:
    return make_fleet(n_devices=12, n_points=60, n_failing=2, seed=3).readings.drop("current")


def _write(
    folder: Path,
    params: str,
    metrics: str = "[temperature, vibration]",
    frame: Callable[[], pl.DataFrame] = _small,
) -> None:
    frame().write_csv(folder / "r.csv")
    (folder / "project.yaml").write_text(PROJECT.format(metrics=metrics, params=params))


FAILURES = {
    "good.csv": "device_id,failure_time\ndev-0001,2024-01-02T00:00:00\n",
    "header.csv": "device_id,failure_time\n",
    "other.csv": "machine,when\ndev-0001,2024-01-02\n",
    "badtime.csv": "device_id,failure_time\ndev-0001,yesterday\n",
    "list.txt": "dev-0001\n",
}


@pytest.mark.parametrize(
    ("case", "params", "metrics", "expected", "key"),
    [
        ("lags not numbers", "{fingerprint: {lags: abc}}", None, "'abc' is neither", "lags"),
        ("window not whole", "{fingerprint: {window: 2.5}}", None, "2.5 is neither", "window"),
        ("window too short", "{fingerprint: {window: 1}}", None, "at least 2", "window"),
        (
            "entity as a metric",
            "{}",
            "[temperature, device_id]",
            "column 'device_id' is both columns.entity and one of columns.metrics",
            "columns.metrics",
        ),
        (
            "time as a metric",
            "{}",
            "[timestamp, vibration]",
            "column 'timestamp' is both columns.time",
            "columns.metrics",
        ),
        (
            "failure list missing",
            "{failures: {path: nowhere.csv}}",
            None,
            "nowhere.csv (params.failures.path) does not exist",
            "params.failures.path",
        ),
        (
            "failure list not csv or parquet",
            "{failures: {path: list.txt}}",
            None,
            "(params.failures.path) is neither .csv nor .parquet",
            "params.failures.path",
        ),
        (
            "failure list header only",
            "{failures: {path: header.csv}}",
            None,
            "has no failed device ids (a header only",
            "params.failures.path",
        ),
        (
            "failure list without the device column",
            "{failures: {path: other.csv}}",
            None,
            "has no column 'device_id' (columns.entity)",
            "params.failures.id_column",
        ),
        (
            "failure id column misnamed",
            "{failures: {path: other.csv, id_column: device}}",
            None,
            "column 'device' (params.failures.id_column) is not in the failure list",
            "params.failures.id_column",
        ),
        (
            "failure time column misnamed",
            "{failures: {path: good.csv, time_column: failed}}",
            None,
            "column 'failed' (params.failures.time_column) is not in",
            "params.failures.time_column",
        ),
        (
            "failure times unreadable",
            "{failures: {path: badtime.csv}}",
            None,
            "failure list",
            "params.failures.time_column",
        ),
        (
            "inspect metric not a metric",
            "{inspect: {metrics: [current]}}",
            None,
            "params.inspect.metrics names 'current'",
            "params.inspect.metrics",
        ),
        (
            "inspect device unknown",
            "{inspect: {devices: [ghost]}}",
            None,
            "params.inspect.devices names 'ghost'",
            "params.inspect.devices",
        ),
    ],
)
def test_bad_fleet_inputs_stop_at_the_start(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
    params: str,
    metrics: str | None,
    expected: str,
    key: str,
) -> None:
    for name, text in FAILURES.items():
        (tmp_path / name).write_text(text)
    _write(tmp_path, params, metrics or "[temperature, vibration]")
    result = run_cli(["run"], tmp_path, monkeypatch)
    assert result.code == 2, (case, result.err)
    lines = [x for x in result.err.splitlines() if x.startswith("error:")]
    assert len(lines) == 1, result.err
    problem, _, fix = lines[0].partition("; fix: ")
    assert expected in problem, lines[0]
    assert key in lines[0] and fix, lines[0]
    assert "Traceback" not in result.err
    # found before the work: no stage after prepare ran, nothing committed
    assert "stage fingerprint" not in result.err
    assert not (tmp_path / "runs" / "fleet" / "latest").exists()


def test_a_fleet_of_constant_metrics_stops_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(
        tmp_path,
        "{}",
        frame=lambda: _small().with_columns(pl.lit(20.0).alias("temperature"), vibration=1.5),
    )
    result = run_cli(["run"], tmp_path, monkeypatch)
    assert result.code == 2, result.err
    line = next(x for x in result.err.splitlines() if x.startswith("error:"))
    assert "every metric (temperature, vibration) is constant across the whole fleet" in line
    assert "columns.metrics" in line
    assert not (tmp_path / "runs" / "fleet" / "latest").exists()


def test_window_and_lags_as_durations_follow_the_sampling_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the synthetic fleet reads hourly: 1d is 24 readings, 6h is 6; lag 200 > 60 readings
    _write(tmp_path, "{fingerprint: {window: 6h, lags: [1h, 1d, 200]}, inspect_top: 0}")
    result = run_cli(["run"], tmp_path, monkeypatch)
    assert result.code == 0, result.err
    facts = open_run(tmp_path / "runs", "fleet").facts
    assert facts["prepare"]["median_interval_seconds"] == 3600
    assert facts["fingerprint"]["window"] == 6 and facts["fingerprint"]["lags"] == [1, 24, 200]
    fp = open_run(tmp_path / "runs", "fleet").table("fingerprints")
    assert {"temperature__acf_24", "temperature__acf_200"} <= set(fp.columns)
    warned = " ".join(result.err.split())
    assert "lag(s) 200 of params.fingerprint.lags reach past the shortest series" in warned


def test_decomposition_period_is_a_setting_and_skips_are_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(
        tmp_path,
        "{inspect: {devices: [dev-0001, dev-0002], metrics: [temperature], period: 1d}}",
        frame=lambda: make_fleet(n_devices=12, n_points=200, n_failing=2, seed=3).readings.drop(
            "current"
        ),
    )
    assert run_cli(["run"], tmp_path, monkeypatch).code == 0
    run = open_run(tmp_path / "runs", "fleet")
    inspected = run.facts["inspect"]
    assert [(d["device"], d["metric"]) for d in inspected["devices"]] == [
        ("dev-0001", "temperature"),
        ("dev-0002", "temperature"),
    ]
    assert inspected["period"] == 24
    assert all(d["decomposition"]["period"] == 24 for d in inspected["devices"])
    assert all(d["decomposition"]["period_source"] == "given" for d in inspected["devices"])

    # 30 readings: fewer than two periods of 24 → skipped, and the report says why
    _write(
        tmp_path,
        "{inspect: {devices: [dev-0001], period: 1d}}",
        frame=lambda: make_fleet(n_devices=12, n_points=30, n_failing=2, seed=3).readings.drop(
            "current"
        ),
    )
    assert run_cli(["run"], tmp_path, monkeypatch).code == 0
    run = open_run(tmp_path / "runs", "fleet")
    assert run.facts["inspect"]["decompositions_skipped"] == 1
    skipped = run.facts["inspect"]["devices"][0]["decomposition"]
    assert "fewer than two periods of 24" in skipped["skipped"]
    assert "params.inspect.period" in skipped["fix"]
    assert run_cli(["report", "fleet"], tmp_path, monkeypatch).code == 0
    html = (run.path / "report.html").read_text()
    assert "1 decomposition of 1 was skipped" in html
    assert "decomposition skipped: " in html and "params.inspect.period" in html
    assert "pass period=" not in html
