"""Google's Gemini API (``POST /models/{model}:generateContent``) as a :class:`ChatClient`.

The key travels in the ``x-goog-api-key`` header, never in the URL. The request
is ``{"systemInstruction", "contents": [user], "generationConfig": {"temperature",
"maxOutputTokens"}}``; the answer is the text of ``candidates[0].content.parts``.
``finishReason == "MAX_TOKENS"``, a blocked prompt (``promptFeedback.blockReason``),
no candidates and an empty answer are NarratorErrors, as are Gemini's
``{"error": {"code", "message", "status"}}`` answers.

Example:
    >>> import httpx
    >>> def gemini(request):
    ...     return httpx.Response(200, json={"candidates": [{"finishReason": "STOP",
    ...         "content": {"role": "model", "parts": [{"text": "All "}, {"text": "good."}]}}]})
    >>> client = GeminiClient("my-key-123", transport=httpx.MockTransport(gemini))
    >>> client.complete("You write reports.", "Summarise: 3 anomalies.")
    'All good.'
    >>> client
    GeminiClient(model='gemini-2.0-flash', url='https://generativelanguage.googleapis.com/v1beta')
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from opslens.config.secrets import mask_secrets
from opslens.errors import NarratorError
from opslens.report.narrators.http import JsonPoster, cut_off

__all__ = ["KEY_ENV", "GeminiClient"]

KEY_ENV = "GEMINI_API_KEY"


class GeminiClient:
    """Chat completions from the Gemini API; needs an API key (from ``GEMINI_API_KEY``)."""

    name: str = "gemini"

    def __init__(
        self,
        api_key: str | None,
        model: str = "gemini-2.0-flash",
        *,
        url: str = "https://generativelanguage.googleapis.com/v1beta",
        timeout: float = 60.0,
        retries: int = 2,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not api_key or not api_key.strip():
            raise NarratorError(
                "the gemini narrator needs an API key and none was given",
                fix=f"set {KEY_ENV} (or the variable report.gemini.api_key_env names) to a key "
                "from https://aistudio.google.com/apikey",
            )
        self._api_key = api_key.strip()
        self.model = model.removeprefix("models/")
        self.url = url.rstrip("/")
        self._post = JsonPoster(
            self.name,
            timeout=timeout,
            retries=retries,
            transport=transport,
            sleep=sleep,
            key_env=KEY_ENV,
            serve_hint="check the network connection to the Gemini API",
            model=self.model,
        )

    def __repr__(self) -> str:
        return f"GeminiClient(model={self.model!r}, url={mask_secrets(self.url)!r})"

    def complete(
        self, system: str, user: str, *, temperature: float = 0.2, max_tokens: int = 800
    ) -> str:
        """The model's answer; NarratorError on any failure, a truncated, blocked or empty answer."""
        url = f"{self.url}/models/{self.model}:generateContent"
        body = {
            "systemInstruction": {"parts": [{"text": system}]},
            "contents": [{"role": "user", "parts": [{"text": user}]}],
            "generationConfig": {"temperature": temperature, "maxOutputTokens": max_tokens},
        }
        data: Any = self._post(
            url, body, headers={"x-goog-api-key": self._api_key}, secrets=[self._api_key]
        )
        data = data if isinstance(data, dict) else {}
        candidates = data.get("candidates") or []
        first = candidates[0] if isinstance(candidates, list) and candidates else None
        if not isinstance(first, dict):
            feedback = data.get("promptFeedback") or {}
            reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
            why = f"the prompt was blocked ({reason})" if reason else "it returned no candidates"
            raise NarratorError(
                f"gemini model '{self.model}' gave no answer at {url}: {why}",
                fix="rephrase the report's prompt or use another narrator",
            )
        reason = first.get("finishReason")
        content = first.get("content") or {}
        parts = content.get("parts") if isinstance(content, dict) else None
        text = "".join(
            str(p.get("text") or "")
            for p in (parts if isinstance(parts, list) else [])
            if isinstance(p, dict) and not p.get("thought")
        )
        if reason == "MAX_TOKENS":
            raise cut_off("gemini", url, max_tokens, "finishReason 'MAX_TOKENS'")
        if reason not in (None, "STOP", "FINISH_REASON_UNSPECIFIED"):
            raise NarratorError(
                f"gemini model '{self.model}' stopped answering at {url} (finishReason '{reason}')",
                fix="rephrase the report's prompt or use another narrator",
            )
        if not text.strip():
            raise NarratorError(
                f"gemini model '{self.model}' gave an empty answer at {url}",
                fix="retry, or use another model",
            )
        return text.strip()
