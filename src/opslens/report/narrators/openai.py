"""Any OpenAI-compatible chat API (OpenAI, llama.cpp server, vLLM) as a :class:`ChatClient`.

``POST {url}/chat/completions`` with ``{"model", "messages", "temperature",
"max_tokens"}``; ``Authorization: Bearer <key>`` only when a key is given. The
answer is ``choices[0].message.content``; ``finish_reason == "length"``, a
content filter stop and an empty answer are NarratorErrors, as are the
``{"error": {"message", "type", "code"}}`` answers.

Example:
    >>> import httpx
    >>> def server(request):
    ...     return httpx.Response(200, json={"object": "chat.completion", "choices": [{"index": 0,
    ...         "finish_reason": "stop", "message": {"role": "assistant", "content": "All good."}}]})
    >>> client = OpenAIClient(api_key="sk-abc123", transport=httpx.MockTransport(server))
    >>> client.complete("You write reports.", "Summarise: 3 anomalies.")
    'All good.'
    >>> client
    OpenAIClient(url='http://127.0.0.1:8080/v1', model='local-model', api_key=***)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from opslens.config.secrets import mask_secrets
from opslens.errors import NarratorError
from opslens.report.narrators.http import JsonPoster, chat_messages, cut_off

__all__ = ["KEY_ENV", "OpenAIClient"]

KEY_ENV = "OPENAI_API_KEY"


class OpenAIClient:
    """Chat completions from an OpenAI-compatible server; the API key is optional."""

    name: str = "openai"

    def __init__(
        self,
        url: str = "http://127.0.0.1:8080/v1",
        model: str = "local-model",
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        retries: int = 2,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url.rstrip("/")
        self.model = model
        self._api_key = api_key.strip() if api_key and api_key.strip() else None
        self._post = JsonPoster(
            self.name,
            timeout=timeout,
            retries=retries,
            transport=transport,
            sleep=sleep,
            key_env=KEY_ENV,
            serve_hint="start the server (e.g. llama.cpp's `llama-server`, or vLLM)",
            model=model,
        )

    def __repr__(self) -> str:
        key = "***" if self._api_key else "None"
        return f"OpenAIClient(url={mask_secrets(self.url)!r}, model={self.model!r}, api_key={key})"

    def complete(
        self, system: str, user: str, *, temperature: float = 0.2, max_tokens: int = 800
    ) -> str:
        """The model's answer; NarratorError on any failure, a truncated or an empty answer."""
        url = f"{self.url}/chat/completions"
        body = {
            "model": self.model,
            "messages": chat_messages(system, user),
            "temperature": temperature,
            "max_tokens": max_tokens,
        }
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        secrets = [self._api_key] if self._api_key else []
        data: Any = self._post(url, body, headers=headers, secrets=secrets)
        choices = data.get("choices") if isinstance(data, dict) else None
        first = choices[0] if isinstance(choices, list) and choices else None
        message = first.get("message") if isinstance(first, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        reason = first.get("finish_reason") if isinstance(first, dict) else None
        if reason == "length":
            raise cut_off("openai", url, max_tokens, "finish_reason 'length'")
        if reason == "content_filter":
            raise NarratorError(
                f"openai model '{self.model}' stopped answering at {url} (finish_reason "
                "'content_filter')",
                fix="rephrase the report's prompt or use another narrator",
            )
        if not isinstance(content, str) or not content.strip():
            raise NarratorError(
                f"openai model '{self.model}' gave an empty answer at {url}",
                fix="check the model is loaded on the server, or use another model",
            )
        return content.strip()
