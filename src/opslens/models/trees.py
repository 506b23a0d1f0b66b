"""One row through a booster's trees, the library's own number to the last bit, in microseconds.

XGBoost's ``Booster.inplace_predict`` on one row costs about 180 µs for 200 trees of depth
3, and LightGBM's single-row fast path about 8 µs for 100 trees, nearly all of it the call's
own work (configuration, adapters, thread pools): the walk through the trees takes about a
microsecond. :class:`TreeWalk` reads the booster's trees once (its JSON model) and a
compiled kernel walks them as the library's CPU predictor does:

* XGBoost (:meth:`TreeWalk.from_xgboost`): the row's values as float32, a value is missing
  when NaN or equal to ``missing`` (its default branch then), ``value < split`` goes left,
  the leaf values added to the base margin one tree after another in float32, then the
  objective's transform (``binary:logistic``: XGBoost's float32 sigmoid).
* LightGBM (:meth:`TreeWalk.from_lightgbm`): float64 values, those within ``1e-35`` of zero
  read as zero, a NaN read as zero unless the split's missing type is NaN, a missing value
  (NaN, or zero for a missing type of zero) to the default branch, ``value <= threshold``
  goes left, the leaf values added from zero one tree after another in float64 (objectives
  whose answer is the raw sum: the regressions).

Each constructor checks the walk against the booster's own batch prediction on probe rows
built from the trees' split values, and gives None — the caller keeps the library's call —
for a model it does not read (categorical splits, several outputs or parallel trees, dart,
linear trees, another objective) or whose answers differ in any bit.

Example:
    >>> import numpy as np, xgboost as xgb
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(400, 5)); y = (X[:, 0] + rng.normal(size=400) > 0).astype(int)
    >>> model = xgb.XGBClassifier(n_estimators=20, max_depth=3, n_jobs=1).fit(X, y)
    >>> walk = TreeWalk.from_xgboost(model.get_booster())
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

#: XGBoost objectives the walk answers: 1 for XGBoost's sigmoid of the margin, 0 the margin
_XGB_TRANSFORMS = {"binary:logistic": 1, "reg:logistic": 1, "reg:squarederror": 0}
#: LightGBM objectives whose prediction is the raw sum of the trees
_LGB_RAW = ("regression", "regression_l1", "huber", "fair", "quantile", "mape")
#: LightGBM's kZeroThreshold (a float constant): values this close to zero are zero
_ZERO = float(np.float32(1e-35))
#: LightGBM's missing types, as the kernel reads them
_MISSING_TYPES = {"None": 0, "Zero": 1, "NaN": 2}
#: rows a walk is checked on against the booster before it answers for it
_PROBES = 512


@njit(cache=True, nogil=True)  # type: ignore[misc]
def _walk_xgboost(
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
    """One row (float64) through XGBoost's trees: the transformed float32 sum, as a float."""
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
def _walk_lightgbm(
    x: np.ndarray,
    roots: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    feature: np.ndarray,
    value: np.ndarray,
    default_left: np.ndarray,
    missing_type: np.ndarray,
    zero: float,
) -> float:
    """One row (float64) through LightGBM's trees: the float64 sum of the leaves."""
    total = 0.0
    for t in range(roots.size):
        i = roots[t]
        while left[i] != -1:
            v = x[feature[i]]
            kind = missing_type[i]
            if -zero <= v <= zero:  # the dense row's reading: nearly zero is zero
                v = 0.0
            elif v != v and kind != 2:
                v = 0.0
            if (kind == 1 and v == 0.0) or (kind == 2 and v != v):
                i = left[i] if default_left[i] else right[i]
            elif v <= value[i]:
                i = left[i]
            else:
                i = right[i]
        total += value[i]
    return total


@njit(cache=True, nogil=True)  # type: ignore[misc]
def _logit(p: float) -> float:
    """XGBoost's ProbToMargin for a logistic objective, in float32: ``-log(1/p - 1)``."""
    q = np.float32(np.float32(1.0) / np.float32(p) - np.float32(1.0))
    return float(-np.float32(np.log(q)))


