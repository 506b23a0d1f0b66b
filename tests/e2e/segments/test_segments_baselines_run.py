"""The bundled segments demo run through the runner (tracking off): facts.json holds the
baseline comparison, one score per target against one global LightGBM with finite intervals,
read back through the recipe's typed facts model; the metrics hold both figures; the report
narrative ends its summary with the verdict."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from opslens.api import load_project
from opslens.core.baselines import plain_verdict
from opslens.recipes.segments import RECIPE
from opslens.recipes.segments.facts import SegmentsFacts
from opslens.recipes.segments.narrative import segments_narrative
from opslens.runner import run_analysis

pytestmark = pytest.mark.slow
DEMO = Path(__file__).resolve().parents[3] / "examples" / "segments" / "project.yaml"


def test_demo_run_states_the_global_model_baseline(tmp_path: Path) -> None:
    text = DEMO.read_text().replace(
        'tracking: {uri: "sqlite:///mlflow.db"}', "tracking: {enabled: false}"
    )
    (tmp_path / "project.yaml").write_text(text)
    project = load_project(tmp_path / "project.yaml")
    result = run_analysis(project, "patients")
    facts = RECIPE.read_facts(json.loads((result.path / "facts.json").read_text()))
    assert isinstance(facts, SegmentsFacts) and facts.baselines is not None
    scores = facts.baselines.for_baseline("global_model")
    assert [s.metric for s in scores] == ["rmse_next_score", "rmse_resource_hours"]
    assert facts.prepare is not None and facts.fit is not None
    for s, target in zip(scores, ["next_score", "resource_hours"], strict=True):
        assert s.interval is not None and all(math.isfinite(v) for v in s.interval)
        assert s.interval[0] < s.model - s.value < s.interval[1]
        assert 0.95 * facts.prepare.test_rows <= s.n <= facts.prepare.test_rows
        assert result.metrics[f"baseline.global_model.{s.metric}"] == pytest.approx(s.value)
        assert result.metrics[f"model.{s.metric}"] == pytest.approx(s.model)
        assert s.model == pytest.approx(facts.fit.targets[target].segment.rmse)
    resource = scores[1]
    assert resource.model < 0.8 * resource.value and resource.interval is not None
    assert resource.interval[1] < 0, "the resource target's per-segment gain is significant"
    summary = segments_narrative(facts, []).summary
    assert plain_verdict(facts.baselines) in summary and len(summary.split()) <= 40
