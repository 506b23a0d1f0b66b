"""Stages of the fleet recipe; each a pure function ``(ctx, **inputs) -> Out``.

``prepare``      check the device, time and metric columns; apply the duplicate, order and
                 short-device policies
``fingerprint``  one row of named features per device and metric
``rare``         Isolation Forest, One-Class SVM, ECOD and an autoencoder → a combined ranking
``groups``       K-Means (K by silhouette), DBSCAN (eps from the k-distance knee), Ward; the model
``explain``      what sets every group of every method apart, noise included (SMD,
                 Mann-Whitney, one BH family), findings in words
``failures``     enrichment of every group of every method (one BH family), precision/recall@k,
                 AUROC with a permutation p-value, lead time against a healthy baseline
``inspect``      profile, STL decomposition and point anomalies of the rarest devices (or of
                 ``params.inspect.devices`` / ``metrics``)

The failure list is checked by ``prepare`` (so a bad list stops the run before the
work) with :func:`~opslens.recipes.fleet.prepare.failure_list`, re-exported here.

Example:
    >>> _safe("dev/01 a")
    'dev_01_a'
"""

from __future__ import annotations

import warnings
from datetime import timedelta
from functools import partial
from typing import Any, Literal

import numpy as np
import polars as pl

from opslens.cluster.groups import BehaviourGroups, find_groups
from opslens.core.engine import Engine
from opslens.core.recipe import ModelArtifact, Out, StageContext
from opslens.detect.point import point_anomalies
from opslens.detect.population import RareDevices, rank_rare_devices
from opslens.errors import DataError, OpslensWarning
from opslens.explain.contrasts import contrasts_by_method, top_group_features
from opslens.explain.failures import (
    enrichment_by_method,
    ranking_quality,
    validate_failed_ids,
)
from opslens.features.decompose import decompose_series
from opslens.features.fingerprints import (
    FingerprintConfig,
    fleet_fingerprints,
)
from opslens.features.profile import profile_series
from opslens.plots.kselect import plot_k_curve
from opslens.plots.series import plot_decomposition, plot_point_anomalies
from opslens.recipes.fleet import plots
from opslens.recipes.fleet.baselines import fleet_baselines, unscored_reason
from opslens.recipes.fleet.events import event_list
from opslens.recipes.fleet.findings import fleet_findings, lead_facts
from opslens.recipes.fleet.health import WarningResult
from opslens.recipes.fleet.kept import _of_devices, devices_of, interval_of, ordered
from opslens.recipes.fleet.params import (
    FleetParams,
    analysed_features,
    fingerprint_config,
    to_readings,
)
from opslens.recipes.fleet.predictor import FleetPredictor, NearestGroup, RareDeviceScorer
from opslens.recipes.fleet.prepare import failure_list, sampling_interval
from opslens.recipes.fleet.progress import tracked

__all__ = ["explain", "failure_list", "failures", "fingerprint", "groups", "inspect", "rare"]


_POINT_METHODS: tuple[Literal["zscore", "robust_z", "iqr"], ...] = ("zscore", "robust_z", "iqr")


def _interval(ctx: StageContext, readings: Any) -> timedelta | None:
    """The fleet's sampling interval (counted by the engine when the readings stay there)."""
    cols = ctx.analysis.columns
    entity, time = str(cols.entity), str(cols.time)
    if ctx.engine.distributed:
        return interval_of(ctx.engine, readings, entity, time)
    return sampling_interval(readings, entity, time)


def _config(ctx: StageContext, readings: Any) -> FingerprintConfig:
    """``params.fingerprint`` with durations turned into readings at the fleet's interval."""
    return fingerprint_config(ctx.params, _interval(ctx, readings))


