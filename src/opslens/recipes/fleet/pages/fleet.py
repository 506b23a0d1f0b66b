"""The Fleet page: device fingerprints, rare devices and behaviour groups, explained.

The computation is the fleet recipe's own stages (prepare, fingerprint, rare,
groups, explain) run in memory by :func:`opslens.runner.run_in_memory`, seeded
from the configuration (``random_state`` of the project's fleet analysis) and
cached on the data, parameters and seed (``st.cache_data``). The result is kept in
the session (``st.session_state["opslens_fleet"]``) so that switching pages and
back shows it again without recomputing, and the Known failures page builds on it.

Example:
    >>> deviation_sentences("temperature__std +4.2σ, current__acf_1 -3.0σ", ["temperature", "current"])
    ["temperature std is 4.2σ above the fleet's median", "current acf_1 is 3.0σ below the fleet's median"]
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import altair as alt
import matplotlib.pyplot as plt
import polars as pl
import streamlit as st
from pydantic import ValidationError

from opslens.cluster.groups import GROUP_METHODS, BehaviourGroups
from opslens.config import AnalysisConfig, ProjectConfig
from opslens.detect.population import METHODS as RARE_METHODS
from opslens.detect.population import RareDevices
from opslens.errors import OpslensWarning
from opslens.explain.contrasts import top_group_features
from opslens.plots import theme
from opslens.recipes import project_from_mapping
from opslens.recipes.fleet.events import event_list
from opslens.recipes.fleet.facts import FleetFacts
from opslens.recipes.fleet.params import EventParams, FleetParams, analysed_features
from opslens.runner import run_in_memory
from opslens.ui.state import HASH_FUNCS, LoadedData, frame_hash, get_data, project, show_error

__all__ = [
    "FLEET",
    "TITLE",
    "FleetResult",
    "compute_fleet",
    "deviation_sentences",
    "fleet_seed",
    "get_fleet",
    "method_label",
    "method_radio",
    "read_events",
    "render",
]

#: the page's name in the app's navigation
TITLE = "Fleet"

FLEET = "opslens_fleet"
_METHOD_NAMES = {
    "isolation_forest": "Isolation Forest",
    "one_class_svm": "One-Class SVM",
    "ecod": "ECOD",
    "autoencoder": "Autoencoder",
    "kmeans": "K-Means",
    "dbscan": "DBSCAN",
    "agglomerative": "Agglomerative (Ward)",
}


def method_label(method: str, best: str | None = None) -> str:
    """A method's display name (``(best silhouette)`` added for the best grouping)."""
    return _METHOD_NAMES.get(method, method) + (" (best silhouette)" if method == best else "")


@dataclass(frozen=True)
class FleetResult:
    """Everything the Fleet page computed for one data set and one set of parameters."""

    key: str
    params: FleetParams
    entity: str
    time: str
    metrics: list[str]
    readings: pl.DataFrame
    n_features: int
    features: pl.DataFrame
    rare: RareDevices
    groups: BehaviourGroups
    contrasts: dict[str, pl.DataFrame]
    findings: list[str]
    notes: list[str] = field(default_factory=list)
    #: the seed the stages ran with (``random_state`` from the configuration)
    random_state: int = 0
    #: the health stage's sensor faults and failure-risk ranking
    sensor_faults: pl.DataFrame = field(default_factory=pl.DataFrame)
    risk: pl.DataFrame = field(default_factory=pl.DataFrame)
    #: maintenance and error events (device, ``time``, ``kind``) drawn on the device timeline
    events: pl.DataFrame = field(default_factory=pl.DataFrame)

    @property
    def methods(self) -> list[str]:
        """The grouping methods computed, in the order asked."""
        return [str(m) for m in self.groups.summary["method"].to_list()]

    @property
    def best_method(self) -> str:
        """The method with the best silhouette (the first one asked if none has two groups)."""
        return self.groups.best_method or self.methods[0]

    @property
    def entities(self) -> list[str]:
        """The device ids, in the order of the group labels."""
        return [str(e) for e in self.groups.labels[self.entity].to_list()]


