"""One plain instance through a fitted segments model in as few Python steps as it takes.

:meth:`SegmentModel.score_one` goes step by step through the preprocessor, the assigner and
each target's regressor, each checking its own input; for the service's usual instance —
every number a float (or an exact int), every category a known text, a point inside a
segment — most of that time is the steps themselves, not the work. :class:`InstancePath`
does the same arithmetic in one method on what it prepared once from the fitted model:
the scaler's mean and scale, the training ranges, the categories' codes, the reference
points sorted for :class:`~opslens.cluster.nearest.NearestReference` (the KD-tree's
nearest point and distance, bit for bit, without the cost of its call), their labels and
strengths and the segments' radii as Python lists, and per segment the
single-row boosters of both targets (:class:`~opslens.models.trees.TreeWalk`, else
:class:`~opslens.recipes.segments.single_row.SingleRowBooster`).
Anything else — a value to convert, a row to reject, a point outside every segment (the
kNN vote), a segment without a model when graceful degradation is off — answers None,
and the caller takes :meth:`SegmentModel.score_one`, which gives that row's answer.
Where it answers, the answer is :meth:`SegmentModel.score_one`'s, number for number
(tested against the batch path).

Example:
    >>> from opslens.synthetic.patients import FEATURES, make_patients
    >>> from opslens.recipes.segments.model import fit_model
    >>> from opslens.recipes.segments.params import SegmentsParams
    >>> data = make_patients(n_rows=500, seed=0).frame
    >>> p = SegmentsParams.model_validate({"lgb_series": {"n_estimators": 10},
    ...     "lgb_resource": {"n_estimators": 10}})
    >>> model = fit_model(data, p, features=list(FEATURES), categorical=["ward"],
    ...     series_target="next_score")
    >>> path = InstancePath(model, graceful=True)
    >>> row = data.row(0, named=True)
    >>> answer = path(row)
    >>> answer is None or answer == model.score_one(
    ...     [row[c] for c in model.preprocessor.numeric], [row["ward"]])
    True
    >>> path({**row, "ward": "mars"}) is None  # refused: the caller's step-by-step path says why
    True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from opslens.cluster.nearest import NearestReference
from opslens.core.columns import MAX_MAGNITUDE

if TYPE_CHECKING:
    from opslens.recipes.segments.model import SegmentModel

__all__ = ["InstancePath"]

_EXACT = 2**53  # integers a float64 holds exactly (beyond: the step-by-step path converts)


class InstancePath:
    """The common case of :meth:`SegmentModel.score_one`, prepared once (see the module)."""

    def __init__(self, model: SegmentModel, *, graceful: bool) -> None:
        pre = model.preprocessor
        a = model.assigner
        self.model = model
        self.graceful = graceful
        self.numeric = tuple(pre.numeric)
        self.categorical = tuple(pre.categorical)
        self.codes = [
            {label: float(i) for i, label in enumerate(pre.categories_[c])} for c in pre.categorical
        ]
        self.k = len(pre.features)
        self.mean = pre.scaler_.mean_
        self.scale = pre.scaler_.scale_
        ranges = getattr(pre, "ranges_", None)
        self.bounds = None if ranges is None else [ranges[c] for c in pre.features]
        self.width = int(a.n_features_in_)
        self.query = a.tree_.query
        self.nearest = NearestReference(a.reference_)
        self.labels: list[int] = a.reference_labels_.tolist()
        self.strength: list[float] = a.reference_strength_.tolist()
        self.radius: list[float] = a.radius_.tolist()
        #: per segment: the series boosters, the model that answers, the resource's alike
        self.plans: dict[int, tuple[list[Any], str, list[Any], str] | None] = {}

    def _plan(self, segment: int) -> tuple[list[Any], str, list[Any], str] | None:
        """Both targets' single-row boosters for a point inside ``segment`` (None: a model
        missing while graceful degradation is off: the step-by-step path rejects it)."""
        m = self.model
        ms, series = m.series._plan(segment, False, self.graceful)
        mr, resource = m.resource._plan(segment, False, self.graceful)
        if not self.graceful and "none" in (ms, mr):
            return None
        return series, ms, resource, mr

    def __call__(self, instance: Mapping[str, Any]) -> dict[str, Any] | None:
        """The answer of :meth:`SegmentModel.score_one` for ``instance``, or None: not the
        common case (see the module)."""
        values: list[float] = []
        try:
            for c in self.numeric:
                v = instance[c]
                if type(v) is float:
                    values.append(v)
                elif type(v) is int and -_EXACT <= v <= _EXACT:
                    values.append(float(v))
                else:
                    return None
            codes = []
            for c, known in zip(self.categorical, self.codes, strict=True):
                label = instance[c]
                code = known.get(label) if type(label) is str else None
                if code is None:
                    return None
                codes.append(code)
        except (KeyError, TypeError):  # a missing column, not a mapping
            return None
        # every value finite and within the magnitude the batch path takes (NaN fails each)
        total = sum(values)
        if total != total or not (
            -MAX_MAGNITUDE <= min(values, default=0.0) and max(values, default=0.0) <= MAX_MAGNITUDE
        ):
            return None
        row = np.array(values + codes, dtype=np.float64)
        # StandardScaler.transform's own arithmetic, as Preprocessor.encode_one does it
        x = (row[: self.k] - self.mean) / self.scale
        if x.shape != (self.width,) or not math.isfinite(x @ x):
            return None
        inside = True
        if self.bounds is not None:
            for v, (lo, hi) in zip(values, self.bounds, strict=False):
                if not lo <= v <= hi:
                    inside = False
                    break
        idx, dist = self.nearest(x)  # the tree's answer, without its call's cost
        if idx < 0:  # a tie, or a point the sweep leaves to the tree
            dist, idx = self.query(x)
        segment = self.labels[idx]
        if dist > self.radius[segment]:
            return None  # outside every segment: the kNN vote
        plans = self.plans
        if segment in plans:
            plan = plans[segment]
        else:
            plan = plans[segment] = self._plan(segment)
        if plan is None:
            return None
        series, ms, resource, mr = plan
        ps, pr = _summed(series, row), _summed(resource, row)
        confidence = self.strength[idx]
        return {
            "status": "scored",
            "reason": None,
            "segment": segment,
            "path": "hdbscan",
            "confidence": None if confidence != confidence else confidence,
            "pred_series": None if ps != ps else ps,
            "model_series": ms,
            "pred_resource": None if pr != pr else pr,
            "model_resource": mr,
            "in_range": inside,
        }


def _summed(boosters: Sequence[Callable[[np.ndarray], float]], row: np.ndarray) -> float:
    """The boosters' predictions of ``row`` added in order (the batch path's order); NaN
    when there are none."""
    if not boosters:
        return math.nan
    total = boosters[0](row)
    for booster in boosters[1:]:
        total += booster(row)
    return total
