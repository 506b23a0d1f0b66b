"""The ``report:`` section of project.yaml: which narrator writes the text, and how.

``template`` (the default) writes from the facts alone, offline. ``ollama``,
``gemini`` and ``openai`` (any OpenAI-compatible server: OpenAI, llama.cpp,
vLLM) ask an LLM; every number it writes is checked against the facts. API
keys are read from the environment variable named in ``api_key_env`` when the
report is written, so they never sit in the config, the manifest or MLflow.

Example:
    >>> ReportConfig().narrator, ReportConfig.model_validate({"narrator": "ollama"}).ollama.model
    ('template', 'llama3.1')
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from opslens.config.base import Strict

__all__ = ["GeminiSettings", "OllamaSettings", "OpenAISettings", "ReportConfig"]

NarratorName = Literal["template", "ollama", "gemini", "openai"]


class OllamaSettings(Strict):
    """A local Ollama server."""

    url: str = "http://127.0.0.1:11434"
    model: str = "llama3.1"


class GeminiSettings(Strict):
    """Google Gemini's generateContent API; the key comes from ``api_key_env``."""

    url: str = "https://generativelanguage.googleapis.com/v1beta"
    model: str = "gemini-2.0-flash"
    api_key_env: str = "GEMINI_API_KEY"


class OpenAISettings(Strict):
    """Any OpenAI-compatible chat completions endpoint; a key only if ``api_key_env`` is set."""

    url: str = "http://127.0.0.1:8080/v1"
    model: str = "local-model"
    api_key_env: str = "OPENAI_API_KEY"


class ReportConfig(Strict):
    """How reports are narrated; every knob has a default."""

    narrator: NarratorName = "template"
    ollama: OllamaSettings = Field(default_factory=OllamaSettings)
    gemini: GeminiSettings = Field(default_factory=GeminiSettings)
    openai: OpenAISettings = Field(default_factory=OpenAISettings)
    system_prompt: str | None = None
    prompts: dict[str, str] = Field(default_factory=dict)
    temperature: float = Field(default=0.2, ge=0, le=2)
    max_tokens: int = Field(default=800, ge=16, le=32_000)
    timeout_seconds: float = Field(default=60.0, gt=0)
    retries: int = Field(default=2, ge=0, le=10)
    max_ungrounded_share: float = Field(default=0.2, ge=0, le=1)