def deviation_sentences(text: str, metrics: list[str]) -> list[str]:
    """The ``deviating_features`` text of a rare-device ranking, one plain sentence per feature.

    Example:
        >>> deviation_sentences("vib__max +9.0σ", ["vib"])
        ["vib max is 9.0σ above the fleet's median"]
    """
    out: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, _, z_text = part.rpartition(" ")
        try:
            z = float(z_text.rstrip("σ"))
        except ValueError:
            out.append(part)
            continue
        metric = next((m for m in metrics if name.startswith(f"{m}__")), None)
        words = f"{metric} {name[len(metric) + 2 :]}" if metric else name
        out.append(f"{words} is {abs(z):.1f}σ {'above' if z >= 0 else 'below'} the fleet's median")
    return out


def _metric_of(text: str, metrics: list[str]) -> str:
    """The metric of the first (most deviating) feature of a ``deviating_features`` text."""
    first = text.split(",")[0].strip()
    return next((m for m in metrics if first.startswith(f"{m}__")), metrics[0])


# --- the computation: the recipe's own stages, in memory -----------------------------------

#: the stages of the fleet recipe the page runs (failures: the Known failures page;
#: inspect: per-device figures the page draws itself)
STAGES = ("prepare", "fingerprint", "rare", "health", "groups", "explain")


@dataclass(frozen=True)
class _Computed:
    """What the page keeps of one in-memory run (picklable, so it can be cached)."""

    readings: pl.DataFrame
    fingerprints: pl.DataFrame
    rare: RareDevices
    groups: BehaviourGroups
    contrasts: pl.DataFrame
    findings: list[str]
    notes: list[str]
    sensor_faults: pl.DataFrame = field(default_factory=pl.DataFrame)
    risk: pl.DataFrame = field(default_factory=pl.DataFrame)


def fleet_seed() -> int:
    """The seed of the page's runs: ``random_state`` of the project's first fleet analysis
    (``opslens ui -p project.yaml``), else the configuration's default."""
    config = project()
    seeds = [a.random_state for a in (config.analyses if config else []) if a.recipe == "fleet"]
    default: int = AnalysisConfig.model_fields["random_state"].default
    return seeds[0] if seeds else default


def _project(
    entity: str, time: str, metrics: tuple[str, ...], params_json: str, seed: int
) -> ProjectConfig:
    params = FleetParams.model_validate_json(params_json)
    return project_from_mapping(
        {
            "tracking": {"enabled": False},
            "analyses": [
                {
                    "name": "fleet",
                    "recipe": "fleet",
                    "source": {"kind": "memory", "name": "fleet"},
                    "columns": {"entity": entity, "time": time, "metrics": list(metrics)},
                    "params": params.model_dump(mode="json", exclude_defaults=True),
                    "random_state": seed,
                }
            ],
        },
        where="the Fleet page",
    )


@st.cache_data(show_spinner=False, hash_funcs=HASH_FUNCS, max_entries=8)
def _compute(
    frame: pl.DataFrame,
    entity: str,
    time: str,
    metrics: tuple[str, ...],
    params_json: str,
    seed: int,
    events: pl.DataFrame | None = None,
) -> _Computed:
    """The fleet recipe's stages on ``frame`` (cached on the data, parameters, seed and
    events: a repair resets the device's own baseline, as in a run)."""
    config = _project(entity, time, metrics, params_json, seed)
    given = {"event_table": events} if events is not None else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OpslensWarning)  # the run collects them as notes
        run = run_in_memory(config, "fleet", frames={"fleet": frame}, stages=STAGES, inputs=given)
    for figure in run.plots.values():  # the page draws its own charts
        plt.close(figure)
    facts = run.read_facts()
    explained = facts.explain if isinstance(facts, FleetFacts) else None
    return _Computed(
        readings=run.values["readings"],
        fingerprints=run.values["fingerprints"],
        rare=run.values["rare_result"],
        groups=run.values["group_result"],
        contrasts=run.values["contrasts"],
        findings=list(explained.findings) if explained is not None else [],
        notes=list(dict.fromkeys(run.warnings)),
        sensor_faults=run.tables.get("sensor_faults", pl.DataFrame()),
        risk=run.tables.get("risk", pl.DataFrame()),
    )


def _data_key(data: LoadedData) -> str:
    return "|".join([frame_hash(data.frame), data.entity, data.time, *data.metrics])


def get_fleet(data: LoadedData) -> FleetResult | None:
    """The session's Fleet results, if they were computed on ``data``."""
    value = st.session_state.get(FLEET)
    if isinstance(value, FleetResult) and value.key == _data_key(data):
        return value
    return None


