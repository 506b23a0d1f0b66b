"""A loopback HTTP server speaking the chat APIs of Ollama, Gemini and OpenAI-compatible servers.

The LLM narrators' clients are tested over real HTTP against this server. It
answers, with each provider's documented shapes:

- ``POST /api/chat`` (Ollama): ``{"model", "created_at", "message": {"role":
  "assistant", "content"}, "done": true, "done_reason": "stop"|"length", ...}``;
  errors ``{"error": "..."}``;
- ``POST /v1beta/models/<model>:generateContent`` (Gemini; key in ``x-goog-api-key``):
  ``{"candidates": [{"content": {"role": "model", "parts": [{"text"}, ...]},
  "finishReason": "STOP"|"MAX_TOKENS", "index": 0}], "usageMetadata", "modelVersion"}``,
  or ``{"promptFeedback": {"blockReason": "SAFETY"}}``; errors ``{"error": {"code",
  "message", "status"}}``;
- ``POST /v1/chat/completions`` (OpenAI; key in ``Authorization: Bearer``):
  ``{"id", "object": "chat.completion", "created", "model", "choices": [{"index": 0,
  "message": {"role": "assistant", "content"}, "finish_reason": "stop"|"length"}],
  "usage"}``; errors ``{"error": {"message", "type", "param", "code"}}``.

:meth:`LlmServers.fail_next` makes the next N requests answer with a fault:
``"401"``, ``"429"`` (with ``Retry-After: 1``), ``"500"``, ``"slow"`` (wait
``delay`` seconds first), ``"empty"``, ``"truncated"`` or ``"blocked"``. When
``api_key`` is set, a request without it in the provider's header gets a 401
whose message echoes the key it received (worse than the real providers, so
tests can check the clients mask it). Every request is recorded.

Bounded: it binds 127.0.0.1 only, and stops at context exit (or interpreter
exit, if a test forgets); a ``slow`` answer's wait ends when the server stops.

Example:
    >>> with LlmServers() as llm:
    ...     llm.url.startswith("http://127.0.0.1:"), llm.requests
    (True, [])
"""

from __future__ import annotations

import collections
import dataclasses
import json
import re
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.fakes.loopback import JsonLoopback

__all__ = ["FAULTS", "LlmServers", "Recorded"]

FAULTS = ("401", "429", "500", "slow", "empty", "truncated", "blocked")
GEMINI_PATH = re.compile(r"^/v1beta/models/(?P<model>[^/:]+):generateContent$")


@dataclass(frozen=True)
class Recorded:
    """One request received: which provider's endpoint, its path, query, headers and JSON body.

    ``status`` is 0 until the answer is sent.
    """

    provider: str
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    status: int = 0
    fault: str | None = None


