"""The fitted segments model: preprocessing, segments, both targets' models, and batch scoring.

:func:`fit_model` fits the whole chain on training rows; :meth:`SegmentModel.score`
answers a batch with one row per input row (``row``), so rows in = rows scored +
rows rejected, always. A rejected row has ``status == "rejected"`` and a
``reason`` (null or non-finite feature, unseen category, or — with graceful
degradation off — a segment without its own model); its predictions are null.
A missing column or a column of the wrong type rejects the whole batch with a
one-line :class:`~opslens.errors.DataError` instead, as does an empty batch.

Example:
    >>> from opslens.synthetic.patients import make_patients
    >>> from opslens.recipes.segments.params import SegmentsParams
    >>> data = make_patients(n_rows=600, seed=0).frame
    >>> p = SegmentsParams.model_validate({"lgb_series": {"n_estimators": 20},
    ...     "lgb_resource": {"n_estimators": 20}, "model_features": ["score_lag1"]})
    >>> m = fit_model(data, p, features=["heart_rate", "systolic_bp", "resp_rate",
    ...     "temperature", "age", "bmi"], categorical=["ward"], series_target="next_score")
    >>> out = m.score(data[:3])
    >>> out.columns[:5]
    ['row', 'status', 'reason', 'segment', 'path']
    >>> out["status"].to_list()
    ['scored', 'scored', 'scored']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from opslens.errors import ConfigError, DataError
from opslens.recipes.segments.assign import SegmentAssigner
from opslens.recipes.segments.params import LightGBMParams, SegmentsParams
from opslens.recipes.segments.preprocess import Preprocessor
from opslens.recipes.segments.regress import SegmentRegressor

__all__ = [
    "OUTPUT_SCHEMA",
    "PAST_RANGE_SHARE",
    "SegmentModel",
    "fit_model",
    "past_range",
    "past_range_error",
    "summarise_scores",
]

OUTPUT_SCHEMA: dict[str, Any] = {
    "row": pl.Int64,
    "status": pl.String,
    "reason": pl.String,
    "segment": pl.Int64,
    "path": pl.String,
    "confidence": pl.Float64,
    "pred_series": pl.Float64,
    "model_series": pl.String,
    "pred_resource": pl.Float64,
    "model_resource": pl.String,
    "in_range": pl.Boolean,
}
PAST_RANGE_SHARE = 0.99
"""A feature past its training range on one side in this share of a batch's rows is a counter
(a calendar feature, monotone in time): out of range in every new batch."""


_STATUS = pl.Series(["scored", "rejected"])
_PATHS = ("hdbscan", "knn", "none")
_MODELS = ("segment", "global", "blend", "none")


def _names(values: np.ndarray, names: tuple[str, ...]) -> pl.Series:
    """A string column from a numpy array of a few known names (built by index: fast)."""
    codes = np.zeros(values.shape[0], dtype=np.int8)
    for i, name in enumerate(names[1:], start=1):
        codes[values == name] = i
    return pl.Series(list(names)).gather(codes)


def _share(mask: pl.Series) -> float:
    return float(np.mean(mask.to_numpy())) if mask.len() else 0.0


def past_range(report: dict[str, dict[str, float]], features: Sequence[str]) -> list[str]:
    """The segmenting features past their training range on one side in at least
    :data:`PAST_RANGE_SHARE` of the rows (``report``: :meth:`Preprocessor.out_of_range`).

    Example:
        >>> past_range({"month": {"below": 0.0, "above": 1.0, "share": 1.0},
        ...     "hr": {"below": 0.01, "above": 0.02, "share": 0.03}}, ["month", "hr"])
        ['month']
    """
    return [
        f
        for f in features
        if f in report
        and max(report[f].get("above", 0.0), report[f].get("below", 0.0)) >= PAST_RANGE_SHARE
    ]


def past_range_error(
    feature: str, report: dict[str, dict[str, float]], ranges: dict[str, tuple[float, float]]
) -> ConfigError:
    """The refusal to retrain on a feature that will always be out of range (a counter).

    Example:
        >>> str(past_range_error("month", {"month": {"above": 1.0, "below": 0.0}},
        ...     {"month": (1.0, 9.0)})).split(":")[0]
        "feature 'month' is above its training range (1–9) in 100% of the latest batch's rows"
    """
    r = report.get(feature, {})
    side = "above" if r.get("above", 0.0) >= r.get("below", 0.0) else "below"
    lo, hi = ranges.get(feature, (float("nan"), float("nan")))
    return ConfigError(
        f"feature '{feature}' is {side} its training range ({lo:g}–{hi:g}) in "
        f"{100 * r.get(side, 0.0):.0f}% of the latest batch's rows: a counter that grows with "
        "time (a month, a day number) is out of range in every new batch, and retraining on "
        "it would retrain on every batch",
        fix=f"drop '{feature}' from columns.metrics, or encode it so that it repeats "
        "(e.g. month of year as a season under columns.categorical)",
    )


def summarise_scores(predictions: pl.DataFrame) -> dict[str, Any]:
    """Rows in, scored, rejected (by reason, without the value), noise ratio (share of scored
    rows placed by the kNN fallback) split into rows outside the training range
    (``noise_out_of_range``) and inside it but in no segment (``noise_in_range``), global-model
    share and segment shares of a scored batch.

    Example:
        >>> p = pl.DataFrame({"status": ["scored", "rejected"], "reason": [None, "unseen category 'x' in w"],
        ...     "segment": [0, -1], "path": ["knn", "none"], "model_series": ["segment", "none"]})
        >>> s = summarise_scores(p)
        >>> s["rows_rejected"], s["rejected_by_reason"], s["noise_ratio"]
        (1, {'unseen category': 1}, 1.0)
    """
    scored = predictions.filter(pl.col("status") == "scored")
    reasons: dict[str, int] = {}
    for reason in predictions["reason"].drop_nulls().to_list():
        key = reason.split(" '")[0]
        reasons[key] = reasons.get(key, 0) + 1
    shares = scored["segment"].value_counts(normalize=True).sort("segment")
    inside = (
        scored["in_range"].fill_null(True)
        if "in_range" in scored.columns
        else pl.Series([True] * scored.height, dtype=pl.Boolean)
    )
    return {
        "rows_in": predictions.height,
        "rows_scored": scored.height,
        "rows_rejected": predictions.height - scored.height,
        "rejected_by_reason": reasons,
        "noise_ratio": _share(scored["path"] == "knn"),
        "noise_in_range": _share((scored["path"] == "knn") & inside),
        "noise_out_of_range": _share((scored["path"] == "knn") & ~inside),
        "global_share": _share(scored["model_series"] == "global"),
        "segment_shares": {
            str(s): float(p) for s, p in zip(shares["segment"], shares["proportion"], strict=True)
        },
    }


def _regressor(p: LightGBMParams, params: SegmentsParams, seed: int) -> SegmentRegressor:
    c = params.model_choice
    return SegmentRegressor(
        **p.model_dump(),
        min_segment_rows=params.min_segment_rows,
        mode=c.mode,
        choice_folds=c.folds,
        min_gain=c.min_gain,
        random_state=seed,
    )


@dataclass
class SegmentModel:
    """Everything fitted: preprocessor, assigner, a regressor per target, and their names."""

    preprocessor: Preprocessor
    assigner: SegmentAssigner
    series: SegmentRegressor
    resource: SegmentRegressor
    series_target: str
    resource_target: str
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def inputs(self) -> list[str]:
        """The columns a batch must hold."""
        return self.preprocessor.model_columns

    def score(self, frame: pl.DataFrame, *, graceful: bool = True) -> pl.DataFrame:
        """One answer row per input row: segment, path, confidence, both predictions and models."""
        if frame.height == 0:
            raise DataError(
                "the batch has no rows",
                fix="give a batch with at least one row (a one-row batch is fine)",
            )
        checked = self.preprocessor.check(frame)
        ok = checked.ok
        n = frame.height
        segment = np.full(n, -1, dtype=np.int64)
        path = np.full(n, "none", dtype="<U7")
        confidence = np.full(n, np.nan)
        ps, pr = np.full(n, np.nan), np.full(n, np.nan)
        ms = np.full(n, "none", dtype="<U7")
        mr = np.full(n, "none", dtype="<U7")
        inside = np.ones(n, dtype=bool)
        reasons = list(checked.reasons)
        if ok.any():
            usable = frame.filter(pl.Series(ok))
            enc = self.preprocessor.encode(usable)
            a = self.assigner.assign(enc.segmenting)
            idx = np.flatnonzero(ok)
            segment[idx], path[idx], confidence[idx] = a.segment, a.path, a.confidence
            inside[idx] = self.preprocessor.in_range(usable)
            knn = a.path == "knn"
            ps[idx], ms[idx] = self.series.predict_with_models(
                enc.model, a.segment, knn, graceful=graceful
            )
            pr[idx], mr[idx] = self.resource.predict_with_models(
                enc.model, a.segment, knn, graceful=graceful
            )
            if not graceful:
                for i in idx[(ms[idx] == "none") | (mr[idx] == "none")]:
                    reasons[i] = (
                        f"segment {segment[i]} has no model of its own "
                        "(graceful degradation is off)"
                    )
        rejected = np.array([r is not None for r in reasons], dtype=bool)
        for arr in (ps, pr, confidence):
            arr[rejected] = np.nan
        for arr in (path, ms, mr):
            arr[rejected] = "none"
        segment[rejected] = -1
        return pl.DataFrame(
            {
                "row": np.arange(n, dtype=np.int64),
                "status": _STATUS.gather(rejected.astype(np.int8)),
                "reason": reasons,
                "segment": segment,
                "path": _names(path, _PATHS),
                "confidence": confidence,
                "pred_series": ps,
                "model_series": _names(ms, _MODELS),
                "pred_resource": pr,
                "model_resource": _names(mr, _MODELS),
                "in_range": pl.Series(inside).set(pl.Series(rejected), None),  # type: ignore[arg-type]
            },
            schema=OUTPUT_SCHEMA,
        ).with_columns(
            [pl.col(c).fill_nan(None) for c in ("confidence", "pred_series", "pred_resource")]
        )

    def score_one(
        self,
        numbers: Sequence[float | None],
        labels: Sequence[str | None],
        *,
        graceful: bool = True,
    ) -> dict[str, Any]:
        """One instance's answer on numpy arrays alone (no frame): the same values as the row
        :meth:`score` gives for it, without ``row``. The scaled vector goes to the nearest
        reference point (:meth:`SegmentAssigner.assign_one`) and the row to its segment's
        boosters through LightGBM's single-row fast path (:meth:`SegmentRegressor.predict_one`)."""
        reason, segmenting, row, inside = self.preprocessor.encode_one(numbers, labels)
        if reason is not None:
            return _rejected(reason)
        segment, path, confidence = self.assigner.assign_one(segmenting)
        knn = path == "knn"
        # encode_one's row: the fitted width, finite (anything else was rejected above)
        ps, ms = self.series.predict_one(row, segment, knn, graceful=graceful, checked=True)
        pr, mr = self.resource.predict_one(row, segment, knn, graceful=graceful, checked=True)
        if not graceful and "none" in (ms, mr):
            return _rejected(
                f"segment {segment} has no model of its own (graceful degradation is off)"
            )
        return {
            "status": "scored",
            "reason": None,
            "segment": segment,
            "path": path,
            "confidence": _finite(confidence),
            "pred_series": _finite(ps),
            "model_series": ms,
            "pred_resource": _finite(pr),
            "model_resource": mr,
            "in_range": inside,
        }


