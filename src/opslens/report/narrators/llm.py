"""The LLM narrator: an LLM rewrites the template narrative in plain language, every claim checked.

It starts from the template narrative (its sections, tables and plots stay),
gives the model the run's facts as named quantities (``choose_k.k = 3``) and asks
for the summary and each section as sentences that cite the quantities they state
(``{"sentences": [{"text": ..., "cites": [...]}]}``, or ``{key}`` placeholders that
opslens fills in). Each number a sentence writes is then held to the quantities
it cites, in value, unit, base and direction of comparison
(:mod:`opslens.report.claims`); a sentence that states a number and cites nothing
is ungrounded. Ungrounded sentences are marked in the report, which lists what was
checked in each sentence; when their share among the sentences that state or cite
figures passes ``max_ungrounded_share``, or the model cannot be reached or answers
badly, the template narrative is shown instead with a note saying why. The report
is never lost to the LLM.

Example:
    >>> class Echo:
    ...     name = "echo"
    ...     def complete(self, system, user, *, temperature=0.2, max_tokens=800):
    ...         return '{"sentences": [{"text": "{fit.k} patterns were found.", "cites": []}]}'
    >>> facts = {"analysis": {"name": "x", "recipe": "unknown", "run_id": "r"}, "fit": {"k": 3}}
    >>> n = LLMNarrator(Echo()).narrate(facts, [])
    >>> n.narrator, n.summary, n.checks[0].checked
    ('echo', '3 patterns were found.', ["'3' = fit.k (3)"])
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from opslens.core.narrative import CheckedSentence, Narrative
from opslens.errors import ConfigError, NarratorError, RunError
from opslens.explain.text import plural
from opslens.recipes import get_recipe
from opslens.report.claims import Quantity, check_sentence, prompt_lines, quantities, read_sentences
from opslens.report.facts import facts_recipe
from opslens.report.narrators.base import ChatClient
from opslens.report.narrators.template import TemplateNarrator

__all__ = ["DEFAULT_PROMPTS", "LLMNarrator"]

log = logging.getLogger("opslens.report")

DEFAULT_PROMPTS = {
    "system": (
        "You write the text of an analytics report for data scientists and their managers. "
        "Write plain, precise English. State only figures from the QUANTITIES, and cite the "
        "quantity of every figure you state; never compute, estimate or invent a number. Do not "
        "use Markdown, lists or headings."
    ),
    "summary": "Write a summary of two or three sentences: what was analysed and the main result.",
    "section": (
        "Rewrite the DRAFT of the report section '{title}' in a few short sentences that a "
        "manager understands; keep every figure of the draft that matters and add none."
    ),
}
#: how every answer must be shaped, whatever the prompts say (it is what the check reads)
ANSWER_FORMAT = (
    'Answer with JSON only: {"sentences": [{"text": "...", "cites": ["key", ...]}, ...]}. '
    "Each sentence cites the keys of the QUANTITIES whose figures it states. Instead of "
    "writing a figure you may write its key in braces, e.g. {choose_k.k}: it is replaced by "
    "the figure as the report shows it (units included)."
)
_FACTS_LIMIT = 24_000  # characters of quantities put in a prompt


def _prompts(facts: Mapping[str, Any], overrides: Mapping[str, str]) -> dict[str, str]:
    try:
        defaults = dict(get_recipe(facts_recipe(facts)).prompts)
    except (ConfigError, RunError):  # a recipe this version does not have, or none named
        defaults = {}
    return {**DEFAULT_PROMPTS, **defaults, **overrides}


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

    def _ask(self, system: str, instruction: str, draft: str, known: str) -> str:
        user = f"{instruction}\n\n{ANSWER_FORMAT}\n\nQUANTITIES:\n{known}\n\nDRAFT:\n{draft}"
        return self.client.complete(
            system, user, temperature=self.temperature, max_tokens=self.max_tokens
        )

    def narrate(self, facts: dict[str, Any], plots: list[str]) -> Narrative:
        """The LLM's narrative if it holds to the facts; otherwise the template one, saying why.

        The template narrative comes first: it reads the facts through the recipe's typed
        model, so a facts file the model rejects is a RunError before any model is asked."""
        base = TemplateNarrator().narrate(facts, plots)
        prompts = _prompts(facts, self.prompts)
        system = self.system_prompt or prompts["system"]
        known = quantities(facts)
        shown = prompt_lines(known, _FACTS_LIMIT)
        checks: list[CheckedSentence] = []
        try:
            summary = _checked(self._ask(system, prompts["summary"], base.summary, shown), known)
            checks += summary
            sections = []
            for s in base.sections:
                if not s.paragraphs:
                    sections.append(s)
                    continue
                instruction = prompts.get(s.title) or prompts["section"].format(title=s.title)
                written = _checked(
                    self._ask(system, instruction, "\n".join(s.paragraphs), shown), known
                )
                checks += written
                sections.append(replace(s, paragraphs=[" ".join(c.text for c in written)]))
        except NarratorError as e:
            log.warning("the %s narrator failed: %s", self.client.name, e)
            return replace(
                base,
                notes=[
                    f"The {self.name} narrator failed ({e.problem}); the template narrative is shown."
                ],
            )
        flagged = [c.text for c in checks if not c.grounded]
        figured = sum(1 for c in checks if c.cites or c.checked or c.problems)
        share = len(flagged) / figured if figured else 0.0
        if share > self.max_ungrounded_share:
            log.warning(
                "the %s narrative misstated or did not cite its figures in %.0f%% of its sentences",
                self.client.name,
                100 * share,
            )
            return replace(
                base,
                notes=[
                    f"The {self.name} narrative misstated or did not cite its figures in "
                    f"{plural(len(flagged), 'sentence')} ({share:.0%} of those with figures, "
                    f"above the {self.max_ungrounded_share:.0%} allowed by "
                    "report.max_ungrounded_share); the template narrative is shown instead."
                ],
                checks=checks,
            )
        note = (
            f"Written by {self.name}; each figure was checked against the facts its sentence "
            "cites (value, unit, base and direction)"
        ) + (
            f": {plural(len(flagged), 'sentence')} that did not hold are marked."
            if flagged
            else "."
        )
        return Narrative(
            title=base.title,
            summary=" ".join(c.text for c in summary),
            sections=sections,
            narrator=self.name,
            notes=[note],
            ungrounded=flagged,
            checks=checks,
        )


def _checked(answer: str, known: dict[str, Quantity]) -> list[CheckedSentence]:
    """The sentences of one answer, each checked against the quantities it cites; an answer
    with no sentence is a NarratorError."""
    checked = [check_sentence(text, cites, known) for text, cites in read_sentences(answer)]
    if not checked:
        raise NarratorError("the model's answer held no sentence", fix="use another model")
    return checked
