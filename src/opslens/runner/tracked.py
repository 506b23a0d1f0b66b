"""The runner's side of the tracker: which one a project uses, and calls Ctrl-C cannot cut.

Every tracker call of a run goes through :func:`tracked`: it runs with SIGINT
and SIGTERM held (:func:`opslens.runner.interrupts.deferred`), and a failure
of the tracking store (a locked or full database, a server gone) becomes a
:class:`~opslens.errors.RunError` naming ``tracking.uri``, secrets masked.

Example:
    >>> from opslens.recipes import project_from_mapping
    >>> project = project_from_mapping({"tracking": {"enabled": False},
    ...     "analyses": [{"name": "eta", "recipe": "distribution", "source": {"kind": "memory"},
    ...                   "columns": {"target": "minutes", "categorical": ["route"]}}]})
    >>> tracker = make_tracker(project)
    >>> type(tracker).__name__
    'MemoryTracker'
    >>> tracked(project, "log the metrics", tracker.log_metrics, {"auroc": 0.9}); tracker.metrics
    {'auroc': 0.9}
    >>> def broken(_: object) -> None:
    ...     raise RuntimeError("database is locked")
    >>> tracked(project, "log the metrics", broken, {})
    Traceback (most recent call last):
    ...
    opslens.errors.RunError: MLflow at tracking.uri 'sqlite:///mlflow.db' failed to log the metrics (RuntimeError: database is locked); fix: check the tracking store and its disk, or set tracking.enabled: false
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opslens.config import ProjectConfig, mask_secrets
from opslens.errors import OpslensError, RunError
from opslens.runner.interrupts import deferred
from opslens.tracking.tracker import MemoryTracker, Tracker

__all__ = ["Session", "make_tracker", "tracked"]


def make_tracker(project: ProjectConfig) -> Tracker:
    """MLflow at the project's tracking URI, or a memory tracker when disabled."""
    if not project.tracking.enabled:
        return MemoryTracker()
    from opslens.tracking.mlflow_tracker import MlflowTracker

    return MlflowTracker(project.tracking_uri(), artifact_root=project.root / "mlartifacts")


def tracked(project: ProjectConfig, what: str, call: Any, *args: Any, **kwargs: Any) -> Any:
    """``call(*args, **kwargs)`` with interrupts held; its failures named as tracker failures."""
    with deferred():
        try:
            return call(*args, **kwargs)
        except OpslensError:
            raise
        except Exception as e:
            first = mask_secrets((str(e).splitlines() or [""])[0][:200], project.secrets)
            raise RunError(
                f"MLflow at tracking.uri '{mask_secrets(project.tracking.uri, project.secrets)}' "
                f"failed to {what} ({type(e).__name__}: {first})",
                fix="check the tracking store and its disk, or set tracking.enabled: false",
            ) from None


@dataclass
class Session:
    """The tracker of a run and whether its tracked run is open (to end it on any failure).

    Example:
        >>> Session(MemoryTracker()).open
        False
    """

    tracker: Tracker
    open: bool = False
