"""Issue 28, messages: fixes name the option or key that points at the file; silent
acceptances are errors; misleading messages say what is wrong. Each with `-q`: exactly one
line, exit code 2."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from opslens.errors import SourceError
from opslens.synthetic.clickstream import make_clickstream
from opslens.synthetic.trips import make_trips
from tests.e2e.hardening.test_file_system import one_error
from tests.fakes.cli import run_cli

pytestmark = pytest.mark.slow

TRIPS = """tracking: {{enabled: false}}
analyses:
  - name: eta
    recipe: distribution
    source: {{kind: file, path: {path}}}
    columns: {{{time}target: duration_min, categorical: [route, hour_band]}}
    params: {{min_combination_size: 20, xgboost: {{n_estimators: 10}}{extra}}}
"""
SEGMENTS = """tracking: {{uri: "sqlite:///mlflow.db"}}
analyses:
  - name: patients
    recipe: segments
    source: {{kind: synthetic, generator: patients, seed: 0, options: {{n_rows: 400}}}}
    columns:
      target: next_score
      metrics: [{metrics}]
      categorical: [ward]
    params: {{{params}}}
"""
SHOP = """tracking: {{enabled: false}}
analyses:
  - name: shop
    recipe: propensity
    source: {{kind: file, path: events.parquet}}
    params:
      features: {{every: 1d, lookback: 7d, horizon: 2d{features}}}
      models: {{n_estimators: 10}}
      {extra}
"""


def _quiet(folder: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> str:
    """The one line of `opslens -q ARGS` (exit code 2)."""
    result = run_cli(["-q", *args], folder, monkeypatch)
    line = one_error(result)
    assert result.err.strip() == line and result.out == "", result.err + result.out
    return line


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trips project with one complete run (tracking off)."""
    from opslens.api import load_project
    from opslens.runner import run_analysis

    folder = tmp_path_factory.mktemp("messages")
    make_trips(n_rows=2_000, seed=1, n_routes=3).trips.write_parquet(folder / "trips.parquet")
    (folder / "project.yaml").write_text(
        TRIPS.format(path="trips.parquet", time="time: started_at, ", extra="")
    )
    run_analysis(load_project(folder / "project.yaml"), "eta")
    return folder