def _by_method(contrasts: pl.DataFrame) -> dict[str, pl.DataFrame]:
    if contrasts.is_empty() or "method" not in contrasts.columns:
        return {}
    return {
        str(m): contrasts.filter(pl.col("method") == m).drop("method")
        for m in contrasts["method"].unique(maintain_order=True).to_list()
    }


def compute_fleet(
    data: LoadedData,
    params: FleetParams,
    *,
    random_state: int | None = None,
    events: pl.DataFrame | None = None,
) -> FleetResult | None:
    """The fleet recipe's own stages (prepare → fingerprint → rare → groups → explain) run in
    memory (:func:`opslens.runner.run_in_memory`) on the session's data, seeded from the config.

    ``events`` (a table of device, ``time`` and ``kind``, as :func:`read_events` gives it)
    reach the run as its maintenance events and are drawn on the device timeline. The run
    is cached on the data, parameters, seed and events; the result is stored in the
    session. Errors are shown in the page and give None.
    """
    entity, time, metrics = data.entity, data.time, tuple(data.metrics)
    seed = fleet_seed() if random_state is None else random_state
    with st.status("Computing fingerprints and groups…", expanded=True) as status:
        try:
            done = _compute(
                data.frame, entity, time, metrics, params.model_dump_json(), seed, events
            )
        except Exception as e:  # an OpslensError: its problem and fix; anything else, briefly
            status.update(label="Could not compute the fleet analysis", state="error")
            show_error(e)
            return None
        features = analysed_features(done.fingerprints, params)
        n_rare = int(done.rare.scores["is_rare"].sum())
        st.write(
            f"Fingerprints: {done.fingerprints.height} devices, {features.width - 1} features "
            f"({len(metrics)} metrics)."
        )
        st.write(
            f"Rare devices: {n_rare} above the threshold, from "
            f"{', '.join(_METHOD_NAMES[m] for m in params.rare.methods)}."
        )
        st.write(
            f"Behaviour groups: {', '.join(_METHOD_NAMES[m] for m in params.groups.methods)}; "
            f"best: {_METHOD_NAMES.get(done.groups.best_method or '', 'none')} "
            f"(random_state {seed})."
        )
        status.update(label="Fingerprints and groups computed", state="complete", expanded=False)
    contrasts = _by_method(done.contrasts)
    notes = list(done.notes)
    for method in done.groups.summary["method"].to_list():
        if str(method) not in contrasts:
            notes.append(f"{method_label(str(method))}: fewer than two groups, nothing to contrast")
    result = FleetResult(
        key=_data_key(data),
        params=params,
        entity=entity,
        time=time,
        metrics=list(metrics),
        readings=done.readings,
        n_features=features.width - 1,
        features=features,
        rare=done.rare,
        groups=done.groups,
        contrasts=contrasts,
        findings=done.findings,
        notes=notes,
        random_state=seed,
        sensor_faults=done.sensor_faults,
        risk=done.risk,
        events=events if events is not None else pl.DataFrame(),
    )
    st.session_state[FLEET] = result
    return result


def read_events(data: bytes, name: str, entity: str) -> pl.DataFrame:
    """An uploaded event list (CSV or Parquet: the device column, ``time`` and ``kind``) as the
    recipe reads it: (device, ``time``, ``kind``); a missing column is a one-line error.

    Example:
        >>> text = b"device_id,time,kind\\nd1,2024-03-02,repair\\n"
        >>> read_events(text, "events.csv", "device_id").rows()
        [('d1', datetime.datetime(2024, 3, 2, 0, 0), 'repair')]
    """
    table = (
        pl.read_parquet(io.BytesIO(data))
        if name.lower().endswith(".parquet")
        else pl.read_csv(io.BytesIO(data), infer_schema_length=10_000)
    )
    return event_list(EventParams(path=Path(name)), table, entity)


# --- the page -------------------------------------------------------------------------------


def _validation_message(e: ValidationError) -> str:
    err = e.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ()))
    return f"{where}: {err['msg']}" if where else str(err["msg"])


