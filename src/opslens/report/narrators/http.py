"""POST JSON to an LLM provider with retries; every failure becomes one NarratorError.

:class:`JsonPoster` retries connection errors, timeouts, 429 and 5xx answers
(waiting ``Retry-After`` seconds when the server sends it, capped at
``max_wait``), and turns the last failure into a :class:`NarratorError` that
names the provider, the URL, the HTTP status and the provider's own error
message, with a fix. Secrets (API keys) are masked in every message and log
line; they travel in headers only, never in URLs.

Example:
    >>> import httpx
    >>> def limited(request):
    ...     return httpx.Response(429, json={"error": {"message": "slow down"}})
    >>> post = JsonPoster("demo", retries=0, transport=httpx.MockTransport(limited))
    >>> try:
    ...     post("http://llm.test/v1/chat", {"q": 1}, secrets=["sk-123456"])
    ... except NarratorError as err:
    ...     print(err.problem)
    demo answered HTTP 429 from http://llm.test/v1/chat: slow down
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from opslens.config.secrets import mask_secrets
from opslens.errors import NarratorError

__all__ = ["JsonPoster", "chat_messages", "cut_off", "provider_message", "retry_after_seconds"]

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


def chat_messages(system: str, user: str) -> list[dict[str, str]]:
    """The system and user messages in the role/content shape Ollama and OpenAI share.

    Example:
        >>> chat_messages("be brief", "hi")[1]
        {'role': 'user', 'content': 'hi'}
    """
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def cut_off(provider: str, url: str, max_tokens: int, reason: str) -> NarratorError:
    """The error for an answer truncated at ``max_tokens`` (``reason``: the provider's field).

    Example:
        >>> str(cut_off("ollama", "http://h/api/chat", 800, "done_reason 'length'"))[:40]
        "ollama's answer from http://h/api/chat w"
    """
    return NarratorError(
        f"{provider}'s answer from {url} was cut off at max_tokens={max_tokens} ({reason})",
        fix=f"raise report.max_tokens (now {max_tokens}) or ask for a shorter answer",
    )


def provider_message(body: Any) -> str | None:
    """The provider's own error text: ``{"error": "..."}`` or ``{"error": {"message", "status"|"type"}}``.

    Example:
        >>> provider_message({"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}})
        'quota (RESOURCE_EXHAUSTED)'
        >>> provider_message({"error": "model 'x' not found"})
        "model 'x' not found"
    """
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, str):
        return err or None
    if isinstance(err, dict):
        message = str(err.get("message") or "").strip()
        kind = err.get("status") or err.get("type") or err.get("code")
        if message and kind and str(kind) not in message:
            return f"{message} ({kind})"
        return message or (str(kind) if kind else None)
    return None


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or an HTTP date), else None.

    Example:
        >>> retry_after_seconds("1"), retry_after_seconds("soon"), retry_after_seconds(None)
        (1.0, None, None)
    """
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass(frozen=True)
class JsonPoster:
    """POSTs JSON to one provider; ``__call__`` returns the decoded answer or raises NarratorError.

    ``key_env`` names the environment variable holding the API key (for the 401/403
    fix); ``serve_hint`` says how to start the server (for the unreachable fix).
    """

    provider: str
    timeout: float = 60.0
    retries: int = 2
    transport: httpx.BaseTransport | None = None
    sleep: Callable[[float], None] = time.sleep
    max_wait: float = 30.0
    key_env: str | None = None
    serve_hint: str = "start the server"
    model: str = ""

    def __call__(
        self,
        url: str,
        body: Mapping[str, Any],
        *,
        headers: Mapping[str, str] | None = None,
        secrets: Iterable[str] = (),
    ) -> Any:
        """The decoded JSON of a 2xx answer, after up to ``retries`` retries."""
        hidden = [s for s in secrets if s]
        shown = mask_secrets(url, hidden)
        attempts = max(0, self.retries) + 1
        with httpx.Client(transport=self.transport, timeout=self.timeout) as client:
            for attempt in range(1, attempts + 1):
                wait: float | None = None
                try:
                    response = client.post(url, json=dict(body), headers=dict(headers or {}))
                except httpx.TimeoutException as exc:
                    failure = self._timeout(shown, exc)
                except httpx.ConnectError as exc:
                    failure = self._unreachable(shown, exc)
                except httpx.TransportError as exc:
                    failure = self._broken(shown, exc)
                else:
                    if response.is_success:
                        return self._decode(response, shown, hidden)
                    failure = self._status(response, shown, attempt)
                    if response.status_code not in RETRY_STATUS:
                        break
                    wait = retry_after_seconds(response.headers.get("Retry-After"))
                if attempt == attempts:
                    break
                wait = min(self.max_wait, wait if wait is not None else 0.5 * 2 ** (attempt - 1))
                log.warning(
                    mask_secrets(
                        f"{failure[0]}; retry {attempt}/{attempts - 1} in {wait:.1f} s", hidden
                    )
                )
                self.sleep(wait)
        problem, fix = failure
        raise NarratorError(mask_secrets(problem, hidden), fix=mask_secrets(fix, hidden))

    # ---- one failure each: (problem, fix) ---------------------------------------------------
    def _timeout(self, url: str, exc: Exception) -> tuple[str, str]:
        return (
            f"{self.provider} did not answer within the timeout of {self.timeout:g} s "
            f"({url}; {type(exc).__name__})",
            f"raise report.timeout_seconds (now {self.timeout:g}), use a smaller model "
            "or ask for a shorter answer",
        )

    def _unreachable(self, url: str, exc: Exception) -> tuple[str, str]:
        return (
            f"{self.provider} is unreachable at {url}: {exc or type(exc).__name__}",
            f"{self.serve_hint}, or check the URL (report.{self.provider}.url)",
        )

    def _broken(self, url: str, exc: Exception) -> tuple[str, str]:
        return (
            f"the connection to {self.provider} at {url} broke: {exc or type(exc).__name__}",
            "check that the server is healthy and that the URL points at its API",
        )

    def _status(self, response: httpx.Response, url: str, attempt: int) -> tuple[str, str]:
        status = response.status_code
        try:
            message = provider_message(response.json())
        except ValueError:
            message = None
        if not message:
            message = " ".join(response.text.split())[:200] or response.reason_phrase
        tries = f" (after {attempt} attempts)" if attempt > 1 else ""
        problem = f"{self.provider} answered HTTP {status} from {url}: {message}{tries}"
        model = f" '{self.model}'" if self.model else ""
        if status in (401, 403):
            fix = (
                f"check the API key in {self.key_env} (or the variable "
                f"report.{self.provider}.api_key_env names): the server rejected it"
                if self.key_env
                else "the server wants credentials opslens does not send: check the URL "
                "and any proxy in front of it"
            )
        elif status == 404:
            fix = (
                f"check the model name{model} (report.{self.provider}.model: is it "
                f"installed/available?) and the URL (report.{self.provider}.url)"
            )
        elif status == 429:
            fix = "the provider is rate limiting: retry later, or raise report.retries"
        elif status >= 500:
            fix = f"the {self.provider} server failed: retry later or check its logs"
        elif status in (400, 422):
            fix = (
                f"check the model{model} and the report.max_tokens / report.temperature "
                "the server rejected"
            )
        else:
            fix = f"check the URL points at a {self.provider} API"
        return problem, fix

    def _decode(self, response: httpx.Response, url: str, hidden: list[str]) -> Any:
        try:
            return response.json()
        except ValueError:
            head = " ".join(response.text.split())[:200]
            raise NarratorError(
                mask_secrets(
                    f"{self.provider} answered HTTP {response.status_code} from {url} "
                    f"with something that is not JSON: {head!r}",
                    hidden,
                ),
                fix=f"check the URL points at a {self.provider} API (report.{self.provider}.url)",
            ) from None
