"""The ``choose_k`` stage: how many patterns, chosen on the training period alone.

The combinations' histograms of the *earlier* training rows are clustered for each K in
``k_min..k_max``; the log score of the *later* training rows under their combination's
pattern decides (the smallest K within one standard error of the best). The holdout is
never seen here: it is kept for the final scores against the baselines.

Example:
    >>> round(_clustered_se(np.array([1.0, 1.0, 3.0, 3.0]), np.array([0, 0, 1, 1])), 3)
    0.707
"""

from __future__ import annotations

import numpy as np
import polars as pl

from opslens.cluster.kselect import smallest_within_one_se
from opslens.core.recipe import Out, StageContext
from opslens.errors import DataError
from opslens.models.metrics import log_score
from opslens.recipes.distribution import plots
from opslens.recipes.distribution.params import DistributionParams
from opslens.recipes.distribution.rows import histogram_matrix as _matrix
from opslens.recipes.distribution.rows import inner_histograms, training_split

__all__ = ["choose_k_stage"]


def _clustered_se(scores: np.ndarray, unit: np.ndarray) -> float:
    """Standard error of the mean of ``scores`` clustered by ``unit`` (rows of one combination move together)."""
    resid = np.bincount(unit, weights=scores - scores.mean())
    return float(np.sqrt(np.sum(resid**2)) / scores.size)


def _inner_fit(
    ctx: StageContext, quantized: pl.DataFrame, histograms: pl.DataFrame
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Histograms of the earlier training rows (combinations with any), and the later rows.

    Returns the histograms to cluster, each later row's row of them and bin, and where the
    later rows are in words: K is chosen there, never on the holdout the model is scored on.
    """
    split = training_split(ctx, quantized, histograms)
    n_bins = _matrix(histograms).shape[1]
    own, n = inner_histograms(
        split.h[~split.late], split.bins[~split.late], n_comb=histograms.height, n_bins=n_bins
    )
    has = n > 0
    later = split.late & has[split.h]
    if int(later.sum()) < 2:
        raise DataError(
            "the training period is too small to choose the number of patterns on (the later "
            "training rows hold no rows of combinations seen in the earlier ones)",
            fix="set params.n_clusters, or give more rows (or a longer span of columns.time)",
        )
    row_of = np.cumsum(has) - 1
    return own[has], row_of[split.h[later]], split.bins[later], split.where


def choose_k_stage(ctx: StageContext, quantized: pl.DataFrame, histograms: pl.DataFrame) -> Out:
    """Scan K: the log score of the later training rows under their pattern decides (one-SE rule)."""
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
        fit, h, b, where = _inner_fit(ctx, quantized, histograms)
        distinct = np.unique(fit, axis=0).shape[0]
        k_hi = min(p.k_max, fit.shape[0] - 1, distinct)
        if k_hi < p.k_min:
            raise DataError(
                f"only {fit.shape[0]} combinations ({distinct} distinct histograms) to cluster "
                f"in the earlier training rows, too few for K >= {p.k_min}",
                fix="lower params.k_min, or params.min_combination_size to keep more combinations",
            )
        curve = []
        for k in range(p.k_min, k_hi + 1):
            with threadpool_limits(1):  # a few hundred rows: threads cost more than they give
                km = KMeans(n_clusters=k, n_init=10, random_state=ctx.random_state)
                labels = km.fit_predict(fit)
            centers = np.vstack([fit[labels == j].mean(axis=0) for j in range(k)])
            scores = log_score(centers[labels[h]], b)
            entry = {
                "k": float(k),
                "log_score": float(scores.mean()),
                "log_score_se": _clustered_se(scores, h),
            }
            if len(np.unique(labels)) > 1:
                size = 5000 if fit.shape[0] > 5000 else None
                entry["silhouette"] = float(
                    silhouette_score(fit, labels, sample_size=size, random_state=ctx.random_state)
                )
                entry["calinski_harabasz"] = float(calinski_harabasz_score(fit, labels))
            curve.append(entry)
        k, reason = smallest_within_one_se(curve)
        reason += f" (histograms of the earlier training rows, scored on {where})"
    figs = {"k_selection": plots.plot_k_scores(curve, k)} if curve else {}
    return Out(
        values={"k_choice": {"k": k, "reason": reason, "curve": curve}},
        facts={"k": k, "reason": reason, "curve": curve},
        plots=figs,
    )
