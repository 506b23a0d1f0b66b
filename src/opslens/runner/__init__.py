"""Executes a recipe's pipeline into an atomic run folder (see :mod:`opslens.runner.run`).

The names load lazily, so the CLI can install its signal handlers
(:mod:`opslens.runner.interrupts`) before the heavy imports.

Example:
    >>> from opslens.runner import run_analysis
    >>> callable(run_analysis)
    True
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opslens.runner.run import RunResult, load_input, make_tracker, run_analysis

__all__ = ["RunResult", "load_input", "make_tracker", "run_analysis"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(import_module("opslens.runner.run"), name)
    raise AttributeError(f"module 'opslens.runner' has no attribute {name!r}")
