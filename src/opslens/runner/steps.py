"""The hooks of a run, in the order :func:`opslens.runner.run.run_analysis` calls them.

:class:`RunState` is what a run knows so far; each hook reads and adds to it:
:func:`reuse_from_base` (results of stages not rerun), :func:`run_stage` (one
stage: load, run, check, save), :func:`reuse_model`, :func:`finish_facts`
(metrics, baselines, facts.json, status), :func:`track` (the tracker run, the
manifest), :func:`commit`, :func:`promote` (the serving alias, gated by the
baselines) and :func:`publish` (the versioned folder registry). Named
checkpoints (:func:`opslens.tracking.runs.checkpoint`) mark the moments the
chaos tests kill a run at.

Example:
    >>> from opslens.runner.steps import RunState
    >>> sorted(RunState.__dataclass_fields__)[:3]
    ['baselines', 'catalog', 'configs']
"""

from __future__ import annotations

import json
import logging
import platform
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import ValidationError

from opslens.config import AnalysisConfig, ProjectConfig
from opslens.core.baselines import BaselineScore, BaselinesFacts
from opslens.core.engine import Engine
from opslens.core.recipe import ModelArtifact, Recipe, Stage, StageContext
from opslens.errors import ContractError, OpslensError
from opslens.runner.catalog import Catalog
from opslens.runner.interrupts import deferred
from opslens.runner.promotion import PENDING, Promotion, decide
from opslens.runner.provenance import config_changes, known_configs
from opslens.runner.stages import (
    baseline_scores,
    baseline_summary,
    call_stage,
    load_engine_input,
    load_input,
    stage_inputs,
)
from opslens.runner.tracked import Session, tracked
from opslens.tracking.runs import (
    RunView,
    RunWriter,
    checkpoint,
    jsonable,
    moves_latest,
    write_json,
)
from opslens.tracking.tracker import ModelToLog, flatten_params

__all__ = [
    "Plan",
    "RunState",
    "check_facts",
    "commit",
    "finish_facts",
    "promote",
    "publish",
    "reuse_from_base",
    "reuse_model",
    "run_stage",
    "track",
]

log = logging.getLogger("opslens.run")
_PACKAGES = ("opslens", "polars", "numpy", "scikit-learn", "xgboost-cpu", "statsmodels", "mlflow")
_MODEL_FILES = ("model/model.joblib", "model/metadata.json", "model/input_example.parquet")


@dataclass(frozen=True)
class Plan:
    """What a run will do: its stages, the run it reuses results from, its (masked) config,
    the pipeline, why it runs, and whether its model may take the serving alias."""

    analysis: AnalysisConfig
    recipe: Recipe
    selected: list[Stage]
    base: RunView | None
    config: dict[str, Any]
    stale: dict[str, list[str]]
    engine: Engine
    pipeline: str = "train"
    reason: str | None = None
    promote: bool | None = None


@dataclass
class RunState:
    """What a run knows so far: the hooks below read it and add to it."""

    project: ProjectConfig
    plan: Plan
    session: Session
    writer: RunWriter
    catalog: Catalog
    ctx: StageContext
    frames: Any = None
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    facts: dict[str, Any] = field(default_factory=dict)
    stage_info: dict[str, dict[str, Any]] = field(default_factory=dict)
    stage_metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    stage_baselines: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    fingerprint: str | None = None
    description: str | None = None
    model: ModelToLog | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    baselines: BaselinesFacts | None = None
    status: str = "complete"
    missing: list[str] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)
    model_version: str | None = None
    mlflow_run: str | None = None
    promotion: Promotion | None = None
    final: Path | None = None


def reuse_from_base(state: RunState) -> None:
    """Carry over the facts, metrics, baseline scores and files of the stages not rerun."""
    base, recipe = state.plan.base, state.plan.recipe
    if base is None:
        return
    manifest = base.manifest
    base_stages = manifest.get("stages") or {}
    base_metrics = manifest.get("stage_metrics") or {}
    base_baselines = manifest.get("stage_baselines") or {}
    base_facts = base.facts if base.has("facts.json") else {}
    state.fingerprint = (manifest.get("input") or {}).get("fingerprint")
    state.description = (base_facts.get("analysis") or {}).get("source")
    base_configs = known_configs(base)
    ran = {s.name for s in state.plan.selected}
    for stage in recipe.pipeline(state.plan.pipeline):
        if stage.name in ran or (stage.name not in base_facts and stage.name not in base_stages):
            continue
        if stage.name in base_facts:
            state.facts[stage.name] = base_facts[stage.name]
        origin = (base_stages.get(stage.name) or {}).get("run_id", base.run_id)
        state.stage_info[stage.name] = {"status": "reused", "run_id": origin}
        if origin in base_configs:
            state.configs[origin] = base_configs[origin]
            changes = config_changes(base_configs[origin], state.plan.config)
            if changes:
                state.stage_info[stage.name]["changed_since"] = changes
        state.stage_metrics[stage.name] = dict(base_metrics.get(stage.name, {}))
        if stage.name in base_baselines:
            state.stage_baselines[stage.name] = list(base_baselines[stage.name])
        state.catalog.reuse_stage(stage.name)
    for producer, changed in state.plan.stale.items():
        said = f"{producer}: reused results made with other settings ({'; '.join(changed[:3])})"
        log.warning("%s", said)
        state.warnings.append(said)


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


