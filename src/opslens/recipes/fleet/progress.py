"""Progress of the fleet recipe's long loops: the runner's bar plus log lines with the time left.

The runner's ``ctx.track`` draws a bar (when there is a terminal); beside it
:func:`tracked` logs ``"<what>: 3/10, 12 s elapsed, about 28 s left"`` on the
``opslens`` logger about every tenth of the work (and at the end), so a run
log or a non-interactive run shows the estimate too. The estimate is the mean
time per item so far times the items left.

Example:
    >>> from opslens.core.recipe import StageContext
    >>> ctx = StageContext(analysis=None, params=None, random_state=0)
    >>> list(tracked(ctx, [1, 2, 3], "demo"))
    [1, 2, 3]
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from typing import TypeVar

from opslens.core.recipe import StageContext

__all__ = ["tracked"]

T = TypeVar("T")
log = logging.getLogger("opslens.recipes.fleet")


def tracked(ctx: StageContext, items: Sequence[T], description: str) -> Iterator[T]:
    """Yield ``items`` through ``ctx.track``; log the progress and the time left every ~10%."""
    total = len(items)
    every = max(1, total // 10)
    start = time.perf_counter()
    for i, item in enumerate(ctx.track(items, description, total), start=1):
        yield item
        if i % every == 0 or i == total:
            spent = time.perf_counter() - start
            left = spent / i * (total - i)
            log.info(
                "%s: %d/%d, %s elapsed, about %s left",
                description,
                i,
                total,
                f"{spent:.0f} s",
                f"{left:.0f} s",
            )
