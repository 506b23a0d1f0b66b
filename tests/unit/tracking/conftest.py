"""Fixtures of the tracking tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture
def isolated_mlflow(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Undo MLflow's process-wide state (tracking URI, experiment, env vars) after the test."""
    import mlflow
    from mlflow.tracking import fluent
    from mlflow.tracking._tracking_service import utils

    monkeypatch.setattr(utils, "_tracking_uri", utils._tracking_uri)
    monkeypatch.setattr(fluent, "_active_experiment_id", fluent._active_experiment_id)
    for var in (
        "MLFLOW_TRACKING_URI",
        "MLFLOW_EXPERIMENT_ID",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR",
    ):
        if var in os.environ:
            monkeypatch.setenv(var, os.environ[var])
        else:  # recorded as unset, so anything MLflow sets is removed afterwards
            monkeypatch.setenv(var, "")
            monkeypatch.delenv(var)
    yield
    while mlflow.active_run() is not None:
        mlflow.end_run()
