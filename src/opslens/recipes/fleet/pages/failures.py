"""The Known failures page: do the Fleet page's groups and rare-device ranking point at failures?

Built on the Fleet page's results (computed there, or here with the default
parameters). Failed device ids (and optionally failure times) are pasted or
uploaded as CSV, read with the fleet recipe's
:func:`~opslens.recipes.fleet.stages.failure_list` and checked against the
devices of the data (:func:`~opslens.explain.failures.validate_failed_ids`;
unknown ids are listed and ignored). The page then shows failure enrichment per
group (:func:`~opslens.explain.failures.group_enrichment`), precision/recall at
k and AUROC of the rare-device score with a plain verdict
(:func:`~opslens.explain.failures.ranking_quality`) and, with failure times, the
lead time before failure on rolling windows
(:func:`~opslens.explain.failures.lead_times`, scored as the fleet recipe does)
beside the chance baseline. The checked list is kept with ``set_failures``.

Example:
    >>> parse_failure_text("dev-1, 2024-01-05\\ndev-2\\n", "device_id").rows()
    [('dev-1', '2024-01-05'), ('dev-2', None)]
"""

from __future__ import annotations

import io
import re
import warnings
from datetime import datetime, timedelta
from typing import Any

import altair as alt
import polars as pl
import streamlit as st
from pydantic import ValidationError

from opslens.errors import OpslensError, OpslensWarning
from opslens.explain.failures import (
    RankingQuality,
    group_enrichment,
    lead_time_summary,
    lead_times,
    ranking_quality,
    validate_failed_ids,
)
from opslens.explain.text import format_duration
from opslens.plots import theme
from opslens.recipes.fleet.findings import fleet_findings
from opslens.recipes.fleet.pages.fleet import (
    FleetResult,
    compute_fleet,
    get_fleet,
    method_label,
    method_radio,
)
from opslens.recipes.fleet.params import (
    FailureParams,
    FleetParams,
    LeadTimeParams,
    fingerprint_config,
)
from opslens.recipes.fleet.rolling import rolling_window_scorer
from opslens.recipes.fleet.stages import failure_list
from opslens.ui.state import (
    HASH_FUNCS,
    FailureList,
    LoadedData,
    get_data,
    get_failures,
    set_failures,
    show_error,
)

__all__ = ["TITLE", "UNKNOWN", "duration_text", "parse_failure_text", "render"]

#: the page's name in the app's navigation
TITLE = "Known failures"

UNKNOWN = "opslens_failures_unknown"
_SEPARATOR = re.compile(r"[,;\t]")


def parse_failure_text(text: str, entity: str) -> pl.DataFrame:
    """Pasted lines ``id`` or ``id,<failure time>`` as a table (``entity`` and, if any, ``failure_time``).

    Blank lines, ``#`` comments and a header line naming ``entity`` are skipped;
    ``;`` and tabs separate as well as commas.

    Example:
        >>> parse_failure_text("device_id,failure_time\\n# a comment\\nd1", "device_id").rows()
        [('d1',)]
    """
    ids: list[str] = []
    times: list[str | None] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in _SEPARATOR.split(line, maxsplit=1)]
        if parts[0] == entity or not parts[0]:
            continue
        ids.append(parts[0])
        times.append(parts[1] if len(parts) > 1 and parts[1] else None)
    frame = pl.DataFrame({entity: ids}, schema={entity: pl.String})
    if any(t is not None for t in times):
        frame = frame.with_columns(pl.Series("failure_time", times, dtype=pl.String))
    return frame


