"""``opslens report``: a self-contained report.html of a run, an index of all, served on request.

Example:
    >>> callable(report)
    True
"""

import logging
from pathlib import Path
from typing import Annotated

import typer

from opslens.cli.common import ProjectOpt, load

__all__ = ["report"]

log = logging.getLogger("opslens.cli")
NARRATORS = ("template", "ollama", "gemini", "openai")


def report(
    ctx: typer.Context,
    analysis: Annotated[str | None, typer.Argument(help="analysis name (not with --all)")] = None,
    project: ProjectOpt = Path("project.yaml"),
    run_id: Annotated[str, typer.Option("--run", help="run id (default: latest)")] = "latest",
    narrator: Annotated[
        str | None,
        typer.Option(
            "--narrator", help="template | ollama | gemini | openai (default: report.narrator)"
        ),
    ] = None,
    every: Annotated[
        bool, typer.Option("--all", help="the latest report of every analysis, and an index page")
    ] = False,
    serve: Annotated[
        bool, typer.Option("--serve", help="serve the report on a loopback port until Ctrl-C")
    ] = False,
    port: Annotated[int, typer.Option("--port", help="port for --serve (0: a free one)")] = 0,
) -> None:
    """Write report.html (self-contained, plots embedded) into the run folder."""
    from opslens.api import write_index, write_report
    from opslens.errors import ConfigError

    if narrator is not None and narrator not in NARRATORS:
        raise ConfigError(
            f"--narrator {narrator!r} is not a narrator", fix=f"use one of: {', '.join(NARRATORS)}"
        )
    if every == (analysis is not None):
        raise ConfigError(
            "name one analysis, or pass --all for every one",
            fix="opslens report NAME, or opslens report --all",
        )
    config = load(ctx, project)
    if every:
        path = write_index(config, narrator=narrator)
    else:
        path = write_report(config, analysis, run_id=run_id, narrator=narrator)
    typer.echo(f"report: {path}")
    if serve:
        from opslens.report.serve import ReportServer

        with ReportServer(path.parent, port=port) as server:
            typer.echo(f"serving {server.url(path.name)} (Ctrl-C to stop)")
            try:
                while server.thread.is_alive():
                    server.thread.join(0.5)
            except KeyboardInterrupt:
                typer.echo("stopped")
