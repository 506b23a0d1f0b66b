"""Stages of the distribution recipe; each a pure function ``(ctx, **inputs) -> Out``.

``prepare``   identify columns, plot the initial distributions, encode categoricals,
              build the combination label, drop combinations below ``min_combination_size``
``quantize``  bin the target (edges shared within a segment of ``columns.group``),
              one normalised histogram per combination
``choose_k``  scan K with the silhouette and Calinski-Harabasz indices (skipped if ``n_clusters``)
``cluster``   final K-Means, a profile per cluster (quantiles, mean/median/mode, skewness, HDRs)
``classify``  XGBoost on the categoricals predicting the cluster; held-out metrics; the model

Example:
    >>> import polars as pl
    >>> from opslens.config import Columns
    >>> frame = pl.DataFrame({"route": ["A", "B", "c"], "minutes": [1.0, 2.0, 3.0]})
    >>> _categoricals(frame, Columns(target="minutes"))
    ['route']
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from opslens.cluster.kselect import KChoice, choose_k
from opslens.cluster.profiles import DistributionClusterer, cluster_profiles, describe_profile
from opslens.config import AnalysisConfig, Columns
from opslens.core.columns import require_columns, require_numeric
from opslens.core.recipe import ModelArtifact, Out, StageContext
from opslens.errors import ConfigError, DataError
from opslens.features.histograms import (
    bin_edges,
    combination_histograms,
    combination_labels,
    drop_small_combinations,
    quantize,
)
from opslens.models.classifier import PatternClassifier
from opslens.models.metrics import classification_metrics
from opslens.plots.kselect import plot_k_curve
from opslens.recipes.distribution import plots
from opslens.recipes.distribution.params import DistributionParams
from opslens.recipes.distribution.predictor import PatternPredictor

__all__ = [
    "check_columns",
    "choose_k_stage",
    "classify",
    "cluster_stage",
    "prepare",
    "quantize_stage",
]

COMB = "comb"
SEGMENT = "segment"


def check_columns(analysis: AnalysisConfig) -> None:
    """ConfigError when the target is missing, or also named as a categorical or the group."""
    cols = analysis.columns
    if cols.target is None:
        raise ConfigError(
            f"analysis '{analysis.name}' (distribution) needs columns.target",
            fix="set columns.target to the numeric column whose distribution you study",
        )
    if cols.target in cols.categorical or cols.target == cols.group:
        role = "columns.categorical" if cols.target in cols.categorical else "columns.group"
        raise ConfigError(
            f"analysis '{analysis.name}': the target '{cols.target}' is also listed in {role}",
            fix=f"remove '{cols.target}' from {role}: the target is what the patterns describe",
        )


def _categoricals(frame: pl.DataFrame, cols: Columns) -> list[str]:
    if cols.categorical:
        return list(cols.categorical)
    skip = {cols.time, cols.target, cols.group, cols.entity}
    found = [
        name
        for name, dtype in frame.schema.items()
        if name not in skip
        and (dtype in (pl.String, pl.Categorical, pl.Boolean) or isinstance(dtype, pl.Enum))
        and frame[name].n_unique() <= 50
    ]
    if not found:
        raise DataError(
            "no categorical columns were named and none were found (text columns with at most 50 levels)",
            fix="list them in columns.categorical",
        )
    return found


def prepare(ctx: StageContext, raw: pl.DataFrame) -> Out:
    """Check columns, encode categoricals as text, label combinations, drop small ones."""
    p: DistributionParams = ctx.params
    cols = ctx.analysis.columns
    target = str(cols.target)
    where = ctx.source
    require_columns(raw, [target, cols.group, *cols.categorical], where=where)
    categorical = _categoricals(raw, cols)
    frame = require_numeric(raw, target, where=where)
    n_rows = frame.height
    finite = frame.filter(pl.col(target).is_finite())
    if finite.height == 0:
        raise DataError(
            f"target column '{target}' has no numeric values (all {n_rows} are null or NaN)",
            fix="name a target column with data, or fix the source",
        )
    keep = (
        [*categorical, target]
        + ([cols.group] if cols.group else [])
        + ([cols.time] if cols.time else [])
    )
    encoded = finite.select(keep).with_columns(
        [pl.col(c).cast(pl.String).fill_null("null") for c in categorical]
        + ([pl.col(cols.group).cast(pl.String).fill_null("null")] if cols.group else [])
    )
    labelled = combination_labels(encoded, categorical, name=COMB)
    kept, small = drop_small_combinations(
        labelled, comb=COMB, min_size=p.min_combination_size, setting="params.min_combination_size"
    )
    numeric = [n for n, d in raw.schema.items() if d.is_numeric()]
    facts = {
        "rows_read": n_rows,
        "rows_without_target": n_rows - finite.height,
        "categorical": categorical,
        "numeric_columns": numeric,
        "target": target,
        "group": cols.group,
        "combinations_total": small.n_combinations_kept + small.n_combinations_dropped,
        "combinations_kept": small.n_combinations_kept,
        "combinations_dropped": small.n_combinations_dropped,
        "rows_dropped_small": small.n_rows_dropped,
        "share_rows_dropped_small": small.share_rows_dropped,
        "rows_kept": kept.height,
        "min_combination_size": p.min_combination_size,
        "target_summary": finite.select(
            mean=pl.col(target).mean(),
            median=pl.col(target).median(),
            min=pl.col(target).min(),
            max=pl.col(target).max(),
        ).row(0, named=True),
    }
    figure = plots.plot_initial_distributions(finite, target=target, categorical=categorical)
    return Out(
        values={"prepared": kept},
        facts=facts,
        metrics={"rows": float(kept.height), "combinations": float(small.n_combinations_kept)},
        plots={"initial_distributions": figure},
    )


def _segments(frame: pl.DataFrame, target: str, group: str | None) -> dict[str, np.ndarray]:
    if group is None:
        return {"all": frame[target].to_numpy()}
    parts = frame.group_by(group, maintain_order=True)
    return {str(key[0]): part[target].to_numpy() for key, part in parts}


def quantize_stage(ctx: StageContext, prepared: pl.DataFrame) -> Out:
    """Bin the target (edges per segment when ``columns.group`` is set) and build histograms."""
    p: DistributionParams = ctx.params
    target = str(ctx.analysis.columns.target)
    group = ctx.analysis.columns.group
    values = {
        seg: bin_edges(v, n_bins=p.n_bins, method=p.binning, clip=p.clip)
        for seg, v in _segments(prepared, target, group).items()
    }
    edges: np.ndarray | dict[str, np.ndarray] = values if group else values["all"]
    quantized = quantize(prepared, target=target, edges=edges, group=group, name="bin")
    n_bins = max(len(e) - 1 for e in values.values())
    hist = combination_histograms(quantized, comb=COMB, bin="bin", n_bins=n_bins, group=group)
    table = hist.to_frame(comb=COMB, group=SEGMENT)
    return Out(
        values={"quantized": quantized, "histograms": table, "edges": edges},
        facts={
            "n_bins": n_bins,
            "binning": p.binning,
            "segments": sorted(values) if group else None,
            "histograms": len(hist.combinations),
        },
    )


def _matrix(histograms: pl.DataFrame) -> np.ndarray:
    return np.vstack(histograms["histogram"].to_list()) if histograms.height else np.empty((0, 0))


def choose_k_stage(ctx: StageContext, histograms: pl.DataFrame) -> Out:
    """Scan K and record the choice and why; a given ``n_clusters`` is recorded as such."""
    p: DistributionParams = ctx.params
    X = _matrix(histograms)
    if p.n_clusters is not None:
        choice = KChoice(
            k=p.n_clusters, reason=f"K={p.n_clusters} was given in params.n_clusters", curve=[]
        )
    else:
        if X.shape[0] < 3:
            raise DataError(
                f"only {X.shape[0]} combination(s) remain after filtering; patterns need at least 3",
                fix="lower params.min_combination_size or add categorical columns with more levels",
            )
        choice = choose_k(
            X, k_min=p.k_min, k_max=p.k_max, random_state=ctx.random_state, setting="params."
        )
    figs = {"k_selection": plot_k_curve(choice.curve, choice.k)} if choice.curve else {}
    return Out(
        values={"k_choice": {"k": choice.k, "reason": choice.reason, "curve": choice.curve}},
        facts={"k": choice.k, "reason": choice.reason, "curve": choice.curve},
        metrics={"k": float(choice.k)},
        plots=figs,
    )


def cluster_stage(
    ctx: StageContext,
    quantized: pl.DataFrame,
    histograms: pl.DataFrame,
    k_choice: dict[str, Any],
    edges: Any,
) -> Out:
    """Final K-Means on the histograms, then a profile per cluster."""
    p: DistributionParams = ctx.params
    target = str(ctx.analysis.columns.target)
    X = _matrix(histograms)
    model = DistributionClusterer(n_clusters=int(k_choice["k"]), random_state=ctx.random_state).fit(
        X
    )
    keys = [COMB] + ([SEGMENT] if SEGMENT in histograms.columns else [])
    assignment = histograms.select(keys).with_columns(
        pl.Series("cluster", model.labels_, dtype=pl.Int64)
    )
    group = ctx.analysis.columns.group
    join_on = [COMB] + ([group] if group else [])
    rows = quantized.join(
        assignment.rename({SEGMENT: group} if group else {}), on=join_on, how="inner"
    )
    shared_edges = edges if isinstance(edges, np.ndarray) else next(iter(edges.values()))
    profiles = cluster_profiles(
        rows,
        target=target,
        cluster="cluster",
        edges=shared_edges,
        coverages=p.hdr_coverages,
        comb=COMB,
    )
    noun = "rows"
    descriptions = [
        describe_profile(r, unit=p.unit, noun=noun) for r in profiles.iter_rows(named=True)
    ]
    facts = {
        "k": model.n_clusters_,
        "clusters": [
            {**{k: v for k, v in r.items() if k != "mean_histogram"}, "description": d}
            for r, d in zip(profiles.iter_rows(named=True), descriptions, strict=True)
        ],
        "inertia": model.inertia_,
    }
    return Out(
        values={"clusters": assignment, "profiles": profiles},
        facts=facts,
        plots={"cluster_profiles": plots.plot_cluster_profiles(profiles, shared_edges)},
    )


def classify(
    ctx: StageContext,
    quantized: pl.DataFrame,
    clusters: pl.DataFrame,
    profiles: pl.DataFrame,
    edges: Any,
) -> Out:
    """Train XGBoost on the categoricals to predict the cluster; held-out metrics; the model."""
    from sklearn.model_selection import train_test_split

    p: DistributionParams = ctx.params
    cols = ctx.analysis.columns
    group = cols.group
    categorical = [
        c for c in quantized.columns if c not in {COMB, "bin", str(cols.target), cols.time}
    ]
    join_on = [COMB] + ([group] if group else [])
    rows = quantized.join(
        clusters.rename({SEGMENT: group} if group else {}), on=join_on, how="inner"
    )
    y = rows["cluster"].to_numpy()
    idx = np.arange(rows.height)
    counts = np.bincount(y)
    stratify = y if counts[counts > 0].min() >= 2 else None
    train_idx, test_idx = train_test_split(
        idx, test_size=p.test_size, random_state=ctx.random_state, stratify=stratify
    )
    X = rows.select(categorical)
    clf = PatternClassifier(
        categorical,
        n_estimators=p.xgboost.n_estimators,
        max_depth=p.xgboost.max_depth,
        learning_rate=p.xgboost.learning_rate,
        random_state=ctx.random_state,
    ).fit(X[train_idx], y[train_idx])
    proba = clf.predict_proba(X[test_idx])
    metrics = classification_metrics(y[test_idx], proba, clf.classes_)
    m = metrics.to_dict()
    shared_edges = edges if isinstance(edges, np.ndarray) else next(iter(edges.values()))
    predictor = PatternPredictor(
        clf,
        list(profiles.iter_rows(named=True)),
        edges=shared_edges,
        target=str(cols.target),
        unit=p.unit,
    )
    held_out = (
        rows[test_idx]
        .select([*categorical, str(cols.target), "cluster"])
        .with_columns(
            pl.Series("predicted", clf.classes_[proba.argmax(axis=1)], dtype=pl.Int64),
            *[
                pl.Series(f"p_{c}", proba[:, i].astype(np.float64))
                for i, c in enumerate(clf.classes_)
            ],
        )
    )
    return Out(
        values={"classifier_metrics": m},
        facts={
            **m,
            "train_rows": len(train_idx),
            "test_rows": len(test_idx),
            "features": categorical,
        },
        metrics={
            "accuracy": float(m["accuracy"]),
            "auroc_weighted": float(m["auroc_weighted"] or float("nan")),
        },
        plots={
            "confusion_matrix": plots.plot_confusion_matrix(
                np.asarray(m["confusion"]), list(clf.classes_)
            )
        },
        tables={"predictions_holdout": held_out},
        model=ModelArtifact(
            model=predictor,
            input_example=X[test_idx[:5]],
            metadata={
                **clf.to_metadata(),
                "recipe": "distribution",
                "target": str(cols.target),
                "unit": p.unit,
                "inputs": categorical,
            },
        ),
    )
