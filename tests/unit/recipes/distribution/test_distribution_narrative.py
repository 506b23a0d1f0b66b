"""The distribution narrative reads the typed facts: attribute access, grounded numbers, the
baseline verdict in the summary, and a facts file its model rejects is an error naming the field.

``facts_small.json``: the facts of a run on 720 planted rows (12 combinations, K=2 given).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from opslens.core.narrative import Narrative
from opslens.errors import RunError
from opslens.explain.text import fmt
from opslens.recipes.distribution import RECIPE
from opslens.recipes.distribution.facts import DistributionFacts
from opslens.report.grounding import check
from opslens.report.narrators.template import TemplateNarrator

FACTS: dict[str, Any] = json.loads((Path(__file__).parent / "facts_small.json").read_text())


def _text(n: Narrative) -> str:
    parts = [n.summary]
    for section in n.sections:
        parts += [*section.paragraphs, *section.bullets]
    return "\n".join(parts)


def _narrate(facts: dict[str, Any]) -> Narrative:
    typed = RECIPE.read_facts(facts)
    assert isinstance(typed, DistributionFacts)
    narrative = RECIPE.narrative(typed, ["holdout_scores", "cluster_profiles"])
    assert narrative is not None
    return narrative


def _section(n: Narrative, title: str) -> Any:
    return next(s for s in n.sections if s.title == title)


def test_every_number_of_the_narrative_is_in_the_facts() -> None:
    n = _narrate(FACTS)
    g = check(_text(n), FACTS)
    # the one sentence whose numbers are an example, not a fact
    assert [sentence for sentence, _ in g.ungrounded] == [
        'Levels are compared as written once normalised: 6, 6.0 and "6" are one level.'
    ]
    assert sum(1 for s in g.sentences if any(c.isdigit() for c in s)) >= 8
    ev = FACTS["classify"]["holdout_scores"]
    assert n.title == "eta-small: distribution patterns"
    # the headline: plain words, the blend's 90% coverage, no log score (that is in the table)
    assert n.summary.startswith("2 patterns of 'y' across 12 combinations")
    assert "94.4% of held-out values fell in the range predicted to hold 90%." in n.summary
    assert "log score" not in n.summary and len(n.summary.split()) <= 40
    table = _section(n, "How good the predicted distribution is").table
    assert [r[0] for r in table.rows] == ["the prediction", "own histogram", "global histogram"]
    assert fmt(ev["blended"]["log_score"]) in table.rows[0]  # the log score: in the table
    assert table.rows[0][3:] == ["43.9%", "94.4%"]  # coverage_50, coverage_90 of the blend
    patterns = _section(n, "The patterns")
    assert patterns.table.rows[0][4] == "8.06–19.9 ∪ 30.7–38.9 min"  # the bimodal 90% HDR
    assert any("multimodal" in b for b in _section(n, "Caveats").bullets)


def test_the_summary_states_the_baseline_verdict() -> None:
    n = _narrate(FACTS)
    assert (
        " The model beats each combination's own histogram and one global histogram on "
        "held-out data. "
    ) in n.summary
    losing = copy.deepcopy(FACTS)
    losing["baselines"]["scores"][0]["value"] = -2.4
    losing["baselines"].update(
        model_wins=False,
        losses=["own"],
        verdict="each combination's own histogram is better on mean log score per held-out "
        "row: -2.4 against -2.51 (180 held-out rows)",
    )
    assert (
        " Each combination's own histogram does better than the model on held-out data, so it "
        "is not served without --force."
    ) in _narrate(losing).summary
    without = {k: v for k, v in FACTS.items() if k != "baselines"}
    assert _narrate(without).summary.endswith("fell in the range predicted to hold 90%.")


def test_the_weight_is_said_to_be_chosen_before_the_holdout() -> None:
    lead = _section(_narrate(FACTS), "How good the predicted distribution is").paragraphs[0]
    assert lead.startswith(
        "The model was trained on the earlier rows and scored on the last 25% of t"
    )
    assert (
        "weighted n / (n + 30) for n training rows (the weight chosen on the last 25% of the "
        "training period (t), not on this holdout)"
    ) in lead
    pattern_only = copy.deepcopy(FACTS)
    pattern_only["classify"]["holdout_scores"]["strength"] = None
    lead = _section(_narrate(pattern_only), "How good the predicted distribution is").paragraphs[0]
    assert "it predicts only its pattern's histogram" in lead


def test_a_run_without_held_out_rows_says_why() -> None:
    facts = copy.deepcopy(FACTS)
    ev = facts["classify"]["holdout_scores"]
    reason = "the holdout (1% of the rows, params.test_size) holds no rows, so neither the model nor its baselines were scored"
    ev.update(blended=None, own_histogram=None, global_histogram=None, skipped=reason)
    del facts["baselines"]
    n = _narrate(facts)
    assert n.summary.endswith(
        " The holdout (1% of the rows, params.test_size) holds no rows, so neither the model nor its baselines were scored."
    )
    section = _section(n, "How good the predicted distribution is")
    assert section.paragraphs == [reason[0].upper() + reason[1:] + "."] and section.table is None


@pytest.mark.parametrize(
    ("where", "change"),
    [
        (
            "classify.holdout_scores.strength",
            lambda f: f["classify"]["holdout_scores"].update(strength="fast"),
        ),
        ("prepare.rows_read", lambda f: f["prepare"].pop("rows_read")),
        (
            "classify.holdout_scores.blended",
            lambda f: f["classify"]["holdout_scores"]["blended"].update(coverage_x=0.5),
        ),
        ("cluster.clusters.0", lambda f: f["cluster"]["clusters"][0].update(hdr_90="wide")),
        ("cluster.members.0.rows", lambda f: f["cluster"]["members"][0].update(rows="many")),
        ("baselines.scores.0.model", lambda f: f["baselines"]["scores"][0].update(model=None)),
    ],
)
def test_facts_the_model_rejects_are_an_error_naming_the_field(where: str, change: Any) -> None:
    facts = copy.deepcopy(FACTS)
    change(facts)
    with pytest.raises(RunError, match=f"at '{where}'") as raised:
        RECIPE.read_facts(facts)
    assert "distribution recipe's facts model" in str(raised.value)
    with pytest.raises(RunError, match=f"at '{where}'"):  # the report's narrator too
        TemplateNarrator().narrate(facts, [])


def test_the_report_narrator_puts_the_baselines_first() -> None:
    n = TemplateNarrator().narrate(FACTS, [])
    assert n.sections[0].title == "Against the baselines"
    assert [r[0] for r in n.sections[0].table.rows] == [
        "each combination's own histogram",
        "each combination's own histogram",
        "one global histogram",
        "one global histogram",
    ]
    assert n.sections[1].title == "What was analysed"


def test_the_shape_check_and_the_own_weights_are_told_from_the_facts() -> None:
    """Issue 21: why K moved past the one-SE choice, and how much each size keeps of its own shape."""
    facts = copy.deepcopy(FACTS)
    test = {"cluster": 0, "sizes": [60, 9], "distance": 0.45, "p_value": 0.0005, "distinct": True}
    facts["choose_k"].update(
        k=3,
        k_one_se=2,
        shape_alpha=0.01,
        reason="K=2 is the smallest K within one standard error; but K=2 merges 1 pair(s) "
        "of groups distinct in shape, so K=3 keeps them apart",
        shape_checks=[
            {"k": 2, "pairs": 1, "distinct": 1, "tests": [test]},
            {"k": 3, "pairs": 0, "distinct": 0, "tests": []},
        ],
    )
    facts["classify"]["holdout_scores"]["own_weights"] = [
        {"which": "smallest", "rows": 30, "weight": 0.5},
        {"which": "largest", "rows": 270, "weight": 0.9},
    ]
    n = _narrate(facts)
    k = _section(n, "How many patterns")
    assert "Bonferroni-corrected at 1%" in k.paragraphs[1]
    assert k.table.rows == [
        [2, "1", "1", fmt(0.0005), "merges distinct shapes"],
        [3, "0", "0", "n/a", "chosen"],
    ]
    lead = _section(n, "How good the predicted distribution is").paragraphs[0]
    assert "the smallest combination (30 training rows) keeps 50% of its own shape" in lead
    assert "the largest combination (270 training rows) keeps 90% of its own shape" in lead
