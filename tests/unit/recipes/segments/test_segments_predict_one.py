"""One instance without a frame (`SegmentModel.score_one`) answers exactly as the batch path."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from opslens.errors import InstanceError
from opslens.recipes.segments.model import fit_model
from opslens.recipes.segments.params import SegmentsParams
from opslens.recipes.segments.predictor import SegmentPredictor
from opslens.synthetic.patients import FEATURES, make_patients


@pytest.fixture(scope="module")
def fitted() -> tuple[SegmentPredictor, pl.DataFrame]:
    data = make_patients(n_rows=1500, seed=0).frame
    params = SegmentsParams.model_validate(
        {"lgb_series": {"n_estimators": 20}, "lgb_resource": {"n_estimators": 20}}
    )
    model = fit_model(
        data, params, features=list(FEATURES), categorical=["ward"], series_target="next_score"
    )
    return SegmentPredictor(model), data


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b


def test_every_answer_equals_the_batch_row(fitted: tuple[SegmentPredictor, pl.DataFrame]) -> None:
    predictor, data = fitted
    rng = np.random.default_rng(1)
    rows = data.sample(300, seed=2).to_dicts()
    # far from every segment (kNN path), outside the training range, and at its edges
    for i, row in enumerate(rows[:100]):
        feature = FEATURES[i % len(FEATURES)]
        row[feature] = float(row[feature]) * float(rng.choice([0.2, 3.0, 10.0]))
    batch = predictor.predict_frame(pl.DataFrame(rows)).drop("row").to_dicts()
    ones = [predictor.predict_one(r) for r in rows]
    assert {a["path"] for a in ones} == {"hdbscan", "knn"}
    assert {a["in_range"] for a in ones} == {True, False}
    for one, row in zip(ones, batch, strict=True):
        assert one.keys() == row.keys()
        assert all(_same(one[k], row[k]) for k in one), (one, row)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"age": None}, "null or non-finite age"),
        ({"age": float("inf")}, "null or non-finite age"),
        ({"age": "old"}, "null or non-finite age"),
        ({"ward": "mars"}, "unseen category 'mars' in ward"),
        ({"ward": None}, "null ward"),
    ],
)
def test_refusals_name_the_same_reason_as_the_batch(
    fitted: tuple[SegmentPredictor, pl.DataFrame], change: dict[str, object], reason: str
) -> None:
    predictor, data = fitted
    row = {**data.row(0, named=True), **change}
    with pytest.raises(InstanceError, match=f"the instance cannot be scored: {reason}"):
        predictor.predict_one(row)
    frame = pl.DataFrame([{**row, "age": None} if change.get("age") == "old" else row])
    assert predictor.predict_frame(frame)["reason"][0] == reason
