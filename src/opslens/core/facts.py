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

import math

from pydantic import BaseModel, ConfigDict

__all__ = [
    "AnalysisFacts",
    "BaselineScoreFacts",
    "BaselinesFacts",
    "FactsModel",
    "RecipeFacts",
    "ScoreRowsFacts",
]


class FactsModel(BaseModel):
    """Strict base of every facts section."""

    model_config = ConfigDict(extra="forbid")


class AnalysisFacts(FactsModel):
    """What was analysed, by which recipe, in which run."""

    name: str
    recipe: str
    source: str | None = None
    run_id: str


def _pair(a: float, b: float) -> tuple[str, str]:
    """Both figures to three significant digits, with the same decimals (more, up to six,
    where that is needed to show that they differ).

    Example:
        >>> _pair(0.9971, 0.9997), _pair(12.2, 13.5), _pair(0.6, 0.4), _pair(15321.4, 15100.0)
        (('0.997', '1.000'), ('12.2', '13.5'), ('0.6', '0.4'), ('15,321', '15,100'))
    """
    if not (math.isfinite(a) and math.isfinite(b)):
        return str(a), str(b)
    if max(abs(a), abs(b)) >= 1000:
        return f"{a:,.0f}", f"{b:,.0f}"
    short = (f"{a:.3g}", f"{b:.3g}")
    if any("e" in x for x in short):
        return short
    decimals = max(len(x.partition(".")[2]) for x in short)
    while decimals < 6 and f"{a:.{decimals}f}" == f"{b:.{decimals}f}" and a != b:
        decimals += 1
    return f"{a:.{decimals}f}", f"{b:.{decimals}f}"


class BaselineScoreFacts(FactsModel):
    """One metric of the model and of one baseline on the same held-out rows.

    ``interval`` is a 95% interval of (model − baseline) where the recipe computes one
    (paired bootstrap over held-out units), ``p_value`` a paired test where it runs one.
    ``gate``: whether this comparison decides the verdict and the serving alias.
    """

    baseline: str
    label: str
    metric: str
    metric_label: str
    model: float
    value: float
    higher_is_better: bool
    n: int
    unit: str = "held-out rows"
    interval: tuple[float, float] | None = None
    p_value: float | None = None
    gate: bool = True

    @property
    def model_wins(self) -> bool:
        """Whether the model is at least as good as the baseline (ties go to the model)."""
        if not math.isfinite(self.value):
            return True
        if not math.isfinite(self.model):
            return False
        return self.model >= self.value if self.higher_is_better else self.model <= self.value

    def figures(self) -> tuple[str, str]:
        """The model's and the baseline's value, as text with the same decimals (more where
        needed to show that they differ)."""
        return _pair(self.model, self.value)

    def sentence(self) -> str:
        """One plain sentence: who is better, on what, by which figures, on how many rows."""
        model, value = self.figures()
        if self.model_wins:
            return (
                f"the model beats {self.label} on {self.metric_label}: "
                f"{model} against {value} ({self.n} {self.unit})"
            )
        return (
            f"{self.label} is better on {self.metric_label}: "
            f"{value} against {model} ({self.n} {self.unit})"
        )


class BaselinesFacts(FactsModel):
    """The ``baselines`` section of a run's facts: every score and the verdict."""

    scores: list[BaselineScoreFacts]
    model_wins: bool
    losses: list[str]
    verdict: str

    def for_baseline(self, name: str) -> list[BaselineScoreFacts]:
        """The scores of baseline ``name``."""
        return [s for s in self.scores if s.baseline == name]


class ScoreRowsFacts(FactsModel):
    """What a run of the built-in ``score`` pipeline did: rows in, answer rows out."""

    rows_in: int
    answers: int


class RecipeFacts(FactsModel):
    """The facts of one run; recipes add a section per stage. ``baselines`` is written by the
    runner from the scores the stages return (:mod:`opslens.core.baselines`)."""

    analysis: AnalysisFacts
    baselines: BaselinesFacts | None = None
    score_rows: ScoreRowsFacts | None = None
