"""The sorted sweep finds SciPy's KD-tree's nearest point and distance, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from opslens.cluster.nearest import BUDGET, NearestReference


@pytest.mark.parametrize("m", [1, 2, 3, 4, 5, 6, 7, 8, 9, 13])
def test_the_sweep_answers_as_the_tree(m: int) -> None:
    """Clustered points and new points near them, far from them and on them: the same index
    and the same float distance as cKDTree.query, or -1 (the caller then asks the tree)."""
    rng = np.random.default_rng(m)
    centres = rng.normal(size=(6, m)) * 4
    R = centres[rng.integers(0, 6, 1500)] + rng.normal(size=(1500, m)) * 0.5
    X = R[rng.integers(0, 1500, 2000)] + rng.normal(size=(2000, m)) * rng.choice(
        [0.0, 0.01, 0.3, 5.0], size=(2000, 1)
    )
    dist, idx = cKDTree(R).query(X)
    near = NearestReference(R)
    answered = 0
    for x, d, i in zip(X, dist, idx, strict=True):
        got_i, got_d = near(x)
        if got_i < 0:
            continue
        answered += 1
        assert (got_i, got_d) == (int(i), float(d))
    assert answered >= 1900


def test_a_tie_or_a_long_sweep_is_left_to_the_tree() -> None:
    R = np.vstack([np.zeros((3, 2)), np.ones((3, 2))])
    assert NearestReference(R)(np.array([0.1, 0.1])) == (-1, float("inf"))
    # far off the points' line: the widest coordinate never rules a point out
    n = BUDGET + 10
    line = np.column_stack([np.linspace(0.0, 1.0, n), np.zeros(n)])
    assert NearestReference(line)(np.array([0.5, 100.0])) == (-1, float("inf"))
    assert NearestReference(line[:100])(np.array([0.5, 100.0]))[0] >= 0
