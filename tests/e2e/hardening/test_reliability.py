"""Issue 28, internal errors and late failures: what passes validation runs or is refused in
one line (exit 2), never an internal error; each analysis of a project succeeds or fails on
its own; absurd magnitudes and parameter ranges are refused before any work."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from opslens.synthetic.patients import FEATURES, make_patients
from opslens.synthetic.trips import make_trips
from opslens.tracking.runs import open_run
from tests.e2e.hardening.test_file_system import one_error
from tests.fakes.cli import run_cli

pytestmark = pytest.mark.slow

DISTRIBUTION = """
  - name: {name}
    recipe: distribution
    source: {{kind: file, path: {path}}}
    columns: {{{time}target: duration_min, categorical: [route, hour_band]}}
    params: {{min_combination_size: 20, xgboost: {{n_estimators: 10}}}}
"""
SEGMENTS = """
  - name: {name}
    recipe: segments
    source: {{kind: file, path: {path}}}
    columns: {{target: next_score, metrics: [{metrics}], categorical: [ward]}}
    params:
      lgb_series: {{n_estimators: 10}}
      lgb_resource: {{n_estimators: 10}}
      {extra}
"""
HEAD = "tracking: {enabled: false}\nanalyses:"


def _trips(folder: Path, n_rows: int = 4_000) -> None:
    make_trips(n_rows=n_rows, seed=1, n_routes=4).trips.write_parquet(folder / "trips.parquet")


def _patients(folder: Path, *, scale: float = 1.0) -> None:
    frame = make_patients(n_rows=600, seed=0).frame
    frame.with_columns(pl.col("next_score") * scale).write_parquet(folder / "patients.parquet")


def _segments(name: str = "patients", extra: str = "") -> str:
    return SEGMENTS.format(
        name=name, path="patients.parquet", metrics=", ".join(FEATURES), extra=extra
    )


def test_distribution_without_a_time_column_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _trips(tmp_path)
    text = HEAD + DISTRIBUTION.format(name="eta", path="trips.parquet", time="")
    (tmp_path / "project.yaml").write_text(text)
    result = run_cli(["-q", "run"], tmp_path, monkeypatch)
    assert result.code == 0, result.err
    facts = open_run(tmp_path / "runs", "eta").facts
    assert facts["classify"]["holdout_scores"]["test_rows"] > 0


def test_each_analysis_succeeds_or_fails_on_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _trips(tmp_path, n_rows=3_000)
    text = HEAD + "".join(
        [
            DISTRIBUTION.format(name="gone", path="nope.parquet", time=""),
            DISTRIBUTION.format(name="good", path="trips.parquet", time="time: started_at, "),
            DISTRIBUTION.format(name="wrong", path="trips.parquet", time="time: duration_min, "),
        ]
    )
    (tmp_path / "project.yaml").write_text(text)
    result = run_cli(["-q", "run"], tmp_path, monkeypatch)
    assert result.code == 2, result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 2 and all(s.startswith("error: '") and "fix:" in s for s in lines), lines
    assert "'gone': data file" in lines[0] and "nope.parquet" in lines[0]
    assert "'wrong':" in lines[1]
    assert "good: run" in result.out  # the analysis between the two failures ran and is kept
    assert open_run(tmp_path / "runs", "good").status == "complete"


def test_one_failing_analysis_alone_keeps_its_plain_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = HEAD + DISTRIBUTION.format(name="gone", path="nope.parquet", time="")
    (tmp_path / "project.yaml").write_text(text)
    line = one_error(run_cli(["-q", "run"], tmp_path, monkeypatch), "data file")
    assert not line.startswith("error: 'gone'")


def test_a_segments_target_near_1e305_is_refused_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _patients(tmp_path, scale=1e305)
    (tmp_path / "project.yaml").write_text(HEAD + _segments())
    result = run_cli(["-q", "run"], tmp_path, monkeypatch)
    one_error(result, "column 'next_score'", "magnitude", "beyond 1e+100", "rescale")
    assert result.err.count("\n") == 1  # no overflow warnings


def test_a_test_size_that_leaves_no_training_rows_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _patients(tmp_path)
    (tmp_path / "project.yaml").write_text(HEAD + _segments(extra="test_size: 0.999"))
    result = run_cli(["-q", "run"], tmp_path, monkeypatch)
    one_error(result, "params.test_size 0.999", "1 training", "fix: choose params.test_size")


def test_distribution_test_size_0999_names_the_key_in_its_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _trips(tmp_path)
    text = HEAD + DISTRIBUTION.format(name="eta", path="trips.parquet", time="")
    (tmp_path / "project.yaml").write_text(text.replace("size: 20", "size: 20, test_size: 0.999"))
    one_error(run_cli(["-q", "run"], tmp_path, monkeypatch), "fix: lower params.test_size")


@pytest.mark.parametrize(
    ("models", "words"),
    [
        ("{scale_pos_weight: -1}", "scale_pos_weight must be 'balanced', 'sqrt' or a number"),
        ("{scale_pos_weight: 0}", "models.scale_pos_weight"),
        ("{top_k: [0]}", "top_k must list positive counts"),
        ("{top_k: [5, -3]}", "params.models.top_k"),
    ],
)
def test_propensity_model_ranges_are_checked_at_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, models: str, words: str
) -> None:
    (tmp_path / "project.yaml").write_text(
        HEAD + "\n  - name: shop\n    recipe: propensity\n"
        "    source: {kind: synthetic, generator: clickstream}\n"
        f"    params: {{models: {models}}}\n"
    )
    one_error(run_cli(["-q", "run"], tmp_path, monkeypatch), words, "project.yaml")
    assert not (tmp_path / "runs").exists()  # refused before any work


def test_segments_batch_rows_of_absurd_magnitude_are_rejected_with_a_count() -> None:
    from opslens.recipes.segments.preprocess import Preprocessor

    train = make_patients(n_rows=300, seed=0).frame
    pre = Preprocessor(list(FEATURES), ["ward"]).fit(train)
    batch = train[:10].with_columns(
        pl.when(pl.int_range(pl.len()) < 4)
        .then(pl.col("heart_rate") * 1e300)
        .otherwise(pl.col("heart_rate"))
        .alias("heart_rate")
    )
    checked = pre.check(batch)
    assert int((~checked.ok).sum()) == 4
    assert checked.reasons[0] == "magnitude beyond 1e+100 in heart_rate"
    row = batch.row(0, named=True)
    reason = pre.encode_one([row[c] for c in FEATURES], [row["ward"]])[0]
    assert reason == checked.reasons[0]
    assert np.isfinite(pre.transform(batch.filter(pl.Series(checked.ok)))).all()


AXES = """tracking: {{enabled: false}}
analyses:
  - name: axes
    recipe: residual
    source: {{kind: synthetic, generator: axes, seed: 0, options: {{n_samples: 800}}}}
    columns: {{time: ts, metrics: [axis1, axis2, axis3]}}
    params:
      train_end: "80%"
      model: {{type: linear}}
      registry: {{{registry}}}
