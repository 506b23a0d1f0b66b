"""The ``propensity`` recipe: clickstream → sessions → leakage-free split → point-in-time
features → imbalanced purchase models (logistic baseline and XGBoost).

Example:
    >>> RECIPE.stage_names()
    ['data-gen', 'sessionize', 'split', 'features', 'train']
    >>> [i.name for i in RECIPE.inputs]
    ['item_table', 'user_table']
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from opslens.config import AnalysisConfig
from opslens.core.recipe import Demo, FileInput, Output, Recipe, Stage
from opslens.features.events import sessionize
from opslens.recipes.propensity.baselines import BASELINES
from opslens.recipes.propensity.facts import PropensityFacts
from opslens.recipes.propensity.featurize import features
from opslens.recipes.propensity.narrative import propensity_narrative
from opslens.recipes.propensity.params import PropensityParams
from opslens.recipes.propensity.point_in_time import point_in_time_features
from opslens.recipes.propensity.predictor import PropensityPredictor
from opslens.recipes.propensity.prepare import (
    canonical_events,
    check_columns,
    event_columns,
    item_table,
)
from opslens.recipes.propensity.stages import data_gen, sessionize_stage, split
from opslens.recipes.propensity.training import train

__all__ = ["RECIPE", "PropensityParams", "PropensityPredictor"]


def _items_path(params: PropensityParams) -> Path | None:
    return params.items.path


def _users_path(params: PropensityParams) -> Path | None:
    return params.users.path


def demo_instances(data: pl.DataFrame, analysis: AnalysisConfig) -> list[dict[str, Any]]:
    """The point-in-time features of the two busiest (user, item) pairs at the data's last midnight."""
    p: PropensityParams = analysis.params
    cols = event_columns(analysis)
    events, _ = canonical_events(data, cols, p.event_names)
    items = item_table(events, data, None, cols, None, None, p.items.columns)
    last = events["timestamp"].max()
    assert isinstance(last, datetime)
    t = datetime(last.year, last.month, last.day)
    top = (
        events.filter(pl.col("timestamp") < t)
        .group_by("user_id", "item_id")
        .len()
        .sort("len", "user_id", "item_id", descending=[True, False, False])
        .head(2)
    )
    rows = top.select("user_id", "item_id").with_columns(
        prediction_time=pl.lit(t).cast(pl.Datetime("us"))
    )
    feats = point_in_time_features(
        rows,
        sessionize(events, gap=p.sessions.gap),
        items,
        windows=p.features.windows,
        recency_cap_hours=p.features.recency_cap_hours,
    )
    out = feats.with_columns(pl.col("prediction_time").dt.strftime("%Y-%m-%dT%H:%M:%S")).to_dicts()
    return [*out, {"user_id": "no-features"}]


RECIPE = Recipe(
    name="propensity",
    summary="sessionizes a clickstream, splits it by date without leakage, builds point-in-time "
    "features and predicts who buys what (logistic baseline against XGBoost)",
    params_model=PropensityParams,
    pipelines={
        "train": (
            Stage(
                "data-gen",
                data_gen,
                inputs=("raw", "item_table", "user_table"),
                outputs=(Output("events"), Output("items"), Output("users")),
                tables=("funnel",),
                plots=("funnel",),
            ),
            Stage(
                "sessionize",
                sessionize_stage,
                inputs=("events",),
                outputs=(Output("sessionized_events"),),
            ),
            Stage(
                "split",
                split,
                inputs=("sessionized_events",),
                outputs=(
                    Output("train_events"),
                    Output("val_events"),
                    Output("test_events"),
                    Output("split_bounds"),
                ),
            ),
            Stage(
                "features",
                features,
                inputs=("train_events", "val_events", "test_events", "split_bounds", "items"),
                outputs=(Output("train_features"), Output("val_features"), Output("test_features")),
            ),
            Stage(
                "train",
                train,
                inputs=("train_features", "val_features", "test_features"),
                outputs=(Output("models", "object"),),
                tables=("model_comparison", "test_predictions", "calibration"),
                plots=("calibration", "pr_curve", "feature_importance"),
                model=True,
            ),
        )
    },
    predictor=PropensityPredictor,
    facts_model=PropensityFacts,
    narrative=propensity_narrative,
    check_columns=check_columns,
    inputs=(
        FileInput("item_table", _items_path, "the item table (params.items.path)"),
        FileInput("user_table", _users_path, "the user table (params.users.path)"),
    ),
    demo=Demo(files=("project.yaml",), instances=demo_instances),
    package=__name__,
    ui_pages=("ranking",),
    baselines=BASELINES,
    engine_frames=True,
    prompts={
        "summary": "Write a summary of two or three sentences: how many events and users were "
        "analysed, how rare purchases are, and how the chosen model's test PR-AUC compares with "
        "the base rate and with the logistic baseline, and whether the model beats its baselines "
        "(the baselines verdict).",
    },
)
