"""A run's one-line headline prints counts as integers and rates with three decimals."""

from __future__ import annotations

from pathlib import Path

from opslens.explain.text import format_metric, plural
from opslens.runner import RunResult


def test_headline_counts_are_integers() -> None:
    r = RunResult("a", "r1", Path("."), {"rows": 59885.0, "k": 3.0, "auroc": 0.93456}, None)
    assert r.headline() == "rows=59885, k=3, auroc=0.935"
    assert format_metric(float("nan")) == "nan"


def test_plural() -> None:
    assert [plural(n, "row") for n in (0, 1, 2, 1000)] == [
        "0 rows",
        "1 row",
        "2 rows",
        "1,000 rows",
    ]