def duration_text(d: timedelta) -> str:
    """A duration as the short text the duration fields read back (``7d``, ``12h``, ``30m``).

    Example:
        >>> duration_text(timedelta(days=7)), duration_text(timedelta(hours=36)), duration_text(timedelta(seconds=90))
        ('7d', '36h', '90s')
    """
    secs = int(d.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs % size == 0:
            return f"{secs // size}{unit}"
    return f"{secs}s"


# --- reading the failure list ---------------------------------------------------------------


def _read_upload(data: bytes, entity: str) -> pl.DataFrame:
    """An uploaded CSV; rows without a device id left out."""
    table = pl.read_csv(io.BytesIO(data), infer_schema_length=10_000)
    if table.width == 0:
        return table
    id_col = entity if entity in table.columns else table.columns[0]
    return table.filter(pl.col(id_col).is_not_null())


def _failures_from_input(
    text: str, upload: bytes | None, entity: str
) -> tuple[set[str], dict[str, datetime]]:
    """Ids and failure times from the text area and the uploaded CSV, via the recipe's reader."""
    ids: set[str] = set()
    times: dict[str, datetime] = {}
    tables = [parse_failure_text(text, entity)]
    if upload is not None:
        tables.append(_read_upload(upload, entity))
    for table in tables:
        if table.height == 0:
            continue
        got, when = failure_list(FailureParams(), table, entity)
        ids |= got
        times.update(when)
    return ids, times


def _check(result: FleetResult, text: str, upload: bytes | None) -> None:
    """Parse and validate the input; remember the known failures (set_failures)."""
    st.session_state.pop(UNKNOWN, None)
    try:
        ids, times = _failures_from_input(text, upload, result.entity)
    except OpslensError as e:
        show_error(e)
        return
    except Exception as e:  # an unreadable upload: one line, never a traceback
        show_error(e)
        return
    if not ids:
        st.error(
            "No failed device ids given: paste one id per line (optionally ',<failure time>') "
            "or upload a CSV with a device id column."
        )
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OpslensWarning)
        known, unknown = validate_failed_ids(result.entities, ids)
    if not known:
        _warn_unknown(unknown, len(ids))
        st.error(
            f"None of the {len(ids)} given ids is a device in the data (column "
            f"'{result.entity}'); check the list against the device ids."
        )
        return
    if unknown:
        st.session_state[UNKNOWN] = unknown
    set_failures(
        FailureList(ids=sorted(known), times={k: v for k, v in times.items() if k in known})
    )


def _warn_unknown(unknown: list[str], n_given: int) -> None:
    if unknown:
        shown = ", ".join(unknown[:20]) + (
            f" and {len(unknown) - 20} more" if len(unknown) > 20 else ""
        )
        st.warning(
            f"{len(unknown)} of {n_given} ids are not devices in the data and are ignored: {shown}"
        )


# --- lead time --------------------------------------------------------------------------------


@st.cache_data(show_spinner=False, hash_funcs=HASH_FUNCS)
def _lead_times(
    readings: pl.DataFrame,
    entity: str,
    time: str,
    metrics: tuple[str, ...],
    params_json: str,
    failure_times: tuple[tuple[str, datetime], ...],
    seed: int,
) -> pl.DataFrame:
    """Lead time per failed device on rolling windows, each ranked as the rare stage ranks histories."""
    p = FleetParams.model_validate_json(params_json)
    config = fingerprint_config(p)
    readings = readings.sort(entity, time)
    score_at = rolling_window_scorer(
        readings,
        entity=entity,
        time=time,
        metrics=list(metrics),
        params=p,
        config=config,
        random_state=seed,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OpslensWarning)
        return lead_times(
            readings,
            entity=entity,
            time=time,
            failure_times=dict(failure_times),
            score_at=score_at,
            window=p.lead_time.window,
            step=p.lead_time.step,
            top_k=p.lead_time.top_k,
            horizon=p.lead_time.horizon,
        )


def _lead_settings() -> LeadTimeParams | None:
    d = LeadTimeParams()
    with st.expander("Lead-time settings", expanded=False):
        c1, c2, c3, c4 = st.columns(4)
        window = c1.text_input(
            "Window",
            value=duration_text(d.window),
            key="lead_window",
            help="Each checkpoint scores the readings of this last stretch of time (7d, 12h, 30m).",
        )
        step = c2.text_input(
            "Step", value=duration_text(d.step), key="lead_step", help="Time between checkpoints."
        )
        horizon = c3.text_input(
            "Horizon",
            value=duration_text(d.horizon),
            key="lead_horizon",
            help="Checkpoints start this long before the earliest failure.",
        )
        top_k = c4.number_input("Top k", min_value=1, value=d.top_k, step=1, key="lead_top_k")
    try:
        return LeadTimeParams.model_validate(
            {"window": window, "step": step, "horizon": horizon, "top_k": int(top_k)}
        )
    except ValidationError as e:
        err = e.errors()[0]
        st.error(f"lead time {'.'.join(str(x) for x in err.get('loc', ()))}: {err['msg']}")
        return None