def _warn_short(
    readings: Any, entity: str, config: FingerprintConfig, engine: Engine | None = None
) -> None:
    """Warn when the shortest device series is too short for the window or a lag."""
    if engine is not None and engine.distributed:  # readings per device, counted there
        counts = engine.summarise(readings, {"len": ("count", "*")}, by=[entity])
    else:
        runs = readings.get_column(entity).rle()
        ids = runs.struct.field("value")
        if ids.len() < 2 or bool((ids.slice(1) > ids.slice(0, ids.len() - 1)).all()):
            # each device one run (prepare sorts): its length is its count, no hash over every row
            counts = pl.DataFrame([ids.alias(entity), runs.struct.field("len").alias("len")])
        else:
            counts = readings.group_by(entity).len()
    counts = counts.sort(["len", entity])
    n, device = int(counts["len"][0]), str(counts[entity][0])
    long_lags = [lag for lag in config.lags if lag >= n]
    if long_lags:
        warnings.warn(
            f"lag(s) {', '.join(map(str, long_lags))} of params.fingerprint.lags reach past the "
            f"shortest series ({n} readings, device {device}): their autocorrelation is missing "
            "there; use shorter lags or longer series",
            OpslensWarning,
            stacklevel=2,
        )
    if config.window > n:
        warnings.warn(
            f"params.fingerprint.window ({config.window} readings) is longer than the shortest "
            f"series ({n} readings, device {device}): its window features are missing there",
            OpslensWarning,
            stacklevel=2,
        )


def fingerprint(ctx: StageContext, readings: pl.DataFrame) -> Out:
    """One row of behavioural features per device (every metric)."""
    cols = ctx.analysis.columns
    config = _config(ctx, readings)
    _warn_short(readings, str(cols.entity), config, ctx.engine)
    # per device: the engine hands it whole devices (slices here, Spark tasks there)
    fp = ctx.engine.per_group(
        readings,
        str(cols.entity),
        partial(
            fleet_fingerprints,
            entity=str(cols.entity),
            time=str(cols.time),
            metrics=list(cols.metrics),
            config=config,
        ),
        track=lambda parts: tracked(ctx, parts, "fingerprints: device slices"),
    ).sort(str(cols.entity))
    n_features = fp.width - 1
    return Out(
        values={"fingerprints": fp},
        facts={
            "devices": fp.height,
            "features": n_features,
            "features_per_metric": n_features // max(len(cols.metrics), 1),
            "window": config.window,
            "lags": list(config.lags),
        },
        metrics={"features": float(n_features)},
    )


def _known_failed(ctx: StageContext, failure_table: pl.DataFrame | None) -> set[str]:
    """The failure list's ids (for marking plots; the failures stage checks them)."""
    ids, _ = failure_list(ctx.params.failures, failure_table, str(ctx.analysis.columns.entity))
    return ids


def rare(ctx: StageContext, fingerprints: pl.DataFrame, failure_table: pl.DataFrame | None) -> Out:
    """Score devices with four detectors; combined ranking and top list with deviating features."""
    p: FleetParams = ctx.params
    entity = str(ctx.analysis.columns.entity)
    fingerprints = analysed_features(fingerprints, p)
    result = rank_rare_devices(
        fingerprints,
        entity=entity,
        top_n=p.rare.top_n,
        random_state=ctx.random_state,
        contamination=p.rare.contamination,
        methods=p.rare.methods,
    )
    top = result.top
    return Out(
        values={"rare_scores": result.scores, "rare_top": top, "rare_result": result},
        facts={
            "methods": list(p.rare.methods),
            "contamination": p.rare.contamination,
            "n_rare": int(result.scores["is_rare"].sum()),
            "dropped_features": result.dropped_features,
            "top": top.head(10).to_dicts(),
        },
        metrics={"rare_devices": float(result.scores["is_rare"].sum())},
        plots={
            "rare_scores": plots.plot_rare_scores(
                result.scores.sort("rank"),
                top_n=p.rare.top_n,
                entity=entity,
                failed=_known_failed(ctx, failure_table),
                contamination=p.rare.contamination,
            )
        },
    )


