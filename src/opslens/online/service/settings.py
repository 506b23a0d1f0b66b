"""How ``opslens serve`` is configured: one validated, frozen settings object.

The bearer token is never a setting itself: ``token_env`` names the
environment variable that holds it (unset or empty: no authentication).

Example:
    >>> s = ServiceSettings(project="demo/project.yaml", port=9000)
    >>> s.port, s.state, s.alias, s.max_batch
    (9000, 'memory', 'champion', 1000)
    >>> ServiceSettings(token_env="NO_SUCH_VARIABLE_SET").token() is None
    True
    >>> ServiceSettings(port=70000)
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for ServiceSettings
    ...
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["TOKEN_ENV", "ServiceSettings"]

TOKEN_ENV = "OPSLENS_SERVICE_TOKEN"


class ServiceSettings(BaseModel):
    """Where the service listens, what it serves, where stream state lives, who may call it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    project: Path = Field(
        default=Path("project.yaml"), description="the project file whose analyses are served"
    )
    host: str = Field(default="127.0.0.1", description="address to listen on")
    port: int = Field(
        default=8000, ge=0, le=65535, description="port to listen on (0: any free port)"
    )
    token_env: str = Field(
        default=TOKEN_ENV, description="environment variable holding the bearer token"
    )
    max_batch: int = Field(
        default=1000, ge=1, description="most instances one batch request may hold"
    )
    max_body_bytes: int = Field(
        default=16_000_000, ge=1_000, description="largest request body taken, in bytes"
    )
    state: str = Field(
        default="memory", description="stream state store: memory, or redis://host:port/db"
    )
    alias: str = Field(
        default="champion",
        description="the registry alias whose version is served (``current``: its old synonym)",
    )
    poll_seconds: float = Field(
        default=5.0, gt=0, description="how often the registry is asked for a new version"
    )

    def token(self) -> str | None:
        """The bearer token callers must send, or None when the service is open."""
        return os.environ.get(self.token_env) or None
