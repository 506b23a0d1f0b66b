"""The life cycle of a deployed model, for every recipe that declares the hooks: score batches,
monitor them, retrain, promote, and say who held which alias when.

:class:`Deployment` drives the runner: a scored batch is a run of the recipe's ``batch``
pipeline (a run folder with its manifest; the serving alias stays where it is, and the
runner never serves from a batch run nor bases a training rerun on one), a retraining is a
run of its ``retrain`` pipeline with a reason. Between runs it
keeps the monitoring history (a :class:`~opslens.core.lifecycle.History`: batch records,
errors, trainings, the alias audit) and moves aliases in a
:class:`~opslens.core.lifecycle.Registry`; both are injected (the CLI opens the SQLAlchemy
store and the MLflow registry with :func:`opslens.lifecycle.registry.open_stores`). What
is recipe-specific (the record, the alerts, when to retrain, the held-out comparison) is the
recipe's :class:`~opslens.core.lifecycle.Lifecycle` hooks.

A retraining registers the challenger and points ``challenger`` at it *before* the
decision; only a challenger that wins the held-out comparison against the champion and
does not lose to its own gating baselines moves ``champion`` (and ``current``). So a
retraining killed at any point leaves ``champion`` where it was.

Retrainings and promotions of one analysis take turns: each holds the analysis's lock (a
PostgreSQL advisory lock when the history is in PostgreSQL, else a file lock in the
analysis's run folder), and the held-out comparison is made again against the champion of
the moment just before ``champion`` moves, should another writer (``opslens run``) have
moved it meanwhile.

Example:
    >>> Deployment.__name__, PAUSE_ENV
    ('Deployment', 'OPSLENS_LIFECYCLE_PAUSE')
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from opslens.config import ProjectConfig
from opslens.core.lifecycle import (
    BATCH_COLUMN,
    CHALLENGER,
    CHAMPION,
    CURRENT,
    Comparison,
    History,
    Lifecycle,
    Registry,
    since_training,
)
from opslens.errors import ConfigError, OpslensError, RunError
from opslens.recipes import get_recipe
from opslens.runner.run import RunResult, load_input, run_analysis
from opslens.tracking.folders import lock_file
from opslens.tracking.runs import RunView, locked, point_latest

__all__ = ["PAUSE_ENV", "BatchOutcome", "Deployment", "Retrained"]

log = logging.getLogger("opslens.lifecycle")
PAUSE_ENV = "OPSLENS_LIFECYCLE_PAUSE"
"""``<point>=<folder>``: at that point, write ``<folder>/reached`` and wait forever (tests)."""


def _checkpoint(point: str) -> None:
    spec = os.environ.get(PAUSE_ENV, "")
    if "=" in spec and spec.split("=", 1)[0] == point:
        folder = Path(spec.split("=", 1)[1])
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "reached").write_text(point)
        threading.Event().wait()


def _now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass(frozen=True)
class Retrained:
    """A retraining: its reason, the challenger's version and run, the comparison, the decision."""

    reason: str
    version: str
    champion: str
    comparison: Comparison
    promoted: bool
    run: RunResult
    gate: str = ""

    def summary(self) -> str:
        """The comparison in one line, and why a winning challenger was not promoted."""
        said = self.comparison.summary()
        return f"{said}; not promoted: {self.gate}" if self.gate else said


@dataclass(frozen=True)
class BatchOutcome:
    """A scored batch: its record, alerts, the run and its predictions, and any retraining."""

    record: dict[str, Any]
    alerts: list[dict[str, Any]]
    run: RunResult
    version: str
    retrained: Retrained | None = None

    @property
    def predictions(self) -> pl.DataFrame:
        """The batch with the model's answers, one row per batch row."""
        return self.run.view.table("predictions")


