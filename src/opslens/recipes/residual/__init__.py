"""The ``residual`` recipe: a trend per machine axis, residual limits (MinC / MaxC) with
run-length sustain rules, and an online checker that says ok, alert or error per sample.

Example:
    >>> RECIPE.stage_names()
    ['profile', 'prepare', 'fit', 'evaluate', 'thresholds']
    >>> RECIPE.predictor.__name__, RECIPE.params_model().thresholds.maxc_percentile
    ('ResidualPredictor', 95.0)
"""

from __future__ import annotations

from typing import Any

import polars as pl

from opslens.config import AnalysisConfig
from opslens.core.lifecycle import lifecycle_facts
from opslens.core.recipe import Demo, Output, Recipe, Stage
from opslens.recipes.residual.baselines import BASELINES
from opslens.recipes.residual.checker import OnlineChecker
from opslens.recipes.residual.facts import ResidualFacts
from opslens.recipes.residual.lifecycle import BATCH, LIFECYCLE, RETRAIN
from opslens.recipes.residual.narrative import residual_narrative
from opslens.recipes.residual.params import ResidualParams
from opslens.recipes.residual.predictor import ResidualPredictor
from opslens.recipes.residual.stages import (
    check_columns,
    evaluate,
    fit,
    prepare,
    profile,
    thresholds,
)

__all__ = ["RECIPE", "OnlineChecker", "ResidualParams", "ResidualPredictor"]


def demo_instances(data: pl.DataFrame, analysis: AnalysisConfig) -> list[dict[str, Any]]:
    """60 samples around a planted fault, one stream with ``seq``: for the pump (a model per
    mode) at its sudden fault (84.4% of its rows), with the mode and speed; for the axes at
    the fault planted at 90%."""
    time = str(analysis.columns.time)
    axes = list(analysis.columns.metrics) or [c for c in data.columns if c != time]
    params = analysis.params
    if not isinstance(params, ResidualParams):
        params = ResidualParams.model_validate(params or {})
    inputs = [c for cols in params.model.regressors.values() for c in cols]
    inputs += [params.model.mode_column] if params.model.mode_column else []
    start = int(data.height * 0.844) if inputs else max(0, int(data.height * 0.9) - 10)
    keep = list(dict.fromkeys([time, *axes, *inputs]))
    rows = data.slice(start, 60).select(keep)
    rows = rows.with_columns(pl.col(time).dt.strftime("%Y-%m-%dT%H:%M:%S%.6f"))
    return [{"stream": "demo", "seq": i, **r} for i, r in enumerate(rows.to_dicts(), start=1)]


RECIPE = Recipe(
    name="residual",
    summary="fits a trend per axis; sets residual limits (MinC/MaxC) with run-length sustain "
    "rules; checks samples online: ok, alert or error; recalibrates the limits on drift or a "
    "schedule, judged on false alarms and planted faults",
    params_model=ResidualParams,
    pipelines={
        "train": (
            Stage("profile", profile, inputs=("raw",), outputs=(Output("samples"),)),
            Stage(
                "prepare",
                prepare,
                inputs=("samples",),
                outputs=(Output("prepared"), Output("prep_stats", "object")),
            ),
            Stage(
                "fit",
                fit,
                inputs=("prepared", "prep_stats"),
                outputs=(Output("models", "object"),),
                plots=("*_fit",),
            ),
            Stage(
                "evaluate",
                evaluate,
                inputs=("prepared", "models"),
                outputs=(Output("metrics"), Output("residuals")),
                plots=("*_residual",),
            ),
            Stage(
                "thresholds",
                thresholds,
                inputs=("samples", "residuals", "models", "prep_stats"),
                outputs=(Output("thresholds"),),
                tables=("holdout_levels",),
                model=True,
            ),
        ),
        "batch": BATCH,
        "retrain": RETRAIN,
    },
    lifecycle=LIFECYCLE,
    predictor=ResidualPredictor,
    baselines=BASELINES,
    versioned=True,
    facts_model=lifecycle_facts(ResidualFacts),
    narrative=residual_narrative,
    check_columns=check_columns,
    demo=Demo(files=("project.yaml", "pump.yaml"), instances=demo_instances),
    package=__name__,
    ui_pages=("residuals", "live"),
    prompts={
        "summary": "Write a summary of two or three sentences: how many axes were modelled, "
        "how well the trends fit (R², RMSE against the baseline) and what limits were set.",
    },
)
