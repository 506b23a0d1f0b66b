"""Engines: where the recipes' heavy per-entity functions run (``engine:`` in project.yaml).

``local`` (default) is :class:`opslens.core.engine.LocalEngine`, polars in this
process; ``spark`` is :class:`opslens.engines.spark.SparkEngine` on PySpark at
``spark.master``. Both take the same functions and give the same answers.

Example:
    >>> from opslens.recipes import project_from_mapping
    >>> project = project_from_mapping({"analyses": [{"name": "a", "recipe": "distribution",
    ...     "source": {"kind": "file", "path": "x.csv"}, "columns": {"target": "y"}}]})
    >>> make_engine(project).name
    'local'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opslens.core.engine import Engine, LocalEngine

if TYPE_CHECKING:
    from opslens.config.project import ProjectConfig

__all__ = ["close_engines", "make_engine"]


_SPARK: dict[str, Engine] = {}


def make_engine(project: ProjectConfig) -> Engine:
    """The engine ``project.engine`` names; ConfigError (one line) when Spark cannot run.

    A Spark engine is checked here (PySpark, Java, master) and started on first
    use; one engine per Spark configuration is kept for the process, so the
    analyses of a project share one session.
    """
    if project.engine != "spark":
        return LocalEngine()
    from opslens.engines.spark import SparkEngine

    key = project.spark.model_dump_json()
    if key not in _SPARK:
        s = project.spark
        engine = SparkEngine(
            s.master,
            app_name=s.app_name,
            conf=s.conf,
            rows_per_task=s.rows_per_task,
            jdbc=s.jdbc.model_dump() if s.jdbc else None,
        )
        engine.check()
        _SPARK[key] = engine
    return _SPARK[key]


def close_engines() -> None:
    """Stop the Spark sessions :func:`make_engine` started in this process (a later
    ``make_engine`` starts a new one; one process holds one Spark session at a time).

    Example:
        >>> close_engines()
    """
    while _SPARK:
        _, engine = _SPARK.popitem()
        close = getattr(engine, "close", None)
        if close is not None:
            close()
