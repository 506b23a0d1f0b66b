"""The predicted distribution scored on the holdout against the baselines, and the model built.

The shrinkage strength is chosen on an inner split of the *training* rows (the last
``test_size`` share of their time, or a seeded random share without ``columns.time``):
histograms of the earlier training rows, scored on the later ones. The holdout then
scores the chosen blend once, beside the two declared baselines (each combination's
own histogram, the global one), so the held-out figures are not the best of a scan.

Example:
    >>> BASELINE_LABELS["own"], DEFAULT_STRENGTH
    ("each combination's own histogram", 30.0)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from opslens.core.recipe import ModelArtifact, Out, StageContext
from opslens.models.classifier import PatternClassifier
from opslens.recipes.distribution import plots
from opslens.recipes.distribution.evaluate import (
    baseline_scores,
    blend,
    blend_weight,
    choose_strength,
    row_scores,
)
from opslens.recipes.distribution.params import DistributionParams
from opslens.recipes.distribution.predictor import PatternPredictor
from opslens.recipes.distribution.rows import (
    COMB,
    HOLDOUT,
    histogram_matrix,
    holdout_rows,
    inner_histograms,
    segment_of,
    training_split,
)

__all__ = ["MAX_SCORED", "evaluate_holdout"]

MAX_SCORED = 100_000
"""At most this many holdout rows (a seeded sample) score the predicted distributions."""
DEFAULT_STRENGTH = 30.0
"""The strength used when the training period is too small to split for choosing one."""
BASELINE_LABELS = {"own": "each combination's own histogram", "global": "one global histogram"}


def _global(
    quantized: pl.DataFrame, segs: list[str], group: str | None, n_bins: int
) -> dict[str, np.ndarray]:
    train = quantized.filter(~pl.col(HOLDOUT) & pl.col("bin").is_not_null())
    seg = segment_of(train, group)
    b = train["bin"].to_numpy()
    out = {}
    for s in segs:
        counts = np.bincount(b[seg == s], minlength=n_bins).astype(float)
        out[s] = counts / max(counts.sum(), 1.0)
    return out


def _choose_on_training(
    ctx: StageContext,
    quantized: pl.DataFrame,
    histograms: pl.DataFrame,
    cluster_of: np.ndarray,
    edge_map: dict[str, np.ndarray],
) -> tuple[float, list[dict[str, float]], str]:
    """The strength chosen on the later training rows from histograms of the earlier ones."""
    split = training_split(ctx, quantized, histograms)
    if not split.usable:
        return DEFAULT_STRENGTH, [], "the default (the training period is too small to split)"
    n_bins = histogram_matrix(histograms).shape[1]
    early = ~split.late
    own, n = inner_histograms(
        split.h[early], split.bins[early], n_comb=histograms.height, n_bins=n_bins
    )
    clusters = np.unique(cluster_of)
    fallback = own[n > 0].mean(axis=0)
    centers = np.vstack(
        [
            own[(cluster_of == c) & (n > 0)].mean(axis=0)
            if ((cluster_of == c) & (n > 0)).any()
            else fallback
            for c in clusters
        ]
    )
    rows = np.flatnonzero(split.late)
    if rows.size > MAX_SCORED:
        rows = np.sort(np.random.default_rng(ctx.random_state).choice(rows, MAX_SCORED, False))
    vh = split.h[rows]
    pattern = centers[np.searchsorted(clusters, cluster_of[vh])]
    strength, scan = choose_strength(
        own[vh], n[vh], pattern, bins=split.bins[rows], segment=split.segment[rows], edges=edge_map
    )
    return strength, scan, split.where


def _scores_facts(
    ctx: StageContext, test: pl.DataFrame, preds: dict[str, np.ndarray], edge_map: Any
) -> tuple[dict[str, Any], list[Any]]:
    """Mean scores per prediction and the model-against-baseline comparisons on ``test``."""
    p: DistributionParams = ctx.params
    seg = segment_of(test, ctx.analysis.columns.group)
    rows = {
        k: row_scores(
            v,
            observed=test[str(ctx.analysis.columns.target)].to_numpy(),
            bins=test["bin"].to_numpy(),
            segment=seg,
            edges=edge_map,
            coverages=p.hdr_coverages,
        )
        for k, v in preds.items()
    }
    compared = baseline_scores(
        rows["blended"],
        {name: (label, rows[name]) for name, label in BASELINE_LABELS.items()},
        groups=test[COMB].to_numpy(),
        unit=p.unit,
        random_state=ctx.random_state,
    )
    return {k: r.summary() for k, r in rows.items()}, compared


def evaluate_holdout(
    ctx: StageContext,
    quantized: pl.DataFrame,
    histograms: pl.DataFrame,
    clusters: pl.DataFrame,
    profiles: pl.DataFrame,
    edges: Any,
    classifier: dict[str, Any],
) -> Out:
    """Score the predicted distribution on the holdout against the baselines; the model.

    Every earlier stage emits no metrics, so these lead the run's metrics (what ``opslens runs`` shows).
    """
    p: DistributionParams = ctx.params
    cols = ctx.analysis.columns
    target = str(cols.target)
    group = cols.group
    clf: PatternClassifier = classifier["model"]
    edge_map = edges if isinstance(edges, dict) else {"all": edges}
    X = histogram_matrix(histograms)
    n_bins = X.shape[1]
    counts = histograms["n_rows"].to_numpy().astype(float)
    cluster_of = clusters["cluster"].to_numpy()
    by_cluster = profiles.sort("cluster")
    centers = np.vstack([np.asarray(r["mean_histogram"]) for r in by_cluster.iter_rows(named=True)])
    ids = by_cluster["cluster"].to_numpy()
    pos = {int(c): i for i, c in enumerate(ids)}
    glob = _global(quantized, sorted(edge_map), group, n_bins)
    strength, scan, chosen_on = _choose_on_training(
        ctx, quantized, histograms, cluster_of, edge_map
    )

    test = holdout_rows(quantized, histograms)
    n_holdout = test.height
    if n_holdout > MAX_SCORED:  # the scores' standard error is ~0.005 already; bound the cost
        test = test.sample(MAX_SCORED, seed=ctx.random_state)
    h = test["_h"].to_numpy()
    seen = h >= 0
    names, code = np.unique(segment_of(test, group).astype(str), return_inverse=True)
    g = np.vstack([glob[str(s)] for s in names])[code] if test.height else np.empty((0, n_bins))
    own = np.where(seen[:, None], X[np.maximum(h, 0)], g)
    n = np.where(seen, counts[np.maximum(h, 0)], 0.0)
    pattern = np.empty_like(own)
    pattern[seen] = centers[np.searchsorted(ids, cluster_of[h[seen]])]
    if (~seen).any():
        proba = clf.predict_proba(test.filter(pl.Series(~seen)).select(clf.categorical))
        pattern[~seen] = proba @ centers[[pos[int(c)] for c in clf.classes_]]
    cov = [round(c * 100) for c in p.hdr_coverages]
    summary: dict[str, Any] = {"blended": None, "own": None, "global": None}
    compared: list[Any] = []
    skipped = None
    if test.height:
        preds = {"blended": blend(own, n, pattern, strength), "own": own, "global": g}
        summary, compared = _scores_facts(ctx, test, preds, edge_map)
    else:
        skipped = (
            f"the holdout ({p.test_size:.0%} of the rows, params.test_size) holds no rows, so "
            "neither the model nor its baselines were scored"
        )
    finite = bool(np.isfinite(strength))
    sizes = np.quantile(counts, [0.0, 0.5, 1.0], method="lower") if counts.size else []
    weights = [
        {"which": which, "rows": int(n_c), "weight": float(blend_weight(n_c, strength))}
        for which, n_c in zip(("smallest", "median", "largest"), sizes, strict=False)
    ]
    facts = {
        "test_rows": n_holdout,
        "test_rows_scored": int(test.height),
        "test_rows_unseen_combination": int((~seen).sum()),
        "strength": strength if finite else None,
        "strength_chosen_on": chosen_on,
        "own_weights": weights,
        "strength_scan": [
            {
                "strength": r["strength"] if np.isfinite(r["strength"]) else None,
                "log_score": r["log_score"],
            }
            for r in scan
        ],
        "blended": summary["blended"],
        "own_histogram": summary["own"],
        "global_histogram": summary["global"],
        "coverages": cov,
        "skipped": skipped,
    }
    metrics = _metrics(summary, cov, classifier["metrics"], profiles, histograms, quantized)
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
    plotted = {"holdout_scores": plots.plot_scores(facts)} if test.height else {}
    return Out(
        values={},
        facts=facts,
        metrics=metrics,
        plots=plotted,
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
        baselines=compared,
    )


def _metrics(
    summary: dict[str, Any],
    cov: list[int],
    cm: dict[str, Any],
    profiles: pl.DataFrame,
    histograms: pl.DataFrame,
    quantized: pl.DataFrame,
) -> dict[str, float]:
    """The run's headline metrics: held-out scores first (when scored), then the classifier's."""
    best, own, glob = summary["blended"], summary["own"], summary["global"]
    scores = (
        {
            "log_score": best["log_score"],
            "log_score_own": own["log_score"],
            "log_score_global": glob["log_score"],
            f"coverage_{cov[1]}": best[f"coverage_{cov[1]}"],
            "crps": best["crps"],
            f"coverage_{cov[0]}": best[f"coverage_{cov[0]}"],
            "crps_own": own["crps"],
            "crps_global": glob["crps"],
        }
        if best is not None
        else {}
    )
    return {
        **scores,
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
