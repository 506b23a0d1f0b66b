"""Choose the number of clusters K by scanning a range with two indices.

The silhouette score decides (higher is better); the Calinski-Harabasz index
is recorded beside it as a second opinion and breaks ties within 0.01. The
whole curve is returned so a run can save and plot it.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(c, 0.1, size=(30, 2)) for c in (0.0, 3.0, 6.0)])
    >>> choice = choose_k(X, k_min=2, k_max=6, random_state=0)
    >>> choice.k
    3
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import calinski_harabasz_score, silhouette_score

from opslens.errors import DataError

__all__ = ["KChoice", "choose_k", "smallest_within_one_se"]


@dataclass(frozen=True)
class KChoice:
    """The chosen K, the scanned curve and the reason in words."""

    k: int
    reason: str
    curve: list[dict[str, float]] = field(default_factory=list)


def choose_k(
    X: np.ndarray,
    *,
    k_min: int = 2,
    k_max: int = 10,
    random_state: int = 0,
    n_init: int = 10,
    sample_size: int | None = 5000,
    setting: str = "",
) -> KChoice:
    """Scan K in ``[k_min, k_max]`` with K-Means; pick the best silhouette.

    ``setting`` prefixes ``k_min``/``k_max`` in error fixes (the caller's config path, e.g. ``params.``).

    ``sample_size`` bounds the silhouette's O(n²) cost on large inputs (a fixed,
    seeded sample, so the choice is deterministic).

    Example:
        >>> import numpy as np
        >>> X = np.array([[0.0], [0.1], [5.0], [5.1], [9.0], [9.2]])
        >>> choose_k(X, k_min=2, k_max=4, random_state=0).k
        3
    """
    X = np.asarray(X, dtype=float)
    n = X.shape[0]
    if k_min < 2 or k_max < k_min:
        raise DataError(
            f"the K range [{k_min}, {k_max}] is invalid",
            fix="pass k_min >= 2 and k_max >= k_min",
        )
    k_hi = min(k_max, n - 1)
    if k_hi < k_min:
        raise DataError(
            f"only {n} items to cluster, too few for K >= {k_min}",
            fix=f"provide more combinations/devices or lower {setting}k_min",
        )
    distinct = np.unique(X, axis=0).shape[0]
    if distinct < 2:
        raise DataError(
            "every item to cluster is identical, so there is no structure to find",
            fix="check that the target varies across combinations",
        )
    curve: list[dict[str, float]] = []
    for k in range(k_min, min(k_hi, distinct) + 1):
        labels = KMeans(n_clusters=k, n_init=n_init, random_state=random_state).fit_predict(X)
        if len(np.unique(labels)) < 2:
            continue
        sil = float(
            silhouette_score(
                X,
                labels,
                sample_size=sample_size if sample_size and n > sample_size else None,
                random_state=random_state,
            )
        )
        ch = float(calinski_harabasz_score(X, labels))
        curve.append({"k": float(k), "silhouette": sil, "calinski_harabasz": ch})
    if not curve:
        raise DataError(
            "K-Means found fewer than two distinct clusters for every K scanned",
            fix=f"check that the data varies, or narrow {setting}k_min / {setting}k_max",
        )
    best_sil = max(c["silhouette"] for c in curve)
    near = [c for c in curve if c["silhouette"] >= best_sil - 0.01]
    best = max(near, key=lambda c: c["calinski_harabasz"])
    k = int(best["k"])
    if len(near) == 1:
        reason = (
            f"K={k} has the highest silhouette score ({best['silhouette']:.3f}) "
            f"of K={k_min}..{k_hi}"
        )
    else:
        reason = (
            f"K={k} is within 0.01 of the highest silhouette ({best_sil:.3f}) and has the "
            f"highest Calinski-Harabasz index ({best['calinski_harabasz']:.1f}) among those"
        )
    return KChoice(k=k, reason=reason, curve=curve)


def smallest_within_one_se(
    curve: list[dict[str, float]], *, score: str = "log_score", se: str = "log_score_se"
) -> tuple[int, str]:
    """The smallest K whose ``score`` (higher is better) is within one standard error of the best.

    Returns K and the reason in words.

    Example:
        >>> curve = [{"k": 2.0, "log_score": -2.0, "log_score_se": 0.01},
        ...          {"k": 3.0, "log_score": -1.505, "log_score_se": 0.01},
        ...          {"k": 4.0, "log_score": -1.5, "log_score_se": 0.01}]
        >>> smallest_within_one_se(curve)[0]
        3
    """
    if not curve:
        raise DataError("no K was scored", fix="widen params.k_min / params.k_max")
    best = max(curve, key=lambda c: c[score])
    bar = best[score] - best[se]
    k = int(min(c["k"] for c in curve if c[score] >= bar))
    chosen = next(c for c in curve if int(c["k"]) == k)
    ks = [int(c["k"]) for c in curve]
    if k == int(best["k"]):
        reason = (
            f"K={k} has the best held-out log score ({chosen[score]:.3f}) of K={min(ks)}..{max(ks)}"
        )
    else:
        reason = (
            f"K={k} is the smallest K whose held-out log score ({chosen[score]:.3f}) is within "
            f"one standard error ({best[se]:.3f}) of the best (K={int(best['k'])}, {best[score]:.3f})"
        )
    return k, reason
