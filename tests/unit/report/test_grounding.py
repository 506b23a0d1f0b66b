"""Grounding: every number a narrative states is found in the run's facts, at its precision."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.unit.report.fresh import distribution_facts

from opslens.core.narrative import Narrative
from opslens.recipes.distribution.narrative import distribution_narrative
from opslens.recipes.fleet.narrative import fleet_narrative
from opslens.report.facts import read_run_facts
from opslens.report.grounding import (
    Grounding,
    Stated,
    check,
    fact_numbers,
    numbers_in,
    stated_number_found,
)

OLD_RUNS = Path(__file__).resolve().parents[2] / "data" / "old_runs"


def found(sentence: str, facts: dict[str, Any]) -> list[bool]:
    known = fact_numbers(facts)
    return [stated_number_found(s, known) for s in numbers_in(sentence)]


@pytest.mark.parametrize(
    ("sentence", "facts", "expected"),
    [
        ("93% of devices", {"share": 0.93}, [True]),
        ("93 percent of devices", {"share": 0.93}, [True]),
        ("93% of devices", {"share_pct": 93.0}, [True]),  # already a percentage
        ("94% of devices", {"share": 0.93}, [False]),
        ("accuracy 0.93", {"accuracy": 0.9312}, [True]),
        ("accuracy 0.94", {"accuracy": 0.9312}, [False]),
        ("accuracy 0.931", {"accuracy": 0.9312}, [True]),
        ("accuracy 0.932", {"accuracy": 0.9312}, [False]),
        ("59,885 rows", {"rows": 59885}, [True]),
        ("59,886 rows", {"rows": 59885}, [False]),
        ("3 patterns", {"k": 3}, [True]),
        ("12 minutes median", {"median": 12.079}, [True]),  # a float rounds to the integer
        ("13 minutes median", {"median": 12.079}, [False]),
        ("2.7 days", {"lead": "2 days, 16:48:00"}, [True]),
        ("64.8 hours", {"lead": "2 days, 16:48:00"}, [True]),
        ("2.8 days", {"lead": "2 days, 16:48:00"}, [False]),
        ("-60 minutes", {"shift": "-1 day, 23:00:00"}, [True]),
        ("12h", {"largest_gap_seconds": 43200.0}, [True]),
        ("4 clusters", {"clusters": [{"a": 1}, {"a": 2}, {"a": 3}, {"a": 5}]}, [True]),
        ("5 clusters", {"clusters": [{"a": 1}, {"a": 2}, {"a": 3}, {"a": 6}]}, [False]),
        ("p=1e-20", {"p": 1.2e-20}, [True]),
        ("p=2e-20", {"p": 1.2e-20}, [False]),
        ("p=1.2e-20", {"p": 1.24e-20}, [True]),
        ("p=1.3e-20", {"p": 1.24e-20}, [False]),
        ("the 90% HDR", {"hdr_90": [[1.0, 2.0]]}, [True]),  # a number in a key
        ("precision @10 is 0.5", {"precision_at": {"10": 0.5}}, [True, True]),
        ("K=3 wins", {"reason": "K=3 has the highest silhouette score (0.437) of K=2..8"}, [True]),
        ("silhouette 0.44", {"reason": "K=3 has the highest silhouette score (0.437)"}, [True]),
        ("the 0.95 quantile", {"text": "above the 95th percentile"}, [True]),  # fraction form
        ("SMD -0.5", {"smd": 0.5}, [False]),  # a sign is a claim
        ("0.5 lower", {"smd": -0.5}, [True]),  # a magnitude of a negative fact
        ("from 2024-01-01T00:00", {"start": "2024-01-01T00:00:00"}, [True, True, True, True, True]),
        ("from 2024-01-02", {"start": "2024-01-01T00:00:00"}, [True, True, False]),
    ],
)
def test_stated_number_found(sentence: str, facts: dict[str, Any], expected: list[bool]) -> None:
    assert found(sentence, facts) == expected


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        ("1,234 and 59,885", [("1,234", 1234.0, 0, False), ("59,885", 59885.0, 0, False)]),
        (
            "0.93 or 93% or 93 percent",
            [("0.93", 0.93, 2, False), ("93%", 93.0, 0, True), ("93 percent", 93.0, 0, True)],
        ),
        ("-0.5 and +1.25", [("-0.5", -0.5, 1, False), ("+1.25", 1.25, 2, False)]),
        ("q=3e-06", [("3e-06", 3e-06, 6, False)]),
        ("2.7 days, 12h", [("2.7 days", 2.7, 1, False), ("12h", 12.0, 0, False)]),
        ("K=3 of K=2..8", [("3", 3.0, 0, False), ("2", 2.0, 0, False), ("8", 8.0, 0, False)]),
        ("9.6–15 min", [("9.6", 9.6, 1, False), ("15 min", 15.0, 0, False)]),
        ("dev-0018, R01, p_0, vibration__acf_24, F1, top-10, 3abc", []),
        ("1. first, 95th percentile", [("1", 1.0, 0, False), ("95th", 95.0, 0, False)]),
    ],
)
def test_numbers_in(sentence: str, expected: list[tuple[str, float, int, bool]]) -> None:
    got = [(s.text, s.value, s.decimals, s.percent) for s in numbers_in(sentence)]
    assert [g[0] for g in got] == [e[0] for e in expected]
    for (text, value, decimals, percent), e in zip(got, expected, strict=True):
        assert (text, decimals, percent) == (e[0], e[2], e[3])
        assert value == pytest.approx(e[1], rel=1e-12)


def test_stated_records_unit_and_notation() -> None:
    assert numbers_in("2.7 days")[0] == Stated("2.7 days", 2.7, 1, False, False, "days")
    assert numbers_in("12h")[0].unit == "h"
    assert numbers_in("3e-06")[0].scientific is True
    assert numbers_in("0.000003")[0].scientific is False


def test_fact_numbers_covers_values_strings_keys_sizes_and_durations() -> None:
    known = fact_numbers(
        {"a": {"hdr_90": [1, 2, 3], "note": "seed 7", "lead": "16:48:00", "flag": True}}
    )
    for x in (1.0, 4.0, 3.0, 90.0, 7.0, 60480.0, 1008.0, 16.8, 0.07):
        assert x in known.plain
    assert 700.0 in known.percent
    assert 700.0 not in known.plain


def test_invented_number_is_ungrounded_and_named() -> None:
    facts = {"classify": {"auroc_weighted": 0.97, "test_rows": 1995}}
    g = check("On 1,995 rows the model is strong. Its AUROC is 0.81.", facts)
    assert g.ungrounded == [("Its AUROC is 0.81.", ["0.81"])]
    assert g.share == 0.5


def test_share_counts_only_sentences_that_state_a_number() -> None:
    facts = {"prepare": {"rows_read": 8000, "devices": 60}, "k": 3}
    text = (
        "The fleet was analysed carefully. "
        "It holds 60 devices and 8,000 rows. "
        "There are 3 groups. "
        "One group holds 17 devices."
    )
    g = check(text, facts)
    assert isinstance(g, Grounding)
    assert len(g.sentences) == 4
    assert g.ungrounded == [("One group holds 17 devices.", ["17"])]
    assert g.share == pytest.approx(1 / 3)


def test_text_without_numbers_has_share_zero() -> None:
    g = check("Nothing to count here. Still nothing!", {"k": 3})
    assert (g.ungrounded, g.share, len(g.sentences)) == ([], 0.0, 2)
    assert check("", {}).sentences == []


def test_sentences_are_not_cut_inside_numbers_or_after_abbreviations() -> None:
    text = (
        "Accuracy is 0.93, e.g. Route A is best. Compare A vs. B here. "
        "Use one, i.e. The first. K=2..8 was tried. 3 groups remain!\n- A bullet 12h long"
    )
    assert check(text, {}).sentences == [
        "Accuracy is 0.93, e.g. Route A is best.",
        "Compare A vs. B here.",
        "Use one, i.e. The first.",
        "K=2..8 was tried.",
        "3 groups remain!",
        "A bullet 12h long",
    ]


def test_check_accepts_precomputed_fact_numbers() -> None:
    known = fact_numbers({"k": 3})
    assert check("3 groups. 4 groups.", known).ungrounded == [("4 groups.", ["4"])]


def _stored_facts(analysis: str) -> dict[str, Any]:
    if analysis == "eta-small":  # 0.1.0's distribution facts do not match today's model
        return distribution_facts()
    run = (OLD_RUNS / analysis / "latest").read_text().strip()
    facts: dict[str, Any] = json.loads((OLD_RUNS / analysis / run / "facts.json").read_text())
    return facts


def _text(narrative: Narrative) -> str:
    parts = [narrative.summary]
    for section in narrative.sections:
        parts += [*section.paragraphs, *section.bullets]
    return "\n".join(parts)


@pytest.mark.parametrize(
    ("analysis", "narrate"),
    [("eta-small", distribution_narrative), ("fleet-small", fleet_narrative)],
)
def test_template_narratives_are_fully_grounded(analysis: str, narrate: Any) -> None:
    facts = _stored_facts(analysis)
    narrative = narrate(read_run_facts(facts), [])  # narratives get the typed facts
    g = check(_text(narrative), facts)
    assert len(g.sentences) > 10
    assert sum(bool(numbers_in(s)) for s in g.sentences) > 8
    assert g.ungrounded == []
    assert g.share == 0.0


def test_a_tampered_template_narrative_is_caught() -> None:
    facts = _stored_facts("eta-small")
    text = _text(distribution_narrative(read_run_facts(facts), [])).replace(
        "3,000 rows", "3,500 rows"
    )
    assert [numbers for _sentence, numbers in check(text, facts).ungrounded] == [["3,500"]]