def _lead_section(
    result: FleetResult, times: dict[str, datetime], n_failed: int
) -> dict[str, Any] | None:
    st.subheader("Lead time before failure")
    if not times:
        st.caption(
            "Give failure times (`id,<failure time>` per line, or a failure_time column in the "
            "CSV) to see how long before failing each device entered the top of the ranking."
        )
        return None
    lead = _lead_settings()
    if lead is None:
        return None
    params = result.params.model_copy(update={"lead_time": lead})
    try:
        with st.spinner("Scoring rolling windows before each failure…"):
            frame = _lead_times(
                result.readings,
                result.entity,
                result.time,
                tuple(result.metrics),
                params.model_dump_json(),
                tuple(sorted(times.items())),
                result.random_state,
            )
    except OpslensError as e:
        show_error(e)
        return None
    except Exception as e:  # a last resort: one line, never a traceback
        show_error(e)
        return None
    summary = lead_time_summary(frame)
    n_devices = len(result.entities)
    k = lead.top_k
    healthy = n_devices - n_failed
    chance = k * healthy / n_devices if n_devices else float("nan")
    med = summary["median_lead_time"]
    fa = summary["mean_false_alarms"]
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("median lead time", format_duration(med) if med is not None else "none")
    c2.metric(
        "detected before failing",
        f"{summary['n_detected']} of {summary['n_failed']}",
        help=f"failed devices that entered the top {k} at a checkpoint before their failure",
    )
    c3.metric(
        f"healthy devices in the top {k}",
        f"{fa:.1f}" if fa is not None else "–",
        help="never-failing devices in the top k at each failed device's first alert (mean)",
    )
    c4.metric(
        "chance baseline",
        f"{chance:.1f}",
        help=f"what a random ranking of the same size would put in the top {k}: "
        f"k × healthy / devices = {k} × {healthy} / {n_devices}",
    )
    st.caption(
        f"Rolling windows of {format_duration(lead.window)} every {format_duration(lead.step)}, "
        f"from {format_duration(lead.horizon)} before the earliest failure; scored with "
        f"{', '.join(lead.methods)} on the Fleet page's fingerprint settings."
    )
    st.dataframe(
        frame.with_columns(
            pl.col("lead_time").map_elements(
                lambda d: format_duration(d), return_dtype=pl.String, skip_nulls=True
            )
        ),
        hide_index=True,
    )
    return summary


# --- the page ---------------------------------------------------------------------------------


def _enrichment_section(result: FleetResult, known: set[str]) -> pl.DataFrame:
    st.subheader("Enrichment per group")
    method = method_radio(result, key="failure_group_method")
    method = method or result.best_method
    enrichment = group_enrichment(result.groups.labels[method].to_numpy(), result.entities, known)
    st.caption(
        "Per group: failure rate, lift over the fleet's rate and a one-sided Fisher exact p "
        "(is the group richer in failures than chance?); enriched = p < 0.01 and lift > 1. "
        "Group -1 is DBSCAN's noise."
    )
    shown = enrichment.select(
        "group",
        "n_devices",
        "n_failed",
        pl.col("failure_rate").round(3),
        pl.col("lift").round(2),
        pl.col("p_value").alias("fisher_p"),
        "enriched",
    )
    st.dataframe(
        shown,
        hide_index=True,
        column_config={"fisher_p": st.column_config.NumberColumn("fisher_p", format="%.1e")},
    )
    fleet_rate = len(known) / len(result.entities)
    bars = (
        alt.Chart(
            shown.with_columns(
                pl.when(pl.col("group") < 0)
                .then(pl.lit("noise"))
                .otherwise(pl.lit("group ") + pl.col("group").cast(pl.String))
                .alias("name")
            )
        )
        .mark_bar()
        .encode(
            x=alt.X("name:N", title="group", sort=None),
            y=alt.Y("failure_rate:Q", title="failure rate", axis=alt.Axis(format="%")),
            color=alt.condition(
                alt.datum.enriched, alt.value(theme.ALERT), alt.value(theme.NEUTRAL)
            ),
            tooltip=[
                "name:N",
                "n_devices:Q",
                "n_failed:Q",
                "failure_rate:Q",
                "lift:Q",
                "fisher_p:Q",
            ],
        )
    )
    rule = (
        alt.Chart(pl.DataFrame({"fleet rate": [fleet_rate]}))  # type: ignore[arg-type]
        .mark_rule(color=theme.REFERENCE, strokeDash=[4, 4])
        .encode(y="fleet rate:Q", tooltip=[alt.Tooltip("fleet rate:Q", format=".1%")])
    )
    st.altair_chart(
        (bars + rule)
        .properties(
            title=f"Failure rate per group ({method_label(method)}; dashed: the fleet's rate)",
            height=300,
        )
        .interactive(),
        width="stretch",
    )
    return enrichment


