"""Run a recipe's pipeline: load, run stages, check, save, log, time and track; commit atomically.

The runner is the only place where a recipe's results touch the disk. It
writes into a temporary run folder, checks every stage's results against the
stage's declaration, saves them *as declared* (tables as Parquet, objects with
joblib), logs to the tracker, then commits; any failure aborts the folder, so
the previous ``latest`` run stays whole. The MLflow alias moves only after the
commit.

``stages=[...]`` runs only those stages. Each input they need comes from the
latest complete run; the new run holds what the rerun stages produced plus the
artifacts, facts and metrics of the stages that did not run, each recorded in
the manifest (``artifacts``, ``stages``) with the run that produced it, so
nothing reused is presented as new, and the configuration each reused result
was made with (``configs``). When a rerun stage's inputs were made with other
settings than the project has now, the run warns (in the log and the
manifest's ``warnings``) when ``params`` or the source differ, and is refused
when the columns or the seed differ (``force=True`` runs it anyway, warned).
``skip=[...]`` runs every stage but those.

What would fail after the work is checked before it: the stage list, whether
the tracker can be used, and the run folder is created before the first stage.
MLflow calls and the commit run with Ctrl-C and SIGTERM held
(:func:`opslens.runner.interrupts.deferred`); an interrupted run ends its MLflow
run as KILLED, any other failure as FAILED. Named checkpoints
(:func:`opslens.tracking.runs.checkpoint`) let the chaos tests kill a run at an
exact moment.

Example:
    >>> from opslens.recipes import project_from_mapping
    >>> import polars as pl, tempfile
    >>> project = project_from_mapping({"runs_dir": tempfile.mkdtemp(), "tracking": {"enabled": False},
    ...     "analyses": [{"name": "eta", "recipe": "distribution", "source": {"kind": "memory"},
    ...                   "columns": {"target": "minutes", "categorical": ["route"]}}]})
    >>> project.analysis("eta").recipe
    'distribution'
"""

from __future__ import annotations

import contextlib
import json
import logging
import platform
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import ValidationError

from opslens.config import (
    AnalysisConfig,
    MemorySource,
    ProjectConfig,
    SyntheticSource,
    mask_secrets,
)
from opslens.core.predictor import Predictor
from opslens.core.recipe import ModelArtifact, Out, Recipe, Stage, StageContext
from opslens.engines import make_engine
from opslens.errors import ConfigError, ContractError, OpslensError, OpslensWarning, RunError
from opslens.explain.text import format_metric
from opslens.io.load import Loaded, describe_source, load_source
from opslens.io.sources.files import read_file
from opslens.recipes import get_recipe
from opslens.runner.catalog import Catalog
from opslens.runner.interrupts import deferred
from opslens.runner.logs import run_log
from opslens.runner.preflight import select_stages
from opslens.runner.provenance import config_changes, known_configs, stale_inputs
from opslens.runner.tracked import Session, make_tracker, tracked
from opslens.synthetic import generate
from opslens.tracking.runs import (
    RunView,
    RunWriter,
    checkpoint,
    jsonable,
    open_run,
    repair_latest,
)
from opslens.tracking.tracker import ModelToLog, Tracker, flatten_params

__all__ = ["RunResult", "load_input", "make_tracker", "run_analysis"]

log = logging.getLogger("opslens.run")
# reused results made with other columns or another seed are refused (unless forced); other
# differences (params, a moved source file) are warned about
_REFUSED = ("columns.", "random_state:", "recipe:")
_PACKAGES = ("opslens", "polars", "numpy", "scikit-learn", "xgboost-cpu", "statsmodels", "mlflow")


@dataclass(frozen=True)
class RunResult:
    """A committed run: where it is, its headline metrics, and its facts, tables and model."""

    analysis: str
    run_id: str
    path: Path
    metrics: dict[str, float]
    mlflow_run_id: str | None
    model_version: str | None = None
    warnings: list[str] = field(default_factory=list)

    def headline(self, n: int = 6) -> str:
        """The first ``n`` metrics as ``name=value`` pairs (counts as integers), for one line."""
        return ", ".join(f"{k}={format_metric(v)}" for k, v in list(self.metrics.items())[:n])

    @property
    def view(self) -> RunView:
        """The committed run folder, read-only."""
        return RunView(self.path)

    @property
    def facts(self) -> dict[str, Any]:
        """facts.json: every number a report states."""
        return self.view.facts

    def table(self, name: str) -> pl.DataFrame:
        """A result table of the run (``tables/<name>.parquet``)."""
        return self.view.table(name)

    def predictor(self) -> Predictor:
        """The model this run trained, as a predictor."""
        from opslens.tracking.models import load_predictor

        return load_predictor(self.path.parent.parent, self.analysis, self.run_id).predictor


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def _masked_config(analysis: AnalysisConfig, secrets: Iterable[str]) -> dict[str, Any]:
    text = json.dumps(analysis.model_dump(mode="json"))
    return dict(json.loads(mask_secrets(text, secrets)))


