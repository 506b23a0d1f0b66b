"""The fleet narrative reads typed facts: old runs still read, a wrong field is named."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from opslens.errors import RunError
from opslens.recipes.fleet import RECIPE
from opslens.recipes.fleet.narrative import fleet_narrative

OLD = Path(__file__).resolve().parents[3] / "data" / "old_runs" / "fleet-small"


def _old_facts() -> dict[str, Any]:
    run = (OLD / "latest").read_text().strip()
    facts: dict[str, Any] = json.loads((OLD / run / "facts.json").read_text())
    return facts


def test_a_run_of_opslens_0_1_reads_through_the_model_with_its_group_contrasts() -> None:
    facts = RECIPE.read_facts(_old_facts())
    narrative = fleet_narrative(facts, ["rare_scores"])  # type: ignore[arg-type]
    groups = next(s for s in narrative.sections if s.title == "Behaviour groups")
    # 0.1.0 stored one method's groups (group → features): three groups, three bullets
    assert [b.split(":")[0] for b in groups.bullets] == ["Group 0", "Group 1", "Group 2"]
    assert "SMD -5.85" in groups.bullets[0]
    rare = next(s for s in narrative.sections if s.title == "Rare devices")
    assert rare.table is not None and rare.table.rows[0][:2] == ["dev-0037", 1]
    assert narrative.summary == "60 devices checked."  # 0.1 runs had no health stage


def test_a_facts_file_its_model_rejects_is_an_error_naming_the_field() -> None:
    facts = copy.deepcopy(_old_facts())
    facts["rare"]["top"][0]["rank"] = "first"
    with pytest.raises(RunError, match=r"rare\.top\.0\.rank"):
        RECIPE.read_facts(facts)
