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

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from opslens.cluster.kselect import smallest_within_one_se
from opslens.core.recipe import Out, StageContext
from opslens.errors import DataError
from opslens.models.metrics import log_score
from opslens.recipes.distribution import plots
from opslens.recipes.distribution.evaluate import STRENGTHS, blend
from opslens.recipes.distribution.params import DistributionParams
from opslens.recipes.distribution.rows import HOLDOUT, inner_histograms, training_split
from opslens.recipes.distribution.rows import histogram_matrix as _matrix
from opslens.recipes.distribution.shapes import ALPHA, distinct_shapes, standardized_counts

__all__ = ["choose_k_stage"]


def _clustered_se(scores: np.ndarray, unit: np.ndarray) -> float:
    """Standard error of the mean of ``scores`` clustered by ``unit`` (rows of one combination move together)."""
    resid = np.bincount(unit, weights=scores - scores.mean())
    return float(np.sqrt(np.sum(resid**2)) / scores.size)


@dataclass(frozen=True)
class InnerFit:
    """The training rows split for choosing K: earlier histograms to cluster, later rows to score.

    ``fit`` and ``n`` are the earlier histograms and row counts of the combinations that
    have earlier rows (``rows``: their rows of the histograms table); ``h`` and ``b`` are
    each later row's row of ``fit`` and bin; ``counts`` the later rows' standardised
    counts per combination of ``fit`` (:func:`~.shapes.standardized_counts`).
    """

    fit: np.ndarray
    n: np.ndarray
    rows: np.ndarray
    h: np.ndarray
    b: np.ndarray
    counts: np.ndarray
    where: str


def _inner_fit(ctx: StageContext, quantized: pl.DataFrame, histograms: pl.DataFrame) -> InnerFit:
    """Histograms of the earlier training rows (combinations with any), and the later rows.

    K is chosen there, never on the holdout the model is scored on. The later rows of a
    combination are standardised by their own median and IQR (statistics of the earlier
    rows, which formed the clusters, would carry the clustering's choices into the test).
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
            fix="lower params.test_size (e.g. 0.25), set params.n_clusters, or give more rows "
            "(or a longer span of columns.time)",
        )
    row_of = np.cumsum(has) - 1
    rows = np.flatnonzero(has)
    target = str(ctx.analysis.columns.target)
    y = quantized.filter(~pl.col(HOLDOUT) & pl.col("bin").is_not_null())[target].to_numpy()
    order = np.argsort(split.h, kind="stable")
    cuts = np.searchsorted(split.h[order], rows)
    ends = np.searchsorted(split.h[order], rows, side="right")
    late = [y[order[i:j]][split.late[order[i:j]]] for i, j in zip(cuts, ends, strict=True)]
    return InnerFit(
        fit=own[has],
        n=n[has],
        rows=rows,
        h=row_of[split.h[later]],
        b=split.bins[later],
        counts=standardized_counts(late),
        where=split.where,
    )


def _scan_k(
    fit: np.ndarray,
    n_fit: np.ndarray,
    h: np.ndarray,
    b: np.ndarray,
    ks: range,
    random_state: int,
) -> tuple[list[dict[str, Any]], dict[int, np.ndarray]]:
    """Log score of the later rows under the blend of their own earlier histogram and its pattern.

    Each K is scored as the model predicts: the combination's own histogram shrunk towards its
    pattern (the best strength of :data:`STRENGTHS` for that K), so a pattern earns its place
    by what the own histograms cannot say, not by splitting locations they already know.
    Returns the curve and each K's labels of the earlier histograms.
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import calinski_harabasz_score, silhouette_score
    from threadpoolctl import threadpool_limits

    curve = []
    partitions = {}
    # rows of one combination in one bin score alike: score each (combination, bin) cell once
    n_bins = fit.shape[1]
    cells, row_cell = np.unique(h * n_bins + b, return_inverse=True)
    cell_rows = np.bincount(row_cell, minlength=cells.size).astype(float)
    ch, cb = cells // n_bins, cells % n_bins
    for k in ks:
        with threadpool_limits(1):  # a few hundred rows: threads cost more than they give
            km = KMeans(n_clusters=k, n_init=10, random_state=random_state)
            labels = km.fit_predict(fit)
        partitions[k] = labels
        centers = np.vstack([fit[labels == j].mean(axis=0) for j in range(k)])
        best: tuple[float, float, np.ndarray] | None = None
        for strength in STRENGTHS:
            per_cell = log_score(blend(fit, n_fit, centers[labels], strength)[ch], cb)
            mean = float(per_cell @ cell_rows / cell_rows.sum())
            if best is None or mean > best[0]:
                best = (mean, strength, per_cell[row_cell])
        assert best is not None
        entry: dict[str, Any] = {
            "k": float(k),
            "log_score": best[0],
            "log_score_se": _clustered_se(best[2], h),
            "strength": best[1] if np.isfinite(best[1]) else None,
        }
        if len(np.unique(labels)) > 1:
            size = 5000 if fit.shape[0] > 5000 else None
            entry["silhouette"] = float(
                silhouette_score(fit, labels, sample_size=size, random_state=random_state)
            )
            entry["calinski_harabasz"] = float(calinski_harabasz_score(fit, labels))
        curve.append(entry)
    return curve, partitions


