"""What a recipe is: typed params, named stages, and what each stage returns.

A stage is a pure function ``func(ctx, **inputs) -> Out``: it gets the
analysis's configuration in ``ctx`` and its named inputs (outputs of earlier
stages, or ``raw``: the loaded source frame) and returns an :class:`Out`.
It never reads or writes files; the runner saves what it returns.

Example:
    >>> from pydantic import BaseModel
    >>> class P(BaseModel):
    ...     k: int = 3
    >>> def double(ctx, raw):
    ...     return Out(values={"doubled": raw * 2}, facts={"k": ctx.params.k})
    >>> recipe = Recipe(name="toy", params_model=P, stages=(Stage("double", double, ("raw",), ("doubled",)),))
    >>> recipe.stage_names()
    ['double']
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import polars as pl
from pydantic import BaseModel, ValidationError

from opslens.config import AnalysisConfig, validation_message
from opslens.errors import ConfigError

__all__ = ["ModelArtifact", "Out", "Recipe", "Stage", "StageContext"]

T = TypeVar("T")


@dataclass(frozen=True)
class ModelArtifact:
    """What the online side loads: a fitted object with ``predict_frame``, and its metadata."""

    model: Any
    input_example: pl.DataFrame
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class Out:
    """A stage's results: named outputs, facts for reports, metrics, plots, result tables."""

    values: dict[str, Any] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    plots: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, pl.DataFrame] = field(default_factory=dict)
    model: ModelArtifact | None = None


@dataclass(frozen=True)
class StageContext:
    """What a stage may know besides its inputs: config, params, seed and a progress hook."""

    analysis: AnalysisConfig
    params: Any
    random_state: int
    track: Callable[[Iterable[Any], str, int | None], Iterator[Any]] = field(
        default=lambda items, _description, _total: iter(items)
    )


@dataclass(frozen=True)
class Stage:
    """A named step: the function, the inputs it takes, the outputs it returns."""

    name: str
    func: Callable[..., Out]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


@dataclass(frozen=True)
class Recipe:
    """A recipe: its name, its params model (defaults make ``params: {}`` work) and stages."""

    name: str
    params_model: type[BaseModel]
    stages: tuple[Stage, ...]
    check_columns: Callable[[AnalysisConfig], None] = field(default=lambda _analysis: None)

    def stage_names(self) -> list[str]:
        """The stages in order."""
        return [s.name for s in self.stages]

    def validate(self, analysis: AnalysisConfig, where: str = "project.yaml") -> Any:
        """Validate ``analysis.params`` (unknown keys named with their path) and the columns."""
        try:
            params = self.params_model.model_validate(analysis.params)
        except ValidationError as e:
            msg = validation_message(e, where)
            msg = msg.replace(f"{where}: ", f"{where}: analysis '{analysis.name}' params: ", 1)
            raise ConfigError(
                msg, fix=f"see the {self.name} recipe's params in the README"
            ) from None
        self.check_columns(analysis)
        return params

    def select(self, names: Iterable[str] | None) -> list[Stage]:
        """The stages to run, in recipe order; ConfigError for an unknown name."""
        if names is None:
            return list(self.stages)
        wanted = list(names)
        unknown = [n for n in wanted if n not in self.stage_names()]
        if unknown:
            raise ConfigError(
                f"unknown stage(s) {', '.join(unknown)} for the {self.name} recipe",
                fix=f"choose from: {', '.join(self.stage_names())}",
            )
        return [s for s in self.stages if s.name in wanted]
