"""The segments recipe's baseline: one global LightGBM per target with the same features.

The first thing a practitioner tries instead of segments: a single LightGBM regressor
per target on the same training rows and the same model matrix (the segmenting
features, the extra model features and the category codes; no segment id), with the
same LightGBM settings as the per-segment models. :func:`global_model_scores` scores
the recipe's model (per-segment models with their fallback, as served) and that
baseline on the same held-out rows: RMSE of each, and a 95% paired bootstrap interval
of the difference (squared errors paired per row, or per ``columns.entity`` unit when
the analysis names one), put in RMSE units.

Example:
    >>> GLOBAL_MODEL.name, GLOBAL_MODEL.label
    ('global_model', 'one global LightGBM with the same features')
    >>> metric_key("next_score"), metric_key("Resource-Hours")
    ('rmse_next_score', 'rmse_resource_hours')
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import polars as pl

from opslens.core.baselines import Baseline, BaselineScore
from opslens.models.compare import paired_interval, paired_p_value
from opslens.recipes.segments.model import SegmentModel
from opslens.recipes.segments.params import LightGBMParams, SegmentsParams
from opslens.recipes.segments.regress import SegmentRegressor

__all__ = [
    "GLOBAL_MODEL",
    "HeldOut",
    "compare_rmse",
    "fit_global",
    "global_model_scores",
    "held_out",
    "metric_key",
]

GLOBAL_MODEL = Baseline(
    "global_model",
    "one global LightGBM with the same features",
    description="one LightGBM regressor per target trained on all training rows with the "
    "same features and settings as the per-segment models, without segments",
)


def metric_key(target: str) -> str:
    """The metric key of a target's RMSE: ``rmse_`` and the name in ``[a-z0-9_]``."""
    return "rmse_" + re.sub(r"[^a-z0-9_]+", "_", target.lower()).strip("_")


@dataclass(frozen=True)
class HeldOut:
    """The held-out rows the model scores, their model matrix and segments, and the model's
    predictions per target (rows the model rejects, e.g. an unseen category, are left out)."""

    rows: pl.DataFrame
    matrix: np.ndarray
    segments: np.ndarray
    predictions: dict[str, np.ndarray]


def held_out(model: SegmentModel, test: pl.DataFrame) -> HeldOut:
    """The model's answers on ``test``, restricted to the rows it scores (none for no rows).

    Example:
        >>> from opslens.synthetic.patients import FEATURES, make_patients
        >>> from opslens.recipes.segments.model import fit_model
        >>> data = make_patients(n_rows=500, seed=0).frame
        >>> p = SegmentsParams.model_validate({"lgb_series": {"n_estimators": 5},
        ...     "lgb_resource": {"n_estimators": 5}})
        >>> m = fit_model(data[:400], p, features=list(FEATURES), categorical=["ward"],
        ...     series_target="next_score")
        >>> h = held_out(m, data[400:])
        >>> h.rows.height, sorted(h.predictions), h.matrix.shape[1]
        (100, ['next_score', 'resource_hours'], 7)
    """
    if test.height == 0:  # nothing held out (a tiny data set): nothing to compare
        empty = np.empty(0)
        preds = {model.series_target: empty, model.resource_target: empty}
        return HeldOut(test, np.empty((0, len(model.inputs))), empty.astype(np.int64), preds)
    scored = model.score(test)
    ok = (scored["status"] == "scored").to_numpy()
    rows = test.filter(pl.Series(ok))
    return HeldOut(
        rows=rows,
        matrix=model.preprocessor.encode(rows).model,
        segments=scored["segment"].to_numpy()[ok],
        predictions={
            model.series_target: scored["pred_series"].to_numpy()[ok],
            model.resource_target: scored["pred_resource"].to_numpy()[ok],
        },
    )


def fit_global(
    X: np.ndarray, y: np.ndarray, params: LightGBMParams, random_state: int = 0
) -> SegmentRegressor:
    """One LightGBM on every row of ``X`` (no segments), with the per-segment models' settings.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(200, 2)); y = 2 * X[:, 0]
        >>> g = fit_global(X, y, LightGBMParams(n_estimators=30))
        >>> g.models_, bool(np.corrcoef(g.predict_global(X), y)[0, 1] > 0.9)
        ({}, True)
    """
    # more rows than X holds per segment: no per-segment model, only the global one
    reg = SegmentRegressor(
        **params.model_dump(), min_segment_rows=len(X) + 1, random_state=random_state
    )
    return reg.fit(X, y)


def compare_rmse(
    y: np.ndarray,
    model_pred: np.ndarray,
    base_pred: np.ndarray,
    *,
    target: str,
    groups: np.ndarray | None = None,
    random_state: int = 0,
) -> BaselineScore:
    """The model's and the global model's RMSE of ``target`` on the same rows.

    ``interval``: the 95% paired bootstrap interval of the mean squared-error difference
    (model − global; rows, or ``groups`` units, resampled), divided by
    ``RMSE_model + RMSE_global`` so it is in RMSE units (√a − √b = (a − b) / (√a + √b):
    its centre is the RMSE difference); ``p_value``: a paired sign-flip test of the same
    difference. Negative means the model is better.

    Example:
        >>> y = np.zeros(200); rng = np.random.default_rng(1)
        >>> s = compare_rmse(y, rng.normal(0, 1, 200), rng.normal(0, 2, 200), target="y")
        >>> s.metric, s.model_wins, s.interval[1] < 0, s.p_value < 0.01
        ('rmse_y', True, True, True)
    """
    se_model = (np.asarray(y, float) - model_pred) ** 2
    se_base = (np.asarray(y, float) - base_pred) ** 2
    rmse_model = float(np.sqrt(se_model.mean()))
    rmse_base = float(np.sqrt(se_base.mean()))
    _, (lo, hi) = paired_interval(se_model, se_base, groups=groups, random_state=random_state)
    scale = rmse_model + rmse_base
    interval = (lo / scale, hi / scale) if scale > 0 else (0.0, 0.0)
    return BaselineScore(
        baseline=GLOBAL_MODEL.name,
        label=GLOBAL_MODEL.label,
        metric=metric_key(target),
        metric_label=f"RMSE of {target}",
        model=rmse_model,
        value=rmse_base,
        higher_is_better=False,
        n=len(se_model),
        interval=interval,
        p_value=paired_p_value(se_model, se_base, groups=groups, random_state=random_state),
        gate=True,
    )


def global_model_scores(
    model: SegmentModel,
    train: pl.DataFrame,
    held: HeldOut,
    params: SegmentsParams,
    *,
    entity: str | None = None,
    random_state: int = 0,
) -> list[BaselineScore]:
    """Per target: the model against one global LightGBM fitted on ``train``, on ``held``.

    No held-out row scored: no comparison (an empty list).
    """
    if held.rows.height == 0:
        return []
    X = model.preprocessor.encode(train).model
    groups = (
        held.rows[entity].to_numpy() if entity is not None and entity in held.rows.columns else None
    )
    scores = []
    for target, lgb in (
        (model.series_target, params.lgb_series),
        (model.resource_target, params.lgb_resource),
    ):
        base = fit_global(X, train[target].to_numpy(), lgb, random_state)
        scores.append(
            compare_rmse(
                held.rows[target].to_numpy(),
                held.predictions[target],
                base.predict_global(held.matrix),
                target=target,
                groups=groups,
                random_state=random_state,
            )
        )
    return scores
