"""Every ``fix:`` hint written in src/ that names a params key names one that exists.

The conftest checks every error the suite raises at run time (f-strings included);
this test reads the source, so hints on paths no test reaches are checked too. A hint
in a recipe's package is checked against that recipe's params; elsewhere, against all.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.contracts.param_keys import params_keys, wrong_keys

SRC = Path(__file__).parents[2] / "src" / "opslens"


def _fix_texts(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            for kw in node.keywords:
                if kw.arg != "fix":
                    continue
                parts = [
                    n.value
                    for n in ast.walk(kw.value)
                    if isinstance(n, ast.Constant) and isinstance(n.value, str)
                ]
                out.append((node.lineno, "".join(parts)))
    return out


def _recipe_of(path: Path) -> str | None:
    parts = path.relative_to(SRC).parts
    if parts[0] == "recipes" and len(parts) > 2:
        return "template" if parts[1] == "_template" else parts[1]
    return None


FILES = sorted(SRC.rglob("*.py"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SRC)))
def test_fix_hints_in_source_name_existing_keys(path: Path) -> None:
    recipe = _recipe_of(path)
    bad = [(line, text, wrong_keys(text, recipe)) for line, text in _fix_texts(path)]
    assert not [b for b in bad if b[2]], bad


def test_the_checker_can_fail() -> None:
    assert wrong_keys("lower params.min_size or params.lead_top_k") == [
        "params.min_size",
        "params.lead_top_k",
    ]
    assert wrong_keys("set params.rare.top_n or params.groups.k_min") == []
    assert "params.lead_time.window" in params_keys()["fleet"]
    assert wrong_keys("lower params.k_min", "fleet") == ["params.k_min"]
