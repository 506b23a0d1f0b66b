"""``opslens serve``: the HTTP scoring service of a project's analyses (FastAPI on uvicorn).

Example:
    >>> from typer.testing import CliRunner
    >>> import typer
    >>> app = typer.Typer()
    >>> _ = app.command()(serve)
    >>> "--state" in CliRunner().invoke(app, ["--help"]).output
    True
"""

import signal
from pathlib import Path
from typing import Annotated

import typer

from opslens.cli.common import ProjectOpt, load

__all__ = ["serve"]


def _check_free(host: str, port: int) -> None:
    """ConfigError if ``host:port`` cannot be listened on (in use, or not an address here)."""
    import socket

    from opslens.errors import ConfigError

    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            probe.bind((host, port))
    except OSError as e:
        raise ConfigError(
            f"cannot listen on {host}:{port} ({e.strerror or e})",
            fix="pass a free --port, or stop what is listening there",
        ) from None


def serve(
    ctx: typer.Context,
    project: ProjectOpt = Path("project.yaml"),
    host: Annotated[str, typer.Option("--host", help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="port to listen on")] = 8000,
    state: Annotated[
        str, typer.Option("--state", help="stream state: memory, or redis://127.0.0.1:6379/0")
    ] = "memory",
    max_batch: Annotated[
        int, typer.Option("--max-batch", min=1, help="most instances per batch request")
    ] = 1000,
    max_body_mb: Annotated[
        float, typer.Option("--max-body-mb", min=0.001, help="largest request body, in MB")
    ] = 16.0,
    alias: Annotated[
        str, typer.Option("--alias", help="registry alias to serve (current: old synonym)")
    ] = "champion",
    poll: Annotated[
        float, typer.Option("--poll", min=0.1, help="seconds between registry checks")
    ] = 5.0,
    workers: Annotated[
        int,
        typer.Option("--workers", min=1, help="worker processes (more than 1 needs --state redis)"),
    ] = 1,
) -> None:
    """Serve predictions of every analysis over HTTP; a promoted version is picked up live."""
    import uvicorn

    from opslens.errors import ConfigError
    from opslens.online.service import ServiceSettings, create_app

    if not 0 <= port <= 65535:
        raise ConfigError(f"--port {port} is not a port number", fix="use a port in 0..65535")
    from opslens.online.service.worker import check_workers, run_workers

    check_workers(workers, state)
    load(ctx, project)  # validated here: errors are one line, exit 2
    _check_free(host, port)
    settings = ServiceSettings(
        project=project,
        host=host,
        port=port,
        state=state,
        max_batch=max_batch,
        max_body_bytes=int(max_body_mb * 1_000_000),
        alias=alias,
        poll_seconds=poll,
    )
    if workers > 1:
        secured = "on" if settings.token() else "off"
        typer.echo(f"opslens serve at http://{host}:{port} ({workers} workers; auth {secured})")
        code = run_workers(settings, workers)
        if code:
            raise SystemExit(code)
        return
    app = create_app(settings)
    secured = "on" if settings.token() else f"off (set ${settings.token_env} to require a token)"
    typer.echo(
        f"opslens serve at http://{host}:{port} (docs at /docs; auth {secured}; Ctrl-C to stop)"
    )
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    try:
        uvicorn.Server(config).run()  # not uvicorn.run: it swallows the signal's KeyboardInterrupt
    except KeyboardInterrupt as e:
        # uvicorn has stopped taking connections and answered every request it had received;
        # Ctrl-C is how a person stops a service (exit 0), SIGTERM how a supervisor does (143)
        if getattr(e, "signum", None) == signal.SIGTERM:
            raise SystemExit(128 + signal.SIGTERM) from None
        return
