"""One (user, item, time) row on numpy (`PropensityPredictor.predict_one`'s single-row path)
answers exactly as the batch path, for XGBoost and for the logistic pipeline."""

from __future__ import annotations

import pickle

import numpy as np
import polars as pl
import pytest

from opslens.errors import InstanceError
from opslens.recipes.propensity.modelling import fit_logistic, fit_xgboost
from opslens.recipes.propensity.params import ModelParams
from opslens.recipes.propensity.predictor import PropensityPredictor

FEATURES = ["pair_views", "user_sessions", "hours_since_view", "item_buyers"]
CATEGORIES = ["books", "garden", "toys"]


def _rows(seed: int, n: int) -> tuple[pl.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.poisson([2.0, 5.0, 30.0, 8.0], size=(n, 4)).astype(float)
    category = rng.choice([*CATEGORIES, "unknown"], size=n)
    z = 0.8 * X[:, 0] - 0.05 * X[:, 2] + (category == "toys") - 1.5
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    frame = pl.DataFrame({f: X[:, j] for j, f in enumerate(FEATURES)}).with_columns(
        category=pl.Series(category)
    )
    return frame, y


@pytest.fixture(scope="module", params=["xgboost", "logistic"])
def predictor(request: pytest.FixtureRequest) -> PropensityPredictor:
    from opslens.recipes.propensity.modelling import design_matrix

    frame, y = _rows(0, 2000)
    X = design_matrix(frame, FEATURES, CATEGORIES)
    fit = fit_xgboost if request.param == "xgboost" else fit_logistic
    model = fit(X, y, ModelParams(), 0)
    return PropensityPredictor(model, request.param, FEATURES, CATEGORIES, horizon_hours=168.0)


def test_every_row_alone_equals_its_batch_row(predictor: PropensityPredictor) -> None:
    frame, _ = _rows(1, 1000)
    rows = frame.to_dicts()
    rng = np.random.default_rng(3)
    for i in rng.choice(1000, 100, replace=False):  # ints, nulls (XGBoost's missing), null category
        rows[i]["pair_views"] = int(rows[i]["pair_views"])
        if predictor.kind == "xgboost":
            rows[i]["hours_since_view"] = None
        rows[i]["category"] = None if i % 2 else rows[i]["category"]
    batch = predictor.predict_frame(pl.DataFrame(rows, infer_schema_length=None))["probability"]
    ones = [predictor.predict_one(r)["probability"] for r in rows]
    assert ones == batch.to_list()
    assert predictor._row(rows[0]) is not None  # the numpy path answered
    # XGBoost's trees walked by the compiled kernel, or the logistic pipeline's numpy steps
    assert predictor.__dict__["_fast"][0] == {"xgboost": "walk"}.get(predictor.kind, "logistic")


def test_other_values_take_the_table_path_and_are_refused_or_read_as_a_batch_reads_them(
    predictor: PropensityPredictor,
) -> None:
    row = _rows(1, 1)[0].to_dicts()[0]
    text = {**row, "pair_views": "3"}
    assert predictor._row(text) is None
    assert (
        predictor.predict_one(text)["probability"]
        == predictor.predict_one({**row, "pair_views": 3.0})["probability"]
    )
    with pytest.raises(InstanceError, match="an instance's features must be numbers"):
        predictor.predict_one({**row, "pair_views": [1]})


def test_a_pickled_predictor_answers_the_same(predictor: PropensityPredictor) -> None:
    rows = _rows(2, 50)[0].to_dicts()
    first = [predictor.predict_one(r) for r in rows]
    again = pickle.loads(pickle.dumps(predictor))
    assert "_fast" not in again.__dict__
    assert [again.predict_one(r) for r in rows] == first
