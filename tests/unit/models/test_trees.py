"""TreeWalk answers XGBoost's number to the last bit, and gives way to XGBoost's own call
for a model it does not read or an answer it would get wrong."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import xgboost as xgb

from opslens.models import trees
from opslens.models.trees import TreeWalk


def _data(seed: int, n: int, d: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Skewed counts, many zeros, 5% missing; the label from a few of them."""
    rng = np.random.default_rng(seed)
    X = rng.lognormal(size=(n, d)) * (rng.random((n, d)) < 0.6)
    X[rng.random((n, d)) < 0.05] = np.nan
    y = (np.nansum(X[:, :4], axis=1) + rng.normal(size=n) * 2 > 4).astype(int)
    return X, y


def _walk(model: Any) -> TreeWalk | None:
    return TreeWalk.from_xgboost(
        model.get_booster(), model._get_iteration_range(None), model.missing
    )


@pytest.mark.parametrize(
    "params",
    [
        {"n_estimators": 200, "max_depth": 3},  # propensity's defaults
        {"n_estimators": 40, "max_depth": 8, "base_score": 0.2},
        {"n_estimators": 60, "max_depth": 4, "missing": 0.0},  # zero read as missing
    ],
)
def test_a_classifier_is_answered_bit_for_bit(params: dict[str, Any]) -> None:
    X, y = _data(0, 4_000)
    model = xgb.XGBClassifier(n_jobs=1, **params).fit(X, y)
    walk = _walk(model)
    assert walk is not None
    T, _ = _data(1, 3_000)
    T[:50] = np.nan  # every feature missing: the default branches alone
    theirs = model.predict_proba(T)[:, 1].astype(np.float32)
    ours = np.array([walk(row) for row in T], dtype=np.float32)
    assert np.array_equal(ours.view(np.int32), theirs.view(np.int32))


def test_early_stopping_walks_the_best_iterations_only() -> None:
    X, y = _data(2, 4_000)
    model = xgb.XGBClassifier(n_estimators=300, max_depth=3, n_jobs=1, early_stopping_rounds=5)
    model.fit(X[:3_000], y[:3_000], eval_set=[(X[3_000:], y[3_000:])], verbose=False)
    assert model.best_iteration < 299  # stopped early: a range shorter than the trees
    walk = _walk(model)
    assert walk is not None and walk.roots.size == model.best_iteration + 1
    T, _ = _data(3, 1_000)
    assert [walk(r) for r in T] == model.predict_proba(T)[:, 1].astype(np.float32).tolist()


def test_a_regressor_is_answered_bit_for_bit() -> None:
    X, y = _data(4, 3_000)
    model = xgb.XGBRegressor(n_estimators=50, max_depth=5, n_jobs=1).fit(
        X, y + np.nan_to_num(X[:, 5])
    )
    walk = _walk(model)
    assert walk is not None
    T, _ = _data(5, 1_000)
    assert [walk(r) for r in T] == model.predict(T).tolist()


@pytest.mark.parametrize(
    "model",
    [
        xgb.XGBClassifier(n_estimators=10, booster="dart", n_jobs=1),
        xgb.XGBClassifier(n_estimators=10, num_parallel_tree=3, n_jobs=1),
        xgb.XGBRegressor(n_estimators=10, objective="reg:absoluteerror", n_jobs=1),
    ],
    ids=["dart", "parallel-trees", "other-objective"],
)
def test_a_model_it_does_not_read_is_left_to_xgboost(model: Any) -> None:
    X, y = _data(6, 1_000)
    assert _walk(model.fit(X, y)) is None


def test_several_classes_and_categorical_splits_are_left_to_xgboost() -> None:
    X, y = _data(7, 1_500)
    classes = xgb.XGBClassifier(n_estimators=5, n_jobs=1).fit(X, y + (X[:, 6] > 1))
    assert _walk(classes) is None
    import pandas as pd

    frame = pd.DataFrame(X[:, :3], columns=["a", "b", "c"]).assign(
        kind=pd.Categorical(np.where(y == 1, "p", np.where(X[:, 4] > 1, "q", "r")))
    )
    categorical = xgb.XGBClassifier(
        n_estimators=5, tree_method="hist", enable_categorical=True, n_jobs=1
    ).fit(frame, y)
    assert _walk(categorical) is None


