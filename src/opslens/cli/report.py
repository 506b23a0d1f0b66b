"""``opslens report``: a self-contained report.html of a run.

Example:
    >>> callable(report)
    True
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from opslens.cli.common import ProjectOpt, load

__all__ = ["report"]


def report(
    ctx: typer.Context,
    analysis: Annotated[str, typer.Argument(help="analysis name")],
    project: ProjectOpt = Path("project.yaml"),
    run_id: Annotated[str, typer.Option("--run", help="run id (default: latest)")] = "latest",
) -> None:
    """Write report.html (self-contained, plots embedded) into the run folder."""
    from opslens.api import write_report

    path = write_report(load(ctx, project), analysis, run_id=run_id)
    typer.echo(f"report: {path}")
