"""Paired bootstrap over held-out units of ranking metrics (AUROC, average precision, log loss).

:func:`opslens.models.compare.paired_interval` bootstraps a mean of per-row losses; AUROC
and average precision are not means over rows, so here each resample draws *units* (users)
with replacement and recomputes the metrics of every score on the rows of the drawn units
(a unit drawn twice counts twice: integer row weights). Every score is resampled with the
same draws, so the difference of two scores' metrics in one resample is a paired
difference, and its percentiles are the interval.

Each score is sorted once into tie groups; a block of resamples is then one sparse product
(positives and negatives per tie group and user, times the users' draw counts) and
cumulative sums over the groups, not a sort per resample. The metrics equal
scikit-learn's ``roc_auc_score`` / ``average_precision_score`` / ``log_loss`` with the
resample's row weights as ``sample_weight`` (:func:`weighted_metric`, tested).

Example:
    >>> import numpy as np
    >>> y = np.array([0, 0, 1, 1, 0, 1]); units = np.array([0, 0, 1, 1, 2, 2])
    >>> good, bad = np.array([0.1, 0.2, 0.8, 0.7, 0.3, 0.9]), np.full(6, 0.5)
    >>> b = unit_bootstrap(y, {"good": good, "bad": bad}, units, n_boot=200, random_state=0)
    >>> round(float(np.nanmin(b["good", "auroc"])), 3), float(np.nanmax(b["bad", "auroc"]))
    (1.0, 0.5)
    >>> lo, hi = percentile_interval(b["good", "auroc"] - b["bad", "auroc"])
    >>> lo, hi
    (0.5, 0.5)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy import sparse

from opslens.errors import DataError

__all__ = ["METRICS", "percentile_interval", "unit_bootstrap", "weighted_metric"]

METRICS = ("auroc", "average_precision", "log_loss")
_EPS = float(np.finfo(np.float64).eps)  # scikit-learn's clip of probabilities in log loss


class _Ranked:
    """One score's tie groups, ranked (0 = lowest), so weighted per-group sums are one
    ``np.bincount`` each: ``group[i]`` is row ``i``'s.

    Both ranking metrics sum over the tie groups that hold a positive only, reading the
    negatives below (AUROC) or above (average precision) each of them; so every run of
    groups holding negatives only, between two that hold a positive, is one group here.
    Tie group ``k`` with a positive is ``2k + 1``, the negatives-only run below it ``2k``:
    with a few thousand positives among a million held-out rows the cumulative sums run
    over a few thousand groups, not a million, and every sum they feed is the same.
    """

    def __init__(self, y: np.ndarray, score: np.ndarray):
        levels, group = np.unique(score, return_inverse=True)
        self.pos = y == 1
        holds = np.zeros(len(levels), dtype=np.int64)
        holds[group[self.pos]] = 1
        below = np.cumsum(holds) - holds  # groups with a positive under each group
        self.group = (2 * below + holds)[group]
        self.n_groups = 2 * int(holds.sum()) + 1
        self.loss = -np.log(
            np.where(self.pos, np.clip(score, _EPS, 1), np.clip(1 - score, _EPS, 1))
        )


def _known(names: Sequence[str]) -> None:
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise DataError(f"unknown metric {unknown[0]!r}", fix=f"use one of {', '.join(METRICS)}")


def weighted_metric(
    y: np.ndarray, score: np.ndarray, name: str, weights: np.ndarray | None = None
) -> float:
    """AUROC, average precision or log loss of ``score`` with row ``weights`` (default 1).

    Example:
        >>> import numpy as np
        >>> from sklearn.metrics import average_precision_score
        >>> y, s, w = np.array([0, 1, 0, 1, 1]), np.array([0.2, 0.2, 0.5, 0.9, 0.4]), np.array([1, 2, 0, 1, 3])
        >>> round(weighted_metric(y, s, "average_precision", w), 10) == round(
        ...     float(average_precision_score(y, s, sample_weight=w)), 10)
        True
        >>> round(weighted_metric(y, s, "auroc"), 4)
        0.5833
    """
    _known([name])
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    r = _Ranked(np.asarray(y), np.asarray(score, dtype=float))
    pos = np.bincount(r.group, weights=w * r.pos, minlength=r.n_groups)[:, None]
    neg = np.bincount(r.group, weights=w * ~r.pos, minlength=r.n_groups)[:, None]
    return float(_block_metric(name, pos, neg, np.array([np.dot(w, r.loss) / w.sum()]))[0])


def unit_bootstrap(
    y: np.ndarray,
    scores: Mapping[str, np.ndarray],
    units: np.ndarray,
    *,
    metrics: Sequence[str] = ("auroc", "average_precision"),
    n_boot: int = 1000,
    random_state: int = 0,
) -> dict[tuple[str, str], np.ndarray]:
    """``n_boot`` resamples of the units (seeded): each (score, metric)'s value per resample.

    The same resamples for every score, so ``out[a, m] - out[b, m]`` are paired differences.
    A resample without a positive or a negative gives NaN for the ranking metrics. Resample
    ``b`` draws ``rng.integers(0, n_units, n_units)``; a row's weight is how often its unit
    was drawn. Resamples are done a block at a time: per score, a sparse (tie group × unit)
    count of positives and negatives times the block's (unit × resample) draw counts.
    """
    _known(metrics)
    y = np.asarray(y)
    _, unit = np.unique(np.asarray(units), return_inverse=True)
    n_units = int(unit.max()) + 1 if len(unit) else 0
    if n_units == 0:
        raise DataError(
            "no held-out rows to compare the model and its baselines on",
            fix="give events over more days, or change params.split",
        )
    ranked = {k: _Ranked(y, np.asarray(s, dtype=float)) for k, s in scores.items()}
    cells = {k: _cells(r, unit, n_units) for k, r in ranked.items()}
    rows = np.bincount(unit, minlength=n_units).astype(float)
    out = {(k, m): np.empty(n_boot) for k in scores for m in metrics}
    rng = np.random.default_rng(random_state)
    widest = max([n_units, *(r.n_groups for r in ranked.values())])
    # about a million cells per block, so the temporaries stay in reused memory (blocks of
    # 20 million cells were twice as slow on 29k tie groups), but never under 20 resamples:
    # one resample per sparse product is slow on a million groups. The draws do not depend
    # on the block.
    block = int(max(1, min(n_boot, max(20, 1_000_000 // widest))))
    for start in range(0, n_boot, block):
        stop = min(n_boot, start + block)
        drawn = np.stack(
            [
                np.bincount(rng.integers(0, n_units, n_units), minlength=n_units)
                for _ in range(start, stop)
            ],
            axis=1,
        ).astype(float)  # units x resamples
        for k, (pos_cells, neg_cells, loss) in cells.items():
            pos, neg = pos_cells @ drawn, neg_cells @ drawn  # tie groups x resamples
            for m in metrics:
                out[k, m][start:stop] = _block_metric(m, pos, neg, loss @ drawn / (rows @ drawn))
    return out


def _cells(
    r: _Ranked, unit: np.ndarray, n_units: int
) -> tuple[sparse.csr_array, sparse.csr_array, np.ndarray]:
    """Per (tie group, unit): positives and negatives (sparse); per unit: the summed log loss."""
    shape = (r.n_groups, n_units)
    pos = sparse.csr_array((r.pos.astype(float), (r.group, unit)), shape=shape)
    neg = sparse.csr_array(((~r.pos).astype(float), (r.group, unit)), shape=shape)
    return pos, neg, np.bincount(unit, weights=r.loss, minlength=n_units)


def _block_metric(name: str, pos: np.ndarray, neg: np.ndarray, log_loss: np.ndarray) -> np.ndarray:
    """A metric per resample (column) from the weighted positives and negatives per tie group."""
    if name == "log_loss":
        return log_loss
    n_pos, n_neg = pos.sum(axis=0), neg.sum(axis=0)
    ok = (n_pos > 0) & (n_neg > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        if name == "auroc":
            below = np.cumsum(neg, axis=0) - neg
            value = (pos * (below + 0.5 * neg)).sum(axis=0) / (n_pos * n_neg)
        else:
            tp, fp = np.cumsum(pos[::-1], axis=0), np.cumsum(neg[::-1], axis=0)
            value = (pos[::-1] * (tp / np.maximum(tp + fp, 1e-300))).sum(axis=0) / n_pos
    return np.where(ok, value, np.nan)


def percentile_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The central ``level`` percentile interval of bootstrap values (NaNs left out)."""
    alpha = (1.0 - level) / 2.0
    lo, hi = np.nanquantile(values, [alpha, 1.0 - alpha])
    return float(lo), float(hi)