# ----- fixes that name the right option or key ----------------------------------------------
def test_score_input_fixes_name_the_input_option(
    scored: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    line = _quiet(scored, monkeypatch, "score", "eta", "--input", "nope.csv", "-o", "a.csv")
    assert "nope.csv does not exist" in line and "fix: pass --input a CSV or Parquet" in line
    assert "source.path" not in line
    (scored / "odd.json").write_text("{}")
    line = _quiet(scored, monkeypatch, "score", "eta", "--input", "odd.json", "-o", "a.csv")
    assert "fix: give --input a file ending in .csv or .parquet" in line


def test_batch_input_fix_names_the_input_option(
    scored: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    line = _quiet(scored, monkeypatch, "batch", "eta", "--input", "nope.parquet")
    assert "fix: pass --input" in line and "source" not in line


def test_the_item_table_fix_names_params_items_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_clickstream(seed=3, num_users=60, num_items=20, num_days=20).events.write_parquet(
        tmp_path / "events.parquet"
    )
    (tmp_path / "project.yaml").write_text(
        SHOP.format(features="", extra="items: {path: items.parquet}")
    )
    line = _quiet(tmp_path, monkeypatch, "run")
    assert "items.parquet does not exist" in line and "fix: check params.items.path" in line


# ----- silent acceptances made errors -------------------------------------------------------
def test_a_segments_target_among_the_features_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    metrics = "heart_rate, systolic_bp, next_score"
    (tmp_path / "project.yaml").write_text(SEGMENTS.format(metrics=metrics, params=""))
    line = _quiet(tmp_path, monkeypatch, "run")
    assert "the target 'next_score' (columns.target) is also an input" in line
    assert "fix: remove 'next_score' from the inputs" in line
    assert not (tmp_path / "runs").exists()


def test_a_bogus_history_url_is_refused_at_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = "monitor: {history_url: 'bogus://nowhere'}"
    (tmp_path / "project.yaml").write_text(
        SEGMENTS.format(metrics="heart_rate, systolic_bp", params=params)
    )
    line = _quiet(tmp_path, monkeypatch, "run")
    assert "params.monitor.history_url" in line and "'bogus://' is not a database URL" in line


@pytest.mark.parametrize(
    ("features", "words"),
    [
        (", windows: [1d, 7]", "windows must be at least an hour, but one is 7 seconds"),
        (", windows: [30m]", "one is 1800 seconds"),
    ],
)
def test_propensity_windows_without_a_unit_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, features: str, words: str
) -> None:
    (tmp_path / "project.yaml").write_text(SHOP.format(features=features, extra=""))
    line = _quiet(tmp_path, monkeypatch, "run")
    assert words in line and "params.features" in line


def test_retrain_with_an_empty_reason_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for reason in ("", "   "):
        line = _quiet(tmp_path, monkeypatch, "retrain", "eta", "--reason", reason)
        assert line.startswith("error: --reason is empty") and "fix: say why" in line


@pytest.mark.parametrize("name", ["out.xlsx", "out.json", "out"])
def test_batch_output_that_is_not_parquet_or_csv_is_refused(
    scored: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    line = _quiet(scored, monkeypatch, "batch", "eta", "--input", "trips.parquet", "-o", name)
    assert f"--output {name} is neither .parquet nor .csv" in line
    assert not (scored / name).exists()


# ----- misleading messages ------------------------------------------------------------------
def test_mixed_naive_and_offset_timestamps_are_said_to_mix_offsets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trips = make_trips(n_rows=2_000, seed=1, n_routes=3).trips
    text = trips["started_at"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    mixed = pl.Series([t + ("+02:00" if i % 2 else "") for i, t in enumerate(text)])
    trips.with_columns(mixed.alias("started_at")).write_csv(tmp_path / "trips.csv")
    (tmp_path / "project.yaml").write_text(
        TRIPS.format(path="trips.csv", time="time: started_at, ", extra="")
    )
    line = _quiet(tmp_path, monkeypatch, "run")
    assert "mixes timestamps with a UTC offset" in line and "+02:00" in line
    assert "not timestamps" not in line


@pytest.mark.parametrize("command", [["run", "proj"], ["runs", "-p", "proj"], ["ui", "-p", "proj"]])
def test_a_project_path_that_is_a_directory_is_called_a_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    (tmp_path / "proj").mkdir()
    line = _quiet(tmp_path, monkeypatch, *command)
    assert "proj is a directory, not a file" in line


def test_an_out_of_range_redis_database_is_named() -> None:
    from opslens.online.service.state import open_state

    with pytest.raises(SourceError) as caught:
        open_state("redis://127.0.0.1:6379/99")
    said = str(caught.value)
    assert "names database 99, which this Redis does not have" in said
    assert "start Redis" not in said and "name a database from 0 to 15" in said


def test_null_user_ids_everywhere_are_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = make_clickstream(seed=3, num_users=60, num_items=20, num_days=20).events
    events.with_columns(pl.lit(None, pl.String).alias("user_id")).write_parquet(
        tmp_path / "events.parquet"
    )
    (tmp_path / "project.yaml").write_text(SHOP.format(features="", extra=""))
    line = _quiet(tmp_path, monkeypatch, "run")
    assert "has a null 'user_id'" in line and "columns.entity" in line
    assert "known type" not in line


def test_the_failure_list_fix_names_params_failures_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "project.yaml").write_text(
        """tracking: {enabled: false}
analyses:
  - name: fleet
    recipe: fleet
    source: {kind: synthetic, generator: fleet, seed: 0, options: {n_devices: 30, n_points: 200}}
    columns: {entity: device_id, time: timestamp, metrics: [temperature, vibration, current]}
    params: {failures: {path: failures.csv, id_column: device_id, time_column: failure_time}}
"""
    )
    line = _quiet(tmp_path, monkeypatch, "run")
    assert "failures.csv" in line and "params.failures.path" in line.split("fix:", 1)[1]
    assert "source." not in line
