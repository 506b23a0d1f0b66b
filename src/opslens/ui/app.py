"""The entry script of ``opslens ui`` (``streamlit run`` runs it): page navigation.

Generic pages: Data, Score, Runs (scripts in ``opslens/ui/pages``). Each recipe the
project uses adds its own pages through the registry: ``Recipe.ui_pages`` names modules
of the recipe's ``pages`` package (``opslens.recipes.<name>.pages.<page>``), each with a
``TITLE`` and a ``render()`` (the page's callable). A project without a fleet analysis
shows no fleet page; the app started without a project shows the fleet pages only (they
work on the Data page's table, the others need an analysis).

Example:
    >>> page_recipes(None)
    ['fleet']
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

import streamlit as st

from opslens.config import ProjectConfig
from opslens.recipes import get_recipe, recipe_names
from opslens.ui.analysis import warm
from opslens.ui.launch import warm_names
from opslens.ui.state import project

PAGES = Path(__file__).parent / "pages"
GENERIC = {"data": "Data", "score": "Score", "runs": "Runs"}


def _generic(name: str) -> st.Page:
    return st.Page(str(PAGES / f"{name}.py"), title=GENERIC[name], url_path=name)


#: the recipes whose pages work on the Data page's table alone (no analysis needed)
WITHOUT_PROJECT = ("fleet",)


def page_recipes(config: ProjectConfig | None) -> list[str]:
    """The recipes whose pages the app shows: those of the project's analyses, in the
    registry's order (without a project: the fleet recipe, whose pages need only data)."""
    used = {a.recipe for a in config.analyses} if config is not None else set(WITHOUT_PROJECT)
    return [n for n in recipe_names() if n in used]


def recipe_pages(config: ProjectConfig | None = None) -> dict[str, st.Page]:
    """The pages of the recipes ``config`` uses (:func:`page_recipes`), by url name (the
    first recipe to claim a name keeps it)."""
    pages: dict[str, st.Page] = {}
    for recipe in (get_recipe(n) for n in page_recipes(config)):
        for name in recipe.ui_pages:
            if name in pages or name in GENERIC:
                continue
            module = import_module(f"{recipe.package}.pages.{name}")
            pages[name] = st.Page(
                module.render, title=str(getattr(module, "TITLE", name.title())), url_path=name
            )
    return pages


def main() -> None:
    """Build the navigation and run the chosen page."""
    st.set_page_config(page_title="opslens", layout="wide")
    config = project()
    # the recipe pages' in-memory runs (started with the server by opslens.ui.launch; here
    # for an app started otherwise) go on while the user reads Data
    warm(warm_names(config))
    own = recipe_pages(config).values()
    pages = [_generic("data"), *own, _generic("score"), _generic("runs")]
    st.navigation(pages).run()


if __name__ == "__main__":  # `streamlit run` (opslens ui) runs this file as __main__
    main()
