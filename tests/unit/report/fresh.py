"""Facts of a small distribution run made now (once per test session), for narrative tests.

The runs of opslens 0.1.0 in tests/data/old_runs do not match today's distribution facts
model, and narratives read facts only through that model.
"""

from __future__ import annotations

import json
import tempfile
from functools import cache
from typing import Any

import opslens
from opslens.synthetic.trips import make_trips


@cache
def _facts_text() -> str:
    trips = make_trips(n_rows=3000, seed=1, n_routes=3).trips
    result = opslens.run(
        trips,
        recipe="distribution",
        name="eta-small",
        runs_dir=tempfile.mkdtemp(prefix="opslens-report-facts-"),
        columns={"target": "duration_min", "categorical": ["route", "hour_band"]},
        params={"min_combination_size": 20, "xgboost": {"n_estimators": 10}},
    )
    return json.dumps(result.facts)


def distribution_facts() -> dict[str, Any]:
    """A fresh copy of the facts of a 3,000-row distribution run (tests may change it)."""
    facts: dict[str, Any] = json.loads(_facts_text())
    return facts
