"""Every bad input ends in one line naming the problem, exit code 2, no traceback,
and the previous `latest` run untouched."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from opslens.synthetic.trips import make_trips
from tests.contracts.param_keys import wrong_keys
from tests.fakes.cli import run_cli

GOOD = """
tracking: {{enabled: false}}
runs_dir: {runs}
analyses:
  - name: trip-eta
    recipe: distribution
    source: {source}
    columns: {columns}
    params: {params}
"""
SOURCE = "{kind: file, path: trips.csv}"
COLUMNS = "{time: started_at, target: duration_min, categorical: [route, hour_band]}"
PARAMS = "{min_combination_size: 20, xgboost: {n_estimators: 20}}"


def project_text(
    runs: Path, *, source: str = SOURCE, columns: str = COLUMNS, params: str = PARAMS
) -> str:
    return GOOD.format(runs=runs, source=source, columns=columns, params=params)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """A folder with good data and one complete run; returns (folder, runs, latest run id)."""
    from opslens.api import load_project
    from opslens.runner import run_analysis

    folder = tmp_path_factory.mktemp("bad")
    runs = folder / "runs"
    make_trips(n_rows=6_000, seed=1, n_routes=4).trips.write_csv(folder / "trips.csv")
    (folder / "project.yaml").write_text(project_text(runs))
    run_analysis(load_project(folder / "project.yaml"), "trip-eta")
    return folder, runs, (runs / "trip-eta" / "latest").read_text().strip()


def _write_csv(folder: Path, name: str, frame: pl.DataFrame) -> None:
    frame.write_csv(folder / name)


def _trips(folder: Path) -> pl.DataFrame:
    return pl.read_csv(folder / "trips.csv")


# each case: (id, project text maker, data maker or None, args, expected words)
Case = tuple[str, Callable[[Path], str], Callable[[Path], None] | None, list[str], str]

CASES: list[Case] = [
    (
        "missing file",
        lambda r: project_text(r, source="{kind: file, path: nope.csv}"),
        None,
        ["run"],
        "nope.csv does not exist",
    ),
    (
        "missing target column",
        lambda r: project_text(r, columns="{target: minutes, categorical: [route]}"),
        None,
        ["run"],
        "column 'minutes' is not in",
    ),
    (
        "missing categorical column",
        lambda r: project_text(r, columns="{target: duration_min, categorical: [colour]}"),
        None,
        ["run"],
        "column 'colour' is not in",
    ),
    (
        "empty table",
        lambda r: project_text(r, source="{kind: file, path: empty.csv}"),
        lambda f: (f / "empty.csv").write_text("route,hour_band,duration_min,started_at\n"),
        ["run"],
        "has no rows",
    ),
    (
        "empty file",
        lambda r: project_text(r, source="{kind: file, path: blank.csv}"),
        lambda f: (f / "blank.csv").write_text(""),
        ["run"],
        "is empty",
    ),
    (
        "non-numeric target",
        lambda r: project_text(r, source="{kind: file, path: text.csv}"),
        lambda f: _write_csv(
            f, "text.csv", _trips(f).with_columns(pl.lit("slow").alias("duration_min"))
        ),
        ["run"],
        "column 'duration_min' in",
    ),
    (
        "all-NaN target",
        lambda r: project_text(r, source="{kind: file, path: nan.csv}"),
        lambda f: _write_csv(
            f,
            "nan.csv",
            _trips(f).with_columns(pl.lit(None, dtype=pl.Float64).alias("duration_min")),
        ),
        ["run"],
        "has no numeric values",
    ),
    (
        "a single combination",
        lambda r: project_text(
            r,
            source="{kind: file, path: one.csv}",
            columns="{target: duration_min, categorical: [route]}",
        ),
        lambda f: _write_csv(f, "one.csv", _trips(f).with_columns(pl.lit("R01").alias("route"))),
        ["run"],
        "combination",
    ),
    (
        "unknown config key",
        lambda r: project_text(r).replace(
            "recipe: distribution", "recipe: distribution\n    colour: red"
        ),
        None,
        ["run"],
        "key 'colour' is not allowed",
    ),
    (
        "unknown param key",
        lambda r: project_text(r, params="{min_combo: 3}"),
        None,
        ["run"],
        "key 'min_combo' is not allowed",
    ),
    ("bad param value", lambda r: project_text(r, params="{n_bins: 1}"), None, ["run"], "n_bins"),
    (
        "k range reversed",
        lambda r: project_text(r, params="{k_min: 5, k_max: 3}"),
        None,
        ["run"],
        "k_max (3) must be >= k_min (5)",
    ),
    (
        "malformed YAML",
        lambda r: project_text(r).replace("recipe: distribution", "recipe: [distribution"),
        None,
        ["run"],
        "is not valid YAML",
    ),
    (
        "unreachable database",
        lambda r: project_text(
            r, source='{kind: sql, url: "postgresql://u:pw@127.0.0.1:1/test", table: trips}'
        ),
        None,
        ["run"],
        "could not connect to the database at postgresql://u:***@127.0.0.1:1/test",
    ),
    (
        "missing SQL table",
        lambda r: project_text(r, source='{kind: sql, url: "sqlite:///t.db", table: nope}'),
        lambda f: (
            __import__("sqlite3")
            .connect(f / "t.db")
            .execute("create table other (a int)")
            .connection.commit()
        ),
        ["run"],
        "table 'nope' does not exist",
    ),
    (
        "missing environment variable",
        lambda r: project_text(r, source='{kind: sql, url: "${OPSLENS_UNSET_URL}", table: t}'),
        None,
        ["run"],
        "OPSLENS_UNSET_URL is not set",
    ),
    (
        "unparseable time",
        lambda r: project_text(r, source="{kind: file, path: badtime.csv}"),
        lambda f: _write_csv(
            f, "badtime.csv", _trips(f).with_columns(pl.lit("yesterday").alias("started_at"))
        ),
        ["run"],
        "time column 'started_at'",
    ),
    (
        "unknown analysis",
        lambda r: project_text(r),
        None,
        ["run", "--analysis", "nope"],
        "no analysis named 'nope'",
    ),
    (
        "unknown stage",
        lambda r: project_text(r),
        None,
        ["run", "--stages", "magic"],
        "unknown stage(s) magic",
    ),
    (
        "recipe not built",
        lambda r: project_text(r).replace("recipe: distribution", "recipe: nosuch"),
        None,
        ["run"],
        "'nosuch'",
    ),
    (
        "missing project file",
        lambda r: project_text(r),
        None,
        ["run", "nowhere.yaml"],
        "project file nowhere.yaml does not exist",
    ),
    (
        "stream input missing",
        lambda r: project_text(r),
        None,
        ["stream", "trip-eta", "--input", "none.jsonl"],
        "instances file none.jsonl does not exist",
    ),
    (
        "target also categorical",
        lambda r: project_text(
            r, columns="{target: duration_min, categorical: [route, duration_min]}"
        ),
        None,
        ["run"],
        "the target 'duration_min' is also listed in columns.categorical",
    ),
    (
        "too few combinations for k_min",
        lambda r: project_text(r, params="{min_combination_size: 20, k_min: 40, k_max: 50}"),
        None,
        ["run"],
        "too few for K >= 40",
    ),
    (
        "unknown model source",
        lambda r: project_text(r),
        None,
        ["stream", "trip-eta", "--from", "nowhere"],
        "--from 'nowhere' is not a model source",
    ),
    (
        "registry with tracking disabled",
        lambda r: project_text(r),
        None,
        ["stream", "trip-eta", "--from", "registry", "--input", "x.jsonl"],
        "tracking disabled",
    ),
    (
        "unknown recipe schema",
        lambda r: project_text(r),
        None,
        ["schema", "magic"],
        "'magic' recipe is not available",
    ),
    (
        "report of unknown analysis",
        lambda r: project_text(r),
        None,
        ["report", "ghost"],
        "no analysis named 'ghost'",
    ),
    # hardening (issue 7): each found before any work, one line, latest untouched
    (
        "empty stage list",
        lambda r: project_text(r),
        None,
        ["run", "--stages", ","],
        "--stages names no stage",
    ),
    (
        "unknown stage to skip",
        lambda r: project_text(r),
        None,
        ["run", "--skip-stages", "magic"],
        "unknown stage(s) magic",
    ),
    (
        "run id outside the runs folder",
        lambda r: project_text(r),
        None,
        ["report", "trip-eta", "--run", "../../../outside"],
        "is not a run id",
    ),
    (
        "runs_dir is a file",
        lambda r: project_text(Path("trips.csv")),
        None,
        ["run"],
        "trips.csv is a file, not a folder",
    ),
    (
        "stream output is a folder",
        lambda r: project_text(r),
        None,
        ["stream", "trip-eta", "--input", "x.jsonl", "--output", "."],
        "--output . is a folder",
    ),
    (
        "stream plots-dir is a file",
        lambda r: project_text(r),
        None,
        ["stream", "trip-eta", "--input", "x.jsonl", "--plots-dir", "trips.csv"],
        "--plots-dir trips.csv is a file",
    ),
    (
        "negative random_state",
        lambda r: project_text(r).replace(
            "recipe: distribution", "recipe: distribution\n    random_state: -1"
        ),
        None,
        ["run"],
        "random_state",
    ),
    (
        "random_state past 32 bits",
        lambda r: project_text(r).replace(
            "recipe: distribution", f"recipe: distribution\n    random_state: {2**40}"
        ),
        None,
        ["run"],
        "random_state",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2(
    case: Case, base: tuple[Path, Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name, make_project, make_data, args, expected = case
    folder, runs, latest = base
    work = tmp_path / "p"
    work.mkdir()
    shutil.copy(folder / "trips.csv", work / "trips.csv")
    (work / "project.yaml").write_text(make_project(runs))
    if make_data is not None:
        make_data(work)
    monkeypatch.delenv("OPSLENS_UNSET_URL", raising=False)
    result = run_cli(args, work, monkeypatch)
    assert result.code == 2, (name, result.code, result.err)
    lines = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.err
    assert expected in lines[0], lines[0]
    assert "fix:" in lines[0]
    assert not wrong_keys(lines[0], "distribution"), lines[0]
    assert "Traceback" not in result.err and "Traceback" not in result.out
    assert (runs / "trip-eta" / "latest").read_text().strip() == latest
    leftovers = [p.name for p in (runs / "trip-eta").iterdir() if p.name.startswith(".tmp-")]
    assert leftovers == []


def test_no_run_yet_for_stream(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "project.yaml").write_text(project_text(tmp_path / "runs"))
    result = run_cli(["stream", "trip-eta"], tmp_path, monkeypatch)
    assert result.code == 2
    assert "has no complete run yet" in result.err and "fix: run `opslens run`" in result.err


def test_unknown_option_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_cli(["run", "--bogus"], tmp_path, monkeypatch)
    assert result.code == 2
    assert "No such option: --bogus" in result.err and "Traceback" not in result.err
    assert result.err.strip().splitlines() == [result.err.strip()]  # one line
