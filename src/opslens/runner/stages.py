"""Running one stage, the same way for a run folder and for an in-memory run.

:func:`stage_context` builds what a stage may know (config, params, the seed from
the analysis config, progress hook, engine); :func:`stage_inputs` gathers its named
inputs (given values first, then declared input files, then the catalog);
:func:`call_stage` calls it, turns its :class:`~opslens.errors.OpslensWarning`\\s
into run warnings and checks what it returned against its declaration;
:func:`baseline_scores` checks the baseline scores it returned against the
recipe's declared baselines and :func:`baseline_summary` turns a run's scores into
the ``baselines`` facts and the ``baseline.<name>.<metric>`` / ``model.<metric>``
metrics.

Example:
    >>> from opslens.core.baselines import BaselineScore
    >>> s = BaselineScore(baseline="base_rate", label="the base rate", metric="auroc",
    ...     metric_label="AUROC", model=0.81, value=0.5, higher_is_better=True, n=900)
    >>> facts, metrics = baseline_summary([s])
    >>> facts.model_wins, metrics
    (True, {'baseline.base_rate.auroc': 0.5, 'model.auroc': 0.81, 'beats_baselines': 1.0})
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol

import polars as pl

from opslens.config import AnalysisConfig, MemorySource, SyntheticSource
from opslens.core.baselines import BaselineScore, BaselinesFacts, summarise
from opslens.core.engine import Engine
from opslens.core.recipe import Out, Recipe, Stage, StageContext
from opslens.errors import ConfigError, ContractError, OpslensWarning
from opslens.io.load import Loaded, describe_source, load_source
from opslens.io.sources.files import read_file
from opslens.runner.caught import caught
from opslens.synthetic import generate

__all__ = [
    "Available",
    "baseline_scores",
    "baseline_summary",
    "call_stage",
    "load_input",
    "stage_context",
    "stage_inputs",
]

log = logging.getLogger("opslens.run")
_KEY = re.compile(r"^[a-z0-9_]+$")


class Available(Protocol):
    """Where stage inputs come from: values in memory, and a loader for the rest."""

    memory: dict[str, Any]

    def load(self, name: str) -> Any:
        """The input ``name`` (RunError naming the stage that makes it when there is none)."""


def load_input(
    analysis: AnalysisConfig, frames: Mapping[str, pl.DataFrame] | None = None
) -> Loaded:
    """The analysis's data as a run reads it: from its source (synthetic, memory or read by io)."""
    frames = frames or {}
    src = analysis.source
    frame: pl.DataFrame | None = None
    if isinstance(src, SyntheticSource):
        frame = generate(src.generator, seed=src.seed, options=src.options)
    elif isinstance(src, MemorySource):
        if src.name not in frames:
            raise ConfigError(
                f"analysis '{analysis.name}' reads the in-memory frame '{src.name}', "
                "but none was given",
                fix="call opslens.run(frame, ...) or pass frames={name: frame}",
            )
        frame = frames[src.name]
    return load_source(analysis, frame=frame)


def _track(
    items: Iterable[Any], description: str, total: int | None, progress: Any
) -> Iterator[Any]:
    if progress is None:
        yield from items
        return
    task = progress.add_task(description, total=total)
    for item in items:
        yield item
        progress.advance(task)
    progress.remove_task(task)


def stage_context(analysis: AnalysisConfig, engine: Engine, progress: Any = None) -> StageContext:
    """What every stage of a run of ``analysis`` may know; the seed is the analysis config's."""
    return StageContext(
        analysis=analysis,
        params=analysis.params,
        random_state=analysis.random_state,
        source=describe_source(analysis),
        track=lambda items, what, total: _track(items, what, total, progress),
        engine=engine,
    )


def stage_inputs(recipe: Recipe, stage: Stage, params: Any, available: Available) -> dict[str, Any]:
    """``stage``'s named inputs: values already in memory (given or made earlier in the run),
    then the recipe's declared input files, then the catalog (a base run)."""
    files = {i.name: i for i in recipe.inputs}
    found: dict[str, Any] = {}
    for name in stage.inputs:
        if name in available.memory:
            found[name] = available.memory[name]
        elif name in files:
            path = files[name].path(params)
            found[name] = None if path is None else read_file(path, key=files[name].key)
        else:
            found[name] = available.load(name)
    return found


def call_stage(stage: Stage, ctx: StageContext, inputs: dict[str, Any]) -> tuple[Out, list[str]]:
    """Run ``stage``; its OpslensWarnings become run warnings; its result is checked."""
    with caught() as seen:  # this thread's warnings only: the app runs analyses in threads
        out = stage.func(ctx, **inputs)
    told: list[str] = []
    for w in seen:
        if issubclass(w.category, OpslensWarning):
            log.warning("%s: %s", stage.name, w.message)
            told.append(f"{stage.name}: {w.message}")
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    stage.check(out)
    return out, told


def baseline_scores(recipe: Recipe, stage: Stage, out: Out) -> list[BaselineScore]:
    """The baseline scores ``stage`` returned, checked: each names a baseline the recipe
    declares and a metric key of ``[a-z0-9_]``; ContractError naming the stage otherwise."""
    declared = {b.name for b in recipe.baselines}
    scores: list[BaselineScore] = []
    for raw in out.baselines:
        score = BaselineScore.model_validate(
            raw.model_dump() if isinstance(raw, BaselineScore) else raw
        )
        if score.baseline not in declared:
            raise ContractError(
                f"stage '{stage.name}' scored the baseline '{score.baseline}', which the "
                f"{recipe.name} recipe does not declare (declared: "
                f"{', '.join(sorted(declared)) or 'none'})"
            )
        if not _KEY.match(score.metric):
            raise ContractError(
                f"stage '{stage.name}' named a baseline metric {score.metric!r}; "
                "metric keys are lower-case letters, digits and '_'"
            )
        scores.append(score)
    return scores


def baseline_summary(
    scores: list[BaselineScore],
) -> tuple[BaselinesFacts | None, dict[str, float]]:
    """The ``baselines`` facts of a run and its metrics ``baseline.<name>.<metric>`` (the
    baseline's figure), ``model.<metric>`` (the model's) and ``beats_baselines`` (1 or 0)."""
    if not scores:
        return None, {}
    facts = summarise(scores)
    metrics: dict[str, float] = {}
    for s in scores:
        metrics[f"baseline.{s.baseline}.{s.metric}"] = float(s.value)
        metrics[f"model.{s.metric}"] = float(s.model)
    metrics["beats_baselines"] = 1.0 if facts.model_wins else 0.0
    return facts, metrics
