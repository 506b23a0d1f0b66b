"""The app's navigation: generic pages plus each recipe's own pages, found through the registry."""

from __future__ import annotations

import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

from opslens.recipes import get_recipe, recipe_names

APP = str(Path(__file__).resolve().parents[3] / "src/opslens/ui/app.py")


def _navigation() -> None:
    from types import SimpleNamespace

    import streamlit as st

    from opslens.recipes import recipe_names
    from opslens.ui.app import recipe_pages

    # a project using every recipe: only what the page list reads (each analysis's recipe)
    every = SimpleNamespace(analyses=[SimpleNamespace(recipe=n) for n in recipe_names()])
    st.json(
        {
            name: [page.title, f"{page._page.__module__}.{page._page.__qualname__}"]  # type: ignore[union-attr]
            for name, page in recipe_pages(every).items()  # type: ignore[arg-type]
        }
    )


def test_recipe_pages_come_from_the_recipes_packages() -> None:
    at = AppTest.from_function(_navigation, default_timeout=120).run()
    assert not at.exception
    pages = json.loads(at.json[0].value)
    # each page is its module's own render(): one FleetResult class for every page
    assert pages == {
        "patterns": ["Patterns", "opslens.recipes.distribution.pages.patterns.render"],
        "series": ["Series", "opslens.recipes.fleet.pages.series.render"],
        "fleet": ["Fleet", "opslens.recipes.fleet.pages.fleet.render"],
        "failures": ["Known failures", "opslens.recipes.fleet.pages.failures.render"],
        "monitoring": ["Monitoring", "opslens.recipes.segments.pages.monitoring.render"],
        "residuals": ["Residuals", "opslens.recipes.residual.pages.residuals.render"],
        "live": ["Live", "opslens.recipes.residual.pages.live.render"],
        "ranking": ["Propensity", "opslens.recipes.propensity.pages.ranking.render"],
    }
    declared = [p for n in recipe_names() for p in get_recipe(n).ui_pages]
    assert sorted(pages) == sorted(set(declared))


def test_the_app_starts_on_the_data_page() -> None:
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Data"]
