"""The template narrator: plain-language reports from facts alone, no LLM needed.

Each recipe writes its own narrative (``Recipe.narrative``); every number it
states comes from facts.json. A recipe without one (or a run of a recipe this
version does not know) gets a generic narrative: one section per stage,
listing the facts it recorded.

Example:
    >>> facts = {"analysis": {"name": "x", "recipe": "unknown-recipe", "run_id": "r"},
    ...          "train": {"rows": 1200, "rmse": 0.53}}
    >>> n = TemplateNarrator().narrate(facts, [])
    >>> n.title, n.sections[0].title, n.sections[0].table.rows
    ('x: unknown-recipe analysis', 'train', [['rows', '1,200'], ['rmse', '0.53']])
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from opslens.core.facts import BaselinesFacts
from opslens.core.narrative import Narrative, Section, Table
from opslens.errors import ConfigError
from opslens.explain.text import fmt
from opslens.recipes import get_recipe

__all__ = ["TemplateNarrator", "baselines_section", "generic_narrative"]


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def baselines_section(baselines: BaselinesFacts) -> Section:
    """The model against the recipe's baselines on held-out data: the verdict, then a table.

    Example:
        >>> from opslens.core.baselines import BaselineScore, summarise
        >>> b = summarise([BaselineScore(baseline="g", label="one global model", metric="rmse",
        ...     metric_label="RMSE", model=2.0, value=1.5, higher_is_better=False, n=90)])
        >>> s = baselines_section(b)
        >>> s.paragraphs[0]
        'The model does not beat every baseline: one global model is better on RMSE: 1.5 against 2.0 (90 held-out rows).'
        >>> s.table.rows[0][:4]
        ['one global model', 'RMSE', '2', '1.5']
    """
    lead = (
        "The model beats every baseline"
        if baselines.model_wins
        else ("The model does not beat every baseline")
    )
    rows = [
        [
            s.label,
            s.metric_label,
            fmt(s.model),
            fmt(s.value),
            "model" if s.model_wins else "baseline",
            "" if s.interval is None else f"{fmt(s.interval[0])} to {fmt(s.interval[1])}",
            str(s.n),
        ]
        for s in baselines.scores
    ]
    return Section(
        title="Against the baselines",
        paragraphs=[f"{lead}: {baselines.verdict}."],
        table=Table(
            columns=[
                "baseline",
                "metric",
                "model",
                "baseline value",
                "better",
                "95% interval of model − baseline",
                "n",
            ],
            rows=rows,
        ),
    )


def generic_narrative(facts: dict[str, Any], plots: list[str]) -> Narrative:
    """A section per stage with its scalar facts as a table; every plot shown once."""
    a = facts.get("analysis", {})
    sections = []
    for stage, values in facts.items():
        if stage == "analysis" or not isinstance(values, dict):
            continue
        rows = [[k, fmt(v)] for k, v in values.items() if _scalar(v)]
        sections.append(
            Section(
                title=stage,
                table=Table(columns=["fact", "value"], rows=rows) if rows else None,
                plots=[p for p in plots if p.startswith(stage)],
            )
        )
    shown = {p for s in sections for p in s.plots}
    rest = [p for p in plots if p not in shown]
    if rest:
        sections.append(Section(title="Figures", plots=rest))
    recipe = a.get("recipe", "unknown")
    return Narrative(
        title=f"{a.get('name', 'analysis')}: {recipe} analysis",
        summary=f"Facts of run {a.get('run_id', '?')} of the {recipe} recipe from "
        f"{a.get('source') or 'its source'}.",
        sections=sections,
    )


class TemplateNarrator:
    """Writes the report from templates; offline and deterministic. ``notes`` are shown on top."""

    name = "template"

    def __init__(self, notes: list[str] | None = None) -> None:
        self.notes = list(notes or [])

    def narrate(self, facts: dict[str, Any], plots: list[str]) -> Narrative:
        """The narrative the run's recipe writes from its typed facts (a facts file its model
        rejects is a RunError naming the field), or the generic one; the baselines first."""
        name = str(facts.get("analysis", {}).get("recipe", ""))
        try:
            recipe = get_recipe(name)
        except ConfigError:  # a recipe this version does not have
            recipe = None
        written = None
        if recipe is not None:
            typed = recipe.read_facts(facts)
            written = recipe.narrative(typed, plots)
            if written is not None and typed.baselines is not None:
                written = replace(
                    written, sections=[baselines_section(typed.baselines), *written.sections]
                )
        narrative = written if written is not None else generic_narrative(facts, plots)
        return (
            replace(narrative, notes=[*self.notes, *narrative.notes]) if self.notes else narrative
        )
