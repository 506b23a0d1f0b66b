"""Stages of the distribution recipe; each a pure function ``(ctx, **inputs) -> Out``.

``prepare``   identify columns, refuse meaningless targets, normalise levels (``6`` = ``6.0``),
              build the combination label, drop combinations below ``min_combination_size``,
              mark the holdout: the last ``test_size`` share of ``columns.time``
``quantize``  bin the target (edges learned on the training rows of each segment of
              ``columns.group``), one normalised histogram per combination (training rows)
``choose_k``  scan K: held-out log score decides (smallest K within one standard error of
              the best); silhouette and Calinski-Harabasz recorded as second opinions
``cluster``   final K-Means, a profile per cluster (mean of its histograms, quantiles,
              robust HDRs, outliers counted)
``classify``  XGBoost from the attributes to the pattern, scored on held-out *combinations*;
              the predicted distribution (own histogram blended with its pattern's) scored on
              the holdout against the global and the own-histogram baselines; the model

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

from opslens.cluster.kselect import smallest_within_one_se
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
from opslens.models.classifier import PatternClassifier, normalize_levels
from opslens.models.metrics import classification_metrics, log_score
from opslens.recipes.distribution import plots
from opslens.recipes.distribution.evaluate import STRENGTHS, blend, distribution_scores
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
HOLDOUT = "holdout"
MAX_SCORED = 100_000
"""At most this many holdout rows (a seeded sample) score the predicted distributions."""
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


def _holdout(
    frame: pl.DataFrame, time: str | None, share: float, seed: int
) -> tuple[np.ndarray, dict[str, Any]]:
    """The holdout rows: the last ``share`` of ``time`` (seeded random rows without a time column)."""
    if time is None:
        mask = np.random.default_rng(seed).random(frame.height) < share
        return mask, {"holdout": "random rows (no columns.time)"}
    col = frame[time]
    if not (col.dtype.is_temporal() or col.dtype.is_numeric()):
        raise DataError(
            f"time column '{time}' is {col.dtype}, not a date/time or number",
            fix="name a date/time column in columns.time (or parse it in the source)",
        )
    t = col.to_physical().cast(pl.Float64).fill_null(np.nan).to_numpy()
    cutoff = float(np.nanquantile(t, 1.0 - share))
    mask = t > cutoff
    if not mask.any() or mask.all():
        raise DataError(
            f"the last {share:.0%} of '{time}' holds no rows, or all of them (too few distinct times)",
            fix="give columns.time more distinct values or change params.test_size",
        )
    first = col.filter(pl.Series(mask)).min()
    return mask, {"holdout": f"the last {share:.0%} of {time}", "holdout_from": str(first)}


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
    mask, split = _holdout(kept, cols.time, p.test_size, ctx.random_state)
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


def _segment_of(frame: pl.DataFrame, group: str | None) -> np.ndarray:
    if group is None:
        return np.full(frame.height, "all", dtype=object)
    return frame[group].cast(pl.String).to_numpy().astype(object)


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


def _matrix(histograms: pl.DataFrame) -> np.ndarray:
    return np.vstack(histograms["histogram"].to_list()) if histograms.height else np.empty((0, 0))


def _index(keys: pl.Series, histograms: pl.DataFrame) -> np.ndarray:
    """Row of ``histograms`` holding each key's combination (-1: no training rows)."""
    lookup = dict(zip(histograms[COMB].to_list(), range(histograms.height), strict=True))
    return keys.replace_strict(lookup, default=-1, return_dtype=pl.Int64).to_numpy()


def _holdout_rows(quantized: pl.DataFrame, histograms: pl.DataFrame) -> pl.DataFrame:
    test = quantized.filter(pl.col(HOLDOUT) & pl.col("bin").is_not_null())
    return test.with_columns(pl.Series("_h", _index(test[COMB], histograms)))


def _clustered_se(scores: np.ndarray, unit: np.ndarray) -> float:
    """Standard error of the mean of ``scores`` clustered by ``unit`` (rows of one combination move together)."""
    resid = np.bincount(unit, weights=scores - scores.mean())
    return float(np.sqrt(np.sum(resid**2)) / scores.size)


