"""Claim-level grounding: each sentence of an LLM narrative cites the facts it states.

The narrator is given the run's facts as named quantities (:func:`quantities`:
``choose_k.k = 3``, ``detect.lead_days = 19.5 days``) and answers with sentences
that cite them, by key or by a ``{key}`` placeholder that opslens fills in with the
quantity as the report formats it. :func:`check_sentence` then holds every number
the sentence writes to the quantities it cites, not to any number anywhere in the
facts:

- the value, at the precision written (``0.92`` for 0.917; ``12`` is not ``9``);
- the unit: ``19.5 hours`` is not a quantity of 19.5 days; ``92%`` is a share of 0.92,
  or the ratio of two cited counts (``5 of 12 failures, 42%``), so a percentage over
  another base is caught;
- the direction of a comparison: in "0.91 is above 0.95" (or "lower than", "exceeds",
  "fewer than") the two numbers must be ordered that way;
- a sentence that states a number and cites nothing is ungrounded.

Example:
    >>> qs = quantities({"detect": {"lead_days": 19.5, "n_known": 9, "n_warned": 5}})
    >>> check_sentence("Warnings came {detect.lead_days} ahead.", [], qs).text
    'Warnings came 19.5 days ahead.'
    >>> check_sentence("5 of the 12 known failures were warned.", ["detect.n_warned"], qs).problems
    ["'12' is not what detect.n_warned says (5)"]
    >>> check_sentence("Lead time was 19.5 hours.", ["detect.lead_days"], qs).problems
    ["'19.5 hours' has the wrong unit: detect.lead_days is 19.5 days"]
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opslens.core.narrative import CheckedSentence
from opslens.explain.text import fmt
from opslens.report.grounding import Stated, numbers_in, sentences_of

__all__ = ["Quantity", "check_sentence", "fill", "prompt_lines", "quantities", "read_sentences"]

_SECONDS = {"seconds": 1.0, "minutes": 60.0, "hours": 3600.0, "days": 86400.0, "weeks": 604800.0}
_STATED_UNIT = {
    "ms": 0.001, "s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0,
    "m": 60.0, "min": 60.0, "mins": 60.0, "minute": 60.0, "minutes": 60.0,
    "h": 3600.0, "hr": 3600.0, "hrs": 3600.0, "hour": 3600.0, "hours": 3600.0,
    "d": 86400.0, "day": 86400.0, "days": 86400.0,
    "w": 604800.0, "week": 604800.0, "weeks": 604800.0,
}  # fmt: skip
_KEY_UNIT = re.compile(r"(?:^|_)(?P<unit>seconds|secs|s|minutes|mins|min|hours|h|days|d|weeks)$")
_UNIT_NAME = {"secs": "seconds", "s": "seconds", "mins": "minutes", "min": "minutes"}
_UNIT_NAME |= {"h": "hours", "d": "days"}
_SHARE_WORDS = {"share", "rate", "fraction", "ratio", "recall", "precision", "accuracy"}
_SHARE_WORDS |= {"auroc", "auc", "ap", "f1", "coverage", "r2"}
_PERCENT_WORDS = {"pct", "percent", "percentage"}
_TIMEDELTA = re.compile(r"(?:(-?\d+) days?, )?(\d+):(\d{2}):(\d{2}(?:\.\d+)?)")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
_PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_.\[\]-]+)\}")
_GREATER = r"above|higher than|greater than|more than|larger than|exceeds?|exceeded"
_LESS = r"below|lower than|less than|fewer than|smaller than"
_COMPARE = re.compile(rf"\b(?:(?P<gt>{_GREATER})|(?P<lt>{_LESS}))\b", re.IGNORECASE)


@dataclass(frozen=True)
class Quantity:
    """One named figure of the facts: its key path, value and unit.

    ``unit``: a time unit (``days`` ...), ``share`` (a fraction that may be written as a
    percentage), ``percent`` (already in percent), or None. Dates are kept as text.
    """

    key: str
    value: float | str
    unit: str | None = None

    def shown(self) -> str:
        """The quantity as the report writes it (the text a ``{key}`` placeholder becomes).

        Example:
            >>> Quantity("a.lead_days", 19.5, "days").shown(), Quantity("a.n", 1234.0).shown()
            ('19.5 days', '1,234')
        """
        if isinstance(self.value, str):
            return self.value
        value: float | int = int(self.value) if self.value.is_integer() else self.value
        text = fmt(value)
        if self.unit in _SECONDS:
            return f"{text} {self.unit}"
        return f"{text}%" if self.unit == "percent" else text

    def numbers(self) -> list[float]:
        """The numbers a sentence may write for it (a date's year, month, day ...)."""
        if isinstance(self.value, str):
            return [s.value for s in numbers_in(self.value)]
        return [self.value, abs(self.value)]


def _unit_of(key: str, value: float) -> str | None:
    last = key.rsplit(".", 1)[-1].lower()
    m = _KEY_UNIT.search(last)
    if m is not None:
        unit = m.group("unit")
        return _UNIT_NAME.get(unit, unit)
    words = set(re.split(r"[_\W]+", last))
    if words & _PERCENT_WORDS:
        return "percent"
    if words & _SHARE_WORDS and 0.0 <= value <= 1.0:
        return "share"
    return None


def _walk(value: Any, key: str) -> Iterator[Quantity]:
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int | float):
        if value == value:  # not NaN
            yield Quantity(key, float(value), _unit_of(key, float(value)))
    elif isinstance(value, str):
        td = _TIMEDELTA.fullmatch(value.strip())
        if td is not None:
            days, h, m, s = (float(g) if g else 0.0 for g in td.groups())
            yield Quantity(key, days * 86400 + h * 3600 + m * 60 + s, "seconds")
        elif _DATE.match(value) and len(value) <= 32:
            yield Quantity(key, value)
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from _walk(v, f"{key}.{k}" if key else str(k))
    elif isinstance(value, list | tuple):
        yield Quantity(f"{key}.count", float(len(value)))
        for i, v in enumerate(value):
            yield from _walk(v, f"{key}[{i}]")


