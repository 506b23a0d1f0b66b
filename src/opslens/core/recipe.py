"""The recipe contract: typed params, named pipelines of stages, declared outputs.

A stage is a pure function ``func(ctx, **inputs) -> Out``: it gets the
analysis's configuration in ``ctx`` and its named inputs (outputs of earlier
stages, ``raw``: the loaded source frame, or a file the recipe declares in
:attr:`Recipe.inputs`) and returns an :class:`Out`. It never reads or writes
files; the runner saves what it returns, *as the stage declared it*: an
:class:`Output` of kind ``table`` is written as Parquet, of kind ``object``
with joblib. The runner checks every returned value, table, plot and model
against the declaration and names the stage when they differ.

A recipe is one :class:`Recipe` object: params model, pipelines (``train``
always; ``score``, ``retrain``, ... where the recipe has them), predictor
type, facts model, narrative, demo and extra requirements. The registry in
:mod:`opslens.recipes` maps names to recipes.

Example:
    >>> from opslens.config.base import Strict
    >>> class P(Strict):
    ...     k: int = 3
    >>> def double(ctx, raw):
    ...     return Out(values={"doubled": raw * 2}, facts={"k": ctx.params.k})
    >>> stage = Stage("double", double, inputs=("raw",), outputs=(Output("doubled", "object"),))
    >>> recipe = Recipe(name="toy", summary="doubles", params_model=P, pipelines={"train": (stage,)})
    >>> recipe.stage_names()
    ['double']
    >>> stage.check(Out(values={"doubled": 2}))
    >>> stage.check(Out(values={}))
    Traceback (most recent call last):
    ...
    opslens.errors.ContractError: stage 'double' declared outputs doubled but returned none (missing: doubled)
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import polars as pl
from pydantic import BaseModel, ValidationError

from opslens.core.baselines import Baseline, BaselineScore
from opslens.core.engine import Engine, LocalEngine, is_table
from opslens.core.facts import RecipeFacts
from opslens.errors import ConfigError, ContractError, RunError

if TYPE_CHECKING:
    from opslens.config.project import AnalysisConfig
    from opslens.core.lifecycle import Lifecycle
    from opslens.core.narrative import Narrative

__all__ = [
    "Demo",
    "FileInput",
    "ModelArtifact",
    "Out",
    "Output",
    "Recipe",
    "Stage",
    "StageContext",
]

Kind = Literal["table", "object"]


@dataclass(frozen=True)
class Output:
    """A value a stage returns and the runner persists: ``table`` → Parquet, ``object`` → joblib."""

    name: str
    kind: Kind = "table"


@dataclass(frozen=True)
class ModelArtifact:
    """What the online side loads: a fitted predictor, an input example and metadata."""

    model: Any
    input_example: pl.DataFrame
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class Out:
    """A stage's results: named outputs, facts for reports, metrics, plots, result tables,
    and the held-out scores of the model against the recipe's baselines (``baselines``)."""

    values: dict[str, Any] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    plots: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, pl.DataFrame] = field(default_factory=dict)
    model: ModelArtifact | None = None
    baselines: list[BaselineScore] = field(default_factory=list)


def _no_progress(items: Iterable[Any], _description: str, _total: int | None) -> Iterator[Any]:
    return iter(items)


@dataclass(frozen=True)
class StageContext:
    """What a stage may know besides its inputs: config, params, seed, source name, progress
    hook, and the engine its heavy per-entity work runs on (:mod:`opslens.core.engine`)."""

    analysis: AnalysisConfig
    params: Any
    random_state: int
    source: str = "the data"
    track: Callable[[Iterable[Any], str, int | None], Iterator[Any]] = _no_progress
    engine: Engine = field(default_factory=LocalEngine)


