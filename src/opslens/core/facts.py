"""Facts: every number a report may state, typed per recipe.

A recipe's facts model has one optional section per stage (a ``--stages``
rerun carries the sections it recomputed and the reused ones) plus the
``analysis`` section the runner writes. Unknown keys are errors, so a stage
that starts stating a new number declares it here first; values not yet
typed in detail are ``Any``.

Example:
    >>> class PrepareFacts(FactsModel):
    ...     rows: int
    >>> class ToyFacts(RecipeFacts):
    ...     prepare: PrepareFacts | None = None
    >>> ToyFacts.model_validate({"analysis": {"name": "a", "recipe": "toy", "source": None,
    ...     "run_id": "r1"}, "prepare": {"rows": 3}}).prepare.rows
    3
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["AnalysisFacts", "FactsModel", "RecipeFacts"]


class FactsModel(BaseModel):
    """Strict base of every facts section."""

    model_config = ConfigDict(extra="forbid")


class AnalysisFacts(FactsModel):
    """What was analysed, by which recipe, in which run."""

    name: str
    recipe: str
    source: str | None = None
    run_id: str


class RecipeFacts(FactsModel):
    """The facts of one run; recipes add a section per stage."""

    analysis: AnalysisFacts
