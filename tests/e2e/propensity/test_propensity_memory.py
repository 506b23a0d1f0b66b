"""A run holds in memory only the tables later stages still read: the same answers as a run
that keeps every table, each table leaving memory right after its last reader."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from opslens.api import load_project
from opslens.runner import run_analysis
from opslens.runner.catalog import Catalog
from opslens.tracking.runs import open_run
from opslens.tracking.tracker import MemoryTracker

PROJECT = """
tracking: {enabled: false}
analyses:
  - name: shop
    recipe: propensity
    source:
      kind: synthetic
      generator: clickstream
      seed: 7
      options: {num_users: 400, num_items: 60, num_days: 40, start_date: "2024-01-01"}
    params:
      features: {every: 2d, lookback: 3d, horizon: 4d}
      models: {n_estimators: 20, bootstrap: 100}
"""


def _run(folder: Path) -> tuple[dict[str, float], dict[str, pl.DataFrame]]:
    folder.mkdir()
    (folder / "project.yaml").write_text(PROJECT)
    result = run_analysis(load_project(folder / "project.yaml"), "shop", tracker=MemoryTracker())
    run = open_run(folder / "runs", "shop")
    tables = {s: run.table(f"{s}_features") for s in ("train", "val", "test")}
    return dict(result.metrics), tables


def test_released_tables_change_no_answer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    released: list[list[str]] = []
    real = Catalog.release

    def spy(self: Catalog, keep: set[str]) -> list[str]:
        gone = real(self, keep)
        released.append(sorted(gone))
        return gone

    monkeypatch.setattr(Catalog, "release", spy)
    metrics, tables = _run(tmp_path / "released")
    # each table leaves memory after the last stage that reads it
    assert released == [
        ["raw", "users"],  # data-gen
        ["events"],  # sessionize
        ["sessionized_events"],  # split
        ["items", "split_bounds", "test_events", "train_events", "val_events"],  # features
        ["test_features", "train_features", "val_features"],  # train
    ]
    monkeypatch.setattr(Catalog, "release", lambda self, keep: [])  # keep everything
    kept_metrics, kept_tables = _run(tmp_path / "kept")
    assert metrics == kept_metrics  # every metric to the last digit
    assert metrics["rows_train"] > 1000 and 0 < metrics["test_base_rate"] < 0.2
    for name, frame in tables.items():
        assert frame.equals(kept_tables[name]), name
