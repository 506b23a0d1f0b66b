"""A recipe's own stages run in memory give what a run folder holds: the same facts, tables,
metrics and model, with no folder written and no tracker called."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import opslens.recipes as registry
from opslens.errors import RunError
from opslens.runner import MemoryRun, run_analysis, run_in_memory
from opslens.synthetic.trips import make_trips

pytestmark = pytest.mark.slow


def _project(tmp_path: Path) -> Any:
    return registry.project_from_mapping(
        {
            "tracking": {"enabled": False},
            "runs_dir": str(tmp_path / "runs"),
            "analyses": [
                {
                    "name": "eta",
                    "recipe": "distribution",
                    "source": {"kind": "memory", "name": "trips"},
                    "columns": {"target": "duration_min", "categorical": ["route", "hour_band"]},
                    "random_state": 5,
                    "params": {"min_combination_size": 20, "xgboost": {"n_estimators": 10}},
                }
            ],
        },
        root=tmp_path,
    )


def test_an_in_memory_run_equals_the_run_folder(tmp_path: Path) -> None:
    trips = make_trips(n_rows=3000, seed=1, n_routes=3).trips
    project = _project(tmp_path)
    memory = run_in_memory(project, "eta", frames={"trips": trips})
    assert isinstance(memory, MemoryRun)
    assert not (tmp_path / "runs").exists()  # nothing written

    run = run_analysis(project, "eta", frames={"trips": trips})
    assert memory.metrics == run.metrics
    facts = {k: v for k, v in memory.facts.items() if k != "analysis"}
    assert facts == {k: v for k, v in run.facts.items() if k != "analysis"}
    assert memory.facts["analysis"]["run_id"] == "memory"
    assert memory.read_facts().analysis.recipe == "distribution"
    for name, table in memory.tables.items():
        assert table.equals(run.table(name)), name
    for name in ("prepared", "quantized"):  # stage outputs saved as tables
        assert memory.values[name].equals(run.table(name)), name
    assert set(memory.plots) == {p.stem for p in run.view.plots()}
    rows = trips.select("route", "hour_band").head(50)
    assert memory.model.predict_frame(rows).equals(run.predictor().predict_frame(rows))
    assert memory.baselines is not None
    assert memory.baselines.model_dump(mode="json") == run.facts["baselines"]


def test_stages_in_memory_need_their_inputs(tmp_path: Path) -> None:
    trips = make_trips(n_rows=500, seed=1, n_routes=3).trips
    project = _project(tmp_path)
    with pytest.raises(RunError, match="stage input 'quantized' is not available in memory"):
        run_in_memory(project, "eta", frames={"trips": trips}, stages=["choose_k"])
    first = run_in_memory(project, "eta", frames={"trips": trips}, stages=["prepare", "quantize"])
    assert set(first.values) == {"prepared", "quantized", "histograms", "edges"}
    given = run_in_memory(project, "eta", stages=["choose_k"], inputs=first.values)
    assert "choose_k" in given.facts
