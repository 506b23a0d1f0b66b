"""The ``distribution`` recipe: patterns in the distribution of a target per combination.

Instead of an average per route, it finds the recurring *shapes* of the target's
distribution (fast and tight, slow and skewed, bimodal, ...) across combinations
of categorical attributes, and predicts which shape a new instance will follow,
with a probability per shape.

Example:
    >>> RECIPE.stage_names()
    ['prepare', 'quantize', 'choose_k', 'cluster', 'classify']
    >>> RECIPE.predictor.__name__, RECIPE.params_model().n_bins
    ('PatternPredictor', 20)
"""

from __future__ import annotations

from typing import Any

import polars as pl

from opslens.config import AnalysisConfig
from opslens.core.baselines import Baseline
from opslens.core.lifecycle import lifecycle_facts
from opslens.core.recipe import Demo, Output, Recipe, Stage
from opslens.recipes.distribution.facts import DistributionFacts
from opslens.recipes.distribution.lifecycle import BATCH, LIFECYCLE, RETRAIN
from opslens.recipes.distribution.narrative import distribution_narrative
from opslens.recipes.distribution.params import DistributionParams
from opslens.recipes.distribution.predictor import PatternPredictor
from opslens.recipes.distribution.stages import (
    check_columns,
    choose_k_stage,
    classify,
    cluster_stage,
    prepare,
    quantize_stage,
)

__all__ = ["RECIPE", "DistributionParams", "PatternPredictor"]


def demo_instances(data: pl.DataFrame, analysis: AnalysisConfig) -> list[dict[str, Any]]:
    """Five trips of the demo data, one whose first attribute was never seen, one numeric-typed."""
    cols = analysis.columns
    keep = [*cols.categorical, *([cols.group] if cols.group else []), str(cols.target)]
    rows = data.select(keep).sample(5, seed=99).to_dicts()
    unseen = {k: v for k, v in rows[0].items() if k != cols.target}
    unseen[cols.categorical[0]] = "never-seen"
    return [*rows, unseen]


RECIPE = Recipe(
    name="distribution",
    summary="clusters the distribution of a target per combination of categoricals; "
    "predicts the pattern of a new instance with probabilities",
    params_model=DistributionParams,
    pipelines={
        "train": (
            Stage(
                "prepare",
                prepare,
                inputs=("raw",),
                outputs=(Output("prepared"),),
                plots=("initial_distributions",),
            ),
            Stage(
                "quantize",
                quantize_stage,
                inputs=("prepared",),
                outputs=(Output("quantized"), Output("histograms"), Output("edges", "object")),
            ),
            Stage(
                "choose_k",
                choose_k_stage,
                inputs=("quantized", "histograms"),
                outputs=(Output("k_choice", "object"),),
                plots=("k_selection",),
            ),
            Stage(
                "cluster",
                cluster_stage,
                inputs=("quantized", "histograms", "k_choice", "edges"),
                outputs=(Output("clusters"), Output("profiles")),
                plots=("cluster_profiles",),
            ),
            Stage(
                "classify",
                classify,
                inputs=("quantized", "histograms", "clusters", "profiles", "edges"),
                tables=("classifier_holdout", "predictions_holdout"),
                plots=("confusion_matrix", "holdout_scores"),
                model=True,
            ),
        ),
        "batch": BATCH,
        "retrain": RETRAIN,
    },
    lifecycle=LIFECYCLE,
    predictor=PatternPredictor,
    facts_model=lifecycle_facts(DistributionFacts),
    narrative=distribution_narrative,
    check_columns=check_columns,
    demo=Demo(files=("project.yaml",), instances=demo_instances),
    package=__name__,
    ui_pages=("patterns",),
    engine_frames=True,
    baselines=(
        Baseline("own", "each combination's own histogram"),
        Baseline("global", "one global histogram"),
    ),
    prompts={
        "summary": "Write a summary of two or three sentences: how many distribution patterns "
        "of the target were found across how many combinations, what sets them apart, and how "
        "well the predicted distribution does on the time-ordered holdout (log score and HDR "
        "coverage against the global and own-histogram baselines).",
        "The patterns": "Describe each pattern in one sentence a manager understands: where "
        "most values lie and how spread or skewed they are, using the HDR intervals given.",
    },
)
