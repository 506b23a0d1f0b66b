"""The ``segments`` recipe: HDBSCAN segments, a kNN fallback, per-segment models of two targets.

It finds segments of patients (trips, machines) with HDBSCAN, places the points HDBSCAN
leaves as noise with a kNN model trained on the clustered points, and predicts a
time-series target and a resource-usage target with a LightGBM model per segment (a
global model for segments too small). Batches are scored, monitored and the model
retrained when it drifts (:class:`SegmentPipeline` in memory; ``opslens batch``,
``monitor``, ``retrain``, ``promote`` and ``models history`` run it through the runner).

Pipelines: ``train`` (prepare, fit), ``batch`` (score_batch: a batch scored by the champion),
``retrain`` (refit: a challenger on the expanding window, compared with the champion), ``score``
(prepare, fit, score: train and score the analysis's data in one run). The life-cycle hooks are
in :mod:`opslens.recipes.segments.lifecycle`.

Example:
    >>> RECIPE.stage_names(), RECIPE.stage_names("score")
    (['prepare', 'fit'], ['prepare', 'fit', 'score'])
    >>> RECIPE.predictor.__name__, RECIPE.params_model().min_segment_rows
    ('SegmentPredictor', 50)
"""

from __future__ import annotations

from typing import Any

import polars as pl

from opslens.config import AnalysisConfig
from opslens.core.lifecycle import lifecycle_facts
from opslens.core.recipe import Demo, Output, Recipe, Stage
from opslens.recipes.segments.baseline import GLOBAL_MODEL
from opslens.recipes.segments.facts import SegmentsFacts
from opslens.recipes.segments.lifecycle import BATCH, LIFECYCLE, RETRAIN
from opslens.recipes.segments.model import SegmentModel, fit_model
from opslens.recipes.segments.narrative import segments_narrative
from opslens.recipes.segments.params import SegmentsParams
from opslens.recipes.segments.pipeline import BatchResult, Comparison, SegmentPipeline
from opslens.recipes.segments.predictor import SegmentPredictor
from opslens.recipes.segments.stages import check_columns, fit_stage, prepare, score_stage

__all__ = [
    "RECIPE",
    "BatchResult",
    "Comparison",
    "SegmentModel",
    "SegmentPipeline",
    "SegmentPredictor",
    "SegmentsParams",
    "fit_model",
]


def demo_instances(data: pl.DataFrame, analysis: AnalysisConfig) -> list[dict[str, Any]]:
    """Four patient-days of the demo data and one from a ward never seen in training."""
    cols = [
        *analysis.columns.metrics,
        *analysis.params.model_features,
        *analysis.columns.categorical,
    ]
    rows = data.select(cols).sample(4, seed=7).to_dicts()
    unseen = dict(rows[0])
    if analysis.columns.categorical:
        unseen[analysis.columns.categorical[0]] = "never-seen"
    return [*rows, unseen]


_PREPARE = Stage("prepare", prepare, inputs=("raw",), outputs=(Output("prepared"),))
_FIT = Stage(
    "fit",
    fit_stage,
    inputs=("prepared",),
    outputs=(Output("segment_model", "object"), Output("steps", "object")),
    tables=("training_segments",),
    plots=("segments", "rmse_comparison", "segment_rmse"),
    model=True,
)
_SCORE = Stage("score", score_stage, inputs=("raw", "segment_model"), outputs=(Output("scored"),))

RECIPE = Recipe(
    name="segments",
    summary="HDBSCAN segments with a kNN fallback, per-segment LightGBM models of two targets, "
    "batch scoring, monitoring and drift-driven retraining",
    params_model=SegmentsParams,
    pipelines={
        "train": (_PREPARE, _FIT),
        "retrain": RETRAIN,
        "batch": BATCH,
        "score": (_PREPARE, _FIT, _SCORE),
    },
    lifecycle=LIFECYCLE,
    predictor=SegmentPredictor,
    facts_model=lifecycle_facts(SegmentsFacts),
    narrative=segments_narrative,
    baselines=(GLOBAL_MODEL,),
    check_columns=check_columns,
    demo=Demo(files=("project.yaml",), instances=demo_instances),
    package=__name__,
    ui_pages=("monitoring",),
    requires=("hdbscan", "lightgbm"),
    prompts={
        "summary": "Write a summary of two or three sentences: how many segments were found, "
        "how many points were noise and placed by the kNN fallback, and how much the "
        "per-segment models improve on one global model for each target (RMSE).",
    },
)
