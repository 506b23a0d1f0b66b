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

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from opslens.config import ProjectConfig

__all__ = ["ProjectOpt", "check_writable", "load", "quiet"]

ProjectOpt = Annotated[
    Path, typer.Option("--project", "-p", help="project file", show_default=True)
]


def load(ctx: typer.Context, project: Path, *, typed: bool = True) -> "ProjectConfig":
    """Load ``project``, remember its secrets for error messages and mask them in the console.

    ``typed=False`` validates everything but each analysis's ``params`` (left as given):
    no recipe is imported, for commands that only list what is on disk (``opslens runs``).
    """
    from opslens.cli.console import setup_console_logging

    if typed:
        from opslens.api import load_project

        config = load_project(project)
    else:
        from opslens.config.project import load_project as load_untyped

        config = load_untyped(project)
    state = ctx.find_root().obj
    if state is not None:
        state.secrets = config.secrets
    setup_console_logging(
        debug=bool(getattr(state, "debug", False)),
        quiet=bool(getattr(state, "quiet", False)),
        secrets=config.secrets,
    )
    return config


def quiet(ctx: typer.Context) -> bool:
    """Whether ``-q/--quiet`` was given (no progress bars then)."""
    return bool(getattr(ctx.find_root().obj, "quiet", False))


def _nearest_existing(path: Path) -> Path:
    return next((p for p in (path, *path.parents) if p.exists()), Path("."))


def check_writable(path: Path | None, option: str, *, folder: bool = False) -> None:
    """ConfigError (naming ``option``, the path and a fix) unless ``path`` can be written.

    Checked before any work, so a bad ``--output`` or ``--plots-dir`` costs nothing.

    Example:
        >>> import tempfile
        >>> check_writable(Path(tempfile.mkdtemp()), "--output")
        Traceback (most recent call last):
        ...
        opslens.errors.ConfigError: --output ... is a folder; fix: name a file, e.g. .../predictions.jsonl
    """
    import os

    from opslens.errors import ConfigError

    if path is None:
        return
    if folder and path.exists() and not path.is_dir():
        raise ConfigError(
            f"{option} {path} is a file", fix="name a folder (it is created if missing)"
        )
    if not folder and path.is_dir():
        raise ConfigError(
            f"{option} {path} is a folder", fix=f"name a file, e.g. {path / 'predictions.jsonl'}"
        )
    base = _nearest_existing(path if folder else path.parent)
    if not base.is_dir():
        raise ConfigError(
            f"{option} {path} cannot be written: {base} is a file, not a folder",
            fix=f"choose a path under a folder for {option}",
        )
    if not folder and base != path.parent:
        raise ConfigError(
            f"the folder {path.parent} of {option} {path} does not exist",
            fix=f"create it, or choose a file in an existing folder for {option}",
        )
    target = path if path.exists() else base
    if not os.access(target, os.W_OK):
        raise ConfigError(
            f"{option} {path} cannot be written ({target} is not writable)",
            fix=f"choose a writable path for {option}, or change the permissions of {target}",
        )
