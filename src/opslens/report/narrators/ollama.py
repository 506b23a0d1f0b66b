"""Ollama's chat API (``POST /api/chat``, not streamed) as a :class:`ChatClient`.

The request is ``{"model", "messages": [system, user], "stream": false,
"options": {"temperature", "num_predict"}}``; the answer is ``message.content``.
``done_reason == "length"`` (cut off at ``num_predict``) and an empty answer are
NarratorErrors, as are Ollama's ``{"error": "..."}`` answers.

Example:
    >>> import httpx
    >>> def ollama(request):
    ...     return httpx.Response(200, json={"model": "llama3.1", "done": True, "done_reason": "stop",
    ...                                      "message": {"role": "assistant", "content": "All good."}})
    >>> client = OllamaClient(transport=httpx.MockTransport(ollama))
    >>> client.complete("You write reports.", "Summarise: 3 anomalies.")
    'All good.'
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from opslens.config.secrets import mask_secrets
from opslens.errors import NarratorError
from opslens.report.narrators.http import JsonPoster, chat_messages, cut_off

__all__ = ["OllamaClient"]


class OllamaClient:
    """Chat completions from an Ollama server (local by default); no API key."""

    name: str = "ollama"

    def __init__(
        self,
        url: str = "http://127.0.0.1:11434",
        model: str = "llama3.1",
        *,
        timeout: float = 60.0,
        retries: int = 2,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url.rstrip("/")
        self.model = model
        self._post = JsonPoster(
            self.name,
            timeout=timeout,
            retries=retries,
            transport=transport,
            sleep=sleep,
            serve_hint="start Ollama (`ollama serve`)",
            model=model,
        )

    def __repr__(self) -> str:
        return f"OllamaClient(url={mask_secrets(self.url)!r}, model={self.model!r})"

    def complete(
        self, system: str, user: str, *, temperature: float = 0.2, max_tokens: int = 800
    ) -> str:
        """The model's answer; NarratorError on any failure, a truncated or an empty answer."""
        url = f"{self.url}/api/chat"
        body = {
            "model": self.model,
            "messages": chat_messages(system, user),
            "stream": False,
            "options": {"temperature": temperature, "num_predict": max_tokens},
        }
        data: Any = self._post(url, body)
        message = data.get("message") if isinstance(data, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(data, dict) and data.get("done_reason") == "length":
            raise cut_off("ollama", url, max_tokens, "done_reason 'length'")
        if not isinstance(content, str) or not content.strip():
            raise NarratorError(
                f"ollama model '{self.model}' gave an empty answer at {url}",
                fix=f"check the model works (`ollama run {self.model}`) or use another model",
            )
        return content.strip()
