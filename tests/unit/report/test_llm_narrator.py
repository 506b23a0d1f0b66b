"""The LLM narrator over real HTTP (loopback servers speaking each provider's API): a grounded
narrative passes, an invented number is flagged, too many fall back, a failing server never
loses the report, and the API key is never shown."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.fakes.llm_servers import LlmServers
from tests.unit.report.fresh import distribution_facts

from opslens.config import ReportConfig
from opslens.report.narrators import make_narrator
from opslens.report.narrators.llm import LLMNarrator
from opslens.report.narrators.openai import OpenAIClient
from opslens.report.narrators.template import TemplateNarrator
from opslens.report.render import render_report
from opslens.tracking.runs import RunWriter, open_run

FACTS: dict[str, Any] = distribution_facts()
GOOD_TEXT = (
    f"The run found {FACTS['choose_k']['k']} patterns across "
    f"{FACTS['prepare']['combinations_kept']} combinations of route and hour band."
)
GOOD = json.dumps(
    {"sentences": [{"text": GOOD_TEXT, "cites": ["choose_k.k", "prepare.combinations_kept"]}]}
)
INVENTED = "The model reaches an accuracy of 0.42 on 1234 held-out rows."
#: a fleet-like run: 12 units failed, 9 of them known, 5 warned, 19.5 days ahead; 300 units
FLEET = {
    "analysis": {"name": "x", "recipe": "unknown", "run_id": "r"},
    "known": {"n_failed": 12, "n_known": 9, "n_warned": 5, "n_units": 300},
    "warning": {"lead_days": 19.5, "healthy_warned_share": 0.05},
    "rank": {"auroc": 0.917, "best_device_score": 0.971, "baseline_auroc": 0.88},
}


def _sentences(*items: tuple[str, list[str]]) -> str:
    return json.dumps({"sentences": [{"text": t, "cites": c} for t, c in items]})


def _narrator(llm: LlmServers, **kw: Any) -> LLMNarrator:
    client = OpenAIClient(f"{llm.url}/v1", "local-model", retries=0, timeout=5)
    return LLMNarrator(client, model="local-model", **kw)


def test_a_grounded_narrative_passes_untouched() -> None:
    with LlmServers(answer=GOOD) as llm:
        n = _narrator(llm).narrate(FACTS, [])
        calls = len(llm.requests)
        prompt = llm.requests[0].body["messages"][1]["content"]
    assert n.narrator == "openai (local-model)"
    assert n.summary == GOOD_TEXT and n.ungrounded == []
    assert all(s.paragraphs == [GOOD_TEXT] for s in n.sections if s.paragraphs)
    assert calls == 1 + sum(
        1 for s in TemplateNarrator().narrate(FACTS, []).sections if s.paragraphs
    )
    assert n.notes == [
        "Written by openai (local-model); each figure was checked against the facts its "
        "sentence cites (value, unit, base and direction)."
    ]
    # the model is given the facts as named quantities and told how to cite them
    assert f"choose_k.k = {FACTS['choose_k']['k']}" in prompt and '"cites"' in prompt
    k = FACTS["choose_k"]["k"]
    assert n.checks[0].checked[0] == f"'{k}' = choose_k.k ({k})"


def test_a_faithful_fleet_narrative_passes() -> None:
    answer = _sentences(
        (
            "Of the 12 failed units, 9 were known and 5 were warned (42%).",
            ["known.n_failed", "known.n_known", "known.n_warned"],
        ),
        (
            "Warnings came {warning.lead_days} ahead, at 5% of healthy units.",
            ["warning.healthy_warned_share"],
        ),
        ("The rank's AUROC of {rank.auroc} is above the baseline's {rank.baseline_auroc}.", []),
    )
    with LlmServers(answer=answer) as llm:
        n = _narrator(llm).narrate(FLEET, [])
    assert n.ungrounded == [] and n.narrator.startswith("openai")
    assert n.summary.startswith("Of the 12 failed units, 9 were known and 5 were warned (42%).")
    assert "Warnings came 19.5 days ahead" in n.summary
    assert "'42%' = known.n_warned / known.n_failed" in n.checks[0].checked
    assert "'above': 0.917 against 0.88" in n.checks[2].checked


@pytest.mark.parametrize(
    ("sentence", "cites", "problem"),
    [
        # a number that exists elsewhere in the facts (12 failed units) but not in what is cited
        (
            "12 of the 12 known failures were warned.",
            ["known.n_known"],
            "'12' is not what known.n_known says (9)",
        ),
        # a device's score stated as the AUROC
        ("The AUROC is 0.971.", ["rank.auroc"], "'0.971' is not what rank.auroc says (0.917)"),
        # the right number, the wrong unit
        (
            "Warnings came 19.5 hours ahead.",
            ["warning.lead_days"],
            "'19.5 hours' has the wrong unit: warning.lead_days is 19.5 days",
        ),
        # a percentage over the wrong base: 5 warned of 300 units is 1.7%, not 5 of 12
        (
            "Warnings reached 42% of the units.",
            ["known.n_warned", "known.n_units"],
            "'42%' is neither a share cited nor a ratio of two cited counts "
            "(known.n_warned, known.n_units)",
        ),
        # a comparison in the wrong direction
        (
            "The AUROC of {rank.auroc} is below the baseline's {rank.baseline_auroc}.",
            [],
            "'below' is the wrong direction: 0.917 against 0.88",
        ),
        # a number with no citation at all
        ("The rank found 5 units.", [], "states '5' and cites no fact"),
    ],
)
def test_each_misstated_figure_is_flagged(sentence: str, cites: list[str], problem: str) -> None:
    answer = _sentences(
        ("Of the {known.n_failed} failed units, 9 were known.", ["known.n_known"]),
        (sentence, cites),
    )
    with LlmServers(answer=answer) as llm:
        n = _narrator(llm, max_ungrounded_share=0.9).narrate(FLEET, [])
    assert n.narrator.startswith("openai")
    assert n.checks[0].grounded and set(n.checks[1].problems) == {problem}
    assert n.ungrounded == [n.checks[1].text]
    assert "1 sentence that did not hold are marked" in n.notes[0]


def test_a_prose_answer_cites_nothing_so_its_numbers_are_ungrounded() -> None:
    facts = {"analysis": {"name": "x", "recipe": "unknown", "run_id": "r"}, "fit": {"k": 3}}
    with LlmServers(answer=f"There are 3 groups. {INVENTED} The rest is fine.") as llm:
        n = _narrator(llm, max_ungrounded_share=1.0).narrate(facts, [])
    assert n.ungrounded == ["There are 3 groups.", INVENTED]
    assert n.checks[0].problems == ["states '3' and cites no fact"]


def test_too_many_misstated_figures_fall_back_to_the_template() -> None:
    with LlmServers(answer=_sentences((INVENTED, ["choose_k.k"]))) as llm:
        n = _narrator(llm).narrate(FACTS, [])
    template = TemplateNarrator().narrate(FACTS, [])
    assert n.summary == template.summary and n.sections == template.sections
    assert n.narrator == "template" and n.ungrounded == []
    assert "above the 20% allowed by report.max_ungrounded_share" in n.notes[0]


@pytest.mark.parametrize("fault", ["401", "500", "empty", "truncated", "slow"])
def test_a_failing_server_never_loses_the_report(fault: str) -> None:
    with LlmServers(answer=GOOD, delay=2.0) as llm:
        llm.fail_next(fault, times=50)
        client = OpenAIClient(f"{llm.url}/v1", "local-model", retries=0, timeout=0.5)
        n = LLMNarrator(client).narrate(FACTS, [])
    assert n.summary == TemplateNarrator().narrate(FACTS, []).summary
    assert n.notes and n.notes[0].startswith("The openai narrator failed (")


def test_unreachable_server_falls_back() -> None:
    client = OpenAIClient("http://127.0.0.1:9/v1", "m", retries=0, timeout=0.5)
    n = LLMNarrator(client).narrate(FACTS, [])
    assert "narrator failed" in n.notes[0] and n.narrator == "template"


@pytest.mark.parametrize("provider", ["ollama", "gemini", "openai"])
def test_each_configured_provider_narrates(provider: str, monkeypatch: pytest.MonkeyPatch) -> None:
    canary = "sk-canary-77c0ffee"
    monkeypatch.setenv("OPSLENS_TEST_KEY", canary)
    with LlmServers(answer=GOOD) as llm:
        config = ReportConfig.model_validate(
            {
                "narrator": provider,
                "ollama": {"url": llm.url},
                "gemini": {"url": f"{llm.url}/v1beta", "api_key_env": "OPSLENS_TEST_KEY"},
                "openai": {"url": f"{llm.url}/v1", "api_key_env": "OPSLENS_TEST_KEY"},
                "retries": 0,
            }
        )
        n = make_narrator(config).narrate(FACTS, [])
        providers = {r.provider for r in llm.requests}
    assert providers == {provider}
    assert n.summary == GOOD_TEXT and n.narrator.startswith(provider)
    assert canary not in json.dumps([n.summary, n.notes, n.narrator])


@pytest.mark.parametrize("provider", ["ollama", "gemini", "openai"])
def test_each_provider_s_answer_is_checked_claim_by_claim(
    provider: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same cited sentences through each provider's wire shape get the same flags."""
    monkeypatch.setenv("OPSLENS_TEST_KEY", "sk-canary")
    answer = _sentences(
        ("Of the {known.n_failed} failed units, 9 were known.", ["known.n_known"]),
        ("12 of the 12 known failures were warned.", ["known.n_known"]),
        ("Warnings came 19.5 hours ahead.", ["warning.lead_days"]),
        ("The AUROC of {rank.auroc} is below the baseline's {rank.baseline_auroc}.", []),
    )
    with LlmServers(answer=answer) as llm:
        config = ReportConfig.model_validate(
            {
                "narrator": provider,
                "ollama": {"url": llm.url},
                "gemini": {"url": f"{llm.url}/v1beta", "api_key_env": "OPSLENS_TEST_KEY"},
                "openai": {"url": f"{llm.url}/v1", "api_key_env": "OPSLENS_TEST_KEY"},
                "retries": 0,
                "max_ungrounded_share": 0.9,
            }
        )
        n = make_narrator(config).narrate(FLEET, [])
        providers = {r.provider for r in llm.requests}
    assert providers == {provider} and n.narrator.startswith(provider)
    assert [set(c.problems) for c in n.checks] == [
        set(),
        {"'12' is not what known.n_known says (9)"},
        {"'19.5 hours' has the wrong unit: warning.lead_days is 19.5 days"},
        {"'below' is the wrong direction: 0.917 against 0.88"},
    ]