def _final_labels(X: np.ndarray, k: int, random_state: int) -> np.ndarray:
    """The labels the cluster stage's K-Means gives the training histograms for this K."""
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        km = KMeans(n_clusters=k, n_init=10, random_state=random_state)
        labels: np.ndarray = km.fit_predict(X)
    return labels


def _shape_check(
    inner: InnerFit,
    partitions: dict[int, np.ndarray],
    X: np.ndarray,
    k_first: int,
    random_state: int,
) -> tuple[int, list[dict[str, Any]]]:
    """The smallest K from ``k_first`` whose clusters merge no groups distinct in shape.

    The finest partition scanned is the reference: inside each cluster of K (both on the
    earlier histograms), the groups of the finest partition are tested for a shape
    difference on the later training rows (:func:`~.shapes.distinct_shapes`: a
    permutation test over combinations). A distinct pair rejects K only when the final
    clustering at K (all training rows, as the cluster stage fits it) merges them too.
    """
    k_hi = max(partitions)
    fine = partitions[k_hi]
    checks: list[dict[str, Any]] = []
    for k in range(k_first, k_hi):
        final = _final_labels(X, k, random_state)[inner.rows]
        tests = distinct_shapes(
            partitions[k], fine, inner.counts, final=final, random_state=random_state
        )
        n_distinct = sum(t["distinct"] for t in tests)
        checks.append({"k": k, "pairs": len(tests), "distinct": n_distinct, "tests": tests})
        if not n_distinct:
            return k, checks
    checks.append({"k": k_hi, "pairs": 0, "distinct": 0, "tests": []})
    return k_hi, checks


def _shape_reason(k_se: int, k: int, checks: list[dict[str, Any]]) -> str:
    """Why K moved past the one-SE choice (or did not), in words."""
    first = checks[0] if checks else None
    if k == k_se:
        tested = first["pairs"] if first else 0
        return (
            f"; none of its clusters merges groups distinct in shape ({tested} pair(s) of "
            "finer groups tested)"
        )
    parts = []
    for c in checks[:-1]:
        worst = min(c["tests"], key=lambda t: t["p_value"])
        parts.append(
            f"K={c['k']} merges {c['distinct']} pair(s) of groups distinct in shape (the "
            f"strongest: {worst['sizes'][0]} and {worst['sizes'][1]} combinations, "
            f"Jensen-Shannon distance {worst['distance']:.3f}, p={worst['p_value']:.4f})"
        )
    return (
        f"; but {'; '.join(parts)}, so K={k} keeps them apart (the smallest K whose clusters "
        "merge no distinct shapes)"
    )


def choose_k_stage(ctx: StageContext, quantized: pl.DataFrame, histograms: pl.DataFrame) -> Out:
    """Scan K (the blended log score of the later training rows, one-SE rule), then check shapes."""
    p: DistributionParams = ctx.params
    X = _matrix(histograms)
    checks: list[dict[str, Any]] = []
    k_se: int | None = None
    if p.n_clusters is not None:
        k = p.n_clusters
        reason = f"K={k} was given in params.n_clusters"
        curve: list[dict[str, Any]] = []
    else:
        if X.shape[0] < 3:
            raise DataError(
                f"only {X.shape[0]} combination(s) remain after filtering; patterns need at least 3",
                fix="lower params.min_combination_size or add categorical columns with more levels",
            )
        inner = _inner_fit(ctx, quantized, histograms)
        fit = inner.fit
        distinct = np.unique(fit, axis=0).shape[0]
        k_hi = min(p.k_max, fit.shape[0] - 1, distinct)
        if k_hi < p.k_min:
            raise DataError(
                f"only {fit.shape[0]} combinations ({distinct} distinct histograms) to cluster "
                f"in the earlier training rows, too few for K >= {p.k_min}",
                fix="lower params.k_min, or params.min_combination_size to keep more combinations",
            )
        curve, partitions = _scan_k(
            fit, inner.n, inner.h, inner.b, range(p.k_min, k_hi + 1), ctx.random_state
        )
        k_se, reason = smallest_within_one_se(curve)
        reason += f" (histograms of the earlier training rows, scored on {inner.where})"
        k, checks = _shape_check(inner, partitions, X, k_se, ctx.random_state)
        reason += _shape_reason(k_se, k, checks)
    figs = {"k_selection": plots.plot_k_scores(curve, k, k_se)} if curve else {}
    facts = {
        "k": k,
        "reason": reason,
        "curve": curve,
        "k_one_se": k_se,
        "shape_alpha": ALPHA if checks else None,
        "shape_checks": checks,
    }
    return Out(
        values={"k_choice": {"k": k, "reason": reason, "curve": curve}},
        facts=facts,
        plots=figs,
    )
