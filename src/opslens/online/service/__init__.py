"""The HTTP scoring service: ``opslens serve`` and :func:`create_app` for tests and embedding.

Modules: ``settings`` (what the service is told), ``schemas`` (typed request and
response models per analysis from each predictor's input schema), ``served``
(which model version answers, hot swaps from the registry), ``state`` (stream
state per stream id: memory or Redis), ``app`` (the FastAPI routes).

Example:
    >>> ServiceSettings().port
    8000
"""

from __future__ import annotations

from opslens.online.service.app import create_app
from opslens.online.service.settings import ServiceSettings

__all__ = ["ServiceSettings", "create_app"]
