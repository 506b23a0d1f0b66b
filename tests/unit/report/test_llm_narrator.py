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
GOOD = (
    f"The run found {FACTS['choose_k']['k']} patterns across "
    f"{FACTS['prepare']['combinations_kept']} combinations of route and hour band."
)
INVENTED = "The model reaches an accuracy of 0.42 on 1234 held-out rows."


def _narrator(llm: LlmServers, **kw: Any) -> LLMNarrator:
    client = OpenAIClient(f"{llm.url}/v1", "local-model", retries=0, timeout=5)
    return LLMNarrator(client, model="local-model", **kw)


def test_a_grounded_narrative_passes_untouched() -> None:
    with LlmServers(answer=GOOD) as llm:
        n = _narrator(llm).narrate(FACTS, [])
        calls = len(llm.requests)
    assert n.narrator == "openai (local-model)"
    assert n.summary == GOOD and n.ungrounded == []
    assert all(s.paragraphs == [GOOD] for s in n.sections if s.paragraphs)
    assert calls == 1 + sum(
        1 for s in TemplateNarrator().narrate(FACTS, []).sections if s.paragraphs
    )
    assert n.notes == [
        "Written by openai (local-model); every number was checked against the facts."
    ]


def test_a_percentage_of_a_fraction_is_grounded() -> None:
    facts = {
        "analysis": {"name": "x", "recipe": "unknown", "run_id": "r"},
        "fit": {"accuracy": 0.93},
    }
    with LlmServers(answer="Accuracy is 93%.") as llm:
        n = _narrator(llm).narrate(facts, [])
    assert n.summary == "Accuracy is 93%." and n.ungrounded == []


def test_an_invented_number_is_flagged_and_marked() -> None:
    facts = {"analysis": {"name": "x", "recipe": "unknown", "run_id": "r"}, "fit": {"k": 3}}
    answer = f"There are 3 groups. {INVENTED} The rest is fine."
    with LlmServers(answer=answer) as llm:
        n = _narrator(llm, max_ungrounded_share=0.6).narrate(facts, [])
    assert n.ungrounded == [INVENTED]
    assert "1 sentence with a number found in no fact are marked" in n.notes[0]


def test_too_many_invented_numbers_fall_back_to_the_template() -> None:
    with LlmServers(answer=INVENTED) as llm:
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
    assert n.summary == GOOD and n.narrator.startswith(provider)
    assert canary not in json.dumps([n.summary, n.notes, n.narrator])


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
    with LlmServers(answer=f"There are 3 groups. {INVENTED}") as llm:
        html = render_report(open_run(tmp_path, "x"), _narrator(llm, max_ungrounded_share=0.9))
    assert f'<mark class="ungrounded" title="a number here is in no fact">{INVENTED}</mark>' in html
    assert "narrator: openai (local-model)" in html
    assert '<td class="path">fit.k</td><td>3</td>' in html
