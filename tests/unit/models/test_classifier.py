"""PatternClassifier: contract, exact stream/batch agreement, table vs fallback, unknowns, XGBoost."""

from __future__ import annotations

import json
import pickle

import numpy as np
import polars as pl
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from opslens.errors import DataError, InstanceError
from opslens.models.classifier import UNKNOWN_CATEGORY_POLICY, PatternClassifier

CATS = ["route", "band"]


def planted(n: int = 3_000, seed: int = 0) -> tuple[pl.DataFrame, np.ndarray]:
    """Class = (route + band) mod 3: needs both columns; 'weekday' is noise."""
    rng = np.random.default_rng(seed)
    r = rng.integers(0, 5, n)
    b = rng.integers(0, 3, n)
    X = pl.DataFrame(
        {
            "route": [f"R{i}" for i in r],
            "band": np.array(["night", "day", "eve"])[b].tolist(),
            "weekday": rng.integers(0, 7, n),
        }
    )
    return X, (r + b) % 3


@pytest.fixture(scope="module")
def fitted() -> tuple[PatternClassifier, pl.DataFrame, np.ndarray]:
    X, y = planted()
    return PatternClassifier(CATS, n_estimators=40).fit(X, y), X, y


def test_learns_the_interaction(fitted) -> None:
    model, _, _ = fitted
    X_test, y_test = planted(1_000, seed=1)
    assert (model.predict(X_test) == y_test).mean() == 1.0
    assert model.classes_.tolist() == [0, 1, 2]
    assert model.levels_ == {
        "route": ["R0", "R1", "R2", "R3", "R4"],
        "band": ["day", "eve", "night"],
    }
    assert model.feature_names_[:2] == ["route=R0", "route=R1"]
    assert model.feature_names_[5:] == ["band=day", "band=eve", "band=night"]
    proba = model.predict_proba(X_test)
    assert proba.shape == (1_000, 3) and proba.dtype == np.float32
    assert np.allclose(proba.sum(axis=1), 1.0, atol=1e-6)


def test_matches_xgboost_and_stream_equals_batch_bitwise(fitted) -> None:
    model, X, _ = fitted
    batch = model.predict_proba(X[:300])
    reference = model.model_.predict_proba(model._encode(X[:300]))
    assert np.abs(batch - reference).max() < 1e-6
    for i, row in enumerate(X[:300].iter_rows(named=True)):
        proba, unknown = model.predict_proba_one(row)
        assert unknown == []
        assert np.array_equal(proba, batch[i]), i


def test_weighted_distinct_rows_train_like_the_full_data() -> None:
    import xgboost as xgb

    X, y = planted(4_000, seed=2)
    rng = np.random.default_rng(2)
    noisy = y.copy()
    flip = rng.random(y.size) < 0.2
    noisy[flip] = rng.integers(0, 3, int(flip.sum()))
    model = PatternClassifier(CATS, n_estimators=30).fit(X, noisy)
    full = xgb.XGBClassifier(
        n_estimators=30,
        max_depth=4,
        learning_rate=0.1,
        random_state=0,
        n_jobs=1,
        tree_method="hist",
    ).fit(model._encode(X), noisy)
    assert np.abs(model.predict_proba(X) - full.predict_proba(model._encode(X))).max() < 1e-5


def test_unknown_category_is_a_defined_answer(fitted) -> None:
    model, _, _ = fitted
    proba, unknown = model.predict_proba_one({"route": "R9", "band": "night"})
    assert unknown == ["route"]
    assert proba.shape == (3,) and abs(float(proba.sum()) - 1.0) < 1e-6
    # the same as batch for a frame holding the unknown level (all-zero block)
    batch = model.predict_proba(pl.DataFrame({"route": ["R9"], "band": ["night"]}))
    assert np.array_equal(proba, batch[0])
    both, unknown2 = model.predict_proba_one({"route": None, "band": "dusk", "extra": 1})
    assert unknown2 == ["route", "band"] and both.shape == (3,)
    assert "all zeros" in UNKNOWN_CATEGORY_POLICY


def mixed_rows(n: int = 200, seed: int = 3) -> pl.DataFrame:
    """Planted rows with some unknown levels and nulls mixed in."""
    X, _ = planted(n, seed=seed)
    rng = np.random.default_rng(seed)
    route = np.array(X["route"].to_list(), dtype=object)
    band = np.array(X["band"].to_list(), dtype=object)
    route[rng.random(n) < 0.1] = "R9"
    band[rng.random(n) < 0.1] = None
    return X.with_columns(pl.Series("route", route.tolist()), pl.Series("band", band.tolist()))


