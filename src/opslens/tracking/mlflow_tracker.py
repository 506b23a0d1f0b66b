"""MLflow tracking and registry: parameters, metrics, artifacts, a pyfunc model with its signature.

The model is logged as an MLflow pyfunc whose ``predict`` calls the fitted
object's ``predict_frame`` (a polars frame in, a frame out) and registered
under the analysis name; the runner moves the serving alias ``champion`` (and its
synonym ``current``, which projects made before opslens 0.3 serve) to the new version
only after the run folder is committed, and only when the promotion gate lets it
(:meth:`MlflowTracker.set_alias`, :mod:`opslens.runner.promotion`).

:meth:`MlflowTracker.prepare` runs before any stage: a tracking URI MLflow
cannot use fails there, not after the work; and runs left RUNNING by killed
opslens processes (tagged with their host, pid and process start time) are
ended as KILLED.

Example:
    >>> MlflowTracker("sqlite:////tmp/opslens-doctest-mlflow.db").uri
    'sqlite:////tmp/opslens-doctest-mlflow.db'
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import socket
import warnings
from pathlib import Path
from typing import Any

from opslens.config.secrets import mask_secrets, mask_url, url_secrets
from opslens.errors import ConfigError
from opslens.tracking.runs import process_alive, process_start
from opslens.tracking.tracker import SERVING_ALIAS, ModelToLog

__all__ = ["ALIAS", "SYNONYMS", "MlflowTracker", "OpslensPyfunc"]

log = logging.getLogger(__name__)
ALIAS = SERVING_ALIAS
#: older names of the serving alias, moved with it (``current``: projects made before opslens 0.3)
SYNONYMS = ("current",)
_HOST = socket.gethostname()
_FLUENT_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME")


def _quiet_mlflow() -> None:
    """No progress bars or INFO lines of MLflow's own on the console (ours say what happens)."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for noisy in ("mlflow", "alembic", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def _pyfunc_base() -> type:
    import mlflow.pyfunc

    return mlflow.pyfunc.PythonModel  # type: ignore[no-any-return]


class OpslensPyfunc(_pyfunc_base()):  # type: ignore[misc]
    """MLflow pyfunc wrapper: loads the pickled model and calls its ``predict_frame``."""

    # the logged signature describes the input; MLflow's type-hint validation (and its
    # warning that predict has no hints) does not apply
    _skip_type_hint_validation = True

    def load_context(self, context: Any) -> None:
        """Load the fitted model from the logged artifact (models of opslens 0.1 included)."""
        import joblib

        from opslens.tracking.models import old_class_paths

        with old_class_paths():
            self.model = joblib.load(context.artifacts["model"])

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        """Predict for a pandas frame; returns a pandas frame of outputs.

        Left without type hints: MLflow reads hints as a schema, and ours is the logged signature.
        """
        import polars as pl

        frame = (
            pl.from_pandas(model_input)
            if not isinstance(model_input, pl.DataFrame)
            else model_input
        )
        return self.model.predict_frame(frame).to_pandas()