def quantities(facts: Mapping[str, Any]) -> dict[str, Quantity]:
    """Every figure of ``facts`` by its key path (``a.b[0].c``), a list's length as ``.count``.

    Example:
        >>> qs = quantities({"fit": {"k": 3, "mean_gap_hours": 2.5, "recall": 0.8},
        ...                  "runs": [{"at": "2025-03-01T00:00:00"}]})
        >>> [(q.key, q.shown()) for q in qs.values()]
        [('fit.k', '3'), ('fit.mean_gap_hours', '2.5 hours'), ('fit.recall', '0.8'), ('runs.count', '1'), ('runs[0].at', '2025-03-01T00:00:00')]
    """
    return {q.key: q for q in _walk(facts, "")}


def fill(text: str, known: Mapping[str, Quantity]) -> tuple[str, list[str], list[str]]:
    """``text`` with each ``{key}`` replaced by the quantity as shown, the keys it used, and
    the placeholders naming no quantity (left as written)."""
    used: list[str] = []
    unknown: list[str] = []

    def one(m: re.Match[str]) -> str:
        key = m.group(1)
        if key not in known:
            unknown.append(key)
            return m.group(0)
        used.append(key)
        return known[key].shown()

    return _PLACEHOLDER.sub(one, text), used, unknown


def _tolerance(stated: Stated) -> float:
    return 0.5 * 10.0 ** (-stated.decimals) * (1 + 1e-9) + 1e-12


def _close(stated: Stated, value: float, scale: float = 1.0) -> bool:
    return abs(stated.value - value / scale) <= _tolerance(stated)


