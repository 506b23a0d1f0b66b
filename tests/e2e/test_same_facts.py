"""Both recipes state the same facts as before the spine v2 move, on the same config.

tests/data/old_runs/ holds runs written by opslens 0.1.0 from tests/data/old_runs/project.yaml;
rerunning that project now must give equal facts (every number, every sentence).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from opslens.api import load_project
from opslens.runner import run_analysis

OLD = Path(__file__).parents[1] / "data" / "old_runs"


@pytest.mark.slow
@pytest.mark.parametrize("analysis", ["eta-small", "fleet-small"])
def test_facts_equal_those_of_0_1_0(analysis: str, tmp_path: Path) -> None:
    shutil.copy(OLD / "project.yaml", tmp_path / "project.yaml")
    result = run_analysis(load_project(tmp_path / "project.yaml"), analysis)
    old_run = (OLD / analysis / "latest").read_text().strip()
    before = json.loads((OLD / analysis / old_run / "facts.json").read_text())
    after = result.facts
    assert before["analysis"].pop("run_id") == old_run
    assert after["analysis"].pop("run_id") == result.run_id
    assert after == before
    old_metrics = json.loads((OLD / analysis / old_run / "manifest.json").read_text())["metrics"]
    assert result.metrics == old_metrics
