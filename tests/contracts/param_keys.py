"""Which ``params.`` keys exist: every fix hint that names one must name a real key.

``params_keys()`` walks each recipe's params JSON Schema ($refs resolved) into dotted
paths; ``wrong_keys(text)`` lists the ``params.x.y`` names in a message that exist in
no recipe's schema.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

KEY = re.compile(r"\bparams((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")


def _paths(schema: dict[str, Any], node: dict[str, Any], prefix: str) -> set[str]:
    if "$ref" in node:
        node = schema["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    out: set[str] = set()
    for variant in node.get("anyOf", []) + node.get("allOf", []):
        out |= _paths(schema, variant, prefix)
    for name, sub in (node.get("properties") or {}).items():
        path = f"{prefix}.{name}"
        out.add(path)
        out |= _paths(schema, sub, path)
    return out


@cache
def params_keys() -> dict[str, frozenset[str]]:
    """recipe name → every dotted params key (``params.rare.top_n``), template included."""
    from opslens.recipes import get_recipe, recipe_names
    from opslens.recipes._template import RECIPE as TEMPLATE

    recipes = [get_recipe(n) for n in recipe_names()] + [TEMPLATE]
    out = {}
    for recipe in recipes:
        schema = recipe.params_model.model_json_schema()
        out[recipe.name] = frozenset(_paths(schema, schema, "params"))
    return out


def wrong_keys(text: str, recipe: str | None = None) -> list[str]:
    """The ``params.`` keys named in ``text`` that do not exist (in ``recipe``, or in any)."""
    known = params_keys()
    pool = known[recipe] if recipe is not None else frozenset().union(*known.values())
    return [f"params{m.group(1)}" for m in KEY.finditer(text) if f"params{m.group(1)}" not in pool]
