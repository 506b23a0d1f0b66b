"""Scoring from the online state: the same probabilities as the batch path, ranked, explained."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest

from opslens.recipes.propensity.modelling import design_matrix, fit_logistic, fit_xgboost
from opslens.recipes.propensity.online_scoring import OnlineScorer
from opslens.recipes.propensity.params import ModelParams, PropensityParams
from opslens.recipes.propensity.point_in_time import feature_columns
from opslens.recipes.propensity.predictor import PropensityPredictor


@pytest.fixture(scope="module", params=["logistic", "xgboost"])
def predictor(request: pytest.FixtureRequest, demo: dict[str, Any]) -> PropensityPredictor:
    p: PropensityParams = demo["params"]
    train: pl.DataFrame = demo["train"]
    cols = feature_columns(p.features.windows)
    cats = sorted(train["category"].unique().to_list())
    X, y = design_matrix(train, cols, cats), train["label"].to_numpy()
    fit = fit_logistic if request.param == "logistic" else fit_xgboost
    model = fit(X, y, ModelParams(n_estimators=30), 0)
    return PropensityPredictor(model, request.param, cols, cats, horizon_hours=168.0)


def test_scores_from_live_events_are_the_batch_scores_of_the_offline_rows(
    demo: dict[str, Any], predictor: PropensityPredictor
) -> None:
    test: pl.DataFrame = demo["test"]
    t0 = test["prediction_time"].min()
    cuts = demo["bounds"]["start"].to_list()[1:]
    history = demo["events"].filter(pl.col("timestamp") < t0)
    scorer = OnlineScorer.warm(predictor, demo["params"], history, demo["items"], cuts=cuts)
    assert scorer.dropped_events == 0 and scorer.state.events == history.height
    rows = test.filter(pl.col("prediction_time") == t0)
    batch = predictor.predict_frame(rows)
    n = 0
    for (user,), part in rows.group_by("user_id", maintain_order=True):
        items = part["item_id"].to_list()
        answer = scorer.predict(str(user), items, t0)
        got = {r["item_id"]: r["probability"] for r in answer["items"]}
        want = batch.filter(pl.col("user_id") == user)
        for item, prob in zip(want["item_id"], want["probability"], strict=True):
            assert got[item] == prob  # bit for bit
            n += 1
        probs = [r["probability"] for r in answer["items"]]
        assert probs == sorted(probs, reverse=True)
        assert len(answer["items"][0]["drivers"]) == 3
    assert n == rows.height > 500


def test_the_single_row_fast_path_is_the_batch_path(
    demo: dict[str, Any], predictor: PropensityPredictor
) -> None:
    rows: pl.DataFrame = demo["test"].head(200)
    cols = predictor.features
    batch = predictor.predict_frame(rows)["probability"].to_numpy()
    values = rows.select(cols).cast(pl.Float64).to_numpy()
    cats = rows["category"].to_list()
    one = np.array(
        [
            predictor.score_matrix(values[i : i + 1], cols, cats[i : i + 1])[0]
            for i in range(rows.height)
        ]
    )
    assert np.array_equal(one, batch)
    assert np.array_equal(predictor.score_matrix(values, cols, cats), batch)


def test_a_user_never_seen_is_answered_from_the_items_and_says_so(
    demo: dict[str, Any], predictor: PropensityPredictor
) -> None:
    history = demo["events"].head(20_000)
    scorer = OnlineScorer.warm(predictor, demo["params"], history, demo["items"])
    at = history["timestamp"].max()
    popular = history.filter(pl.col("event_type") == "purchase")["item_id"].head(3).to_list()
    answer = scorer.predict("somebody-new", [*popular, "i-not-in-catalog"], at)
    assert answer["cold_start"] is True and "cold start" in answer["note"]
    assert answer["unknown_items"] == ["i-not-in-catalog"]
    assert all(0.0 <= r["probability"] <= 1.0 for r in answer["items"])
    known = scorer.predict(str(history["user_id"][-1]), popular, at)
    assert known["cold_start"] is False and "note" not in known


def test_events_with_no_user_are_dropped_and_counted_never_one_user(
    demo: dict[str, Any], predictor: PropensityPredictor
) -> None:
    history = demo["events"].head(1000)
    blank = history.head(50).with_columns(user_id=pl.lit(None, pl.String))
    scorer = OnlineScorer.warm(
        predictor, demo["params"], pl.concat([history, blank]), demo["items"]
    )
    assert scorer.dropped_events == 50
    assert scorer.state.events == 1000 and "None" not in scorer.state.users
