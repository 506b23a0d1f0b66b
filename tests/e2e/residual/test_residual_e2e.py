"""The residual recipe end to end: a planted fault found, WIDE and LONG input from files
and PostgreSQL, the planted fault's levels through the library and `opslens stream`,
and one-line errors with exit code 2 for bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from opslens.api import load_project
from opslens.recipes.residual import OnlineChecker, ResidualPredictor
from opslens.runner import run_analysis
from opslens.synthetic.axes import make_axes
from opslens.tracking.models import load_predictor
from tests.e2e.residual.fault import fault_samples, trained_project, transitions
from tests.fakes.cli import run_cli


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ResidualPredictor]:
    folder = tmp_path_factory.mktemp("residual")
    path = trained_project(folder)
    predictor = load_predictor(folder / "runs", "axes").predictor
    assert isinstance(predictor, ResidualPredictor)
    return path, predictor


def test_the_planted_fault_is_the_only_error_on_held_out_rows(
    trained: tuple[Path, ResidualPredictor],
) -> None:
    path, _ = trained
    project = load_project(path)
    run = project.runs_root() / "axes"
    run = run / (run / "latest").read_text().strip()
    levels = pl.read_parquet(run / "tables" / "holdout_levels.parquet")
    truth = make_axes(seed=3, n_samples=800).fault  # samples 720-759; held out from 640
    errors = levels.with_row_index().filter(pl.col("axis2_level") == "error")["index"] + 640
    assert errors.len() >= 35
    assert errors.min() >= truth["start"] and errors.max() <= truth["end"] + 2
    facts = json.loads((run / "facts.json").read_text())
    assert facts["thresholds"]["holdout"]["axis1"]["error"] == 0
    assert facts["thresholds"]["holdout"]["axis3"]["error"] == 0
    # axis3 bends halfway: auto picks the piecewise line by held-out error
    assert facts["fit"]["axes"]["axis3"]["family"] == "piecewise"
    assert "lowest RMSE" in facts["fit"]["axes"]["axis3"]["reason"]
    # the trend beats the training-mean baseline on every axis; held out too, but for the
    # faulty axis2, whose held-out rows carry the fault
    for m in facts["evaluate"]["metrics"]:
        if m["split"] == "train" or m["axis"] != "axis2":
            assert m["rmse"] < 0.8 * m["baseline_rmse"], m


def test_fault_levels_from_the_library_at_the_predicted_samples(
    trained: tuple[Path, ResidualPredictor],
) -> None:
    _, p = trained
    samples, expected = fault_samples(p)
    t_long, t_short = p.thresholds["axis2"]["T_long_steps"], p.thresholds["axis2"]["T_short_steps"]
    alert_run = t_long + 3
    assert transitions(expected) == [
        (0, "ok"),
        (10 + t_long - 1, "alert"),
        (10 + alert_run + t_short - 1, "error"),
        (10 + alert_run + t_short + 2, "ok"),
    ]
    checker = OnlineChecker(p)
    one_by_one = [checker.update(s) for s in samples]
    assert [a["level"] for a in one_by_one] == expected
    assert [a["axis2_level"] for a in one_by_one] == expected
    assert {a["axis1_level"] for a in one_by_one} == {"ok"}
    # the run length so far: counts samples above MinC, back to 0 at the end
    assert [a["axis2_run"] for a in one_by_one][9:12] == [0, 1, 2]
    assert one_by_one[-1]["axis2_run"] == 0
    # the same samples as one array, and through predict_frame, answer identically
    frame = pl.DataFrame(samples)
    whole = OnlineChecker(p).update_many(frame.drop("stream"), stream="m1")
    assert whole.to_dicts() == [{k: a[k] for k in whole.columns} for a in one_by_one]
    assert p.predict_frame(frame).equals(whole)


def test_fault_levels_through_opslens_stream(
    trained: tuple[Path, ResidualPredictor], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, p = trained
    samples, expected = fault_samples(p)
    other, _ = fault_samples(p, stream="m2", extra_alert=0)
    lines = [json.dumps(s) for pair in zip(samples, other, strict=False) for s in pair]
    lines += [json.dumps(s) for s in samples[len(other) :]]
    lines.insert(5, json.dumps(samples[3]))  # delivered twice: answered, not scored again
    lines.append(json.dumps({**samples[0], "axis1": "high"}))  # not a number: an error line
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    result = run_cli(
        ["stream", "axes", "-p", str(path), "-i", "in.jsonl", "-o", "out.jsonl", "--no-plots"],
        tmp_path,
        monkeypatch,
    )
    assert result.code == 0, result.err
    out = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    errors = [o for o in out if "error" in o]
    assert len(errors) == 1 and "axis 'axis1' is 'high', not a number" in errors[0]["error"]
    out = [o for o in out if "error" not in o]
    m1 = [o for o in out if o["stream"] == "m1" and not o["duplicate"]]
    assert [o["level"] for o in m1] == expected
    assert [o["sample"] for o in m1] == list(range(1, len(samples) + 1))
    assert sum(o["duplicate"] for o in out) == 1


def _write_wide(folder: Path) -> pl.DataFrame:
    data = make_axes(seed=5, n_samples=600).frame
    data.write_csv(folder / "axes.csv")
    return data


PROJECT = """
tracking: {{enabled: false}}
runs_dir: runs
analyses:
  - name: axes
    recipe: residual
    source: {source}
    columns: {columns}
    params: {params}
