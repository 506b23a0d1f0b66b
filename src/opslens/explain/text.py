"""The one formatter for numbers, p-values, durations and counted nouns in reports and messages.

Example:
    >>> fmt(0.912345), fmt(12000), plural(1, "row"), plural(59885, "row")
    ('0.912', '12,000', '1 row', '59,885 rows')
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

__all__ = ["fmt", "format_duration", "format_metric", "format_p", "plural"]


def fmt(value: Any, digits: int = 3) -> str:
    """A number as a person reads it.

    Example:
        >>> fmt(0.912345), fmt(12000), fmt(None), fmt(3e-7)
        ('0.912', '12,000', 'n/a', '3e-07')
    """
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:
            return "n/a"
        if value != 0 and abs(value) < 1e-3:
            return f"{value:.0e}"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}g}"
    return str(value)


def format_metric(value: Any) -> str:
    """A metric for one line of output: whole numbers as integers, others to 3 decimals.

    Example:
        >>> format_metric(59885.0), format_metric(0.93456), format_metric(float("nan"))
        ('59885', '0.935', 'nan')
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "nan"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.3f}"


def plural(n: Any, noun: str, plural_form: str | None = None) -> str:
    """``n`` and the noun, singular for one: ``1 row``, ``2 rows``.

    Example:
        >>> plural(0, "device"), plural(2, "category", "categories")
        ('0 devices', '2 categories')
    """
    word = noun if n == 1 else (plural_form or noun + "s")
    return f"{fmt(n)} {word}"


def format_p(p: float) -> str:
    """A p-value in one significant digit (``3e-06``, ``0.04``).

    Example:
        >>> format_p(0.0412), format_p(1.0)
        ('0.04', '1')
    """
    return "nan" if math.isnan(p) else f"{p:.1g}"


def format_duration(d: timedelta) -> str:
    """A duration in days (≥ 1 day), hours (≥ 1 hour) or minutes, one decimal.

    Example:
        >>> format_duration(timedelta(days=12)), format_duration(timedelta(minutes=90))
        ('12 days', '1.5 hours')
    """
    secs = d.total_seconds()
    for unit, size in (("days", 86400.0), ("hours", 3600.0), ("minutes", 60.0)):
        if abs(secs) >= size or unit == "minutes":
            return f"{secs / size:.1f}".rstrip("0").rstrip(".") + f" {unit}"
    return f"{secs} seconds"  # pragma: no cover
