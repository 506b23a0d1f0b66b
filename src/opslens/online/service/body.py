"""A request body read within a size limit and parsed as strict, shallow JSON.

The size is checked from ``Content-Length`` before anything is read, and again while
the body streams in (a client may send no length, or lie), so an oversized body is
answered 413 without being held in memory. The JSON must be finite (``NaN``,
``Infinity`` and numbers that overflow to infinity are refused with the path of the
field that holds them) and nested at most :data:`MAX_DEPTH` deep. Refusals are
:class:`BodyError` with the HTTP status and the error in FastAPI's 422 shape.

Example:
    >>> parse(b'{"x": 1.5, "tags": ["a"]}')
    {'x': 1.5, 'tags': ['a']}
    >>> try:
    ...     parse(b'{"instances": [{"x": 1}, {"x": NaN}]}')
    ... except BodyError as e:
    ...     e.status, e.errors[0]["loc"], e.errors[0]["type"]
    (422, ('body', 'instances', 1, 'x'), 'finite_number')
    >>> excerpt("x" * 500)[-25:]
    'xxxxxxx… (500 characters)'
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import ClientDisconnect

__all__ = ["MAX_DEPTH", "BodyError", "excerpt", "parse", "read"]

#: how deep arrays and objects may nest in a request (an instance batch needs 3)
MAX_DEPTH = 32
_EXCERPT = 80


class BodyError(Exception):
    """A body the service refuses: ``status`` (413 or 422) and the errors to answer with."""

    def __init__(self, status: int, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors[0]["msg"])
        self.status = status
        self.errors = errors


class _NonFinite:
    """Where the parser met NaN, Infinity or a number too large for a float."""

    def __init__(self, text: str) -> None:
        self.text = text


def excerpt(value: Any) -> str:
    """At most 80 characters of ``value`` as JSON, saying how long it was when cut."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)[: 10 * _EXCERPT]
    return text if len(text) <= _EXCERPT else f"{text[:_EXCERPT]}… ({len(text)} characters)"


async def read(
    length: str | None, receive: Callable[[], Awaitable[Any]], limit: int, fix: str
) -> bytes:
    """The body, read from the ASGI ``receive`` channel (no async generator per request), or
    BodyError 413 as soon as its declared or streamed size passes ``limit``.

    Example:
        >>> import asyncio
        >>> async def receive():
        ...     return {"type": "http.request", "body": b"{}", "more_body": False}
        >>> asyncio.run(read("2", receive, 10, "send less"))
        b'{}'
        >>> try:
        ...     asyncio.run(read("11", receive, 10, "send less"))
        ... except BodyError as e:
        ...     e.status
        413
    """

    def too_large(size: str) -> BodyError:
        msg = f"the body is {size}, more than the {limit:,} bytes this service takes; fix: {fix}"
        return BodyError(413, [{"type": "body_too_large", "loc": ("body",), "msg": msg}])

    if length is not None and length.strip().isdigit() and int(length) > limit:
        raise too_large(f"{int(length):,} bytes")
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large(f"over {limit:,} bytes")
        if not message.get("more_body", False):
            return chunk if not parts else b"".join((*parts, chunk))
        parts.append(chunk)


def _finite(text: str) -> float | _NonFinite:
    value = float(text)
    return value if math.isfinite(value) else _NonFinite(text)


def _walk(value: Any, depth: int, path: tuple[str | int, ...]) -> None:
    """BodyError 422 at the first non-finite number or at nesting deeper than MAX_DEPTH."""
    if isinstance(value, _NonFinite):
        msg = (
            f"{value.text} is not a finite number; fix: send a finite number, or null "
            "for a missing value"
        )
        raise BodyError(422, [{"type": "finite_number", "loc": ("body", *path), "msg": msg}])
    if not isinstance(value, dict | list):
        return
    if depth >= MAX_DEPTH:
        msg = f"the body nests deeper than {MAX_DEPTH} levels; fix: send flat instances"
        raise BodyError(422, [{"type": "json_depth", "loc": ("body", *path), "msg": msg}])
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        _walk(item, depth + 1, (*path, key))


def parse(body: bytes) -> Any:
    """The JSON of ``body``; BodyError 422 for text that is not JSON, a non-finite number
    (with its field path) or nesting deeper than MAX_DEPTH.

    orjson reads the body (it refuses NaN, Infinity and numbers that overflow); only a body
    it refuses is read again by the standard library, to name the field at fault.
    """
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return _parse_slowly(body)
    # one bracket in all (a flat object or array; a bracket inside a string counts too): no
    # container below the top level, whatever the values, known from two byte counts
    if body.count(b"{") + body.count(b"[") <= 1:
        return payload
    if _nested(payload) and not _shallow(payload):  # the walk names where it is too deep
        _walk(payload, 0, ())
    return payload


def _shallow(payload: Any) -> bool:
    """Whether no array or object of ``payload`` sits :data:`MAX_DEPTH` deep: only containers
    are visited (orjson has refused non-finite numbers already), so a batch of flat
    instances costs one pass over their values' types, not a call per value."""
    stack = [(payload, 0)]
    while stack:
        value, depth = stack.pop()
        if depth >= MAX_DEPTH:
            return False
        for item in value.values() if type(value) is dict else value:
            if type(item) is dict or type(item) is list:
                stack.append((item, depth + 1))
    return True


def _nested(payload: Any) -> bool:
    """Whether ``payload`` holds an array or object below its top level (a flat instance does
    not, and is then known to be at most MAX_DEPTH deep without a walk)."""
    if type(payload) is dict:
        items: Any = payload.values()
    elif type(payload) is list:
        items = payload
    else:
        return False
    for item in items:  # a loop, not any() of a generator: a wide instance costs a third
        if type(item) is dict or type(item) is list:
            return True
    return False


def _parse_slowly(body: bytes) -> Any:
    """:func:`parse` with the standard library, which says where a non-finite number is."""
    try:
        payload = json.loads(body, parse_constant=_NonFinite, parse_float=_finite)
    except RecursionError:
        msg = f"the body nests deeper than {MAX_DEPTH} levels; fix: send flat instances"
        raise BodyError(422, [{"type": "json_depth", "loc": ("body",), "msg": msg}]) from None
    except ValueError as e:
        msg = f"the body is not JSON ({excerpt(str(e))})"
        raise BodyError(422, [{"type": "json_invalid", "loc": ("body",), "msg": msg}]) from None
    _walk(payload, 0, ())
    return payload
