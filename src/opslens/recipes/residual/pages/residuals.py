"""The Residuals page: per axis, the data with the fitted model and its MinC / MaxC bands,
the levels over time (ok / alert / error) with their run lengths, the thresholds with
their policy, and the recalibration (alias) history.

Everything comes from the recipe's own stages run in memory on the analysis's source
(:func:`opslens.ui.analysis.memory_run`): ``residuals`` (value, model, residual per
sample), ``thresholds`` (MinC / MaxC per axis) and the held-out levels table.

Example:
    >>> f = pl.DataFrame({"a_level": ["ok", "ok", "alert", "error", "error", "ok"]})
    >>> level_runs(f, "a").rows()
    [('ok', 0, 2), ('alert', 2, 1), ('error', 3, 2), ('ok', 5, 1)]
"""

from __future__ import annotations

from typing import Any

import altair as alt
import polars as pl
import streamlit as st

from opslens.ui.analysis import figure, open_page, show_baselines
from opslens.ui.deployment import render_deployment

__all__ = ["MAX_POINTS", "TITLE", "band_frame", "level_runs", "render"]

#: the page's name in the app's navigation
TITLE = "Residuals"
#: samples drawn per chart (every k-th sample beyond this)
MAX_POINTS = 3_000
COLOURS = {"ok": "#2e7d32", "alert": "#f9a825", "error": "#c62828"}


def level_runs(levels: pl.DataFrame, axis: str) -> pl.DataFrame:
    """The runs of one level in a row of ``<axis>_level``: level, first sample, length."""
    col = levels[f"{axis}_level"]
    run = (col != col.shift(1)).fill_null(True).cum_sum()
    return (
        pl.DataFrame({"level": col, "run": run})
        .with_row_index("sample")
        .group_by("run", maintain_order=True)
        .agg(pl.col("level").first(), pl.col("sample").first().alias("start"), pl.len())
        .select("level", pl.col("start").cast(pl.Int64), pl.col("len").cast(pl.Int64))
    )


def band_frame(
    residuals: pl.DataFrame, axis: str, minc: float, maxc: float, direction: str
) -> pl.DataFrame:
    """One axis's samples: value, model and the bands the residual is held to (model + MinC
    and + MaxC above; model − MinC and − MaxC below when the direction says so)."""
    one = residuals.filter(pl.col("axis") == axis).sort("ts")
    step = max(1, one.height // MAX_POINTS)
    one = one.gather_every(step)
    lines = {"value": pl.col("value"), "model": pl.col("predicted")}
    if direction in ("above", "both"):
        lines |= {
            "model + MinC": pl.col("predicted") + minc,
            "model + MaxC": pl.col("predicted") + maxc,
        }
    if direction in ("below", "both"):
        lines |= {
            "model − MinC": pl.col("predicted") - minc,
            "model − MaxC": pl.col("predicted") - maxc,
        }
    return one.select("ts", "split", **lines).unpivot(
        index=["ts", "split"], variable_name="line", value_name="y"
    )


#: the band chart's colours: the data grey, the model blue, the alert band orange, error red
LINE_COLOURS = {
    "value": "#9e9e9e",
    "model": "#1f4e9e",
    "model + MinC": "#f28e2b",
    "model − MinC": "#f28e2b",
    "model + MaxC": "#d62728",
    "model − MaxC": "#d62728",
}


def _band_chart(frame: pl.DataFrame, title: str) -> Any:
    shown = [k for k in LINE_COLOURS if k in set(frame["line"].to_list())]
    colour = alt.Color(
        "line:N", scale=alt.Scale(domain=shown, range=[LINE_COLOURS[k] for k in shown])
    )
    return (
        alt.Chart(frame.to_pandas(), title=title)
        .mark_line(strokeWidth=1)
        .encode(x="ts:T", y=alt.Y("y:Q", title=None, scale=alt.Scale(zero=False)), color=colour)
        .properties(height=280)
    )


def _levels_chart(levels: pl.DataFrame, axis: str) -> Any:
    frame = levels.select("ts", pl.col(f"{axis}_level").alias("level"))
    step = max(1, frame.height // MAX_POINTS)
    return (
        alt.Chart(frame.gather_every(step).to_pandas(), title=f"{axis}: level over time")
        .mark_tick(thickness=2)
        .encode(
            x="ts:T",
            y=alt.Y("level:N", sort=list(COLOURS)),
            color=alt.Color(
                "level:N", scale=alt.Scale(domain=list(COLOURS), range=list(COLOURS.values()))
            ),
        )
        .properties(height=140)
    )


def render() -> None:
    """Draw the Residuals page."""
    opened = open_page("Residuals", "residual", key="residuals_analysis")
    if opened is None:
        return
    config, analysis, run = opened
    thresholds: pl.DataFrame = run.values["thresholds"]
    axes = thresholds["axis"].to_list()
    axis = str(st.selectbox("Axis", axes, key="residuals_axis"))
    limits = thresholds.filter(pl.col("axis") == axis).row(0, named=True)
    policy = analysis.params.thresholds
    direction = policy.directions.get(axis, policy.direction)
    st.subheader(f"{axis}: data, model and bands")
    bands = band_frame(run.values["residuals"], axis, limits["MinC"], limits["MaxC"], direction)
    st.altair_chart(_band_chart(bands, f"{axis} ({direction})"), width="stretch")
    figure(run, f"{axis}_residual")
    st.subheader(f"{axis}: levels on held-out samples")
    levels: pl.DataFrame = run.tables["holdout_levels"]
    st.altair_chart(_levels_chart(levels, axis), width="stretch")
    runs = level_runs(levels, axis)
    counts = {lv: int(levels[f"{axis}_level"].eq(lv).sum()) for lv in COLOURS}
    c1, c2, c3 = st.columns(3)
    for where, (lv, n) in zip((c1, c2, c3), counts.items(), strict=True):
        where.metric(lv, f"{n:,}")
    longest = runs.filter(pl.col("level") != "ok").sort("len", descending=True).head(20)
    st.caption(f"{runs.height} runs of one level; the longest alert / error runs (samples):")
    st.dataframe(longest, hide_index=True)
    st.subheader("Thresholds and their policy")
    st.caption(
        f"direction {direction}; MinC at the {policy.minc_percentile:g}th and MaxC at the "
        f"{policy.maxc_percentile:g}th percentile of training residuals (top "
        f"{policy.trim_top_ratio:.0%} trimmed); alert after {policy.alert_seconds_default:g} s, "
        f"error after {policy.error_seconds_default:g} s beyond; hold-off {policy.hold_off} samples."
    )
    st.dataframe(thresholds, hide_index=True)
    st.subheader("Against the baselines")
    show_baselines(run)
    st.header("Recalibration history")
    render_deployment(config, analysis.name, key="residuals")