def groups(
    ctx: StageContext,
    readings: pl.DataFrame,
    fingerprints: pl.DataFrame,
    rare_scores: pl.DataFrame,
    rare_result: RareDevices,
    failure_table: pl.DataFrame | None,
) -> Out:
    """Behaviour groups by three methods, silhouettes, a PCA embedding plot; the fleet model."""
    p: FleetParams = ctx.params
    cols = ctx.analysis.columns
    entity = str(cols.entity)
    analysed = analysed_features(fingerprints, p)
    found = find_groups(
        analysed,
        entity=entity,
        methods=p.groups.methods,
        k_min=p.groups.k_min,
        k_max=p.groups.k_max,
        min_samples=p.groups.min_samples,
        random_state=ctx.random_state,
        setting="params.groups.",
        track=lambda items, what: tracked(ctx, items, what),
    )
    best = found.best_method or p.groups.methods[0]
    labels = found.labels.join(rare_scores.select(entity, "is_rare"), on=entity, how="left")
    figs = {
        "embedding": plots.plot_embedding(
            found.embedding,
            labels[best].to_numpy(),
            labels["is_rare"].fill_null(False).to_numpy(),
            title=f"Devices by behaviour group ({best})",
            explained_variance=found.explained_variance,
            failed=labels[entity].is_in(sorted(_known_failed(ctx, failure_table))).to_numpy(),
        ),
        "k_selection": plot_k_curve(found.k_choice.curve, found.k_choice.k),
    }
    if "dbscan" in p.groups.methods:
        figs["k_distance"] = plots.plot_k_distance(
            found.k_distances, found.eps, min_samples=found.min_samples
        )
    return Out(
        values={"group_labels": found.labels, "group_result": found},
        tables={"group_summary": found.summary, "embedding": found.embedding},
        facts={
            "best_method": best,
            "k": found.k_choice.k,
            "k_reason": found.k_choice.reason,
            "eps": found.eps,
            "summary": found.summary.to_dicts(),
            "sizes": labels.filter(pl.col(best) >= 0)
            .group_by(best)
            .len()
            .sort(best)
            .rename({best: "group"})
            .to_dicts(),
            "n_noise": int((labels[best] < 0).sum()),
        },
        metrics={
            f"silhouette_{r['method']}": float(r["silhouette"])
            for r in found.summary.to_dicts()
            if r["silhouette"] is not None and np.isfinite(r["silhouette"])
        },
        plots=figs,
        model=_model(ctx, readings, analysed, rare_result, found, best),
    )


#: training devices whose windows the online window scorer is fitted on, at most (seeded sample)
WINDOW_DEVICES = 2_000


def window_fingerprints(
    readings: pl.DataFrame,
    *,
    entity: str,
    time: str,
    metrics: list[str],
    config: FingerprintConfig,
    width: timedelta,
    need: int,
) -> pl.DataFrame:
    """Fingerprints of whole devices' ``width``-long windows counted back from each device's
    last reading (those with at least ``need`` readings), keyed ``device\x1fwindow``; sorted by key.
    Per device, so an engine may run it on any groups of whole devices."""
    back = (pl.col(time).max().over(entity) - pl.col(time)).dt.total_microseconds()
    windows = readings.with_columns(
        (back // int(width.total_seconds() * 1_000_000)).cast(pl.Int64).alias("__window")
    )
    counts = windows.group_by(entity, "__window").len().filter(pl.col("len") >= need)
    windows = (
        windows.join(counts.select(entity, "__window"), on=[entity, "__window"], how="semi")
        .with_columns(
            pl.format("{}\x1f{}", pl.col(entity).cast(pl.String), "__window").alias("__key")
        )
        .sort("__key", time)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OpslensWarning)
        return fleet_fingerprints(
            windows.drop(entity).rename({"__key": entity}),
            entity=entity,
            time=time,
            metrics=metrics,
            config=config,
        )


def _window_scorer(
    ctx: StageContext, readings: Any, config: FingerprintConfig, devices: pl.Series
) -> RareDeviceScorer | None:
    """The rare detector fitted on the training devices' ``lead_time.window``-long windows.

    Each device's history is cut into consecutive windows of that length, counted back
    from its last reading (at most :data:`WINDOW_DEVICES` devices, a seeded sample); the
    detector is fitted on all of them. Its threshold is a per-device false-alarm rate: the
    ``1 − rare.contamination`` quantile over training devices of their most unusual
    window, so at most that share of training devices has any window called rare. Online,
    a device with a short history is compared with these (the same length), not with whole
    histories. None when fewer than 10 devices have a full window. ``devices``: the
    training devices in the readings' order (sorted). On a distributed engine the windows'
    fingerprints are made there (:func:`window_fingerprints`, per device).
    """
    p: FleetParams = ctx.params
    cols = ctx.analysis.columns
    entity, time = str(cols.entity), str(cols.time)
    sampled = devices.len() > WINDOW_DEVICES
    if sampled:
        devices = devices.sample(WINDOW_DEVICES, seed=ctx.random_state)
    made = partial(
        window_fingerprints,
        entity=entity,
        time=time,
        metrics=list(cols.metrics),
        config=config,
        width=p.lead_time.window,
        need=max(p.min_readings, 3),
    )
    if ctx.engine.distributed:  # per device on the engine; the chosen devices' windows here
        chosen = partial(_of_devices, entity=entity, devices=devices.cast(pl.String).to_list())
        rows = ctx.engine.map_batches(readings, chosen, keep=True) if sampled else readings
        fp = ctx.engine.per_group(
            rows, entity, partial(ordered, func=made, by=[entity, time])
        ).sort(entity)
    else:
        if sampled:
            readings = readings.filter(pl.col(entity).is_in(devices.implode()))
        fp = made(readings)
    if fp.filter(pl.col(entity).str.ends_with("\x1f0")).height < 10:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OpslensWarning)
        analysed = analysed_features(fp, p)
        ranked = rank_rare_devices(
            analysed,
            entity=entity,
            top_n=1,
            random_state=ctx.random_state,
            contamination=p.rare.contamination,
            methods=p.rare.methods,
        )
    worst = (
        ranked.scores.with_columns(pl.col(entity).str.split("\x1f").list.first().alias("__d"))
        .group_by("__d")
        .agg(pl.col("combined").max())
    )
    ranked.detector.threshold_ = float(
        np.quantile(worst["combined"].to_numpy(), 1.0 - p.rare.contamination)
    )
    return RareDeviceScorer.from_ranking(ranked, analysed, entity=entity)


