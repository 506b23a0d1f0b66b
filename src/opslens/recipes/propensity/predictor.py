"""What the propensity recipe's online side loads: the chosen purchase model and its features.

An instance is one (user, item, prediction time) row with its point-in-time
features (the columns of the ``*_features`` tables); the answer is the
probability that the user buys the item within the label horizon. ``user_id``,
``item_id`` and ``prediction_time`` are passed through when present.

Example:
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> clf = LogisticRegression().fit(X, [0, 0, 1, 1])
    >>> p = PropensityPredictor(clf, "logistic", ["pair_views"], [], horizon_hours=168.0)
    >>> round(p.predict_one({"pair_views": 3, "category": "x"})["probability"], 2)
    0.81
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from opslens.core.frames import as_polars
from opslens.core.predictor import BasePredictor
from opslens.errors import InstanceError
from opslens.recipes.propensity.modelling import design_matrix

__all__ = ["PropensityPredictor"]

_PASS = ("user_id", "item_id", "prediction_time")


class PropensityPredictor(BasePredictor):
    """A fitted classifier (logistic pipeline or XGBoost) with its feature list and categories."""

    recipe = "propensity"

    def __init__(
        self,
        model: Any,
        kind: str,
        features: Sequence[str],
        categories: Sequence[str],
        *,
        horizon_hours: float,
    ) -> None:
        self.model = model
        self.kind = kind
        self.features = list(features)
        self.categories = list(categories)
        self.horizon_hours = horizon_hours

    def input_schema(self) -> dict[str, str]:
        """Every feature (numbers) and the item category (text)."""
        return {**{f: "number" for f in self.features}, "category": "string"}

    def _score(self, frame: pl.DataFrame) -> np.ndarray:
        X = design_matrix(frame, self.features, self.categories)
        return np.asarray(self.model.predict_proba(X)[:, 1], dtype=float)

    def predict_frame(self, frame: pl.DataFrame) -> pl.DataFrame:
        """``probability`` of a purchase within the horizon for each row (ids passed through)."""
        frame = as_polars(frame, what="the rows to score")
        missing = [c for c in self.input_schema() if c not in frame.columns]
        if missing:
            raise InstanceError(
                f"the rows to score lack {', '.join(missing[:5])}",
                fix="score rows of a *_features table (point-in-time features of each pair)",
            )
        keep = [c for c in _PASS if c in frame.columns]
        return frame.select(keep).with_columns(probability=pl.Series(self._score(frame)))

    def predict_one(self, instance: Mapping[str, Any]) -> dict[str, Any]:
        """The purchase probability of one (user, item, time) row and the model that gave it."""
        self.check_instance(instance)
        try:
            row = pl.DataFrame(
                [{k: instance[k] for k in self.input_schema()}],
                schema={**{f: pl.Float64 for f in self.features}, "category": pl.String},
            )
        except (TypeError, ValueError, pl.exceptions.PolarsError) as e:
            raise InstanceError(
                f"an instance's features must be numbers: {e}".splitlines()[0],
                fix="send numbers for every feature and the category as text",
            ) from None
        answer: dict[str, Any] = {k: instance[k] for k in _PASS if k in instance}
        answer |= {
            "probability": float(self._score(row)[0]),
            "model": self.kind,
            "horizon_hours": self.horizon_hours,
        }
        return answer
