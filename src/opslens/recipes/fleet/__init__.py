"""The ``fleet`` recipe: fingerprint every device, find rare devices and behaviour groups,
explain them, and check them against known failures.

Example:
    >>> RECIPE.stage_names()
    ['prepare', 'fingerprint', 'rare', 'health', 'groups', 'explain', 'failures', 'inspect']
    >>> [i.name for i in RECIPE.inputs]
    ['failure_table', 'event_table']
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import polars.selectors as cs

from opslens.config import AnalysisConfig
from opslens.core.recipe import Demo, FileInput, Output, Recipe, Stage
from opslens.recipes.fleet.baselines import BASELINES
from opslens.recipes.fleet.facts import FleetFacts
from opslens.recipes.fleet.health import health
from opslens.recipes.fleet.narrative import fleet_narrative
from opslens.recipes.fleet.params import FleetParams
from opslens.recipes.fleet.predictor import FleetPredictor
from opslens.recipes.fleet.prepare import check_columns, prepare
from opslens.recipes.fleet.stages import (
    explain,
    failures,
    fingerprint,
    groups,
    inspect,
    rare,
)

__all__ = ["RECIPE", "FleetParams", "FleetPredictor"]


def _failure_path(params: FleetParams) -> Path | None:
    return params.failures.path


def _event_path(params: FleetParams) -> Path | None:
    return params.events.path


def demo_instances(data: pl.DataFrame, analysis: AnalysisConfig) -> list[dict[str, Any]]:
    """Two devices of the demo fleet replayed with their readings, and one with too few.

    The stream answers the replayed devices as the batch run scored them.
    """
    cols = analysis.columns
    entity, time = str(cols.entity), str(cols.time)
    out: list[dict[str, Any]] = []
    for device in data[entity].unique(maintain_order=True).head(2).to_list():
        rows = data.filter(pl.col(entity) == device).select(time, *cols.metrics)
        rows = rows.with_columns(
            pl.col(time).dt.strftime("%Y-%m-%dT%H:%M:%S"), cs.float().fill_nan(None)
        )
        out.append({entity: device, "readings": rows.to_dicts()})
    out.append({entity: "too-short", "readings": out[0]["readings"][:2]})
    return out


RECIPE = Recipe(
    name="fleet",
    summary="fingerprints every device's series; lists sensor faults apart; ranks failure risk "
    "from rarity and change against the device's own past and its peers; finds behaviour groups; "
    "checks the ranking and a warning rule against known failures",
    params_model=FleetParams,
    pipelines={
        "train": (
            Stage(
                "prepare",
                prepare,
                inputs=("raw", "failure_table"),
                outputs=(Output("readings"),),
            ),
            Stage(
                "fingerprint", fingerprint, inputs=("readings",), outputs=(Output("fingerprints"),)
            ),
            Stage(
                "rare",
                rare,
                inputs=("fingerprints", "failure_table"),
                outputs=(
                    Output("rare_scores"),
                    Output("rare_top"),
                    Output("rare_result", "object"),
                ),
                plots=("rare_scores",),
            ),
            Stage(
                "health",
                health,
                inputs=("readings", "rare_scores", "failure_table", "event_table"),
                outputs=(Output("risk_scores"), Output("warning_result", "object")),
                tables=("sensor_faults", "risk", "change"),
            ),
            Stage(
                "groups",
                groups,
                inputs=("readings", "fingerprints", "rare_scores", "rare_result", "failure_table"),
                outputs=(Output("group_labels"), Output("group_result", "object")),
                tables=("group_summary", "embedding"),
                plots=("embedding", "k_selection", "k_distance"),
                model=True,
            ),
            Stage(
                "explain",
                explain,
                inputs=("fingerprints", "group_labels", "group_result", "rare_result"),
                outputs=(Output("contrasts"),),
            ),
            Stage(
                "failures",
                failures,
                inputs=(
                    "readings",
                    "group_labels",
                    "group_result",
                    "rare_scores",
                    "rare_result",
                    "contrasts",
                    "risk_scores",
                    "warning_result",
                    "failure_table",
                ),
                tables=("failure_enrichment", "lead_times"),
                plots=("failure_rates",),
            ),
            Stage(
                "inspect",
                inspect,
                inputs=("readings", "rare_top", "failure_table", "event_table"),
                plots=("device_*_anomalies", "device_*_decomposition"),
            ),
        )
    },
    predictor=FleetPredictor,
    facts_model=FleetFacts,
    narrative=fleet_narrative,
    check_columns=check_columns,
    inputs=(
        FileInput("failure_table", _failure_path, "the failure list (params.failures.path)"),
        FileInput("event_table", _event_path, "the maintenance events (params.events.path)"),
    ),
    demo=Demo(files=("project.yaml", "failures.csv"), instances=demo_instances),
    package=__name__,
    baselines=BASELINES,
    ui_pages=("series", "fleet", "failures"),
    engine_frames=True,
    prompts={
        "summary": "Write a summary of two or three sentences: how many devices were analysed, "
        "how many are rare and how many behaviour groups were found, and, if known failures "
        "were given, how well the rare score finds them (AUROC, precision at k).",
    },
)