def choose_k_stage(ctx: StageContext, quantized: pl.DataFrame, histograms: pl.DataFrame) -> Out:
    """Scan K: the held-out log score of each combination's pattern decides (one-SE rule)."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import calinski_harabasz_score, silhouette_score
    from threadpoolctl import threadpool_limits

    p: DistributionParams = ctx.params
    X = _matrix(histograms)
    if p.n_clusters is not None:
        k = p.n_clusters
        reason = f"K={k} was given in params.n_clusters"
        curve: list[dict[str, float]] = []
    else:
        if X.shape[0] < 3:
            raise DataError(
                f"only {X.shape[0]} combination(s) remain after filtering; patterns need at least 3",
                fix="lower params.min_combination_size or add categorical columns with more levels",
            )
        test = _holdout_rows(quantized, histograms).filter(pl.col("_h") >= 0)
        if test.height < 2:
            raise DataError(
                "the holdout holds no rows of combinations seen in training",
                fix="raise params.test_size or give columns.time a longer span",
            )
        h = test["_h"].to_numpy()
        b = test["bin"].to_numpy()
        distinct = np.unique(X, axis=0).shape[0]
        k_hi = min(p.k_max, X.shape[0] - 1, distinct)
        if k_hi < p.k_min:
            raise DataError(
                f"only {X.shape[0]} combinations ({distinct} distinct histograms) to cluster, "
                f"too few for K >= {p.k_min}",
                fix="lower params.k_min, or params.min_combination_size to keep more combinations",
            )
        curve = []
        for k in range(p.k_min, k_hi + 1):
            with threadpool_limits(1):  # a few hundred rows: threads cost more than they give
                km = KMeans(n_clusters=k, n_init=10, random_state=ctx.random_state)
                labels = km.fit_predict(X)
            centers = np.vstack([X[labels == j].mean(axis=0) for j in range(k)])
            scores = log_score(centers[labels[h]], b)
            entry = {
                "k": float(k),
                "log_score": float(scores.mean()),
                "log_score_se": _clustered_se(scores, h),
            }
            if len(np.unique(labels)) > 1:
                size = 5000 if X.shape[0] > 5000 else None
                entry["silhouette"] = float(
                    silhouette_score(X, labels, sample_size=size, random_state=ctx.random_state)
                )
                entry["calinski_harabasz"] = float(calinski_harabasz_score(X, labels))
            curve.append(entry)
        k, reason = smallest_within_one_se(curve)
    figs = {"k_selection": plots.plot_k_scores(curve, k)} if curve else {}
    return Out(
        values={"k_choice": {"k": k, "reason": reason, "curve": curve}},
        facts={"k": k, "reason": reason, "curve": curve},
        plots=figs,
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
    scored = _evaluate(ctx, quantized, histograms, clusters, profiles, edges, placed.values)
    return Out(
        values={},
        facts={**placed.facts, "holdout_scores": scored.facts},
        metrics=scored.metrics,
        plots={**placed.plots, **scored.plots},
        tables={**placed.tables, **scored.tables},
        model=scored.model,
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


def _mean_log_score(
    pred: np.ndarray, bins: np.ndarray, segment: np.ndarray, edges: dict[str, np.ndarray]
) -> float:
    """Mean log score of ``pred`` rows, each on its segment's bins."""
    total = 0.0
    for seg, e in edges.items():
        mask = segment == seg
        if mask.any():
            q = pred[mask][:, : len(e) - 1]
            q = q / np.maximum(q.sum(axis=1, keepdims=True), 1e-300)
            total += float(log_score(q, bins[mask]).sum())
    return total / max(bins.size, 1)


def _global(
    quantized: pl.DataFrame, segs: list[str], group: str | None, n_bins: int
) -> dict[str, np.ndarray]:
    train = quantized.filter(~pl.col(HOLDOUT) & pl.col("bin").is_not_null())
    seg = _segment_of(train, group)
    b = train["bin"].to_numpy()
    out = {}
    for s in segs:
        counts = np.bincount(b[seg == s], minlength=n_bins).astype(float)
        out[s] = counts / max(counts.sum(), 1.0)
    return out


