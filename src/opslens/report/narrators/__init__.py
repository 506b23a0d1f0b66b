"""Narrators turn a run's facts into a report's text.

``template`` is offline and deterministic; ``ollama``, ``gemini`` and ``openai``
ask an LLM through :class:`~opslens.report.narrators.llm.LLMNarrator`, which
checks every number against the facts and falls back to the template.
:func:`make_narrator` builds the one project.yaml's ``report:`` section names.

Example:
    >>> from opslens.config import ReportConfig
    >>> type(make_narrator(ReportConfig())).__name__
    'TemplateNarrator'
    >>> import os; os.environ.pop("OPSLENS_NO_SUCH_KEY", None)
    >>> cfg = ReportConfig.model_validate({"gemini": {"api_key_env": "OPSLENS_NO_SUCH_KEY"}})
    >>> make_narrator(cfg, "gemini").notes[0][:60]
    'The gemini narrator could not start (no API key: the environ'
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from opslens.config import ReportConfig
from opslens.core.narrative import Narrator
from opslens.errors import NarratorError
from opslens.report.narrators.template import TemplateNarrator

if TYPE_CHECKING:
    from opslens.report.narrators.base import ChatClient

__all__ = ["TemplateNarrator", "make_narrator"]


def _client(config: ReportConfig, name: str, transport: Any) -> ChatClient:
    common = {"timeout": config.timeout_seconds, "retries": config.retries, "transport": transport}
    if name == "ollama":
        from opslens.report.narrators.ollama import OllamaClient

        return OllamaClient(config.ollama.url, config.ollama.model, **common)
    if name == "gemini":
        from opslens.report.narrators.gemini import GeminiClient

        key = os.environ.get(config.gemini.api_key_env, "")
        if not key:
            raise NarratorError(
                f"no API key: the environment variable {config.gemini.api_key_env} is not set",
                fix=f"export {config.gemini.api_key_env}=... (or set report.gemini.api_key_env)",
            )
        return GeminiClient(key, config.gemini.model, url=config.gemini.url, **common)
    from opslens.report.narrators.openai import OpenAIClient

    openai_key = os.environ.get(config.openai.api_key_env) or None
    return OpenAIClient(config.openai.url, config.openai.model, api_key=openai_key, **common)


def make_narrator(
    config: ReportConfig, name: str | None = None, *, transport: Any = None
) -> Narrator:
    """The narrator ``name`` (default: ``config.narrator``); the template one, with a note, if
    an LLM narrator cannot even start (no API key)."""
    chosen = name or config.narrator
    if chosen == "template":
        return TemplateNarrator()
    from opslens.report.narrators.llm import LLMNarrator

    try:
        client = _client(config, chosen, transport)
    except NarratorError as e:
        return TemplateNarrator(
            notes=[
                f"The {chosen} narrator could not start ({e.problem}); the template narrative is shown."
            ]
        )
    model = getattr(config, chosen).model
    return LLMNarrator(
        client,
        system_prompt=config.system_prompt,
        prompts=config.prompts,
        temperature=config.temperature,
        max_tokens=config.max_tokens,
        max_ungrounded_share=config.max_ungrounded_share,
        model=model,
    )