@pytest.fixture(scope="module")
def fallback(fitted) -> PatternClassifier:
    _, X, y = fitted
    return PatternClassifier(CATS, n_estimators=40, table_limit=0).fit(X, y)


def test_table_holds_every_combination_and_answers_without_xgboost(fitted, monkeypatch) -> None:
    model, X, y = fitted
    # (5 routes + unknown) * (3 bands + unknown) rows, one per code combination
    assert model.table_ is not None and model.table_.shape == (6 * 4, 3)
    assert model.radix_weights_ == [1, 6]
    assert model.codes_[1] == {"day": 1, "eve": 2, "night": 3}
    assert PatternClassifier(CATS, n_estimators=2, table_limit=24).fit(X, y).table_ is not None
    assert PatternClassifier(CATS, n_estimators=2, table_limit=23).fit(X, y).table_ is None
    expected = model.predict_proba(pl.DataFrame({"route": ["R3"], "band": ["eve"]}))[0]

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the table path called xgboost")

    monkeypatch.setattr(model.booster_, "inplace_predict", refuse)
    proba, _ = model.predict_proba_one({"route": "R3", "band": "eve"})
    assert np.array_equal(proba, expected)
    assert np.array_equal(proba, model.table_[4 + 2 * 6])
    proba[:] = 0.0  # the answer is a copy: the table is unchanged
    assert np.array_equal(model.table_[4 + 2 * 6], expected)


def test_table_path_equals_fallback_path(fitted, fallback) -> None:
    model, _, _ = fitted
    assert fallback.table_ is None
    rows = mixed_rows()
    batch_table = model.predict_proba(rows)
    batch_fallback = fallback.predict_proba(rows)
    assert np.abs(batch_table - batch_fallback).max() < 1e-6
    for i, row in enumerate(rows.iter_rows(named=True)):
        a, unknown_a = model.predict_proba_one(row)
        b, unknown_b = fallback.predict_proba_one(row)
        assert unknown_a == unknown_b
        assert np.abs(a - b).max() < 1e-6, i
    # every table row (each combination, unknowns included) against the booster
    radix = np.array([6, 4])
    codes = np.arange(24)[:, None] // np.array(model.radix_weights_) % radix - 1
    direct = model.model_.predict_proba(model._onehot(codes))
    assert np.abs(model.table_ - direct).max() < 1e-6


@pytest.mark.parametrize("path", ["table", "fallback"])
def test_stream_equals_batch_bitwise_on_200_rows(fitted, fallback, path: str) -> None:
    model = fitted[0] if path == "table" else fallback
    rows = mixed_rows(200, seed=5)
    batch = model.predict_proba(rows)
    n_unknown = 0
    for i, row in enumerate(rows.iter_rows(named=True)):
        proba, unknown = model.predict_proba_one(row)
        n_unknown += bool(unknown)
        assert proba.dtype == np.float32
        assert np.array_equal(proba, batch[i]), i
    assert 20 < n_unknown < 100  # unknown levels and nulls were exercised


def test_unknown_categories_in_the_table_path(fitted, fallback) -> None:
    model, _, _ = fitted
    assert model.table_ is not None
    cases = [
        ({"route": "R9", "band": "night"}, ["route"], 0 + 3 * 6),
        ({"route": "R2", "band": "dusk"}, ["band"], 3 + 0 * 6),
        ({"route": None, "band": 4}, ["route", "band"], 0),
    ]
    for instance, expected_unknown, key in cases:
        proba, unknown = model.predict_proba_one(instance)
        assert unknown == expected_unknown
        assert np.array_equal(proba, model.table_[key])
        assert np.array_equal(proba, fallback.predict_proba_one(instance)[0])
        values = {c: [None if instance[c] is None else str(instance[c])] for c in CATS}
        frame = pl.DataFrame(values, schema=dict.fromkeys(CATS, pl.String))
        assert np.array_equal(proba, model.predict_proba(frame)[0])
    # an unknown route leaves the model to the band: the answer differs by band
    by_band = [model.predict_proba_one({"route": "R9", "band": b})[0] for b in ["day", "eve"]]
    assert not np.array_equal(by_band[0], by_band[1])


def test_missing_or_malformed_attribute_is_an_instance_error(fitted) -> None:
    model, _, _ = fitted
    with pytest.raises(InstanceError, match="'band'"):
        model.predict_proba_one({"route": "R1"})
    with pytest.raises(InstanceError, match="'route' is a list"):
        model.predict_proba_one({"route": ["R1"], "band": "day"})


