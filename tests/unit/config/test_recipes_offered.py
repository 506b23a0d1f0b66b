"""A recipe whose packages are missing is not offered as a valid choice."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest

import opslens.recipes as recipes
from opslens.errors import ConfigError


def test_unavailable_recipes_are_not_offered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    needed = {r for n in recipes.recipe_names() for r in recipes.get_recipe(n).requires}
    assert needed, "segments needs hdbscan and lightgbm: some recipe must declare requires"
    hidden = sorted(needed)[0]

    def spec(name: str, *args: Any) -> Any:
        return None if name == hidden else find_spec(name, *args)

    monkeypatch.setattr(recipes, "find_spec", spec)
    blocked = [n for n in recipes.recipe_names() if hidden in recipes.get_recipe(n).requires]
    (tmp_path / "project.yaml").write_text(
        "analyses:\n  - {name: a, recipe: magic, source: {kind: memory}}\n"
    )
    with pytest.raises(ConfigError) as err:
        recipes.load_project(tmp_path / "project.yaml")
    offered = str(err.value).split("use one of: ", 1)[1].split(", ")
    assert "distribution" in offered
    assert not set(blocked) & set(offered), offered
