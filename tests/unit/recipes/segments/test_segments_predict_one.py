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


@pytest.mark.parametrize("mode", ["auto", "blend", "segment", "global"])
def test_two_thousand_random_rows_equal_the_batch_in_every_mode(mode: str) -> None:
    """Rows drawn around and far from the training data (kNN path included), each model
    choice forced in turn (blend: the global model plus a correction): predict_one's numbers
    are the batch path's, bit for bit."""
    data = make_patients(n_rows=1200, seed=3).frame
    params = SegmentsParams.model_validate(
        {
            "lgb_series": {"n_estimators": 15},
            "lgb_resource": {"n_estimators": 15},
            "model_choice": {"mode": mode},
        }
    )
    model = fit_model(
        data, params, features=list(FEATURES), categorical=["ward"], series_target="next_score"
    )
    predictor = SegmentPredictor(model)
    rng = np.random.default_rng(4)
    base = data.sample(2000, seed=5, with_replacement=True)
    scale = rng.choice([1.0, 1.0, 1.0, 0.5, 1.5, 4.0], size=(2000, len(FEATURES)))
    rows = base.with_columns(
        [pl.col(f).cast(pl.Float64) * pl.Series(scale[:, j]) for j, f in enumerate(FEATURES)]
    ).to_dicts()
    batch = predictor.predict_frame(pl.DataFrame(rows)).drop("row").to_dicts()
    ones = [predictor.predict_one(r) for r in rows]
    assert sum(a["path"] == "knn" for a in ones) >= 20
    used = {a["model_series"] for a in ones} | {a["model_resource"] for a in ones}
    assert used <= {"segment", "blend", "global"} and (mode == "auto" or mode in used)
    assert ones == batch or all(
        _same(one[k], row[k]) for one, row in zip(ones, batch, strict=True) for k in one
    )


def test_a_pickled_predictor_answers_the_same_and_threads_agree(
    fitted: tuple[SegmentPredictor, pl.DataFrame],
) -> None:
    """The single-row boosters' C handles stay out of a pickle (rebuilt on first use), and
    eight threads sharing one predictor get each row's own answer."""
    import pickle
    from concurrent.futures import ThreadPoolExecutor

    predictor, data = fitted
    rows = data.head(400).to_dicts()
    first = [predictor.predict_one(r) for r in rows]
    blob = pickle.dumps(predictor)
    assert b"SingleRowBooster" not in blob
    again = pickle.loads(blob)
    assert [again.predict_one(r) for r in rows] == first
    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(again.predict_one, rows * 3)) == first * 3


def test_the_single_row_booster_equals_lightgbm_predict() -> None:
    """LightGBM's single-row fast path against Booster.predict on 1,000 rows, with early
    stopping's best iteration honoured as predict honours it."""
    from lightgbm import LGBMRegressor, early_stopping

    from opslens.recipes.segments.single_row import SingleRowBooster

    rng = np.random.default_rng(6)
    X = rng.normal(size=(3000, 5))
    y = X[:, 0] ** 2 + X[:, 1] + rng.normal(0, 0.3, 3000)
    model = LGBMRegressor(n_estimators=300, learning_rate=0.3, verbose=-1).fit(
        X[:2000],
        y[:2000],
        eval_X=(X[2000:],),
        eval_y=(y[2000:],),
        callbacks=[early_stopping(5, verbose=False)],
    )
    booster = model.booster_
    assert 0 < booster.best_iteration < 300
    one = SingleRowBooster(booster)
    rows = rng.normal(size=(1000, 5))
    assert [one(r) for r in rows] == booster.predict(rows).tolist()
    with pytest.raises(ValueError, match="a row of 5 float64 values"):
        one(rows[0, :4])


def test_the_prepared_path_answers_as_the_step_by_step_one(
    fitted: tuple[SegmentPredictor, pl.DataFrame],
) -> None:
    """The training rows themselves (each at most its segment's radius from its nearest
    reference point, the farthest exactly at it), whole numbers for floats and rows far out:
    the prepared path (InstancePath) answers most of them, each as SegmentModel.score_one
    does, and leaves the rest (kNN vote, refusals) to it; predict_one equals the batch row."""
    from opslens.recipes.segments.instance import InstancePath

    predictor, data = fitted
    model = predictor.model
    pre = model.preprocessor
    path = InstancePath(model, graceful=True)
    rows = data.to_dicts()
    rows += [{**r, "age": round(r["age"])} for r in rows[:200]]  # ints where floats were
    rows += [{**r, "heart_rate": r["heart_rate"] * 6.0} for r in rows[:100]]  # far out
    answered = left = 0
    for row in rows:
        got = path(row)
        slow = model.score_one(
            [float(row[c]) for c in pre.numeric], [row[c] for c in pre.categorical]
        )
        if got is None:
            left += 1
            assert slow["status"] == "rejected" or slow["path"] == "knn"
        else:
            answered += 1
            assert got == slow
    assert answered > 0.8 * len(rows) and left > 0
    batch = predictor.predict_frame(pl.DataFrame(rows[:1500])).drop("row").to_dicts()
    ones = [predictor.predict_one(r) for r in rows[:1500]]
    assert all(_same(one[k], b[k]) for one, b in zip(ones, batch, strict=True) for k in one)