def test_a_missing_gemini_key_falls_back_with_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    n = make_narrator(ReportConfig(narrator="gemini")).narrate(FACTS, [])
    assert n.narrator == "template"
    assert "GEMINI_API_KEY is not set" in n.notes[0]


def test_the_report_marks_flagged_sentences_and_keeps_the_facts_table(tmp_path: Path) -> None:
    writer = RunWriter(tmp_path, "x")
    facts = {
        "analysis": {"name": "x", "recipe": "unknown", "run_id": writer.run_id},
        "fit": {"k": 3},
    }
    writer.write_json("facts.json", facts)
    writer.write_json("manifest.json", {"status": "complete"})
    writer.commit()
    answer = _sentences(("There are {fit.k} groups.", []), (INVENTED, ["fit.k"]))
    with LlmServers(answer=answer) as llm:
        html = render_report(open_run(tmp_path, "x"), _narrator(llm, max_ungrounded_share=0.9))
    title = "a figure here is not what the facts it cites say"
    assert f'<mark class="ungrounded" title="{title}">{INVENTED}</mark>' in html
    # the report says per sentence what was checked
    assert (
        '<td>There are 3 groups.</td><td class="path">fit.k</td><td>&#39;3&#39; = fit.k (3)</td>'
        in html
    )
    assert "&#39;0.42&#39; is not what fit.k says (3)" in html
    assert "narrator: openai (local-model)" in html
    assert '<td class="path">fit.k</td><td>3</td>' in html
