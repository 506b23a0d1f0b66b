"""Run a recipe: load, run stages, save, log, time and track; commit atomically.

The runner is the only place where a recipe's results touch the disk. It
writes into a temporary run folder, logs to the tracker, then commits; any
failure aborts the folder, so the previous ``latest`` run stays whole.
``stages=[...]`` runs only those stages and takes every other input from the
latest complete run (whose artifacts the new run starts from).

Example:
    >>> from opslens.config import load_project
    >>> # run_analysis(load_project("examples/distribution/project.yaml"), "trip-eta")
"""

from __future__ import annotations

import logging
import platform
import shutil
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import polars as pl

from opslens.config import AnalysisConfig, ProjectConfig, mask_secrets
from opslens.errors import OpslensWarning, RunError
from opslens.logs import SecretFilter
from opslens.recipes.base import Out, Recipe, StageContext
from opslens.recipes.registry import get_recipe
from opslens.tracking.runs import RunView, RunWriter, open_run, write_json
from opslens.tracking.tracker import MemoryTracker, ModelToLog, Tracker, flatten_params

__all__ = ["RunResult", "make_tracker", "run_analysis"]

log = logging.getLogger("opslens.run")
_PACKAGES = ("opslens", "polars", "numpy", "scikit-learn", "xgboost-cpu", "statsmodels", "mlflow")


@dataclass(frozen=True)
class RunResult:
    """Where the committed run is, and its headline metrics."""

    analysis: str
    run_id: str
    path: Path
    metrics: dict[str, float]
    mlflow_run_id: str | None

    def headline(self, n: int = 6) -> str:
        """The first ``n`` metrics as ``name=value`` pairs, for one line of output."""
        return ", ".join(f"{k}={v:.3f}" for k, v in list(self.metrics.items())[:n])


def make_tracker(project: ProjectConfig) -> Tracker:
    """MLflow at the project's tracking URI, or a memory tracker when disabled."""
    if not project.tracking.enabled:
        return MemoryTracker()
    from opslens.tracking.mlflow_tracker import MlflowTracker

    return MlflowTracker(project.tracking_uri(), artifact_root=project.root / "mlartifacts")


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def _masked_config(analysis: AnalysisConfig, secrets: Iterable[str]) -> dict[str, Any]:
    import json

    text = json.dumps(analysis.model_dump(mode="json"))
    return dict(json.loads(mask_secrets(text, secrets)))


def _load_input(name: str, memory: dict[str, Any], base: RunView | None, recipe: Recipe) -> Any:
    if name in memory:
        return memory[name]
    if base is not None:
        if base.has(f"tables/{name}.parquet"):
            return base.table(name)
        if base.has(f"data/{name}.joblib"):
            return base.object(name)
    producer = next((s.name for s in recipe.stages if name in s.outputs), "an earlier stage")
    raise RunError(
        f"stage input '{name}' is not available from the latest run",
        fix=f"include the stage '{producer}' in --stages, or run all stages once",
    )


def _save(writer: RunWriter, out: Out, stage: str) -> None:
    for name, value in out.values.items():
        if isinstance(value, pl.DataFrame):
            writer.write_table(name, value)
        else:
            writer.write_object(name, value)
    for name, table in out.tables.items():
        writer.write_table(name, table)
    for name, figure in out.plots.items():
        writer.write_plot(name, figure)
    if out.model is not None:
        import joblib

        joblib.dump(out.model.model, writer.path / "model" / "model.joblib")
        write_json(writer.path / "model" / "metadata.json", {"stage": stage, **out.model.metadata})
        out.model.input_example.write_parquet(writer.path / "model" / "input_example.parquet")


