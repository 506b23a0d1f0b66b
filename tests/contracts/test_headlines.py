"""Every recipe's headline, on its own demo run, is plain: at most 40 words and no jargon.

The headline is the report's summary (the first thing a reader sees, and the line `opslens
runs` and the app lead with). Terms of the trade (SMD, q value, HDR, RMSE, ...) belong in
the report's sections, glossed in one line the first time they are used there.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from opslens.core.narrative import Narrative
from opslens.explain.text import HEADLINE_WORDS, word_count
from opslens.recipes import get_recipe, recipe_names
from opslens.report.facts import read_run_facts
from tests.fakes.cli import run_cli

pytestmark = pytest.mark.slow

#: jargon a headline must not use: the term as written, and a pattern that finds it
JARGON: dict[str, str] = {
    "SMD": r"\bSMD\b",
    "q value": r"\bq[ -]?values?\b|\bq [=<]",
    "p value": r"\bp[ -]?values?\b|\bp [=<]",
    "ADF": r"\bADF\b",
    "permutation entropy": r"permutation entropy",
    "HDR": r"\bHDRs?\b",
    "log score": r"\blog score\b",
    "CRPS": r"\bCRPS\b",
    "RMSE": r"\bRMSE\b",
    "MAE": r"\bMAE\b",
    "AUROC": r"\bAUROC\b|\bROC-AUC\b",
    "PR-AUC": r"\bPR-AUC\b",
    "MinC/MaxC": r"\bM(in|ax)C\b",
    "Benjamini-Hochberg": r"Benjamini",
    "Fisher": r"\bFisher\b",
    "DBSCAN": r"\bDBSCAN\b",
    "K-Means": r"\bK-Means\b",
    "kNN": r"\bkNN\b",
    "Kolmogorov-Smirnov": r"Kolmogorov|\bKS\b",
}
#: a term is glossed where it is first used in prose: "X (what it is)", "(X) is", "X is", "X measures"
GLOSS = r"{t}\s*\(|\({t}\)\s+is\b|{t}s?\s+(is|are|measures)\b"
#: the terms each recipe's report must gloss where its prose first uses them
GLOSSED: dict[str, list[str]] = {
    "distribution": ["HDR", "log score", "CRPS", "AUROC", "p-value"],
    "segments": ["RMSE", "MAE", "R²", "kNN", "p-value"],
    "residual": ["MinC", "R²", "MAE", "RMSE", "F1", "NAB"],
    "propensity": ["PR-AUC", "ROC-AUC"],
    "fleet": [],
}


def _demo_narrative(recipe: str, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Narrative:
    result = run_cli(["demo", recipe, "--dir", "demo"], tmp, monkeypatch)
    assert result.code == 0, result.err
    facts_files = sorted((tmp / "demo" / recipe / "runs").glob("*/*/facts.json"))
    assert facts_files, f"the {recipe} demo wrote no run"
    facts: dict[str, Any] = json.loads(facts_files[-1].read_text())
    narrative = get_recipe(recipe).narrative(read_run_facts(facts), [])
    assert narrative is not None
    return narrative


def _prose(n: Narrative) -> str:
    """The sections' words in reading order (paragraphs, bullets, then the table)."""
    parts: list[str] = []
    for s in n.sections:
        parts += [*s.paragraphs, *s.bullets]
        if s.table is not None:
            parts += [" ".join(s.table.columns)]
            parts += [" ".join(str(c) for c in row) for row in s.table.rows]
    return "\n".join(parts)


@pytest.mark.parametrize("recipe", recipe_names())
def test_the_demo_headline_is_short_and_plain(
    recipe: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    n = _demo_narrative(recipe, tmp_path, monkeypatch)
    assert word_count(n.summary) <= HEADLINE_WORDS, (word_count(n.summary), n.summary)
    used = [term for term, pattern in JARGON.items() if re.search(pattern, n.summary)]
    assert used == [], f"jargon {used} in the headline: {n.summary}"
    # it says who won against the baselines, in plain words
    assert re.search(r"beats|does better than the model|no baseline", n.summary), n.summary
    prose = _prose(n)
    for term in GLOSSED[recipe]:
        first = prose.find(term)
        assert first >= 0, f"{term} is not in the {recipe} report"
        gloss = re.search(GLOSS.format(t=re.escape(term)), prose)
        assert gloss is not None, f"{term} is never glossed in the {recipe} report"
        # the gloss is where the term is first used (in that sentence at the latest)
        end = prose.find(". ", first)
        assert gloss.start() <= (len(prose) if end < 0 else end), (
            f"{term} is used before it is glossed: ...{prose[max(0, first - 80) : first + 80]}..."
        )


def test_every_recipe_has_its_glossary_entry() -> None:
    assert set(GLOSSED) == set(recipe_names())