@dataclass(frozen=True)
class Stage:
    """A named step: its function, inputs, declared outputs, and the tables/plots it may write.

    ``tables`` and ``plots`` are names or shell-style patterns (``device_*_anomalies``);
    ``model`` says whether the stage returns the predictor.
    """

    name: str
    func: Callable[..., Out]
    inputs: tuple[str, ...] = ()
    outputs: tuple[Output, ...] = ()
    tables: tuple[str, ...] = ()
    plots: tuple[str, ...] = ()
    model: bool = False

    def output(self, name: str) -> Output | None:
        """The declared output called ``name``."""
        return next((o for o in self.outputs if o.name == name), None)

    def owns(self, kind: Literal["tables", "plots"], name: str) -> bool:
        """Whether ``name`` matches one of the stage's declared tables or plots."""
        patterns = self.tables if kind == "tables" else self.plots
        return any(fnmatch.fnmatchcase(name, p) for p in patterns)

    def check(self, out: Out) -> None:
        """ContractError naming this stage when ``out`` differs from the declaration."""
        if not isinstance(out, Out):
            raise ContractError(f"stage '{self.name}' returned {type(out).__name__}, not an Out")
        declared = [o.name for o in self.outputs]
        if set(out.values) != set(declared):
            missing = [n for n in declared if n not in out.values]
            extra = [n for n in out.values if n not in declared]
            got = ", ".join(out.values) or "none"
            detail = "; ".join(
                part
                for part in (
                    f"missing: {', '.join(missing)}" if missing else "",
                    f"undeclared: {', '.join(extra)}" if extra else "",
                )
                if part
            )
            raise ContractError(
                f"stage '{self.name}' declared outputs {', '.join(declared) or 'none'} "
                f"but returned {got} ({detail})"
            )
        for o in self.outputs:
            value = out.values[o.name]
            if o.kind == "table" and not is_table(value):
                raise ContractError(
                    f"stage '{self.name}' declared output '{o.name}' a table (polars DataFrame) "
                    f"but returned {type(value).__module__}.{type(value).__name__}"
                )
        for kind, names in (("tables", out.tables), ("plots", out.plots)):
            for name in names:
                if not self.owns(kind, name):  # type: ignore[arg-type]
                    raise ContractError(
                        f"stage '{self.name}' returned the undeclared {kind[:-1]} '{name}'"
                    )
        for name, table in out.tables.items():
            if not isinstance(table, pl.DataFrame):
                raise ContractError(
                    f"stage '{self.name}' returned table '{name}' as {type(table).__name__}, "
                    "not a polars DataFrame"
                )
        if out.model is not None and not self.model:
            raise ContractError(f"stage '{self.name}' returned a model it did not declare")
        if out.model is None and self.model:
            raise ContractError(f"stage '{self.name}' declared a model but returned none")


@dataclass(frozen=True)
class FileInput:
    """A file the runner reads for a recipe (a stage never reads one): ``path(params)`` or None."""

    name: str
    path: Callable[[Any], Path | None]
    description: str = "input file"

    @property
    def key(self) -> str:
        """The config key that names the file, as the description gives it in parentheses.

        Example:
            >>> FileInput("items", lambda p: None, "the item table (params.items.path)").key
            'params.items.path'
        """
        import re

        found = re.search(r"\((params\.[\w.]+)\)", self.description)
        return found.group(1) if found else "source.path"


@dataclass(frozen=True)
class Demo:
    """A recipe's demo: files in its package's ``demo/`` folder and instances to stream.

    ``instances(data, analysis)`` picks the instances from the demo's loaded data.
    """

    files: tuple[str, ...] = ("project.yaml",)
    instances: Callable[[pl.DataFrame, Any], list[dict[str, Any]]] | None = None


def _no_column_check(_analysis: Any) -> None:
    return None


def _no_narrative(_facts: Any, _plots: list[str]) -> Narrative | None:
    return None


