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
from functools import partial
from typing import Any, Protocol

import polars as pl

from opslens.config import AnalysisConfig, FileSource, MemorySource, SqlSource, SyntheticSource
from opslens.core.baselines import BaselineScore, BaselinesFacts, summarise
from opslens.core.engine import Engine
from opslens.core.recipe import Out, Recipe, Stage, StageContext
from opslens.errors import ConfigError, ContractError, OpslensWarning
from opslens.io.load import (
    Loaded,
    describe_source,
    fingerprint_rows,
    load_source,
    row_digest,
    rows_fingerprint,
)
from opslens.io.sources.files import read_file
from opslens.runner.caught import caught
from opslens.synthetic import generate

__all__ = [
    "Available",
    "baseline_scores",
    "baseline_summary",
    "call_stage",
    "engine_source",
    "load_engine_input",
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
    analysis: AnalysisConfig,
    frames: Mapping[str, pl.DataFrame] | None = None,
    *,
    digest: Any = None,
) -> Loaded:
    """The analysis's data as a run reads it: from its source (synthetic, memory or read by io);
    ``digest`` makes its fingerprint (default :func:`opslens.io.load.fingerprint_frame`)."""
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
    if digest is not None:
        return load_source(analysis, frame=frame, digest=digest)
    return load_source(analysis, frame=frame)


def engine_source(analysis: AnalysisConfig) -> tuple[str, str | None] | None:
    """``(path, None)`` for a Parquet file or folder source, ``(url, table)`` for a SQL table
    source: what an engine reads itself (Spark: its executors); None for any other source
    (a CSV, a query, Elasticsearch, a LONG layout, generated or in-memory data).

    Example:
        >>> a = AnalysisConfig.model_validate({"name": "p", "recipe": "propensity",
        ...     "source": {"kind": "file", "path": "/d/events.parquet"}})
        >>> engine_source(a)
        ('/d/events.parquet', None)
    """
    src = analysis.source
    if src.layout == "long":
        return None
    if isinstance(src, FileSource):
        path = str(src.path)
        parquet = src.format == "parquet" or (
            src.format == "auto" and path.lower().endswith((".parquet", ".pq"))
        )
        return (path, None) if parquet else None
    if isinstance(src, SqlSource) and src.table is not None:
        return (src.url, src.table)
    return None


def loaded_rows(
    batch: pl.DataFrame, *, time: str | None, unit: Any, window: Any, where: str
) -> pl.DataFrame:
    """The per-batch part of :func:`opslens.io.load.load_source` (row by row: the time column
    parsed, the window applied), for an engine to run on its batches."""
    from opslens.core.columns import parse_time
    from opslens.io.schema import apply_window

    if time is None:
        return batch
    out = parse_time(batch, time, unit=unit, where=where)
    if window is not None:
        out = apply_window(out, time, start=window.start, end=window.end)
    return out


def load_engine_input(
    analysis: AnalysisConfig, engine: Engine, frames: Mapping[str, pl.DataFrame] | None = None
) -> Loaded:
    """The source of a recipe that works on engine frames (``Recipe.engine_frames``).

    On a distributed engine a Parquet or SQL-table source (:func:`engine_source`) is read by
    the engine itself (Spark: the executors; the time column parsed and the window applied
    batch by batch there) and stays there; any other source is loaded here as usual. The
    fingerprint is :func:`opslens.io.load.fingerprint_rows` on every engine (the rows as a
    multiset, summed over the engine's batches), so the same input has the same fingerprint
    whichever engine read it.
    """
    where = describe_source(analysis)
    source = engine_source(analysis) if engine.distributed else None
    if source is None:
        return load_input(analysis, frames, digest=fingerprint_rows)
    path, table = source
    raw = engine.read(path, table=table)
    time, src = analysis.columns.time, analysis.source
    unit: Any = src.time_unit
    head = engine.head(raw, 1)
    if time is not None:
        from opslens.core.columns import require_columns

        require_columns(head, [time], where=where)
        if unit == "auto" and head.schema[time].is_numeric():  # the unit of the whole column
            top = engine.summarise(raw, {"top": ("max", time), "low": ("min", time)}).row(0)
            big = max(abs(float(v)) for v in top if v is not None) if any(top) else 0.0
            unit = "ms" if big > 1e11 else "s"
    rows_of = partial(loaded_rows, time=time, unit=unit, window=src.window, where=where)
    frame = engine.map_batches(raw, rows_of, keep=True)
    digest = engine.summarise(
        engine.map_batches(frame, row_digest, keep=True),
        {"rows": ("sum", "rows"), "low": ("sum", "low"), "high": ("sum", "high")},
    ).row(0)
    rows = int(digest[0] or 0)
    if rows == 0:
        from opslens.errors import DataError

        raise DataError(f"{where} has no rows", fix="point the source at a table or file with data")
    schema = engine.head(frame, 0).schema
    return Loaded(frame, rows_fingerprint(schema, rows, int(digest[1]), int(digest[2])), where)


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
