"""The Series page: one device's metric profiled, decomposed and scanned for point anomalies.

The profile (counts, gaps, sampling interval, quantiles, moments and the ADF
stationarity reading) comes from :func:`opslens.features.profile.profile_series`,
the trend/seasonal/residual split from
:func:`opslens.features.decompose.decompose_series` and the flagged readings from
:func:`opslens.detect.point.point_anomalies` (z-score, robust z, IQR), each
cached on the series and its parameters. A step that cannot run on the series
(too short, no period) shows its error; the rest of the page still works.

Example:
    >>> fmt(2.34567), fmt(float("nan"))
    ('2.346', 'n/a')
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import altair as alt
import polars as pl
import streamlit as st

from opslens.detect.point import Method, point_anomalies
from opslens.features.decompose import Decomposition, decompose_series
from opslens.features.profile import SeriesProfile, profile_series
from opslens.ui.state import HASH_FUNCS, LoadedData, get_data, show_error

__all__ = ["METHODS", "TITLE", "fmt", "render"]

#: the page's name in the app's navigation
TITLE = "Series"

#: method -> (metric label, slider key, slider label, min, max, default)
METHODS: dict[Method, tuple[str, str, str, float, float, float]] = {
    "zscore": ("z-score", "thr_zscore", "z-score threshold (standard deviations)", 1.0, 10.0, 3.0),
    "robust_z": ("robust z", "thr_robust_z", "robust z threshold (MAD units)", 1.0, 10.0, 3.5),
    "iqr": ("IQR", "thr_iqr", "IQR fence multiplier k", 0.5, 5.0, 1.5),
}
COMPONENTS = ("observed", "trend", "seasonal", "resid")


def fmt(value: float) -> str:
    """A number with 4 significant digits, or 'n/a' when it is not finite."""
    return f"{value:.4g}" if math.isfinite(value) else "n/a"


# --- cached steps ----------------------------------------------------------------------------


@st.cache_data(show_spinner=False, hash_funcs=HASH_FUNCS, max_entries=16)
def _series(frame: pl.DataFrame, entity: str, time: str, device: str, metric: str) -> pl.DataFrame:
    return (
        frame.filter(pl.col(entity).cast(pl.String) == device)
        .select(time, metric)
        .sort(time, nulls_last=True)
    )


@st.cache_data(show_spinner="Profiling the series…", hash_funcs=HASH_FUNCS, max_entries=32)
def _profile(series: pl.DataFrame, time: str, metric: str) -> SeriesProfile:
    return profile_series(series, time=time, value=metric)


@st.cache_data(show_spinner="Decomposing the series…", hash_funcs=HASH_FUNCS, max_entries=32)
def _decompose(series: pl.DataFrame, time: str, metric: str, period: int | None) -> Decomposition:
    return decompose_series(series, time=time, value=metric, period=period)


@st.cache_data(show_spinner=False, hash_funcs=HASH_FUNCS, max_entries=64)
def _points(
    series: pl.DataFrame, time: str, metric: str, method: Method, threshold: float
) -> pl.DataFrame:
    return point_anomalies(series, time=time, value=metric, method=method, threshold=threshold)


# --- page ------------------------------------------------------------------------------------


def _keep_if(key: str, valid: Callable[[Any], bool]) -> None:
    """Drop a widget's remembered value that no longer fits its options (the default applies)."""
    if key in st.session_state and not valid(st.session_state[key]):
        del st.session_state[key]


def _time_type(frame: pl.DataFrame, column: str) -> str:
    dtype = frame.schema[column]
    return "T" if dtype.is_temporal() else "Q"


def _profile_section(series: pl.DataFrame, time: str, metric: str) -> None:
    st.subheader("Profile")
    try:
        p = _profile(series, time, metric)
    except Exception as e:
        show_error(e)
        return
    row1 = st.columns(4)
    row1[0].metric("Readings", f"{p.count:,}", help=f"{p.n_rows:,} rows, {p.missing:,} missing")
    row1[1].metric("Missing", f"{p.missing:,}", help=f"{p.missing_share:.1%} of the rows")
    row1[2].metric(
        "Gaps", f"{p.n_gaps:,}", help=f"intervals over 1.5 × the usual one; largest {p.largest_gap}"
    )
    row1[3].metric("Sampling interval", p.interval, help="the median step between readings")
    row2 = st.columns(4)
    row2[0].metric("Mean", fmt(p.mean))
    row2[1].metric("Std", fmt(p.std), help="sample standard deviation")
    row2[2].metric("Skewness", fmt(p.skewness), help="0 for a symmetric distribution")
    row2[3].metric("Kurtosis", fmt(p.kurtosis), help="excess kurtosis: 0 for a normal")
    quantiles = pl.DataFrame(
        {
            "statistic": ["min", "p5", "p25", "median", "p75", "p95", "max", "largest gap"],
            "value": [
                *(fmt(v) for v in (p.min, p.p5, p.p25, p.p50, p.p75, p.p95, p.max)),
                p.largest_gap,
            ],
        }
    )
    st.dataframe(quantiles, hide_index=True)
    detail = (
        f" (ADF statistic {p.adf_statistic:.2f}, p-value {p.adf_pvalue:.3f}, {p.adf_lags} lags)"
        if math.isfinite(p.adf_pvalue)
        else ""
    )
    st.markdown(f"**Stationarity (ADF test):** {p.adf_reading}{detail}.")


