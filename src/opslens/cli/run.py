"""``opslens run``, ``opslens runs`` and ``opslens schema``: batch runs, their list, the config schema.

Example:
    >>> from opslens.cli.run import _stage_list
    >>> _stage_list("prepare, classify")
    ['prepare', 'classify']
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from opslens.cli.common import ProjectOpt, load

__all__ = ["run", "runs", "schema"]


def _stage_list(stages: str | None) -> list[str] | None:
    return [s.strip() for s in stages.split(",") if s.strip()] if stages else None


def run(
    ctx: typer.Context,
    project: Annotated[Path, typer.Argument(help="project file")] = Path("project.yaml"),
    analysis: Annotated[
        list[str] | None,
        typer.Option("--analysis", "-a", help="run only this analysis (repeatable)"),
    ] = None,
    stages: Annotated[
        str | None,
        typer.Option("--stages", help="comma-separated stages; others come from the latest run"),
    ] = None,
    pipeline: Annotated[
        str, typer.Option("--pipeline", help="the recipe's pipeline to run")
    ] = "train",
) -> None:
    """Run the active analyses (or --analysis NAME) and commit a run folder each."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from opslens.cli.console import stderr_console
    from opslens.runner import run_analysis

    config = load(ctx, project)
    names = analysis or [a.name for a in config.active_analyses()]
    for name in names:
        config.analysis(name)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=stderr_console,
        transient=True,
    ) as progress:
        for name in names:
            result = run_analysis(
                config, name, stages=_stage_list(stages), pipeline=pipeline, progress=progress
            )
            shown = result.headline()
            typer.echo(
                f"{name}: run {result.run_id} complete -> {result.path}"
                + (f" ({shown})" if shown else "")
            )


def runs(ctx: typer.Context, project: ProjectOpt = Path("project.yaml")) -> None:
    """List complete runs with their key metrics (newest first)."""
    from rich.console import Console
    from rich.table import Table

    from opslens.explain.text import format_metric
    from opslens.tracking.runs import LATEST, list_runs

    config = load(ctx, project)
    table = Table(title="opslens runs")
    for col in ("analysis", "run", "recipe", "finished", "key metrics"):
        table.add_column(col)
    for a in config.analyses:
        latest_file = config.runs_root() / a.name / LATEST
        latest = latest_file.read_text().strip() if latest_file.is_file() else None
        views = list_runs(config.runs_root(), a.name)
        if not views:
            table.add_row(a.name, "(no runs)", a.recipe, "", "")
        for view in views:
            m = view.manifest
            metrics = ", ".join(
                f"{k}={format_metric(v)}" for k, v in list(m.get("metrics", {}).items())[:4]
            )
            mark = " (latest)" if view.run_id == latest else ""
            table.add_row(
                a.name,
                view.run_id + mark,
                m.get("recipe", ""),
                str(m.get("finished", ""))[:19],
                metrics,
            )
    Console(width=160).print(table)


def schema(
    recipe: Annotated[
        str | None, typer.Argument(help="a recipe (its params); default: the whole project file")
    ] = None,
) -> None:
    """Print the JSON Schema of project.yaml, or of one recipe's params (for editors and CI)."""
    from opslens.recipes import analysis_json_schema, params_json_schema

    found = analysis_json_schema() if recipe is None else params_json_schema(recipe)
    typer.echo(json.dumps(found, indent=2))