"""


def _project(folder: Path, source: str, columns: str, params: str = "{}") -> Path:
    path = folder / "project.yaml"
    path.write_text(PROJECT.format(source=source, columns=columns, params=params))
    return path


def _thresholds(path: Path) -> dict[str, object]:
    result = run_analysis(load_project(path), "axes")
    return dict(result.facts["thresholds"]["axes"])


@pytest.mark.services
def test_long_from_postgresql_equals_wide_from_a_file(
    tmp_path: Path, pg_url: str, pg_schema: str
) -> None:
    import sqlalchemy as sa

    from opslens.io.sources.sql import engine_url

    wide = _write_wide(tmp_path)
    long = make_axes(seed=5, n_samples=600, layout="long").frame
    engine = sa.create_engine(engine_url(pg_url))
    with engine.begin() as conn:
        long.to_pandas().to_sql("samples", conn, schema=pg_schema, index=False)
        wide.to_pandas().to_sql("wide", conn, schema=pg_schema, index=False)
    engine.dispose()
    columns = "{time: ts, metrics: [axis1, axis2, axis3]}"
    from_file = _thresholds(
        _project(tmp_path, "{kind: file, path: axes.csv}", columns, '{train_end: "75%"}')
    )
    long_src = (
        f"{{kind: sql, url: '{pg_url}', table: {pg_schema}.samples, layout: long, "
        "long: {index: [ts], key: axis_id, value: value}}"
    )
    from_long = _thresholds(_project(tmp_path, long_src, columns, '{train_end: "75%"}'))
    wide_src = f"{{kind: sql, url: '{pg_url}', table: {pg_schema}.wide}}"
    from_wide = _thresholds(_project(tmp_path, wide_src, "{time: ts}", '{train_end: "75%"}'))
    assert from_long == from_file == from_wide


def test_training_window_as_timestamps_epochs_and_share(tmp_path: Path) -> None:
    _write_wide(tmp_path)  # 600 samples every 2 s from 2025-09-01T00:00:00
    src, cols = "{kind: file, path: axes.csv}", "{time: ts}"
    share = _thresholds(_project(tmp_path, src, cols, '{train_end: "50%"}'))
    iso = _thresholds(_project(tmp_path, src, cols, '{train_end: "2025-09-01T00:10:00"}'))
    epoch = _thresholds(_project(tmp_path, src, cols, "{train_end: 1756685400}"))
    assert share == iso == epoch
    later = _thresholds(
        _project(tmp_path, src, cols, "{train_start: 1756684900, train_end: 1756685400}")
    )
    assert later != share


BAD = [
    (
        "{kind: file, path: axes.csv}",
        "{time: ts, metrics: [axis1, axis9]}",
        "{}",
        "axis 'axis9' (columns.metrics) is not in file",
    ),
    (
        "{kind: file, path: text.csv}",
        "{time: ts, metrics: [axis1]}",
        "{}",
        "column 'axis1' in file",
    ),
    ("{kind: file, path: axes.csv}", "{time: ts}", "{train_end: '0.5%'}", "usable training rows"),
    (
        "{kind: file, path: axes.csv}",
        "{time: ts}",
        "{train_end: '2030-01-01T00:00:00'}",
        "params.train_end 2030-01-01T00:00:00 is outside the data",
    ),
    ("{kind: file, path: zero.csv}", "{time: ts}", "{}", "axis 'axis2' of file"),
    ("{kind: file, path: axes.csv}", "{metrics: [axis1]}", "{}", "needs columns.time"),
]


@pytest.mark.parametrize(("source", "columns", "params", "message"), BAD)
def test_bad_inputs_are_one_line_errors_with_exit_code_2(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    source: str,
    columns: str,
    params: str,
    message: str,
) -> None:
    data = _write_wide(tmp_path)
    data.with_columns(pl.col("axis1").cast(pl.String) + "x").write_csv(tmp_path / "text.csv")
    data.with_columns(pl.lit(0.0).alias("axis2")).write_csv(tmp_path / "zero.csv")
    _project(tmp_path, source, columns, params)
    result = run_cli(["run", "project.yaml"], tmp_path, monkeypatch)
    assert result.code == 2, result.err
    lines = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "; fix: " in lines[0], result.err
    assert "Traceback" not in result.err
    assert message in lines[0], lines[0]
    assert not (tmp_path / "runs" / "axes" / "latest").exists()


def test_interpolation_fills_missing_values_over_time(tmp_path: Path) -> None:
    data = make_axes(seed=5, n_samples=600).frame
    holes = data.with_columns(
        pl.when(pl.int_range(pl.len()) % 10 == 3)
        .then(None)
        .otherwise(pl.col("axis3"))
        .alias("axis3")
    )
    holes.write_csv(tmp_path / "axes.csv")
    src, cols = "{kind: file, path: axes.csv}", "{time: ts}"
    result = run_analysis(
        load_project(_project(tmp_path, src, cols, "{prep: {interpolate: true}}")), "axes"
    )
    assert result.facts["prepare"]["interpolated"] == {"axis1": 0, "axis2": 0, "axis3": 60}
    prepared = result.view.table("prepared")
    assert prepared["axis3"].null_count() == 0
    # a filled value lies on the line between its neighbours (samples are evenly spaced)
    at = prepared["axis3"].to_list()
    assert at[13] == pytest.approx((at[12] + at[14]) / 2)
    without = run_analysis(load_project(_project(tmp_path, src, cols)), "axes")
    assert without.facts["prepare"]["interpolated"]["axis3"] == 0
    assert without.facts["fit"]["axes"]["axis3"]["rows_fitted"] == 480 - 48


def test_the_notebook_example_runs_and_its_settings_are_the_defaults(tmp_path: Path) -> None:
    examples = Path(__file__).parents[3] / "examples" / "residual"
    results = {}
    for name in ("notebook.yaml", "project.yaml"):
        text = (examples / name).read_text()
        text = text.replace('tracking: {uri: "sqlite:///mlflow.db"}', "tracking: {enabled: false}")
        (tmp_path / name).write_text(text)
        project = load_project(tmp_path / name)
        analysis = project.analyses[0].name
        results[name] = run_analysis(project, analysis).facts["thresholds"]["axes"]
    # the same data read LONG (notebook) and WIDE (project); axis3 is auto in project.yaml
    for axis in ("axis1", "axis2"):
        assert results["notebook.yaml"][axis] == results["project.yaml"][axis]


def test_the_notebook_settings_give_the_thresholds_of_before_the_new_families_bit_for_bit(
    tmp_path: Path,
) -> None:
    """The reference's calibration stays exactly as it was: every number of every axis's entry
    equals (``==`` on floats) what the code before the model families, modes, two-sided limits
    and the streaming mode computed (commit b2db443) on the same notebook fixture."""
    import json

    golden = json.loads(
        (Path(__file__).parents[2] / "data" / "residual_notebook_thresholds.json").read_text()
    )["thresholds"]
    examples = Path(__file__).parents[3] / "examples" / "residual"
    text = (examples / "notebook.yaml").read_text()
    text = text.replace('tracking: {uri: "sqlite:///mlflow.db"}', "tracking: {enabled: false}")
    (tmp_path / "notebook.yaml").write_text(text)
    project = load_project(tmp_path / "notebook.yaml")
    now = run_analysis(project, project.analyses[0].name).predictor().thresholds
    assert json.loads(json.dumps(now, sort_keys=True)) == golden