def test_an_answer_off_by_one_bit_on_the_probes_leaves_the_model_to_xgboost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    X, y = _data(8, 2_000)
    model = xgb.XGBClassifier(n_estimators=30, max_depth=3, n_jobs=1).fit(X, y)
    assert _walk(model) is not None
    exact = trees._logit
    monkeypatch.setattr(
        trees, "_logit", lambda p: float(np.nextafter(np.float32(exact(p)), np.float32(1)))
    )
    assert _walk(model) is None


def test_the_probes_reach_every_leaf_of_a_shallow_model() -> None:
    X, y = _data(9, 3_000)
    model = xgb.XGBClassifier(n_estimators=20, max_depth=3, n_jobs=1).fit(X, y)
    walk = _walk(model)
    assert walk is not None
    probes = walk.probes()
    leaves = model.get_booster().predict(xgb.DMatrix(probes), pred_leaf=True)
    every = model.get_booster().predict(xgb.DMatrix(X), pred_leaf=True)
    reached = sum(len(set(leaves[:, t])) for t in range(20))
    assert reached >= 0.9 * sum(len(set(every[:, t])) for t in range(20))


def _lightgbm_data(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Numbers with exact zeros, NaNs (in some features only) and whole-number codes."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 8))
    X[:, 6] = rng.integers(0, 5, n)  # a category's code, as the segments recipe passes it
    X[rng.random((n, 8)) < 0.1] = 0.0
    X[:, :3][rng.random((n, 3)) < 0.08] = np.nan
    y = np.nan_to_num(X[:, 0]) * 2 + X[:, 6] + rng.normal(0, 0.3, n)
    return X, y


@pytest.mark.parametrize(
    "params",
    [
        {"n_estimators": 100, "num_leaves": 15},  # the segments recipe's defaults
        {"n_estimators": 40, "num_leaves": 63, "zero_as_missing": True},
        {"n_estimators": 30, "num_leaves": 7, "use_missing": False},
        {"n_estimators": 50, "num_leaves": 15, "objective": "huber"},
    ],
)
def test_a_lightgbm_regressor_is_answered_bit_for_bit(params: dict[str, Any]) -> None:
    from lightgbm import LGBMRegressor

    X, y = _lightgbm_data(10, 3_000)
    booster = LGBMRegressor(verbose=-1, n_jobs=1, **params).fit(X, y).booster_
    walk = TreeWalk.from_lightgbm(booster)
    assert walk is not None
    T, _ = _lightgbm_data(11, 2_000)
    T[:20] = np.nan
    T[20:40] = 0.0
    T[40:60, 0] = 1e-40  # read as zero by LightGBM's dense rows
    theirs = booster.predict(T, num_threads=1)
    assert np.array_equal(np.array([walk(r) for r in T]).view(np.int64), theirs.view(np.int64))


def test_lightgbm_models_it_does_not_read_are_left_to_lightgbm() -> None:
    from lightgbm import LGBMClassifier, LGBMRegressor

    X, y = _lightgbm_data(12, 1_500)
    categorical = LGBMRegressor(n_estimators=10, verbose=-1).fit(X, y, categorical_feature=[6])
    assert TreeWalk.from_lightgbm(categorical.booster_) is None
    poisson = LGBMRegressor(n_estimators=10, objective="poisson", verbose=-1)
    assert TreeWalk.from_lightgbm(poisson.fit(X, np.abs(y)).booster_) is None  # exp of the sum
    binary = LGBMClassifier(n_estimators=10, verbose=-1).fit(X, (y > 0).astype(int))
    assert TreeWalk.from_lightgbm(binary.booster_) is None
    linear = LGBMRegressor(n_estimators=10, linear_tree=True, verbose=-1)
    assert TreeWalk.from_lightgbm(linear.fit(np.nan_to_num(X), y).booster_) is None


def test_a_row_of_another_width_is_refused_not_read_past_its_end() -> None:
    X, y = _data(13, 500)
    model = xgb.XGBClassifier(n_estimators=5, n_jobs=1).fit(X, y)
    walk = _walk(model)
    assert walk is not None
    with pytest.raises(ValueError, match="a row of 12 float64 values is needed"):
        walk(X[0, :5])
