"""Point detectors: planted spikes recalled, few false flags, constant series, estimator contract."""

from __future__ import annotations

import pickle

import numpy as np
import polars as pl
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from opslens.detect.point import (
    IQRDetector,
    RobustZScoreDetector,
    ZScoreDetector,
    point_anomalies,
)
from opslens.errors import DataError
from opslens.plots.series import plot_point_anomalies

# IQR is tested with Tukey's "far out" fences (k=3): k=1.5 flags ~0.7% of Gaussian
# noise (about 7 false flags per 1000 points) by design.
DETECTORS = [ZScoreDetector(), RobustZScoreDetector(), IQRDetector(k=3.0)]


def _spiky(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, 1000)
    where = rng.choice(1000, size=10, replace=False)
    x[where] += rng.choice([-1.0, 1.0], 10) * rng.uniform(7.0, 10.0, 10)
    truth = np.zeros(1000, dtype=bool)
    truth[where] = True
    return x, truth


@pytest.mark.parametrize("detector", DETECTORS, ids=lambda d: type(d).__name__)
@pytest.mark.parametrize("seed", range(5))
def test_recall_and_false_flags(detector: ZScoreDetector, seed: int) -> None:
    x, truth = _spiky(seed)
    flags = clone(detector).fit(x).predict(x)
    assert (flags & truth).sum() >= 9
    assert (flags & ~truth).sum() <= 2


@pytest.mark.parametrize("detector", DETECTORS, ids=lambda d: type(d).__name__)
def test_scores_rank_spikes_first(detector: ZScoreDetector) -> None:
    x, truth = _spiky(7)
    score = clone(detector).fit(x).score_samples(x)
    assert (score >= 0).all()
    assert set(np.argsort(-score)[:10]) == set(np.flatnonzero(truth))


def test_exact_scores() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 100.0])
    z = ZScoreDetector().fit(x)
    np.testing.assert_allclose(z.score_samples(x), np.abs(x - x.mean()) / x.std())
    r = RobustZScoreDetector().fit(x)
    mad = np.median(np.abs(x - 3.5))
    np.testing.assert_allclose(r.score_samples(x), 0.6745 * np.abs(x - 3.5) / mad)
    q = IQRDetector().fit(x)
    q1, q3 = np.quantile(x, [0.25, 0.75])
    assert (q.q1_, q.q3_) == (q1, q3)
    assert q.predict(np.array([q3 + 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1) + 1e-9])).tolist() == [
        False,
        True,
    ]


@pytest.mark.parametrize("detector", DETECTORS, ids=lambda d: type(d).__name__)
def test_constant_series(detector: ZScoreDetector) -> None:
    flat = np.full(100, 4.2)
    fitted = clone(detector).fit(flat)
    assert not fitted.predict(flat).any()
    assert (fitted.score_samples(flat) == 0).all()
    probe = fitted.predict(np.array([4.2, 4.3, np.nan]))
    assert probe.tolist() == [False, True, False]


@pytest.mark.parametrize("detector", DETECTORS, ids=lambda d: type(d).__name__)
def test_estimator_contract(detector: ZScoreDetector) -> None:
    x, _ = _spiky(1)
    before = x.copy()
    with pytest.raises(NotFittedError):
        clone(detector).score_samples(x)
    a = clone(detector).fit(x)
    assert np.array_equal(x, before)
    b = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(a.score_samples(x), b.score_samples(x))
    assert clone(detector).get_params() == detector.get_params()
    x_nan = x.copy()
    x_nan[3] = np.nan
    s = clone(detector).fit(x_nan).score_samples(x_nan)
    assert np.isnan(s[3]) and np.isfinite(np.delete(s, 3)).all()


@pytest.mark.parametrize(
    ("method", "threshold"), [("zscore", None), ("robust_z", None), ("iqr", 3.0)]
)
def test_point_anomalies_frame(method: str, threshold: float | None) -> None:
    x, truth = _spiky(2)
    frame = pl.DataFrame({"t": np.arange(1000), "v": x})
    out = point_anomalies(frame, time="t", value="v", method=method, threshold=threshold)  # type: ignore[arg-type]
    assert out.columns == ["time", "value", "score", "is_anomaly"]
    assert out["is_anomaly"].dtype == pl.Boolean
    flags = out["is_anomaly"].to_numpy()
    assert (flags & truth).sum() >= 9 and (flags & ~truth).sum() <= 2
    fig = plot_point_anomalies(frame, time="t", value="v", flags=out["is_anomaly"], title=method)
    red = fig.axes[0].collections[0]
    assert np.asarray(red.get_offsets()).shape[0] == flags.sum()


def test_default_iqr_threshold_is_tukey_1_5() -> None:
    frame = pl.DataFrame({"t": range(8), "v": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 20.0]})
    out = point_anomalies(frame, time="t", value="v", method="iqr")
    assert out["is_anomaly"].to_list() == [False] * 7 + [True]


def test_bad_input_named() -> None:
    frame = pl.DataFrame({"t": [1, 2], "v": ["a", "b"]})
    with pytest.raises(DataError, match="'x'"):
        point_anomalies(frame, time="t", value="x", method="zscore")
    with pytest.raises(DataError, match="'v' is String"):
        point_anomalies(frame, time="t", value="v", method="zscore")
    with pytest.raises(DataError, match="'median'"):
        point_anomalies(frame.with_columns(v=pl.lit(1.0)), time="t", value="v", method="median")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="no finite values"):
        ZScoreDetector().fit(np.array([np.nan, np.nan]))


@pytest.mark.parametrize("method", ["robust_z", "iqr"])
def test_zero_spread_flags_no_healthy_reading(method: str) -> None:
    """A sensor dead (reading 0) 70% of the time: its healthy readings are not flagged.

    The MAD and the IQR are 0 there; before the fallback every healthy reading scored inf.
    """
    rng = np.random.default_rng(3)
    healthy = rng.normal(50.0, 2.0, 60)
    x = np.r_[np.zeros(140), healthy]
    frame = pl.DataFrame({"t": range(x.size), "v": x})
    flags = point_anomalies(frame, time="t", value="v", method=method)["is_anomaly"]
    assert int(flags.sum()) == 0
    # a true spike far beyond the healthy readings is still flagged
    spiked = pl.DataFrame({"t": range(x.size + 1), "v": np.r_[x, 900.0]})
    flags = point_anomalies(spiked, time="t", value="v", method=method)["is_anomaly"]
    assert flags.to_list()[-1] and int(flags.sum()) == 1
