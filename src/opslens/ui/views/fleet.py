"""The Fleet page: device fingerprints, rare devices and behaviour groups, explained.

The computation chains the fleet recipe's library functions, each step cached on
its data and parameters (``st.cache_data``): fingerprints
(:func:`~opslens.features.fingerprints.fleet_fingerprints`), rare-device ranking
(:func:`~opslens.detect.population.rank_rare_devices`), behaviour groups
(:func:`~opslens.cluster.groups.find_groups`), per-group contrasts
(:func:`~opslens.explain.contrasts.group_contrasts`) and the findings in words
(:func:`~opslens.recipes.fleet.findings.fleet_findings`). The result is kept in
the session (``st.session_state["opslens_fleet"]``) so that switching pages and
back shows it again without recomputing, and the Known failures page builds on it.

Example:
    >>> deviation_sentences("temperature__std +4.2σ, current__acf_1 -3.0σ", ["temperature", "current"])
    ["temperature std is 4.2σ above the fleet's median", "current acf_1 is 3.0σ below the fleet's median"]
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import altair as alt
import polars as pl
import streamlit as st
from pydantic import ValidationError

from opslens.cluster.groups import GROUP_METHODS, BehaviourGroups, find_groups
from opslens.core.columns import parse_time, require_columns, require_numeric
from opslens.detect.population import METHODS as RARE_METHODS
from opslens.detect.population import RareDevices, rank_rare_devices
from opslens.errors import OpslensError, OpslensWarning
from opslens.explain.contrasts import group_contrasts, top_group_features
from opslens.features.fingerprints import fleet_fingerprints
from opslens.plots import theme
from opslens.recipes.fleet.findings import fleet_findings
from opslens.recipes.fleet.params import (
    FingerprintParams,
    FleetParams,
    analysed_features,
    fingerprint_config,
)
from opslens.ui.state import HASH_FUNCS, LoadedData, frame_hash, get_data, show_error

__all__ = [
    "FLEET",
    "FleetResult",
    "compute_fleet",
    "deviation_sentences",
    "get_fleet",
    "method_label",
    "method_radio",
    "render",
]

FLEET = "opslens_fleet"
RANDOM_STATE = 0
_METHOD_NAMES = {
    "isolation_forest": "Isolation Forest",
    "one_class_svm": "One-Class SVM",
    "ecod": "ECOD",
    "autoencoder": "Autoencoder",
    "kmeans": "K-Means",
    "dbscan": "DBSCAN",
    "agglomerative": "Agglomerative (Ward)",
}

T = TypeVar("T")


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


def _quiet(fn: Callable[[], T]) -> tuple[T, list[str]]:
    """Run ``fn``, collecting opslens warnings as notes for the page instead of letting them fly."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", OpslensWarning)
        value = fn()
    return value, [str(w.message) for w in caught if issubclass(w.category, OpslensWarning)]


# --- cached steps (data and parameters are the key) ---------------------------------------


@st.cache_data(show_spinner=False, hash_funcs=HASH_FUNCS)
def _prepare(frame: pl.DataFrame, entity: str, time: str, metrics: tuple[str, ...]) -> pl.DataFrame:
    """Device ids as text, parsed timestamps, numeric metrics; rows without id or time dropped."""
    where = "the loaded data"
    require_columns(frame, [entity, time, *metrics], where=where)
    out = parse_time(
        frame.select(pl.col(entity).cast(pl.String), time, *metrics), time, where=where
    )
    for m in metrics:
        out = require_numeric(out, m, where=where)
    return out.filter(pl.col(entity).is_not_null() & pl.col(time).is_not_null())


@st.cache_data(show_spinner=False, hash_funcs=HASH_FUNCS)
def _fingerprints(
    readings: pl.DataFrame, entity: str, time: str, metrics: tuple[str, ...], settings_json: str
) -> tuple[pl.DataFrame, list[str]]:
    p = FleetParams(fingerprint=FingerprintParams.model_validate_json(settings_json))
    return _quiet(
        lambda: fleet_fingerprints(
            readings, entity=entity, time=time, metrics=list(metrics), config=fingerprint_config(p)
        )
    )


@st.cache_data(show_spinner=False, hash_funcs=HASH_FUNCS)
def _rare(
    features: pl.DataFrame,
    entity: str,
    methods: tuple[str, ...],
    contamination: float,
    top_n: int,
) -> tuple[RareDevices, list[str]]:
    return _quiet(
        lambda: rank_rare_devices(
            features,
            entity=entity,
            top_n=top_n,
            random_state=RANDOM_STATE,
            contamination=contamination,
            methods=methods,
        )
    )


@st.cache_data(show_spinner=False, hash_funcs=HASH_FUNCS)
def _groups(
    features: pl.DataFrame,
    entity: str,
    methods: tuple[str, ...],
    k_min: int,
    k_max: int,
    min_samples: int,
) -> tuple[BehaviourGroups, list[str]]:
    return _quiet(
        lambda: find_groups(
            features,
            entity=entity,
            methods=methods,
            k_min=k_min,
            k_max=k_max,
            min_samples=min_samples,
            random_state=RANDOM_STATE,
        )
    )


