"""Executes a recipe's pipeline into an atomic run folder (see :mod:`opslens.runner.run`), or in
memory for the app (:func:`run_in_memory`, see :mod:`opslens.runner.memory`).

The names load lazily, so the CLI can install its signal handlers
(:mod:`opslens.runner.interrupts`) before the heavy imports.

Example:
    >>> from opslens.runner import run_analysis, run_in_memory
    >>> callable(run_analysis), callable(run_in_memory)
    (True, True)
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opslens.runner.memory import MemoryRun, run_in_memory
    from opslens.runner.promotion import Promotion
    from opslens.runner.run import RunResult, load_input, make_tracker, run_analysis

__all__ = [
    "MemoryRun",
    "Promotion",
    "RunResult",
    "load_input",
    "make_tracker",
    "run_analysis",
    "run_in_memory",
]

_WHERE = {
    "MemoryRun": "opslens.runner.memory",
    "run_in_memory": "opslens.runner.memory",
    "Promotion": "opslens.runner.promotion",
}


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(import_module(_WHERE.get(name, "opslens.runner.run")), name)
    raise AttributeError(f"module 'opslens.runner' has no attribute {name!r}")