def _lightgbm_nodes(node: dict[str, Any], out: dict[str, list[Any]]) -> int:
    """Append ``node`` and its subtree (LightGBM's dump) to the flat lists, depth first; its
    index."""
    at = len(out["left"])
    leaf = "leaf_value" in node
    out["left"].append(-1)
    out["right"].append(-1)
    out["feature"].append(0 if leaf else int(node["split_feature"]))
    out["value"].append(float(node["leaf_value"] if leaf else node["threshold"]))
    out["default_left"].append(bool(node.get("default_left", False)))
    out["missing_type"].append(_MISSING_TYPES[node.get("missing_type", "None")])
    if not leaf:
        if node["decision_type"] != "<=":
            raise _Unread
        out["left"][at] = _lightgbm_nodes(node["left_child"], out)
        out["right"][at] = _lightgbm_nodes(node["right_child"], out)
    return at


class _Unread(Exception):
    """A model the walk does not read."""


class TreeWalk:
    """A booster's trees as flat arrays and the kernel that walks one row through them.

    Build it with :meth:`from_xgboost` or :meth:`from_lightgbm` (checked against the
    booster); call it on a 1-D float64 row of the booster's features.
    """

    def __init__(
        self,
        library: str,
        trees: list[dict[str, list[Any]]],
        n_features: int,
        *,
        base: float = 0.0,
        transform: int = 0,
        missing: float = float("nan"),
    ) -> None:
        """``trees``: per tree, its nodes' ``left``/``right`` children (-1 at a leaf, indices
        within the tree), split ``feature``, ``value`` (the threshold, or the leaf's value),
        ``default_left`` and (LightGBM) ``missing_type``."""
        sizes = [len(t["left"]) for t in trees]
        offsets = np.cumsum([0, *sizes])[:-1].astype(np.int64)  # each tree's first node

        def joined(key: str, dtype: Any, shift: bool = False) -> np.ndarray:
            parts = []
            for t, at in zip(trees, offsets, strict=True):
                a = np.asarray(t.get(key, [0] * len(t["left"])), dtype=dtype)
                parts.append(np.where(a >= 0, a + at, -1).astype(dtype) if shift else a)
            return np.concatenate(parts) if parts else np.empty(0, dtype)

        self.library = library
        self.shape = (int(n_features),)
        self.roots = offsets
        self.left = joined("left", np.int64, shift=True)
        self.right = joined("right", np.int64, shift=True)
        self.feature = joined("feature", np.int64)
        self.value = joined("value", np.float32 if library == "xgboost" else np.float64)
        self.default_left = joined("default_left", np.bool_)
        self.missing_type = joined("missing_type", np.int8)
        self.base = float(base)
        self.transform = int(transform)
        self.missing = float(missing)

    def __call__(self, x: np.ndarray) -> float:
        """The booster's prediction for one row (its probability for ``binary:logistic``)."""
        if x.shape != self.shape or x.dtype != np.float64:
            raise ValueError(
                f"a row of {self.shape[0]} float64 values is needed, not {x.dtype} {x.shape}"
            )
        if self.library == "xgboost":
            return float(
                _walk_xgboost(
                    x, self.missing, self.roots, self.left, self.right, self.feature,
                    self.value, self.default_left, self.base, self.transform,
                )
            )  # fmt: skip
        return float(
            _walk_lightgbm(
                x, self.roots, self.left, self.right, self.feature, self.value,
                self.default_left, self.missing_type, _ZERO,
            )
        )  # fmt: skip

    @classmethod
    def from_xgboost(
        cls,
        booster: Any,
        iteration_range: tuple[int, int] = (0, 0),
        missing: float | None = float("nan"),
    ) -> TreeWalk | None:
        """The walk of an XGBoost ``booster``'s trees in ``iteration_range`` (``(0, 0)``:
        all), or None when the model is one it does not read or it differs from
        ``inplace_predict`` on the probe rows in any bit."""
        missing = float("nan") if missing is None else float(missing)
        model = json.loads(bytes(booster.save_raw("json")))["learner"]
        objective = model["objective"]["name"]
        gbm = model["gradient_booster"]
        params = model["learner_model_param"]
        if gbm.get("name") != "gbtree" or objective not in _XGB_TRANSFORMS:
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
        flat = [
            {
                "left": t["left_children"],
                "right": t["right_children"],
                "feature": t["split_indices"],
                # a leaf's value sits where a split's threshold would (XGBoost's JSON model)
                "value": t["split_conditions"],
                "default_left": t["default_left"],
            }
            for t in trees[begin : end or len(trees)]
        ]
        score = params["base_score"]  # "[5E-1]" (a vector, XGBoost 3) or "5E-1"
        base = float(np.float32(float(score.strip("[]").split(",")[0])))
        transform = _XGB_TRANSFORMS[objective]
        walk = cls(
            "xgboost", flat, int(booster.num_features()),
            base=_logit(base) if transform == 1 else base, transform=transform, missing=missing,
        )  # fmt: skip
        probes = walk.probes()
        theirs = booster.inplace_predict(
            probes, iteration_range=iteration_range, predict_type="value", missing=missing,
            validate_features=False,
        )  # fmt: skip
        return walk if walk._same(probes, np.asarray(theirs, np.float32)) else None

    @classmethod
    def from_lightgbm(cls, booster: Any) -> TreeWalk | None:
        """The walk of a LightGBM ``booster``'s trees (its best iteration's, as ``predict``
        takes them), or None when the model is one it does not read or it differs from
        ``predict`` on the probe rows in any bit."""
        model = booster.dump_model()
        objective = str(model.get("objective", "")).split(" ")[0]
        if (
            objective not in _LGB_RAW
            or int(model.get("num_tree_per_iteration", 1)) != 1
            or model.get("average_output")
        ):
            return None
        flat = []
        for info in model["tree_info"]:
            if info.get("num_cat"):  # categorical splits (linear trees fail the probes)
                return None
            out: dict[str, list[Any]] = {k: [] for k in ("left", "right", "feature", "value",
                                                           "default_left", "missing_type")}  # fmt: skip
            try:
                _lightgbm_nodes(info["tree_structure"], out)
            except _Unread:
                return None
            flat.append(out)
        walk = cls("lightgbm", flat, int(booster.num_feature()))
        probes = walk.probes()
        theirs = np.asarray(booster.predict(probes, num_threads=1), dtype=np.float64)
        return walk if walk._same(probes, theirs) else None

    def _same(self, probes: np.ndarray, theirs: np.ndarray) -> bool:
        """Whether the walk gives the library's numbers on ``probes``, bit for bit."""
        ours = np.array([self(row) for row in probes], dtype=theirs.dtype)
        return bool(
            np.array_equal(ours.view(f"i{ours.itemsize}"), theirs.view(f"i{theirs.itemsize}"))
        )

    def probes(self, n: int = _PROBES, seed: int = 0) -> np.ndarray:
        """Rows that reach many leaves: each feature at one of its split values (exactly,
        just below or above), zero or missing, drawn at random."""
        rng = np.random.default_rng(seed)
        X = rng.normal(size=(n, self.shape[0]))
        splits = self.left != -1
        for j in range(self.shape[0]):
            cuts = self.value[splits & (self.feature == j)].astype(np.float64)
            if cuts.size:
                pick = cuts[rng.integers(0, cuts.size, n)]
                X[:, j] = pick + rng.choice([-1.0, 0.0, 1.0], n) * np.abs(pick) * 1e-6
        X[rng.random(X.shape) < 0.05] = 0.0
        X[rng.random(X.shape) < 0.1] = np.nan
        return X


def warm() -> None:
    """Compile the kernels into numba's cache: one-tree walks of one row."""
    tree: dict[str, list[Any]] = {
        "left": [1, -1, -1],
        "right": [2, -1, -1],
        "feature": [0, 0, 0],
        "value": [0.5, -0.25, 0.25],
        "default_left": [1, 0, 0],
        "missing_type": [2, 0, 0],
    }
    row = np.array([0.0, np.nan])
    for transform in (0, 1):
        TreeWalk("xgboost", [tree], 2, base=_logit(0.5), transform=transform)(row)
    TreeWalk("lightgbm", [tree], 2)(row)
