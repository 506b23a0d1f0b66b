"""``opslens ui``: start the Streamlit app on a loopback port.

Example:
    >>> _command(__import__("pathlib").Path("app.py"), "127.0.0.1", 8501)[3:6]
    ['run', 'app.py', '--server.address']
"""

import os
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path
from typing import Annotated

import typer

from opslens.cli.common import ProjectOpt, load

__all__ = ["ui"]


def _command(app: Path, host: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "opslens.ui.launch",  # the recipe pages' runs start with the server, then Streamlit
        "run",
        str(app),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--server.maxUploadSize",
        "1024",
        "--browser.gatherUsageStats",
        "false",
    ]


def ui(
    ctx: typer.Context,
    project: ProjectOpt = Path("project.yaml"),
    host: Annotated[str, typer.Option("--host", help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="port to listen on")] = 8501,
) -> None:
    """Start the Streamlit app: explore fleet data, score instances, browse every run."""
    from opslens.errors import ConfigError

    if find_spec("streamlit") is None:
        raise ConfigError(
            "the UI needs streamlit, which is not installed", fix="pip install 'opslens[ui]'"
        )
    env = dict(os.environ)
    if project.is_file():
        load(ctx, project)  # validated once here; errors are one line, exit 2
        env["OPSLENS_PROJECT"] = str(project.resolve())
    elif project != Path("project.yaml"):
        what = "is a directory, not a file" if project.is_dir() else "does not exist"
        raise ConfigError(f"project file {project} {what}", fix="pass -p path/to/project.yaml")
    spec = find_spec("opslens.ui")  # located, not imported: the app runs in streamlit's process
    assert spec is not None and spec.submodule_search_locations
    app = Path(next(iter(spec.submodule_search_locations))) / "app.py"
    typer.echo(f"opslens ui at http://{host}:{port} (Ctrl-C to stop)")
    try:
        done = subprocess.run(_command(app, host, port), env=env, check=False)
    except KeyboardInterrupt:
        return
    if done.returncode not in (0, -2, 130):
        raise typer.Exit(done.returncode)