class LlmServers(JsonLoopback):
    """Ollama, Gemini and OpenAI-compatible endpoints on one ``127.0.0.1`` port, for tests.

    ``answer`` is the canned text every successful request gets (Gemini's comes
    in two parts); ``models`` (when given) are the only known models, others get
    a 404; ``delay`` is how long a ``"slow"`` fault waits.

    Example:
        >>> with LlmServers(answer="hi") as llm:
        ...     llm.fail_next("429", times=2)
        ...     list(llm.faults)
        ['429', '429']
    """

    def __init__(
        self,
        *,
        answer: str = "Three anomalies, all on route 7.",
        api_key: str | None = None,
        models: set[str] | None = None,
        delay: float = 1.0,
    ) -> None:
        super().__init__()
        self.answer = answer
        self.api_key = api_key
        self.models = models
        self.delay = delay
        self.requests: list[Recorded] = []
        self.faults: collections.deque[str] = collections.deque()
        self._lock = threading.Lock()

    # ---- control ---------------------------------------------------------------------------
    def fail_next(self, fault: str, times: int = 1) -> None:
        """Answer the next ``times`` requests with ``fault`` (one of :data:`FAULTS`)."""
        assert fault in FAULTS, f"unknown fault {fault!r}; one of {FAULTS}"
        with self._lock:
            self.faults.extend([fault] * times)

    # ---- answering -------------------------------------------------------------------------
    def handle(
        self, method: str, target: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, dict[str, str], Any]:
        """(status, extra headers, JSON payload) for one request; records it."""
        parts = urlsplit(target)
        path, query = parts.path, dict(parse_qsl(parts.query))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        gemini = GEMINI_PATH.match(path)
        provider = (
            "ollama"
            if path == "/api/chat"
            else "gemini"
            if gemini
            else "openai"
            if path == "/v1/chat/completions"
            else "unknown"
        )
        with self._lock:
            fault = self.faults.popleft() if self.faults and provider != "unknown" else None
        arrived = Recorded(provider, method, path, query, headers, body, 0, fault)
        with self._lock:  # recorded on arrival (a slow answer may outlive its client)
            index = len(self.requests)
            self.requests.append(arrived)
        status, extra, payload = self._answer(provider, method, headers, body, fault, gemini)
        with self._lock:
            self.requests[index] = dataclasses.replace(arrived, status=status)
        return status, extra, payload

    def _answer(
        self,
        provider: str,
        method: str,
        headers: dict[str, str],
        body: Any,
        fault: str | None,
        gemini: re.Match[str] | None,
    ) -> tuple[int, dict[str, str], Any]:
        if provider == "unknown":
            return 404, {}, {"error": "404 page not found"}
        if method != "POST":
            return 405, {}, _error(provider, 405, "method not allowed")
        if not isinstance(body, dict):
            return 400, {}, _error(provider, 400, "the request body is not a JSON object")
        model = gemini.group("model") if gemini else str(body.get("model", ""))
        if fault == "401":
            return 401, {}, _error(provider, 401, "invalid API key")
        if self.api_key is not None:
            got = _sent_key(provider, headers)
            if got != self.api_key:
                return 401, {}, _error(provider, 401, f"Incorrect API key provided: {got}")
        if fault == "429":
            return 429, {"Retry-After": "1"}, _error(provider, 429, "rate limit reached")
        if fault == "500":
            return 500, {}, _error(provider, 500, "an internal error has occurred")
        if self.models is not None and model not in self.models:
            return 404, {}, _error(provider, 404, f"model '{model}' not found")
        if fault == "slow":
            self._stopped.wait(self.delay)
        text = "" if fault in ("empty", "blocked") else self.answer
        if fault == "truncated":
            text = self.answer[: max(1, len(self.answer) // 2)]
        return 200, {}, _success(provider, model, text, fault)


def _sent_key(provider: str, headers: dict[str, str]) -> str:
    if provider == "gemini":
        return headers.get("x-goog-api-key", "")
    if provider == "openai":
        return headers.get("authorization", "").removeprefix("Bearer ")
    return ""


_GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    404: "NOT_FOUND",
    405: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
}
_OPENAI_ERROR = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "model_not_found"),
    405: ("invalid_request_error", None),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
}


def _error(provider: str, status: int, message: str) -> dict[str, Any]:
    """The provider's documented error body."""
    if provider == "gemini":
        return {"error": {"code": status, "message": message, "status": _GOOGLE_STATUS[status]}}
    if provider == "openai":
        kind, code = _OPENAI_ERROR[status]
        return {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return {"error": message}


def _success(provider: str, model: str, text: str, fault: str | None) -> dict[str, Any]:
    """The provider's documented success body with ``text`` as the answer."""
    truncated = fault == "truncated"
    if provider == "ollama":
        return {
            "model": model,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "message": {"role": "assistant", "content": text},
            "done": True,
            "done_reason": "length" if truncated else "stop",
            "total_duration": 1_000_000,
            "prompt_eval_count": 12,
            "eval_count": len(text.split()),
        }
    if provider == "gemini":
        usage = {"promptTokenCount": 12, "candidatesTokenCount": len(text.split())}
        if fault == "blocked":
            return {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": usage}
        cut = len(text) // 2
        parts = [{"text": text[:cut]}, {"text": text[cut:]}] if text else [{"text": ""}]
        return {
            "candidates": [
                {
                    "content": {"role": "model", "parts": parts},
                    "finishReason": "MAX_TOKENS" if truncated else "STOP",
                    "index": 0,
                }
            ],
            "usageMetadata": usage,
            "modelVersion": model,
        }
    reason = "length" if truncated else "content_filter" if fault == "blocked" else "stop"
    return {
        "id": "chatcmpl-loopback",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text or None},
                "finish_reason": reason,
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": len(text.split()), "total_tokens": 0},
    }
