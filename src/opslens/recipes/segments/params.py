"""Parameters of the segments recipe (``params:`` of an analysis with ``recipe: segments``).

Columns: ``columns.metrics`` are the numeric features that define segments (and feed the
models), ``columns.categorical`` are encoded for the models, ``columns.target`` is the
time-series target and ``params.resource_target`` the resource-usage target.

Example:
    >>> p = SegmentsParams()
    >>> p.hdbscan.min_cluster_size, p.min_segment_rows, p.monitor.noise_threshold
    (25, 50, 0.25)
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field

from opslens.config.base import Strict
from opslens.config.durations import Duration
from opslens.config.urls import DatabaseUrl

__all__ = [
    "AlertThresholds",
    "DriftThresholds",
    "HdbscanParams",
    "KnnParams",
    "LightGBMParams",
    "ModelChoiceParams",
    "MonitorParams",
    "SegmentsParams",
]


class HdbscanParams(Strict):
    """HDBSCAN settings (the hdbscan package, prediction data kept)."""

    min_cluster_size: int = Field(default=25, ge=2)
    """Smallest group of points HDBSCAN calls a segment."""
    min_samples: int = Field(default=10, ge=1)
    """Neighbours that make a point a core point (higher: more noise)."""
    cluster_selection_epsilon: float = Field(default=0.0, ge=0)
    """Distance below which clusters are merged."""


class KnnParams(Strict):
    """The kNN fallback that assigns noise points, and the fast assignment of new points."""

    n_neighbors: int = Field(default=15, ge=1)
    """Neighbours (among clustered training points) that vote on a noise point's segment."""
    reference_size: int = Field(default=4_000, ge=50)
    """Clustered training points kept as the reference set new points are matched to."""


class LightGBMParams(Strict):
    """LightGBM settings of one target's models (per segment and global)."""

    num_leaves: int = Field(default=15, ge=2)
    learning_rate: float = Field(default=0.08, ge=1e-6, le=1)
    n_estimators: int = Field(default=100, ge=1)
    lambda_l1: float = Field(default=0.0, ge=0)
    lambda_l2: float = Field(default=0.0, ge=0)
    min_child_samples: int = Field(default=10, ge=1)


class ModelChoiceParams(Strict):
    """Per segment and target: the global model, the segment's own, or global + a correction."""

    mode: Literal["auto", "segment", "blend", "global"] = "auto"
    """``auto``: chosen per segment on out-of-fold rows; ``segment`` / ``blend`` / ``global``:
    that answer for every segment large enough (no comparison)."""
    folds: int = Field(default=3, ge=2, le=10)
    """Shuffled folds of the training rows whose out-of-fold predictions decide."""
    min_gain: float = Field(default=0.01, ge=0, lt=1)
    """Relative out-of-fold RMSE gain over the global model a segment's own model (or the
    blend) needs to be chosen."""


class AlertThresholds(Strict):
    """A batch raises an alert when one of these is exceeded."""

    noise_ratio: float = Field(default=0.3, ge=0, le=1)
    processing_time: float = Field(default=5.0, gt=0)
    """Seconds per batch."""
    memory_usage: float = Field(default=1_000.0, gt=0)
    """Peak resident memory of the scoring process (MB) after a batch."""


class DriftThresholds(Strict):
    """Drift warnings: the noise ratio's trend and performance once labels arrive."""

    noise_ratio_trend: float = Field(default=0.05, ge=0)
    """Rise over the window (last batch minus the window's first) of the noise ratio of rows
    inside the training range (rows outside it are warned about by ``out_of_range``)."""
    performance_degradation: float = Field(default=0.1, ge=0)
    """Relative RMSE rise on labelled batches against training (warned when the rise is
    beyond this by two standard errors: a batch's chance does not warn)."""
    out_of_range: float = Field(default=0.05, ge=0, le=1)
    """Share of a batch's rows outside an input's training range (a number below its minimum
    or above its maximum, a category never seen) that warns, naming the input."""


class MonitorParams(Strict):
    """Monitoring and retraining of a deployed segments model."""

    noise_threshold: float = Field(default=0.25, ge=0, le=1)
    """Automatic retraining when the window's noise ratio passes this."""
    window_batches: int = Field(default=2, ge=1)
    """Batches whose rows form the noise-ratio window for the retraining trigger."""
    expanding_window_size: int = Field(default=8_000, ge=10)
    """Most recent rows (training + labelled batches) a retraining fits on."""
    retrain_interval: Duration | None = None
    """Scheduled retraining: retrain when this long has passed since the last training."""
    alert: AlertThresholds = Field(default_factory=AlertThresholds)
    drift: DriftThresholds = Field(default_factory=DriftThresholds)
    history_url: DatabaseUrl | None = None
    """SQLAlchemy URL of the monitoring history; default: SQLite beside the runs."""
    graceful_degradation: bool = True
    """Score rows of tiny or unknown segments with the global model (reported per row)."""

    def interval(self) -> timedelta | None:
        """The scheduled retraining interval, if any.

        Example:
            >>> MonitorParams.model_validate({"retrain_interval": "12h"}).interval()
            datetime.timedelta(seconds=43200)
        """
        return self.retrain_interval


class SegmentsParams(Strict):
    """Knobs of the segments recipe; every one has a default."""

    resource_target: str = "resource_hours"
    """The resource-usage target column (the time-series target is ``columns.target``)."""
    model_features: list[str] = Field(default_factory=list)
    """Extra numeric columns for the models only (e.g. lags), not for segmenting."""
    hdbscan: HdbscanParams = Field(default_factory=HdbscanParams)
    knn: KnnParams = Field(default_factory=KnnParams)
    lgb_series: LightGBMParams = Field(default_factory=LightGBMParams)
    lgb_resource: LightGBMParams = Field(default_factory=LightGBMParams)
    min_segment_rows: int = Field(default=50, ge=2)
    """A segment with fewer training rows is scored by the global model."""
    model_choice: ModelChoiceParams = Field(default_factory=ModelChoiceParams)
    test_size: float = Field(default=0.25, gt=0, lt=1)
    monitor: MonitorParams = Field(default_factory=MonitorParams)
