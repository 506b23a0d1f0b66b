"""The shape of a report's text: sections of paragraphs, bullets, plots and small tables.

Example:
    >>> s = Section(title="Model quality", paragraphs=["Accuracy 0.95."])
    >>> Narrative(title="eta", summary="3 patterns.", sections=[s]).sections[0].title
    'Model quality'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["Narrative", "Narrator", "Section", "Table", "fmt"]


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


@dataclass(frozen=True)
class Narrative:
    """The whole text of a report: a title, a one-paragraph summary and sections."""

    title: str
    summary: str
    sections: list[Section]


class Narrator(Protocol):
    """Turns a run's facts into a narrative (template here; LLM narrators plug in the same way)."""

    def narrate(self, facts: dict[str, Any], plots: list[str]) -> Narrative:
        """Write the narrative for ``facts``; ``plots`` names the figures available."""


def fmt(value: Any, digits: int = 3) -> str:
    """A number as a person reads it.

    Example:
        >>> fmt(0.912345), fmt(12000), fmt(None), fmt(3e-7)
        ('0.912', '12,000', 'n/a', '3e-07')
    """
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:
            return "n/a"
        if value != 0 and abs(value) < 1e-3:
            return f"{value:.0e}"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}g}"
    return str(value)
