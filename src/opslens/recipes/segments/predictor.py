"""What the segments recipe's online side loads: the fitted chain behind the predictor protocol.

:class:`SegmentPredictor` answers a frame (batch, service, MLflow pyfunc) through
:meth:`SegmentModel.score` and one instance (stream, service, UI) through
:meth:`SegmentModel.score_one` on numpy arrays alone; both give the same numbers.
Each answer says which path assigned the segment (``hdbscan`` / ``knn``), with what
confidence, and which model predicted each target (``segment`` / ``blend`` / ``global``). A row that
cannot be scored is answered with ``status: rejected`` and the reason, never dropped.

Example:
    >>> from opslens.synthetic.patients import FEATURES, make_patients
    >>> from opslens.recipes.segments.model import fit_model
    >>> from opslens.recipes.segments.params import SegmentsParams
    >>> data = make_patients(n_rows=500, seed=0).frame
    >>> p = SegmentsParams.model_validate({"lgb_series": {"n_estimators": 10},
    ...     "lgb_resource": {"n_estimators": 10}})
    >>> pred = SegmentPredictor(fit_model(data, p, features=list(FEATURES), categorical=["ward"],
    ...     series_target="next_score"))
    >>> one = pred.predict_one(data.row(0, named=True))
    >>> one["status"], one["path"] in ("hdbscan", "knn"), one["model_series"] in ("segment", "blend", "global")
    ('scored', True, True)
    >>> pred.predict_one({**data.row(0, named=True), "ward": "mars"})
    Traceback (most recent call last):
    ...
    opslens.errors.InstanceError: the instance cannot be scored: unseen category 'mars' in ward; fix: ...
    >>> pred.predict_frame(pl.DataFrame([{**data.row(0, named=True), "age": None}]))["reason"][0]
    'null or non-finite age'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from opslens.core.columns import MAX_MAGNITUDE
from opslens.core.frames import as_polars
from opslens.core.predictor import BasePredictor, InputRule
from opslens.errors import InstanceError
from opslens.recipes.segments.model import SegmentModel

__all__ = ["SegmentPredictor"]


def _number(value: Any) -> float | None:
    """``value`` as a float, or None (rejected as null) when it is not a number."""
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class SegmentPredictor(BasePredictor):
    """A fitted :class:`SegmentModel` (segments + both targets' models) as a predictor."""

    recipe = "segments"

    def __init__(self, model: SegmentModel, *, graceful: bool = True) -> None:
        self.model = model
        self.graceful = graceful

    def input_schema(self) -> dict[str, str]:
        """Numeric features and extras (numbers), categorical columns (text)."""
        pre = self.model.preprocessor
        return {
            **{c: "number" for c in pre.numeric},
            **{c: "string" for c in pre.categorical},
        }

    def input_rules(self) -> dict[str, InputRule]:
        """Finite numbers within ±1e100 (no null: the row could not be placed in a segment)
        and, for each categorical column, one of the categories seen in training."""
        pre = self.model.preprocessor
        big = MAX_MAGNITUDE
        return {
            **{c: InputRule("number", False, minimum=-big, maximum=big) for c in pre.numeric},
            **{
                c: InputRule("string", False, choices=tuple(pre.categories_[c]))
                for c in pre.categorical
            },
        }

    def predict_frame(self, frame: pl.DataFrame) -> pl.DataFrame:
        """One answer row per input row (see :meth:`SegmentModel.score`)."""
        return self.model.score(as_polars(frame, what="the instances"), graceful=self.graceful)

    def predict_one(self, instance: Mapping[str, Any]) -> dict[str, Any]:
        """The answer for one instance; InstanceError (the stream's rejection) naming why a row
        that :meth:`predict_frame` would reject cannot be scored. Numpy only, no frame: the
        same numbers as the row :meth:`predict_frame` gives (tested). The usual instance takes
        :class:`~opslens.recipes.segments.instance.InstancePath`; any other, or one it leaves
        (a refusal, the kNN vote), the step by step :meth:`SegmentModel.score_one`."""
        fast = self.__dict__.get("_fast")
        if fast is None or fast.graceful is not self.graceful:
            from opslens.recipes.segments.instance import InstancePath

            fast = self.__dict__["_fast"] = InstancePath(self.model, graceful=self.graceful)
        answer = fast(instance)
        if answer is not None:
            return answer
        pre = self.model.preprocessor
        names = self.__dict__.get("_names")
        if names is None:
            names = self.__dict__["_names"] = (tuple(pre.numeric), tuple(pre.categorical))
        numeric, categorical = names
        if not isinstance(instance, dict) or not all(
            c in instance for c in (*numeric, *categorical)
        ):
            self.check_instance(instance)
        answer = self.model.score_one(
            [_number(instance[c]) for c in numeric],
            [None if instance[c] is None else str(instance[c]) for c in categorical],
            graceful=self.graceful,
        )
        if answer["status"] == "rejected":
            raise InstanceError(
                f"the instance cannot be scored: {answer['reason']}",
                fix="send finite numbers and categories seen in training "
                f"({', '.join(f'{k}: {v}' for k, v in pre.categories_.items())})",
            )
        return answer

    def __getstate__(self) -> dict[str, Any]:
        """The fitted state without the prepared fast path (rebuilt on first use)."""
        state = dict(self.__dict__)
        state.pop("_fast", None)
        return state
