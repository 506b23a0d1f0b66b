"""The ONE registry of recipes: config, CLI, demo, report, stream, tracking and tests ask it.

Adding a recipe means adding a package ``recipes/<name>/`` whose ``RECIPE``
is a :class:`~opslens.core.recipe.Recipe`, and its name below (see
``recipes/_template/``). Nothing else lists recipe names.

Example:
    >>> get_recipe("distribution").name
    'distribution'
    >>> {"distribution", "fleet"} <= set(recipe_names())
    True
    >>> get_recipe("nosuch")
    Traceback (most recent call last):
    ...
    opslens.errors.ConfigError: the 'nosuch' recipe is not available in this version of opslens; fix: use one of: ...
"""

from __future__ import annotations

from functools import cache
from importlib import import_module
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from opslens.config.project import (
    ProjectConfig,
    project_model,
    read_project_file,
    validate_project,
)
from opslens.core.recipe import Recipe
from opslens.errors import ConfigError

__all__ = [
    "analysis_json_schema",
    "get_recipe",
    "load_project",
    "params_json_schema",
    "project_from_mapping",
    "recipe_names",
    "registered_project_model",
]

_PACKAGES = {
    "distribution": "opslens.recipes.distribution",
    "fleet": "opslens.recipes.fleet",
    "segments": "opslens.recipes.segments",
    "residual": "opslens.recipes.residual",
    "propensity": "opslens.recipes.propensity",
}


def recipe_names() -> list[str]:
    """The names of every registered recipe."""
    return list(_PACKAGES)


def _available_recipes() -> list[str]:
    """The registered recipes whose required packages are installed: the ones to offer."""
    return [
        n
        for n, module in _PACKAGES.items()
        if all(find_spec(r) for r in import_module(module).RECIPE.requires)
    ]


@cache
def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``; ConfigError for one not built or whose extra is missing."""
    module = _PACKAGES.get(name)
    if module is None:
        raise ConfigError(
            f"the '{name}' recipe is not available in this version of opslens",
            fix=f"use one of: {', '.join(_available_recipes())}",
        )
    recipe: Recipe = import_module(module).RECIPE
    missing = [r for r in recipe.requires if find_spec(r) is None]
    if missing:
        raise ConfigError(
            f"the {name} recipe needs {', '.join(missing)}, which is not installed",
            fix=f"pip install 'opslens[{recipe.extra or name}]'",
        )
    return recipe


@cache
def registered_project_model() -> type[ProjectConfig]:
    """The project model with every registered recipe's params model."""
    return project_model({n: import_module(m).RECIPE.params_model for n, m in _PACKAGES.items()})


def _check(project: ProjectConfig) -> ProjectConfig:
    for analysis in project.analyses:
        get_recipe(analysis.recipe).check_columns(analysis)
    return project


def _unknown_recipe(raw: dict[str, Any], where: str) -> None:
    for i, analysis in enumerate(raw.get("analyses") or []):
        name = analysis.get("recipe") if isinstance(analysis, dict) else None
        if isinstance(name, str) and name not in _PACKAGES:
            raise ConfigError(
                f"{where}: analyses[{i}].recipe: the '{name}' recipe is not available "
                "in this version of opslens",
                fix=f"use one of: {', '.join(_available_recipes())}",
            )


def load_project(path: str | Path) -> ProjectConfig:
    """Read and validate a project file with every recipe's typed params; ConfigError if not.

    Example:
        >>> load_project("/nonexistent/project.yaml")
        Traceback (most recent call last):
        ...
        opslens.errors.ConfigError: project file /nonexistent/project.yaml does not exist; fix: pass the path of your project.yaml (see examples/), or run `opslens demo`
    """
    raw, root, secrets = read_project_file(path)
    _unknown_recipe(raw, str(path))
    model = registered_project_model()
    return _check(validate_project(raw, model=model, root=root, secrets=secrets, where=str(path)))


def project_from_mapping(
    raw: dict[str, Any], *, root: Path | str = ".", where: str = "project"
) -> ProjectConfig:
    """Validate a project given as a mapping (the Python API's in-memory projects).

    Example:
        >>> p = project_from_mapping({"analyses": [{"name": "x", "recipe": "distribution",
        ...     "source": {"kind": "memory"}, "columns": {"target": "minutes"}}]})
        >>> p.analyses[0].params.n_bins
        20
    """
    _unknown_recipe(raw, where)
    model = registered_project_model()
    return _check(validate_project(raw, model=model, root=Path(root).resolve(), where=where))


def params_json_schema(name: str) -> dict[str, Any]:
    """The JSON Schema of a recipe's ``params``.

    Example:
        >>> params_json_schema("fleet")["properties"]["rare"]["$ref"]
        '#/$defs/RareParams'
    """
    return get_recipe(name).params_model.model_json_schema()


def analysis_json_schema() -> dict[str, Any]:
    """The JSON Schema of a whole project file (analyses discriminated on ``recipe``)."""
    schema = registered_project_model().model_json_schema()
    for hidden in ("root", "secrets"):
        schema.get("properties", {}).pop(hidden, None)
    return schema
