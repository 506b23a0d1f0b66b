"""The split stage, one split at a time, gives exactly what labelling every event first gave."""

from __future__ import annotations

import polars as pl

from opslens.config import AnalysisConfig
from opslens.core.recipe import StageContext
from opslens.features.events import sessionize
from opslens.recipes.propensity import stages
from opslens.recipes.propensity.featurize import SPLITS
from opslens.recipes.propensity.params import PropensityParams
from opslens.synthetic.clickstream import make_clickstream


def _reference(ev: pl.DataFrame, bounds: list[object], gap: object) -> dict[str, pl.DataFrame]:
    """The split as it was first written: a split column on every event, then each split."""
    labelled = ev.with_columns(
        split=pl.when(pl.col("timestamp") < bounds[1])
        .then(pl.lit("train"))
        .when(pl.col("timestamp") < bounds[2])
        .then(pl.lit("val"))
        .otherwise(pl.lit("test"))
    )
    plain = labelled.drop(c for c in labelled.columns if c.startswith("session"))
    return {
        s: sessionize(
            plain.filter(pl.col("split") == s),
            gap=gap,  # type: ignore[arg-type]
            by=["user_id", "split"],
        ).sort("timestamp", "user_id", maintain_order=True)
        for s in SPLITS
    }


def test_split_parts_equal_the_labelled_reference() -> None:
    analysis = AnalysisConfig.model_validate(
        {"name": "p", "recipe": "propensity", "source": {"kind": "memory"}}
    )
    ctx = StageContext(analysis=analysis, params=PropensityParams(), random_state=0)
    data = make_clickstream(seed=5, num_users=1500, num_items=120, num_days=40)
    sessions = stages.sessionize_stage(ctx, data.events).values["sessionized_events"]
    out = stages.split(ctx, sessions)
    table = out.values["split_bounds"]
    bounds = [*table["start"].to_list(), table["end"][-1]]
    expected = _reference(sessions, bounds, ctx.params.sessions.gap)
    heights = [out.values[f"{s}_events"].height for s in SPLITS]
    assert sum(heights) == sessions.height and min(heights) > 1000
    assert out.metrics["sessions_cut"] > 0  # sessions really were cut at a boundary
    for s in SPLITS:
        assert out.values[f"{s}_events"].equals(expected[s]), s
        assert out.values[f"{s}_events"].columns[-1] == "session_seconds"