def _model(
    ctx: StageContext,
    readings: pl.DataFrame,
    analysed: pl.DataFrame,
    rare_result: RareDevices,
    found: BehaviourGroups,
    best: str,
) -> ModelArtifact:
    """The fleet predictor: readings → fingerprint → rare score and nearest group."""
    p: FleetParams = ctx.params
    cols = ctx.analysis.columns
    entity, time = str(cols.entity), str(cols.time)
    scorer = RareDeviceScorer.from_ranking(rare_result, analysed, entity=entity)
    aligned = analysed.join(found.labels.select(entity, best), on=entity, how="inner")
    nearest = NearestGroup(
        method=best,
        features=found.feature_names,
        fingerprints=aligned,
        labels=aligned[best].to_numpy(),
    )
    config = _config(ctx, readings)
    devices = analysed[entity]  # every device, sorted as the readings are
    predictor = FleetPredictor(
        scorer,
        nearest,
        time=time,
        metrics=list(cols.metrics),
        fingerprint=config,
        exclude_features=p.exclude_features,
        min_readings=p.min_readings,
        window_scorer=_window_scorer(ctx, readings, config, devices),
        window=p.lead_time.window,
    )
    first = devices.head(2)
    if ctx.engine.distributed:
        example = devices_of(ctx.engine, readings, entity, time, first.to_list())
    else:
        example = readings.filter(pl.col(entity).is_in(first.implode()))
    return ModelArtifact(
        model=predictor,
        input_example=example.select(entity, time, *cols.metrics),
        metadata={
            "recipe": "fleet",
            "entity": entity,
            "time": time,
            "metrics": list(cols.metrics),
            "features": scorer.features,
            "methods": list(p.rare.methods),
            "group_method": best,
            "output": "score: mean rank percentile among the training devices (higher = more unusual)",
        },
    )


def explain(
    ctx: StageContext,
    fingerprints: pl.DataFrame,
    group_labels: pl.DataFrame,
    group_result: BehaviourGroups,
    rare_result: RareDevices,
) -> Out:
    """What sets every group of every method apart (noise included), findings in words."""
    entity = str(ctx.analysis.columns.entity)
    best = group_result.best_method or group_labels.columns[1]
    contrasts = contrasts_by_method(
        analysed_features(fingerprints, ctx.params),
        group_labels,
        entity=entity,
        top=5,
        track=lambda methods: tracked(ctx, methods, "explain: contrasts per method"),
    )
    features = {
        str(m): {
            str(g): [list(t) for t in v]
            for g, v in top_group_features(contrasts.filter(pl.col("method") == m), 3).items()
        }
        for m in contrasts["method"].unique(maintain_order=True).to_list()
    }
    findings = fleet_findings(
        n_devices=fingerprints.height,
        rare=rare_result,
        groups=group_result,
        contrasts=contrasts,
        enrichment=None,
        ranking=None,
        lead=None,
    )
    return Out(
        values={"contrasts": contrasts},
        facts={"method": best, "group_features": features, "findings": findings},
    )


