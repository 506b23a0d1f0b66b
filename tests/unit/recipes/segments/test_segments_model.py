"""The segments chain on planted patients: segments recovered, noise placed, models beat global,
per-row paths and models, bad batch rows rejected with counts, the estimator contract."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import adjusted_rand_score

from opslens.errors import DataError
from opslens.recipes.segments.model import fit_model
from opslens.recipes.segments.params import SegmentsParams
from opslens.recipes.segments.preprocess import Preprocessor
from opslens.recipes.segments.regress import regression_metrics
from opslens.recipes.segments.stages import evaluate
from opslens.synthetic.patients import FEATURES, make_patients

FEATS = list(FEATURES)
PARAMS = SegmentsParams.model_validate({"model_features": ["score_lag1", "score_lag2"]})


@pytest.fixture(scope="module")
def planted():
    return make_patients(n_rows=3000, seed=0)


@pytest.fixture(scope="module")
def model(planted):
    train = planted.frame[:2250]
    return fit_model(
        train, PARAMS, features=FEATS, categorical=["ward"], series_target="next_score"
    )


def _mapping(labels: np.ndarray, truth: np.ndarray) -> dict[int, int]:
    return {int(s): int(np.bincount(truth[labels == s]).argmax()) for s in np.unique(labels)}


def test_planted_segments_recovered_and_noise_placed_by_knn(planted, model) -> None:
    a = model.assigner
    truth = planted.truth[:2250]
    clustered = a.labels_ >= 0
    assert a.n_segments_ == 4
    assert adjusted_rand_score(truth[clustered], a.labels_[clustered]) >= 0.8
    noise = ~clustered
    assert noise.sum() >= 30, "the planted outskirts give HDBSCAN noise to place"
    mapping = _mapping(a.labels_[clustered], truth[clustered])
    placed = np.array([mapping[s] for s in a.segments_[noise]])
    assert (placed == truth[noise]).mean() >= 0.9
    assert set(a.paths_[noise]) == {"knn"} and set(a.paths_[clustered]) == {"hdbscan"}
    assert ((a.confidence_ >= 0) & (a.confidence_ <= 1)).all()


def test_new_points_answer_path_and_confidence(planted, model) -> None:
    out = model.score(planted.frame[2250:])
    assert set(out["path"].unique()) == {"hdbscan", "knn"}
    assert out["confidence"].is_between(0, 1).all()
    held_truth = planted.truth[2250:]
    seg = out["segment"].to_numpy()
    mapping = _mapping(
        model.assigner.labels_[model.assigner.labels_ >= 0],
        planted.truth[:2250][model.assigner.labels_ >= 0],
    )
    assert (np.array([mapping[s] for s in seg]) == held_truth).mean() >= 0.95


def test_per_segment_models_beat_one_global_model(planted, model) -> None:
    report = evaluate(model, planted.frame[2250:])
    for target, margin in (("next_score", 0.0), ("resource_hours", 0.2)):
        seg, glob = report[target]["segment"]["rmse"], report[target]["global"]["rmse"]
        assert seg <= (1 - margin) * glob, (target, seg, glob)
        assert {"rmse", "mae", "r2"} <= set(report[target]["segment"])
        assert report[target]["feature_importance"]["global"]


def test_small_segment_uses_the_global_model_reported_per_row(planted) -> None:
    train = planted.frame[:2250]
    truth = planted.truth[:2250]
    keep = (truth != 3) | (np.arange(2250) % 20 == 0)  # segment 3 thinned to ~28 rows
    params = SegmentsParams.model_validate(
        {**PARAMS.model_dump(), "min_segment_rows": 40, "hdbscan": {"min_cluster_size": 15}}
    )
    m = fit_model(
        train.filter(pl.Series(keep)),
        params,
        features=FEATS,
        categorical=["ward"],
        series_target="next_score",
    )
    small = [s for s, n in m.series.segment_rows_.items() if n < 40]
    assert small, "the thinned segment is below the threshold"
    out = m.score(planted.frame[2250:])
    on_small = out["segment"].is_in(small)
    assert (out.filter(on_small)["model_series"] == "global").all()
    rest = out.filter(~on_small)  # each row by what its segment chose (noise rows: pooled)
    chosen = [
        m.series.choices_[s]["choice" if p == "hdbscan" else "noise_choice"]
        for s, p in zip(rest["segment"], rest["path"], strict=True)
    ]
    assert rest["model_series"].to_list() == chosen
    assert (out.filter(on_small)["model_resource"] == "global").all()
    off = m.score(planted.frame[2250:], graceful=False)
    rejected = off.filter(pl.col("status") == "rejected")
    assert rejected.height == on_small.sum() > 0
    assert rejected["reason"].str.contains("graceful degradation is off").all()


def _batch(planted) -> pl.DataFrame:
    return planted.frame[2250:2350]


def test_bad_rows_are_rejected_with_counts(planted, model) -> None:
    batch = _batch(planted).with_columns(
        pl.when(pl.int_range(pl.len()) < 3).then(None).otherwise(pl.col("age")).alias("age"),
        pl.when(pl.int_range(pl.len()).is_between(3, 4))
        .then(pl.lit("mars"))
        .otherwise(pl.col("ward"))
        .alias("ward"),
        pl.when(pl.int_range(pl.len()) == 5)
        .then(float("nan"))
        .otherwise(pl.col("bmi"))
        .alias("bmi"),
    )
    out = model.score(batch)
    assert out.height == batch.height
    rejected = out.filter(pl.col("status") == "rejected")
    assert rejected.height == 6
    assert rejected["reason"].to_list() == ["null or non-finite age"] * 3 + [
        "unseen category 'mars' in ward"
    ] * 2 + ["null or non-finite bmi"]
    assert rejected["pred_series"].is_null().all()
    assert (out["status"] == "scored").sum() + rejected.height == batch.height


def test_batch_level_errors_are_one_line(planted, model) -> None:
    batch = _batch(planted)
    with pytest.raises(DataError, match="column 'age' is missing from the batch; fix: give"):
        model.score(batch.drop("age"))
    with pytest.raises(DataError, match="column 'age' of the batch is String, not a number"):
        model.score(batch.with_columns(pl.col("age").cast(pl.String)))
    with pytest.raises(DataError, match="the batch has no rows"):
        model.score(batch.head(0))
    one = model.score(batch.head(1))
    assert one.height == 1 and one["status"].to_list() == ["scored"]


def test_regression_metrics_and_determinism(planted) -> None:
    assert regression_metrics(np.array([1.0, 3.0]), np.array([2.0, 2.0]))["rmse"] == 1.0
    train = planted.frame[:800]
    a = fit_model(train, PARAMS, features=FEATS, categorical=["ward"], series_target="next_score")
    b = fit_model(train, PARAMS, features=FEATS, categorical=["ward"], series_target="next_score")
    assert a.score(planted.frame[2250:]).equals(b.score(planted.frame[2250:]))


X = make_patients(n_rows=600, seed=3).frame
Z = Preprocessor(FEATS).fit(X).transform(X)


def test_preprocessor_scales_to_zero_mean() -> None:
    assert np.allclose(Preprocessor(FEATS).fit(X).transform(X).mean(axis=0), 0, atol=1e-9)
