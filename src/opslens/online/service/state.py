"""Where stateful predictors' stream state lives between requests: in memory or in Redis.

A store keeps one JSON-ready state per key (``<analysis>/<stream id>``) and
hands out a lock per key, so two requests for one stream never interleave
(read state → step → write state is one critical section). The memory store
is the default; :class:`RedisState` keeps state across service restarts and
also locks across processes (a Redis lock) for several service instances.

Example:
    >>> import asyncio
    >>> async def demo():
    ...     store = MemoryState()
    ...     async with store.lock("eta/s1"):
    ...         before = await store.get("eta/s1")
    ...         await store.set("eta/s1", {"run": 3})
    ...     return before, await store.get("eta/s1")
    >>> asyncio.run(demo())
    (None, {'run': 3})
    >>> open_state("memcached://x")
    Traceback (most recent call last):
    ...
    opslens.errors.ConfigError: state store 'memcached://x' is not supported; fix: use --state memory or --state redis://127.0.0.1:6379/0
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

import orjson

from opslens.errors import ConfigError, SourceError

__all__ = ["MemoryState", "RedisState", "StateStore", "dumpb", "dumps", "open_state"]

_FIX = "use --state memory or --state redis://127.0.0.1:6379/0"


def _plain(value: Any) -> Any:
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return item()
    tolist = getattr(value, "tolist", None)  # numpy arrays
    if callable(tolist):
        return tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def dumpb(value: Any) -> bytes:
    """JSON bytes of an answer or a state (orjson: numpy scalars and arrays, dates; a NaN
    or an infinity becomes ``null``).

    Example:
        >>> import numpy as np
        >>> dumpb({"run": np.int64(3), "r": np.array([0.5, np.nan], dtype=np.float32)})
        b'{"run":3,"r":[0.5,null]}'
    """
    return orjson.dumps(value, default=_plain, option=_OPTIONS)


def dumps(value: Any) -> str:
    """:func:`dumpb` as text (what Redis keeps).

    Example:
        >>> import numpy as np
        >>> dumps({"run": np.int64(3), "r": [np.float32(0.5)]})
        '{"run":3,"r":[0.5]}'
    """
    return dumpb(value).decode()


class StateStore(Protocol):
    """What the service needs from a state store."""

    url: str

    async def get(self, key: str) -> dict[str, Any] | None:
        """The state saved under ``key``, or None for a new stream."""

    async def set(self, key: str, state: dict[str, Any]) -> None:
        """Save ``state`` under ``key``."""

    def lock(self, key: str) -> Any:
        """An async context manager held while one request steps the stream ``key``."""

    async def close(self) -> None:
        """Release connections."""


class _KeyLocks:
    """One asyncio lock per key, dropped once no request holds or waits for it."""

    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def get(self, key: str) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock


class MemoryState:
    """Stream state in this process (lost when the service stops)."""

    url = "memory"

    def __init__(self) -> None:
        self._states: dict[str, dict[str, Any]] = {}
        self._locks = _KeyLocks()

    async def get(self, key: str) -> dict[str, Any] | None:
        """The state saved under ``key``, or None."""
        return self._states.get(key)

    async def set(self, key: str, state: dict[str, Any]) -> None:
        """Save ``state`` under ``key``."""
        self._states[key] = state

    def lock(self, key: str) -> asyncio.Lock:
        """The in-process lock of ``key``."""
        return self._locks.get(key)

    async def close(self) -> None:
        """Nothing to release."""


class RedisState:
    """Stream state in Redis (JSON strings under ``opslens:state:<key>``): survives restarts."""

    prefix = "opslens:state:"

    def __init__(self, url: str) -> None:
        import redis.asyncio

        self.url = url
        self._client = redis.asyncio.Redis.from_url(url, socket_connect_timeout=3)
        self._locks = _KeyLocks()
        self._failures = (redis.RedisError, OSError)

    def _unreachable(self, error: Exception) -> SourceError:
        return SourceError(
            f"the state store {self.url} is not reachable ({type(error).__name__}: {error})",
            fix="start Redis there; the service answers again once it is back",
        )

    @staticmethod
    def check(url: str) -> None:
        """SourceError unless a Redis answers at ``url``."""
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=3)
        try:
            client.ping()
        except redis.ResponseError as e:
            if "db index" not in str(e).lower():
                raise SourceError(
                    f"the state store {url} refused the connection ({e})",
                    fix="check the database number and credentials in --state",
                ) from None
            db = client.connection_pool.connection_kwargs.get("db", "?")
            raise SourceError(
                f"the state store {url} names database {db}, which this Redis does not have "
                "(a Redis has 16 unless configured otherwise: 0 to 15)",
                fix="name a database from 0 to 15 in --state, e.g. redis://127.0.0.1:6379/0",
            ) from None
        except (redis.RedisError, OSError) as e:
            raise SourceError(
                f"the state store {url} is not reachable ({type(e).__name__}: {e})",
                fix="start Redis there, or use --state memory (state then ends with the service)",
            ) from None
        finally:
            client.close()

    async def get(self, key: str) -> dict[str, Any] | None:
        """The state saved under ``key``, or None."""
        try:
            raw = await self._client.get(self.prefix + key)
        except self._failures as e:
            raise self._unreachable(e) from None
        return None if raw is None else dict(orjson.loads(raw))

    async def set(self, key: str, state: dict[str, Any]) -> None:
        """Save ``state`` under ``key``."""
        try:
            await self._client.set(self.prefix + key, dumps(state))
        except self._failures as e:
            raise self._unreachable(e) from None

    @asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[None]:
        """The in-process lock of ``key``, then a Redis lock shared by every service instance."""
        async with self._locks.get(key):
            shared = self._client.lock(
                self.prefix + key + ":lock", timeout=30, sleep=0.005, blocking_timeout=30
            )
            try:
                async with shared:
                    yield
            except self._failures as e:
                raise self._unreachable(e) from None

    async def close(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()


def open_state(url: str) -> MemoryState | RedisState:
    """The store ``url`` names (``memory``, ``redis://``, ``rediss://``, ``unix://``); Redis checked now."""
    if url == "memory":
        return MemoryState()
    if url.startswith(("redis://", "rediss://", "unix://")):
        RedisState.check(url)
        return RedisState(url)
    raise ConfigError(f"state store {url!r} is not supported", fix=_FIX)