"""


def _run_ids(folder: Path) -> list[str]:
    runs = folder / "runs" / "axes"
    return sorted(p.name for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else []


def test_a_version_tag_already_published_is_refused_before_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "project.yaml").write_text(AXES.format(registry="version_tag: v-a"))
    assert run_cli(["-q", "run"], tmp_path, monkeypatch).code == 0
    assert (tmp_path / "registry" / "v-a" / "models.joblib").is_file()
    before = _run_ids(tmp_path)
    result = run_cli(["-q", "run"], tmp_path, monkeypatch)
    one_error(result, "version 'v-a' already exists", "params.registry.version_tag")
    assert _run_ids(tmp_path) == before  # no run committed that could not be published


def test_a_registry_folder_that_is_a_file_is_refused_before_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "project.yaml").write_text(AXES.format(registry="root_dir: reg/versions"))
    (tmp_path / "reg").write_text("not a folder")
    result = run_cli(["-q", "run"], tmp_path, monkeypatch)
    one_error(result, "registry folder", "is a file", "params.registry.root_dir")
    assert _run_ids(tmp_path) == []


def test_a_segments_batch_with_features_times_1e300_is_scored_with_those_rows_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_mlflow: None
) -> None:
    _patients(tmp_path)
    text = HEAD.replace("{enabled: false}", "{uri: 'sqlite:///mlflow.db'}") + _segments()
    (tmp_path / "project.yaml").write_text(text)
    assert run_cli(["-q", "run", "--force"], tmp_path, monkeypatch).code == 0
    batch = make_patients(n_rows=120, seed=5).frame
    huge = pl.int_range(pl.len()) % 3 == 0  # 40 of 120 rows
    batch.with_columns(
        pl.when(huge).then(pl.col("heart_rate") * 1e300).otherwise(pl.col("heart_rate"))
    ).write_parquet(tmp_path / "huge.parquet")
    result = run_cli(["-q", "batch", "patients", "-i", "huge.parquet"], tmp_path, monkeypatch)
    assert result.code == 0, result.err
    assert "120 rows in, 80 scored, 40 rejected" in result.out
    assert "magnitude beyond 1e+100 in heart_rate: 40" in result.out
    predictions = pl.read_parquet(tmp_path / "huge.predictions.parquet")
    assert predictions.height == 120


def test_a_residual_history_url_of_no_database_is_refused_at_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = AXES.format(registry="").replace(
        "      registry: {}\n", "      lifecycle: {history_url: 'bogus://nowhere'}\n"
    )
    (tmp_path / "project.yaml").write_text(text)
    result = run_cli(["-q", "run"], tmp_path, monkeypatch)
    one_error(result, "params.lifecycle.history_url", "'bogus://' is not a database URL")
    assert _run_ids(tmp_path) == []