def _parameters() -> FleetParams | None:
    """The parameter widgets; the FleetParams they give, or None (with the reason shown)."""
    d = FleetParams()
    with st.expander("Parameters", expanded=False):
        c1, c2, c3 = st.columns(3)
        window = c1.number_input(
            "Fingerprint window (points)",
            min_value=2,
            value=d.fingerprint.window if isinstance(d.fingerprint.window, int) else 24,
            step=1,
            key="fp_window",
            help="Window statistics (win_*) and level changes are computed over windows of this many readings.",
        )
        top_n = c2.number_input(
            "Top N rare devices", min_value=1, value=d.rare.top_n, step=1, key="top_n"
        )
        contamination = c3.slider(
            "Contamination (expected share of rare devices)",
            min_value=0.01,
            max_value=0.49,
            value=d.rare.contamination,
            step=0.01,
            key="contamination",
        )
        rare_methods = st.multiselect(
            "Rare-device detectors",
            options=list(RARE_METHODS),
            default=list(d.rare.methods),
            format_func=lambda m: _METHOD_NAMES.get(m, m),
            key="rare_methods",
        )
        group_methods = st.multiselect(
            "Grouping methods",
            options=list(GROUP_METHODS),
            default=list(d.groups.methods),
            format_func=lambda m: _METHOD_NAMES.get(m, m),
            key="group_methods",
        )
        k1, k2 = st.columns(2)
        k_min = k1.number_input("K from", min_value=2, value=d.groups.k_min, step=1, key="k_min")
        k_max = k2.number_input("K up to", min_value=2, value=d.groups.k_max, step=1, key="k_max")
    if not rare_methods:
        st.error("Choose at least one rare-device detector.")
        return None
    if not group_methods:
        st.error("Choose at least one grouping method.")
        return None
    try:
        return FleetParams.model_validate(
            {
                "fingerprint": {"window": int(window)},
                "rare": {
                    "methods": tuple(rare_methods),
                    "contamination": float(contamination),
                    "top_n": int(top_n),
                },
                "groups": {
                    "methods": tuple(group_methods),
                    "k_min": int(k_min),
                    "k_max": int(k_max),
                },
            }
        )
    except ValidationError as e:
        st.error(_validation_message(e))
        return None


def _rare_table(result: FleetResult) -> pl.DataFrame:
    return result.rare.top.select(
        pl.col(result.entity),
        pl.col("combined").round(3).alias("combined score"),
        "rank",
        pl.col("is_rare").alias("rare"),
        pl.col("deviating_features").alias("deviating features"),
    )


def _drill_down(result: FleetResult) -> None:
    top = result.rare.top
    risky = (
        [str(d) for d in result.risk.head(10)[result.entity].to_list()]
        if not result.risk.is_empty()
        else []
    )
    devices = list(dict.fromkeys([str(d) for d in top[result.entity].to_list()] + risky))
    if not devices:
        return
    device = st.selectbox(
        "Look at a device (the rarest, then the most at risk)", devices, key="drill_device"
    )
    if device is None:
        return
    rows = top.filter(pl.col(result.entity) == device)
    left, right = st.columns([2, 1])
    if rows.height:
        row = rows.row(0, named=True)
        text = str(row.get("deviating_features") or "")
        metric = _metric_of(text, result.metrics)
        with right:
            st.markdown(
                f"**{device}** — rank {row['rank']}, combined score {row['combined']:.2f}"
                f"{' (rare)' if row['is_rare'] else ''}. Its most deviating features:"
            )
            st.markdown("\n".join(f"- {s}" for s in deviation_sentences(text, result.metrics)))
    else:
        risk = result.risk.filter(pl.col(result.entity) == device).row(0, named=True)
        metric = str(risk.get("top_metric") or result.metrics[0])
        with right:
            st.markdown(f"**{device}** — risk rank {risk['rank']}: {risk['explanation']}.")
    mine = _device_events(result, device)
    if mine.height:
        with right:
            st.markdown(
                "Events (dotted lines): "
                + ", ".join(f"{k} {t:%Y-%m-%d}" for t, k in mine.select("time", "kind").rows())
            )
    series = (
        result.readings.filter(pl.col(result.entity) == device)
        .select(pl.col(result.time).alias("time"), pl.col(metric).alias("value"))
        .sort("time")
    )
    median = result.readings[metric].median()
    line = (
        alt.Chart(series)
        .mark_line(color=theme.PRIMARY)
        .encode(
            x=alt.X("time:T", title=result.time),
            y=alt.Y("value:Q", title=metric, scale=alt.Scale(zero=False)),
            tooltip=[alt.Tooltip("time:T"), alt.Tooltip("value:Q", format=".3f", title=metric)],
        )
    )
    chart: alt.LayerChart | alt.Chart = line
    if median is not None:
        rule = (
            alt.Chart(pl.DataFrame({"median": [float(median)]}))  # type: ignore[arg-type]
            .mark_rule(color=theme.REFERENCE, strokeDash=[4, 4])
            .encode(y="median:Q", tooltip=[alt.Tooltip("median:Q", title="fleet median")])
        )
        chart = line + rule
    title = f"{device}: {metric} (dashed: the fleet's median)"
    if mine.height:
        marks = (
            alt.Chart(mine.select("time", "kind"))
            .mark_rule(strokeDash=[2, 2], strokeWidth=2)
            .encode(
                x="time:T",
                color=alt.Color("kind:N", title="event"),
                tooltip=[alt.Tooltip("kind:N", title="event"), alt.Tooltip("time:T")],
            )
        )
        chart = chart + marks
        title = f"{device}: {metric} (dashed: the fleet's median; dotted: its events)"
    with left:
        st.altair_chart(chart.properties(title=title).interactive(), width="stretch")


