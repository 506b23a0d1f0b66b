"""``opslens serve --workers N``: N uvicorn worker processes on one socket, state in Redis.

Each worker builds its own app (:func:`app_from_env`, from the settings the parent put in
``OPSLENS_SERVE_SETTINGS``): its own model book, polling the registry on its own, so a
promoted version reaches every worker within ``--poll`` seconds (until then two workers
may answer with different versions; each answer names its version). Stream state and
live events are shared only through Redis, which is why more than one worker needs
``--state redis://...``. SIGTERM to the parent stops every worker the way one stops:
no new connections, every received request answered; then the parent exits 143.

Example:
    >>> import os
    >>> os.environ[SETTINGS_ENV] = ServiceSettings(state="memory").model_dump_json()
    >>> ServiceSettings.model_validate_json(os.environ[SETTINGS_ENV]).state
    'memory'
"""

from __future__ import annotations

import os
import signal

from fastapi import FastAPI

from opslens.errors import ConfigError
from opslens.online.service.settings import ServiceSettings

__all__ = ["SETTINGS_ENV", "app_from_env", "check_workers", "run_workers"]

SETTINGS_ENV = "OPSLENS_SERVE_SETTINGS"


def check_workers(workers: int, state: str) -> None:
    """ConfigError unless ``workers`` is 1, or the state is shared (Redis).

    Example:
        >>> check_workers(2, "memory")
        Traceback (most recent call last):
        ...
        opslens.errors.ConfigError: --workers 2 with --state memory: each worker would keep its own stream state and live events; fix: pass --state redis://127.0.0.1:6379/0 (shared by every worker), or --workers 1
    """
    if workers > 1 and not state.startswith(("redis://", "rediss://")):
        raise ConfigError(
            f"--workers {workers} with --state {state}: each worker would keep its own "
            "stream state and live events",
            fix="pass --state redis://127.0.0.1:6379/0 (shared by every worker), or --workers 1",
        )


def app_from_env() -> FastAPI:
    """The app of one worker, from the settings in ``OPSLENS_SERVE_SETTINGS``."""
    from opslens.online.service.app import create_app

    return create_app(ServiceSettings.model_validate_json(os.environ[SETTINGS_ENV]))


def run_workers(settings: ServiceSettings, workers: int) -> int:
    """Serve with ``workers`` processes until stopped; 143 after SIGTERM, else 0."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    class Supervisor(Multiprocess):  # type: ignore[misc]
        terminated = False

        def handle_term(self) -> None:
            self.terminated = True
            super().handle_term()

    os.environ[SETTINGS_ENV] = settings.model_dump_json()
    config = uvicorn.Config(
        f"{__name__}:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=workers,
        log_level="warning",
        access_log=False,
    )
    sock = config.bind_socket()
    supervisor = Supervisor(config, sockets=[sock])
    supervisor.run()
    return 128 + signal.SIGTERM if supervisor.terminated else 0
