"""What an LLM narrator needs from a provider: one chat completion, or a NarratorError.

Each provider module (``ollama``, ``gemini``, ``openai``) implements
:class:`ChatClient` over httpx with an injectable transport (tests use a
loopback server that speaks the provider's documented API). A client never
lets its API key into a message, log line or exception.

Example:
    >>> class Echo:
    ...     name = "echo"
    ...     def complete(self, system, user, *, temperature=0.2, max_tokens=800):
    ...         return user.upper()
    >>> isinstance(Echo(), ChatClient)
    True
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["ChatClient"]


@runtime_checkable
class ChatClient(Protocol):
    """One chat completion: a system prompt and a user message in, the answer's text out."""

    name: str

    def complete(
        self, system: str, user: str, *, temperature: float = 0.2, max_tokens: int = 800
    ) -> str:
        """The model's answer; NarratorError (naming the provider and the cause) on any failure."""