def failures(
    ctx: StageContext,
    readings: pl.DataFrame,
    group_labels: pl.DataFrame,
    group_result: BehaviourGroups,
    rare_scores: pl.DataFrame,
    rare_result: RareDevices,
    contrasts: pl.DataFrame,
    risk_scores: pl.DataFrame,
    warning_result: WarningResult,
    failure_table: pl.DataFrame | None,
) -> Out:
    """Enrichment of every group, the risk ranking's quality with its p-value, the warning rule.

    The failure-risk ranking (the ``health`` stage's) is what is validated and scored
    against the baselines; lead time is the warning rule's, against chance and against
    the per-device baseline rule.
    """
    p: FleetParams = ctx.params
    f = p.failures
    cols = ctx.analysis.columns
    entity, time = str(cols.entity), str(cols.time)
    ids, _ = failure_list(f, failure_table, entity)
    if not ids:
        unscored = unscored_reason(0, group_labels.height)
        return Out(facts={"configured": False, "baselines_unscored": unscored})
    entities = group_labels[entity].to_list()
    known, unknown = validate_failed_ids(entities, ids)
    scored = fleet_baselines(
        readings,
        risk_scores.select(entity, "score"),
        known,
        entity=entity,
        time=time,
        metrics=list(cols.metrics),
        group=cols.peer_group or cols.group,
        recent=p.baselines.recent,
        n_boot=p.baselines.bootstrap,
        random_state=ctx.random_state,
        engine=ctx.engine,
    )
    enough = len(known) >= f.min_failures
    enrichment = enrichment_by_method(group_labels, known, entity=entity, alpha=f.alpha)
    if not enough:
        enrichment = enrichment.with_columns(pl.lit(False).alias("enriched"))
    quality = ranking_quality(
        risk_scores.select(entity, pl.col("score").fill_null(0.0).alias("combined")),
        known,
        min_failures=f.min_failures,
        permutations=f.permutations,
        alpha=f.alpha,
        random_state=ctx.random_state,
    )
    lead = lead_facts(warning_result.summary) if warning_result.summary else None
    lead_frame = warning_result.table if warning_result.summary else None
    findings = fleet_findings(
        n_devices=len(entities),
        rare=rare_result,
        groups=group_result,
        contrasts=contrasts,
        enrichment=enrichment,
        ranking=quality,
        lead=None,
        min_failures=f.min_failures,
    )
    if lead is not None:
        findings.append(lead["sentence"])
    top = enrichment.row(0, named=True)
    facts: dict[str, Any] = {
        "configured": True,
        "method": top["method"],
        "n_failed": len(known),
        "min_failures": f.min_failures,
        "enough_failures": enough,
        "unknown_ids": unknown,
        "enrichment": enrichment.to_dicts(),
        "most_enriched": top,
        "ranking": {
            "auroc": quality.auroc,
            "auroc_p": quality.auroc_p,
            "permutations": f.permutations,
            "base_rate": quality.base_rate,
            "precision_at": {str(k): v for k, v in quality.precision_at.items()},
            "recall_at": {str(k): v for k, v in quality.recall_at.items()},
            "useful": quality.useful,
            "verdict": quality.verdict,
        },
        "lead_time": lead,
        "findings": findings,
        "baselines_unscored": None if scored else unscored_reason(len(known), len(entities)),
    }
    run_metrics = {"failure_auroc": float(quality.auroc)}
    if np.isfinite(quality.auroc_p):
        run_metrics["failure_auroc_p"] = float(quality.auroc_p)
    if top["enriched"]:
        run_metrics["enriched_group_q"] = float(top["q_value"])
    if lead is not None and lead["p_value"] is not None:
        run_metrics["lead_time_p"] = float(lead["p_value"])
    tables = {"failure_enrichment": enrichment}
    if lead_frame is not None:
        tables["lead_times"] = lead_frame
    shown = enrichment.filter(pl.col("method") == top["method"]).sort("group")
    return Out(
        facts=facts,
        metrics=run_metrics,
        baselines=scored,
        tables=tables,
        plots={"failure_rates": plots.plot_group_failure_rates(shown, method=top["method"])},
    )


def _safe(device: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in device)


