"""A project holding all five recipes' bundled demos (smaller where the demo is slow), for the
recipes' own pages. Tracking is off: nothing is written but the project file."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pytest

from opslens.recipes import get_recipe

RECIPES = ("distribution", "fleet", "segments", "residual", "propensity")
#: demo options made smaller so the in-memory runs of a test session stay short
SMALLER = {
    "n_turbines: 300": "n_turbines: 60",
    "num_users: 2000, num_items: 300, num_days: 60": "num_users: 500, num_items: 80, num_days: 60",
    "n_estimators: 200": "n_estimators: 40",
}


def all_recipes_project(
    folder: Path,
    *,
    recipes: tuple[str, ...] = RECIPES,
    smaller: bool = True,
    tracking: str = "{enabled: false}",
) -> Path:
    """``folder/project.yaml``: the demo analyses of ``recipes`` (every recipe unless told)
    in one project, with ``tracking`` (MLflow off unless told)."""
    analyses = []
    for name in recipes:
        recipe = get_recipe(name)
        assert recipe.demo is not None
        for file in recipe.demo.files[1:]:
            (folder / file).write_text((files(recipe.package) / "demo" / file).read_text())
        text = (files(recipe.package) / "demo" / "project.yaml").read_text()
        analyses.append(text.split("analyses:\n", 1)[1].split("\nactive:", 1)[0])
    body = "\n".join(analyses)
    if smaller:
        for old, new in SMALLER.items():
            body = body.replace(old, new)
    project = folder / "project.yaml"
    project.write_text(f"tracking: {tracking}\nanalyses:\n" + body + "\n")
    return project


@pytest.fixture(scope="session")
def every_recipe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project file of :func:`all_recipes_project` (smaller demos)."""
    return all_recipes_project(tmp_path_factory.mktemp("every_recipe"))
