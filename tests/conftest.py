"""Shared fixtures: real services (PostgreSQL) and matplotlib's headless backend.

In CI (``CI=true``) a missing service fails the test; elsewhere it skips with the reason.

Every ``OpslensError`` raised anywhere in the suite has its fix hint checked: a
``params.x.y`` key it names must exist in a recipe's params schema, or the test
that triggered the error fails (``_fix_hints_name_real_keys``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import matplotlib
import pytest

matplotlib.use("Agg")


@pytest.fixture(autouse=True, scope="session")
def _fix_hints_name_real_keys() -> Iterator[None]:
    """Fail any error path whose ``fix:`` names a params key that does not exist."""
    from opslens.errors import OpslensError
    from tests.contracts.param_keys import wrong_keys

    original = OpslensError.__init__

    def checked(self: OpslensError, message: str, *, fix: str | None = None) -> None:
        original(self, message, fix=fix)
        wrong = wrong_keys(fix or "")
        assert not wrong, f"fix hint names unknown key(s) {wrong}: {fix!r}"

    OpslensError.__init__ = checked  # type: ignore[method-assign]
    try:
        yield
    finally:
        OpslensError.__init__ = original  # type: ignore[method-assign]


@pytest.fixture
def with_template(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Register recipes/_template for one test, as a new recipe would be registered."""
    import opslens.recipes as registry

    monkeypatch.setitem(registry._PACKAGES, "template", "opslens.recipes._template")
    registry.get_recipe.cache_clear()
    registry.registered_project_model.cache_clear()
    yield
    registry.get_recipe.cache_clear()
    registry.registered_project_model.cache_clear()


PG_URL = os.environ.get("OPSLENS_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _service_missing(what: str, error: Exception) -> None:
    message = f"{what} is not reachable ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})"
    if os.environ.get("CI") == "true":
        pytest.fail(message + " and CI=true requires it", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def pg_url() -> str:
    """A reachable PostgreSQL URL (database ``test``), or skip/fail as above."""
    import sqlalchemy as sa

    from opslens.io.sources.sql import engine_url

    try:
        engine = sa.create_engine(engine_url(PG_URL), connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
    except Exception as e:
        _service_missing(f"PostgreSQL at {PG_URL}", e)
    return PG_URL


@pytest.fixture
def pg_schema(pg_url: str) -> Iterator[str]:
    """A fresh schema in the test database, dropped afterwards (tests run in parallel)."""
    import sqlalchemy as sa

    from opslens.io.sources.sql import engine_url

    name = "t_" + uuid.uuid4().hex[:10]
    engine = sa.create_engine(engine_url(pg_url))
    with engine.begin() as conn:
        conn.execute(sa.text(f"create schema {name}"))
    try:
        yield name
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"drop schema {name} cascade"))
        engine.dispose()
