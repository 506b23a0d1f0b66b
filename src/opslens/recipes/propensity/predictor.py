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

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl
from scipy.special import expit

from opslens.core.columns import MAX_MAGNITUDE
from opslens.core.frames import as_polars
from opslens.core.predictor import BasePredictor, InputRule
from opslens.errors import InstanceError
from opslens.recipes.propensity.modelling import design_matrix
from opslens.recipes.propensity.point_in_time import EVENT_KINDS

__all__ = ["PropensityPredictor"]

_PASS = ("user_id", "item_id", "prediction_time")
_EXACT = 2**53  # integers a float64 holds exactly (beyond: the table path converts them)
_FLOAT = {float}
_PLAIN = {float, int, type(None)}  # what the single-row path converts itself


class PropensityPredictor(BasePredictor):
    """A fitted classifier (logistic pipeline or XGBoost) with its feature list and categories."""

    recipe = "propensity"
    #: the event types the online state takes (``POST /events``)
    event_kinds: tuple[str, ...] = EVENT_KINDS

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

    def input_rules(self) -> dict[str, InputRule]:
        """Every feature a number (null passes for XGBoost, which answers missing values;
        the logistic model needs every one) within ±1e100, or ±1e30 for XGBoost, which reads
        32-bit floats, and the category as text."""
        nullable = self.kind != "logistic"
        big = MAX_MAGNITUDE if self.kind == "logistic" else 1e30
        return {
            **{f: InputRule("number", nullable, minimum=-big, maximum=big) for f in self.features},
            "category": InputRule("string"),
        }

    def _score(self, frame: pl.DataFrame) -> np.ndarray:
        return self.probabilities(design_matrix(frame, self.features, self.categories))

    def probabilities(self, X: np.ndarray) -> np.ndarray:
        """Purchase probabilities of design-matrix rows, each row's the same however many
        rows are scored together: a logistic pipeline's score is summed column by column (a
        matrix product's or a row sum's rounding depends on the batch's shape), XGBoost is
        per row already."""
        steps = getattr(self.model, "steps", None)
        last = steps[-1][1] if steps else None
        coef = getattr(last, "coef_", None)
        if steps and coef is not None and coef.shape[0] == 1:
            Z = X
            for _, step in steps[:-1]:
                Z = step.transform(Z)
            Z = np.asarray(Z, dtype=float)
            z = np.full(len(Z), float(getattr(last, "intercept_", [0.0])[0]))
            for j, c in enumerate(coef[0]):  # column by column: the same sums for any batch
                z += Z[:, j] * c
            return np.asarray(expit(z), dtype=float)
        return np.asarray(self.model.predict_proba(X)[:, 1], dtype=float)

    def matrix(
        self, values: np.ndarray, columns: Sequence[str], categories: Sequence[str]
    ) -> np.ndarray:
        """The model's design matrix from feature rows on numpy (``values``: one row per
        instance, ``columns`` its feature names): the same float64 matrix as
        :func:`design_matrix` of the same rows in a table, without building one."""
        at = {c: i for i, c in enumerate(columns)}
        X = np.empty((len(values), len(self.features) + len(self.categories)), dtype=np.float64)
        X[:, : len(self.features)] = values[:, [at[f] for f in self.features]]
        for j, c in enumerate(self.categories):
            X[:, len(self.features) + j] = [1.0 if k == c else 0.0 for k in categories]
        return X

    def score_matrix(
        self, values: np.ndarray, columns: Sequence[str], categories: Sequence[str]
    ) -> np.ndarray:
        """Purchase probabilities of feature rows on numpy (the single-row fast path; the
        same numbers as :meth:`predict_frame` on the same rows)."""
        return self.probabilities(self.matrix(values, columns, categories))

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """Each feature's additive contribution to each row's score (log-odds): XGBoost's
        per-tree path attributions (Saabas: the approximate SHAP values), or the logistic
        coefficient times the standardised value; the one-hot category columns come after
        the features."""
        if self.kind == "xgboost":
            import xgboost as xgb

            booster = self.model.get_booster()
            # one thread (a pool per call costs more than the call); the path-based
            # attribution (Saabas), a few times faster than exact SHAP on a request's rows
            data = xgb.DMatrix(X, nthread=1)
            contrib = booster.predict(data, pred_contribs=True, approx_contribs=True)
            return np.asarray(contrib[:, :-1], dtype=float)  # the last column is the bias
        steps = getattr(self.model, "steps", None)
        if steps:
            *prep, (_, last) = steps
            Z = X
            for _, step in prep:
                Z = step.transform(Z)
            return np.asarray(Z * last.coef_[0], dtype=float)
        coef = getattr(self.model, "coef_", None)
        return np.asarray(X * (coef[0] if coef is not None else 0.0), dtype=float)

    def online_scorer(
        self,
        analysis: Any = None,
        raw: pl.DataFrame | None = None,
        item_table: pl.DataFrame | None = None,
    ) -> Any:
        """This model answering "this user, these items, now" from live events
        (:class:`~opslens.recipes.propensity.online_scoring.OnlineScorer`), its state
        warm-started from ``raw`` (the analysis's events as a run reads them), or empty."""
        from opslens.recipes.propensity.online_scoring import OnlineScorer, scorer_for
        from opslens.recipes.propensity.online_state import OnlineState

        if analysis is None or raw is None:
            return OnlineScorer(self, OnlineState())
        return scorer_for(self, analysis, raw, item_table)

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
        # the ids and the probabilities side by side (rows without ids: the probabilities alone)
        return frame.select(*keep, pl.Series("probability", self._score(frame)))

    def predict_one(self, instance: Mapping[str, Any]) -> dict[str, Any]:
        """The purchase probability of one (user, item, time) row and the model that gave it.

        A row of numbers and a text (or null) category takes the single-row path on numpy
        (:meth:`probability_one`); anything else (text for a number, say) goes through the
        one-row table the batch path reads, which converts or refuses it as a batch would.
        """
        try:
            x = self._row(instance)
        except (KeyError, TypeError):  # a field missing, or not an object: named as missing
            self.check_instance(instance)
            raise
        if x is not None:
            probability = self.probability_one(x)
        else:
            probability = self._probability_via_table(instance)
        answer: dict[str, Any] = {k: instance[k] for k in _PASS if k in instance}
        answer |= {
            "probability": probability,
            "model": self.kind,
            "horizon_hours": self.horizon_hours,
        }
        return answer

    def _row(self, instance: Mapping[str, Any]) -> np.ndarray | None:
        """The design-matrix row of ``instance`` (the one :func:`design_matrix` builds), or None
        when a value is not a plain number (or a category not text or null); KeyError for a
        missing field. Every feature a float (the usual row) is checked by one pass over the
        values' types; ints (within 2**53) and nulls are converted one by one."""
        values = [instance[f] for f in self.features]
        kinds = set(map(type, values))
        if not kinds <= _FLOAT:
            if not kinds <= _PLAIN:
                return None
            for i, v in enumerate(values):
                if v is None:
                    values[i] = math.nan
                elif type(v) is int:
                    if not -_EXACT <= v <= _EXACT:
                        return None
                    values[i] = float(v)
        category = instance["category"]
        if category is not None and type(category) is not str:
            return None
        hot = self.__dict__.get("_hot")
        if hot is None:
            hot = self.__dict__["_hot"] = {
                c: [1.0 if c == k else 0.0 for k in self.categories] for c in self.categories
            }
        values += hot.get(category) or [0.0] * len(self.categories)
        return np.array(values, dtype=np.float64)

    def probability_one(self, x: np.ndarray) -> float:
        """The purchase probability of one design-matrix row (1-D float64): XGBoost's
        ``inplace_predict`` on the row as ``predict_proba`` calls it (the same iteration range
        and missing value; its class-one column), or the logistic score of :meth:`probabilities`.
        The same number as :meth:`predict_frame` gives for that row (tested).

        Example:
            >>> from sklearn.linear_model import LogisticRegression
            >>> clf = LogisticRegression().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1])
            >>> p = PropensityPredictor(clf, "logistic", ["pair_views"], [], horizon_hours=1.0)
            >>> bool(p.probability_one(np.array([3.0])) == p.probabilities(np.array([[3.0]]))[0])
            True
        """
        fast = self.__dict__.get("_fast")
        if fast is None:
            fast = self.__dict__["_fast"] = self._fast_call()
        if fast is False:
            return float(self.probabilities(x[None, :])[0])
        if fast[0] == "logistic":
            return self._logistic_one(x, fast[1], fast[2], fast[3])
        if fast[0] == "walk":
            return fast[1](x)  # type: ignore[no-any-return]
        _, booster, iteration_range, missing = fast
        p = booster.inplace_predict(
            x[None, :],
            iteration_range=iteration_range,
            predict_type="value",
            missing=missing,
            validate_features=False,
        )
        return float(p[0])

    @staticmethod
    def _logistic_one(
        x: np.ndarray, prep: list[tuple[str, Any, Any]], coef: list[float], intercept: float
    ) -> float:
        """:meth:`probabilities` of one row with the pipeline's steps done on numpy, without
        scikit-learn's input checks (tens of microseconds each): the same element-wise
        operations in the same order, so the same float64 numbers."""
        Z = x[None, :]
        for kind, a, b in prep:
            if kind == "function":
                Z = a(Z)
            else:  # a StandardScaler's transform: centred, then scaled, on a copy
                Z = np.array(Z, dtype=np.float64)
                if a is not None:
                    Z -= a
                if b is not None:
                    Z /= b
        z = intercept  # column by column, as :meth:`probabilities` sums (float64 alike)
        for value, c in zip(Z[0].tolist(), coef, strict=True):
            z += value * c
        return float(expit(np.full(1, z))[0])

    def _logistic_steps(self) -> Any:
        """What :meth:`_logistic_one` runs — each step as ("function", func, None) or
        ("scale", mean or None, scale or None), the coefficients and the intercept — or
        False: a pipeline with a step it does not know (it then takes scikit-learn's path)."""
        from sklearn.preprocessing import FunctionTransformer, StandardScaler

        steps = getattr(self.model, "steps", None)
        last = steps[-1][1] if steps else None
        coef = getattr(last, "coef_", None)
        if not steps or coef is None or coef.shape[0] != 1:
            return False
        prep: list[tuple[str, Any, Any]] = []
        for _, step in steps[:-1]:
            if (
                type(step) is FunctionTransformer
                and not step.validate
                and not step.kw_args
                and step.func is not None
            ):
                prep.append(("function", step.func, None))
            elif type(step) is StandardScaler:
                mean = step.mean_ if step.with_mean else None
                scale = step.scale_ if step.with_std else None
                prep.append(("scale", mean, scale))
            else:
                return False
        intercept = float(getattr(last, "intercept_", [0.0])[0])
        return "logistic", prep, [float(c) for c in coef[0]], intercept

    def _fast_call(self) -> Any:
        """What :meth:`probability_one` runs: the booster's trees walked by a compiled kernel
        (``("walk", TreeWalk)``: XGBoost's number to the bit, checked when built, about 6 µs
        against 180 µs for XGBoost's own single-row call), else what it hands XGBoost
        ("xgboost", the booster, ``predict_proba``'s iteration range and missing value), or
        what it runs for a logistic pipeline (:meth:`_logistic_steps`), or False: none of
        these (scikit-learn's path then)."""
        from opslens.models.trees import TreeWalk  # numba: loaded for a single-row answer only

        model = self.model
        if self.kind == "logistic":
            return self._logistic_steps()
        if self.kind != "xgboost" or not hasattr(model, "get_booster"):
            return False
        if getattr(model, "objective", None) != "binary:logistic" or getattr(
            model, "booster", None
        ) not in (None, "gbtree", "dart"):
            return False
        booster, iteration_range = model.get_booster(), model._get_iteration_range(None)
        walk = TreeWalk.from_xgboost(booster, iteration_range, model.missing)
        if walk is not None:
            return "walk", walk
        return "xgboost", booster, iteration_range, model.missing

    def _probability_via_table(self, instance: Mapping[str, Any]) -> float:
        try:
            row = pl.DataFrame(
                [{k: instance[k] for k in self.input_schema()}],
                schema={**{f: pl.Float64 for f in self.features}, "category": pl.String},
            )
        except (TypeError, ValueError, OverflowError, pl.exceptions.PolarsError) as e:
            raise InstanceError(
                f"an instance's features must be numbers: {e}".splitlines()[0],
                fix="send numbers for every feature and the category as text",
            ) from None
        return float(self._score(row)[0])

    def __getstate__(self) -> dict[str, Any]:
        """The fitted state without the single-row call (rebuilt on first use)."""
        state = dict(self.__dict__)
        state.pop("_fast", None)
        state.pop("_hot", None)
        return state
