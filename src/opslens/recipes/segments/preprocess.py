"""Preprocessing fitted on training data: scaling for segmenting, category codes for the models.

:class:`Preprocessor` learns each segmenting feature's mean and scale (scikit-learn's
``StandardScaler``) and each categorical column's categories. :meth:`Preprocessor.check`
sorts a batch's rows into usable and rejected (with the reason per row): a null or
non-finite value, or a category never seen in training. A missing column or a column
of the wrong type is not a row problem: it is a one-line :class:`~opslens.errors.DataError`.

Example:
    >>> import polars as pl
    >>> train = pl.DataFrame({"hr": [60.0, 80.0, 100.0], "ward": ["a", "b", "a"]})
    >>> pre = Preprocessor(features=["hr"], categorical=["ward"]).fit(train)
    >>> batch = pl.DataFrame({"hr": [70.0, None, 90.0], "ward": ["a", "a", "zz"]})
    >>> pre.check(batch).reasons
    [None, 'null or non-finite hr', "unseen category 'zz' in ward"]
    >>> pre.transform(batch[:1]).round(2).tolist()
    [[-0.61]]
    >>> pre.encode(batch[:1]).model.tolist()
    [[70.0, 0.0]]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
from sklearn.base import BaseEstimator
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from opslens.core.columns import MAX_MAGNITUDE, check_magnitude
from opslens.errors import DataError

__all__ = ["Checked", "Encoded", "Preprocessor"]


@dataclass(frozen=True)
class Checked:
    """Which rows of a frame are usable, and why each other row is rejected (None = usable)."""

    ok: np.ndarray
    reasons: list[str | None]


@dataclass(frozen=True)
class Encoded:
    """A frame as the estimators take it: scaled segmenting features and the model matrix."""

    segmenting: np.ndarray
    model: np.ndarray


class Preprocessor(BaseEstimator):  # type: ignore[misc]
    """Scale ``features`` and encode ``categorical`` (codes); ``extra`` numeric columns pass through."""

    def __init__(
        self,
        features: Sequence[str] = (),
        categorical: Sequence[str] = (),
        extra: Sequence[str] = (),
    ) -> None:
        self.features = features
        self.categorical = categorical
        self.extra = extra

    @property
    def numeric(self) -> list[str]:
        """Every numeric input column: segmenting features, then extras."""
        return [*self.features, *self.extra]

    @property
    def model_columns(self) -> list[str]:
        """The model matrix's columns in order."""
        return [*self.numeric, *self.categorical]

    def columns_check(self, frame: pl.DataFrame, where: str = "the batch") -> None:
        """DataError for a missing column or a column of the wrong type."""
        for name in [*self.numeric, *self.categorical]:
            if name not in frame.columns:
                raise DataError(
                    f"column '{name}' is missing from {where}",
                    fix=f"give {where} every input column: {', '.join(self.model_columns)}",
                )
        for name in self.numeric:
            dtype = frame.schema[name]
            if not (dtype.is_numeric() or dtype == pl.Null):
                raise DataError(
                    f"column '{name}' of {where} is {dtype}, not a number",
                    fix=f"write '{name}' as a numeric column (cast it before scoring)",
                )
        for name in self.categorical:
            dtype = frame.schema[name]
            if not (dtype in (pl.String, pl.Categorical, pl.Enum, pl.Null) or dtype.is_integer()):
                raise DataError(
                    f"column '{name}' of {where} is {dtype}, not text",
                    fix=f"write '{name}' as a text column",
                )

    def fit(self, frame: pl.DataFrame) -> Preprocessor:
        """Learn scales and categories from the training rows (all must be usable)."""
        self.columns_check(frame, "the training data")
        values = frame.select(self.features).cast(pl.Float64).to_numpy()
        if values.shape[0] < 2 or not np.isfinite(values).all():
            raise DataError(
                "the training data needs at least two rows and no null or non-finite features",
                fix="drop incomplete rows from the training data",
            )
        check_magnitude(frame, self.numeric, where="the training data")
        self.scaler_ = StandardScaler().fit(values)
        bounds = frame.select(
            [pl.col(c).cast(pl.Float64).min().alias(f"{c}__lo") for c in self.numeric]
            + [pl.col(c).cast(pl.Float64).max().alias(f"{c}__hi") for c in self.numeric]
        ).row(0, named=True)
        self.ranges_ = {c: (bounds[f"{c}__lo"], bounds[f"{c}__hi"]) for c in self.numeric}
        self.categories_ = {
            c: sorted(frame[c].cast(pl.String).drop_nulls().unique().to_list())
            for c in self.categorical
        }
        return self

    def check(self, frame: pl.DataFrame) -> Checked:
        """Usable rows and the first reason each other row is rejected."""
        check_is_fitted(self, "scaler_")
        self.columns_check(frame)
        reasons: list[str | None] = [None] * frame.height
        for name in self.numeric:
            values = frame[name].cast(pl.Float64).fill_null(np.nan).to_numpy()
            for i in np.flatnonzero(~np.isfinite(values)):
                reasons[i] = reasons[i] or f"null or non-finite {name}"
            with np.errstate(invalid="ignore"):
                huge = np.abs(values) > MAX_MAGNITUDE
            for i in np.flatnonzero(huge):
                reasons[i] = reasons[i] or f"magnitude beyond {MAX_MAGNITUDE:.0e} in {name}"
        for name in self.categorical:
            col = frame[name].cast(pl.String)
            known = col.is_in(self.categories_[name]).fill_null(False).to_numpy()
            for i in np.flatnonzero(~known):
                value = col[int(i)]
                reasons[i] = reasons[i] or (
                    f"null {name}" if value is None else f"unseen category '{value}' in {name}"
                )
        ok = np.array([r is None for r in reasons], dtype=bool)
        return Checked(ok=ok, reasons=reasons)

    def in_range(self, frame: pl.DataFrame) -> np.ndarray:
        """Per row: every segmenting feature inside its training range (min–max).

        Example:
            >>> pre = Preprocessor(["m"]).fit(pl.DataFrame({"m": [1.0, 9.0]}))
            >>> pre.in_range(pl.DataFrame({"m": [5.0, 10.0]})).tolist()
            [True, False]
        """
        ranges = getattr(self, "ranges_", None)
        if ranges is None or frame.height == 0:  # a model fitted before ranges were kept
            return np.ones(frame.height, dtype=bool)
        inside = [
            pl.col(c).cast(pl.Float64).is_between(*ranges[c]).fill_null(True) for c in self.features
        ]
        return frame.select(pl.all_horizontal(inside)).to_series().to_numpy()

    def out_of_range(self, frame: pl.DataFrame) -> dict[str, dict[str, float]]:
        """Per input column with rows outside the training range: the share of rows below and
        above the range (numbers) or with a category never seen (``new``).

        Example:
            >>> pre = Preprocessor(["m"], ["c"]).fit(pl.DataFrame({"m": [1.0, 9.0], "c": ["a", "b"]}))
            >>> pre.out_of_range(pl.DataFrame({"m": [5.0, 10.0, 11.0, 0.0], "c": ["a", "a", "a", "z"]}))
            {'m': {'below': 0.25, 'above': 0.5, 'share': 0.75}, 'c': {'new': 0.25, 'share': 0.25}}
        """
        ranges = getattr(self, "ranges_", None)
        if frame.height == 0:
            return {}
        out: dict[str, dict[str, float]] = {}
        if ranges is not None:
            exprs = []
            for c in self.numeric:
                lo, hi = ranges[c]
                v = pl.col(c).cast(pl.Float64)
                exprs += [
                    (v < lo).mean().alias(f"{c}__below"),
                    (v > hi).mean().alias(f"{c}__above"),
                ]
            shares = frame.select(exprs).row(0, named=True)
            for c in self.numeric:
                below, above = float(shares[f"{c}__below"] or 0), float(shares[f"{c}__above"] or 0)
                if below or above:
                    out[c] = {"below": below, "above": above, "share": below + above}
        for c in self.categorical:
            col = frame[c].cast(pl.String)
            unseen = (col.is_not_null() & ~col.is_in(self.categories_[c])).to_numpy()
            new = float(np.mean(unseen))
            if new:
                out[c] = {"new": new, "share": new}
        return out

    def transform(self, frame: pl.DataFrame) -> np.ndarray:
        """The scaled segmenting features of usable rows."""
        return self.encode(frame).segmenting

    def encode(self, frame: pl.DataFrame) -> Encoded:
        """Scaled segmenting features and the model matrix of usable rows."""
        check_is_fitted(self, "scaler_")
        seg = self.scaler_.transform(frame.select(self.features).cast(pl.Float64).to_numpy())
        parts = [frame.select(self.numeric).cast(pl.Float64).to_numpy()]
        for name in self.categorical:
            codes = (
                frame[name]
                .cast(pl.String)
                .replace_strict(
                    self.categories_[name], list(range(len(self.categories_[name]))), default=-1
                )
            )
            parts.append(codes.cast(pl.Float64).to_numpy()[:, None])
        return Encoded(segmenting=seg, model=np.hstack(parts))

    def encode_one(
        self, numbers: Sequence[float | None], labels: Sequence[str | None]
    ) -> tuple[str | None, np.ndarray, np.ndarray, bool]:
        """One instance without a frame: the reason it is rejected (None: usable), its scaled
        segmenting features, its model row and whether it is inside the training range; the
        same numbers :meth:`check`, :meth:`encode` and :meth:`in_range` give for that row.

        Example:
            >>> pre = Preprocessor(["m"], ["c"]).fit(pl.DataFrame({"m": [1.0, 9.0], "c": ["a", "b"]}))
            >>> reason, seg, row, inside = pre.encode_one([5.0], ["b"])
            >>> reason, seg.tolist(), row.tolist(), inside
            (None, [0.0], [5.0, 1.0], True)
            >>> pre.encode_one([None], ["b"])[0], pre.encode_one([5.0], ["z"])[0]
            ('null or non-finite m', "unseen category 'z' in c")
        """
        if "scaler_" not in self.__dict__:
            check_is_fitted(self, "scaler_")
        values = [math.nan if v is None else float(v) for v in numbers]
        reason: str | None = None
        for name, value in zip(self.numeric, values, strict=True):
            if not math.isfinite(value):
                reason = f"null or non-finite {name}"
                break
            if abs(value) > MAX_MAGNITUDE:
                reason = f"magnitude beyond {MAX_MAGNITUDE:.0e} in {name}"
                break
        codes = []
        for name, label in zip(self.categorical, labels, strict=True):
            known = self.categories_[name]
            if label is None or label not in known:
                reason = reason or (
                    f"null {name}" if label is None else f"unseen category '{label}' in {name}"
                )
                codes.append(-1.0)
            else:
                codes.append(float(known.index(label)))
        k = len(self.features)
        row = np.array(values + codes, dtype=np.float64)
        # StandardScaler.transform's own arithmetic (subtract the mean, divide by the scale)
        segmenting = (row[:k] - self.scaler_.mean_) / self.scaler_.scale_
        ranges = getattr(self, "ranges_", None)
        inside = ranges is None or all(
            ranges[c][0] <= v <= ranges[c][1] for c, v in zip(self.features, values, strict=False)
        )
        return reason, segmenting, row, bool(inside)
