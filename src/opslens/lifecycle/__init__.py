"""Batch scoring, monitoring, retraining and registry moves of deployed models, persisted.

:mod:`~opslens.lifecycle.history` keeps the monitoring history (batches, errors,
trainings and the alias audit) in a database through SQLAlchemy (SQLite by default,
PostgreSQL through a URL); :mod:`~opslens.lifecycle.registry` logs trainings, batches
and retrainings to MLflow (a parent run per action, child runs per step) and moves the
registry aliases ``champion`` / ``challenger``; :mod:`~opslens.lifecycle.segments`
drives the segments recipe's :class:`~opslens.recipes.segments.SegmentPipeline` with
both (what ``opslens batch``, ``health``, ``retrain`` and ``models history`` call).
"""
