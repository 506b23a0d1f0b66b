"""The one formatter for numbers, p-values, durations and counted nouns in reports and messages.

Example:
    >>> fmt(0.912345), fmt(12000), plural(1, "row"), plural(59885, "row")
    ('0.912', '12,000', '1 row', '59,885 rows')
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

__all__ = [
    "HEADLINE_WORDS",
    "fmt",
    "format_duration",
    "format_metric",
    "format_p",
    "headline",
    "plural",
    "word_count",
]


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


def format_pct(share: Any) -> str:
    """A share in [0, 1] as a percentage: one decimal at most from 1% up (trailing ``.0``
    dropped), two significant digits below 1%, so a small base rate keeps its size.

    Example:
        >>> format_pct(0.915), format_pct(0.4), format_pct(1.0), format_pct(0.0061), format_pct(None)
        ('91.5%', '40%', '100%', '0.61%', 'n/a')
    """
    if share is None:
        return "n/a"
    x = 100 * float(share)
    if x != x:
        return "n/a"
    if abs(x) < 1:
        return f"{x:.2g}%"
    return f"{x:.1f}".removesuffix(".0") + "%"


def plural(n: Any, noun: str, plural_form: str | None = None) -> str:
    """``n`` and the noun, singular for one: ``1 row``, ``2 rows``.

    Example:
        >>> plural(0, "device"), plural(2, "category", "categories")
        ('0 devices', '2 categories')
    """
    word = noun if n == 1 else (plural_form or noun + "s")
    return f"{fmt(n)} {word}"


def format_p(p: float, *, name: str | None = None) -> str:
    """A p-value for people: two significant digits, ``3e-06`` below 0.001, ``< 1e-10`` below that.

    With ``name`` the comparison is written out: ``p = 0.04``, ``q < 1e-10``.

    Example:
        >>> format_p(0.0412), format_p(1.0), format_p(3.2e-6), format_p(1e-14)
        ('0.041', '1', '3e-06', '< 1e-10')
        >>> format_p(0.0412, name="p"), format_p(0.0, name="Fisher p")
        ('p = 0.041', 'Fisher p < 1e-10')
    """
    if math.isnan(p):
        text = "nan"
    elif p < 1e-10:
        text = "< 1e-10"
    elif p < 1e-3:
        text = f"{p:.0e}"
    else:
        text = f"{p:.2g}"
    if name is None:
        return text
    return f"{name} {text}" if text.startswith("<") else f"{name} = {text}"


def format_duration(d: timedelta) -> str:
    """A duration for people: ``2 days 16 hours``, ``5 hours 30 minutes``, ``45 minutes``.

    Two units at most, the smaller rounded (hours under days, minutes under hours).

    Example:
        >>> format_duration(timedelta(days=2, hours=16, minutes=48)), format_duration(timedelta(days=1))
        ('2 days 17 hours', '1 day')
        >>> format_duration(timedelta(minutes=90)), format_duration(timedelta(seconds=30))
        ('1 hour 30 minutes', '30 seconds')
    """
    secs = d.total_seconds()
    sign, secs = ("-" if secs < 0 else ""), abs(secs)
    if secs < 60:
        return sign + plural(round(secs), "second")
    for big, size, small, sub in (("day", 86400, "hour", 3600), ("hour", 3600, "minute", 60)):
        if secs >= size:
            whole, rest = divmod(secs, size)
            part = round(rest / sub)
            if part * sub >= size:
                whole, part = whole + 1, 0
            return sign + plural(int(whole), big) + (f" {plural(part, small)}" if part else "")
    return sign + plural(round(secs / 60), "minute")


#: the most words a run's headline (its report's summary) may have
HEADLINE_WORDS = 40


def word_count(text: str) -> int:
    """The words of ``text`` as a reader counts them (whitespace-separated).

    Example:
        >>> word_count("3 patterns of 'duration_min' across 96 combinations.")
        7
    """
    return len(text.split())


def headline(*sentences: str, limit: int = HEADLINE_WORDS) -> str:
    """Sentences in order of importance, joined, keeping each that still fits in ``limit`` words.

    The first sentence is always kept; a later one that would push the headline over the
    limit is left out (the report's sections say it in full); empty ones are skipped.

    Example:
        >>> headline("3 patterns found.", "", "The model beats the baseline.", limit=8)
        '3 patterns found. The model beats the baseline.'
        >>> headline("3 patterns found.", "A long sentence " * 3, "It wins.", limit=6)
        '3 patterns found. It wins.'
    """
    kept: list[str] = []
    words = 0
    for s in (s.strip() for s in sentences):
        n = word_count(s)
        if s and (not kept or words + n <= limit):
            kept.append(s)
            words += n
    return " ".join(kept)
