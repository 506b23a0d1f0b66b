"""Executes a recipe's pipeline into an atomic run folder (see :mod:`opslens.runner.run`).

Example:
    >>> from opslens.runner import run_analysis
    >>> callable(run_analysis)
    True
"""

from opslens.runner.run import RunResult, load_input, make_tracker, run_analysis

__all__ = ["RunResult", "load_input", "make_tracker", "run_analysis"]
