"""One row through an XGBoost booster's trees, XGBoost's number to the last bit, in microseconds.

``Booster.inplace_predict`` on one row costs about 180 µs for 200 trees of depth 3, nearly
all of it the call's own work (its configuration as JSON, the adapter, the thread pool):
the walk through the trees takes about a microsecond. :class:`TreeWalk` reads the booster's
trees once (its JSON model) and a compiled kernel walks them as XGBoost's CPU predictor
does: the row's values as float32, a value is missing when NaN or equal to ``missing`` (its
default branch then), ``value < split`` goes left, the leaf values added to the base margin
one tree after another in float32, then the objective's transform (``binary:logistic``:
XGBoost's float32 sigmoid). :meth:`TreeWalk.from_booster` checks its answers against the
booster's own on probe rows built from the trees' split values and gives None — the caller
keeps XGBoost's call — for a model it does not read (categorical splits, several outputs or
parallel trees, dart, another objective) or whose answers differ in any bit.

Example:
    >>> import numpy as np, xgboost as xgb
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(400, 5)); y = (X[:, 0] + rng.normal(size=400) > 0).astype(int)
    >>> model = xgb.XGBClassifier(n_estimators=20, max_depth=3, n_jobs=1).fit(X, y)
    >>> walk = TreeWalk.from_booster(model.get_booster())
    >>> x = X[7]
    >>> bool(walk(x) == model.predict_proba(x[None, :])[0, 1])
    True
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from numba import njit

__all__ = ["TreeWalk", "warm"]

#: objectives the walk answers: XGBoost's transform of the margin for each
_TRANSFORMS = {"binary:logistic": 1, "reg:squarederror": 0, "reg:logistic": 1}
#: rows the walk is checked on against the booster before it answers for it
_PROBES = 512


@njit(cache=True, nogil=True)  # type: ignore[misc]
def _walk(
    x: np.ndarray,
    missing: float,
    roots: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    feature: np.ndarray,
    value: np.ndarray,
    default_left: np.ndarray,
    base: float,
    transform: int,
) -> float:
    """One row (float64) through the trees: the transformed float32 sum, as a float."""
    x32 = x.astype(np.float32)
    absent = np.isnan(x32) | (x32 == np.float32(missing))
    margin = np.float32(base)
    for t in range(roots.size):
        i = roots[t]
        while left[i] != -1:
            j = feature[i]
            if absent[j]:
                i = left[i] if default_left[i] else right[i]
            elif x32[j] < value[i]:
                i = left[i]
            else:
                i = right[i]
        margin = np.float32(margin + value[i])
    if transform == 1:  # XGBoost's common::Sigmoid(float)
        z = min(-margin, np.float32(88.7))
        return float(np.float32(1.0) / (np.float32(np.exp(z)) + np.float32(1.0)))
    return float(margin)


@njit(cache=True, nogil=True)  # type: ignore[misc]
def _logit(p: float) -> float:
    """XGBoost's ProbToMargin for a logistic objective, in float32: ``-log(1/p - 1)``."""
    q = np.float32(np.float32(1.0) / np.float32(p) - np.float32(1.0))
    return float(-np.float32(np.log(q)))


