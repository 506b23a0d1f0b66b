"""A template recipe (not registered): copy this package to start a new one; see CHECKLIST.md.

It is a complete, working recipe so that the contract tests can run it: one
``summarise`` stage that counts rows and states the target's mean, and a
predictor that answers that mean for any instance.

Example:
    >>> RECIPE.stage_names(), RECIPE.params_model().label
    (['summarise'], 'rows')
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl
from pydantic import Field

from opslens.config import AnalysisConfig, Strict
from opslens.core.columns import require_columns, require_numeric
from opslens.core.facts import FactsModel, RecipeFacts
from opslens.core.frames import as_polars
from opslens.core.narrative import Narrative, Section
from opslens.core.predictor import BasePredictor
from opslens.core.recipe import Demo, ModelArtifact, Out, Output, Recipe, Stage, StageContext
from opslens.errors import ConfigError
from opslens.explain.text import fmt, plural

__all__ = ["RECIPE", "MeanPredictor", "TemplateParams"]


class TemplateParams(Strict):
    """Knobs of the template recipe (every one has a default)."""

    label: str = Field(default="rows", min_length=1)


class SummariseFacts(FactsModel):
    """What the summarise stage states."""

    rows: int
    mean: float | None


class TemplateFacts(RecipeFacts):
    """Every section a run may hold."""

    summarise: SummariseFacts | None = None


class MeanPredictor(BasePredictor):
    """Answers the training mean of the target for any instance."""

    recipe = "template"

    def __init__(self, mean: float | None) -> None:
        self.mean = mean

    def input_schema(self) -> dict[str, str]:
        """No inputs are needed."""
        return {}

    def predict_frame(self, frame: pl.DataFrame) -> pl.DataFrame:
        """The mean for every row."""
        frame = as_polars(frame, what="the instances")
        return pl.DataFrame({"mean": [self.mean] * frame.height}, schema={"mean": pl.Float64})

    def predict_one(self, instance: Mapping[str, Any]) -> dict[str, Any]:
        """The mean."""
        self.check_instance(instance)
        return {"mean": self.mean}


def check_columns(analysis: AnalysisConfig) -> None:
    """ConfigError unless ``columns.target`` is named."""
    if analysis.columns.target is None:
        raise ConfigError(
            f"analysis '{analysis.name}' (template) needs columns.target",
            fix="set columns.target to a numeric column",
        )


def summarise(ctx: StageContext, raw: pl.DataFrame) -> Out:
    """Count rows and take the target's mean."""
    target = str(ctx.analysis.columns.target)
    require_columns(raw, [target], where=ctx.source)
    frame = require_numeric(raw, target, where=ctx.source)
    mean = frame[target].mean()
    value = float(mean) if isinstance(mean, int | float) else None
    return Out(
        values={"summary": frame.select(pl.len().alias("rows"), pl.col(target).mean())},
        facts={"rows": frame.height, "mean": value},
        metrics={"rows": float(frame.height)},
        model=ModelArtifact(model=MeanPredictor(value), input_example=frame.head(3)),
    )


def narrative(facts: dict[str, Any], plots: list[str]) -> Narrative:
    """One section with the row count and the mean."""
    s = facts.get("summarise", {})
    a = facts.get("analysis", {})
    return Narrative(
        title=f"{a.get('name', 'analysis')}: summary",
        summary=f"{plural(s.get('rows'), 'row')} with mean {fmt(s.get('mean'))}.",
        sections=[Section(title="Summary", paragraphs=[f"The mean is {fmt(s.get('mean'))}."])],
    )


RECIPE = Recipe(
    name="template",
    summary="counts rows and states the target's mean (a template to copy)",
    params_model=TemplateParams,
    pipelines={
        "train": (
            Stage(
                "summarise",
                summarise,
                inputs=("raw",),
                outputs=(Output("summary"),),
                model=True,
            ),
        )
    },
    predictor=MeanPredictor,
    facts_model=TemplateFacts,
    narrative=narrative,
    check_columns=check_columns,
    demo=Demo(files=("project.yaml",), instances=lambda data, analysis: [{}, {"any": 1}]),
    package=__name__,
)
