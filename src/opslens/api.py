"""The public Python API: run an analysis on a project file or a frame, load its model, report.

Everything a notebook user needs, without the CLI.

Example:
    >>> import opslens, polars as pl, tempfile
    >>> from opslens.synthetic.trips import make_trips
    >>> trips = make_trips(n_rows=4000, seed=1, n_routes=4).trips
    >>> result = opslens.run(trips, recipe="distribution", runs_dir=tempfile.mkdtemp(),
    ...     columns={"target": "duration_min", "categorical": ["route", "hour_band"]},
    ...     params={"min_combination_size": 20, "xgboost": {"n_estimators": 20}})
    >>> result.facts["choose_k"]["k"] >= 2
    True
    >>> model = result.predictor()
    >>> sorted(model.predict_one({"route": "R01", "hour_band": "morning"}))[:3]
    ['cluster', 'hdr_50', 'hdr_90']
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from opslens.config import ProjectConfig, ReportConfig
from opslens.core.engine import Engine, LocalEngine
from opslens.core.frames import as_polars, is_frame
from opslens.core.predictor import BasePredictor, Predictor
from opslens.engines import make_engine
from opslens.engines.spark import SparkEngine
from opslens.errors import ConfigError, RunError
from opslens.io.sources.files import read_file
from opslens.recipes import load_project as _load_project
from opslens.recipes import project_from_mapping
from opslens.report.facts import read_baselines, short_verdict
from opslens.report.index import write_index as _write_index
from opslens.report.narrators import make_narrator
from opslens.report.render import write_report as _write_report
from opslens.runner import RunResult, run_analysis
from opslens.tracking.models import ModelSource, load_model
from opslens.tracking.runs import open_run

__all__ = [
    "load_predictor",
    "load_project",
    "run",
    "run_all",
    "score",
    "write_index",
    "write_report",
]

log = logging.getLogger("opslens.api")


def load_project(path: str | Path) -> ProjectConfig:
    """Read and validate a project file (every recipe's params typed); ConfigError if invalid."""
    return _load_project(path)


def _project(project: str | Path | ProjectConfig) -> ProjectConfig:
    if isinstance(project, ProjectConfig):
        return project
    if isinstance(project, str | Path):
        return _load_project(project)
    raise ConfigError(
        f"expected a project file path or a loaded project, not {type(project).__name__}",
        fix="pass 'project.yaml', opslens.load_project(...), or a DataFrame with recipe=...",
    )


def _one_analysis(project: ProjectConfig, analysis: str | None) -> str:
    if analysis is not None:
        return project.analysis(analysis).name
    active = project.active_analyses()
    if len(active) != 1:
        raise ConfigError(
            f"the project has {len(active)} active analyses",
            fix=f"name one with analysis=... ({', '.join(a.name for a in active)}), or use run_all",
        )
    return active[0].name


def run(
    data: Any,
    *,
    analysis: str | None = None,
    recipe: str | None = None,
    columns: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    name: str = "analysis",
    runs_dir: str | Path = "runs",
    tracking: bool = False,
    random_state: int = 0,
    stages: Sequence[str] | None = None,
) -> RunResult:
    """Run one analysis and commit its run folder; return the :class:`RunResult`.

    ``data`` is a project file (or a loaded project; ``analysis`` picks one when
    several are active), or a polars or pandas DataFrame analysed with
    ``recipe``, ``columns`` and ``params`` as in project.yaml (run folders under
    ``runs_dir``, MLflow only if ``tracking``).
    """
    if is_frame(data):
        if recipe is None:
            raise ConfigError(
                "a DataFrame needs recipe=... to say which analysis to run",
                fix="pass recipe='distribution' (or another recipe) and its columns",
            )
        frame = as_polars(data, what="the data passed to opslens.run")
        project = project_from_mapping(
            {
                "tracking": {"enabled": tracking},
                "runs_dir": str(runs_dir),
                "analyses": [
                    {
                        "name": name,
                        "recipe": recipe,
                        "source": {"kind": "memory", "name": name},
                        "columns": dict(columns or {}),
                        "params": dict(params or {}),
                        "random_state": random_state,
                    }
                ],
            },
            where="opslens.run(...)",
        )
        return run_analysis(project, name, stages=stages, frames={name: frame})
    if recipe is not None or columns is not None or params is not None:
        raise ConfigError(
            "recipe=, columns= and params= apply to a DataFrame; a project file carries its own",
            fix="edit the project file, or pass a DataFrame",
        )
    loaded = _project(data)
    return run_analysis(loaded, _one_analysis(loaded, analysis), stages=stages)


def run_all(project: str | Path | ProjectConfig) -> list[RunResult]:
    """Run every active analysis of a project, in order."""
    loaded = _project(project)
    return [run_analysis(loaded, a.name) for a in loaded.active_analyses()]


def load_predictor(
    project: str | Path | ProjectConfig,
    analysis: str | None = None,
    *,
    source: ModelSource = "latest",
) -> Predictor:
    """The predictor of an analysis: from its latest run (default) or the MLflow alias."""
    loaded_project = _project(project)
    loaded = load_model(loaded_project, _one_analysis(loaded_project, analysis), source)
    log.info("model loaded from %s", loaded.origin)
    return loaded.predictor


def score(
    model: str | Path | ProjectConfig | Predictor,
    data: Any,
    analysis: str | None = None,
    *,
    source: ModelSource = "latest",
    engine: Engine | None = None,
) -> pl.DataFrame:
    """Batch scoring: a model on ``data`` (a frame, or a CSV/Parquet path), one answer row per
    row (per entity for the fleet model, whose rows of one device are scored together).

    ``model`` is a predictor, or a project (then ``analysis`` and ``source`` pick
    the model and the project's ``engine`` runs it). On ``engine: spark`` the
    model is broadcast once and scored with ``mapInArrow``; a Parquet path is
    then read by Spark itself. Locally it runs in bounded slices.

    Example:
        >>> import tempfile
        >>> from opslens.synthetic.trips import make_trips
        >>> trips = make_trips(n_rows=3000, seed=1, n_routes=3).trips
        >>> result = run(trips, recipe="distribution", runs_dir=tempfile.mkdtemp(),
        ...     columns={"target": "duration_min", "categorical": ["route", "hour_band"]},
        ...     params={"min_combination_size": 20, "xgboost": {"n_estimators": 10}})
        >>> score(result.predictor(), trips.head(5)).height
        5
    """
    if isinstance(model, Predictor):
        predictor, engine = model, engine or LocalEngine()
    else:
        loaded = _project(model)
        predictor = load_model(loaded, _one_analysis(loaded, analysis), source).predictor
        engine = engine or make_engine(loaded)
    key = predictor.batch_key if isinstance(predictor, BasePredictor) else None
    if isinstance(data, str | Path):
        path = Path(data)
        if isinstance(engine, SparkEngine) and path.suffix.lower() in (".parquet", ".pq"):
            if not path.is_file():
                read_file(path)  # its one-line "does not exist" error
            answers: pl.DataFrame = engine.map_batches(
                engine.read_parquet(path), predictor.predict_frame, key=key
            )
            return answers
        data = read_file(path)
    scored: pl.DataFrame = engine.map_batches(
        as_polars(data, what="data"), predictor.predict_frame, key=key
    )
    return scored


def write_report(
    project: str | Path | ProjectConfig | RunResult,
    analysis: str | None = None,
    *,
    run_id: str = "latest",
    narrator: str | None = None,
    transport: Any = None,
) -> Path:
    """Write report.html of a run (a RunResult, or an analysis's latest or given run); its path.

    ``narrator`` overrides ``report.narrator`` of the project (template, ollama, gemini,
    openai); ``transport`` is an httpx transport for the LLM clients (tests, proxies).
    """
    if isinstance(project, RunResult):
        config = ReportConfig()
        return _write_report(project.view, make_narrator(config, narrator, transport=transport))
    loaded = _project(project)
    name = _one_analysis(loaded, analysis)
    run = open_run(loaded.runs_root(), name, run_id)
    return _write_report(run, make_narrator(loaded.report, narrator, transport=transport))


def write_index(
    project: str | Path | ProjectConfig, *, narrator: str | None = None, transport: Any = None
) -> Path:
    """Write the latest report of every analysis and ``<runs_dir>/index.html`` linking them."""
    loaded = _project(project)
    root = loaded.runs_root()
    rows = []
    for a in loaded.analyses:
        row: dict[str, Any] = {"analysis": a.name, "recipe": a.recipe, "run_id": None}
        try:
            run = open_run(root, a.name)
        except RunError:
            rows.append(row)
            continue
        path = _write_report(run, make_narrator(loaded.report, narrator, transport=transport))
        manifest = run.manifest
        row.update(
            run_id=run.run_id,
            finished=str(manifest.get("finished", "")),
            metrics=manifest.get("metrics", {}),
            verdict=short_verdict(read_baselines(run.facts, where=str(run.path / "facts.json"))),
            href=path.relative_to(root).as_posix(),
        )
        rows.append(row)
    root.mkdir(parents=True, exist_ok=True)
    return _write_index(root, rows)
