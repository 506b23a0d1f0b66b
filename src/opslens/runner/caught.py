"""Warnings caught per thread: what one stage warned while others run in other threads.

``warnings.catch_warnings(record=True)`` swaps process-wide state, so two stages
recording at once in two threads (the app runs several analyses in memory at once)
take each other's warnings, and the one that ends last restores the other's
recorder for good. :func:`caught` installs one router instead, while any thread is
inside: each warning goes to the list of the thread that raised it, or on to the
handler that was there before when that thread is not recording.

Example:
    >>> import warnings
    >>> from opslens.errors import OpslensWarning
    >>> with caught() as seen:
    ...     warnings.warn("spread is zero", OpslensWarning)
    >>> [str(w.message) for w in seen]
    ['spread is zero']
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from opslens.errors import OpslensWarning

__all__ = ["caught"]

_lock = threading.Lock()
_lists: dict[int, list[warnings.WarningMessage]] = {}
_outer: list[Any] = []  # [the catch_warnings context, the handler it found] while installed


def _route(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    mine = _lists.get(threading.get_ident())
    if mine is not None:
        mine.append(warnings.WarningMessage(message, category, filename, lineno, file, line))
        return
    before = _outer[1] if _outer else warnings.showwarning
    before(message, category, filename, lineno, file, line)


@contextmanager
def caught() -> Iterator[list[warnings.WarningMessage]]:
    """The warnings raised in this thread inside the block, in order: every
    :class:`~opslens.errors.OpslensWarning`, the others as the warning filters say."""
    mine: list[warnings.WarningMessage] = []
    me = threading.get_ident()
    with _lock:
        if not _lists:
            context = warnings.catch_warnings()
            context.__enter__()
            _outer[:] = [context, warnings.showwarning]
            warnings.simplefilter("always", OpslensWarning)
            warnings.showwarning = _route
        outer = _lists.get(me)  # a block inside another keeps its own, as catch_warnings does
        _lists[me] = mine
    try:
        yield mine
    finally:
        with _lock:
            if outer is None:
                del _lists[me]
            else:
                _lists[me] = outer
            if not _lists:
                context = _outer[0]
                _outer.clear()
                context.__exit__(None, None, None)
