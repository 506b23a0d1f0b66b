"""Bad configuration and data files are found when the run starts, in one line naming the key
and a fix that works, exit code 2; and what should run does."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import polars as pl
import pytest

from opslens.synthetic.fleet import make_fleet
from opslens.synthetic.trips import make_trips
from tests.fakes.cli import Result, run_cli

PROJECT = """
tracking: {{enabled: false}}
analyses:
  - name: {name}
    recipe: distribution
    source: {source}
    columns: {{time: started_at, target: duration_min, categorical: [route, hour_band]}}
    params: {{min_combination_size: 20, xgboost: {{n_estimators: 10}}}}
    random_state: {seed}
"""
SOURCE = "{kind: file, path: trips.csv}"


def _project(
    folder: Path, *, name: str = "trip-eta", source: str = SOURCE, seed: int = 0, extra: str = ""
) -> Path:
    path = folder / "project.yaml"
    path.write_text(PROJECT.format(name=name, source=source, seed=seed) + extra)
    return path


@pytest.fixture(scope="module")
def trips() -> pl.DataFrame:
    return make_trips(n_rows=3_000, seed=2, n_routes=3).trips


@pytest.fixture
def folder(tmp_path: Path, trips: pl.DataFrame) -> Path:
    trips.write_csv(tmp_path / "trips.csv")
    return tmp_path


def _one_error(result: Result) -> str:
    assert result.code == 2, (result.code, result.err)
    lines = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.err
    assert "Traceback" not in result.err + result.out
    assert "fix:" in lines[0]
    return lines[0]


def _no_run_started(folder: Path) -> None:
    assert not (folder / "runs").exists() or not any((folder / "runs").rglob("manifest.json"))


@pytest.mark.parametrize(
    ("seed", "shown"), [(-1, "random_state -1"), (2**40, f"random_state {2**40}")]
)
def test_random_state_outside_numpy_seed_range(
    folder: Path, monkeypatch: pytest.MonkeyPatch, seed: int, shown: str
) -> None:
    _project(folder, seed=seed)
    line = _one_error(run_cli(["run"], folder, monkeypatch))
    assert "'analyses[0].random_state'" in line and shown in line
    assert "from 0 to 4294967295" in line
    _no_run_started(folder)


def test_unknown_tracking_scheme_is_named_at_load(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = _project(folder).read_text().replace("{enabled: false}", '{uri: "bogus://nowhere"}')
    (folder / "project.yaml").write_text(text)
    line = _one_error(run_cli(["run"], folder, monkeypatch))
    assert "'tracking.uri': 'bogus://' is not a tracking store MLflow can use" in line
    _no_run_started(folder)


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("a" * 300, "the name is 300 characters long; use at most 100"),
        ('"../outside"', "may hold only letters, digits"),
        ('"trips/eta"', "may hold only letters, digits"),
    ],
)
def test_analysis_name_must_fit_a_folder(
    folder: Path, monkeypatch: pytest.MonkeyPatch, name: str, shown: str
) -> None:
    _project(folder, name=name)
    line = _one_error(run_cli(["run"], folder, monkeypatch))
    assert "'analyses[0].name'" in line and shown in line
    assert not (folder / "outside").exists()


def test_a_directory_as_data_file_is_not_a_file(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (folder / "data").mkdir()
    _project(folder, source="{kind: file, path: data}")
    line = _one_error(run_cli(["run"], folder, monkeypatch))
    assert f"data file {folder / 'data'} is a directory, not a file" in line


def test_an_empty_variable_as_path_is_not_a_file(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPSLENS_EMPTY_PATH", raising=False)
    _project(folder, source='{kind: file, path: "${OPSLENS_EMPTY_PATH:-}"}')
    line = _one_error(run_cli(["run"], folder, monkeypatch))
    assert "'analyses[0].source.path': is empty, not a file" in line
    assert "does not exist" not in line


def test_a_directory_as_project_file_is_not_a_file(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (folder / "conf").mkdir()
    line = _one_error(run_cli(["run", "conf"], folder, monkeypatch))
    assert "project file conf is a directory, not a file" in line


def test_dns_failure_names_the_host(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _project(
        folder,
        source='{kind: sql, url: "postgresql://u:pw@no-such-host.invalid/test", query: "select 1"}',
    )
    line = _one_error(run_cli(["run"], folder, monkeypatch))
    assert "the database host 'no-such-host.invalid'" in line
    assert "check the host name in source.url" in line and "source.query" not in line
    assert ":pw@" not in line


def test_duplicate_yaml_key_is_an_error(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (
        _project(folder)
        .read_text()
        .replace("recipe: distribution", "recipe: distribution\n    recipe: fleet")
    )
    (folder / "project.yaml").write_text(text)
    line = _one_error(run_cli(["run"], folder, monkeypatch))
    assert "key 'recipe' appears twice in one mapping (line 6)" in line


def test_params_errors_name_the_file_loaded(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = _project(folder).read_text().replace("min_combination_size: 20", "n_bins: 1")
    (folder / "site-b.yaml").write_text(text)
    line = _one_error(run_cli(["run", "site-b.yaml"], folder, monkeypatch))
    assert line.startswith("error: site-b.yaml: 'analyses[0].params.n_bins'"), line
    assert "project.yaml" not in line
    # `runs` lists what is on disk without importing any recipe, so a params mistake does not
    # hide the history of the project (the next `run` names it, as above)
    listed = run_cli(["runs", "-p", "site-b.yaml"], folder, monkeypatch)
    assert listed.code == 0 and "n_bins" not in listed.err, listed.err


def test_a_metric_null_everywhere_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readings = make_fleet(n_devices=20, n_points=60, n_failing=2, seed=3).readings
    readings.with_columns(pl.lit(None, dtype=pl.Float64).alias("current")).write_csv(
        tmp_path / "fleet.csv"
    )
    (tmp_path / "project.yaml").write_text(
        "tracking: {enabled: false}\nanalyses:\n  - name: fleet\n    recipe: fleet\n"
        "    source: {kind: file, path: fleet.csv}\n"
        "    columns: {entity: device_id, time: timestamp, "
        "metrics: [temperature, vibration, current]}\n"
    )
    line = _one_error(run_cli(["run"], tmp_path, monkeypatch))
    assert "metric column(s) 'current' of file" in line
    assert f"are null in every one of the {readings.height} rows" in line
    assert "remove them from columns.metrics" in line


def test_wrong_separator_gets_a_fix_that_works(
    folder: Path, trips: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    trips.write_csv(folder / "semi.csv", separator=";")
    _project(folder, source="{kind: file, path: semi.csv}")
    line = _one_error(run_cli(["run"], folder, monkeypatch))
    assert "it looks separated by ';', not ','" in line
    assert line.endswith("fix: set source.separator: ';'")
    _project(folder, source="{kind: file, path: semi.csv, separator: ';'}")
    fixed = run_cli(["run"], folder, monkeypatch)
    assert fixed.code == 0, fixed.err


def test_wrong_encoding_gets_a_fix_that_works(
    folder: Path, trips: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = trips.with_columns(pl.col("route").str.replace("R0", "Zürich-")).write_csv()
    (folder / "latin.csv").write_bytes(text.encode("latin-1"))
    _project(folder, source="{kind: file, path: latin.csv}")
    line = _one_error(run_cli(["run"], folder, monkeypatch))
    assert "latin.csv is not utf-8 text" in line
    assert "set source.encoding to the file's encoding, e.g. latin-1" in line
    _project(folder, source="{kind: file, path: latin.csv, encoding: latin-1}")
    fixed = run_cli(["run"], folder, monkeypatch)
    assert fixed.code == 0, fixed.err
    prepared = pl.read_parquet(
        next((folder / "runs" / "trip-eta").glob("*/tables/prepared.parquet"))
    )
    assert set(prepared["route"].unique()) == {"Zürich-1", "Zürich-2", "Zürich-3"}


@pytest.mark.parametrize(
    ("source", "shown"),
    [
        ("{kind: file, path: trips.csv, separator: ';;'}", "';;' is not one character"),
        ("{kind: file, path: trips.csv, encoding: klingon}", "'klingon' is not a text encoding"),
    ],
)
def test_bad_separator_or_encoding_is_named(
    folder: Path, monkeypatch: pytest.MonkeyPatch, source: str, shown: str
) -> None:
    _project(folder, source=source)
    line = _one_error(run_cli(["run"], folder, monkeypatch))
    assert "'analyses[0].source." in line and shown in line


def test_sql_colon_words_in_string_literals_run(
    folder: Path, trips: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    with sqlite3.connect(folder / "t.db") as conn:
        trips.to_pandas().to_sql("trips", conn, index=False)
    query = "select *, ' :note at 10:30' as note from trips where route <> ':none'"
    _project(folder, source=f'{{kind: sql, url: "sqlite:///t.db", query: "{query}"}}')
    result = run_cli(["run"], folder, monkeypatch)
    assert result.code == 0, result.err
    assert "rows" in result.err  # the loaded line: the query ran


LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{n}: &{n} [{', '.join([f'*{p}'] * 10)}]\n" for p, n in zip("abcdefg", "bcdefgh", strict=True)
)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (LAUGHS, "holds more than 100,000 values once its aliases (*name) are expanded"),
        ("a: &a [1, *a]\n", "has an alias (*name) inside the value it names"),
        ("analyses: yes\n", "'analyses' must be a list of analyses, not bool"),
    ],
    ids=["alias bomb", "self alias", "analyses not a list"],
)
def test_yaml_shapes_that_cannot_be_a_project(
    folder: Path, monkeypatch: pytest.MonkeyPatch, text: str, shown: str
) -> None:
    (folder / "project.yaml").write_text(text)
    assert shown in _one_error(run_cli(["run"], folder, monkeypatch))


def test_an_unreadable_dotenv_is_named(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _project(folder)
    (folder / ".env").write_bytes(b"DB_URL=\xff\xfe\n")
    line = _one_error(run_cli(["run"], folder, monkeypatch))
    assert f"cannot read {folder.resolve() / '.env'}" in line and "save .env as UTF-8" in line