def _inspected(
    ctx: StageContext, readings: pl.DataFrame, rare_top: pl.DataFrame
) -> list[tuple[str, str]]:
    """(device, metric) pairs: ``params.inspect`` when given, else the rarest devices' top metric."""
    p: FleetParams = ctx.params
    cols = ctx.analysis.columns
    if p.inspect.devices:  # prepare checked that they are in the data
        chosen = [(d, "") for d in p.inspect.devices]
    else:
        chosen = [
            (str(r[str(cols.entity)]), str(r.get("deviating_features") or "").split("__")[0])
            for r in rare_top.head(p.inspect_top).iter_rows(named=True)
        ]
    pairs: list[tuple[str, str]] = []
    for device, first in chosen:
        if p.inspect.metrics:
            pairs += [(device, m) for m in p.inspect.metrics]
        else:
            pairs.append((device, first if first in cols.metrics else cols.metrics[0]))
    return pairs


def inspect(
    ctx: StageContext,
    readings: pl.DataFrame,
    rare_top: pl.DataFrame,
    failure_table: pl.DataFrame | None,
    event_table: pl.DataFrame | None = None,
) -> Out:
    """Profile, decompose and flag points in the chosen series; say which decompositions were skipped.

    With maintenance events (``params.events``), each device's events are drawn on its
    plots (one dotted line per event, a colour per kind) and listed in its facts.
    """
    p: FleetParams = ctx.params
    cols = ctx.analysis.columns
    entity, time = str(cols.entity), str(cols.time)
    _, failed_at = failure_list(p.failures, failure_table, entity)
    events = (
        event_list(p.events, event_table, entity).sort("time") if event_table is not None else None
    )
    interval = _interval(ctx, readings)
    period = (
        to_readings(p.inspect.period, interval, "params.inspect.period")
        if p.inspect.period is not None
        else None
    )
    figs: dict[str, Any] = {}
    devices: list[dict[str, Any]] = []
    pairs = _inspected(ctx, readings, rare_top)
    if ctx.engine.distributed:  # the inspected devices' readings only come here
        readings = devices_of(ctx.engine, readings, entity, time, sorted({d for d, _ in pairs}))
    for device, metric in pairs:
        series = readings.filter(pl.col(entity) == device).select(time, metric)
        profile = profile_series(series, time=time, value=metric)
        flags: dict[str, pl.Series] = {
            method: point_anomalies(series, time=time, value=metric, method=method)["is_anomaly"]
            for method in _POINT_METHODS
        }
        mine = (
            [
                (t, k)
                for t, k in events.filter(pl.col(entity) == str(device))
                .select("time", "kind")
                .iter_rows()
            ]
            if events is not None
            else []
        )
        info: dict[str, Any] = {
            "device": device,
            "metric": metric,
            "unit": p.units.get(metric),
            "failure_time": failed_at.get(device),
            "events": [{"time": str(t), "kind": k} for t, k in mine],
            "profile": profile.to_dict(),
            "point_anomalies": {m: int(f.sum()) for m, f in flags.items()},
        }
        name = f"device_{_safe(device)}" + (f"_{_safe(metric)}" if p.inspect.metrics else "")
        figs[f"{name}_anomalies"] = plot_point_anomalies(
            series,
            time=time,
            value=metric,
            flags=flags,
            title=f"{device}: {metric}, points flagged by z-score, robust z and IQR",
            unit=p.units.get(metric),
            event=failed_at.get(device),
            event_label="known failure",
            events=mine,
        )
        try:
            parts = decompose_series(
                series, time=time, value=metric, period=period, setting="params.inspect.period"
            )
            info["decomposition"] = {
                "period": parts.period,
                "period_source": parts.period_source,
                "trend_strength": parts.trend_strength,
                "seasonal_strength": parts.seasonal_strength,
            }
            figs[f"{name}_decomposition"] = plot_decomposition(
                parts,
                title=f"{device}: {metric}",
                unit=p.units.get(metric),
                event=failed_at.get(device),
                events=mine,
            )
        except DataError as e:
            info["decomposition"] = {"skipped": e.problem, "fix": e.fix}
        devices.append(info)
    skipped = [d for d in devices if "skipped" in d["decomposition"]]
    return Out(
        facts={
            "devices": devices,
            "period": period,
            "decompositions_skipped": len(skipped),
        },
        plots=figs,
    )
