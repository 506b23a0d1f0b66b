"""The logic of the app's generic pages (Data, Score, Runs): one module per page, each a ``render()``.

A recipe's own pages live in its package (``opslens.recipes.<name>.pages``) and are
found through the registry (``Recipe.ui_pages``), never imported from here.
"""
