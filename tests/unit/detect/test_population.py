"""Rare devices: ECOD, autoencoder, the ensemble detector and its helpers on planted fleets."""

from __future__ import annotations

import pickle

import numpy as np
import polars as pl
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score

from opslens.detect.autoencoder import AutoencoderDetector
from opslens.detect.ecod import ECOD
from opslens.detect.population import (
    RareDeviceDetector,
    fingerprint_matrix,
    rank_rare_devices,
    top_deviating_features,
)
from opslens.errors import ConfigError, DataError

D = 30


def planted_fleet(
    seed: int = 0, *, n_groups: int = 3, n_per: int = 60, n_out: int = 8
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian groups in 30 features plus outliers: +10σ in one planted feature, ±5σ in five more."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 2.0, size=(n_groups, D))
    X = np.vstack([rng.normal(c, 1.0, size=(n_per, D)) for c in centres])
    out = rng.normal(centres[np.arange(n_out) % n_groups], 1.0)
    planted = rng.choice(D, size=n_out, replace=False)
    for i, f in enumerate(planted):
        others = rng.choice(np.setdiff1d(np.arange(D), [f]), size=5, replace=False)
        out[i, f] += 10.0
        out[i, others] += 5.0 * rng.choice([-1.0, 1.0], size=5)
    is_out = np.r_[np.zeros(n_groups * n_per, bool), np.ones(n_out, bool)]
    return np.vstack([X, out]), is_out, planted


def as_frame(X: np.ndarray, entity: str = "device") -> pl.DataFrame:
    ids = pl.Series(entity, [f"dev{i:03d}" for i in range(X.shape[0])])
    return pl.DataFrame([ids, *(pl.Series(f"f{j:02d}", X[:, j]) for j in range(X.shape[1]))])


@pytest.fixture(scope="module")
def fleet() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return planted_fleet(0)


@pytest.fixture(scope="module")
def fitted(fleet: tuple[np.ndarray, np.ndarray, np.ndarray]) -> RareDeviceDetector:
    return RareDeviceDetector(random_state=0).fit(fleet[0])


# --- ECOD ---------------------------------------------------------------------------------------


def ecod_reference(train: np.ndarray, X: np.ndarray) -> np.ndarray:
    """ECOD written out loop by loop, straight from the definition."""
    n = train.shape[0]
    out = np.empty(X.shape[0])
    for i in range(X.shape[0]):
        left = right = skewed = 0.0
        for j in range(X.shape[1]):
            col = train[:, j]
            lt = -np.log((np.sum(col <= X[i, j]) + 1) / (n + 1))
            rt = -np.log((np.sum(col >= X[i, j]) + 1) / (n + 1))
            m = col.mean()
            sk = np.mean((col - m) ** 3) / np.mean((col - m) ** 2) ** 1.5
            left, right = left + lt, right + rt
            skewed += lt if sk < 0 else rt
        out[i] = max(left, right, skewed)
    return out


def test_ecod_matches_loop_reference_with_ties_and_new_points() -> None:
    rng = np.random.default_rng(4)
    train = np.round(rng.gamma(2.0, size=(40, 5)) * np.array([1, -1, 1, -1, 1]), 1)  # ties, skews
    new = np.vstack([train[:5], rng.normal(0, 5, size=(6, 5))])
    det = ECOD().fit(train)
    np.testing.assert_allclose(det.score_samples(new), ecod_reference(train, new), rtol=1e-12)


def test_ecod_hand_example() -> None:
    det = ECOD().fit(np.array([[0.0], [1.0], [2.0], [3.0], [30.0]]))
    # right tail of 30 (positive skew): -log((1+1)/(5+1)) = log 3
    assert det.score_samples(np.array([[30.0]]))[0] == pytest.approx(np.log(3.0))
    assert det.score_samples(np.array([[1e9]]))[0] == pytest.approx(np.log(6.0))


# --- the ensemble -------------------------------------------------------------------------------


def test_each_method_and_the_combined_score_find_the_planted_outliers(
    fleet: tuple[np.ndarray, np.ndarray, np.ndarray], fitted: RareDeviceDetector
) -> None:
    X, is_out, _ = fleet
    norm = fitted.normalised_scores(X)
    per_method = {m: roc_auc_score(is_out, norm[:, i]) for i, m in enumerate(fitted.methods)}
    assert min(per_method.values()) >= 0.85, per_method
    assert roc_auc_score(is_out, fitted.score_samples(X)) >= 0.95


def test_score_frame_ranks_and_flags(
    fleet: tuple[np.ndarray, np.ndarray, np.ndarray], fitted: RareDeviceDetector
) -> None:
    X, is_out, _ = fleet
    frame = fitted.score_frame(X, [f"dev{i:03d}" for i in range(X.shape[0])])
    assert frame.columns == [
        "entity", "isolation_forest", "one_class_svm", "ecod", "autoencoder",
        "combined", "rank", "is_rare",
    ]  # fmt: skip
    scores = frame.select(fitted.methods).to_numpy()
    assert scores.min() >= 0.0 and scores.max() <= 1.0
    assert sorted(frame["rank"].to_list()) == list(range(1, X.shape[0] + 1))
    by_rank = frame.sort("rank")["combined"].to_numpy()
    assert np.all(np.diff(by_rank) <= 0)
    # 5% contamination of 188 devices: about 9 flagged, and the 8 outliers are among the top 10
    assert 7 <= frame["is_rare"].sum() <= 11
    top10 = set(frame.sort("rank").head(10)["entity"].to_list())
    outliers = {f"dev{i:03d}" for i in np.nonzero(is_out)[0]}
    assert len(outliers & top10) >= 7


def test_normalised_scores_stay_in_unit_interval_for_new_extreme_rows(
    fitted: RareDeviceDetector,
) -> None:
    new = np.vstack([np.full(D, 1e6), np.full(D, -1e6), np.zeros(D)])
    norm = fitted.normalised_scores(new)
    assert norm.min() >= 0.0 and norm.max() <= 1.0
    assert norm[0].min() >= 0.99  # far beyond every training score


def test_top_deviating_features_put_the_planted_feature_first() -> None:
    X, is_out, planted = planted_fleet(1, n_groups=1, n_per=150)
    rows = [int(r) for r in np.nonzero(is_out)[0]]
    names = [f"f{j:02d}" for j in range(D)]
    top = top_deviating_features(X, names, rows, n=3)
    for i, r in enumerate(rows):
        first, z = top[r][0]
        assert first == names[planted[i]]
        assert 7.0 < z < 13.0  # +10σ planted, robust z against the fleet median/MAD


def test_top_deviating_features_exact_robust_z() -> None:
    X = np.array([[0.0, 10.0], [1.0, 10.0], [2.0, 10.0], [3.0, 10.0], [1.0, 30.0]])
    # column 0: median 1, MAD 1 → scale 1.4826; column 1: MAD 0 → the floor, std/4 = 2
    out = top_deviating_features(X, ["a", "b"], [3, 4], n=2)
    assert out[3] == [("a", round(2 / 1.4826, 2)), ("b", 0.0)]
    assert out[4] == [("b", 10.0), ("a", 0.0)]


def test_rank_rare_devices_describes_the_top(
    fleet: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    X, is_out, _ = fleet
    fp = as_frame(X).with_columns(pl.lit(1.0).alias("constant"))
    rare = rank_rare_devices(fp, entity="device", top_n=8, methods=("isolation_forest", "ecod"))
    assert rare.top.columns == ["device", "combined", "rank", "is_rare", "deviating_features"]
    assert rare.dropped_features == ["constant"]
    assert rare.top["rank"].to_list() == list(range(1, 9))
    first = rare.top.row(0, named=True)
    idx = int(first["device"][3:])
    assert is_out[idx]
    assert first["deviating_features"].count("σ") == 3
    assert rare.scores.height == X.shape[0]


# --- input cleaning -----------------------------------------------------------------------------


def test_fingerprint_matrix_imputes_median_and_drops_constant_columns() -> None:
    fp = pl.DataFrame(
        {
            "id": ["a", "b", "c", "d"],
            "x": [1.0, float("inf"), 3.0, 10.0],
            "k": [2.0, 2.0, float("nan"), 2.0],
            "gone": [float("nan")] * 4,
            "n": [1, 2, 3, 4],
        }
    )
    m = fingerprint_matrix(fp, entity="id")
    assert m.feature_names == ["x", "n"]
    assert m.dropped == ["k", "gone"]
    assert m.X[:, 0].tolist() == [1.0, 3.0, 3.0, 10.0]
    assert m.n_imputed == 1


@pytest.mark.parametrize(
    ("frame", "needle"),
    [
        (pl.DataFrame({"dev": ["a", "b", "c"], "x": [1.0, 2.0, 3.0]}), "'id'"),
        (pl.DataFrame({"id": ["a", "b", "c"], "x": ["p", "q", "r"]}), "'x' is not numeric"),
        (pl.DataFrame({"id": ["a", "a", "c"], "x": [1.0, 2.0, 3.0]}), "device 'a'"),
        (pl.DataFrame({"id": ["a", "b", "c"], "x": [1.0, 1.0, 1.0]}), "constant"),
    ],
)
def test_fingerprint_matrix_rejects_unusable_input(frame: pl.DataFrame, needle: str) -> None:
    with pytest.raises(DataError, match=needle):
        fingerprint_matrix(frame, entity="id")


def test_unknown_method_and_bad_contamination_are_config_errors() -> None:
    X = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(ConfigError, match="'lof'"):
        RareDeviceDetector(methods=("lof",)).fit(X)
    with pytest.raises(ConfigError, match="contamination"):
        RareDeviceDetector(contamination=0.7).fit(X)


# --- the estimator contract ---------------------------------------------------------------------

ESTIMATORS = [
    ECOD(),
    AutoencoderDetector(max_iter=60, random_state=3),
    RareDeviceDetector(random_state=3),
]


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_estimator_contract(estimator: object) -> None:
    rng = np.random.default_rng(7)
    X = rng.normal(size=(60, 6))
    X_before = X.copy()
    est = clone(estimator)
    assert est.get_params() == estimator.get_params()  # type: ignore[attr-defined]
    with pytest.raises(NotFittedError):
        est.score_samples(X)
    assert est.fit(X) is est
    s1 = est.score_samples(X)
    np.testing.assert_array_equal(X, X_before)  # input not mutated
    s2 = clone(estimator).fit(X).score_samples(X)
    np.testing.assert_array_equal(s1, s2)  # same seed, same output
    restored = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(restored.score_samples(X), s1)
    assert not hasattr(clone(est), "n_features_in_")  # clone drops learned state