def _evaluate(
    ctx: StageContext,
    quantized: pl.DataFrame,
    histograms: pl.DataFrame,
    clusters: pl.DataFrame,
    profiles: pl.DataFrame,
    edges: Any,
    classifier: dict[str, Any],
) -> Out:
    """Score the predicted distribution on the holdout against two baselines; choose the blend; the model.

    Every earlier stage emits no metrics, so these lead the run's metrics (what ``opslens runs`` shows).
    """
    p: DistributionParams = ctx.params
    cols = ctx.analysis.columns
    target = str(cols.target)
    group = cols.group
    clf: PatternClassifier = classifier["model"]
    edge_map = edges if isinstance(edges, dict) else {"all": edges}
    X = _matrix(histograms)
    n_bins = X.shape[1]
    counts = histograms["n_rows"].to_numpy().astype(float)
    cluster_of = clusters["cluster"].to_numpy()
    centers = np.vstack(
        [np.asarray(r["mean_histogram"]) for r in profiles.sort("cluster").iter_rows(named=True)]
    )
    ids = profiles.sort("cluster")["cluster"].to_numpy()
    pos = {int(c): i for i, c in enumerate(ids)}
    glob = _global(quantized, sorted(edge_map), group, n_bins)

    test = _holdout_rows(quantized, histograms)
    n_holdout = test.height
    if n_holdout > MAX_SCORED:  # the scores' standard error is ~0.005 already; bound the cost
        test = test.sample(MAX_SCORED, seed=ctx.random_state)
    h = test["_h"].to_numpy()
    seen = h >= 0
    seg = _segment_of(test, group)
    names, code = np.unique(seg.astype(str), return_inverse=True)
    g = np.vstack([glob[str(s)] for s in names])[code] if test.height else np.empty((0, n_bins))
    own = np.where(seen[:, None], X[np.maximum(h, 0)], g)
    n = np.where(seen, counts[np.maximum(h, 0)], 0.0)
    pattern = np.empty_like(own)
    pattern[seen] = centers[np.searchsorted(ids, cluster_of[h[seen]])]
    if (~seen).any():
        proba = clf.predict_proba(test.filter(pl.Series(~seen)).select(clf.categorical))
        pattern[~seen] = proba @ centers[[pos[int(c)] for c in clf.classes_]]
    y = test[target].to_numpy()
    b = test["bin"].to_numpy()
    score = {
        "observed": y,
        "bins": b,
        "segment": seg,
        "edges": edge_map,
        "coverages": p.hdr_coverages,
    }
    # the strength is chosen by log score alone; the chosen blend then gets every score
    scan = [
        {"strength": s, "log_score": _mean_log_score(blend(own, n, pattern, s), b, seg, edge_map)}
        for s in STRENGTHS
    ]
    strength = float(max(scan, key=lambda r: r["log_score"])["strength"])
    best = distribution_scores(blend(own, n, pattern, strength), **score)  # type: ignore[arg-type]
    own_scores = distribution_scores(own, **score)  # type: ignore[arg-type]
    glob_scores = distribution_scores(g, **score)  # type: ignore[arg-type]
    cov = [round(c * 100) for c in p.hdr_coverages]
    facts = {
        "test_rows": n_holdout,
        "test_rows_scored": int(test.height),
        "test_rows_unseen_combination": int((~seen).sum()),
        "strength": strength,
        "strength_scan": [
            {
                "strength": r["strength"] if np.isfinite(r["strength"]) else None,
                "log_score": r["log_score"],
            }
            for r in scan
        ],
        "blended": best,
        "own_histogram": own_scores,
        "global_histogram": glob_scores,
        "coverages": cov,
    }
    cm = classifier["metrics"]
    metrics = {
        "log_score": best["log_score"],
        "log_score_own": own_scores["log_score"],
        "log_score_global": glob_scores["log_score"],
        f"coverage_{cov[1]}": best[f"coverage_{cov[1]}"],
        "crps": best["crps"],
        f"coverage_{cov[0]}": best[f"coverage_{cov[0]}"],
        "crps_own": own_scores["crps"],
        "crps_global": glob_scores["crps"],
        "accuracy_unseen_combinations": float(
            cm["accuracy"] if cm["accuracy"] is not None else np.nan
        ),
        "auroc_unseen_combinations": float(
            cm["auroc_weighted"] if cm["auroc_weighted"] is not None else np.nan
        ),
        "k": float(profiles.height),
        "combinations": float(histograms.height),
        "rows": float(quantized.height),
    }
    # the attributes of each clustered combination, in the histograms' order
    attrs = quantized.unique(COMB, keep="first").select(COMB, *clf.categorical)
    attrs = histograms.select(COMB).join(attrs, on=COMB, how="left", maintain_order="left")
    predictor = PatternPredictor(
        clf,
        list(profiles.iter_rows(named=True)),
        edges=edge_map,
        target=target,
        unit=p.unit,
        group=group,
        combinations=[list(r) for r in attrs.select(clf.categorical).iter_rows()],
        histograms=X,
        counts=counts,
        cluster_of=cluster_of,
        strength=strength,
        coverages=p.hdr_coverages,
        support=p.support,
    )
    example = quantized.select(clf.categorical).head(5)
    holdout_table = (
        test.head(2000)
        .select([*clf.categorical, target])
        .pipe(lambda f: f.hstack(predictor.predict_frame(f)))
    )
    return Out(
        values={},
        facts=facts,
        metrics=metrics,
        plots={"holdout_scores": plots.plot_scores(facts)},
        tables={"predictions_holdout": holdout_table},
        model=ModelArtifact(
            model=predictor,
            input_example=example,
            metadata={
                **clf.to_metadata(),
                "recipe": "distribution",
                "target": target,
                "unit": p.unit,
                "inputs": list(clf.categorical),
                "strength": strength,
            },
        ),
    )