def _device_events(result: FleetResult, device: str) -> pl.DataFrame:
    """The device's events (``time``, ``kind``), oldest first; empty without events."""
    if result.events.is_empty():
        return pl.DataFrame(schema={"time": pl.Datetime("us"), "kind": pl.String})
    return (
        result.events.filter(pl.col(result.entity).cast(pl.String) == device)
        .select("time", "kind")
        .sort("time")
    )


def _group_map(result: FleetResult, method: str) -> None:
    e = result.entity
    frame = (
        result.groups.embedding.join(result.groups.labels.select(e, method), on=e, how="left")
        .join(result.rare.scores.select(e, "combined", "rank", "is_rare"), on=e, how="left")
        .select(
            pl.col(e).alias("device"),
            "pc1",
            "pc2",
            pl.when(pl.col(method) < 0)
            .then(pl.lit("noise"))
            .otherwise(pl.lit("group ") + pl.col(method).cast(pl.String))
            .alias("group"),
            pl.when(pl.col("is_rare").fill_null(False))
            .then(pl.lit("rare device"))
            .otherwise(pl.lit("typical"))
            .alias("kind"),
            pl.col("combined").round(3).alias("combined score"),
            "rank",
        )
    )
    names = sorted(frame["group"].unique().to_list(), key=lambda g: (g == "noise", len(g), g))
    colors = [
        theme.NEUTRAL if g == "noise" else theme.CATEGORICAL[i % len(theme.CATEGORICAL)]
        for i, g in enumerate(names)
    ]
    ev = result.groups.explained_variance
    chart = (
        alt.Chart(frame)
        .mark_point(filled=True, size=70, opacity=0.85)
        .encode(
            x=alt.X("pc1:Q", title=f"PC1 ({100 * ev[0]:.0f}% of variance)"),
            y=alt.Y("pc2:Q", title=f"PC2 ({100 * ev[1]:.0f}% of variance)"),
            color=alt.Color("group:N", scale=alt.Scale(domain=names, range=colors)),
            shape=alt.Shape(
                "kind:N",
                scale=alt.Scale(domain=["typical", "rare device"], range=["circle", "diamond"]),
                title="",
            ),
            size=alt.condition(alt.datum.kind == "rare device", alt.value(150), alt.value(60)),
            tooltip=["device:N", "group:N", "kind:N", "combined score:Q", "rank:Q"],
        )
        .properties(
            title=f"Devices by behaviour group ({_METHOD_NAMES.get(method, method)})", height=420
        )
        .interactive()
    )
    st.altair_chart(chart, width="stretch")


def method_radio(result: FleetResult, *, key: str) -> str | None:
    """A radio over the grouping methods computed, the best one preselected."""
    methods = result.methods
    chosen = st.radio(
        "Grouping method",
        methods,
        index=methods.index(result.best_method),
        format_func=lambda m: method_label(str(m), result.groups.best_method),
        horizontal=True,
        key=key,
    )
    return None if chosen is None else str(chosen)


