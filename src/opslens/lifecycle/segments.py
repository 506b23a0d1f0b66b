"""The segments recipe in service: score batches, monitor, retrain and promote, across processes.

:class:`SegmentsLifecycle` rebuilds the in-memory
:class:`~opslens.recipes.segments.SegmentPipeline` from what persists — the ``champion``
version in the MLflow registry, the batch history and errors in the
:class:`~opslens.lifecycle.history.HistoryStore`, the training data (the analysis's
source) and the labelled rows of earlier batches (``runs/<analysis>/lifecycle/labelled``)
— lets it do the work, and persists the outcome.

Without a champion, the version ``opslens run`` registered (alias ``current``) is
adopted; without one either, the pipeline is trained on the source first. A
retraining registers the new version as ``challenger`` *before* it is compared; only a
comparison it wins moves ``champion``, so a retraining killed at any point leaves
``champion`` where it was.

Example:
    >>> SegmentsLifecycle.__name__
    'SegmentsLifecycle'
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from opslens.config import AnalysisConfig, ProjectConfig, SyntheticSource
from opslens.errors import ConfigError, OpslensError
from opslens.io.load import load_source
from opslens.lifecycle.history import HistoryStore
from opslens.lifecycle.registry import CHALLENGER, CHAMPION, SegmentRegistry
from opslens.recipes.segments.model import SegmentModel
from opslens.recipes.segments.monitor import retrain_reason
from opslens.recipes.segments.params import SegmentsParams
from opslens.recipes.segments.pipeline import Comparison, SegmentPipeline, holdout_split
from opslens.recipes.segments.stages import evaluate
from opslens.synthetic import generate

__all__ = ["PAUSE_ENV", "BatchOutcome", "SegmentsLifecycle"]

log = logging.getLogger(__name__)
PAUSE_ENV = "OPSLENS_LIFECYCLE_PAUSE"
"""``<point>=<folder>``: at that point, write ``<folder>/reached`` and wait forever (tests)."""
_BATCH, _POS = "__batch", "__pos"


def _checkpoint(point: str) -> None:
    """Stop at a named point when a test asks to (it then kills the process there)."""
    spec = os.environ.get(PAUSE_ENV, "")
    if "=" in spec and spec.split("=", 1)[0] == point:
        folder = Path(spec.split("=", 1)[1])
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "reached").write_text(point)
        threading.Event().wait()


@dataclass(frozen=True)
class BatchOutcome:
    """A scored batch: its record (number, metrics), alerts, where predictions went, retraining."""

    record: dict[str, Any]
    alerts: list[dict[str, Any]]
    output: Path
    retrained: Comparison | None = None
    version: str | None = None


@dataclass
class SegmentsLifecycle:
    """Batch scoring, monitoring and retraining of one segments analysis of a project."""

    project: ProjectConfig
    analysis: AnalysisConfig
    store: HistoryStore
    registry: SegmentRegistry

    @classmethod
    def open(cls, project: ProjectConfig, name: str) -> SegmentsLifecycle:
        """The lifecycle of analysis ``name``; ConfigError unless it is a tracked segments one."""
        analysis = project.analysis(name)
        if analysis.recipe != "segments":
            raise ConfigError(
                f"analysis '{name}' uses the {analysis.recipe} recipe; batch scoring, health "
                "and retraining are for the segments recipe",
                fix="name an analysis with recipe: segments",
            )
        if not project.tracking.enabled:
            raise ConfigError(
                "batch scoring and retraining need the MLflow registry, but tracking is disabled",
                fix="set tracking.enabled: true in project.yaml",
            )
        params: SegmentsParams = analysis.params
        url = params.monitor.history_url or (
            f"sqlite:///{(project.runs_root() / 'segments-history.db').resolve()}"
        )
        project.runs_root().mkdir(parents=True, exist_ok=True)
        store = HistoryStore(url)
        registry = SegmentRegistry(
            project.tracking_uri(), name, store, artifact_root=project.root / "mlartifacts"
        )
        return cls(project, analysis, store, registry)

    @property
    def params(self) -> SegmentsParams:
        """The analysis's recipe params."""
        params: SegmentsParams = self.analysis.params
        return params

    @property
    def folder(self) -> Path:
        """Where labelled rows of scored batches are kept."""
        return self.project.runs_root() / self.analysis.name / "lifecycle"

    # ----- data ------------------------------------------------------------------------
    def training_data(self) -> pl.DataFrame:
        """The analysis's source, as ``opslens run`` reads it."""
        src = self.analysis.source
        frame = (
            generate(src.generator, seed=src.seed, options=src.options)
            if isinstance(src, SyntheticSource)
            else None
        )
        return load_source(self.analysis, frame=frame).frame

    def _columns(self) -> list[str]:
        cols = self.analysis.columns
        return [
            *cols.metrics,
            *self.params.model_features,
            *cols.categorical,
            str(cols.target),
            self.params.resource_target,
        ]

    def window(self) -> pl.DataFrame:
        """Training rows, then the labelled rows of every batch so far (most recent last)."""
        keep = self._columns()
        parts = [self.training_data().select(keep).with_columns(pl.lit(0, pl.Int64).alias(_BATCH))]
        labelled = self.folder / "labelled"
        if labelled.is_dir():
            for path in sorted(labelled.glob("*.parquet")):
                batch = int(path.stem)
                parts.append(
                    pl.read_parquet(path)
                    .select(keep)
                    .with_columns(pl.lit(batch, pl.Int64).alias(_BATCH))
                )
        frames = [p.with_columns(pl.int_range(p.height).alias(_POS)) for p in parts]
        window = pl.concat(frames, how="vertical_relaxed")
        finite = [
            pl.col(c).cast(pl.Float64).is_finite()
            for c in keep
            if c not in self.analysis.columns.categorical
        ]
        return window.filter(pl.all_horizontal(finite)).tail(
            self.params.monitor.expanding_window_size
        )

    # ----- models ----------------------------------------------------------------------
    def ensure_champion(self) -> str:
        """The champion's version: adopted from ``opslens run`` or trained now if there is none."""
        version = self.registry.version_of(CHAMPION)
        if version is not None:
            return version
        current = self.registry.version_of("current")
        if current is not None:
            reason = f"adopted version {current} trained by `opslens run`"
            self.registry.set_alias(CHAMPION, current, reason)
            self.store.add_training(self.analysis.name, current, reason, {})
            return current
        cols = self.analysis.columns
        data = self.training_data()
        pipe = SegmentPipeline(
            self.params,
            features=cols.metrics,
            categorical=cols.categorical,
            series_target=str(cols.target),
            random_state=self.analysis.random_state,
        ).fit(data, data[str(cols.target)], data[self.params.resource_target])
        report = {"baseline": pipe.baseline_}
        version = self.registry.log_training(
            pipe.model_,
            kind="training",
            reason="initial training",
            report=report,
            example=data.select(pipe.model_.inputs).head(5),
        )
        self.registry.set_alias(CHAMPION, version, "initial training")
        return version

    def pipeline(self) -> tuple[SegmentPipeline, str]:
        """The in-memory pipeline around the champion, its history, errors and window."""
        version = self.ensure_champion()
        model: SegmentModel = self.registry.load(CHAMPION)
        history = self.store.batches(self.analysis.name)
        trainings = self.store.trainings(self.analysis.name)
        trained_at = datetime.fromisoformat(trainings[-1]["at"]) if trainings else datetime.now(UTC)
        pipe = SegmentPipeline.from_model(
            model,
            self.params,
            version=int(version),
            trained_at=trained_at,
            window=self.window(),
            history=history,
            random_state=self.analysis.random_state,
        )
        pipe.alert_log = [a for r in history for a in r.get("alerts", [])]
        pipe.errors = self.store.errors(self.analysis.name)
        return pipe, version

    # ----- actions ---------------------------------------------------------------------
    def batch(self, frame: pl.DataFrame, output: Path) -> BatchOutcome:
        """Score ``frame`` with the champion, write predictions, record and log the batch;
        retrain when the monitoring rules say so."""
        pipe, version = self.pipeline()
        try:
            result = pipe.process_batch(frame, auto_retrain=False)
        except OpslensError as e:
            self.store.add_error(self.analysis.name, "batch", str(e))
            raise
        record = {**result.record, "alerts": result.alerts}
        number = self.store.add_batch(self.analysis.name, record)
        record["batch"] = number
        target, resource = str(self.analysis.columns.target), self.params.resource_target
        if target in frame.columns and resource in frame.columns:
            scored = (result.predictions["status"] == "scored").to_numpy()
            labelled = frame.filter(pl.Series(scored)).filter(
                pl.col(target).cast(pl.Float64).is_finite()
                & pl.col(resource).cast(pl.Float64).is_finite()
            )
            if labelled.height:
                (self.folder / "labelled").mkdir(parents=True, exist_ok=True)
                tmp = self.folder / "labelled" / f".{number:09d}.tmp"
                labelled.write_parquet(tmp)
                tmp.rename(self.folder / "labelled" / f"{number:09d}.parquet")
        output.parent.mkdir(parents=True, exist_ok=True)
        tmp_out = output.with_name(f".{output.name}.tmp")
        frame.hstack(result.predictions.drop("row")).write_parquet(tmp_out)
        tmp_out.rename(output)
        self.registry.log_batch(record, result.alerts)
        retrained = self.retrain(result.retrain_reason) if result.retrain_reason else None
        return BatchOutcome(record, result.alerts, output, retrained, version)

    def retrain(self, reason: str) -> Comparison:
        """Fit a challenger, register it as ``challenger``, promote it if it wins the comparison."""
        pipe, champion = self.pipeline()
        try:
            comparison = pipe.retrain(reason)
        except OpslensError as e:
            self.store.add_error(self.analysis.name, "retrain", str(e))
            raise
        challenger = pipe.challenger_
        held = holdout_split(pipe.window.tail(self.params.monitor.expanding_window_size))[1]
        report = {
            "comparison": {
                **{f"champion_{k}": v for k, v in comparison.champion.items()},
                **{f"challenger_{k}": v for k, v in comparison.challenger.items()},
                "ratio": comparison.ratio,
                "rows": comparison.rows,
                "training_rows": comparison.training_rows,
                "promoted": float(comparison.promoted),
            },
            "targets": evaluate(challenger, held.drop(_BATCH, _POS)),
            "champion_version": champion,
            "decision": comparison.summary(),
        }
        version = self.registry.log_training(
            challenger,
            kind="retraining",
            reason=reason,
            report=report,
            example=held.select(challenger.inputs).head(5),
        )
        self.registry.set_alias(CHALLENGER, version, f"retrained ({reason})")
        _checkpoint("retrain:challenger-registered")
        if comparison.promoted:
            self.registry.set_alias(
                CHAMPION, version, f"promoted over version {champion}: {comparison.summary()}"
            )
        else:
            log.info("champion version %s kept: %s", champion, comparison.summary())
        return comparison

    def retrain_if_due(self) -> Comparison | None:
        """Retrain when the noise-ratio window or the schedule says so; None when not due."""
        pipe, _ = self.pipeline()
        since = [r for r in pipe.history if r.get("model_version") == pipe.version]
        reason = retrain_reason(since, self.params.monitor, pipe.trained_at, datetime.now(UTC))
        return self.retrain(reason) if reason else None

    def health(self) -> dict[str, Any]:
        """Health, the last batch's alerts and error statistics (see SegmentPipeline.health)."""
        pipe, version = self.pipeline()
        out = pipe.health()
        out["champion"] = version
        out["challenger"] = self.registry.version_of(CHALLENGER)
        out["recent_errors"] = pipe.recent_errors(5)
        return out

    def alias_history(self) -> list[dict[str, Any]]:
        """Every alias move, with the version, from/until and the reason."""
        return self.store.alias_moves(self.analysis.name)
