"""Models of an axis on other signals and per operating mode, not against the clock.

An axis is predicted from named input columns (``params.model.regressors``: other axes
or exogenous columns, e.g. flow from pump speed) by least squares, and/or with one model
per operating mode (``params.model.mode_column``: the mode given as a column). Without
regressors a mode's model is the median of its training values (its operating point).

Each model records the range of every regressor it was fitted on (``x_range_``): the
online checker warns once per stream when one is scored far outside it. Scoring needs
every input: a sample without a regressor, or in a mode never seen in
training, is a :class:`ValueError` naming the axis and the fix (the recipe turns it into a
one-line error, exit 2, in batch, and a per-sample error in a stream).

Example:
    >>> import numpy as np
    >>> speed = np.array([1.0, 2.0, 3.0, 1.0, 2.0, 3.0])
    >>> mode = np.array(["low", "low", "low", "high", "high", "high"], dtype=object)
    >>> flow = np.where(mode == "low", 2.0 * speed, 2.0 * speed + 10.0)
    >>> m = AxisConditional(("speed",), "mode", axis="flow").fit({"speed": speed, "mode": mode}, flow)
    >>> m.predict_columns({"speed": np.array([4.0]), "mode": np.array(["high"], dtype=object)}).round(6).tolist()
    [18.0]
    >>> round(m.predict_row({"speed": 4.0, "mode": "low"}), 6)
    8.0
    >>> m.predict_row({"speed": 4.0, "mode": "idle"})
    Traceback (most recent call last):
    ...
    ValueError: axis 'flow': mode 'idle' (column mode) was never seen in training (modes: high, low); add samples of that mode to the training window, or drop params.model.mode_column
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.linear_model import LinearRegression
from sklearn.utils.validation import check_is_fitted

from opslens.recipes.residual.modes import ModeFinder

__all__ = ["AxisConditional"]

_ALL = "*"


class AxisConditional(BaseEstimator):  # type: ignore[misc]
    """One axis as ``y = a_m + b_m · x`` per mode ``m`` (``x``: the regressors; none: the mode's median)."""

    def __init__(
        self,
        regressors: Sequence[str] = (),
        mode_column: str | None = None,
        *,
        axis: str = "axis",
        modes: ModeFinder | None = None,
    ) -> None:
        self.regressors = regressors
        self.mode_column = mode_column
        self.axis = axis
        self.modes = modes

    @property
    def family(self) -> str:
        """``regression``, ``per-mode regression`` or ``per-mode level``."""
        if not self.regressors:
            return "per-mode level"
        return "per-mode regression" if self._moded() else "regression"

    def _moded(self) -> bool:
        return bool(self.mode_column) or self.modes is not None

    def inputs(self) -> list[str]:
        """The columns a sample needs besides the axis itself."""
        found = list(self.modes.signals) if self.modes is not None else []
        wanted = [*self.regressors, *([self.mode_column] if self.mode_column else []), *found]
        return list(dict.fromkeys(wanted))

    def mode_of_columns(self, columns: Mapping[str, Any]) -> np.ndarray | None:
        """The operating mode of every row (None: the model has no modes)."""
        if not self._moded():
            return None
        n = len(columns[self.inputs()[0]]) if self.inputs() else 0
        return self._modes_of(columns, n)

    def mode_of_row(self, sample: Mapping[str, Any]) -> str | None:
        """The operating mode of one sample (None: the model has no modes)."""
        if self.modes is not None:
            return self.modes.predict_row(sample)
        return str(sample[self.mode_column]) if self.mode_column else None

    def _modes_of(self, columns: Mapping[str, Any], n: int) -> np.ndarray:
        if self.modes is not None:
            return self.modes.predict_columns(columns).astype(str)
        if self.mode_column:
            return np.asarray(columns[self.mode_column]).astype(str)
        return np.full(n, _ALL)

    def _missing(self, columns: Mapping[str, Any]) -> None:
        for name in self.inputs():
            if name not in columns:
                raise ValueError(
                    f"axis '{self.axis}': input column '{name}' is missing; send '{name}' "
                    f"with every sample (the model of '{self.axis}' was fitted on it), or "
                    "retrain without it in params.model.regressors / params.model.mode_column"
                )

    def _unseen(self, mode: str) -> ValueError:
        return ValueError(
            f"axis '{self.axis}': mode '{mode}' (column {self.mode_column}) was never seen in "
            f"training (modes: {', '.join(sorted(self.coef_))}); add samples of that mode to "
            "the training window, or drop params.model.mode_column"
        )

    def fit(self, columns: Mapping[str, np.ndarray], y: np.ndarray) -> AxisConditional:
        """Fit on input ``columns`` (arrays, one per input) and the axis values ``y``."""
        self._missing(columns)
        y = np.asarray(y, dtype=np.float64)
        if self.modes is not None and not hasattr(self.modes, "centres_"):
            self.modes.fit(columns)  # found modes: clustered on these rows' signals
        modes = self._modes_of(columns, y.size)
        x = (
            np.column_stack([np.asarray(columns[r], dtype=np.float64) for r in self.regressors])
            if self.regressors
            else np.empty((y.size, 0))
        )
        self.x_range_ = {
            r: (float(np.nanmin(x[:, j])), float(np.nanmax(x[:, j])))
            for j, r in enumerate(self.regressors)
        }
        self.coef_: dict[str, list[float]] = {}
        self.intercept_: dict[str, float] = {}
        self.rows_: dict[str, int] = {}
        for mode in sorted(set(modes.tolist())):
            rows = modes == mode
            if self.regressors and int(rows.sum()) > len(self.regressors):
                lr = LinearRegression().fit(x[rows], y[rows])
                self.coef_[mode] = [float(c) for c in lr.coef_]
                self.intercept_[mode] = float(lr.intercept_)
            else:
                self.coef_[mode] = [0.0] * len(self.regressors)
                self.intercept_[mode] = float(np.median(y[rows]))
            self.rows_[mode] = int(rows.sum())
        for mode in getattr(self.modes, "labels_", []):  # a found mode without rows of this axis
            if mode not in self.coef_:
                every = AxisConditional(self.regressors, axis=self.axis).fit(columns, y)
                self.coef_[mode], self.intercept_[mode] = every.coef_[_ALL], every.intercept_[_ALL]
                self.rows_[mode] = 0
        return self

    def predict_columns(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """Predictions for arrays of inputs (every one the same length)."""
        check_is_fitted(self, "coef_")
        self._missing(columns)
        n = len(columns[self.inputs()[0]]) if self.inputs() else 0
        modes = self._modes_of(columns, n)
        out = np.full(n, np.nan)
        for mode in set(modes.tolist()):
            if mode not in self.coef_:
                raise self._unseen(mode)
            rows = modes == mode
            value = np.full(int(rows.sum()), self.intercept_[mode])
            for r, c in zip(self.regressors, self.coef_[mode], strict=True):
                value = value + c * np.asarray(columns[r], dtype=np.float64)[rows]
            out[rows] = value
        return out

    def predict_row(self, sample: Mapping[str, Any]) -> float:
        """The prediction for one sample (a mapping holding every input)."""
        self._missing(sample)
        if self.modes is not None:
            mode = self.modes.predict_row(sample)
        else:
            mode = str(sample[self.mode_column]) if self.mode_column else _ALL
        coef = self.coef_.get(mode)
        if coef is None:
            raise self._unseen(mode)
        value = self.intercept_[mode]
        for r, c in zip(self.regressors, coef, strict=True):
            x = sample[r]  # a missing regressor (null): no prediction (NaN), as in a batch
            value = value + c * (math.nan if x is None else float(x))
        return float(value)

    def describe(self) -> dict[str, Any]:
        """The fitted models in numbers (JSON-ready)."""
        check_is_fitted(self, "coef_")
        return {
            "family": self.family,
            "regressors": list(self.regressors),
            "mode_column": self.mode_column,
            "found_modes": None if self.modes is None else self.modes.describe(),
            "modes": {
                m: {"intercept": self.intercept_[m], "coef": self.coef_[m], "rows": self.rows_[m]}
                for m in self.coef_
            },
        }