def run_stage(state: RunState, stage: Stage) -> None:
    """Run one stage: its inputs (the source when it reads ``raw``), the call, the checks,
    what it returned saved as declared and recorded."""
    t0 = time.perf_counter()
    analysis, recipe, catalog = state.plan.analysis, state.plan.recipe, state.catalog
    if "raw" in stage.inputs and "raw" not in catalog.memory:
        engine = state.plan.engine
        if recipe.engine_frames:  # read by the engine itself where it can (Spark: executors)
            loaded = load_engine_input(analysis, engine, state.frames)
        else:
            loaded = load_input(analysis, state.frames)
        catalog.memory["raw"] = loaded.frame
        state.fingerprint, state.description = loaded.fingerprint, loaded.description
        if isinstance(loaded.frame, pl.DataFrame):
            log.info(
                "loaded %d rows × %d columns from %s",
                loaded.frame.height,
                loaded.frame.width,
                loaded.description,
            )
        else:
            log.info(
                "read %d columns from %s on the %s engine (the rows stay there)",
                len(loaded.frame.columns),
                loaded.description,
                engine.name,
            )
    inputs = stage_inputs(recipe, stage, analysis.params, catalog)
    log.info("stage %s started", stage.name)
    checkpoint(f"stage:{stage.name}")
    out, told = call_stage(stage, state.ctx, inputs)
    state.warnings += told
    scores = baseline_scores(recipe, stage, out)
    catalog.save(stage, out)
    if out.facts:
        state.facts[stage.name] = out.facts
    state.stage_metrics[stage.name] = dict(out.metrics)
    state.stage_baselines[stage.name] = [s.model_dump(mode="json") for s in scores]
    if out.model is not None:
        state.model = _model_to_log(out.model, analysis.name, recipe.name, state.writer.run_id)
    seconds = round(time.perf_counter() - t0, 4)
    state.stage_info[stage.name] = {
        "status": "ran",
        "run_id": state.writer.run_id,
        "seconds": seconds,
    }
    log.info("stage %s done in %.2f s", stage.name, seconds)


def reuse_model(state: RunState) -> None:
    """A run that trained no model carries over the base run's (when it has one)."""
    base = state.plan.base
    if state.model is not None or base is None or not base.has(_MODEL_FILES[0]):
        return
    stage = str(base.json("model/metadata.json").get("stage", ""))
    for relative in _MODEL_FILES:
        if base.has(relative):
            state.catalog.reuse(relative, stage)


def check_facts(recipe: Recipe, facts: dict[str, Any]) -> dict[str, Any]:
    """``facts`` made JSON-plain and validated by the recipe's facts model (ContractError if not)."""
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


def finish_facts(state: RunState) -> None:
    """The run's metrics (stage metrics, then baselines), facts.json, and its status
    (``partial`` while some stage of the pipeline has no results yet)."""
    plan, writer = state.plan, state.writer
    order = [s.name for s in plan.recipe.pipeline(plan.pipeline)]
    state.metrics = {k: v for s in order for k, v in state.stage_metrics.get(s, {}).items()}
    scores = [
        BaselineScore.model_validate(d) for s in order for d in state.stage_baselines.get(s, [])
    ]
    state.baselines, baseline_metrics = baseline_summary(scores)
    state.metrics.update(baseline_metrics)
    if state.baselines is not None:
        said = log.warning if not state.baselines.model_wins else log.info
        said("against the baselines: %s", state.baselines.verdict)
    state.missing = [s for s in order if s not in state.stage_info]
    state.status = "partial" if state.missing else "complete"
    if state.missing:
        log.info("partial run: no results yet for %s", ", ".join(state.missing))
    facts = dict(state.facts)
    facts["analysis"] = {
        "name": plan.analysis.name,
        "recipe": plan.recipe.name,
        "source": state.description,
        "run_id": writer.run_id,
    }
    if state.baselines is not None:
        facts["baselines"] = state.baselines.model_dump(mode="json")
    keys = ["analysis", "baselines", *order]
    state.facts = check_facts(plan.recipe, {k: facts[k] for k in keys if k in facts})
    writer.write_json("facts.json", state.facts)
    checkpoint("facts")


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def _manifest(state: RunState) -> dict[str, Any]:
    plan, writer = state.plan, state.writer
    return {
        "analysis": plan.analysis.name,
        "recipe": plan.recipe.name,
        "run_id": writer.run_id,
        "pipeline": plan.pipeline,
        "reason": plan.reason,
        "status": state.status,
        "missing_stages": state.missing,
        "started": state.started.isoformat(),
        "finished": datetime.now(UTC).isoformat(),
        "config": plan.config,
        "input": {"fingerprint": state.fingerprint, "source": state.description},
        "stages_run": [s.name for s in plan.selected],
        "based_on": plan.base.run_id if plan.base else None,
        "stages": state.stage_info,
        "configs": state.configs,
        "stage_seconds": {k: v["seconds"] for k, v in state.stage_info.items() if "seconds" in v},
        "stage_metrics": state.stage_metrics,
        "stage_baselines": state.stage_baselines,
        "metrics": state.metrics,
        "artifacts": dict(sorted(state.catalog.artifacts.items())),
        "versions": _versions(),
        "model_version": state.model_version,
        "promotion": state.promotion.as_dict() if state.promotion else None,
        "warnings": state.warnings,
    }


