"""Per-run file logging scoped to the run: two runs in one process never share a run.log.

The handler added for a run accepts only records emitted while that run is the
current one in the emitting context (a :class:`contextvars.ContextVar`), so a
second run in another thread (the service) writes only into its own log.

Example:
    >>> import logging, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "run.log"
    >>> with run_log(path, "r1", secrets={"hunter2"}):
    ...     logging.getLogger("opslens.run").warning("password hunter2")
    >>> logging.getLogger("opslens.run").warning("after the run")
    >>> "***" in path.read_text(), "after" in path.read_text()
    (True, False)
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from opslens.config.secrets import SecretFilter
from opslens.tracking.runs import writing

__all__ = ["current_run", "run_log"]

_CURRENT: ContextVar[str | None] = ContextVar("opslens_current_run", default=None)


def current_run() -> str | None:
    """The id of the run being executed in this context, if any."""
    return _CURRENT.get()


class _ThisRun(logging.Filter):
    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id

    def filter(self, record: logging.LogRecord) -> bool:
        return _CURRENT.get() == self.run_id


class _RunFileHandler(logging.FileHandler):
    """A run.log that, on a full disk, stops writing instead of printing a traceback per record."""

    def handleError(self, record: logging.LogRecord) -> None:
        return


@contextmanager
def run_log(path: Path, run_id: str, secrets: Iterable[str] = ()) -> Iterator[None]:
    """Write the ``opslens`` records of this run (INFO and up, secrets masked) to ``path``."""
    with writing(path):
        handler = _RunFileHandler(path, encoding="utf-8")
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_ThisRun(run_id))
    handler.addFilter(SecretFilter(secrets))
    logger = logging.getLogger("opslens")
    if logger.level == logging.NOTSET:  # let INFO records reach the run log
        logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    token = _CURRENT.set(run_id)
    try:
        yield
    finally:
        _CURRENT.reset(token)
        logger.removeHandler(handler)
        handler.close()