def _value_of(stated: Stated, q: Quantity) -> bool:
    """Does ``stated`` say ``q`` (value at the written precision, in the right unit)?"""
    if isinstance(q.value, str):
        return not stated.percent and stated.value in q.numbers()
    if stated.unit is not None and q.unit in _SECONDS:
        seconds = q.value * _SECONDS[q.unit]
        return _close(stated, seconds, _STATED_UNIT[stated.unit])
    if stated.unit is not None:
        return False
    if stated.percent:
        if q.unit == "percent":
            return any(_close(stated, v) for v in q.numbers())
        return (q.unit == "share" or abs(q.value) <= 1.0) and any(
            _close(stated, 100.0 * v) for v in q.numbers()
        )
    return any(_close(stated, v) for v in q.numbers())


def _ratio_of(stated: Stated, cited: Sequence[Quantity]) -> tuple[str, str] | None:
    """Two cited quantities whose ratio is the stated percentage (numerator, base)."""
    if not stated.percent:
        return None
    for a in cited:
        for b in cited:
            if a is b or isinstance(a.value, str) or isinstance(b.value, str) or b.value == 0:
                continue
            if _close(stated, 100.0 * a.value / b.value):
                return a.key, b.key
    return None


def _why_not(stated: Stated, cited: Sequence[Quantity]) -> str:
    for q in cited:
        if stated.unit is not None and q.unit in _SECONDS and _close(stated, float(q.value)):
            return f"'{stated.text}' has the wrong unit: {q.key} is {q.shown()}"
    if stated.percent:
        bases = [q.key for q in cited if not isinstance(q.value, str)]
        return (
            f"'{stated.text}' is neither a share cited nor a ratio of two cited counts "
            f"({', '.join(bases) or 'none cited'})"
        )
    shown = ", ".join(f"{q.key} says ({q.shown()})" for q in cited)
    return f"'{stated.text}' is not what {shown}"


def _ordered(left: float, right: float, greater: bool) -> bool:
    return left > right if greater else left < right


def _comparisons(
    sentence: str, matched: list[tuple[int, float]], cited: Sequence[Quantity]
) -> tuple[list[str], list[str]]:
    """Check each "above"/"below" between the matched numbers around it (or, in a sentence
    with no numbers written, between its two cited quantities, in citation order)."""
    checked: list[str] = []
    problems: list[str] = []
    for m in _COMPARE.finditer(sentence):
        greater = m.group("gt") is not None
        before = [v for pos, v in matched if pos < m.start()]
        after = [v for pos, v in matched if pos >= m.end()]
        numeric = [q for q in cited if not isinstance(q.value, str)]
        if before and after:
            left, right = before[-1], after[0]
        elif not matched and len(numeric) == 2:
            left, right = float(numeric[0].value), float(numeric[1].value)
        else:
            continue
        words = m.group(0).lower()
        if _ordered(left, right, greater):
            checked.append(f"'{words}': {fmt(left)} against {fmt(right)}")
        else:
            problems.append(f"'{words}' is the wrong direction: {fmt(left)} against {fmt(right)}")
    return checked, problems


