"""Load what the registry holds: a committed run's model, or the version the MLflow alias names.

The online side only reads committed runs (``runs/<analysis>/latest`` or a
named run) or the registered model the serving alias ``champion`` points to
(``current`` for projects registered before opslens 0.3), and says which
(:attr:`LoadedPredictor.origin`). The alias moves only after a run is
committed, so both name a complete run. When ``latest`` is a run without a model
(a first run of only some stages, a scored batch), the newest run that holds one
is loaded.

Models written before opslens 0.2 (the spine v2 move) load through aliases of
their old class paths; one that cannot serve the predictor protocol (the old
fleet model scored fingerprints only) gets a one-line error saying so and how
to re-run. The old paths are resolved through the recipe registry (the module
of the recipe's predictor), never by naming a recipe's internals.

Example:
    >>> import tempfile, pathlib
    >>> load_predictor(pathlib.Path(tempfile.mkdtemp()), "eta")
    Traceback (most recent call last):
    ...
    opslens.errors.RunError: analysis 'eta' has no complete run yet; fix: run `opslens run` (or `opslens run --analysis eta`) first
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import joblib

from opslens.core.predictor import Predictor
from opslens.errors import RunError
from opslens.tracking.runs import RunView, list_runs, open_run

__all__ = [
    "FALLBACK_ALIASES",
    "OLD_PATHS",
    "LoadedPredictor",
    "ModelSource",
    "load_model",
    "load_predictor",
    "load_registered",
    "old_class_paths",
]

ModelSource = Literal["latest", "registry"]
log = logging.getLogger("opslens.tracking")

# module paths of pickled classes before spine v2 → the recipe whose predictor's module holds
# those classes now
OLD_PATHS = {
    "opslens.models.pattern_predictor": "distribution",
    "opslens.models.rare_scorer": "fleet",
}
#: an alias → the older alias read when a project has none by that name (opslens before 0.3)
FALLBACK_ALIASES = {"champion": "current"}


@dataclass(frozen=True)
class LoadedPredictor:
    """A predictor, the run it came from, its metadata, and where it was loaded from."""

    predictor: Predictor
    run: RunView | None
    run_id: str
    metadata: dict[str, Any]
    origin: str


@contextmanager
def old_class_paths() -> Iterator[None]:
    """Let pickles that name pre-0.2 module paths find today's classes."""
    added = []
    for old, recipe in OLD_PATHS.items():
        if old not in sys.modules:
            sys.modules[old] = importlib.import_module(_predictor_module(recipe))
            added.append(old)
    try:
        yield
    finally:
        for old in added:
            sys.modules.pop(old, None)


def _predictor_module(recipe: str) -> str:
    """The module of ``recipe``'s predictor class, found through the registry (loaded lazily:
    tracking sits beside the recipes, so it names none of them)."""
    registry = importlib.import_module("opslens.recipes")
    predictor = registry.get_recipe(recipe).predictor
    return str(predictor.__module__) if predictor is not None else f"opslens.recipes.{recipe}"


def _with_model(runs_root: Path, analysis: str, run_id: str) -> RunView:
    """The run ``run_id``; for ``latest``, the newest run holding a model when latest has none."""
    run = open_run(runs_root, analysis, run_id)
    if run_id != "latest" or run.has("model/model.joblib"):
        return run
    found = next((v for v in list_runs(runs_root, analysis) if v.has("model/model.joblib")), None)
    if found is None:
        return run
    log.info(
        "'%s': latest run %s holds no model; loading run %s", analysis, run.run_id, found.run_id
    )
    return found


def _checked(obj: Any, analysis: str, run_id: str, version: str) -> Predictor:
    if not isinstance(obj, Predictor):
        raise RunError(
            f"run {run_id} of '{analysis}' was made by an older opslens ({version}) whose "
            f"{type(obj).__name__} does not serve predictions to the stream, service or UI",
            fix=f"re-run it with this version: `opslens run --analysis {analysis}`",
        )
    return obj


def load_predictor(runs_root: Path, analysis: str, run_id: str = "latest") -> LoadedPredictor:
    """The model of ``analysis``'s latest (or given) run; RunError if it has none."""
    run = _with_model(runs_root, analysis, run_id)
    path = run.path / "model" / "model.joblib"
    if not path.is_file():
        raise RunError(
            f"run {run.run_id} of '{analysis}' holds no model to predict with",
            fix="run all stages of the analysis (its training pipeline saves the model)",
        )
    version = str(run.manifest.get("versions", {}).get("opslens", "unknown"))
    try:
        with old_class_paths():
            obj = joblib.load(path)
    except (AttributeError, ModuleNotFoundError, ImportError) as e:
        raise RunError(
            f"the model of run {run.run_id} of '{analysis}' was made by opslens {version} "
            f"and cannot be loaded by this version ({e})",
            fix=f"re-run it: `opslens run --analysis {analysis}`",
        ) from None
    except Exception as e:  # a truncated or overwritten file: EOFError, UnpicklingError, ...
        raise RunError(
            f"the model file {path} is damaged and cannot be loaded "
            f"({type(e).__name__}: {str(e).splitlines()[0][:80] if str(e) else 'no detail'})",
            fix=f"re-run the analysis: `opslens run --analysis {analysis}`",
        ) from None
    where = "latest" if run_id == "latest" else run_id
    return LoadedPredictor(
        predictor=_checked(obj, analysis, run.run_id, version),
        run=run,
        run_id=run.run_id,
        metadata=run.json("model/metadata.json"),
        origin=f"run folder {run.path} ({where})",
    )


def load_registered(tracking_uri: str, analysis: str, alias: str = "champion") -> LoadedPredictor:
    """The model version the MLflow alias points to, unwrapped to its opslens predictor.

    ``champion`` falls back to ``current`` for projects registered before opslens 0.3.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    try:
        mv = client.get_model_version_by_alias(analysis, alias)
    except MlflowException as e:
        older = FALLBACK_ALIASES.get(alias)
        if older is not None:
            with contextlib.suppress(RunError):
                return load_registered(tracking_uri, analysis, older)
        raise RunError(
            f"no registered model '{analysis}@{alias}' at {tracking_uri} ({e.message.splitlines()[0]})",
            fix="run the analysis with tracking enabled, or use --from latest",
        ) from None
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(tracking_uri)
    try:
        with old_class_paths():
            model = mlflow.pyfunc.load_model(f"models:/{analysis}@{alias}")
    finally:
        mlflow.set_tracking_uri(previous)
    inner = model.unwrap_python_model().model
    run_id = str((mv.tags or {}).get("opslens_run_id", mv.run_id))
    return LoadedPredictor(
        predictor=_checked(inner, analysis, run_id, "unknown"),
        run=None,
        run_id=run_id,
        metadata={"version": str(mv.version), "mlflow_run_id": mv.run_id},
        origin=f"MLflow models:/{analysis}@{alias} (version {mv.version}, run {run_id})",
    )


def load_model(project: Any, analysis: str, source: ModelSource = "latest") -> LoadedPredictor:
    """The predictor of ``analysis`` of ``project``: from its latest run, or from the registry."""
    project.analysis(analysis)
    if source == "registry":
        if not project.tracking.enabled:
            raise RunError(
                "the project has tracking disabled, so there is no registry to load from",
                fix="use --from latest, or set tracking.enabled: true",
            )
        return load_registered(project.tracking_uri(), analysis)
    return load_predictor(project.runs_root(), analysis)
