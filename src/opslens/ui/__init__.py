"""The Streamlit app (``opslens ui``): load data, use each recipe's own pages, score, browse every run.

``app.py`` is the entry script and builds the navigation; ``pages/`` holds one thin
script per generic page (Data, Score, Runs) that calls the page's ``render()`` in
``views/``; a recipe's own pages live in its package (``opslens.recipes.<name>.pages``,
named by ``Recipe.ui_pages``) and are found through the registry; ``state.py`` is
the session's data and the cached computations every page shares.
"""
