"""The real Redis fixture of the service tests."""

from __future__ import annotations

from tests.e2e.service.conftest import redis_url

__all__ = ["redis_url"]
