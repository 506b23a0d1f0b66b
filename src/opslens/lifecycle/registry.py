"""The MLflow model registry of one analysis, as the life-cycle spine uses it (any recipe).

:class:`MlflowRegistry` implements :class:`opslens.core.lifecycle.Registry`: which version an
alias names, every version, moving an alias (``champion`` moves ``current`` with it, the
synonym old projects serve), and loading a version's predictor. The audit of alias moves
(who held what, when, why) is the spine's, in the :class:`~opslens.lifecycle.history.HistoryStore`.

:func:`open_stores` gives the history and the registry of an analysis of a project.

Example:
    >>> import tempfile
    >>> reg = MlflowRegistry(f"sqlite:///{tempfile.mkdtemp()}/mlflow.db", "pat")
    >>> reg.version_of("champion") is None, reg.versions()
    (True, [])
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from opslens.config import ProjectConfig
from opslens.core.lifecycle import CHAMPION, CURRENT
from opslens.errors import ConfigError
from opslens.lifecycle.history import HistoryStore
from opslens.recipes import get_recipe
from opslens.tracking.models import load_registered

__all__ = ["MlflowRegistry", "log_steps", "open_stores"]


class MlflowRegistry:
    """Registered versions and aliases of the model named after one analysis."""

    def __init__(self, uri: str, analysis: str) -> None:
        self.uri = uri
        self.analysis = analysis

    def _client(self) -> Any:
        import mlflow

        return mlflow.MlflowClient(tracking_uri=self.uri)

    def version_of(self, alias: str) -> str | None:
        """The version ``alias`` points to, or None."""
        from mlflow.exceptions import MlflowException

        try:
            return str(self._client().get_model_version_by_alias(self.analysis, alias).version)
        except MlflowException:
            return None

    def versions(self) -> list[str]:
        """Every registered version, oldest first."""
        from mlflow.exceptions import MlflowException

        try:
            found = self._client().search_model_versions(f"name = '{self.analysis}'")
        except MlflowException:
            return []
        return sorted((str(v.version) for v in found), key=int)

    def set_alias(self, alias: str, version: str) -> None:
        """Point ``alias`` at ``version`` (``champion`` takes ``current`` along)."""
        client = self._client()
        client.set_registered_model_alias(self.analysis, alias, str(version))
        if alias == CHAMPION:
            client.set_registered_model_alias(self.analysis, CURRENT, str(version))

    def load(self, version: str) -> Any:
        """The predictor of ``version`` (a number or an alias), loaded as a fresh process would."""
        if version.isdigit():
            import mlflow

            previous = mlflow.get_tracking_uri()
            mlflow.set_tracking_uri(self.uri)
            try:
                from opslens.tracking.models import old_class_paths

                with old_class_paths():
                    model = mlflow.pyfunc.load_model(f"models:/{self.analysis}/{version}")
            finally:
                mlflow.set_tracking_uri(previous)
            return model.unwrap_python_model().model
        return load_registered(self.uri, self.analysis, version).predictor

    def run_of(self, version: str) -> str | None:
        """The opslens run id tagged on ``version`` (None if it has no tag)."""
        from mlflow.exceptions import MlflowException

        try:
            mv = self._client().get_model_version(self.analysis, str(version))
        except MlflowException:
            return None
        found = (mv.tags or {}).get("opslens_run_id")
        return str(found) if found else None

    def log_steps(self, run_id: str, steps: Mapping[str, Mapping[str, Any]]) -> None:
        """Log ``steps`` as child runs of the tracked run ``run_id``."""
        log_steps(self.uri, run_id, steps)


def _finite(metrics: Mapping[str, Any]) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in metrics.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(float(v))
    }


def log_steps(uri: str, run_id: str, steps: Mapping[str, Mapping[str, Any]]) -> None:
    """Log each step as a child run (``mlflow.parentRunId``) of the MLflow run ``run_id``."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri)
    parent = client.get_run(run_id)
    for name, step in steps.items():
        child = client.create_run(
            parent.info.experiment_id, run_name=name, tags={"mlflow.parentRunId": run_id}
        )
        cid = child.info.run_id
        for key, value in (step.get("params") or {}).items():
            client.log_param(cid, key, str(value)[:500])
        for key, value in _finite(step.get("metrics") or {}).items():
            client.log_metric(cid, key, value)
        client.set_terminated(cid, "FINISHED")


def open_stores(project: ProjectConfig, name: str) -> tuple[HistoryStore, MlflowRegistry]:
    """The monitoring history and the registry of analysis ``name``; ConfigError when its
    recipe has no life cycle or tracking is off."""
    analysis = project.analysis(name)
    recipe = get_recipe(analysis.recipe)
    if recipe.lifecycle is None:
        raise ConfigError(
            f"analysis '{name}' uses the {recipe.name} recipe, which has no life cycle "
            "(batch scoring, monitoring, retraining)",
            fix="name an analysis whose recipe is segments, residual or distribution; "
            f"score {recipe.name} data with `opslens score`",
        )
    if not project.tracking.enabled:
        raise ConfigError(
            "batch scoring and retraining need the MLflow registry, but tracking is disabled",
            fix="set tracking.enabled: true in project.yaml",
        )
    path = project.runs_root() / "lifecycle-history.db"
    if not path.exists() and (project.runs_root() / "segments-history.db").exists():
        path = project.runs_root() / "segments-history.db"  # the name before opslens 0.3
    url = recipe.lifecycle.history_url(analysis.params) or f"sqlite:///{path.resolve()}"
    project.runs_root().mkdir(parents=True, exist_ok=True)
    return HistoryStore(url, key=recipe.lifecycle.history_key), MlflowRegistry(
        project.tracking_uri(), name
    )
