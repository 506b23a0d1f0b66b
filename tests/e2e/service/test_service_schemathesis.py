"""Schemathesis against the service serving every recipe: 0 failures on all its checks.

One project holds the bundled demo of each of the five recipes (smaller where the demo is
slow), each run once (tracking off: the service serves the latest run folders). The
service's own OpenAPI document drives property-based requests to every operation (valid
ones and ones that break the schema) with every built-in check of Schemathesis 4: no 5xx,
documented status codes and content types, answers matching their schema, a
schema-violating request refused, a schema-valid one accepted, the token not ignored.
So the service either publishes what it accepts or refuses it, and never answers 500.

The examples per operation are few (``OPSLENS_SCHEMATHESIS_EXAMPLES``, default 25) so the
module runs in about a minute after its runs; raise it to search deeper.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from opslens.api import load_project
from opslens.online.service import ServiceSettings, create_app
from opslens.runner import run_analysis
from tests.unit.ui.conftest import RECIPES, all_recipes_project

pytestmark = pytest.mark.slow

TOKEN_ENV = "OPSLENS_SCHEMATHESIS_TOKEN"
TOKEN = "schemathesis-token"
EXAMPLES = int(os.environ.get("OPSLENS_SCHEMATHESIS_EXAMPLES", "25"))


@pytest.fixture(scope="module")
def every_recipe_served(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project of the five recipes' demos, each analysis run once."""
    folder = tmp_path_factory.mktemp("schemathesis")
    project = load_project(all_recipes_project(folder))
    assert sorted({a.recipe for a in project.analyses}) == sorted(RECIPES)
    for analysis in project.analyses:
        run_analysis(project, analysis.name)
    return folder / "project.yaml"


@pytest.fixture(scope="module")
def api_schema(every_recipe_served: Path) -> Any:
    """The service's OpenAPI document, behind a token, loaded the way a client would."""
    os.environ[TOKEN_ENV] = TOKEN
    app = create_app(ServiceSettings(project=every_recipe_served, token_env=TOKEN_ENV))
    headers = {"Authorization": f"Bearer {TOKEN}"}
    return schemathesis.openapi.from_asgi("/openapi.json", app, headers=headers)


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    """Schemathesis 4's fixture loader reads ``node._nodeid``, which pytest 9 renamed."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


def test_every_recipe_is_published(api_schema: Any, every_recipe_served: Path) -> None:
    """The document holds a typed /predict for each analysis, /events and /score for propensity."""
    paths = set(api_schema.raw_schema["paths"])
    project = load_project(every_recipe_served)
    for analysis in project.analyses:
        assert f"/predict/{analysis.name}" in paths
    online = {a.name for a in project.analyses if a.recipe == "propensity"}
    assert online and all(f"/events/{a}" in paths and f"/score/{a}" in paths for a in online)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)
def test_service_conforms(case: Any) -> None:
    """Every check of Schemathesis on every operation, with the token."""
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"})
