"""One line from a pydantic ValidationError, naming every invalid key by its path in the file.

Example:
    >>> from pydantic import BaseModel, ConfigDict
    >>> class T(BaseModel):
    ...     model_config = ConfigDict(extra="forbid")
    ...     uri: str = ""
    >>> try:
    ...     T.model_validate({"urii": "x"})
    ... except ValidationError as e:
    ...     print(validation_message(e, "project.yaml"))
    project.yaml: top level key 'urii' is not allowed (unknown key)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

__all__ = ["validation_message"]


def validation_message(error: ValidationError, where: str, tags: Iterable[str] = ()) -> str:
    """``where: <problem>; <problem>...``; ``tags`` are union tags left out of key paths."""
    skip = set(tags)
    parts = []
    for err in error.errors():
        loc = _path(err["loc"], skip)
        if err["type"] == "extra_forbidden":
            key = str(err["loc"][-1])
            parent = _path(err["loc"][:-1], skip) or "top level"
            parts.append(f"{parent} key '{key}' is not allowed (unknown key)")
        elif err["type"] == "missing":
            parts.append(f"'{loc}' is required")
        elif err["type"] == "union_tag_invalid":
            ctx = err.get("ctx") or {}
            field = str(ctx.get("discriminator", "kind")).strip("'")
            expected = str(ctx.get("expected_tags", "")).replace("'", "")
            got = ctx.get("tag")
            parts.append(f"'{loc}.{field}' must be one of {expected} (got {got!r})")
        elif err["type"] == "union_tag_not_found":
            ctx = err.get("ctx") or {}
            field = str(ctx.get("discriminator", "kind")).strip("'")
            parts.append(f"'{loc}.{field}' is required")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            parts.append(f"'{loc}': {msg}" if loc else msg)
    return f"{where}: " + "; ".join(parts)


def _path(loc: Iterable[Any], skip: set[str]) -> str:
    out = ""
    previous: Any = None
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in skip and (isinstance(previous, int) or previous == "source"):
            previous = part
            continue
        else:
            out += ("." if out else "") + str(part)
        previous = part
    return out