def _groups_section(result: FleetResult) -> None:
    st.subheader("Behaviour groups")
    method = method_radio(result, key="group_method")
    if method is None:
        return
    _group_map(result, method)
    g = result.groups
    st.markdown("**Group summary** (silhouette per method: higher = better separated)")
    st.dataframe(
        g.summary.with_columns(
            pl.col("silhouette").round(3), (pl.col("method") == g.best_method).alias("best")
        ),
        hide_index=True,
    )
    st.caption(
        f"K-Means and Ward: K={g.k_choice.k} ({g.k_choice.reason}). "
        f"DBSCAN: eps={g.eps:.3g} from the k-distance knee, min_samples={g.min_samples}; "
        "noise = devices that fit no group."
    )
    contrasts = result.contrasts.get(method)
    st.markdown(f"**What sets each group apart** ({_METHOD_NAMES.get(method, method)})")
    if contrasts is None:
        st.info("This method finds fewer than two groups, so there is nothing to contrast.")
        return
    sizes = dict(contrasts.select("group", "n_group").unique().iter_rows())
    tops = top_group_features(contrasts, 3)
    lines = []
    for grp in sorted(sizes):
        feats = tops.get(int(grp), [])
        what = (
            ", ".join(
                f"{'higher' if smd >= 0 else 'lower'} {name} (SMD {smd:+.1f})"
                for name, smd, _ in feats
            )
            if feats
            else "no feature that differs significantly from the rest"
        )
        lines.append(f"- Group {grp} ({sizes[grp]} devices): {what}")
    st.markdown("\n".join(lines))
    st.dataframe(
        contrasts.select(
            "group",
            "feature",
            "n_group",
            pl.col("mean_group").round(4),
            pl.col("mean_rest").round(4),
            pl.col("smd").round(2),
            "q_value",
            "direction",
            "significant",
        ),
        hide_index=True,
    )


def _health_section(result: FleetResult) -> None:
    """Sensor faults apart, then the devices most at risk with their explanations."""
    st.subheader("Sensor faults")
    if result.sensor_faults.is_empty():
        st.caption("No sensor faults found (flatlines, stuck values, caps, jumps, dropouts).")
    else:
        st.caption(
            "Kept out of the failure-risk ranking from each fault's first day on: these say "
            "more about the sensor than about the machine."
        )
        st.dataframe(result.sensor_faults, hide_index=True)
    if not result.risk.is_empty():
        st.subheader("Devices most at risk")
        st.caption(
            "Risk: rarity, change against the device's own first weeks and against the "
            "fleet's same-day median, each as a rank (1 = the most extreme)."
        )
        st.dataframe(
            result.risk.head(20).select("rank", result.entity, "risk", "explanation"),
            hide_index=True,
        )


def _show(result: FleetResult) -> None:
    c1, c2, c3 = st.columns(3)
    c1.metric("devices", result.groups.labels.height)
    c2.metric("features", result.n_features, help="fingerprint features analysed (all metrics)")
    c3.metric("rare devices", int(result.rare.scores["is_rare"].sum()))
    for note in result.notes:
        st.warning(note)
    st.subheader("Rare devices")
    st.caption(
        "Combined score: the mean rank percentile of the detectors (1 = rarer than every other "
        "device). Deviating features: robust z against the fleet's median."
    )
    st.dataframe(_rare_table(result), hide_index=True)
    _drill_down(result)
    _health_section(result)
    _groups_section(result)
    st.subheader("Findings")
    st.markdown("\n".join(f"- {s}" for s in result.findings))


def render() -> None:
    """The Fleet page."""
    st.title("Fleet")
    data = get_data()
    if data is None:
        st.info("No data loaded yet: load your fleet data on the Data page first.")
        return
    st.caption(
        f"{data.label}: device `{data.entity}`, time `{data.time}`, "
        f"metrics {', '.join(f'`{m}`' for m in data.metrics)}."
    )
    params = _parameters()
    upload = st.file_uploader(
        "Maintenance and error events (optional: CSV or Parquet with the device column, "
        "time and kind); a repair resets the device's own baseline, and every event is "
        "drawn on its timeline",
        type=["csv", "parquet"],
        key="events_upload",
    )
    events = None
    if upload is not None:
        try:
            events = read_events(upload.getvalue(), upload.name, data.entity)
        except Exception as e:  # an OpslensError names the missing column and the fix
            show_error(e)
            params = None
    clicked = st.button(
        "Compute fingerprints and groups",
        key="compute_fleet",
        type="primary",
        disabled=params is None,
    )
    result = get_fleet(data)
    if clicked and params is not None:
        result = compute_fleet(data, params, events=events) or result
    if result is None:
        st.info("Choose the parameters and click **Compute fingerprints and groups**.")
        return
    if params is not None and params != result.params:
        st.caption(
            "The parameters changed since these results were computed: click compute to update."
        )
    _show(result)


if __name__ == "__main__":  # run as a script (streamlit run, AppTest): the module's own page
    from opslens.recipes.fleet.pages.fleet import render as _render

    _render()