def test_non_string_levels_match_between_paths() -> None:
    X = pl.DataFrame({"hour": [7, 8, 9] * 20, "flag": [True, False] * 30})
    y = np.array([0, 1, 2] * 20)
    model = PatternClassifier(["hour", "flag"], n_estimators=10).fit(X, y)
    assert model.levels_ == {"hour": ["7", "8", "9"], "flag": ["false", "true"]}
    proba, unknown = model.predict_proba_one({"hour": 8, "flag": True})
    assert unknown == [] and int(proba.argmax()) == 1
    assert np.array_equal(proba, model.predict_proba(X[1:2])[0])


def test_binary_case() -> None:
    X = pl.DataFrame({"c": ["a", "b", "c", "d"] * 25})
    y = np.array(["slow", "fast", "fast", "slow"] * 25)
    model = PatternClassifier(["c"], n_estimators=20).fit(X, y)
    assert model.classes_.tolist() == ["fast", "slow"]
    proba = model.predict_proba(X[:4])
    assert proba.shape == (4, 2)
    assert np.abs(proba - model.model_.predict_proba(model._encode(X[:4]))).max() < 1e-6
    assert model.predict(X[:4]).tolist() == ["slow", "fast", "fast", "slow"]
    one, _ = model.predict_proba_one({"c": "d"})
    assert np.array_equal(one, proba[3])


def test_estimator_contract(fitted) -> None:
    _, X, y = fitted
    X_before = X.clone()
    model = PatternClassifier(CATS, n_estimators=15, random_state=4)
    with pytest.raises(NotFittedError):
        model.predict_proba(X)
    with pytest.raises(NotFittedError):
        model.predict_proba_one({"route": "R1", "band": "day"})
    assert clone(model).get_params() == model.get_params()
    a = model.fit(X, y)
    assert a is model and X.equals(X_before)
    b = clone(model).fit(X, y)
    assert np.array_equal(a.predict_proba(X[:100]), b.predict_proba(X[:100]))
    restored = pickle.loads(pickle.dumps(a))
    assert np.array_equal(restored.predict_proba(X[:100]), a.predict_proba(X[:100]))
    assert restored.predict_proba_one({"route": "R1", "band": "day"})[0].tolist() == (
        a.predict_proba_one({"route": "R1", "band": "day"})[0].tolist()
    )
    assert restored.booster_.num_boosted_rounds() == 15


def test_metadata_is_json(fitted) -> None:
    model, _, _ = fitted
    meta = json.loads(json.dumps(model.to_metadata()))
    assert meta["categorical"] == CATS
    assert meta["classes"] == [0, 1, 2]
    assert meta["levels"]["band"] == ["day", "eve", "night"]
    assert meta["params"]["n_estimators"] == 40 and meta["params"]["max_depth"] == 4
    assert meta["feature_names"] == model.feature_names_
    assert meta["unknown_category"] == UNKNOWN_CATEGORY_POLICY


def test_fit_errors() -> None:
    X, y = planted(100)
    with pytest.raises(DataError, match=r"\['hour'\]"):
        PatternClassifier(["route", "hour"]).fit(X, y)
    with pytest.raises(DataError, match="100 rows but 99 labels"):
        PatternClassifier(CATS).fit(X, y[:99])
    with pytest.raises(DataError, match="only one class"):
        PatternClassifier(CATS).fit(X, np.zeros(100, dtype=int))
    with pytest.raises(DataError, match="no categorical"):
        PatternClassifier([]).fit(X, y)


def test_numeric_levels_are_one_level() -> None:
    from opslens.models.classifier import as_level

    X = pl.DataFrame({"hour": [6.0, 7.0] * 20})
    y = np.array([0, 1] * 20)
    model = PatternClassifier(["hour"], n_estimators=10).fit(X, y)
    assert model.levels_ == {"hour": ["6", "7"]}
    answers = [model.predict_proba_one({"hour": h}) for h in (6, 6.0, "6", " 6.0 ")]
    assert all(u == [] and np.array_equal(p, answers[0][0]) for p, u in answers)
    frame = pl.DataFrame({"hour": ["6", "6.0", "7"]})
    assert model.predict(frame).tolist() == [0, 0, 1]
    assert model.known_levels(frame).ravel().tolist() == [True, True, True]
    assert as_level(10**30) == "1.000000e+30" and as_level("abc") == "abc"