def _rejected(reason: str) -> dict[str, Any]:
    """A rejected instance's answer (the batch row of a rejected row, without ``row``)."""
    return {
        "status": "rejected",
        "reason": reason,
        "segment": -1,
        "path": "none",
        "confidence": None,
        "pred_series": None,
        "model_series": "none",
        "pred_resource": None,
        "model_resource": "none",
        "in_range": None,
    }


def _finite(value: float) -> float | None:
    """A float, None for NaN (as the batch answer's ``fill_nan(None)``)."""
    return None if value != value else float(value)


def fit_model(
    data: pl.DataFrame,
    params: SegmentsParams,
    *,
    features: Sequence[str],
    categorical: Sequence[str],
    series_target: str,
    random_state: int = 0,
) -> SegmentModel:
    """Fit preprocessing, HDBSCAN + kNN fallback and both targets' models on ``data``."""
    for target in (series_target, params.resource_target):
        if target not in data.columns:
            raise DataError(
                f"target column '{target}' is missing from the training data",
                fix="name it in columns.target or params.resource_target",
            )
    data = data.filter(
        pl.all_horizontal(
            pl.col(c).cast(pl.Float64).is_finite()
            for c in [*features, *params.model_features, series_target, params.resource_target]
        )
    )
    pre = Preprocessor(features, categorical, params.model_features).fit(data)
    enc = pre.encode(data)
    h = params.hdbscan
    assigner = SegmentAssigner(
        min_cluster_size=h.min_cluster_size,
        min_samples=h.min_samples,
        cluster_selection_epsilon=h.cluster_selection_epsilon,
        n_neighbors=params.knn.n_neighbors,
        reference_size=params.knn.reference_size,
        random_state=random_state,
    ).fit(enc.segmenting)
    seg = assigner.segments_
    noise = assigner.labels_ < 0
    series = _regressor(params.lgb_series, params, random_state)
    resource = _regressor(params.lgb_resource, params, random_state)
    series.fit(enc.model, data[series_target].to_numpy(), seg, noise)
    resource.fit(enc.model, data[params.resource_target].to_numpy(), seg, noise)
    return SegmentModel(
        preprocessor=pre,
        assigner=assigner,
        series=series,
        resource=resource,
        series_target=series_target,
        resource_target=params.resource_target,
        info={"training_rows": data.height, "segments": assigner.n_segments_},
    )
