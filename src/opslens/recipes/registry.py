"""Recipes by name.

Example:
    >>> get_recipe("distribution").name
    'distribution'
"""

from __future__ import annotations

from importlib import import_module

from opslens.errors import ConfigError
from opslens.recipes.base import Recipe

__all__ = ["AVAILABLE", "get_recipe"]

AVAILABLE = {"distribution": "opslens.recipes.distribution", "fleet": "opslens.recipes.fleet"}


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``; ConfigError for one not built yet."""
    module = AVAILABLE.get(name)
    if module is None:
        raise ConfigError(
            f"the '{name}' recipe is not available in this version of opslens",
            fix=f"use one of: {', '.join(AVAILABLE)}",
        )
    recipe: Recipe = import_module(module).RECIPE
    return recipe