def _log_steps(state: RunState) -> None:
    """The run's ``steps`` output, if its pipeline made one, as child runs of the tracked run
    (a tracker without child runs skips them; a failure is a warning: they are detail)."""
    log_steps = getattr(state.session.tracker, "log_steps", None)
    steps = state.catalog.memory.get("steps")
    if log_steps is None or not isinstance(steps, dict) or not steps:
        return
    try:
        log_steps(steps)
    except Exception as e:
        log.warning("the steps of run %s were not logged as child runs: %s", state.writer.run_id, e)


def track(state: RunState) -> None:
    """Log the run to the tracker (params, metrics, the model as a new version), decide the
    promotion, write the manifest, log the folder, end the tracked run."""
    project, tracker, name = state.project, state.session.tracker, state.plan.analysis.name
    with deferred():
        tracked(
            project, "start a run", tracker.start, experiment=name, run_name=state.writer.run_id
        )
        state.session.open = True
    checkpoint("tracker:started")
    tracked(project, "log the parameters", tracker.log_params, flatten_params(state.plan.config))
    tracked(project, "log the metrics", tracker.log_metrics, state.metrics)
    checkpoint("tracker:metrics")
    if state.model is not None:
        state.model_version = tracked(project, "log the model", tracker.log_model, state.model)
    checkpoint("tracker:model")
    _log_steps(state)
    state.promotion = decide(state.model_version, state.baselines, state.plan.promote)
    withheld = state.promotion.warning()
    if withheld is not None:
        log.warning("%s", withheld)
        state.warnings.append(withheld)
    state.manifest = _manifest(state)
    state.writer.write_json("manifest.json", state.manifest)
    tracked(project, "log the artifacts", tracker.log_artifacts, state.writer.path)
    checkpoint("tracker:artifacts")
    with deferred():
        state.mlflow_run = tracked(project, "end the run", tracker.end, "FINISHED")
        state.session.open = False
    checkpoint("tracker:ended")
    state.manifest["mlflow_run_id"] = state.mlflow_run
    state.writer.write_json("manifest.json", state.manifest)
    moving, model = state.promotion, state.model
    if moving is not None and moving.moved and model is not None and moving.version is not None:
        # removed once the alias moved: a kill in between leaves it for repair_alias
        state.writer.write_json(
            PENDING, {"model": model.registered_name, "version": moving.version}
        )


def commit(state: RunState) -> None:
    """Rename the run folder into place and move ``latest`` (interrupts held)."""
    with deferred():
        state.final = state.writer.commit(move_latest=moves_latest(state.manifest))
    log.info("run %s: %s", state.status, state.final)
    checkpoint("committed")


def promote(state: RunState) -> None:
    """Move the serving alias when the gate says so; after the commit, so it names a whole run."""
    promotion, model = state.promotion, state.model
    if promotion is None or not promotion.moved or model is None or promotion.version is None:
        return
    try:
        with deferred():
            state.session.tracker.set_alias(model.registered_name, promotion.version)
            if state.final is not None:
                (state.final / PENDING).unlink(missing_ok=True)
        log.info("version %s is now %s: %s", promotion.version, promotion.alias, promotion.why)
    except Exception as e:  # the run is committed; say where the registry stands
        log.warning(
            "the run is complete but the registry alias was not moved to version %s (%s); "
            "`opslens stream --from latest` serves this run",
            promotion.version,
            e,
        )
        state.promotion = promotion.failed(
            str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        )
        if state.final is not None:
            (state.final / PENDING).unlink(missing_ok=True)
            state.manifest["promotion"] = state.promotion.as_dict()
            write_json(state.final / "manifest.json", state.manifest)


def publish(state: RunState) -> None:
    """Publish the committed run to the versioned folder registry (recipes that keep one)."""
    if not state.plan.recipe.versioned or state.status != "complete":
        return
    from opslens.tracking.versions import publish_latest

    try:
        with deferred():
            log.info(
                "published version: %s", publish_latest(state.project, state.plan.analysis.name)
            )
    except OpslensError as e:  # the run is committed; the registry keeps its versions
        log.warning("the run is complete but was not published to the registry: %s", e)
