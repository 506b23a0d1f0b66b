"""MLflow for a deployed segments model: experiments per action, child runs, aliases with audit.

Three experiments per analysis: ``<analysis>-training``, ``<analysis>-batch`` and
``<analysis>-retraining``. A training (or retraining) is one parent run with child runs
``preprocessing``, ``hdbscan``, ``knn-fallback``, ``series-models``, ``resource-models``
and ``performance-report``; the pipeline is logged in the parent as an opslens pyfunc
(:class:`~opslens.tracking.mlflow_tracker.MlflowTracker`, which keeps MLflow's
process-wide state as the caller had it) and registered as one version of the model
named after the analysis. Versions are pointed at by the aliases ``champion`` and
``challenger`` (never the deprecated stages); every move is written to the
:class:`~opslens.lifecycle.history.HistoryStore` audit with its reason.

Example:
    >>> import tempfile
    >>> from opslens.lifecycle.history import HistoryStore
    >>> d = tempfile.mkdtemp()
    >>> reg = SegmentRegistry(f"sqlite:///{d}/mlflow.db", "pat", HistoryStore(f"sqlite:///{d}/h.db"))
    >>> reg.version_of("champion") is None
    True
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from opslens.lifecycle.history import HistoryStore
from opslens.recipes.segments.model import SegmentModel
from opslens.recipes.segments.predictor import SegmentPredictor
from opslens.tracking.mlflow_tracker import MlflowTracker
from opslens.tracking.models import load_registered
from opslens.tracking.tracker import ModelToLog

__all__ = ["CHALLENGER", "CHAMPION", "SegmentRegistry"]

CHAMPION = "champion"
CHALLENGER = "challenger"
log = logging.getLogger(__name__)


def _finite(metrics: Mapping[str, Any]) -> dict[str, float]:
    out = {}
    for k, v in metrics.items():
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(float(v)):
            out[k] = float(v)
    return out


class SegmentRegistry:
    """MLflow runs, registered versions and audited aliases of one analysis."""

    def __init__(
        self,
        uri: str,
        analysis: str,
        history: HistoryStore,
        artifact_root: Path | None = None,
    ) -> None:
        self.uri = uri
        self.analysis = analysis
        self.history = history
        self.artifact_root = artifact_root

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

    def set_alias(self, alias: str, version: str, reason: str) -> None:
        """Point ``alias`` at ``version`` and record the move (from which version, why)."""
        previous = self.version_of(alias)
        self._client().set_registered_model_alias(self.analysis, alias, str(version))
        self.history.add_alias_move(self.analysis, alias, str(version), previous, reason)

    def load(self, alias: str = CHAMPION) -> SegmentModel:
        """The model the alias points to, loaded through MLflow (as a fresh process would)."""
        predictor = load_registered(self.uri, self.analysis, alias).predictor
        assert isinstance(predictor, SegmentPredictor)
        return predictor.model

    def _tracker(self, kind: str, run_name: str) -> MlflowTracker:
        tracker = MlflowTracker(self.uri, artifact_root=self.artifact_root)
        tracker.start(experiment=f"{self.analysis}-{kind}", run_name=run_name)
        return tracker

    @staticmethod
    def _child(name: str, params: Mapping[str, Any], metrics: Mapping[str, Any]) -> None:
        import mlflow

        with mlflow.start_run(run_name=name, nested=True):
            if params:
                mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
            if metrics:
                mlflow.log_metrics(_finite(metrics))

    def log_training(
        self,
        model: SegmentModel,
        *,
        kind: str,
        reason: str,
        report: Mapping[str, Any],
        example: pl.DataFrame,
    ) -> str:
        """Log a (re)training as a parent run with child runs; register the pipeline; its version."""
        tracker = self._tracker(kind, run_name=f"{kind}: {reason}"[:200])
        try:
            tracker.log_params({"reason": reason, "kind": kind})
            pre, a = model.preprocessor, model.assigner
            self._child(
                "preprocessing",
                {
                    "features": list(pre.features),
                    "categorical": list(pre.categorical),
                    "extra": list(pre.extra),
                },
                {
                    f"mean_{n}": float(m)
                    for n, m in zip(pre.features, pre.scaler_.mean_, strict=True)
                },
            )
            self._child(
                "hdbscan",
                {
                    "min_cluster_size": a.min_cluster_size,
                    "min_samples": a.min_samples,
                    "cluster_selection_epsilon": a.cluster_selection_epsilon,
                },
                {
                    "segments": a.n_segments_,
                    "noise_ratio": float((a.labels_ < 0).mean()),
                    "training_rows": len(a.labels_),
                },
            )
            self._child(
                "knn-fallback",
                {"n_neighbors": a.n_neighbors, "reference_size": a.reference_size},
                {
                    "noise_points_assigned": int((a.labels_ < 0).sum()),
                    "mean_confidence": float(a.confidence_[a.labels_ < 0].mean())
                    if (a.labels_ < 0).any()
                    else float("nan"),
                },
            )
            for child, target in (
                ("series-models", model.series_target),
                ("resource-models", model.resource_target),
            ):
                t = report.get("targets", {}).get(target, {})
                metrics = {f"segment_{k}": v for k, v in t.get("segment", {}).items()}
                metrics |= {f"global_{k}": v for k, v in t.get("global", {}).items()}
                reg = model.series if child == "series-models" else model.resource
                self._child(
                    child, {"target": target, "segment_models": sorted(reg.models_)}, metrics
                )
            self._child("performance-report", {}, _finite(report.get("comparison", {})))
            output = SegmentPredictor(model).predict_frame(example)
            version = tracker.log_model(
                ModelToLog(
                    model=SegmentPredictor(model),
                    input_example=example.to_pandas(),
                    output_example=output.to_pandas(),
                    registered_name=self.analysis,
                    description=f"opslens segments pipeline ({kind}: {reason})",
                    tags={"opslens_recipe": "segments", "opslens_reason": reason[:250]},
                )
            )
        except BaseException:
            tracker.end("FAILED")
            raise
        tracker.end("FINISHED")
        assert version is not None
        self.history.add_training(self.analysis, version, reason, dict(report))
        return version

    def log_batch(self, record: Mapping[str, Any], alerts: list[dict[str, Any]]) -> None:
        """One run in ``<analysis>-batch`` with the batch's metrics and alerts."""
        import mlflow

        tracker = self._tracker("batch", run_name=f"batch {record.get('batch')}")
        try:
            tracker.log_params(
                {
                    "model_version": record.get("model_version"),
                    "alerts": [a["metric"] for a in alerts],
                }
            )
            tracker.log_metrics(_finite(record))
            with mlflow.start_run(run_name="segment-shares", nested=True):
                mlflow.log_metrics(
                    {
                        f"share_{k}": float(v)
                        for k, v in (record.get("segment_shares") or {}).items()
                    }
                )
        except BaseException:
            tracker.end("FAILED")
            raise
        tracker.end("FINISHED")
