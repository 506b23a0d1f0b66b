"""`opslens score` is a run of the recipe's `score` pipeline: a run folder, the answers, and
`latest` left on the trained run."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from tests.fakes.cli import run_cli

import opslens
from opslens.synthetic.trips import make_trips

PROJECT = """
runs_dir: runs
tracking: {enabled: false}
analyses:
  - name: eta
    recipe: distribution
    source: {kind: file, path: trips.parquet}
    columns: {time: started_at, target: duration_min, categorical: [route, hour_band]}
    params: {min_combination_size: 20, xgboost: {n_estimators: 10}}
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("score")
    make_trips(n_rows=3000, seed=1, n_routes=3).trips.write_parquet(folder / "trips.parquet")
    make_trips(n_rows=400, seed=2, n_routes=3).trips.write_parquet(folder / "batch.parquet")
    (folder / "project.yaml").write_text(PROJECT)
    opslens.run(folder / "project.yaml", analysis="eta")
    return folder


def test_a_scoring_is_a_run_of_the_score_pipeline(
    trained: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    latest = (trained / "runs" / "eta" / "latest").read_text().strip()
    result = run_cli(["score", "eta", "-i", "batch.parquet", "-o", "out.csv"], trained, monkeypatch)
    assert result.code == 0, result.err
    run_id = result.out.strip().rsplit("run ", 1)[1].rstrip(")")
    run = trained / "runs" / "eta" / run_id
    manifest = json.loads((run / "manifest.json").read_text())
    facts = json.loads((run / "facts.json").read_text())
    assert (manifest["pipeline"], manifest["stages_run"]) == ("score", ["score_rows"])
    assert facts["score_rows"] == {"rows_in": 400, "answers": 400}
    # the answers written are the trained model's, row for row, and the run keeps them too
    batch = pl.read_parquet(trained / "batch.parquet")
    expected = opslens.load_predictor(trained / "project.yaml", "eta").predict_frame(batch)
    written = pl.read_csv(trained / "out.csv")
    assert written["cluster"].to_list() == expected["cluster"].to_list()
    assert pl.read_parquet(run / "tables" / "answers.parquet").equals(expected)
    # a scoring never becomes what `--from latest` serves
    assert (trained / "runs" / "eta" / "latest").read_text().strip() == latest


def test_an_empty_batch_is_one_line_and_exit_2(
    trained: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pl.read_parquet(trained / "batch.parquet").head(0).write_parquet(trained / "empty.parquet")
    before = sorted(p.name for p in (trained / "runs" / "eta").iterdir())
    result = run_cli(["score", "eta", "-i", "empty.parquet", "-o", "e.csv"], trained, monkeypatch)
    assert result.code == 2
    last = result.err.strip().splitlines()[-1]
    assert last.startswith("error: ") and "no rows" in last and "fix:" in last
    assert sorted(p.name for p in (trained / "runs" / "eta").iterdir()) == before
    assert not (trained / "e.csv").exists()