@st.cache_data(show_spinner=False, hash_funcs=HASH_FUNCS)
def _contrasts(
    features: pl.DataFrame, labels: pl.DataFrame, entity: str, method: str
) -> tuple[pl.DataFrame | None, str | None]:
    """The contrasts of one method's groups, or None and the reason (e.g. fewer than two groups)."""
    aligned = features.join(labels.select(entity, method), on=entity, how="inner")
    try:
        c = group_contrasts(aligned.drop(method), aligned[method].to_numpy(), entity=entity)
    except OpslensError as e:
        return None, e.problem
    return c, None


# --- the computation ----------------------------------------------------------------------


def _data_key(data: LoadedData) -> str:
    return "|".join([frame_hash(data.frame), data.entity, data.time, *data.metrics])


def get_fleet(data: LoadedData) -> FleetResult | None:
    """The session's Fleet results, if they were computed on ``data``."""
    value = st.session_state.get(FLEET)
    if isinstance(value, FleetResult) and value.key == _data_key(data):
        return value
    return None


def compute_fleet(data: LoadedData, params: FleetParams) -> FleetResult | None:
    """Fingerprints → rare devices → groups → contrasts → findings, with a line per step.

    Each step is cached on its inputs; the result is stored in the session. Errors are
    shown in the page and give None.
    """
    entity, time, metrics = data.entity, data.time, tuple(data.metrics)
    notes: list[str] = []
    with st.status("Computing fingerprints and groups…", expanded=True) as status:
        try:
            readings = _prepare(data.frame, entity, time, metrics)
            fp, n = _fingerprints(
                readings, entity, time, metrics, params.fingerprint.model_dump_json()
            )
            notes += n
            features = analysed_features(fp, params)
            st.write(
                f"Fingerprints: {fp.height} devices, {features.width - 1} features "
                f"({len(metrics)} metrics)."
            )
            rare, n = _rare(
                features, entity, params.rare.methods, params.rare.contamination, params.rare.top_n
            )
            notes += n
            n_rare = int(rare.scores["is_rare"].sum())
            st.write(
                f"Rare devices: {n_rare} above the threshold, from "
                f"{', '.join(_METHOD_NAMES[m] for m in params.rare.methods)}."
            )
            g = params.groups
            groups, n = _groups(features, entity, g.methods, g.k_min, g.k_max, g.min_samples)
            notes += n
            st.write(
                f"Behaviour groups: {', '.join(_METHOD_NAMES[m] for m in g.methods)}; "
                f"best: {_METHOD_NAMES.get(groups.best_method or '', 'none')}."
            )
            contrasts: dict[str, pl.DataFrame] = {}
            for method in groups.summary["method"].to_list():
                c, why = _contrasts(features, groups.labels, entity, str(method))
                if c is not None:
                    contrasts[str(method)] = c
                elif why:
                    notes.append(f"{_METHOD_NAMES.get(str(method), method)}: {why}")
            best = groups.best_method or str(groups.summary["method"][0])
            findings = fleet_findings(
                n_devices=fp.height,
                rare=rare,
                groups=groups,
                contrasts=contrasts.get(best, pl.DataFrame()),
                enrichment=None,
                ranking=None,
                lead=None,
            )
            st.write("Contrasts and findings: done.")
        except OpslensError as e:
            status.update(label="Could not compute the fleet analysis", state="error")
            show_error(e)
            return None
        except Exception as e:  # a last resort: one line, never a traceback
            status.update(label="Could not compute the fleet analysis", state="error")
            show_error(e)
            return None
        status.update(label="Fingerprints and groups computed", state="complete", expanded=False)
    result = FleetResult(
        key=_data_key(data),
        params=params,
        entity=entity,
        time=time,
        metrics=list(metrics),
        readings=readings,
        n_features=features.width - 1,
        features=features,
        rare=rare,
        groups=groups,
        contrasts=contrasts,
        findings=findings,
        notes=list(dict.fromkeys(notes)),
    )
    st.session_state[FLEET] = result
    return result


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
    if top.height == 0:
        return
    devices = [str(d) for d in top[result.entity].to_list()]
    device = st.selectbox("Look at a device", devices, key="drill_device")
    if device is None:
        return
    row = top.filter(pl.col(result.entity) == device).row(0, named=True)
    text = str(row.get("deviating_features") or "")
    metric = _metric_of(text, result.metrics)
    left, right = st.columns([2, 1])
    with right:
        st.markdown(
            f"**{device}** — rank {row['rank']}, combined score {row['combined']:.2f}"
            f"{' (rare)' if row['is_rare'] else ''}. Its most deviating features:"
        )
        st.markdown("\n".join(f"- {s}" for s in deviation_sentences(text, result.metrics)))
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
    with left:
        st.altair_chart(
            chart.properties(
                title=f"{device}: {metric} (dashed: the fleet's median)"
            ).interactive(),
            width="stretch",
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
    clicked = st.button(
        "Compute fingerprints and groups",
        key="compute_fleet",
        type="primary",
        disabled=params is None,
    )
    result = get_fleet(data)
    if clicked and params is not None:
        result = compute_fleet(data, params) or result
    if result is None:
        st.info("Choose the parameters and click **Compute fingerprints and groups**.")
        return
    if params is not None and params != result.params:
        st.caption(
            "The parameters changed since these results were computed: click compute to update."
        )
    _show(result)
