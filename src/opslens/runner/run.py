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
``skip=[...]`` runs every stage but those. A first run of only some stages (no
run yet) is committed with the status ``partial``; a later run of the other stages
continues from it. Reused files are hard links to the base run's.

Every stage's scores against the recipe's baselines (``Out.baselines``) go to the
facts (``baselines``) and metrics (``baseline.<name>.<metric>``, ``model.<metric>``,
``beats_baselines``); a model that loses to a gating baseline is registered but the
serving alias ``champion`` stays where it was unless ``promote=True`` (``--force``),
and the run says so (:mod:`opslens.runner.promotion`). The loop is short; its hooks
are in :mod:`opslens.runner.steps`.

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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from opslens.config import AnalysisConfig, ProjectConfig, mask_secrets
from opslens.core.baselines import BaselinesFacts
from opslens.core.predictor import Predictor
from opslens.engines import make_engine
from opslens.errors import RunError
from opslens.explain.text import format_metric
from opslens.recipes import get_recipe
from opslens.runner.catalog import Catalog
from opslens.runner.interrupts import deferred
from opslens.runner.logs import run_log
from opslens.runner.preflight import select_stages
from opslens.runner.promotion import Promotion, repair_alias
from opslens.runner.provenance import stale_inputs
from opslens.runner.stages import load_input, stage_context
from opslens.runner.steps import (
    Plan,
    RunState,
    commit,
    finish_facts,
    promote,
    publish,
    reuse_from_base,
    reuse_model,
    run_stage,
    track,
)
from opslens.runner.tracked import Session, make_tracker, tracked
from opslens.tracking.runs import RunView, RunWriter, list_runs, open_run, repair_latest
from opslens.tracking.tracker import Tracker

__all__ = ["RunResult", "load_input", "make_tracker", "run_analysis"]

log = logging.getLogger("opslens.run")
# reused results made with other columns or another seed are refused (unless forced); other
# differences (params, a moved source file) are warned about
_REFUSED = ("columns.", "random_state:", "recipe:")


@dataclass(frozen=True)
class RunResult:
    """A committed run: where it is, its headline metrics, its verdict against the baselines,
    where the serving alias went, and its facts, tables and model."""

    analysis: str
    run_id: str
    path: Path
    metrics: dict[str, float]
    mlflow_run_id: str | None
    model_version: str | None = None
    warnings: list[str] = field(default_factory=list)
    baselines: BaselinesFacts | None = None
    promotion: Promotion | None = None
    status: str = "complete"
    pipeline: str = "train"
    missing: list[str] = field(default_factory=list)

    def metrics_line(self, n: int = 6) -> str:
        """The first ``n`` metrics as ``name=value`` pairs (counts as integers)."""
        return ", ".join(f"{k}={format_metric(v)}" for k, v in list(self.metrics.items())[:n])

    def headline(self, n: int = 6) -> str:
        """The verdict against the baselines, then the first ``n`` metrics as ``name=value``
        pairs (counts as integers), for one line."""
        shown = self.metrics_line(n)
        if self.baselines is not None:
            return self.baselines.verdict + (f"; {shown}" if shown else "")
        return shown

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


def _masked_config(analysis: AnalysisConfig, secrets: Iterable[str]) -> dict[str, Any]:
    text = json.dumps(analysis.model_dump(mode="json"))
    return dict(json.loads(mask_secrets(text, secrets)))


