"""What every command shares: the project option and loading a project into the CLI state.

Example:
    >>> import typer
    >>> from typer.testing import CliRunner
    >>> app = typer.Typer()
    >>> @app.command()
    ... def show(project: ProjectOpt = Path("project.yaml")) -> None:
    ...     typer.echo(project.name)
    >>> CliRunner().invoke(app, ["-p", "x.yaml"]).output.strip()
    'x.yaml'
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from opslens.config import ProjectConfig

__all__ = ["ProjectOpt", "load"]

ProjectOpt = Annotated[
    Path, typer.Option("--project", "-p", help="project file", show_default=True)
]


def load(ctx: typer.Context, project: Path) -> ProjectConfig:
    """Load ``project``, remember its secrets for error messages and mask them in the console."""
    from opslens.api import load_project
    from opslens.cli.console import setup_console_logging

    config = load_project(project)
    state = ctx.find_root().obj
    if state is not None:
        state.secrets = config.secrets
    setup_console_logging(debug=bool(getattr(state, "debug", False)), secrets=config.secrets)
    return config