@dataclass(frozen=True)
class Recipe:
    """A recipe: everything the spine needs to know about one analysis, in one object."""

    name: str
    summary: str
    params_model: type[BaseModel]
    pipelines: Mapping[str, tuple[Stage, ...]]
    predictor: type | None = None
    facts_model: type[BaseModel] | None = None
    #: called with the facts as read through :meth:`read_facts` (the typed model), never a dict
    narrative: Callable[[Any, list[str]], Narrative | None] = _no_narrative
    check_columns: Callable[[Any], None] = _no_column_check
    inputs: tuple[FileInput, ...] = ()
    demo: Demo | None = None
    package: str = ""
    requires: tuple[str, ...] = ()
    extra: str | None = None
    prompts: Mapping[str, str] = field(default_factory=dict)
    ui_pages: tuple[str, ...] = ()
    #: each committed run is also published to the versioned folder registry of ``params.registry``
    versioned: bool = False
    #: the simplest honest alternatives a practitioner would try first (opslens.core.baselines)
    baselines: tuple[Baseline, ...] = ()
    #: the life-cycle hooks (batch scoring, monitoring, retraining; opslens.core.lifecycle)
    lifecycle: Lifecycle | None = None
    #: its stages take and return engine frames (``Engine.distributed``: Spark frames that stay
    #: on the executors): the runner has the engine read a Parquet or SQL source, and
    #: writes such tables with the engine (``Engine.store``)
    engine_frames: bool = False

    def read_facts(self, facts: Mapping[str, Any], *, where: str = "facts.json") -> RecipeFacts:
        """``facts`` read through the recipe's facts model; RunError naming the failing field.

        Example:
            >>> from opslens.config.base import Strict
            >>> r = Recipe(name="toy", summary="", params_model=Strict, pipelines={"train": ()})
            >>> r.read_facts({"analysis": {"name": "a", "recipe": "toy", "run_id": "r"}}).analysis.name
            'a'
            >>> r.read_facts({"analysis": {"name": "a"}})
            Traceback (most recent call last):
            ...
            opslens.errors.RunError: facts.json does not match the toy recipe's facts model at 'analysis.recipe': Field required; fix: rerun the analysis (`opslens run`) to write its facts again
        """
        model = self.facts_model or RecipeFacts
        try:
            read: RecipeFacts = model.model_validate(dict(facts))  # type: ignore[assignment]
        except ValidationError as e:
            first = e.errors()[0]
            at = ".".join(str(p) for p in first["loc"]) or "(top level)"
            raise RunError(
                f"{where} does not match the {self.name} recipe's facts model at '{at}': "
                f"{first['msg']}",
                fix="rerun the analysis (`opslens run`) to write its facts again",
            ) from None
        return read

    @property
    def stages(self) -> tuple[Stage, ...]:
        """The ``train`` pipeline: what ``opslens run`` runs."""
        return self.pipelines["train"]

    def stage_names(self, pipeline: str = "train") -> list[str]:
        """The stages of ``pipeline`` in order."""
        return [s.name for s in self.pipeline(pipeline)]

    def pipeline(self, name: str = "train") -> tuple[Stage, ...]:
        """The stages of the pipeline ``name``; ConfigError for one the recipe lacks. Every
        recipe has ``score`` (:mod:`opslens.core.scoring`), its own or the built-in one."""
        if name == "score" and name not in self.pipelines:
            from opslens.core.scoring import SCORE_PIPELINE

            return SCORE_PIPELINE
        if name not in self.pipelines:
            raise ConfigError(
                f"the {self.name} recipe has no '{name}' pipeline",
                fix=f"choose from: {', '.join(self.pipelines)}",
            )
        return self.pipelines[name]

    def producer(self, output: str) -> Stage | None:
        """The stage (of any pipeline) that declares ``output``."""
        for stages in self.pipelines.values():
            for s in stages:
                if s.output(output) is not None:
                    return s
        return None

    def select(self, names: Iterable[str] | None, pipeline: str = "train") -> list[Stage]:
        """The stages to run, in pipeline order; ConfigError for an unknown name."""
        stages = self.pipeline(pipeline)
        if names is None:
            return list(stages)
        wanted = list(names)
        known = [s.name for s in stages]
        unknown = [n for n in wanted if n not in known]
        if unknown:
            raise ConfigError(
                f"unknown stage(s) {', '.join(unknown)} for the {self.name} recipe",
                fix=f"choose from: {', '.join(known)}",
            )
        return [s for s in stages if s.name in wanted]