def run_analysis(
    project: ProjectConfig,
    name: str,
    *,
    stages: Sequence[str] | None = None,
    tracker: Tracker | None = None,
    progress: Any = None,
) -> RunResult:
    """Run analysis ``name`` of ``project`` (all stages, or ``stages``) and commit the run."""
    from opslens.data.load import load_source

    analysis = project.analysis(name)
    recipe = get_recipe(analysis.recipe)
    params = recipe.validate(analysis)
    selected = recipe.select(stages)
    runs_root = project.runs_root()
    base = open_run(runs_root, name) if stages is not None else None
    tracker = tracker or make_tracker(project)

    writer = RunWriter(runs_root, name)
    handler = logging.FileHandler(writer.path / "run.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(SecretFilter(project.secrets))
    root_logger = logging.getLogger("opslens")
    root_logger.addHandler(handler)
    if root_logger.level == logging.NOTSET or root_logger.level > logging.INFO:
        root_logger.setLevel(logging.INFO)
    started = datetime.now(UTC)
    timings: dict[str, float] = {}
    facts: dict[str, Any] = dict(base.facts) if base is not None and base.has("facts.json") else {}
    metrics: dict[str, float] = {}
    if base is not None:
        metrics.update(base.manifest.get("metrics", {}))
        for sub in ("tables", "plots", "data", "model"):
            shutil.copytree(base.path / sub, writer.path / sub, dirs_exist_ok=True)
    tracker_open = False
    try:
        log.info(
            "run %s of '%s' (%s recipe): stages %s",
            writer.run_id,
            name,
            recipe.name,
            ", ".join(s.name for s in selected),
        )
        memory: dict[str, Any] = {}
        run_warnings: list[str] = []
        fingerprint: str | None = (
            base.manifest.get("input", {}).get("fingerprint") if base else None
        )
        description: str | None = None

        def track(items: Iterable[Any], description: str, total: int | None) -> Iterator[Any]:
            if progress is None:
                yield from items
                return
            task = progress.add_task(description, total=total)
            for item in items:
                yield item
                progress.advance(task)
            progress.remove_task(task)

        ctx = StageContext(
            analysis=analysis, params=params, random_state=analysis.random_state, track=track
        )
        model: ModelToLog | None = None
        stage_task = (
            progress.add_task(f"{name}", total=len(selected)) if progress is not None else None
        )
        for stage in selected:
            t0 = time.perf_counter()
            if "raw" in stage.inputs and "raw" not in memory:
                loaded = load_source(analysis)
                memory["raw"] = loaded.frame
                fingerprint, description = loaded.fingerprint, loaded.description
                log.info(
                    "loaded %d rows × %d columns from %s",
                    loaded.frame.height,
                    loaded.frame.width,
                    loaded.description,
                )
            inputs = {k: _load_input(k, memory, base, recipe) for k in stage.inputs}
            if progress is not None and stage_task is not None:
                progress.update(stage_task, description=f"{name}: {stage.name}")
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", OpslensWarning)
                out = stage.func(ctx, **inputs)
            for w in caught:
                if issubclass(w.category, OpslensWarning):
                    log.warning("%s: %s", stage.name, w.message)
                    run_warnings.append(f"{stage.name}: {w.message}")
                else:
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            memory.update(out.values)
            _save(writer, out, stage.name)
            if out.facts:
                facts[stage.name] = out.facts
            metrics.update(out.metrics)
            if out.model is not None:
                output = out.model.model.predict_frame(out.model.input_example)
                model = ModelToLog(
                    model=out.model.model,
                    input_example=out.model.input_example.to_pandas(),
                    output_example=output.to_pandas(),
                    registered_name=name,
                    description=f"opslens {recipe.name} model, run {writer.run_id}",
                )
            timings[stage.name] = round(time.perf_counter() - t0, 4)
            if progress is not None and stage_task is not None:
                progress.advance(stage_task)
            log.info("stage %s done in %.2f s", stage.name, timings[stage.name])
        if progress is not None and stage_task is not None:
            progress.remove_task(stage_task)

        config = _masked_config(analysis, project.secrets)
        facts["analysis"] = {
            "name": name,
            "recipe": recipe.name,
            "source": description
            or (base.facts.get("analysis", {}).get("source") if base else None),
            "run_id": writer.run_id,
        }
        write_json(writer.path / "facts.json", facts)
        tracker.start(experiment=name, run_name=writer.run_id)
        tracker_open = True
        tracker.log_params(flatten_params(config))
        tracker.log_metrics(metrics)
        model_version = tracker.log_model(model) if model is not None else None
        manifest = {
            "analysis": name,
            "recipe": recipe.name,
            "run_id": writer.run_id,
            "status": "complete",
            "started": started.isoformat(),
            "finished": datetime.now(UTC).isoformat(),
            "config": config,
            "input": {"fingerprint": fingerprint, "source": facts["analysis"]["source"]},
            "stages_run": [s.name for s in selected],
            "based_on": base.run_id if base else None,
            "stage_seconds": timings,
            "metrics": metrics,
            "versions": _versions(),
            "model_version": model_version,
            "warnings": run_warnings,
        }
        write_json(writer.path / "manifest.json", manifest)
        tracker.log_artifacts(writer.path)
        mlflow_run = tracker.end("FINISHED")
        tracker_open = False
        manifest["mlflow_run_id"] = mlflow_run
        write_json(writer.path / "manifest.json", manifest)
        root_logger.removeHandler(handler)
        handler.close()
        final = writer.commit()
        log.info("run complete: %s", final)
        return RunResult(
            analysis=name,
            run_id=writer.run_id,
            path=final,
            metrics=metrics,
            mlflow_run_id=mlflow_run,
        )
    except BaseException:
        root_logger.removeHandler(handler)
        handler.close()
        writer.abort()
        if tracker_open:
            try:
                tracker.end("FAILED")
            except Exception:  # the original error matters more
                log.debug("could not close the tracker run", exc_info=True)
        raise