def _components_chart(decomposition: Decomposition) -> alt.VConcatChart:
    frame = decomposition.frame
    x_type = _time_type(frame, "time")
    charts = []
    for name in COMPONENTS:
        zoom = alt.selection_interval(bind="scales", encodings=["x"], name=f"zoom_{name}")
        chart = (
            alt.Chart(frame.select("time", name))
            .mark_line()
            .encode(
                x=alt.X(f"time:{x_type}", title=None),
                y=alt.Y(f"{name}:Q", title=name, scale=alt.Scale(zero=False)),
                tooltip=[alt.Tooltip(f"time:{x_type}", title="time"), alt.Tooltip(f"{name}:Q")],
            )
            .properties(height=110, width="container")
            .add_params(zoom)
        )
        charts.append(chart)
    return alt.vconcat(*charts)


def _decomposition_section(series: pl.DataFrame, time: str, metric: str) -> None:
    st.subheader("Decomposition (STL)")
    period = st.number_input(
        "Period in readings (0 = detect it from the autocorrelation)",
        min_value=0,
        value=0,
        step=1,
        key="series_period",
    )
    try:
        d = _decompose(series, time, metric, int(period) or None)
    except Exception as e:
        show_error(e)
        return
    st.markdown(
        f"Period: {d.period} readings ({d.period_source}); "
        f"trend strength {d.trend_strength:.2f}, seasonal strength {d.seasonal_strength:.2f}"
    )
    if d.n_inserted or d.n_interpolated:
        st.caption(
            f"{d.n_inserted} missing timestamps were added and {d.n_interpolated} values "
            "interpolated before the decomposition."
        )
    st.altair_chart(_components_chart(d), width="stretch")


def _anomaly_chart(series: pl.DataFrame, time: str, metric: str, flagged: pl.DataFrame) -> Any:
    x_type = _time_type(series, time)
    line_data = series.select(pl.col(time).alias("time"), pl.col(metric).alias("value"))
    tooltip = [alt.Tooltip(f"time:{x_type}", title="time"), alt.Tooltip("value:Q", title=metric)]
    line = (
        alt.Chart(line_data)
        .mark_line(color="#8a9bb0")
        .encode(
            x=alt.X(f"time:{x_type}", title=time),
            y=alt.Y("value:Q", title=metric, scale=alt.Scale(zero=False)),
            tooltip=tooltip,
        )
    )
    marks = (
        alt.Chart(flagged)
        .mark_point(filled=True, size=70)
        .encode(
            x=f"time:{x_type}",
            y="value:Q",
            color=alt.Color("method:N", title="flagged by"),
            shape=alt.Shape("method:N", title="flagged by"),
            tooltip=[*tooltip, alt.Tooltip("method:N"), alt.Tooltip("score:Q", format=".2f")],
        )
    )
    return (line + marks).properties(height=320).interactive()


def _anomaly_section(series: pl.DataFrame, time: str, metric: str) -> None:
    st.subheader("Point anomalies")
    sliders = st.columns(3)
    results: dict[str, pl.DataFrame] = {}
    for col, (method, (label, key, text, lo, hi, default)) in zip(
        sliders, METHODS.items(), strict=True
    ):
        threshold = col.slider(text, min_value=lo, max_value=hi, value=default, step=0.1, key=key)
        try:
            results[label] = _points(series, time, metric, method, float(threshold))
        except Exception as e:
            with col:
                show_error(e)
    if not results:
        return
    counts = st.columns(3)
    for col, (label, *_rest) in zip(counts, METHODS.values(), strict=True):
        if label in results:
            col.metric(label, int(results[label]["is_anomaly"].sum()))
    flagged = pl.concat(
        [
            r.filter(pl.col("is_anomaly"))
            .select("time", "value", "score")
            .with_columns(
                pl.lit(label).alias("method"),
                pl.when(pl.col("score").is_finite()).then(pl.col("score")).alias("score"),
            )
            for label, r in results.items()
        ]
    )
    st.altair_chart(_anomaly_chart(series, time, metric, flagged), width="stretch")
    if flagged.height == 0:
        st.caption("No reading is flagged at these thresholds.")
        return
    table = (
        flagged.group_by("time", "value", maintain_order=True)
        .agg(pl.col("method").unique(maintain_order=True).str.join(", ").alias("flagged by"))
        .sort("time")
    )
    st.caption(f"{table.height} flagged reading(s):")
    st.dataframe(table.rename({"time": time, "value": metric}), hide_index=True)


def _render_series(data: LoadedData) -> None:
    devices = data.devices()
    if not devices or not data.metrics:
        st.warning("The loaded data has no device or no metric: load another table.")
        return
    _keep_if("series_device", lambda v: v in devices)
    _keep_if("series_metric", lambda v: v in data.metrics)
    c1, c2 = st.columns(2)
    device = str(c1.selectbox("Device", devices, key="series_device"))
    metric = str(c2.selectbox("Metric", data.metrics, key="series_metric"))
    try:
        series = _series(data.frame, data.entity, data.time, device, metric)
    except Exception as e:
        show_error(e)
        return
    if series.height == 0:
        st.warning(f"Device {device} has no readings.")
        return
    _profile_section(series, data.time, metric)
    _decomposition_section(series, data.time, metric)
    _anomaly_section(series, data.time, metric)


def render() -> None:
    """Draw the Series page."""
    st.title("Series")
    data = get_data()
    if data is None:
        st.info("No data is loaded yet: load a table on the Data page first.")
        return
    st.caption(f"Data: {data.label}")
    _render_series(data)


if __name__ == "__main__":  # run as a script (streamlit run, AppTest): the module's own page
    from opslens.recipes.fleet.pages.series import render as _render

    _render()
