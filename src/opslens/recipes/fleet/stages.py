"""Stages of the fleet recipe; each a pure function ``(ctx, **inputs) -> Out``.

``prepare``      check the device, time and metric columns; apply the duplicate, order and
                 short-device policies
``fingerprint``  one row of named features per device and metric
``rare``         Isolation Forest, One-Class SVM, ECOD and an autoencoder → a combined ranking
``groups``       K-Means (K by silhouette), DBSCAN (eps from the k-distance knee), Ward; the model
``explain``      what sets each group apart (SMD, Mann-Whitney, BH), findings in words
``failures``     enrichment per group, precision/recall@k and AUROC, lead time before failure
``inspect``      profile, STL decomposition and point anomalies of the rarest devices

Example:
    >>> import polars as pl
    >>> from opslens.recipes.fleet.params import FailureParams
    >>> table = pl.DataFrame({"device_id": ["d1"], "failure_time": ["2026-01-02T00:00:00"]})
    >>> ids, times = failure_list(FailureParams(ids=["d2"]), table, "device_id")
    >>> sorted(ids), list(times)
    (['d1', 'd2'], ['d1'])
"""

from __future__ import annotations

import warnings
from datetime import datetime
from typing import Any, Literal

import numpy as np
import polars as pl

from opslens.cluster.groups import BehaviourGroups, find_groups
from opslens.core.columns import parse_time, require_columns
from opslens.core.recipe import ModelArtifact, Out, StageContext
from opslens.detect.point import point_anomalies
from opslens.detect.population import RareDevices, rank_rare_devices
from opslens.errors import DataError, OpslensWarning
from opslens.explain.contrasts import group_contrasts, top_group_features
from opslens.explain.failures import (
    group_enrichment,
    lead_time_summary,
    lead_times,
    ranking_quality,
    validate_failed_ids,
)
from opslens.features.decompose import decompose_series
from opslens.features.fingerprints import fleet_fingerprints
from opslens.features.profile import profile_series
from opslens.plots.kselect import plot_k_curve
from opslens.plots.series import plot_decomposition, plot_point_anomalies
from opslens.recipes.fleet import plots
from opslens.recipes.fleet.findings import fleet_findings
from opslens.recipes.fleet.params import (
    FailureParams,
    FleetParams,
    analysed_features,
    fingerprint_config,
)
from opslens.recipes.fleet.predictor import FleetPredictor, NearestGroup, RareDeviceScorer

__all__ = ["explain", "failure_list", "failures", "fingerprint", "groups", "inspect", "rare"]


_POINT_METHODS: tuple[Literal["zscore", "robust_z", "iqr"], ...] = ("zscore", "robust_z", "iqr")


def fingerprint(ctx: StageContext, readings: pl.DataFrame) -> Out:
    """One row of behavioural features per device (every metric)."""
    cols = ctx.analysis.columns
    config = fingerprint_config(ctx.params)
    fp = fleet_fingerprints(
        readings,
        entity=str(cols.entity),
        time=str(cols.time),
        metrics=list(cols.metrics),
        config=config,
    )
    n_features = fp.width - 1
    return Out(
        values={"fingerprints": fp},
        facts={
            "devices": fp.height,
            "features": n_features,
            "features_per_metric": n_features // max(len(cols.metrics), 1),
        },
        metrics={"features": float(n_features)},
    )


def rare(ctx: StageContext, fingerprints: pl.DataFrame) -> Out:
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
                result.scores.sort("rank"), top_n=p.rare.top_n, entity=entity
            )
        },
    )


