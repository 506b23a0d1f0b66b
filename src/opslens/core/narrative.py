"""The shape of a report's text: sections of paragraphs, bullets, plots and small tables.

Example:
    >>> s = Section(title="Model quality", paragraphs=["Accuracy 0.95."])
    >>> Narrative(title="eta", summary="3 patterns.", sections=[s]).sections[0].title
    'Model quality'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["CheckedSentence", "Narrative", "Narrator", "Section", "Table"]


@dataclass(frozen=True)
class Table:
    """A small table to show as HTML."""

    columns: list[str]
    rows: list[list[Any]]


@dataclass(frozen=True)
class Section:
    """One part of the report."""

    title: str
    paragraphs: list[str] = field(default_factory=list)
    bullets: list[str] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)
    table: Table | None = None


@dataclass
class CheckedSentence:
    """One sentence an LLM wrote, the fact keys it cites, what was checked against them and
    what failed (no ``problems``: grounded); see :mod:`opslens.report.claims`."""

    text: str
    cites: list[str]
    checked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def grounded(self) -> bool:
        """No problem found."""
        return not self.problems


@dataclass(frozen=True)
class Narrative:
    """The whole text of a report: a title, a one-paragraph summary and sections.

    ``narrator`` names who wrote it; ``notes`` say what a reader should know about how
    (a fallback, a check); ``ungrounded`` lists the sentences whose numbers are not what
    the facts they cite say, and ``checks`` what was checked in each sentence.
    """

    title: str
    summary: str
    sections: list[Section]
    narrator: str = "template"
    notes: list[str] = field(default_factory=list)
    ungrounded: list[str] = field(default_factory=list)
    checks: list[CheckedSentence] = field(default_factory=list)


class Narrator(Protocol):
    """Turns a run's facts into a narrative (template here; LLM narrators plug in the same way)."""

    def narrate(self, facts: dict[str, Any], plots: list[str]) -> Narrative:
        """Write the narrative for ``facts``; ``plots`` names the figures available."""