def _ranking_section(result: FleetResult, known: set[str]) -> RankingQuality:
    st.subheader("Rare-device score against failures")
    scores = result.rare.scores.select(result.entity, "combined")
    n = scores.height
    quality = ranking_quality(scores, known, ks=range(1, n + 1))
    c1, c2, c3 = st.columns(3)
    c1.metric(
        "AUROC", f"{quality.auroc:.2f}", help="0.5 = a random ranking, 1 = every failure on top"
    )
    p10, r10 = quality.precision_at.get(10), quality.recall_at.get(10)
    c2.metric(
        "precision@10",
        f"{p10:.2f}" if p10 is not None else "n/a",
        help=f"share of failed devices among the 10 rarest; base rate {quality.base_rate:.2f}",
    )
    c3.metric(
        "recall@10",
        f"{r10:.2f}" if r10 is not None else "n/a",
        help="share of the failed devices found among the 10 rarest",
    )
    curve = pl.DataFrame(
        {
            "k": list(quality.precision_at),
            "precision": list(quality.precision_at.values()),
            "recall": list(quality.recall_at.values()),
        }
    ).unpivot(index="k", variable_name="measure", value_name="value")
    lines = (
        alt.Chart(curve)
        .mark_line(point=True)
        .encode(
            x=alt.X("k:Q", title="top k devices by rare-device score"),
            y=alt.Y("value:Q", title="", scale=alt.Scale(domain=[0, 1])),
            color=alt.Color(
                "measure:N",
                scale=alt.Scale(
                    domain=["precision", "recall"], range=[theme.PRIMARY, theme.SECONDARY]
                ),
            ),
            tooltip=["k:Q", "measure:N", alt.Tooltip("value:Q", format=".2f")],
        )
    )
    base = (
        alt.Chart(pl.DataFrame({"base rate": [quality.base_rate]}))  # type: ignore[arg-type]
        .mark_rule(color=theme.REFERENCE, strokeDash=[4, 4])
        .encode(y="base rate:Q", tooltip=[alt.Tooltip("base rate:Q", format=".2f")])
    )
    st.altair_chart(
        (lines + base)
        .properties(
            title="Precision and recall at k (dashed: precision of a random ranking)", height=300
        )
        .interactive(),
        width="stretch",
    )
    st.markdown(f"**Verdict:** {quality.verdict}.")
    st.caption(
        "Useful when AUROC ≥ 0.7 and precision@10 is at least twice the base rate; weak when "
        "only one holds (or AUROC ≥ 0.6)."
    )
    return quality


def _results(result: FleetResult, failures: FailureList) -> None:
    present = set(result.entities)
    known = {i for i in failures.ids if i in present}
    if not known:
        st.info("None of the remembered failed devices is in the current data; check a new list.")
        return
    times = {k: v for k, v in failures.times.items() if k in known}
    st.caption(
        f"{len(known)} known failed devices of {len(present)}"
        + (f", {len(times)} with a failure time." if times else ", no failure times.")
    )
    _enrichment_section(result, known)
    quality = _ranking_section(result, known)
    lead = _lead_section(result, times, len(known))
    best = result.best_method
    enrichment = group_enrichment(result.groups.labels[best].to_numpy(), result.entities, known)
    sentences = fleet_findings(
        n_devices=len(present),
        rare=result.rare,
        groups=result.groups,
        contrasts=result.contrasts.get(best, pl.DataFrame()),
        enrichment=enrichment,
        ranking=quality,
        lead=lead,
    )
    new = [s for s in sentences if s not in result.findings]
    if new:
        st.subheader("Findings")
        st.markdown("\n".join(f"- {s}" for s in new))


def _fleet_result(data: LoadedData) -> FleetResult | None:
    result = get_fleet(data)
    if result is not None:
        return result
    st.info(
        "No fleet results for this data yet: compute the Fleet page first (fingerprints, rare "
        "devices and behaviour groups), or compute them here with the default parameters."
    )
    if st.button("Compute with the default parameters", key="compute_fleet_here"):
        return compute_fleet(data, FleetParams())
    return None


def render() -> None:
    """The Known failures page."""
    st.title("Known failures")
    data = get_data()
    if data is None:
        st.info("No data loaded yet: load your fleet data on the Data page first.")
        return
    result = _fleet_result(data)
    if result is None:
        return
    st.text_area(
        "Failed device ids (one per line, optionally ',<failure time>')",
        key="failed_ids",
        placeholder="dev-0001,2024-01-12 17:00\ndev-0006",
        height=160,
    )
    upload = st.file_uploader(
        "…or upload a CSV (a device id column, optionally failure_time)",
        type=["csv"],
        key="failures_upload",
    )
    if st.button("Check failures", key="check_failures", type="primary"):
        _check(
            result,
            str(st.session_state.get("failed_ids") or ""),
            upload.getvalue() if upload is not None else None,
        )
    unknown = st.session_state.get(UNKNOWN)
    failures = get_failures()
    if unknown and failures is not None:
        _warn_unknown(list(unknown), len(unknown) + len(failures.ids))
    if failures is None:
        st.caption("Paste or upload the known failures and click **Check failures**.")
        return
    _results(result, failures)


if __name__ == "__main__":  # run as a script (streamlit run, AppTest): the module's own page
    from opslens.recipes.fleet.pages.failures import render as _render

    _render()