def groups(
    ctx: StageContext,
    readings: pl.DataFrame,
    fingerprints: pl.DataFrame,
    rare_scores: pl.DataFrame,
    rare_result: RareDevices,
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
            "sizes": labels.group_by(best).len().sort(best).rename({best: "group"}).to_dicts(),
        },
        metrics={
            f"silhouette_{r['method']}": float(r["silhouette"])
            for r in found.summary.to_dicts()
            if r["silhouette"] is not None and np.isfinite(r["silhouette"])
        },
        plots=figs,
        model=_model(ctx, readings, analysed, rare_result, found, best),
    )


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
    predictor = FleetPredictor(
        scorer,
        nearest,
        time=time,
        metrics=list(cols.metrics),
        fingerprint=fingerprint_config(p),
        exclude_features=p.exclude_features,
        min_readings=p.min_readings,
    )
    first = readings[entity].unique(maintain_order=True).head(2)
    return ModelArtifact(
        model=predictor,
        input_example=readings.filter(pl.col(entity).is_in(first.implode())),
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
    """What sets each group apart, each rare device's deviating features, findings in words."""
    entity = str(ctx.analysis.columns.entity)
    best = group_result.best_method or group_labels.columns[1]
    aligned = analysed_features(fingerprints, ctx.params).join(
        group_labels.select(entity, best), on=entity, how="inner"
    )
    contrasts = group_contrasts(aligned.drop(best), aligned[best].to_numpy(), entity=entity)
    top = top_group_features(contrasts, 3)
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
        facts={
            "method": best,
            "group_features": {str(g): [list(t) for t in v] for g, v in top.items()},
            "findings": findings,
        },
    )


def failure_list(
    p: FailureParams, table: pl.DataFrame | None, entity: str
) -> tuple[set[str], dict[str, datetime]]:
    """Failed device ids (from ``params.failures.ids`` and the list's table) and failure times."""
    ids = {str(i) for i in p.ids}
    times: dict[str, datetime] = {}
    if table is None:
        return ids, times
    where = f"the failure list {p.path}"
    id_col = p.id_column or (entity if entity in table.columns else table.columns[0])
    require_columns(table, [id_col, p.time_column], where=where)
    ids |= set(table[id_col].cast(pl.String).to_list())
    time_col = p.time_column or next(
        (c for c in ("failure_time", "failed_at", "failure_date") if c in table.columns), None
    )
    if time_col is not None:
        parsed = parse_time(table, time_col, where=where)
        times = {
            str(i): t
            for i, t in zip(parsed[id_col].cast(pl.String), parsed[time_col], strict=True)
            if t is not None
        }
    return ids, times