def load_input(
    analysis: AnalysisConfig, frames: Mapping[str, pl.DataFrame] | None = None
) -> Loaded:
    """The analysis's data as a run reads it: from its source (synthetic, memory or read by io)."""
    frames = frames or {}
    src = analysis.source
    frame: pl.DataFrame | None = None
    if isinstance(src, SyntheticSource):
        frame = generate(src.generator, seed=src.seed, options=src.options)
    elif isinstance(src, MemorySource):
        if src.name not in frames:
            raise ConfigError(
                f"analysis '{analysis.name}' reads the in-memory frame '{src.name}', "
                "but none was given",
                fix="call opslens.run(frame, ...) or pass frames={name: frame}",
            )
        frame = frames[src.name]
    return load_source(analysis, frame=frame)


def _run_stage(stage: Stage, ctx: StageContext, inputs: dict[str, Any]) -> tuple[Out, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", OpslensWarning)
        out = stage.func(ctx, **inputs)
    told: list[str] = []
    for w in caught:
        if issubclass(w.category, OpslensWarning):
            log.warning("%s: %s", stage.name, w.message)
            told.append(f"{stage.name}: {w.message}")
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    stage.check(out)
    return out, told


def _file_input(recipe: Recipe, name: str, params: Any) -> pl.DataFrame | None:
    spec = next(i for i in recipe.inputs if i.name == name)
    path = spec.path(params)
    return None if path is None else read_file(path)


def _model_to_log(artifact: ModelArtifact, name: str, recipe: str, run_id: str) -> ModelToLog:
    output = artifact.model.predict_frame(artifact.input_example)
    return ModelToLog(
        model=artifact.model,
        input_example=artifact.input_example.to_pandas(),
        output_example=output.to_pandas(),
        registered_name=name,
        description=f"opslens {recipe} model, run {run_id}",
        tags={"opslens_run_id": run_id, "opslens_recipe": recipe},
    )


def _check_facts(recipe: Recipe, facts: dict[str, Any]) -> dict[str, Any]:
    normal: dict[str, Any] = json.loads(json.dumps(jsonable(facts), allow_nan=False))
    if recipe.facts_model is not None:
        try:
            recipe.facts_model.model_validate(normal)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ContractError(
                f"the {recipe.name} recipe's facts do not match its facts model at '{where}': "
                f"{first['msg']}"
            ) from None
    return normal


def _track(
    items: Iterable[Any], description: str, total: int | None, progress: Any
) -> Iterator[Any]:
    if progress is None:
        yield from items
        return
    task = progress.add_task(description, total=total)
    for item in items:
        yield item
        progress.advance(task)
    progress.remove_task(task)


def run_analysis(
    project: ProjectConfig,
    name: str,
    *,
    stages: Sequence[str] | None = None,
    skip: Sequence[str] | None = None,
    force: bool = False,
    pipeline: str = "train",
    tracker: Tracker | None = None,
    progress: Any = None,
    frames: Mapping[str, pl.DataFrame] | None = None,
) -> RunResult:
    """Run analysis ``name`` of ``project`` (all stages of ``pipeline``, ``stages``, or all but
    ``skip``); commit it. ``force`` reuses results made with other settings (with a warning)."""
    analysis = project.analysis(name)
    recipe = get_recipe(analysis.recipe)
    recipe.check_columns(analysis)
    selected = select_stages(recipe, stages, skip, pipeline)
    runs_root = project.runs_root()
    partial = stages is not None or skip is not None
    if partial:  # a kill may have left a complete run newer than latest: that is the base
        with contextlib.suppress(OSError):
            repair_latest(runs_root, name)
    base = open_run(runs_root, name) if partial else None
    config = _masked_config(analysis, project.secrets)
    stale = stale_inputs(recipe, selected, base, config) if base is not None else {}
    refused = {k: [c for c in v if c.startswith(_REFUSED)] for k, v in stale.items()}
    refused = {k: v for k, v in refused.items() if v}
    if base is not None and refused and not force:
        stage, changes = next(iter(refused.items()))
        raise RunError(
            f"the saved results of stage '{stage}' (run {base.run_id}) were made with other "
            f"columns or another seed than the project has now ({'; '.join(changes[:3])})",
            fix=f"include '{stage}' in --stages (or run all stages), "
            "or pass --force to reuse them anyway",
        )
    make_engine(project)  # Spark's checks (PySpark, Java, master) fail here, before any output
    tracker = tracker or make_tracker(project)
    tracked(project, "check the tracking store", tracker.prepare, experiment=name)
    writer = RunWriter(runs_root, name)
    session = Session(tracker)
    try:
        with run_log(writer.path / "run.log", writer.run_id, project.secrets):
            plan = _Plan(analysis, recipe, selected, base, config, stale)
            return _execute(project, plan, session, writer, progress, frames or {})
    except BaseException as e:
        writer.abort()
        if session.open:
            status = "KILLED" if isinstance(e, KeyboardInterrupt) else "FAILED"
            try:
                with deferred():
                    tracker.end(status)
            except Exception:  # the original error matters more
                log.debug("could not close the tracker run", exc_info=True)
        raise


@dataclass(frozen=True)
class _Plan:
    """What a run will do: its stages, the run it reuses results from, its (masked) config."""

    analysis: AnalysisConfig
    recipe: Recipe
    selected: list[Stage]
    base: RunView | None
    config: dict[str, Any]
    stale: dict[str, list[str]]


def _execute(
    project: ProjectConfig,
    plan: _Plan,
    session: Session,
    writer: RunWriter,
    progress: Any,
    frames: Mapping[str, pl.DataFrame],
) -> RunResult:
    analysis, recipe, selected, base, config = (
        plan.analysis,
        plan.recipe,
        plan.selected,
        plan.base,
        plan.config,
    )
    name = analysis.name
    tracker = session.tracker
    started = datetime.now(UTC)
    log.info(
        "run %s of '%s' (%s recipe): stages %s",
        writer.run_id,
        name,
        recipe.name,
        ", ".join(s.name for s in selected),
    )
    catalog = Catalog(recipe, writer, base)
    ran = {s.name for s in selected}
    facts: dict[str, Any] = {}
    stage_info: dict[str, dict[str, Any]] = {}
    stage_metrics: dict[str, dict[str, float]] = {}
    configs: dict[str, dict[str, Any]] = {}
    run_warnings: list[str] = []
    if base is not None:
        base_stages = base.manifest.get("stages") or {}
        base_metrics = base.manifest.get("stage_metrics") or {}
        base_facts = base.facts if base.has("facts.json") else {}
        base_configs = known_configs(base)
        for stage in recipe.stages:
            if stage.name in ran or stage.name not in base_facts:
                continue
            facts[stage.name] = base_facts[stage.name]
            origin = base_stages.get(stage.name, {}).get("run_id", base.run_id)
            stage_info[stage.name] = {"status": "reused", "run_id": origin}
            if origin in base_configs:
                configs[origin] = base_configs[origin]
                changes = config_changes(base_configs[origin], config)
                if changes:
                    stage_info[stage.name]["changed_since"] = changes
            stage_metrics[stage.name] = dict(base_metrics.get(stage.name, {}))
            catalog.reuse_stage(stage.name)
        for producer, changed in plan.stale.items():
            said = f"{producer}: reused results made with other settings ({'; '.join(changed[:3])})"
            log.warning("%s", said)
            run_warnings.append(said)
    fingerprint: str | None = base.manifest.get("input", {}).get("fingerprint") if base else None
    description: str | None = (
        base.facts.get("analysis", {}).get("source") if base and base.has("facts.json") else None
    )
    model: ModelToLog | None = None
    stage_task = progress.add_task(name, total=len(selected)) if progress is not None else None
    engine = make_engine(project)
    if engine.name != "local":
        log.info("engine: %s at %s", engine.name, project.spark.master)
    ctx = StageContext(
        analysis=analysis,
        params=analysis.params,
        random_state=analysis.random_state,
        source=describe_source(analysis),
        track=lambda items, what, total: _track(items, what, total, progress),
        engine=engine,
    )
    file_inputs = {i.name for i in recipe.inputs}
    for stage in selected:
        t0 = time.perf_counter()
        if "raw" in stage.inputs and "raw" not in catalog.memory:
            loaded = load_input(analysis, frames)
            catalog.memory["raw"] = loaded.frame
            fingerprint, description = loaded.fingerprint, loaded.description
            log.info(
                "loaded %d rows × %d columns from %s",
                loaded.frame.height,
                loaded.frame.width,
                loaded.description,
            )
        inputs = {
            k: _file_input(recipe, k, analysis.params) if k in file_inputs else catalog.load(k)
            for k in stage.inputs
        }
        if progress is not None and stage_task is not None:
            progress.update(stage_task, description=f"{name}: {stage.name}")
        log.info("stage %s started", stage.name)
        checkpoint(f"stage:{stage.name}")
        out, told = _run_stage(stage, ctx, inputs)
        run_warnings += told
        catalog.save(stage, out)
        if out.facts:
            facts[stage.name] = out.facts
        stage_metrics[stage.name] = dict(out.metrics)
        if out.model is not None:
            model = _model_to_log(out.model, name, recipe.name, writer.run_id)
        seconds = round(time.perf_counter() - t0, 4)
        stage_info[stage.name] = {"status": "ran", "run_id": writer.run_id, "seconds": seconds}
        if progress is not None and stage_task is not None:
            progress.advance(stage_task)
        log.info("stage %s done in %.2f s", stage.name, seconds)
    if progress is not None and stage_task is not None:
        progress.remove_task(stage_task)
    if model is None and base is not None and base.has("model/model.joblib"):
        for relative in (
            "model/model.joblib",
            "model/metadata.json",
            "model/input_example.parquet",
        ):
            if base.has(relative):
                catalog.reuse(relative, str(base.json("model/metadata.json").get("stage", "")))

    metrics = {
        k: v for stage in recipe.stages for k, v in stage_metrics.get(stage.name, {}).items()
    }
    facts["analysis"] = {
        "name": name,
        "recipe": recipe.name,
        "source": description,
        "run_id": writer.run_id,
    }
    order = ["analysis", *(s.name for s in recipe.stages)]
    facts = _check_facts(recipe, {k: facts[k] for k in order if k in facts})
    writer.write_json("facts.json", facts)
    checkpoint("facts")
    with deferred():
        tracked(project, "start a run", tracker.start, experiment=name, run_name=writer.run_id)
        session.open = True
    checkpoint("tracker:started")
    tracked(project, "log the parameters", tracker.log_params, flatten_params(config))
    tracked(project, "log the metrics", tracker.log_metrics, metrics)
    checkpoint("tracker:metrics")
    model_version = (
        tracked(project, "log the model", tracker.log_model, model) if model is not None else None
    )
    checkpoint("tracker:model")
    manifest = {
        "analysis": name,
        "recipe": recipe.name,
        "run_id": writer.run_id,
        "status": "complete",
        "started": started.isoformat(),
        "finished": datetime.now(UTC).isoformat(),
        "config": config,
        "input": {"fingerprint": fingerprint, "source": description},
        "stages_run": [s.name for s in selected],
        "based_on": base.run_id if base else None,
        "stages": stage_info,
        "configs": configs,
        "stage_seconds": {k: v["seconds"] for k, v in stage_info.items() if "seconds" in v},
        "stage_metrics": stage_metrics,
        "metrics": metrics,
        "artifacts": dict(sorted(catalog.artifacts.items())),
        "versions": _versions(),
        "model_version": model_version,
        "warnings": run_warnings,
    }
    writer.write_json("manifest.json", manifest)
    tracked(project, "log the artifacts", tracker.log_artifacts, writer.path)
    checkpoint("tracker:artifacts")
    with deferred():
        mlflow_run = tracked(project, "end the run", tracker.end, "FINISHED")
        session.open = False
    checkpoint("tracker:ended")
    manifest["mlflow_run_id"] = mlflow_run
    writer.write_json("manifest.json", manifest)
    with deferred():
        final = writer.commit()
    log.info("run complete: %s", final)
    checkpoint("committed")
    if model is not None and model_version is not None:
        try:
            with deferred():
                tracker.set_alias(model.registered_name, model_version)
        except Exception as e:  # the run is committed; say where the registry stands
            log.warning(
                "the run is complete but the registry alias was not moved to version %s (%s); "
                "`opslens stream --from latest` serves this run",
                model_version,
                e,
            )
    if recipe.versioned:
        from opslens.tracking.versions import publish_latest

        try:
            with deferred():
                log.info("published version: %s", publish_latest(project, name))
        except OpslensError as e:  # the run is committed; the registry keeps its versions
            log.warning("the run is complete but was not published to the registry: %s", e)
    return RunResult(
        analysis=name,
        run_id=writer.run_id,
        path=final,
        metrics=metrics,
        mlflow_run_id=mlflow_run,
        model_version=model_version,
        warnings=run_warnings,
    )
