"""One device's fingerprint scored on numpy alone (`RareDeviceScorer.score_one`,
`FleetPredictor.score_fingerprint`) answers exactly as the batch path's row."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl
import pytest

from opslens.detect.population import rank_rare_devices
from opslens.errors import DataError
from opslens.features.fingerprints import FingerprintConfig
from opslens.recipes.fleet.predictor import FleetPredictor, RareDeviceScorer

FEATURES = ["t__mean", "t__std", "v__mean", "v__slope", "c__max"]


def _fleet(seed: int, n: int = 300, planted: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, len(FEATURES))) * [1.0, 0.2, 3.0, 0.01, 50.0]
    X[:planted] += 8.0 * np.array([1.0, 0.2, 3.0, 0.01, 50.0])  # rare devices, far out
    return pl.DataFrame({"device_id": [f"d{i}" for i in range(n)]}).with_columns(
        pl.Series(f, X[:, j]) for j, f in enumerate(FEATURES)
    )


@pytest.fixture(scope="module")
def scorer() -> RareDeviceScorer:
    train = _fleet(0)
    rare = rank_rare_devices(train, entity="device_id")  # all four methods
    return RareDeviceScorer.from_ranking(rare, train, entity="device_id")


def test_every_device_scored_alone_equals_its_batch_row(scorer: RareDeviceScorer) -> None:
    new = _fleet(1, n=400, planted=6)
    rng = np.random.default_rng(2)
    holes = rng.random((400, len(FEATURES))) < 0.05  # missing features take training medians
    new = new.with_columns(
        pl.when(pl.Series(holes[:, j]) & (pl.int_range(pl.len()) >= 6))
        .then(None)
        .otherwise(pl.col(f))
        .alias(f)
        for j, f in enumerate(FEATURES)
    )
    batch = scorer.predict_frame(new)
    ones = [scorer.score_one(r) for r in new.to_dicts()]
    assert [o["score"] for o in ones] == batch["combined"].to_list()
    assert [o["is_rare"] for o in ones] == batch["is_rare"].to_list()
    for m in scorer.detector.methods:
        assert [o["methods"][m] for o in ones] == batch[m].to_list()
    assert sum(o["is_rare"] for o in ones[:6]) == 6  # the planted rare devices
    assert sum(o["is_rare"] for o in ones[6:]) <= 0.1 * 394
    vectors = new.select(FEATURES).to_numpy()
    assert [scorer.score_one(v)["score"] for v in vectors[:50]] == [o["score"] for o in ones[:50]]


def test_a_fingerprint_without_a_feature_is_refused_as_the_batch_refuses_it(
    scorer: RareDeviceScorer,
) -> None:
    row = _fleet(1, n=1).to_dicts()[0]
    del row["v__mean"]
    with pytest.raises(DataError, match="fingerprints lack 1 column"):
        scorer.score_one(row)
    with pytest.raises(DataError, match="a fingerprint of 4 values for a model of 5"):
        scorer.score_one(np.zeros(4))


def test_the_predictor_scores_a_fingerprint_against_whole_histories_or_windows(
    scorer: RareDeviceScorer,
) -> None:
    windows = RareDeviceScorer.from_ranking(
        rank_rare_devices(_fleet(3), entity="device_id", methods=("ecod",)),
        _fleet(3),
        entity="device_id",
    )
    predictor = FleetPredictor(
        scorer,
        None,
        time="timestamp",
        metrics=["t", "v", "c"],
        fingerprint=FingerprintConfig(),
        window_scorer=windows,
        window=timedelta(days=7),
    )
    row = _fleet(4, n=1).to_dicts()[0]
    whole = predictor.score_fingerprint(row)
    assert whole["compared_with"] == "whole history"
    assert whole["score"] == scorer.predict_frame(pl.DataFrame([row]))["combined"][0]
    short = predictor.score_fingerprint(row, window=True)
    assert short["compared_with"] == "7-day windows of the training devices"
    assert short["score"] == windows.predict_frame(pl.DataFrame([row]))["combined"][0]