def failures(
    ctx: StageContext,
    readings: pl.DataFrame,
    group_labels: pl.DataFrame,
    group_result: BehaviourGroups,
    rare_scores: pl.DataFrame,
    rare_result: RareDevices,
    contrasts: pl.DataFrame,
    failure_table: pl.DataFrame | None,
) -> Out:
    """Failure enrichment per group, ranking quality of the rare score, and lead times."""
    p: FleetParams = ctx.params
    cols = ctx.analysis.columns
    entity, time = str(cols.entity), str(cols.time)
    ids, times = failure_list(p.failures, failure_table, entity)
    if not ids:
        return Out(facts={"configured": False})
    entities = group_labels[entity].to_list()
    known, unknown = validate_failed_ids(entities, ids)
    best = group_result.best_method or group_labels.columns[1]
    enrichment = group_enrichment(group_labels[best].to_numpy(), entities, known)
    quality = ranking_quality(rare_scores.select(entity, "combined"), known)
    lead = None
    lead_frame = None
    if times:
        config = fingerprint_config(p)
        metrics = list(cols.metrics)

        def score_window(frame: pl.DataFrame) -> pl.DataFrame:
            counts = frame.group_by(entity).len().filter(pl.col("len") >= p.min_readings)
            frame = frame.join(counts.select(entity), on=entity, how="semi")
            if frame[entity].n_unique() < 3:
                return pl.DataFrame(
                    {entity: [], "score": []}, schema={entity: pl.String, "score": pl.Float64}
                )
            fp = fleet_fingerprints(frame, entity=entity, time=time, metrics=metrics, config=config)
            ranked = rank_rare_devices(
                analysed_features(fp, p),
                entity=entity,
                top_n=1,
                random_state=ctx.random_state,
                methods=p.lead_time.methods,
            )
            return ranked.scores.select(entity, pl.col("combined").alias("score"))

        known_times = {k: v for k, v in times.items() if k in known}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OpslensWarning)
            lead_frame = lead_times(
                readings,
                entity=entity,
                time=time,
                failure_times=known_times,
                score_window=score_window,
                window=p.lead_time.window,
                step=p.lead_time.step,
                top_k=p.lead_time.top_k,
                horizon=p.lead_time.horizon,
                track=lambda points: ctx.track(points, "lead time: rolling windows", len(points)),
            )
        lead = lead_time_summary(lead_frame)
    findings = fleet_findings(
        n_devices=len(entities),
        rare=rare_result,
        groups=group_result,
        contrasts=contrasts,
        enrichment=enrichment,
        ranking=quality,
        lead=lead,
    )
    facts: dict[str, Any] = {
        "configured": True,
        "method": best,
        "n_failed": len(known),
        "unknown_ids": unknown,
        "enrichment": enrichment.to_dicts(),
        "ranking": {
            "auroc": quality.auroc,
            "base_rate": quality.base_rate,
            "precision_at": {str(k): v for k, v in quality.precision_at.items()},
            "recall_at": {str(k): v for k, v in quality.recall_at.items()},
            "useful": quality.useful,
            "verdict": quality.verdict,
        },
        "lead_time": lead,
        "findings": findings,
    }
    run_metrics = {"failure_auroc": float(quality.auroc)}
    enriched = enrichment.filter(pl.col("enriched"))
    if enriched.height:
        run_metrics["enriched_group_p"] = float(enriched["p_value"].min())  # type: ignore[arg-type]
    tables = {"failure_enrichment": enrichment}
    if lead_frame is not None:
        tables["lead_times"] = lead_frame
    return Out(
        facts=facts,
        metrics=run_metrics,
        tables=tables,
        plots={"failure_rates": plots.plot_group_failure_rates(enrichment)},
    )


def inspect(ctx: StageContext, readings: pl.DataFrame, rare_top: pl.DataFrame) -> Out:
    """Profile, decompose and flag points in the most deviating metric of the rarest devices."""
    p: FleetParams = ctx.params
    cols = ctx.analysis.columns
    entity, time = str(cols.entity), str(cols.time)
    figs: dict[str, Any] = {}
    devices: list[dict[str, Any]] = []
    for row in rare_top.head(p.inspect_top).iter_rows(named=True):
        device = str(row[entity])
        first = str(row.get("deviating_features") or "").split("__")[0]
        metric = first if first in cols.metrics else cols.metrics[0]
        series = readings.filter(pl.col(entity) == device).select(time, metric)
        profile = profile_series(series, time=time, value=metric)
        flags: dict[str, pl.Series] = {
            method: point_anomalies(series, time=time, value=metric, method=method)["is_anomaly"]
            for method in _POINT_METHODS
        }
        info: dict[str, Any] = {
            "device": device,
            "metric": metric,
            "profile": profile.to_dict(),
            "point_anomalies": {m: int(f.sum()) for m, f in flags.items()},
        }
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in device)
        figs[f"device_{safe}_anomalies"] = plot_point_anomalies(
            series,
            time=time,
            value=metric,
            flags=flags,
            title=f"{device}: {metric}, points flagged by z-score, robust z and IQR",
        )
        try:
            parts = decompose_series(series, time=time, value=metric)
            info["decomposition"] = {
                "period": parts.period,
                "period_source": parts.period_source,
                "trend_strength": parts.trend_strength,
                "seasonal_strength": parts.seasonal_strength,
            }
            figs[f"device_{safe}_decomposition"] = plot_decomposition(
                parts, title=f"{device}: {metric}"
            )
        except DataError as e:
            info["decomposition"] = {"skipped": str(e)}
        devices.append(info)
    return Out(facts={"devices": devices}, plots=figs)
