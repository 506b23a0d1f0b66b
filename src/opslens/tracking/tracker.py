"""The tracker seam: what a run tells an experiment tracker, and two implementations.

:class:`Tracker` is the protocol the runner talks to. :class:`MemoryTracker`
keeps everything in lists (tests, ``tracking.enabled: false``);
:class:`opslens.tracking.mlflow_tracker.MlflowTracker` logs to MLflow.

Example:
    >>> t = MemoryTracker()
    >>> t.start(experiment="eta", run_name="r1")
    >>> t.log_metrics({"auroc": 0.93})
    >>> _ = t.end("FINISHED")
    >>> t.metrics
    {'auroc': 0.93}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

__all__ = ["SERVING_ALIAS", "MemoryTracker", "ModelToLog", "Tracker", "flatten_params"]

#: the registry alias every recipe serves (``current`` is moved with it, for older projects)
SERVING_ALIAS = "champion"


@dataclass(frozen=True)
class ModelToLog:
    """A fitted model to log and register: the object, an input example and its output."""

    model: Any
    input_example: Any
    output_example: Any
    registered_name: str
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)


class Tracker(Protocol):
    """What the runner needs from an experiment tracker."""

    def prepare(self, *, experiment: str) -> None:
        """Check the tracker can be used, before any stage runs (ConfigError if not)."""

    def start(self, *, experiment: str, run_name: str) -> None:
        """Open a tracked run."""

    def log_params(self, params: dict[str, Any]) -> None:
        """Record flat parameters (already masked)."""

    def log_metrics(self, metrics: dict[str, float]) -> None:
        """Record numeric metrics."""

    def log_artifacts(self, folder: Path) -> None:
        """Copy a folder's files as artifacts."""

    def log_model(self, model: ModelToLog) -> str | None:
        """Log the model with its signature and register a version (no alias yet); return it."""

    def set_alias(self, name: str, version: str) -> None:
        """Point the serving alias ``champion`` (and ``current``) of ``name`` at ``version``."""

    def end(self, status: str) -> str | None:
        """Close the run (FINISHED, FAILED, or KILLED when interrupted); return its run id."""


@dataclass
class MemoryTracker:
    """A tracker that keeps what it is told, for tests and MLflow-free runs."""

    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    artifacts: list[Path] = field(default_factory=list)
    models: list[ModelToLog] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)
    status: str | None = None
    runs: list[str] = field(default_factory=list)
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)

    def prepare(self, *, experiment: str) -> None:
        """Nothing to check: memory is always there."""

    def start(self, *, experiment: str, run_name: str) -> None:
        """Open a run (remembered by name)."""
        self.runs.append(f"{experiment}/{run_name}")

    def log_params(self, params: dict[str, Any]) -> None:
        """Keep the parameters."""
        self.params.update(params)

    def log_metrics(self, metrics: dict[str, float]) -> None:
        """Keep the metrics."""
        self.metrics.update(metrics)

    def log_artifacts(self, folder: Path) -> None:
        """Remember the folder."""
        self.artifacts.append(folder)

    def log_model(self, model: ModelToLog) -> str | None:
        """Remember the model; its version is its position."""
        self.models.append(model)
        return str(len(self.models))

    def log_steps(self, steps: dict[str, dict[str, Any]]) -> None:
        """Remember the run's steps (child runs in MLflow)."""
        self.steps.update(steps)

    def set_alias(self, name: str, version: str) -> None:
        """Remember where the alias points."""
        self.aliases[name] = version

    def end(self, status: str) -> str | None:
        """Remember the final status."""
        self.status = status
        return self.runs[-1] if self.runs else None


def flatten_params(config: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Flatten nested config into ``a.b.c`` keys with short string values.

    Example:
        >>> flatten_params({"source": {"kind": "file", "path": "x.csv"}, "params": {"k": [2, 8]}})
        {'source.kind': 'file', 'source.path': 'x.csv', 'params.k': '[2, 8]'}
    """
    out: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten_params(value, prefix=name + "."))
        elif value is not None and value != {} and value != []:
            out[name] = str(value)[:500]
    return out
