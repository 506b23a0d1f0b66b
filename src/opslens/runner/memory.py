"""A recipe's own stages run in memory: no run folder, no tracker, the seed from the config.

The app uses :func:`run_in_memory` to show what a recipe computes on a frame the
user gives, with the recipe's stages (the same functions a run executes), rather
than re-chaining them by hand. Every stage output, fact, table, plot and metric is
returned in a :class:`MemoryRun`; nothing is written.

Example:
    >>> import polars as pl
    >>> from opslens.recipes import project_from_mapping
    >>> project = project_from_mapping({"tracking": {"enabled": False},
    ...     "analyses": [{"name": "eta", "recipe": "distribution", "source": {"kind": "memory"},
    ...                   "columns": {"target": "minutes", "categorical": ["route"]}}]})
    >>> run_in_memory(project, "eta", frames={}, stages=["prepare"])
    Traceback (most recent call last):
    ...
    opslens.errors.ConfigError: analysis 'eta' reads the in-memory frame 'frame', but none was given; fix: call opslens.run(frame, ...) or pass frames={name: frame}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from opslens.config import ProjectConfig
from opslens.core.baselines import BaselineScore, BaselinesFacts
from opslens.core.facts import RecipeFacts
from opslens.core.recipe import Recipe
from opslens.engines import make_engine
from opslens.errors import RunError
from opslens.recipes import get_recipe
from opslens.runner.preflight import select_stages
from opslens.runner.stages import (
    baseline_scores,
    baseline_summary,
    call_stage,
    load_input,
    stage_context,
    stage_inputs,
)
from opslens.runner.steps import check_facts

__all__ = ["MemoryRun", "run_in_memory"]


@dataclass
class MemoryRun:
    """What a recipe's stages returned in memory: every stage output (``values``), the facts
    (checked by the recipe's facts model), result tables, figures, metrics and the model."""

    analysis: str
    recipe: Recipe
    values: dict[str, Any] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, pl.DataFrame] = field(default_factory=dict)
    plots: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    model: Any = None
    baselines: BaselinesFacts | None = None
    warnings: list[str] = field(default_factory=list)

    def read_facts(self) -> RecipeFacts:
        """The facts read through the recipe's typed facts model."""
        return self.recipe.read_facts(self.facts, where=f"the facts of '{self.analysis}'")


class _Memory:
    """Stage inputs from memory only (an in-memory run has no base run to read from)."""

    def __init__(self, recipe: Recipe, given: Mapping[str, Any]) -> None:
        self.recipe = recipe
        self.memory: dict[str, Any] = dict(given)

    def load(self, name: str) -> Any:
        producer = self.recipe.producer(name)
        raise RunError(
            f"stage input '{name}' is not available in memory",
            fix=f"include the stage '{producer.name if producer else 'that makes it'}' in "
            f"stages, or pass it in inputs={{'{name}': ...}}",
        )


def run_in_memory(
    project: ProjectConfig,
    name: str,
    *,
    frames: Mapping[str, pl.DataFrame] | None = None,
    stages: Sequence[str] | None = None,
    inputs: Mapping[str, Any] | None = None,
    pipeline: str = "train",
) -> MemoryRun:
    """Run analysis ``name``'s stages (all of ``pipeline``, or ``stages``) in memory.

    The source is read as a run reads it (``frames`` for a memory source); ``inputs``
    gives stage inputs by name; the seed is the analysis config's ``random_state``.
    """
    analysis = project.analysis(name)
    recipe = get_recipe(analysis.recipe)
    recipe.check_columns(analysis)
    selected = select_stages(recipe, stages, None, pipeline)
    ctx = stage_context(analysis, make_engine(project))
    memory = _Memory(recipe, inputs or {})
    run = MemoryRun(analysis=name, recipe=recipe)
    facts: dict[str, Any] = {}
    scores: list[BaselineScore] = []
    source: str | None = None
    for stage in selected:
        if "raw" in stage.inputs and "raw" not in memory.memory:
            loaded = load_input(analysis, frames)
            memory.memory["raw"], source = loaded.frame, loaded.description
        out, told = call_stage(stage, ctx, stage_inputs(recipe, stage, analysis.params, memory))
        scores += baseline_scores(recipe, stage, out)
        memory.memory.update(out.values)
        run.values.update(out.values)
        run.tables.update(out.tables)
        run.plots.update(out.plots)
        run.metrics.update(out.metrics)
        run.warnings += told
        if out.facts:
            facts[stage.name] = out.facts
        if out.model is not None:
            run.model = out.model.model
    run.baselines, baseline_metrics = baseline_summary(scores)
    run.metrics.update(baseline_metrics)
    head: dict[str, Any] = {
        "analysis": {"name": name, "recipe": recipe.name, "source": source, "run_id": "memory"}
    }
    if run.baselines is not None:
        head["baselines"] = run.baselines.model_dump(mode="json")
    run.facts = check_facts(recipe, {**head, **facts})
    return run
