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

``prepare`` and ``quantize`` work on engine frames: with ``engine: spark`` the rows are
read, checked, labelled, filtered and counted by the executors. What needs the rows
themselves works on :func:`held_rows`: every kept row up to ``params.max_rows``, else a
seeded uniform sample drawn per row position (the same rows on every engine).

Example:
    >>> import polars as pl
    >>> from opslens.config import Columns
    >>> from opslens.core.engine import LocalEngine
    >>> frame = pl.DataFrame({"route": ["A", "B", "c"], "minutes": [1.0, 2.0, 3.0]})
    >>> _categoricals(LocalEngine(), frame, frame, Columns(target="minutes"))
    ['route']
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import polars as pl

from opslens.cluster.profiles import DistributionClusterer, cluster_profiles, describe_profile
from opslens.config import AnalysisConfig, Columns
from opslens.core.columns import require_columns, require_numeric
from opslens.core.engine import Engine
from opslens.core.recipe import Out, StageContext
from opslens.errors import ConfigError, DataError
from opslens.features.histograms import (
    bin_edges,
    combination_labels,
    histogram_keys,
    histograms_from_counts,
    quantize,
    small_combinations,
)
from opslens.models.classifier import PatternClassifier, normalize_levels
from opslens.models.metrics import classification_metrics
from opslens.recipes.distribution import plots
from opslens.recipes.distribution.choose_k import choose_k_stage
from opslens.recipes.distribution.params import DistributionParams
from opslens.recipes.distribution.rows import (
    COMB,
    HOLDOUT,
    POSITION,
    SEGMENT,
    draws_at,
    holdout_cutoff,
    with_holdout,
)
from opslens.recipes.distribution.rows import histogram_matrix as _matrix
from opslens.recipes.distribution.rows import segment_of as _segment_of
from opslens.recipes.distribution.scoring import evaluate_holdout

__all__ = [
    "check_columns",
    "choose_k_stage",
    "classify",
    "cluster_stage",
    "held_rows",
    "prepare",
    "quantize_stage",
]

MAX_ABS_TARGET = 1e100
"""Larger target values are refused: their cubes (skewness) overflow float64."""
SAMPLE_SEED = 3
"""The held sample draws with ``random_state + 3`` (the holdout with + 0, the inner split + 1)."""


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


def _categoricals(engine: Engine, frame: Any, head: pl.DataFrame, cols: Columns) -> list[str]:
    """The configured categorical columns, or the text columns with at most 50 levels."""
    if cols.categorical:
        return list(cols.categorical)
    skip = {cols.time, cols.target, cols.group, cols.entity}
    text = [
        name
        for name, dtype in head.schema.items()
        if name not in skip
        and (dtype in (pl.String, pl.Categorical, pl.Boolean) or isinstance(dtype, pl.Enum))
    ]
    levels = engine.summarise(frame, {n: ("n_unique", n) for n in text}).row(0) if text else ()
    found = [name for name, n in zip(text, levels, strict=True) if n <= 50]
    if not found:
        raise DataError(
            "no categorical columns were named and none were found (text columns with at most 50 levels)",
            fix="list them in columns.categorical",
        )
    return found


def _checked(
    batch: pl.DataFrame, *, target: str, support: tuple[float | None, float | None]
) -> pl.DataFrame:
    """What :func:`prepare` checks of each row's target: text that is no number, an infinite
    value, its magnitude, a finite value outside ``support``; and the finite value itself."""
    raw = pl.col(target)
    num = raw.cast(pl.Float64, strict=False)
    finite = num.is_finite().fill_null(False)
    lo, hi = support
    outside = pl.lit(False)
    if lo is not None:
        outside = outside | (num < lo)
    if hi is not None:
        outside = outside | (num > hi)
    return batch.select(
        (num.is_null() & raw.is_not_null()).cast(pl.Int64).alias("_text"),
        num.is_infinite().fill_null(False).cast(pl.Int64).alias("_inf"),
        num.abs().fill_nan(None).alias("_abs"),
        finite.cast(pl.Int64).alias("_finite"),
        (finite & outside).fill_null(False).cast(pl.Int64).alias("_outside"),
        pl.when(finite).then(num).alias("_value"),
    )


