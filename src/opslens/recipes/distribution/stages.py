"""Stages of the distribution recipe; each a pure function ``(ctx, **inputs) -> Out``.

``prepare``   identify columns, refuse meaningless targets, normalise levels (``6`` = ``6.0``),
              build the combination label, drop combinations below ``min_combination_size``,
              mark the holdout: the last ``test_size`` share of ``columns.time`` (a seeded
              random share of the rows without one, stated in the facts)
``quantize``  bin the target (edges learned on the training rows of each segment of
              ``columns.group``), one normalised histogram per combination (training rows)
``choose_k``  scan K on the training period alone: histograms of its earlier rows are
              clustered and the log score of its later rows decides (smallest K within one
              standard error of the best); silhouette and Calinski-Harabasz second opinions
``cluster``   final K-Means, a profile per cluster (mean of its histograms, quantiles,
              robust HDRs, outliers counted)
``classify``  XGBoost from the attributes to the pattern, scored on held-out *combinations*;
              the predicted distribution (own histogram blended with its pattern's, the
              weight chosen on the training period) scored on the holdout against the
              declared baselines (:mod:`.scoring`); the model

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

from opslens.cluster.profiles import DistributionClusterer, cluster_profiles, describe_profile
from opslens.config import AnalysisConfig, Columns
from opslens.core.columns import require_columns, require_numeric
from opslens.core.recipe import Out, StageContext
from opslens.errors import ConfigError, DataError
from opslens.features.histograms import (
    bin_edges,
    combination_histograms,
    combination_labels,
    drop_small_combinations,
    quantize,
)
from opslens.models.classifier import PatternClassifier, normalize_levels
from opslens.models.metrics import classification_metrics
from opslens.recipes.distribution import plots
from opslens.recipes.distribution.choose_k import choose_k_stage
from opslens.recipes.distribution.params import DistributionParams
from opslens.recipes.distribution.rows import COMB, HOLDOUT, SEGMENT, holdout_mask
from opslens.recipes.distribution.rows import histogram_matrix as _matrix
from opslens.recipes.distribution.rows import segment_of as _segment_of
from opslens.recipes.distribution.scoring import evaluate_holdout

__all__ = [
    "check_columns",
    "choose_k_stage",
    "classify",
    "cluster_stage",
    "prepare",
    "quantize_stage",
]

MAX_ABS_TARGET = 1e100
"""Larger target values are refused: their cubes (skewness) overflow float64."""


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


def _check_target(frame: pl.DataFrame, target: str) -> None:
    """DataError for infinite or absurdly large target values (found before any work)."""
    v = frame[target].cast(pl.Float64)
    n_inf = int(v.is_infinite().sum())
    if n_inf:
        raise DataError(
            f"target column '{target}' holds {n_inf} infinite value(s)",
            fix="remove or fix those rows, or name another column in columns.target",
        )
    big = float(v.abs().fill_nan(None).max() or 0.0)  # type: ignore[arg-type]
    if big > MAX_ABS_TARGET:
        raise DataError(
            f"target column '{target}' has a value of magnitude {big:.3g}, beyond {MAX_ABS_TARGET:.0e}",
            fix="rescale the target (e.g. to minutes or thousands) or remove those rows",
        )


def prepare(ctx: StageContext, raw: pl.DataFrame) -> Out:
    """Check columns and target, normalise levels, label combinations, drop small ones, mark the holdout."""
    p: DistributionParams = ctx.params
    cols = ctx.analysis.columns
    target = str(cols.target)
    where = ctx.source
    require_columns(raw, [target, cols.group, cols.time, *cols.categorical], where=where)
    categorical = _categoricals(raw, cols)
    frame = require_numeric(raw, target, where=where)
    _check_target(frame, target)
    n_rows = frame.height
    finite = frame.filter(pl.col(target).is_finite())
    if finite.height == 0:
        raise DataError(
            f"target column '{target}' has no numeric values (all {n_rows} are null or NaN)",
            fix="name a target column with data, or fix the source",
        )
    lo, hi = p.support
    outside = finite.filter(
        (pl.col(target) < lo if lo is not None else pl.lit(False))
        | (pl.col(target) > hi if hi is not None else pl.lit(False))
    ).height
    if outside:
        raise DataError(
            f"{outside} value(s) of '{target}' lie outside params.support {list(p.support)}",
            fix="fix those rows, or widen or remove params.support",
        )
    levels = [*categorical, *([cols.group] if cols.group else [])]
    keep = [*levels, target] + ([cols.time] if cols.time else [])
    encoded = finite.select(keep).with_columns(
        normalize_levels(finite[c]).fill_null("null").alias(c) for c in levels
    )
    labelled = combination_labels(encoded, levels, name=COMB)
    kept, small = drop_small_combinations(
        labelled, comb=COMB, min_size=p.min_combination_size, setting="params.min_combination_size"
    )
    mask, split = holdout_mask(kept, cols.time, p.test_size, ctx.random_state)
    kept = kept.with_columns(pl.Series(HOLDOUT, mask))
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
        "holdout_rows": int(mask.sum()),
        **split,
        "target_summary": finite.select(
            mean=pl.col(target).mean(),
            median=pl.col(target).median(),
            min=pl.col(target).min(),
            max=pl.col(target).max(),
        ).row(0, named=True),
    }
    figure = plots.plot_initial_distributions(
        finite, target=target, categorical=categorical, unit=p.unit
    )
    return Out(values={"prepared": kept}, facts=facts, plots={"initial_distributions": figure})


def quantize_stage(ctx: StageContext, prepared: pl.DataFrame) -> Out:
    """Bin edges per segment from its training rows; histograms of the training rows per combination."""
    p: DistributionParams = ctx.params
    target = str(ctx.analysis.columns.target)
    group = ctx.analysis.columns.group
    train = prepared.filter(~pl.col(HOLDOUT))
    seg_all = _segment_of(prepared, group)
    seg_train = _segment_of(train, group)
    values = train[target].to_numpy()
    every = prepared[target].to_numpy()
    per_segment = {}
    for seg in sorted(set(seg_all.tolist())):
        v = values[seg_train == seg]
        per_segment[seg] = bin_edges(
            v if v.size else every[seg_all == seg], n_bins=p.n_bins, method=p.binning, clip=p.clip
        )
    edges: np.ndarray | dict[str, np.ndarray] = per_segment if group else per_segment["all"]
    quantized = quantize(prepared, target=target, edges=edges, group=group, name="bin")
    n_bins = max(len(e) - 1 for e in per_segment.values())
    hist = combination_histograms(
        quantized.filter(~pl.col(HOLDOUT)),
        comb=COMB,
        bin="bin",
        n_bins=n_bins,
        group=group,
        count_by=ctx.engine.count_by,
    )
    table = hist.to_frame(comb=COMB, group=SEGMENT)
    if group is None:
        table = table.with_columns(pl.lit("all").alias(SEGMENT))
    return Out(
        values={"quantized": quantized, "histograms": table, "edges": edges},
        facts={
            "n_bins": n_bins,
            "binning": p.binning,
            "segments": sorted(per_segment) if group else None,
            "histograms": len(hist.combinations),
        },
    )


def cluster_stage(
    ctx: StageContext,
    quantized: pl.DataFrame,
    histograms: pl.DataFrame,
    k_choice: dict[str, Any],
    edges: Any,
) -> Out:
    """Final K-Means on the histograms, then a profile per cluster (its mean histogram: theirs)."""
    p: DistributionParams = ctx.params
    target = str(ctx.analysis.columns.target)
    X = _matrix(histograms)
    model = DistributionClusterer(n_clusters=int(k_choice["k"]), random_state=ctx.random_state)
    model.fit(X)
    assignment = histograms.select(COMB, SEGMENT, "n_rows").with_columns(
        pl.Series("cluster", model.labels_, dtype=pl.Int64)
    )
    means = {int(c): X[model.labels_ == c].mean(axis=0).tolist() for c in np.unique(model.labels_)}
    rows = quantized.join(assignment.select(COMB, "cluster"), on=COMB, how="inner")
    profiles = cluster_profiles(
        rows,
        target=target,
        cluster="cluster",
        coverages=p.hdr_coverages,
        comb=COMB,
        mean_histograms=means,
        support=p.support,
    )
    noun = "rows"
    descriptions = [
        describe_profile(r, unit=p.unit, noun=noun, coverage=round(p.hdr_coverages[1] * 100))
        for r in profiles.iter_rows(named=True)
    ]
    members = assignment.sort(["n_rows", COMB], descending=[True, False])
    facts = {
        "k": model.n_clusters_,
        "clusters": [
            {**{k: v for k, v in r.items() if k != "mean_histogram"}, "description": d}
            for r, d in zip(profiles.iter_rows(named=True), descriptions, strict=True)
        ],
        "members": [
            {"combination": c, "cluster": int(k), "rows": int(n)}
            for c, k, n in members.select(COMB, "cluster", "n_rows").head(30).iter_rows()
        ],
        "inertia": model.inertia_,
        "unit": p.unit,
        "outliers": int(profiles["n_outliers"].sum()),
        "outlier_max": profiles["outlier_max"].max(),
    }
    values = {
        int(c): part[target].to_numpy()
        for (c,), part in rows.group_by("cluster", maintain_order=True)
    }
    figure = plots.plot_cluster_profiles(
        profiles, values=values, xlabel=plots.axis_label(target, p.unit)
    )
    return Out(
        values={"clusters": assignment, "profiles": profiles},
        facts=facts,
        plots={"cluster_profiles": figure},
    )


def _features(quantized: pl.DataFrame, target: str, time: str | None) -> list[str]:
    return [c for c in quantized.columns if c not in {COMB, "bin", target, time, HOLDOUT}]


def classify(
    ctx: StageContext,
    quantized: pl.DataFrame,
    histograms: pl.DataFrame,
    clusters: pl.DataFrame,
    profiles: pl.DataFrame,
    edges: Any,
) -> Out:
    """The pattern classifier, the predicted distribution scored on the holdout, and the model."""
    placed = _classifier(ctx, quantized, clusters)
    scored = evaluate_holdout(ctx, quantized, histograms, clusters, profiles, edges, placed.values)
    return Out(
        values={},
        facts={**placed.facts, "holdout_scores": scored.facts},
        metrics=scored.metrics,
        plots={**placed.plots, **scored.plots},
        tables={**placed.tables, **scored.tables},
        model=scored.model,
        baselines=scored.baselines,
    )


def _classifier(ctx: StageContext, quantized: pl.DataFrame, clusters: pl.DataFrame) -> Out:
    """XGBoost from the attributes to the pattern: scored on held-out combinations, then refit on all."""
    from sklearn.model_selection import GroupShuffleSplit

    p: DistributionParams = ctx.params
    cols = ctx.analysis.columns
    features = _features(quantized, str(cols.target), cols.time)
    rows = quantized.join(clusters.select(COMB, "cluster"), on=COMB, how="inner")
    y = rows["cluster"].to_numpy()
    X = rows.select(features)
    settings: dict[str, Any] = {
        "n_estimators": p.xgboost.n_estimators,
        "max_depth": p.xgboost.max_depth,
        "learning_rate": p.xgboost.learning_rate,
        "random_state": ctx.random_state,
    }
    # split the combinations (not the rows): one group per combination, sorted
    combos = clusters[COMB].sort()
    split = GroupShuffleSplit(n_splits=1, test_size=p.test_size, random_state=ctx.random_state)
    _, test_c = next(split.split(np.zeros(combos.len()), groups=combos.to_numpy()))
    is_test = rows[COMB].is_in(combos.gather(test_c).implode()).to_numpy()
    train_idx, test_idx = np.flatnonzero(~is_test), np.flatnonzero(is_test)
    m: dict[str, Any] = {"n": 0, "classes": [], "accuracy": None, "auroc_weighted": None}
    m.update(per_class={}, confusion=[])
    held_out = rows[test_idx]
    if np.unique(y[train_idx]).size >= 2:
        probe = PatternClassifier(features, **settings).fit(X[train_idx], y[train_idx])
        proba = probe.predict_proba(X[test_idx])
        known = np.isin(y[test_idx], probe.classes_)
        m = classification_metrics(y[test_idx][known], proba[known], probe.classes_).to_dict()
        held_out = held_out.select([*features, str(cols.target), "cluster"]).with_columns(
            pl.Series("predicted", probe.classes_[proba.argmax(axis=1)], dtype=pl.Int64)
        )
    clf = PatternClassifier(features, **settings).fit(X, y)
    facts = {
        **m,
        "split": "held-out combinations",
        "train_combinations": combos.len() - len(test_c),
        "test_combinations": len(test_c),
        "train_rows": len(train_idx),
        "test_rows": len(test_idx),
        "features": features,
    }
    figs = {}
    if m["confusion"]:
        figs["confusion_matrix"] = plots.plot_confusion_matrix(
            np.asarray(m["confusion"]), list(m["classes"])
        )
    return Out(
        values={"model": clf, "metrics": facts},
        facts=facts,
        plots=figs,
        tables={"classifier_holdout": held_out.head(20_000)},
    )