class TreeWalk:
    """A booster's trees as flat arrays and the kernel that walks one row through them.

    Build it with :meth:`from_booster` (checked against the booster); call it on a 1-D
    float64 row of the booster's features.
    """

    def __init__(
        self,
        trees: list[dict[str, Any]],
        base: float,
        transform: int,
        missing: float = float("nan"),
    ) -> None:
        sizes = [len(t["left_children"]) for t in trees]
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)

        def joined(key: str, dtype: Any, shift: bool = False) -> np.ndarray:
            parts = []
            for t, at in zip(trees, offsets, strict=True):
                a = np.asarray(t[key], dtype=dtype)
                parts.append(np.where(a >= 0, a + at, -1).astype(dtype) if shift else a)
            return np.concatenate(parts) if parts else np.empty(0, dtype)

        self.roots = offsets
        self.left = joined("left_children", np.int64, shift=True)
        self.right = joined("right_children", np.int64, shift=True)
        self.feature = joined("split_indices", np.int64)
        # a leaf's value sits where a split's threshold would (XGBoost's JSON model)
        self.value = joined("split_conditions", np.float32)
        self.default_left = joined("default_left", np.bool_)
        self.base = float(base)
        self.transform = int(transform)
        self.missing = float(missing)

    def __call__(self, x: np.ndarray) -> float:
        """The booster's prediction for one row (its probability for ``binary:logistic``)."""
        return float(
            _walk(
                x, self.missing, self.roots, self.left, self.right, self.feature,
                self.value, self.default_left, self.base, self.transform,
            )
        )  # fmt: skip

    @classmethod
    def from_booster(
        cls,
        booster: Any,
        iteration_range: tuple[int, int] = (0, 0),
        missing: float = float("nan"),
    ) -> TreeWalk | None:
        """The walk of ``booster``'s trees in ``iteration_range`` (``(0, 0)``: all), or None
        when the model is one it does not read or it differs from ``inplace_predict`` on the
        probe rows in any bit."""
        model = json.loads(bytes(booster.save_raw("json")))["learner"]
        objective = model["objective"]["name"]
        gbm = model["gradient_booster"]
        params = model["learner_model_param"]
        if gbm.get("name") != "gbtree" or objective not in _TRANSFORMS:
            return None
        if int(params.get("num_class", 0)) > 1 or int(params.get("num_target", 1)) != 1:
            return None
        trees = gbm["model"]["trees"]
        if int(gbm["model"]["gbtree_model_param"].get("num_parallel_tree", 1)) != 1:
            return None
        if any(t.get("categories_nodes") for t in trees) or any(
            int(t["tree_param"].get("size_leaf_vector", 1)) > 1 for t in trees
        ):
            return None
        begin, end = iteration_range
        trees = trees[begin : end or len(trees)]
        base = float(np.float32(json.loads(params["base_score"].replace("E", "e"))[0]
                                if params["base_score"].startswith("[")
                                else float(params["base_score"])))  # fmt: skip
        transform = _TRANSFORMS[objective]
        walk = cls(trees, _logit(base) if transform == 1 else base, transform, missing)
        probes = walk.probes(int(booster.num_features()))
        theirs = booster.inplace_predict(
            probes, iteration_range=iteration_range, predict_type="value", missing=missing,
            validate_features=False,
        )  # fmt: skip
        ours = np.array([walk(row) for row in probes], dtype=np.float32)
        if not np.array_equal(ours.view(np.int32), np.asarray(theirs, np.float32).view(np.int32)):
            return None
        return walk

    def probes(self, n_features: int, n: int = _PROBES, seed: int = 0) -> np.ndarray:
        """Rows that reach many leaves: each feature at one of its split values (exactly,
        just below or above) or missing, drawn at random."""
        rng = np.random.default_rng(seed)
        X = rng.normal(size=(n, n_features))
        splits = self.left != -1
        for j in range(n_features):
            cuts = self.value[splits & (self.feature == j)].astype(np.float64)
            if cuts.size:
                pick = cuts[rng.integers(0, cuts.size, n)]
                X[:, j] = pick + rng.choice([-1.0, 0.0, 1.0], n) * np.abs(pick) * 1e-6
        X[rng.random(X.shape) < 0.1] = np.nan
        return X


def warm() -> None:
    """Compile the kernels into numba's cache (a one-tree walk on one row)."""
    tree = {
        "left_children": [1, -1, -1],
        "right_children": [2, -1, -1],
        "split_indices": [0, 0, 0],
        "split_conditions": [0.5, -0.25, 0.25],
        "default_left": [1, 0, 0],
    }
    for transform in (0, 1):
        TreeWalk([tree], _logit(0.5), transform)(np.array([0.0, np.nan]))