CHECKS = {
    "rows": ("count", "_finite"),
    "text": ("sum", "_text"),
    "inf": ("sum", "_inf"),
    "big": ("max", "_abs"),
    "finite": ("sum", "_finite"),
    "outside": ("sum", "_outside"),
    "mean": ("mean", "_value"),
    "min": ("min", "_value"),
    "max": ("max", "_value"),
}
"""The summary of :func:`_checked` rows: one pass of the engine over the source."""


def _not_numbers(batch: pl.DataFrame, *, target: str) -> pl.DataFrame:
    text = pl.col(target)
    return batch.select(target).filter(
        text.is_not_null() & text.cast(pl.Float64, strict=False).is_null()
    )


def _check_target(
    engine: Engine, raw: Any, target: str, where: str, support: Any
) -> tuple[dict[str, Any], Any]:
    """The target's checks in one pass (:data:`CHECKS`), and the checked rows (an engine
    frame); DataError for text that is no number, infinite or absurdly large values, no
    value at all, values outside ``params.support``."""
    checked = engine.map_batches(raw, partial(_checked, target=target, support=support), keep=True)
    seen = engine.summarise(checked, CHECKS).row(0, named=True)
    n = {k: int(seen[k] or 0) for k in ("rows", "text", "inf", "finite", "outside")}
    if n["text"]:
        example = engine.head(
            engine.map_batches(raw, partial(_not_numbers, target=target), keep=True), 1
        )[target][0]
        raise DataError(
            f"column '{target}' in {where} is not numeric: {n['text']} value(s) such as "
            f"{example!r} are not numbers",
            fix=f"clean column '{target}' or name a numeric column",
        )
    if n["inf"]:
        raise DataError(
            f"target column '{target}' holds {n['inf']} infinite value(s)",
            fix="remove or fix those rows, or name another column in columns.target",
        )
    big = float(seen["big"] or 0.0)
    if big > MAX_ABS_TARGET:
        raise DataError(
            f"target column '{target}' has a value of magnitude {big:.3g}, beyond {MAX_ABS_TARGET:.0e}",
            fix="rescale the target (e.g. to minutes or thousands) or remove those rows",
        )
    if n["finite"] == 0:
        raise DataError(
            f"target column '{target}' has no numeric values (all {n['rows']} are null or NaN)",
            fix="name a target column with data, or fix the source",
        )
    if n["outside"]:
        raise DataError(
            f"{n['outside']} value(s) of '{target}' lie outside params.support {list(support)}",
            fix="fix those rows, or widen or remove params.support",
        )
    return {**seen, **n}, checked


def _values_in(batch: pl.DataFrame, *, edges: np.ndarray, buckets: list[int]) -> pl.DataFrame:
    """The finite target values of the batch (``_value``) with their bucket among ``edges``
    (``_bucket``), only those in ``buckets`` when given."""
    values = batch.filter(pl.col("_value").is_not_null()).select("_value")
    bucket = np.searchsorted(edges, values["_value"].to_numpy(), side="right")
    out = values.with_columns(pl.Series("_bucket", bucket, dtype=pl.Int64))
    return out.filter(pl.col("_bucket").is_in(buckets)) if buckets else out


