"""Live events in Redis: one stream per analysis that every service worker appends to and
replays, so the online feature state survives a restart and is shared by workers.

The state a worker answers from is its own (in process, exact, fast); what is shared is
the sequence of accepted events, a Redis stream (``opslens:events:<analysis>``):
``append`` adds a batch in one pipelined round trip (entries of up to 500 events, as
JSON, in order), ``read`` returns what was added after a given entry. A worker applies the stream in its order before it answers, so
every worker — and a restarted one, which replays the stream after its warm start from
the analysis's own events — holds the same state.

Example:
    >>> RedisEventLog.key("shop")
    'opslens:events:shop'
"""

from __future__ import annotations

import json
from typing import Any

from opslens.errors import SourceError

__all__ = ["RedisEventLog"]

_PAGE = 100  # entries per read
_CHUNK = 500  # events per entry


class RedisEventLog:
    """Append-only event streams in the Redis at ``url``."""

    prefix = "opslens:events:"

    def __init__(self, url: str) -> None:
        import redis

        self.url = url
        self._client = redis.Redis.from_url(url, socket_connect_timeout=3)
        self._failures = (redis.RedisError, OSError)

    @classmethod
    def key(cls, analysis: str) -> str:
        return cls.prefix + analysis

    def _unreachable(self, error: Exception) -> SourceError:
        return SourceError(
            f"the event store {self.url} is not reachable ({type(error).__name__}: {error})",
            fix="start Redis there; the service takes events again once it is back",
        )

    def append(self, analysis: str, events: list[tuple[str, str, int, int]]) -> None:
        """Add ``(user, item, kind, microseconds)`` events, in order, in one round trip."""
        if not events:
            return
        try:
            pipe = self._client.pipeline(transaction=False)
            key = self.key(analysis)
            for start in range(0, len(events), _CHUNK):  # an entry holds a chunk, in order
                pipe.xadd(key, {"e": json.dumps(events[start : start + _CHUNK])})
            pipe.execute()
        except self._failures as e:
            raise self._unreachable(e) from None

    def read(self, analysis: str, after: str) -> tuple[list[tuple[str, str, int, int]], str]:
        """The events added after entry ``after`` (``"0"``: all), and the last entry's id."""
        out: list[tuple[str, str, int, int]] = []
        last = after
        try:
            while True:
                page: list[Any] = self._client.xrange(  # type: ignore[assignment]
                    self.key(analysis), min=f"({last}" if last != "0" else "-", count=_PAGE
                )
                for entry, fields in page:
                    out.extend((u, i, int(k), int(t)) for u, i, k, t in json.loads(fields[b"e"]))
                    last = entry.decode()
                if len(page) < _PAGE:
                    return out, last
        except self._failures as e:
            raise self._unreachable(e) from None

    def drop(self, analysis: str) -> None:
        """Forget an analysis's events (tests; a fresh start)."""
        try:
            self._client.delete(self.key(analysis))
        except self._failures as e:
            raise self._unreachable(e) from None

    def close(self) -> None:
        self._client.close()
