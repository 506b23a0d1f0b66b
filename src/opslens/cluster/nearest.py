"""One point's nearest reference point, exactly as SciPy's KD-tree finds it, in microseconds.

``cKDTree.query`` on one point costs about 13 µs, nearly all of it the call's own
Python-level work (its search takes well under one); that was a quarter of a segments
answer (the segments recipe's single-row path places a point by its nearest reference point). :class:`NearestReference` keeps the reference points sorted along their widest
coordinate and a compiled kernel sweeps outward from the point's place in that order,
stopping on each side once that coordinate alone is farther than the best distance so far.
Each distance is summed in the KD-tree's own order (four running sums over blocks of four
coordinates, added, then the rest one by one; SciPy's ``sqeuclidean_distance_double``) and
its square root taken, so the distance is the tree's to the last bit (tested). A point with
two reference points at its nearest distance answers ``-1``: the caller asks the tree,
whose tie-break is its own; so does a sweep that visits more than :data:`BUDGET` points
(where the widest coordinate hardly separates the points, the tree is the faster).

Example:
    >>> import numpy as np
    >>> from scipy.spatial import cKDTree
    >>> rng = np.random.default_rng(0)
    >>> R = rng.normal(size=(500, 6)); x = rng.normal(size=6)
    >>> near = NearestReference(R)
    >>> near(x) == tuple(cKDTree(R).query(x)[::-1])
    True
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

__all__ = ["BUDGET", "NearestReference", "warm"]

#: points a sweep visits at most before it leaves the point to the tree (its cost then)
BUDGET = 2048


@njit(cache=True, nogil=True)  # type: ignore[misc]
def _sweep(
    R: np.ndarray,
    keys: np.ndarray,
    order: np.ndarray,
    j: int,
    x: np.ndarray,
    budget: int,
) -> tuple[int, float]:
    """The nearest of the sorted points ``R`` (``keys``: their column ``j``) to ``x``, as an
    index into the unsorted points (``order``) and its distance; ``(-1, inf)`` for a tie or
    more than ``budget`` points visited."""
    n, m = R.shape
    q = m // 4
    xj = x[j]
    best = np.inf
    best_i = -1
    ties = 0
    start = np.searchsorted(keys, xj)
    for direction in (1, -1):
        i = start if direction == 1 else start - 1
        while 0 <= i < n:
            budget -= 1
            if budget < 0:
                return -1, np.inf
            d = keys[i] - xj
            if d * d > best:  # every later point of this side is farther still
                break
            if q:
                a0 = R[i, 0] - x[0]
                a0 *= a0
                a1 = R[i, 1] - x[1]
                a1 *= a1
                a2 = R[i, 2] - x[2]
                a2 *= a2
                a3 = R[i, 3] - x[3]
                a3 *= a3
                for b in range(4, 4 * q, 4):
                    e = R[i, b] - x[b]
                    a0 += e * e
                    e = R[i, b + 1] - x[b + 1]
                    a1 += e * e
                    e = R[i, b + 2] - x[b + 2]
                    a2 += e * e
                    e = R[i, b + 3] - x[b + 3]
                    a3 += e * e
                s = ((a0 + a1) + a2) + a3
            else:
                s = 0.0
            for c in range(4 * q, m):
                e = R[i, c] - x[c]
                s += e * e
            if s < best:
                best = s
                best_i = i
                ties = 0
            elif s == best:
                ties += 1
            i += direction
    if best_i < 0 or ties:
        return -1, np.inf
    return order[best_i], np.sqrt(best)


class NearestReference:
    """The reference points sorted along their widest coordinate, and the sweep over them."""

    def __init__(self, reference: np.ndarray) -> None:
        R = np.asarray(reference, dtype=np.float64)
        self.axis = int(np.argmax(R.var(axis=0))) if R.shape[0] else 0
        self.order = np.argsort(R[:, self.axis], kind="stable").astype(np.int64)
        self.R = np.ascontiguousarray(R[self.order])
        self.keys = np.ascontiguousarray(self.R[:, self.axis])
        self.width = R.shape[1]

    def __call__(self, x: np.ndarray) -> tuple[int, float]:
        """The index of ``x``'s nearest reference point and its distance (``x``: 1-D float64
        of the reference's width, finite), or ``(-1, inf)``: a tie or a sweep over budget
        (ask the tree)."""
        i, d = _sweep(self.R, self.keys, self.order, self.axis, x, BUDGET)
        return int(i), float(d)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_sweep"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


def warm() -> None:
    """Compile the sweep into numba's cache (``python -m opslens.features.warm`` runs this)."""
    rng = np.random.default_rng(0)
    NearestReference(rng.normal(size=(50, 6)))(rng.normal(size=6))
