"""Ctrl-C and SIGTERM: one exception for both, and sections they cannot cut in half.

:func:`catch_signals` (the CLI installs it first thing) turns SIGINT and SIGTERM
into :class:`Interrupted`, which carries the exit code (130, 143). It is a
``KeyboardInterrupt``, so whatever stops cleanly on Ctrl-C (the service, the
report server) stops so on SIGTERM too; the context yields the signals received,
so the CLI knows the exit code even where Typer turned the interrupt into its
own exit. :func:`deferred` holds both signals while a
section runs that must not stop halfway (an MLflow call, the commit) and
delivers a held one when the section ends, so the run is then closed cleanly
(its MLflow run KILLED, its temporary folder removed) instead of a database
client dying mid-statement.

Example:
    >>> import os, signal
    >>> with catch_signals():
    ...     try:
    ...         with deferred():
    ...             os.kill(os.getpid(), signal.SIGTERM)  # held until the section ends
    ...             print("section finished")
    ...     except Interrupted as e:
    ...         print("then interrupted", e.exit_code)
    section finished
    then interrupted 143
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["MESSAGE", "Interrupted", "catch_signals", "deferred"]

MESSAGE = "interrupted; the previous complete run is untouched"
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """The process was asked to stop (SIGINT or SIGTERM); ``exit_code`` is 128 + the signal."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.exit_code = 128 + signum
        super().__init__(signal.Signals(signum).name)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def catch_signals() -> Iterator[list[int]]:
    """While inside, SIGINT and SIGTERM raise :class:`Interrupted` (main thread only).

    Yields the list of signals received, in order.
    """
    received: list[int] = []
    if not _main_thread():
        yield received
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        raise Interrupted(signum)

    previous = {s: signal.signal(s, interrupt) for s in _SIGNALS}
    try:
        yield received
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the section ends, then deliver the first one held."""
    if not _main_thread():
        yield
        return
    held: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        held.append(signum)

    previous = {s: signal.signal(s, hold) for s in _SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if held:
            signal.raise_signal(held[0])
