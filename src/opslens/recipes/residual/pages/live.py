"""The Live page: a residual stream watched as it arrives — the newest samples of a file
that grows or of an MQTT topic, scored by the analysis's model, or the newest samples the
opslens service checked (``opslens serve``), every few seconds.

A file's or a topic's samples are scored by the model the recipe's own stages fit in memory
(:func:`opslens.ui.analysis.memory_run`), each refresh from a fresh state
(``ResidualPredictor.predict_frame``). The service's samples carry the service's own answers
(``GET /recent/{analysis}``: its champion version, run lengths kept per stream), shown as
they are. Either way the page shows each axis's level now, the counts of ok / alert / error
and the residuals.

Example:
    >>> answers = pl.DataFrame({"a_level": ["ok", "alert"], "b_level": ["ok", "error"]})
    >>> level_counts(answers, ["a", "b"]).rows()
    [('a', 1, 1, 0, 'alert'), ('b', 1, 0, 1, 'error')]
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import polars as pl
import streamlit as st

from opslens.ui.analysis import open_page
from opslens.ui.live import mqtt_buffer, read_feed_file, service_rows
from opslens.ui.state import project_root, show_error

__all__ = ["FEEDS", "TITLE", "level_counts", "render"]

#: the page's name in the app's navigation
TITLE = "Live"
FEEDS = ("File", "MQTT topic", "opslens service")


def level_counts(answers: pl.DataFrame, axes: Sequence[str]) -> pl.DataFrame:
    """Per axis: how many of the scored samples are ok / alert / error, and the level now."""
    rows = []
    for axis in axes:
        col = answers[f"{axis}_level"]
        rows.append(
            (
                axis,
                int(col.eq("ok").sum()),
                int(col.eq("alert").sum()),
                int(col.eq("error").sum()),
                str(col[-1]) if col.len() else "-",
            )
        )
    return pl.DataFrame(
        rows, schema=["axis", "ok", "alert", "error", "now"], orient="row", strict=False
    )


def _feed(kind: str, n: int) -> pl.DataFrame | None:
    if kind == FEEDS[0]:
        path = st.session_state.get("live_path", "")
        return read_feed_file(project_root() / path, n) if path else None
    host = st.session_state.get("live_host", "127.0.0.1")
    port = st.session_state.get("live_port", 1883)
    topic = st.session_state.get("live_topic", "")
    return mqtt_buffer(host, int(port), topic).frame(n) if topic else None


def _served(analysis: str, n: int) -> pl.DataFrame | None:
    url = str(st.session_state.get("live_url", "")).strip()
    if not url:
        return None
    stream = str(st.session_state.get("live_stream", "")).strip() or None
    token = str(st.session_state.get("live_token", "")) or None
    return service_rows(url, analysis, n, stream=stream, token=token)


def _show(predictor: Any, analysis: str, kind: str, n: int) -> None:
    try:
        if kind == FEEDS[2]:
            answers = _served(analysis, n)
            if answers is None:
                st.info("Give the feed above to start watching.")
                return
            if answers.height == 0:
                st.info("No sample yet: the service has answered none for this analysis.")
                return
            versions = answers["version"].unique(maintain_order=True).to_list()
            st.caption(
                f"{answers.height:,} newest samples as the service checked them "
                f"(version {', '.join(str(v) for v in versions)})."
            )
        else:
            rows = _feed(kind, n)
            if rows is None:
                st.info("Give the feed above to start watching.")
                return
            if rows.height == 0:
                st.info("No sample yet: waiting for the stream.")
                return
            answers = predictor.predict_frame(rows)
            st.caption(f"{answers.height:,} newest samples scored.")
        st.dataframe(level_counts(answers, predictor.axes), hide_index=True)
        residuals = answers.select(pl.col(f"{a}_residual") for a in predictor.axes)
    except Exception as e:
        show_error(e)
        return
    st.line_chart(residuals)


def render() -> None:
    """Draw the Live page."""
    opened = open_page("Live", "residual", key="live_analysis")
    if opened is None:
        return
    analysis, predictor = opened[1].name, opened[2].model
    kind = str(st.radio("Feed", FEEDS, key="live_feed", horizontal=True))
    if kind == FEEDS[0]:
        st.text_input("File (CSV, Parquet or JSON lines; relative to the project)", key="live_path")
    elif kind == FEEDS[1]:
        c1, c2, c3 = st.columns([2, 1, 3])
        c1.text_input("Host", value="127.0.0.1", key="live_host")
        c2.number_input("Port", min_value=1, max_value=65535, value=1883, key="live_port")
        c3.text_input("Topic", key="live_topic")
    else:
        c1, c2, c3 = st.columns([3, 2, 2])
        c1.text_input(
            "Service URL",
            value="http://127.0.0.1:8000",
            key="live_url",
            help=f"where `opslens serve` listens; the page shows what it answered for {analysis}",
        )
        c2.text_input("Stream (empty: every stream)", key="live_stream")
        c3.text_input("Token (if the service has one)", type="password", key="live_token")
    c4, c5 = st.columns(2)
    n = int(c4.number_input("Newest samples", 10, 100_000, 500, key="live_rows"))
    every = int(c5.number_input("Refresh every (s)", 1, 60, 3, key="live_every"))

    @st.fragment(run_every=timedelta(seconds=every))
    def watch() -> None:
        _show(predictor, analysis, kind, n)

    watch()