def exact_median(engine: Engine, checked: Any, n: int, sample: np.ndarray) -> float | None:
    """The median of the ``n`` finite ``_value`` of ``checked`` (an engine frame), exactly
    as polars gives it, in two passes of the engine instead of a sort: the values counted
    per bucket between quantiles of ``sample``, then the values of the one or two buckets
    holding the middle ranks brought here.

    Example:
        >>> from opslens.core.engine import LocalEngine
        >>> f = pl.DataFrame({"_value": [5.0, None, 1.0, 4.0, 2.0]})
        >>> exact_median(LocalEngine(), f, 4, np.array([1.0, 2.0])), f["_value"].median()
        (3.0, 3.0)
    """
    if n == 0:
        return None
    edges = np.unique(np.quantile(sample, np.linspace(0, 1, 257))) if sample.size else sample
    count = partial(_values_in, edges=edges, buckets=[])
    counts = engine.count_by(engine.map_batches(checked, count, keep=True), ["_bucket"])
    counts = counts.sort("_bucket").with_columns(end=pl.col("count").cast(pl.Int64).cum_sum())
    ends, names = counts["end"].to_numpy(), counts["_bucket"].to_numpy()
    ranks = [(n - 1) // 2, n // 2]
    at = np.searchsorted(ends, ranks, side="right")  # the bucket holding each rank
    pick = partial(_values_in, edges=edges, buckets=sorted({int(names[i]) for i in at}))
    values = engine.collect(engine.map_batches(checked, pick, keep=True))["_value"].sort()
    before = int(ends[at[0] - 1]) if at[0] else 0  # values in the buckets below
    middle = values.gather([r - before for r in ranks])
    return float(middle.median())  # type: ignore[arg-type]


def _rows(batch: pl.DataFrame, *, target: str, levels: list[str], keep: list[str]) -> pl.DataFrame:
    """The rows with a finite target (as a number), levels normalised (``6`` = ``6.0``, null
    as ``"null"``), the combination labelled."""
    finite = batch.with_columns(pl.col(target).cast(pl.Float64, strict=False)).filter(
        pl.col(target).is_finite()
    )
    encoded = finite.select(keep).with_columns(
        normalize_levels(finite[c]).fill_null("null").alias(c) for c in levels
    )
    return combination_labels(encoded, levels, name=COMB)


def _of(batch: pl.DataFrame, *, combinations: list[str]) -> pl.DataFrame:
    return batch.filter(pl.col(COMB).is_in(combinations))


def _sampled(batch: pl.DataFrame, *, rate: float, seed: int) -> pl.DataFrame:
    return batch.filter(pl.Series(draws_at(batch[POSITION].to_numpy(), seed) < rate))


def held_rows(engine: Engine, frame: Any, n_rows: int, max_rows: int, seed: int) -> pl.DataFrame:
    """The kept rows brought into this process, in their order: every one up to ``max_rows``
    (``params.max_rows``), else a seeded uniform sample of about that many (a draw per
    position: the same rows on every engine)."""
    if n_rows > max_rows:
        frame = engine.map_batches(
            frame, partial(_sampled, rate=max_rows / n_rows, seed=seed), keep=True
        )
    return engine.collect(frame).sort(POSITION)


def prepare(ctx: StageContext, raw: Any) -> Out:
    """Check columns and target, normalise levels, label combinations, drop small ones, mark
    the holdout. ``raw`` is an engine frame: on Spark all of it runs on the executors, and
    this process holds only counts and the rows of :func:`held_rows`."""
    p: DistributionParams = ctx.params
    engine = ctx.engine
    cols = ctx.analysis.columns
    target = str(cols.target)
    where = ctx.source
    head = engine.head(raw, 0)
    require_columns(head, [target, cols.group, cols.time, *cols.categorical], where=where)
    categorical = _categoricals(engine, raw, head, cols)
    require_numeric(head, target, where=where)  # the type; text is checked row by row
    seen, checked = _check_target(engine, raw, target, where, p.support)
    levels = [*categorical, *([cols.group] if cols.group else [])]
    keep = [*levels, target] + ([cols.time] if cols.time else [])
    labelled = engine.map_batches(
        raw, partial(_rows, target=target, levels=levels, keep=keep), keep=True
    )
    big, small = small_combinations(
        engine.count_by(labelled, [COMB]),
        comb=COMB,
        min_size=p.min_combination_size,
        setting="params.min_combination_size",
    )
    if small.n_combinations_dropped:
        labelled = engine.map_batches(labelled, partial(_of, combinations=big), keep=True)
    kept = engine.positions(labelled, POSITION)
    held = held_rows(engine, kept, small.n_rows_kept, p.max_rows, ctx.random_state + SAMPLE_SEED)
    if cols.time:
        cutoff, split = holdout_cutoff(held[cols.time], p.test_size)
    else:
        cutoff = 0.0
        split = {"holdout": f"a seeded random {p.test_size:.0%} of the rows (no columns.time)"}
    flag = partial(
        with_holdout, time=cols.time, cutoff=cutoff, share=p.test_size, seed=ctx.random_state
    )
    prepared = engine.map_batches(kept, flag, keep=True)
    held = flag(held)
    parts = engine.count_by(prepared, [HOLDOUT])
    numeric = [n for n, d in head.schema.items() if d.is_numeric()]
    facts = {
        "rows_read": seen["rows"],
        "rows_without_target": seen["rows"] - seen["finite"],
        "categorical": categorical,
        "numeric_columns": numeric,
        "target": target,
        "group": cols.group,
        "combinations_total": small.n_combinations_kept + small.n_combinations_dropped,
        "combinations_kept": small.n_combinations_kept,
        "combinations_dropped": small.n_combinations_dropped,
        "rows_dropped_small": small.n_rows_dropped,
        "share_rows_dropped_small": small.share_rows_dropped,
        "rows_kept": small.n_rows_kept,
        "rows_held": held.height,
        "min_combination_size": p.min_combination_size,
        "holdout_rows": int(parts.filter(pl.col(HOLDOUT))["count"].sum()),
        **split,
        # the mean to 12 significant digits: engines add the values in different orders
        "target_summary": {
            "mean": float(f"{seen['mean']:.12g}"),
            "median": exact_median(engine, checked, seen["finite"], held[target].to_numpy()),
            "min": seen["min"],
            "max": seen["max"],
        },
    }
    figure = plots.plot_initial_distributions(
        held, target=target, categorical=categorical, unit=p.unit
    )
    return Out(values={"prepared": prepared}, facts=facts, plots={"initial_distributions": figure})


def _train_keys(batch: pl.DataFrame, *, target: str, edges: Any, group: str | None) -> pl.DataFrame:
    """The histogram keys (:func:`histogram_keys`) of the batch's binned training rows."""
    binned = quantize(batch.filter(~pl.col(HOLDOUT)), target=target, edges=edges, group=group)
    return histogram_keys(binned.filter(pl.col("bin").is_not_null()), comb=COMB, group=group)


def quantize_stage(ctx: StageContext, prepared: Any) -> Out:
    """Bin edges per segment from its training rows (those held here); the histograms of
    every training row per combination, counted by the engine (Spark: the executors)."""
    p: DistributionParams = ctx.params
    engine = ctx.engine
    target = str(ctx.analysis.columns.target)
    group = ctx.analysis.columns.group
    if POSITION not in engine.head(prepared, 0).columns:  # prepared by an earlier version
        prepared = engine.positions(prepared, POSITION)
    held = held_rows(
        engine, prepared, engine.height(prepared), p.max_rows, ctx.random_state + SAMPLE_SEED
    ).drop(POSITION)
    train = held.filter(~pl.col(HOLDOUT))
    seg_all = _segment_of(held, group)
    seg_train = _segment_of(train, group)
    values = train[target].to_numpy()
    every = held[target].to_numpy()
    segments = set(seg_all.tolist())
    if group:  # a segment the held rows may miss (a sample): binned as all of them are
        segments |= set(engine.count_by(prepared, [group])[group].cast(pl.String).to_list())
    per_segment = {}
    for seg in sorted(segments):
        v = values[seg_train == seg]
        v = v if v.size else every[seg_all == seg]
        per_segment[seg] = bin_edges(
            v if v.size else every, n_bins=p.n_bins, method=p.binning, clip=p.clip
        )
    edges: np.ndarray | dict[str, np.ndarray] = per_segment if group else per_segment["all"]
    quantized = quantize(held, target=target, edges=edges, group=group, name="bin")
    n_bins = max(len(e) - 1 for e in per_segment.values())
    keys = engine.map_batches(
        prepared, partial(_train_keys, target=target, edges=edges, group=group), keep=True
    )
    counts = engine.count_by(keys, [*([group] if group else []), COMB, "bin"])
    if counts.height == 0:
        raise DataError(
            "no training rows with a bin to build histograms from",
            fix="check the target column, or lower params.test_size",
        )
    hist = histograms_from_counts(counts, comb=COMB, bin="bin", n_bins=n_bins, group=group)
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
