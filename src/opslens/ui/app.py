"""The entry script of ``opslens ui`` (``streamlit run`` runs it): page navigation.

Generic pages: Data, Score, Runs. Each recipe adds its pages through the recipe
contract (``Recipe.ui_pages``: scripts in ``opslens/ui/pages``); the fleet recipe
adds Series, Fleet and Known failures. A recipe without pages still appears
under Runs and Score.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from opslens.recipes import get_recipe, recipe_names

PAGES = Path(__file__).parent / "pages"
TITLES = {
    "data": "Data",
    "series": "Series",
    "fleet": "Fleet",
    "failures": "Known failures",
    "score": "Score",
    "runs": "Runs",
}


def _page(name: str) -> st.Page:
    return st.Page(str(PAGES / f"{name}.py"), title=TITLES.get(name, name.title()), url_path=name)


def main() -> None:
    """Build the navigation and run the chosen page."""
    st.set_page_config(page_title="opslens", layout="wide")
    recipe_pages = [p for n in recipe_names() for p in get_recipe(n).ui_pages]
    names = ["data", *dict.fromkeys(recipe_pages), "score", "runs"]
    st.navigation([_page(n) for n in names]).run()


main()
