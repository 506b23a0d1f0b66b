"""Durations in config: ``7d``, ``12h``, ``30m``, ``0.5d``, ``90s``, ``2w``, ISO 8601 or seconds.

Example:
    >>> from pydantic import TypeAdapter
    >>> ta = TypeAdapter(Duration)
    >>> ta.validate_python("12h"), ta.validate_python("0.5d"), ta.validate_python("30m")
    (datetime.timedelta(seconds=43200), datetime.timedelta(seconds=43200), datetime.timedelta(seconds=1800))
    >>> ta.validate_python("P1DT2H")
    datetime.timedelta(days=1, seconds=7200)
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator

__all__ = ["Duration", "parse_duration"]

_UNITS = {"w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "min": 60.0, "s": 1.0}
_SHORT = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*(w|d|h|min|m|s)\s*$", re.IGNORECASE)


def parse_duration(value: Any) -> Any:
    """``"12h"`` → ``timedelta(hours=12)``; other values go on to pydantic's timedelta parsing.

    Example:
        >>> parse_duration("2w")
        datetime.timedelta(days=14)
    """
    if isinstance(value, str):
        m = _SHORT.match(value)
        if m:
            return timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2).lower()])
        if value.strip() and not value.strip().upper().startswith("P") and ":" not in value:
            try:
                float(value)
            except ValueError:
                raise ValueError(
                    f"'{value}' is not a duration; write it as 7d, 12h, 30m, 90s, 2w or 0.5d"
                ) from None
    return value


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