def check_sentence(
    text: str, cites: Sequence[str], known: Mapping[str, Quantity]
) -> CheckedSentence:
    """Fill ``text``'s placeholders and hold each number it writes to what it cites.

    Example:
        >>> qs = quantities({"m": {"auroc": 0.917, "base_auroc": 0.95}})
        >>> c = check_sentence("AUROC {m.auroc} is above the baseline's {m.base_auroc}.", [], qs)
        >>> c.text, c.problems
        ("AUROC 0.917 is above the baseline's 0.95.", ["'above' is the wrong direction: 0.917 against 0.95"])
    """
    filled, used, unknown = fill(text, known)
    keys = list(dict.fromkeys([*cites, *used]))
    check = CheckedSentence(filled, keys)
    check.problems += [f"cites '{k}', which is no quantity of the facts" for k in unknown]
    check.problems += [
        f"cites '{k}', which is no quantity of the facts" for k in cites if k not in known
    ]
    cited = [known[k] for k in keys if k in known]
    stated = _positioned(filled)
    if stated and not cited:
        numbers = ", ".join(f"'{s.text}'" for _, s in stated)
        check.problems.append(f"states {numbers} and cites no fact")
        return check
    matched: list[tuple[int, float]] = []
    for pos, s in stated:
        q = next((q for q in cited if _value_of(s, q)), None)
        if q is not None:
            check.checked.append(f"'{s.text}' = {q.key} ({q.shown()})")
            matched.append((pos, _comparable(q)))
            continue
        ratio = _ratio_of(s, cited)
        if ratio is not None:
            check.checked.append(f"'{s.text}' = {ratio[0]} / {ratio[1]}")
            continue
        check.problems.append(_why_not(s, cited))
    checked, problems = _comparisons(filled, matched, cited)
    check.checked += checked
    check.problems += problems
    return check


def _comparable(q: Quantity) -> float:
    """A quantity's value on a common scale (seconds for durations) for comparisons."""
    assert not isinstance(q.value, str)
    return q.value * _SECONDS[q.unit] if q.unit in _SECONDS else q.value


def _positioned(sentence: str) -> list[tuple[int, Stated]]:
    """The numbers of ``sentence`` with the position where each is written, in order."""
    out: list[tuple[int, Stated]] = []
    taken: set[int] = set()
    for s in numbers_in(sentence):
        pos = next(
            (m.start() for m in re.finditer(re.escape(s.text), sentence) if m.start() not in taken),
            0,
        )
        taken.add(pos)
        out.append((pos, s))
    return sorted(out, key=lambda x: x[0])


def prompt_lines(known: Mapping[str, Quantity], limit: int = 24_000) -> str:
    """The quantities as the narrator sees them, one ``key = value`` a line, cut at ``limit``
    characters (facts come in the order the run wrote them: the headline sections first).

    Example:
        >>> print(prompt_lines(quantities({"fit": {"k": 3, "lead_days": 2.5}})))
        fit.k = 3
        fit.lead_days = 2.5 days
    """
    lines: list[str] = []
    size = 0
    for q in known.values():
        line = f"{q.key} = {q.shown()}"
        size += len(line) + 1
        if size > limit:
            lines.append("... (more figures left out)")
            break
        lines.append(line)
    return "\n".join(lines)


def read_sentences(answer: str) -> list[tuple[str, list[str]]]:
    """The sentences of a narrator's answer with the keys each cites.

    The answer should be ``{"sentences": [{"text": ..., "cites": [...]}, ...]}`` (a bare
    list, code fences and text around the JSON are tolerated); an answer that is not
    such JSON is read as prose whose sentences cite nothing.

    Example:
        >>> read_sentences('```json\\n{"sentences": [{"text": "K is {fit.k}.", "cites": []}]}\\n```')
        [('K is {fit.k}.', [])]
        >>> read_sentences("There are 3 groups. All fine.")
        [('There are 3 groups.', []), ('All fine.', [])]
    """
    start = min((i for i in (answer.find("{"), answer.find("[")) if i >= 0), default=-1)
    items: Any = None
    if start >= 0:
        try:
            items, _end = json.JSONDecoder().raw_decode(answer[start:])
        except ValueError:
            items = None
    if isinstance(items, Mapping):
        items = items.get("sentences")
    out: list[tuple[str, list[str]]] = []
    if isinstance(items, list):
        for item in items:
            if isinstance(item, str):
                out.append((item.strip(), []))
            elif isinstance(item, Mapping) and isinstance(item.get("text"), str):
                cites = item.get("cites") or []
                keys = [str(c) for c in cites] if isinstance(cites, list) else [str(cites)]
                out.append((" ".join(item["text"].split()), keys))
        if out:
            return [(t, c) for t, c in out if t]
    return [(s, []) for s in sentences_of(answer)]
