"""A first run of only some stages on a fresh project, continued by a run of the others, gives
the same tables as one full run; files carried over are hard links, not copies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

import opslens.recipes as registry
from opslens.errors import RunError
from opslens.runner import run_analysis
from opslens.tracking.models import load_predictor
from opslens.tracking.runs import list_runs, open_run

pytestmark = pytest.mark.slow

PROJECT = """
tracking: {enabled: false}
analyses:
  - name: shop
    recipe: propensity
    source:
      kind: synthetic
      generator: clickstream
      seed: 7
      options: {num_users: 400, num_items: 40, num_days: 60, start_date: "2024-08-01"}
    columns: {entity: user_id, group: item_id, target: event_type, time: timestamp}
    random_state: 7
    params:
      features: {every: 1d, lookback: 14d, windows: [1d, 7d], horizon: 7d}
      models: {n_estimators: 30, max_depth: 3}
"""
FIRST = ["data-gen", "sessionize", "split"]
LATER = ["features", "train"]


def _project(folder: Path) -> Any:
    folder.mkdir()
    (folder / "project.yaml").write_text(PROJECT)
    return registry.load_project(folder / "project.yaml")


def _tables(path: Path) -> dict[str, pl.DataFrame]:
    return {p.stem: pl.read_parquet(p) for p in sorted((path / "tables").glob("*.parquet"))}


def test_first_stages_then_the_rest_equal_one_full_run(tmp_path: Path) -> None:
    whole = _project(tmp_path / "whole")
    full = run_analysis(whole, "shop")

    split = _project(tmp_path / "split")
    first = run_analysis(split, "shop", stages=FIRST)
    assert first.status == "partial" and first.model_version is None
    manifest = open_run(split.runs_root(), "shop").manifest  # committed, and latest
    assert manifest["status"] == "partial" and manifest["missing_stages"] == LATER
    assert [v.run_id for v in list_runs(split.runs_root(), "shop")] == [first.run_id]
    with pytest.raises(RunError, match="holds no model to predict with"):
        load_predictor(split.runs_root(), "shop")

    rest = run_analysis(split, "shop", stages=LATER)
    assert rest.status == "complete"
    run = open_run(split.runs_root(), "shop")
    assert run.run_id == rest.run_id and run.manifest["based_on"] == first.run_id
    assert {k: v["status"] for k, v in run.manifest["stages"].items()} == {
        "data-gen": "reused",
        "sessionize": "reused",
        "split": "reused",
        "features": "ran",
        "train": "ran",
    }

    # the same tables, value for value, as one full run
    expected, got = _tables(full.path), _tables(run.path)
    assert set(got) == set(expected) and len(got) >= 10
    for name, frame in expected.items():
        assert got[name].equals(frame), name
    assert rest.metrics == full.metrics
    without_id = {k: v for k, v in rest.facts.items() if k != "analysis"}
    assert without_id == {k: v for k, v in full.facts.items() if k != "analysis"}

    # what the second run reused is the first run's file, linked: the same inode
    reused = [r for r, o in run.manifest["artifacts"].items() if o["status"] == "reused"]
    assert "tables/events.parquet" in reused and "tables/train_events.parquet" in reused
    for relative in reused:
        mine, theirs = run.path / relative, first.path / relative
        assert mine.stat().st_ino == theirs.stat().st_ino, relative
    assert load_predictor(split.runs_root(), "shop").run_id == rest.run_id
