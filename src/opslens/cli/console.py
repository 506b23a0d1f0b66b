"""Console logging: a rich handler on stderr that masks secrets.

Example:
    >>> import logging
    >>> setup_console_logging(debug=False, secrets={"hunter2"})
    >>> logging.getLogger("opslens").level == logging.INFO
    True
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from rich.console import Console
from rich.logging import RichHandler

from opslens.config import SecretFilter

__all__ = ["setup_console_logging", "stderr_console"]

stderr_console = Console(stderr=True)


def setup_console_logging(*, debug: bool, secrets: Iterable[str] = (), quiet: bool = False) -> None:
    """Route the ``opslens`` logger to a rich stderr handler (replacing an earlier one).

    ``quiet`` shows warnings and errors only (the run log keeps INFO).
    """
    logger = logging.getLogger("opslens")
    for handler in list(logger.handlers):
        if getattr(handler, "_opslens_console", False):
            logger.removeHandler(handler)
    handler = RichHandler(
        console=stderr_console, show_path=False, rich_tracebacks=debug, log_time_format="[%X]"
    )
    handler._opslens_console = True  # type: ignore[attr-defined]
    handler.addFilter(SecretFilter(secrets))
    handler.setLevel(logging.WARNING if quiet else logging.NOTSET)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if debug else logging.INFO)
    logger.propagate = False