class MlflowTracker:
    """Log a run to MLflow at ``uri`` (default ``sqlite:///mlflow.db`` beside project.yaml)."""

    def __init__(self, uri: str, artifact_root: Path | None = None) -> None:
        self.uri = uri
        self.artifact_root = artifact_root
        self._run_id: str | None = None
        self._saved: dict[str, str | None] = {}

    def prepare(self, *, experiment: str) -> None:
        """Check MLflow can use the URI (ConfigError if not); end runs of dead processes as KILLED."""
        import mlflow

        _quiet_mlflow()
        try:
            client = mlflow.MlflowClient(tracking_uri=self.uri)
            found = client.get_experiment_by_name(experiment)
        except Exception as e:
            why = " ".join(str(getattr(e, "message", e)).split())
            why = mask_secrets(why, url_secrets(self.uri))
            raise ConfigError(
                f"tracking.uri '{mask_url(self.uri)}' cannot be used by MLflow: {why[:160]}",
                fix="set tracking.uri to an MLflow store (sqlite:///mlflow.db, http://HOST:5000) "
                "or tracking.enabled: false",
            ) from None
        if found is None:
            return
        stale = client.search_runs(
            [found.experiment_id],
            filter_string=f"attributes.status = 'RUNNING' and tags.opslens_host = '{_HOST}'",
            max_results=200,
        )
        for run in stale:
            tags = run.data.tags
            try:
                pid = int(tags.get("opslens_pid", ""))
            except ValueError:
                continue
            if not process_alive(pid, tags.get("opslens_pid_start") or None):
                client.set_terminated(run.info.run_id, status="KILLED")
                log.warning(
                    "MLflow run %s (%s) was left RUNNING by a process that died; marked KILLED",
                    run.info.run_id,
                    run.info.run_name,
                )

    def start(self, *, experiment: str, run_name: str) -> None:
        """Open an MLflow run in the experiment named after the analysis."""
        import mlflow

        _quiet_mlflow()
        # MLflow's fluent API is process-wide: keep what the caller had and give it back in end()
        self._saved = {k: os.environ.get(k) for k in _FLUENT_ENV}
        self._saved["uri"] = mlflow.get_tracking_uri()
        mlflow.set_tracking_uri(self.uri)
        client = mlflow.MlflowClient()
        if self.artifact_root is not None and client.get_experiment_by_name(experiment) is None:
            location = (self.artifact_root / experiment).resolve().as_uri()
            client.create_experiment(experiment, artifact_location=location)
        mlflow.set_experiment(experiment)
        pid = os.getpid()
        tags = {"opslens_host": _HOST, "opslens_pid": str(pid)}
        tags["opslens_pid_start"] = process_start(pid) or ""
        run = mlflow.start_run(run_name=run_name, tags=tags)
        self._run_id = run.info.run_id

    def log_params(self, params: dict[str, Any]) -> None:
        """Log parameters (values cut to MLflow's length limit)."""
        import mlflow

        mlflow.log_params({k: str(v)[:6000] for k, v in params.items()})

    def log_metrics(self, metrics: dict[str, float]) -> None:
        """Log finite numeric metrics."""
        import math

        import mlflow

        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if math.isfinite(float(v))})

    def log_artifacts(self, folder: Path) -> None:
        """Copy the run folder's files as artifacts."""
        import mlflow

        mlflow.log_artifacts(str(folder))

    def log_model(self, model: ModelToLog) -> str | None:
        """Log the pyfunc model with an inferred signature and register a version (no alias)."""
        import tempfile

        import joblib
        import mlflow
        from mlflow.models import infer_signature

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.joblib"
            joblib.dump(model.model, path)
            with warnings.catch_warnings():
                # MLflow's hints (integer columns, type hints on predict) are about its own
                # schema inference; ours is the explicit signature below
                warnings.simplefilter("ignore", UserWarning)
                signature = infer_signature(model.input_example, model.output_example)
                said = io.StringIO()  # MLflow prints "Registered model ..." on stderr itself
                with contextlib.redirect_stderr(said):
                    info = mlflow.pyfunc.log_model(
                        name="model",
                        python_model=OpslensPyfunc(),
                        artifacts={"model": str(path)},
                        signature=signature,
                        input_example=model.input_example,
                        registered_model_name=model.registered_name,
                        pip_requirements=_requirements(),
                    )
        version = getattr(info, "registered_model_version", None)
        if version is not None:
            client = mlflow.MlflowClient()
            if model.description:
                client.update_model_version(model.registered_name, str(version), model.description)
            for key, value in model.tags.items():
                client.set_model_version_tag(model.registered_name, str(version), key, value)
            log.info("registered model '%s' version %s", model.registered_name, version)
        return str(version) if version is not None else None

    def log_steps(self, steps: dict[str, dict[str, Any]]) -> None:
        """Log a run's steps (``{name: {"params": ..., "metrics": ...}}``) as child runs of the
        open run, in its experiment (MLflow's ``mlflow.parentRunId`` tag)."""
        import math

        import mlflow

        client = mlflow.MlflowClient()
        parent = client.get_run(str(self._run_id))
        for name, step in steps.items():
            child = client.create_run(
                parent.info.experiment_id,
                run_name=name,
                tags={"mlflow.parentRunId": parent.info.run_id},
            )
            cid = child.info.run_id
            for key, value in (step.get("params") or {}).items():
                client.log_param(cid, key, str(value)[:500])
            for key, value in (step.get("metrics") or {}).items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    if math.isfinite(float(value)):
                        client.log_metric(cid, key, float(value))
            client.set_terminated(cid, "FINISHED")

    def set_alias(self, name: str, version: str) -> None:
        """Move the serving alias ``champion`` of model ``name`` (and ``current``) to ``version``."""
        import mlflow

        client = mlflow.MlflowClient(tracking_uri=self.uri)
        for alias in (ALIAS, *SYNONYMS):
            client.set_registered_model_alias(name, alias, str(version))

    def end(self, status: str) -> str | None:
        """End the run with MLflow's status (FINISHED, FAILED or KILLED)."""
        import mlflow

        try:
            mlflow.end_run(status=status)
        finally:
            self._restore()
        return self._run_id

    def _restore(self) -> None:
        import mlflow

        if not self._saved:
            return
        mlflow.set_tracking_uri(self._saved.pop("uri") or "")
        for key in _FLUENT_ENV:
            value = self._saved.get(key)
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved = {}


def _requirements() -> list[str]:
    from importlib.metadata import version

    names = ("opslens", "polars", "scikit-learn", "xgboost-cpu", "numpy", "pandas")
    out = []
    for name in names:
        try:
            out.append(f"{name}=={version(name)}")
        except Exception:
            continue
    return out
