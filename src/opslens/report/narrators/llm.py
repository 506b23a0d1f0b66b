"""The LLM narrator: an LLM rewrites the template narrative in plain language, numbers checked.

It starts from the template narrative (its sections, tables and plots stay),
asks the model for the summary and for each section's paragraphs with the
run's facts in the prompt, then checks every number the model wrote against
the facts (:mod:`opslens.report.grounding`). Sentences with a number found in
no fact are marked in the report; when their share among the sentences that
state numbers passes ``max_ungrounded_share``, or the model cannot be reached or
answers badly, the template narrative is shown instead with a note saying why.
The report is never lost to the LLM.

Example:
    >>> class Echo:
    ...     name = "echo"
    ...     def complete(self, system, user, *, temperature=0.2, max_tokens=800):
    ...         return "Three patterns were found."
    >>> facts = {"analysis": {"name": "x", "recipe": "unknown", "run_id": "r"}, "fit": {"k": 3}}
    >>> n = LLMNarrator(Echo()).narrate(facts, [])
    >>> n.narrator, n.summary
    ('echo', 'Three patterns were found.')
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from opslens.core.narrative import Narrative
from opslens.errors import ConfigError, NarratorError, RunError
from opslens.explain.text import plural
from opslens.recipes import get_recipe
from opslens.report.facts import facts_recipe
from opslens.report.grounding import check
from opslens.report.narrators.base import ChatClient
from opslens.report.narrators.template import TemplateNarrator

__all__ = ["DEFAULT_PROMPTS", "LLMNarrator"]

log = logging.getLogger("opslens.report")

DEFAULT_PROMPTS = {
    "system": (
        "You write the text of an analytics report for data scientists and their managers. "
        "Write plain, precise English. Use only numbers that appear in the FACTS, written as they "
        "appear there or rounded; never compute, estimate or invent a number. Do not use Markdown, "
        "lists or headings: answer with prose paragraphs only."
    ),
    "summary": "Write a summary of two or three sentences: what was analysed and the main result.",
    "section": (
        "Rewrite the DRAFT of the report section '{title}' as one or two short paragraphs that a "
        "manager understands; keep every number of the draft that matters and add none."
    ),
}
_FACTS_LIMIT = 24_000  # characters of facts JSON put in a prompt


def _prompts(facts: Mapping[str, Any], overrides: Mapping[str, str]) -> dict[str, str]:
    try:
        defaults = dict(get_recipe(facts_recipe(facts)).prompts)
    except (ConfigError, RunError):  # a recipe this version does not have, or none named
        defaults = {}
    return {**DEFAULT_PROMPTS, **defaults, **overrides}


def _facts_text(facts: Mapping[str, Any]) -> str:
    text = json.dumps(facts, default=str, separators=(",", ":"))
    return text if len(text) <= _FACTS_LIMIT else text[:_FACTS_LIMIT] + " ...(cut)"


class LLMNarrator:
    """Narrate with ``client`` (Ollama, Gemini, OpenAI-compatible); template narrative as fallback."""

    def __init__(
        self,
        client: ChatClient,
        *,
        system_prompt: str | None = None,
        prompts: Mapping[str, str] | None = None,
        temperature: float = 0.2,
        max_tokens: int = 800,
        max_ungrounded_share: float = 0.2,
        model: str = "",
    ) -> None:
        self.client = client
        self.system_prompt = system_prompt
        self.prompts = dict(prompts or {})
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.max_ungrounded_share = max_ungrounded_share
        self.model = model

    @property
    def name(self) -> str:
        """The provider's name, with the model when known (``ollama (llama3.1)``)."""
        return f"{self.client.name} ({self.model})" if self.model else self.client.name

    def _ask(self, system: str, instruction: str, draft: str, facts: str) -> str:
        user = f"{instruction}\n\nFACTS (JSON):\n{facts}\n\nDRAFT:\n{draft}"
        answer = self.client.complete(
            system, user, temperature=self.temperature, max_tokens=self.max_tokens
        )
        return " ".join(answer.split())

    def narrate(self, facts: dict[str, Any], plots: list[str]) -> Narrative:
        """The LLM's narrative if it holds to the facts; otherwise the template one, saying why.

        The template narrative comes first: it reads the facts through the recipe's typed
        model, so a facts file the model rejects is a RunError before any model is asked."""
        base = TemplateNarrator().narrate(facts, plots)
        prompts = _prompts(facts, self.prompts)
        system = self.system_prompt or prompts["system"]
        facts_text = _facts_text(facts)
        try:
            summary = self._ask(system, prompts["summary"], base.summary, facts_text)
            sections = []
            for s in base.sections:
                if not s.paragraphs:
                    sections.append(s)
                    continue
                instruction = prompts.get(s.title) or prompts["section"].format(title=s.title)
                text = self._ask(system, instruction, "\n".join(s.paragraphs), facts_text)
                sections.append(replace(s, paragraphs=[text]))
        except NarratorError as e:
            log.warning("the %s narrator failed: %s", self.client.name, e)
            return replace(
                base,
                notes=[
                    f"The {self.name} narrator failed ({e.problem}); the template narrative is shown."
                ],
            )
        written = [summary, *(p for s in sections for p in s.paragraphs)]
        grounding = check("\n".join(written), facts)
        flagged = [sentence for sentence, _numbers in grounding.ungrounded]
        if grounding.share > self.max_ungrounded_share:
            log.warning(
                "the %s narrative stated numbers not in the facts in %.0f%% of its sentences",
                self.client.name,
                100 * grounding.share,
            )
            return replace(
                base,
                notes=[
                    f"The {self.name} narrative stated numbers found in no fact in "
                    f"{plural(len(flagged), 'sentence')} ({grounding.share:.0%} of those with "
                    f"numbers, above the {self.max_ungrounded_share:.0%} allowed by "
                    "report.max_ungrounded_share); the template narrative is shown instead."
                ],
            )
        note = f"Written by {self.name}; every number was checked against the facts" + (
            f": {plural(len(flagged), 'sentence')} with a number found in no fact are marked."
            if flagged
            else "."
        )
        return Narrative(
            title=base.title,
            summary=summary,
            sections=sections,
            narrator=self.name,
            notes=[note],
            ungrounded=flagged,
        )
