"""Checks made when a run starts, before any stage: what would otherwise fail after the work.

Here: the stage list (``--stages``, ``--skip-stages``). The seed's range and the
analysis name's length are checked with the configuration; whether the tracker
can be used by :meth:`opslens.tracking.tracker.Tracker.prepare`.

Example:
    >>> from opslens.recipes import get_recipe
    >>> recipe = get_recipe("distribution")
    >>> [s.name for s in select_stages(recipe, None, recipe.stage_names()[1:])]
    ['prepare']
"""

from __future__ import annotations

from collections.abc import Sequence

from opslens.core.recipe import Recipe, Stage
from opslens.errors import ConfigError

__all__ = ["select_stages"]


def select_stages(
    recipe: Recipe,
    stages: Sequence[str] | None,
    skip: Sequence[str] | None = None,
    pipeline: str = "train",
) -> list[Stage]:
    """The stages to run: ``stages``, or every stage but ``skip``; ConfigError if none is left."""
    known = recipe.stage_names(pipeline)
    if stages is not None and skip is not None:
        raise ConfigError(
            "--stages and --skip-stages were both given",
            fix="name the stages to run with --stages, or those to leave out with --skip-stages",
        )
    if skip is not None:
        recipe.select(skip, pipeline)  # unknown names are errors
        stages = [s for s in known if s not in skip]
        if not stages:
            raise ConfigError(
                f"--skip-stages leaves no stage of the {recipe.name} recipe to run",
                fix=f"skip fewer of: {', '.join(known)}",
            )
    if stages is not None and not list(stages):
        raise ConfigError(
            "--stages names no stage",
            fix=f"name one or more of: {', '.join(known)} (comma-separated)",
        )
    return recipe.select(stages, pipeline)
