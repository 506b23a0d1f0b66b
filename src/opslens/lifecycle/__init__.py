"""Where the life cycle of deployed models persists, for every recipe with life-cycle hooks.

:mod:`~opslens.lifecycle.history` keeps the monitoring history (batches, errors,
trainings and the alias audit) in a database through SQLAlchemy (SQLite by default,
PostgreSQL through a URL); :mod:`~opslens.lifecycle.registry` is the MLflow registry of an
analysis (versions, aliases, loading a version) and opens both for a project
(:func:`~opslens.lifecycle.registry.open_stores`). The spine that uses them is
:mod:`opslens.runner.lifecycle`; a recipe's own life-cycle work is its hooks
(:mod:`opslens.core.lifecycle`).
"""
