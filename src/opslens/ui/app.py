"""The entry script of ``opslens ui`` (``streamlit run`` runs it): page navigation.

Generic pages: Data, Score, Runs (scripts in ``opslens/ui/pages``). Each recipe adds
its own pages through the registry: ``Recipe.ui_pages`` names modules of the recipe's
``pages`` package (``opslens.recipes.<name>.pages.<page>``), each with a ``TITLE``
and a ``render()`` (the page's callable); the fleet recipe adds Series, Fleet and Known failures. A recipe
without pages still appears under Runs and Score.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

import streamlit as st

from opslens.recipes import get_recipe, recipe_names

PAGES = Path(__file__).parent / "pages"
GENERIC = {"data": "Data", "score": "Score", "runs": "Runs"}


def _generic(name: str) -> st.Page:
    return st.Page(str(PAGES / f"{name}.py"), title=GENERIC[name], url_path=name)


def recipe_pages() -> dict[str, st.Page]:
    """Every registered recipe's pages by url name (the first recipe to claim a name keeps it)."""
    pages: dict[str, st.Page] = {}
    for recipe in (get_recipe(n) for n in recipe_names()):
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
    pages = [_generic("data"), *recipe_pages().values(), _generic("score"), _generic("runs")]
    st.navigation(pages).run()


if __name__ == "__main__":  # `streamlit run` (opslens ui) runs this file as __main__
    main()
