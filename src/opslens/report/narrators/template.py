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

from opslens.core.narrative import Narrative, Section, Table
from opslens.errors import ConfigError
from opslens.explain.text import fmt
from opslens.recipes import get_recipe

__all__ = ["TemplateNarrator", "generic_narrative"]


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


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
        """The narrative the run's recipe writes, or the generic one."""
        name = str(facts.get("analysis", {}).get("recipe", ""))
        try:
            written = get_recipe(name).narrative(facts, plots)
        except ConfigError:  # a recipe this version does not have
            written = None
        narrative = written if written is not None else generic_narrative(facts, plots)
        return (
            replace(narrative, notes=[*self.notes, *narrative.notes]) if self.notes else narrative
        )
