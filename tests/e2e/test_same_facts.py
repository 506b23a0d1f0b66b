"""Both recipes state the same facts as before the spine v2 move, on the same config.

tests/data/old_runs/ holds runs written by opslens 0.1.0 from tests/data/old_runs/project.yaml;
rerunning that project now must give equal facts (every sentence exactly, every number
to 1e-9 relative: BLAS sums in silhouettes may differ in the last digit between processes).

The distribution recipe changed its algorithms on purpose in 0.2 (issue 14): K by held-out
log score, robust HDRs, the mean histogram of what was clustered, the classifier scored on
held-out combinations, a time-ordered holdout. For it, what did not change is compared: the
analysis, every ``prepare`` fact 0.1.0 stated, and how the target was binned
(:data:`UNCHANGED`); ``choose_k``, ``cluster``, ``classify`` and the metrics are not.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest

from opslens.api import load_project
from opslens.runner import run_analysis

OLD = Path(__file__).parents[1] / "data" / "old_runs"
UNCHANGED: dict[str, dict[str, list[str] | None]] = {
    "eta-small": {"analysis": None, "prepare": None, "quantize": ["n_bins", "binning", "segments"]},
    # fleet (issue 14): every group of every method contrasted, noise no longer counted as a
    # group in `sizes`, findings in plain words, one std/skewness convention in the profiles
    "fleet-small": {
        "analysis": None,
        "prepare": None,
        "fingerprint": None,
        "rare": None,
        "groups": ["best_method", "k", "k_reason", "eps", "summary"],
    },
}
"""Per analysis whose facts changed on purpose: the sections (and keys; None: the old ones) still equal."""


def _kept(facts: dict[str, Any], old: dict[str, Any], analysis: str) -> dict[str, Any]:
    """The part of ``facts`` still comparable with the 0.1.0 facts ``old``."""
    if analysis not in UNCHANGED:
        return facts
    return {
        section: {k: facts[section][k] for k in (keys or old[section])}
        for section, keys in UNCHANGED[analysis].items()
    }


def _differences(a: Any, b: Any, where: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return [f"{where}: keys {sorted(set(a) ^ set(b))}"]
        return [d for k in a for d in _differences(a[k], b[k], f"{where}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{where}: {len(a)} vs {len(b)} items"]
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in _differences(x, y, f"{where}[{i}]")
        ]
    if isinstance(a, float) and isinstance(b, float):
        return [] if math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) else [f"{where}: {a} vs {b}"]
    return [] if a == b else [f"{where}: {a!r} vs {b!r}"]


@pytest.mark.slow
@pytest.mark.parametrize("analysis", ["eta-small", "fleet-small"])
def test_facts_equal_those_of_0_1_0(analysis: str, tmp_path: Path) -> None:
    shutil.copy(OLD / "project.yaml", tmp_path / "project.yaml")
    result = run_analysis(load_project(tmp_path / "project.yaml"), analysis)
    old_run = (OLD / analysis / "latest").read_text().strip()
    # 0.2 fixed one plural in a finding ("from 1 detectors"); every other word is as it was
    text = (OLD / analysis / old_run / "facts.json").read_text()
    before = json.loads(text.replace("from 1 detectors", "from 1 detector"))
    after = result.facts
    assert before["analysis"].pop("run_id") == old_run
    assert after["analysis"].pop("run_id") == result.run_id
    assert _differences(_kept(after, before, analysis), _kept(before, before, analysis)) == []
    if analysis not in UNCHANGED:
        old_metrics = json.loads((OLD / analysis / old_run / "manifest.json").read_text())
        assert _differences(result.metrics, old_metrics["metrics"]) == []
    assert _differences({"x": 0.4367107802750642}, {"x": 0.4367107802750643}) == []
    assert _differences({"x": 0.43}, {"x": 0.44}) == [".x: 0.43 vs 0.44"]