class Deployment:
    """The deployed model of one analysis: its batches, monitoring, retrainings and aliases."""

    def __init__(
        self, project: ProjectConfig, name: str, history: History, registry: Registry
    ) -> None:
        self.project = project
        self.analysis = project.analysis(name)
        self.name = name
        self.recipe = get_recipe(self.analysis.recipe)
        if self.recipe.lifecycle is None:
            raise ConfigError(
                f"analysis '{name}' uses the {self.recipe.name} recipe, which has no life cycle "
                "(batch scoring, monitoring, retraining)",
                fix="name an analysis whose recipe is segments, residual or distribution; "
                f"score {self.recipe.name} data with `opslens score`",
            )
        self.hooks: Lifecycle = self.recipe.lifecycle
        self.history = history
        self.registry = registry
        self._held = 0

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold this analysis's life-cycle lock (re-entrant in this object): the history's
        advisory lock when it has one, else ``runs/<analysis>/.lifecycle.lock``."""
        if self._held:
            self._held += 1
            try:
                yield
            finally:
                self._held -= 1
            return
        if getattr(self.history, "locks", False):
            lock = self.history.exclusive(self.name)  # type: ignore[attr-defined]
        else:
            lock = lock_file(self.project.runs_root() / self.name / ".lifecycle.lock")
        with lock:
            self._held = 1
            try:
                yield
            finally:
                self._held = 0

    # ----- aliases ---------------------------------------------------------------------
    def move(self, alias: str, version: str, reason: str) -> None:
        """Point ``alias`` at ``version`` and record the move (from which version, why)."""
        previous = self.registry.version_of(alias)
        self.registry.set_alias(alias, version)
        self.history.add_alias_move(self.name, alias, str(version), previous, reason)

    def ensure_champion(self, *, train: bool = True) -> str:
        """The champion's version: the one ``opslens run`` set (or ``current``), or trained now
        (``train=False``: ConfigError instead, nothing run)."""
        champion = self.registry.version_of(CHAMPION)
        version = champion or self.registry.version_of(CURRENT)
        if version is not None:
            if not any(m["alias"] == CHAMPION for m in self.history.alias_moves(self.name)):
                reason = f"adopted version {version} trained by `opslens run`"
                if champion is None:  # a project made before opslens 0.3 serves `current`
                    self.registry.set_alias(CHAMPION, version)
                self.history.add_alias_move(self.name, CHAMPION, version, None, reason)
                self.history.add_training(self.name, version, reason, {})
            return version
        if not train:
            raise ConfigError(
                f"'{self.name}' has no champion yet",
                fix=f"train it first: `opslens run --analysis {self.name}`",
            )
        result = run_analysis(self.project, self.name, reason="initial training")
        version = result.model_version
        if version is None:
            raise RunError(
                f"the training run {result.run_id} of '{self.name}' registered no model",
                fix="check that tracking is enabled and the run completed",
            )
        if self.registry.version_of(CHAMPION) != version:
            verdict = result.baselines.verdict if result.baselines is not None else ""
            raise RunError(
                f"version {version} of '{self.name}' was trained but not made champion"
                + (f" ({verdict})" if verdict else ""),
                fix=f"promote it anyway: `opslens promote {self.name} --version {version} --force`",
            )
        self.history.add_alias_move(self.name, CHAMPION, version, None, "initial training")
        self.history.add_training(self.name, version, "initial training", {})
        return version

    # ----- data ------------------------------------------------------------------------
    def trained_at(self) -> datetime | None:
        """When the newest (re)training was recorded."""
        trainings = self.history.trainings(self.name)
        return datetime.fromisoformat(trainings[-1]["at"]) if trainings else None

    def labelled(self) -> pl.DataFrame:
        """The labelled rows of every scored batch, oldest first, numbered in ``__batch``."""
        parts = []
        for r in self.history.batches(self.name):
            where = r.get("run_path")
            if not r.get("labelled_rows") or not where:
                continue
            path = self.project.runs_root() / str(where)
            if not (path / "tables" / "labelled.parquet").is_file():
                log.warning("batch %s: its run %s is gone; its rows are left out", r["batch"], path)
                continue
            table = RunView(path).table("labelled")
            parts.append(table.with_columns(pl.lit(int(r["batch"]), pl.Int64).alias(BATCH_COLUMN)))
        if not parts:
            return pl.DataFrame({BATCH_COLUMN: pl.Series([], dtype=pl.Int64)})
        return pl.concat(parts, how="diagonal_relaxed")

    def window(self) -> pl.DataFrame:
        """The rows a retraining fits on and holds out from (the recipe's ``window`` hook)."""
        raw = load_input(self.analysis).frame
        return self.hooks.window(raw, self.labelled(), self.analysis)

    def _new_labels(self) -> int:
        since = self.trained_at()
        return sum(
            int(r.get("labelled_rows") or 0)
            for r in self.history.batches(self.name)
            if since is None or datetime.fromisoformat(str(r["recorded_at"])) > since
        )

    # ----- actions ---------------------------------------------------------------------
    def batch(self, frame: pl.DataFrame) -> BatchOutcome:
        """Score ``frame`` with the champion (a run of the ``batch`` pipeline), record and monitor
        it, and retrain when the recipe's rule says so."""
        version = self.ensure_champion()
        champion = self.registry.load(version)
        try:
            result = run_analysis(
                self.project,
                self.name,
                pipeline=self.hooks.batch_pipeline,
                inputs={"batch": frame, "champion": champion, "champion_version": version},
                reason=f"batch scored by version {version}",
                promote=False,
            )
        except OpslensError as e:
            self.history.add_error(self.name, "batch", str(e))
            raise
        view = result.view
        record: dict[str, Any] = dict(view.object("record"))
        numbers = [int(r["batch"]) for r in self.history.batches(self.name)]
        record.update(
            batch=max(numbers, default=0) + 1,
            model_version=version,
            recorded_at=_now(),
            run_id=result.run_id,
            run_path=str(result.path.relative_to(self.project.runs_root())),
            labelled_rows=view.table("labelled").height,
        )
        since = since_training(self.history.batches(self.name), version)
        alerts = self.hooks.monitor([*since, record], self.analysis.params)
        record["alerts"] = alerts
        number = self.history.add_batch(self.name, record)
        record["batch"] = number
        for a in alerts:
            a["batch"] = number
        reason = self.hooks.retrain_reason(
            [*since, record], self.analysis.params, self.trained_at(), datetime.now(UTC)
        )
        retrained = self.retrain(reason) if reason else None
        return BatchOutcome(record, alerts, result, version, retrained)

    def retrain(self, reason: str, *, require_new: bool = False) -> Retrained:
        """A run of the ``retrain`` pipeline: the challenger registered as ``challenger``,
        promoted to ``champion`` if it wins the held-out comparison and its baselines (the
        analysis's lock held throughout).

        ``require_new``: ConfigError (nothing run, nothing moved) when no labelled batch came
        since the last training.
        """
        with self.exclusive():
            return self._retrain(reason, require_new=require_new)

    def _retrain(self, reason: str, *, require_new: bool) -> Retrained:
        if require_new and not self._new_labels():
            raise ConfigError(
                f"nothing new to retrain '{self.name}' on: no labelled batch since the last "
                "training",
                fix=f"score a batch with labels first (`opslens batch {self.name} --input FILE`)",
            )
        champion_version = self.ensure_champion(train=False)
        champion = self.registry.load(champion_version)
        try:
            result = run_analysis(
                self.project,
                self.name,
                pipeline=self.hooks.retrain_pipeline,
                inputs={"labelled": self.labelled(), "champion": champion},
                reason=reason,
                promote=False,
            )
        except OpslensError as e:
            self.history.add_error(self.name, "retrain", str(e))
            raise
        version = result.model_version
        if version is None:
            raise RunError(
                f"the retraining run {result.run_id} of '{self.name}' registered no model",
                fix="check that tracking is enabled",
            )
        comparison: Comparison = result.view.object("comparison")
        lost = result.baselines is not None and not result.baselines.model_wins
        gate = result.baselines.verdict if lost and result.baselines is not None else ""
        now = self.registry.version_of(CHAMPION)
        if now is not None and now != champion_version:  # moved meanwhile: compare again
            log.info(
                "champion moved from version %s to %s during the retraining; comparing again",
                champion_version,
                now,
            )
            champion_version = now
            comparison = self.hooks.compare(
                self.registry.load(now), self.registry.load(version), self.window(), self.analysis
            )
        promoted = comparison.challenger_wins and not gate
        self.history.add_training(
            self.name,
            version,
            reason,
            {
                "run_id": result.run_id,
                "champion_version": champion_version,
                "comparison": comparison.details,
                "summary": comparison.summary(),
                "promoted": promoted,
            },
        )
        self.move(CHALLENGER, version, f"retrained ({reason})")
        _checkpoint("retrain:challenger-registered")
        done = Retrained(reason, version, champion_version, comparison, promoted, result, gate)
        if promoted:
            said = f"promoted over version {champion_version}: {comparison.summary()}"
            self.move(CHAMPION, version, said)
            self._serve_latest(result.run_id)
        else:
            log.info("champion version %s kept: %s", champion_version, done.summary())
        return done

    def retrain_if_due(self) -> Retrained | None:
        """Retrain when the recipe's rule says so now; None when it is not due."""
        version = self.ensure_champion(train=False)
        since = since_training(self.history.batches(self.name), version)
        reason = self.hooks.retrain_reason(
            since, self.analysis.params, self.trained_at(), datetime.now(UTC)
        )
        return self.retrain(reason) if reason else None

    def promote(self, version: str, *, force: bool = False, reason: str = "") -> Comparison | None:
        """Make ``version`` champion after a held-out comparison with the champion (``force``:
        even if it loses). ConfigError, nothing moved, for a version that does not exist. The
        analysis's lock is held throughout."""
        with self.exclusive():
            return self._promote(version, force=force, reason=reason)

    def _promote(self, version: str, *, force: bool, reason: str) -> Comparison | None:
        known = self.registry.versions()
        if version not in known:
            raise ConfigError(
                f"'{self.name}' has no registered version {version}",
                fix=f"choose one of: {', '.join(known)}"
                if known
                else f"train it first: `opslens run --analysis {self.name}`",
            )
        champion = self.registry.version_of(CHAMPION)
        if champion == version:
            return None
        verdict = self._baseline_loss(version)
        if verdict and not force:
            raise RunError(
                f"version {version} of '{self.name}' loses to its own baseline ({verdict}); "
                "the champion stays",
                fix=f"pass --force to promote version {version} anyway",
            )
        comparison = None
        if champion is not None:
            comparison = self.hooks.compare(
                self.registry.load(champion),
                self.registry.load(version),
                self.window(),
                self.analysis,
            )
            if not comparison.challenger_wins and not force:
                raise RunError(
                    f"version {version} does not beat champion version {champion} on held-out "
                    f"data ({comparison.summary()}); the champion stays",
                    fix=f"pass --force to promote version {version} anyway",
                )
        said = reason or "promoted by hand"
        if comparison is not None:
            said += f" over version {champion}: {comparison.summary()}"
        self.move(CHAMPION, version, said + (" (forced)" if force else ""))
        run_id = self.registry.run_of(version)
        if run_id is not None:
            self._serve_latest(str(run_id))
        return comparison

    def _serve_latest(self, run_id: str) -> None:
        """Point ``latest`` (what `--from latest` serves) at the champion's run, if it is here."""
        folder = self.project.runs_root() / self.name
        if (folder / run_id / "manifest.json").is_file():
            with locked(folder):
                point_latest(folder, run_id)

    def _baseline_loss(self, version: str) -> str:
        """The baseline verdict of the run that registered ``version`` if its model lost, else ''."""
        run_id = self.registry.run_of(version)
        path = self.project.runs_root() / self.name / str(run_id)
        if run_id is None or not (path / "facts.json").is_file():
            return ""
        baselines = self.recipe.read_facts(RunView(path).facts).baselines
        return "" if baselines is None or baselines.model_wins else baselines.verdict

    # ----- reading -----------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """``healthy`` / ``warning`` (drift) / ``degraded`` (alerts in the last batch), the
        aliases, the last batch, and error statistics."""
        records = self.history.batches(self.name)
        errors = self.history.errors(self.name)
        last = records[-1] if records else None
        alerts = list(last.get("alerts") or []) if last else []
        status = "healthy"
        if any(a.get("kind") == "drift" for a in alerts):
            status = "warning"
        if any(a.get("kind") == "alert" for a in alerts):
            status = "degraded"
        rejected: Counter[str] = Counter()
        for r in records:
            rejected.update(r.get("rejected_by_reason") or {})
        return {
            "status": status,
            "champion": self.registry.version_of(CHAMPION),
            "challenger": self.registry.version_of(CHALLENGER),
            "batches": len(records),
            "last_batch": last,
            "alerts": alerts,
            "errors": {
                "errors": len(errors),
                "by_kind": dict(Counter(e["kind"] for e in errors)),
                "rows_rejected": sum(int(r.get("rows_rejected") or 0) for r in records),
                "rejected_by_reason": dict(rejected),
            },
            "recent_errors": errors[-5:],
        }

    def alias_history(self) -> list[dict[str, Any]]:
        """Every alias move, with the version, from/until and the reason."""
        return self.history.alias_moves(self.name)
