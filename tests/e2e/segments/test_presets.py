"""The three presets (small, large, medical) validate, and the small and medical ones run as
they are (tracking off) and find the four planted segments. On the small preset's 600
training rows the per-segment models are not better than one global LightGBM (the run's
baseline verdict says so and the serving alias is held back); the medical preset's beat it."""

from __future__ import annotations

from pathlib import Path

import pytest

from opslens.api import load_project
from opslens.runner import run_analysis

pytestmark = pytest.mark.slow
EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "segments"


@pytest.mark.parametrize("preset", ["small", "large", "medical"])
def test_presets_validate(preset: str) -> None:
    project = load_project(EXAMPLES / f"{preset}.yaml")
    assert project.analyses[0].recipe == "segments"


@pytest.mark.parametrize("preset", ["small", "medical"])
def test_presets_run(preset: str, tmp_path: Path) -> None:
    text = (EXAMPLES / f"{preset}.yaml").read_text()
    text = text.replace('tracking: {uri: "sqlite:///mlflow.db"}', "tracking: {enabled: false}")
    (tmp_path / "project.yaml").write_text(text)
    project = load_project(tmp_path / "project.yaml")
    result = run_analysis(project, project.analyses[0].name)
    assert result.metrics["segments"] == 4
    assert result.baselines is not None
    if preset == "medical":  # enough rows per segment for its own models to pay off
        assert result.metrics["rmse_resource"] < 0.9 * result.metrics["rmse_resource_global"]
        assert result.baselines.model_wins
    else:  # about 150 training rows per segment: one global model is as good
        assert not result.baselines.model_wins
        assert result.baselines.verdict.startswith(
            "one global LightGBM with the same features is better on RMSE of"
        )
        loss = next(s for s in result.baselines.scores if not s.model_wins)
        assert loss.p_value is not None and loss.p_value > 0.05, "a loss within the noise"
