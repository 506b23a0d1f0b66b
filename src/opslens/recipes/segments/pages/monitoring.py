"""The Monitoring page: a segments deployment over its batches — the noise ratio and each
input's out-of-range share against their thresholds, the error of each target against the
global model's, the alerts, the retraining and alias histories, and promote / roll back.

The batches are those ``opslens batch`` recorded (the life cycle's history); the
thresholds are the analysis's ``params.monitor.noise_threshold`` and
``params.monitor.drift.out_of_range``. The segments found by the recipe's own stages
(run in memory) are shown beside them.

Example:
    >>> error_rows([{"batch": 1, "rmse_series": 2.0, "baseline": {"rmse_series": 4.0}}])
    [{'batch': 1, 'target': 'series', 'segments': 2.0, 'global': 4.0, 'winner': 'segments'}]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl
import streamlit as st

from opslens.ui.analysis import choose_analysis, figure, memory_run, show_baselines
from opslens.ui.deployment import batch_records, render_deployment

__all__ = ["TITLE", "error_rows", "monitoring_frame", "render"]

#: the page's name in the app's navigation
TITLE = "Monitoring"


def monitoring_frame(
    records: Sequence[Mapping[str, Any]], noise_threshold: float, range_threshold: float
) -> pl.DataFrame:
    """One row per batch and watched share: ``noise_ratio`` and ``out_of_range.<input>``,
    its value, its threshold and whether it passed it."""
    rows = []
    for r in records:
        if "noise_ratio" in r:
            rows.append(("noise_ratio", r["batch"], float(r["noise_ratio"]), noise_threshold))
        for feature, share in (r.get("out_of_range") or {}).items():
            value = share.get("share", 0.0) if isinstance(share, Mapping) else share
            rows.append((f"out_of_range.{feature}", r["batch"], float(value), range_threshold))
    frame = pl.DataFrame(
        rows, schema=["share", "batch", "value", "threshold"], orient="row", strict=False
    )
    return frame.with_columns(alert=pl.col("value") > pl.col("threshold"))


def error_rows(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each labelled batch's RMSE per target against the global model's on the same rows."""
    out = []
    for r in records:
        baseline = r.get("baseline") or {}
        for key, value in r.items():
            if key.startswith("rmse_") and key in baseline:
                model, other = float(value), float(baseline[key])
                out.append(
                    {
                        "batch": r["batch"],
                        "target": key.removeprefix("rmse_"),
                        "segments": model,
                        "global": other,
                        "winner": "segments" if model <= other else "global",
                    }
                )
    return out


def render() -> None:
    """Draw the Monitoring page."""
    st.title("Monitoring")
    chosen = choose_analysis("segments", key="monitoring_analysis")
    if chosen is None:
        return
    config, analysis = chosen
    monitor = analysis.params.monitor
    records = batch_records(config, analysis.name)
    st.subheader("Shares against their thresholds")
    if records:
        watched = monitoring_frame(records, monitor.noise_threshold, monitor.drift.out_of_range)
        st.line_chart(watched.pivot(on="share", index="batch", values="value"), x="batch")
        st.caption(
            f"Thresholds: noise ratio {monitor.noise_threshold:g}, an input's out-of-range "
            f"share {monitor.drift.out_of_range:g}; "
            f"{int(watched['alert'].sum())} of {watched.height} shares above."
        )
        st.dataframe(watched, hide_index=True)
        st.subheader("Error per target against the global model")
        errors = error_rows(records)
        if errors:
            st.dataframe(pl.DataFrame(errors), hide_index=True)
        else:
            st.caption("No labelled batch yet: the error needs the targets of a batch.")
    else:
        st.caption(f"No batch yet: `opslens batch {analysis.name} --input batch.parquet`.")
    st.header("Deployment")
    render_deployment(config, analysis.name, key="monitoring")
    st.header("Segments of the training run")
    run = memory_run(config, analysis.name)
    if run is None:
        return
    show_baselines(run)
    figure(run, "segments")
    figure(run, "rmse_comparison")
