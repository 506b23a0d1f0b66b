"""The real Redis the state tests use (CI=true: missing means failure, as for PostgreSQL)."""

from __future__ import annotations

import os

import pytest

from tests.conftest import _service_missing

REDIS_URL = os.environ.get("OPSLENS_TEST_REDIS", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A reachable Redis URL, or skip (fail with CI=true)."""
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
        client.ping()
        client.close()
    except Exception as e:
        _service_missing(f"Redis at {REDIS_URL}", e)
    return REDIS_URL