def _base_run(runs_root: Path, name: str, pipeline: str) -> RunView | None:
    """The run a run of some stages continues: the latest run of the same pipeline, if any."""
    with contextlib.suppress(OSError):  # a kill may have left a complete run newer than latest
        repair_latest(runs_root, name)
    try:
        latest = open_run(runs_root, name)
    except RunError:
        if not list_runs(runs_root, name):
            return None  # a fresh project: the first run of some stages starts from nothing
        raise
    if latest.pipeline == pipeline:
        return latest
    return next((v for v in list_runs(runs_root, name) if v.pipeline == pipeline), None)


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
    inputs: Mapping[str, Any] | None = None,
    reason: str | None = None,
    promote: bool | None = None,
) -> RunResult:
    """Run analysis ``name`` of ``project`` (all stages of ``pipeline``, ``stages``, or all but
    ``skip``); commit it. ``force`` reuses results made with other settings (with a warning)
    and serves a model that loses to a baseline. ``inputs`` are extra stage inputs by name
    (a champion model for a scoring pipeline); ``reason`` is recorded in the manifest;
    ``promote`` True/False forces or withholds the serving alias (None: the baseline gate)."""
    analysis = project.analysis(name)
    recipe = get_recipe(analysis.recipe)
    recipe.check_columns(analysis)
    selected = select_stages(recipe, stages, skip, pipeline)
    runs_root = project.runs_root()
    given = dict(inputs or {})
    partial = stages is not None or skip is not None
    base = _base_run(runs_root, name, pipeline) if partial else None
    config = _masked_config(analysis, project.secrets)
    stale = stale_inputs(recipe, selected, base, config, given) if base is not None else {}
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
    engine = make_engine(project)  # Spark's checks (PySpark, Java, master) fail here
    if recipe.versioned and pipeline == "train":  # a failing publication: refused before
        from opslens.tracking.versions import check_registry

        check_registry(project, name)
    tracker = tracker or make_tracker(project)
    tracked(project, "check the tracking store", tracker.prepare, experiment=name)
    tracked(project, "repair the serving alias", repair_alias, runs_root, name, tracker)
    writer = RunWriter(runs_root, name)
    session = Session(tracker)
    plan = Plan(
        analysis,
        recipe,
        selected,
        base,
        config,
        stale,
        engine,
        pipeline=pipeline,
        reason=reason,
        promote=True if promote is None and force else promote,
    )
    try:
        with run_log(writer.path / "run.log", writer.run_id, project.secrets):
            catalog = Catalog(recipe, writer, base, engine if recipe.engine_frames else None)
            catalog.memory.update(given)
            ctx = stage_context(analysis, engine, progress)
            state = RunState(project, plan, session, writer, catalog, ctx, frames=frames or {})
            return _execute(state, progress)
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


@contextmanager
def _stage_progress(progress: Any, name: str, total: int) -> Iterator[Any]:
    """A progress bar over the stages (a no-op without a progress display)."""
    if progress is None:
        yield lambda _stage: None
        return
    task = progress.add_task(name, total=total)

    def advance(stage: str) -> None:
        progress.update(task, description=f"{name}: {stage}")
        progress.advance(task)

    yield advance
    progress.remove_task(task)


def _execute(state: RunState, progress: Any) -> RunResult:
    """The run's loop: reuse, each stage, facts, tracking, commit, promotion."""
    plan, writer = state.plan, state.writer
    log.info(
        "run %s of '%s' (%s recipe, %s pipeline): stages %s",
        writer.run_id,
        plan.analysis.name,
        plan.recipe.name,
        plan.pipeline,
        ", ".join(s.name for s in plan.selected),
    )
    if plan.reason:
        log.info("reason: %s", plan.reason)
    if plan.engine.name != "local":
        log.info("engine: %s at %s", plan.engine.name, state.project.spark.master)
    reuse_from_base(state)
    with _stage_progress(progress, plan.analysis.name, len(plan.selected)) as advance:
        for i, stage in enumerate(plan.selected):
            run_stage(state, stage)
            # tables no later stage reads leave memory (they are saved): a pipeline's peak
            # is then its largest stage, not the sum of everything it made
            state.catalog.release({n for s in plan.selected[i + 1 :] for n in s.inputs})
            advance(stage.name)
    reuse_model(state)
    if state.catalog.carried:
        log.info("reused files: %s", state.catalog.carried)
    finish_facts(state)
    track(state)
    commit(state)
    promote(state)
    publish(state)
    assert state.final is not None
    return RunResult(
        analysis=plan.analysis.name,
        run_id=writer.run_id,
        path=state.final,
        metrics=state.metrics,
        mlflow_run_id=state.mlflow_run,
        model_version=state.model_version,
        warnings=state.warnings,
        baselines=state.baselines,
        promotion=state.promotion,
        status=state.status,
        pipeline=plan.pipeline,
        missing=state.missing,
    )
