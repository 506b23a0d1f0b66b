"""Is every number a narrative states found in the run's facts? (rounding- and unit-aware).

A number is *grounded* when some fact rounds to it at the precision it was written
with: ``0.93`` matches ``0.9312``, ``93%`` matches ``0.93``, ``2.7 days`` matches
``"2 days, 16:48:00"``, ``4 clusters`` matches a list of four. Numbers glued to letters
or underscores (``dev-0018``, ``R01``, ``vibration__acf_24``) are identifiers, not claims.

Example:
    >>> facts = {"classify": {"auroc": 0.9712, "test_rows": 1995}}
    >>> g = check("On 1,995 rows the AUROC is 0.97. It beats 0.81 easily.", facts)
    >>> g.ungrounded, g.share
    ([('It beats 0.81 easily.', ['0.81'])], 0.5)
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "FactNumbers",
    "Grounding",
    "Stated",
    "check",
    "fact_numbers",
    "numbers_in",
    "sentences_of",
    "stated_number_found",
]

_SECONDS = {"ms": 0.001, "s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0}
_SECONDS |= {"m": 60.0, "min": 60.0, "mins": 60.0, "minute": 60.0, "minutes": 60.0}
_SECONDS |= {"h": 3600.0, "hr": 3600.0, "hrs": 3600.0, "hour": 3600.0, "hours": 3600.0}
_SECONDS |= {"d": 86400.0, "day": 86400.0, "days": 86400.0}
_SECONDS |= {"w": 604800.0, "week": 604800.0, "weeks": 604800.0}
_GLUED_OK = {"ms", "s", "m", "min", "h", "hr", "d", "w", "st", "nd", "rd", "th", "x", "σ"}
_EQUIVALENTS = (1.0, 60.0, 3600.0, 86400.0, 604800.0)
_NUM = re.compile(
    r"(?<!\w)(?<![^\W\d]-)"  # not glued to a word on the left, nor to "word-" (dev-0018)
    r"(?P<sign>[-+−](?=\d))?"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?!\d)(?:\.\d+)?|\d+(?:\.\d+)?)"
    r"(?:[eE](?P<exp>[-+−]?\d+))?"
    r"(?P<tail>\w*)"
    r"(?P<pct>\s?%|\s+per\s?cent\b)?"
    r"(?:\s+(?P<unit>(?:second|sec|minute|min|hour|hr|day|week)s?)\b)?"
)
_DATE = re.compile(
    r"(?<!\w)(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?(?![\w:])"
)
_TIMEDELTA = re.compile(r"(?:(-?\d+) days?, )?(\d+):(\d{2}):(\d{2}(?:\.\d+)?)")
_DURATION_KEY = re.compile(r"_(seconds|secs|minutes|mins|hours|days|weeks)$")
_KEY_NUM = re.compile(r"\d+(?:\.\d+)?")
_END = re.compile(r"[.!?]+[\"')\]]*(?=\s+[\"'(\[]?[A-Z0-9])")
_ABBREV = re.compile(r"\b(?:e\.g|i\.e|vs|cf|approx|ca|fig|al|dr|mr|mrs)\.$", re.IGNORECASE)
_BULLET = re.compile(r"^\s*[-*•]\s+")


@dataclass(frozen=True)
class Stated:
    """A number as a sentence states it.

    ``decimals`` is the place of the last digit written: 2 for ``0.93``, 0 for ``59,885``,
    8 for ``3e-08`` (one significant digit at 1e-8). ``unit`` is a time unit or ``None``.
    """

    text: str
    value: float
    decimals: int
    percent: bool = False
    scientific: bool = False
    unit: str | None = None


@dataclass(frozen=True, eq=False)
class FactNumbers:
    """Every number in a run's facts, sorted: ``plain`` for numbers stated as they are
    (values, their fraction forms 93 → 0.93, magnitudes of negatives), ``percent`` for
    numbers stated with ``%`` (values times 100, and values that are already percentages)."""

    plain: npt.NDArray[np.float64]
    percent: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.plain.size)


@dataclass(frozen=True)
class Grounding:
    """The sentences of a text, those with a number found in no fact, and their share."""

    sentences: list[str]
    ungrounded: list[tuple[str, list[str]]]
    share: float


def _stated(m: re.Match[str]) -> Stated | None:
    tail = m.group("tail")
    if tail and tail not in _GLUED_OK:
        return None  # an identifier such as 12abc or 3rd_party
    num, exp = m.group("num").replace(",", ""), m.group("exp")
    decimals = len(num.partition(".")[2])
    value = float(num)
    if exp is not None:
        e = int(exp.replace("−", "-"))
        value, decimals = value * 10.0**e, decimals - e
    if m.group("sign") in ("-", "−"):
        value = -value
    unit = m.group("unit") or (tail if tail in _SECONDS else None)
    text = m.group(0).strip()
    return Stated(text, value, decimals, m.group("pct") is not None, exp is not None, unit)


def numbers_in(sentence: str) -> list[Stated]:
    """The numbers ``sentence`` states, in order; dates give their components.

    Example:
        >>> [(s.value, s.decimals, s.percent) for s in numbers_in("93% of 1,234 rows; K=3")]
        [(93.0, 0, True), (1234.0, 0, False), (3.0, 0, False)]
        >>> [s.text for s in numbers_in("dev-0018 and R01 in vibration__acf_24 at 12h")]
        ['12h']
    """
    out: list[Stated] = []
    for d in _DATE.finditer(sentence):
        out += [Stated(g, float(g), 0) for g in d.groups() if g is not None]
    rest = _DATE.sub(lambda d: " " * len(d.group(0)), sentence)
    out += [s for s in map(_stated, _NUM.finditer(rest)) if s is not None]
    return out


def _numbers(value: Any, key_unit: float | None = None) -> Iterator[float]:
    """The base numbers of one fact value, recursively (before percent/fraction forms)."""
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int | float):
        yield float(value)
        if key_unit is not None:
            yield from (float(value) * key_unit / u for u in _EQUIVALENTS)
    elif isinstance(value, str):
        td = _TIMEDELTA.fullmatch(value.strip())
        if td is not None:
            days, h, m, s = (float(g) if g else 0.0 for g in td.groups())
            yield from ((days * 86400 + h * 3600 + m * 60 + s) / u for u in _EQUIVALENTS)
        for st in numbers_in(value):
            yield st.value
            if st.unit is not None:
                yield from (st.value * _SECONDS[st.unit] / u for u in _EQUIVALENTS)
    elif isinstance(value, Mapping):
        yield float(len(value))
        for k, v in value.items():
            yield from (float(n) for n in _KEY_NUM.findall(str(k)))
            unit = _DURATION_KEY.search(str(k))
            yield from _numbers(v, _SECONDS[unit.group(1)] if unit else None)
    elif isinstance(value, list | tuple):
        yield float(len(value))
        for v in value:
            yield from _numbers(v)


def fact_numbers(facts: Mapping[str, Any]) -> FactNumbers:
    """Every number in ``facts``: values, numbers in strings and keys, sizes, durations.

    Example:
        >>> fn = fact_numbers({"k": 3, "hdr_90": [[1.5, 2.0]], "gap": "16:48:00"})
        >>> [x in fn.plain for x in (3.0, 90.0, 1.0, 60480.0, 1008.0, 16.8, 0.7, 0.03)]
        [True, True, True, True, True, True, True, True]
        >>> [x in fn.percent for x in (300.0, 150.0, 3.0)]
        [True, True, True]
    """
    base = np.fromiter(_numbers(facts), dtype=np.float64)
    base = base[np.isfinite(base)]
    signed = np.concatenate([base, base / 100.0])
    plain = np.unique(np.concatenate([signed, np.abs(signed)]))
    scaled = np.concatenate([base, base * 100.0])
    percent = np.unique(np.concatenate([scaled, np.abs(scaled)]))
    return FactNumbers(plain=plain, percent=percent)


def stated_number_found(stated: Stated, facts: FactNumbers) -> bool:
    """True when some fact rounds to ``stated`` at the precision it was written with.

    Example:
        >>> fn = fact_numbers({"auroc": 0.9312, "p": 1.2e-20})
        >>> [stated_number_found(s, fn) for s in numbers_in("0.93, 0.94, 93%, 1e-20")]
        [True, False, True, True]
    """
    x = stated.value
    tol = 0.5 * 10.0 ** (-stated.decimals) + 1e-9 * max(1.0, abs(x))
    if stated.scientific:
        tol = 0.5 * 10.0 ** (-stated.decimals) * (1 + 1e-9)
    arr = facts.percent if stated.percent else facts.plain
    i = int(np.searchsorted(arr, x - tol, side="left"))
    return i < arr.size and float(arr[i]) <= x + tol


def sentences_of(text: str) -> list[str]:
    """``text`` cut into sentences: at line breaks and at ``.!?`` before a capital or digit,
    never inside a number or after an abbreviation such as ``e.g.``, ``i.e.`` or ``vs.``.

    Example:
        >>> sentences_of("Accuracy is 0.93, e.g. Route A. Next one vs. B! 3 more.")
        ['Accuracy is 0.93, e.g. Route A.', 'Next one vs. B!', '3 more.']
    """
    out: list[str] = []
    for line in text.splitlines():
        line, start = _BULLET.sub("", line), 0
        for m in _END.finditer(line):
            if _ABBREV.search(line[start : m.start() + 1]):
                continue
            out.append(line[start : m.end()].strip())
            start = m.end()
        out.append(line[start:].strip())
    return [s for s in out if s]


def check(text: str, facts: Mapping[str, Any] | FactNumbers) -> Grounding:
    """Which sentences of ``text`` state a number found in no fact, and their share
    among the sentences that state any number."""
    known = facts if isinstance(facts, FactNumbers) else fact_numbers(facts)
    sentences = sentences_of(text)
    ungrounded: list[tuple[str, list[str]]] = []
    numeric = 0
    for sentence in sentences:
        stated = numbers_in(sentence)
        numeric += bool(stated)
        missing = [s.text for s in stated if not stated_number_found(s, known)]
        if missing:
            ungrounded.append((sentence, missing))
    share = len(ungrounded) / numeric if numeric else 0.0
    return Grounding(sentences=sentences, ungrounded=ungrounded, share=share)
