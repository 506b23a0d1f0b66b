"""Fingerprint features against straightforward numpy/scipy/statsmodels references."""

from __future__ import annotations

import math
import warnings
from itertools import pairwise

import numpy as np
import polars as pl
import pytest
import scipy.signal
import scipy.stats
from statsmodels.tsa.adfvalues import mackinnonp
from statsmodels.tsa.stattools import acf, adfuller

from opslens.errors import ConfigError, DataError
from opslens.features.fingerprints import (
    FEATURES,
    FingerprintConfig,
    _adf_pvalue,
    device_fingerprint,
    feature_names,
    fleet_fingerprints,
    series_fingerprint,
)

NAN = math.nan
CFG = FingerprintConfig(window=10, lags=(1, 2, 5, 24), peaks_support=2, adf_lags=3)


# ---------------------------------------------------------------- references


def ref_sample_entropy(x: np.ndarray, m: int, r: float) -> float:
    """Naive O(N^2) sample entropy as tsfresh counts it (all pairs, Chebyshev <= r)."""

    def pairs(length: int, count: int) -> int:
        t = np.array([x[i : i + length] for i in range(count)])
        if len(t) < 2:
            return 0
        d = np.abs(t[:, None, :] - t[None, :, :]).max(axis=2)
        return int(((d <= r).sum() - len(t)) // 2)

    n = len(x)
    b = pairs(m, n - m + 1) if n - m + 1 > 0 else 0
    a = pairs(m + 1, n - m) if n - m > 0 else 0
    return NAN if a == 0 or b == 0 else -math.log(a / b)


def ref_permutation_entropy(x: np.ndarray, order: int, delay: int) -> float:
    npat = len(x) - (order - 1) * delay
    if npat <= 0:
        return NAN
    emb = np.array([x[i : i + (order - 1) * delay + 1 : delay] for i in range(npat)])
    ranks = np.argsort(np.argsort(emb, axis=1, kind="stable"), axis=1, kind="stable")
    _, counts = np.unique(ranks, axis=0, return_counts=True)
    p = counts / npat
    return float(-(p * np.log(p)).sum())


def ref_number_peaks(x: np.ndarray, support: int) -> float:
    peaks = 0
    for i in range(support, len(x) - support):
        left, right = x[i - support : i], x[i + 1 : i + support + 1]
        peaks += bool((x[i] > left).all() and (x[i] > right).all())
    return float(peaks)


def ref_features(values: np.ndarray, cfg: FingerprintConfig) -> dict[str, float]:
    """Every feature, written the plain way on one series."""
    v = np.asarray(values, dtype=float)
    x = v[np.isfinite(v)]
    n = len(x)
    out = dict.fromkeys(feature_names(cfg), NAN)
    out["count"] = float(n)
    out["missing_ratio"] = (len(v) - n) / len(v) if len(v) else NAN
    if n == 0:
        return out
    const = bool(x.min() == x.max())
    out.update(mean=x.mean(), std=x.std(), min=x.min(), max=x.max(), median=np.median(x))
    if n >= 3:
        out["skewness"] = 0.0 if const else scipy.stats.skew(x, bias=False)
    if n >= 4:
        out["kurtosis"] = 0.0 if const else scipy.stats.kurtosis(x, bias=False)
    k = n // cfg.window
    if k >= 1:
        w = x[: k * cfg.window].reshape(k, cfg.window)
        means, stds = w.mean(axis=1), w.std(axis=1)
        out.update(
            win_mean_std=means.std(),
            win_mean_range=np.ptp(means),
            win_std_mean=stds.mean(),
            win_std_std=stds.std(),
            win_std_max=stds.max(),
            win_min_min=w.min(),
            win_max_max=w.max(),
            win_range_mean=(w.max(axis=1) - w.min(axis=1)).mean(),
        )
        if k >= 2:
            jumps = np.abs(np.diff(means)) > cfg.level_threshold * stds.mean()
            out["level_changes"] = float(jumps.sum())
    d = np.diff(x)
    out["cid_ce"] = float(np.sqrt(d @ d))
    out["number_peaks"] = ref_number_peaks(x, cfg.peaks_support)
    out["permutation_entropy"] = ref_permutation_entropy(x, cfg.pe_order, cfg.pe_delay)
    if cfg.include_sample_entropy:
        out["sample_entropy"] = ref_sample_entropy(x, cfg.sampen_m, cfg.sampen_r * x.std())
    if n >= 2:
        out["trend_slope"] = scipy.stats.linregress(np.arange(n), x).slope
        out["volatility"] = d.std()
        out["mean_abs_change"] = np.abs(d).mean()
    if not const:
        if n >= 2:
            f, p = scipy.signal.periodogram(x, detrend="constant")
            f, p = f[1:], p[1:]
            out["spectral_centroid"] = (f * p).sum() / p.sum()
            if len(p) >= 2:
                q = p / p.sum()
                q = q[q > 0]
                out["spectral_entropy"] = -(q * np.log(q)).sum() / np.log(len(p))
        a = acf(x, nlags=min(max(cfg.lags), n - 1), fft=False)
        for lag in cfg.lags:
            if lag < n:
                out[f"acf_{lag}"] = a[lag]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            stat, pvalue, _, store = adfuller(
                x, maxlag=cfg.adf_lags, autolag=None, regression="c", store=True, regresults=True
            )
        fit = store.resols
        if fit.ssr > 1e-10 * fit.centered_tss:  # a perfect fit's statistic is rounding noise
            out["adf_stat"], out["adf_pvalue"] = stat, pvalue
    except (ValueError, np.linalg.LinAlgError):
        pass
    return {key: float(val) for key, val in out.items()}


def rng_series() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    walk = np.cumsum(rng.normal(size=257))
    ar = np.zeros(300)
    for t in range(1, 300):
        ar[t] = 0.6 * ar[t - 1] + rng.normal()
    holes = rng.normal(size=240)
    holes[rng.choice(240, 30, replace=False)] = np.nan
    holes[5] = np.inf
    return {
        "normal": rng.normal(size=300),
        "walk_odd_length": walk,
        "ar_trend_offset": 1e4 + 0.01 * np.arange(300) + ar,
        "with_nans": holes,
        "integers_with_ties": rng.integers(0, 5, size=200).astype(float),
        "constant": np.full(60, 3.7),
        "constant_with_nans": np.where(np.arange(40) % 3 == 0, np.nan, -2.5),
        "two_values": np.tile([0.0, 1.0], 30),
        "all_nan": np.full(5, np.nan),
        "empty": np.array([]),
        **{f"short_{k}": rng.normal(size=k) for k in (1, 2, 3, 4, 5, 7)},
    }


# ---------------------------------------------------------------- per-feature agreement


@pytest.mark.parametrize("name", list(rng_series()))
def test_every_feature_matches_reference(name: str) -> None:
    x = rng_series()[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning spam on short or constant input
        got = series_fingerprint(x, CFG)
    want = ref_features(x, CFG)
    assert list(got) == feature_names(CFG)
    for key in want:
        np.testing.assert_allclose(
            got[key], want[key], rtol=1e-6, atol=1e-9, equal_nan=True, err_msg=key
        )


def test_reference_covers_something_real() -> None:
    """The references are not all NaN: most features are defined on a normal series."""
    fp = series_fingerprint(rng_series()["normal"], CFG)
    assert sum(math.isnan(v) for v in fp.values()) == 0
    assert len(feature_names(CFG)) >= 30


def test_sample_entropy_general_m_and_delay() -> None:
    cfg = FingerprintConfig(window=10, sampen_m=3, sampen_r=0.3, pe_order=4, pe_delay=2)
    x = np.sin(np.arange(400) / 7.0) + np.random.default_rng(3).normal(scale=0.3, size=400)
    got = series_fingerprint(x, cfg)
    assert got["sample_entropy"] == pytest.approx(ref_sample_entropy(x, 3, 0.3 * x.std()), rel=1e-9)
    assert got["permutation_entropy"] == pytest.approx(ref_permutation_entropy(x, 4, 2), rel=1e-9)


def test_adf_matches_statsmodels_over_lags_and_shapes() -> None:
    rng = np.random.default_rng(11)
    for lags in (0, 1, 4, 12):
        for x in (
            np.cumsum(rng.normal(size=500)) + 1e6,
            rng.normal(size=120),
            0.5 * np.arange(80.0) + rng.normal(size=80),
        ):
            got = series_fingerprint(x, FingerprintConfig(adf_lags=lags))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                stat, pvalue = adfuller(x, maxlag=lags, autolag=None, regression="c")[:2]
            assert got["adf_stat"] == pytest.approx(stat, rel=1e-8, abs=1e-8)
            assert got["adf_pvalue"] == pytest.approx(pvalue, rel=1e-8, abs=1e-10)


def test_adf_pvalue_is_mackinnonp() -> None:
    stats = np.concatenate([np.linspace(-25, 5, 601), [-18.83, -1.61, 2.74]])
    want = [mackinnonp(s, regression="c", N=1) for s in stats]
    np.testing.assert_allclose(_adf_pvalue(stats), want, rtol=1e-12, atol=0)
    assert math.isnan(_adf_pvalue(np.array([NAN]))[0])


def test_matches_tsfresh_calculators() -> None:
    from tsfresh.feature_extraction import feature_calculators as fc

    x = np.random.default_rng(5).normal(size=500).cumsum()
    got = series_fingerprint(x)
    assert got["sample_entropy"] == pytest.approx(fc.sample_entropy(x), rel=1e-9)
    assert got["permutation_entropy"] == pytest.approx(
        fc.permutation_entropy(x, tau=1, dimension=3), rel=1e-9
    )
    assert got["number_peaks"] == fc.number_peaks(x, n=3)
    assert got["cid_ce"] == pytest.approx(fc.cid_ce(x, normalize=False), rel=1e-9)
    assert got["mean_abs_change"] == pytest.approx(fc.mean_abs_change(x), rel=1e-9)
    assert got["skewness"] == pytest.approx(fc.skewness(x), rel=1e-9)
    assert got["kurtosis"] == pytest.approx(fc.kurtosis(x), rel=1e-9)


# ---------------------------------------------------------------- planted structure


def test_planted_structure_is_recovered() -> None:
    rng = np.random.default_rng(0)
    cfg = FingerprintConfig(window=50)
    # three level shifts of 5 noise units, at window boundaries
    levels = np.repeat([0.0, 5.0, 0.0, 5.0], 250) + rng.normal(size=1000)
    fp = series_fingerprint(levels, cfg)
    assert fp["level_changes"] == 3.0
    # a period-20 sine: centroid at 1/20 cycles per reading, acf(10) near -1, one peak per period
    sine = np.sin(2 * np.pi * np.arange(2000) / 20) + rng.normal(scale=0.05, size=2000)
    fp = series_fingerprint(sine, FingerprintConfig(lags=(10, 20)))
    assert fp["spectral_centroid"] == pytest.approx(0.05, abs=0.005)
    assert fp["acf_10"] < -0.95 < 0.95 < fp["acf_20"]
    assert fp["spectral_entropy"] < 0.2
    assert 95 <= fp["number_peaks"] <= 100
    # white noise is stationary, a random walk is not; noise has flat spectrum
    noise, walk = rng.normal(size=2000), rng.normal(size=2000).cumsum()
    fn, fw = series_fingerprint(noise), series_fingerprint(walk)
    assert fn["adf_pvalue"] < 0.01 < 0.1 < fw["adf_pvalue"]
    assert fn["spectral_entropy"] > 0.9
    assert fn["sample_entropy"] > 2.0
    assert max(fw["sample_entropy"], series_fingerprint(sine)["sample_entropy"]) < 0.5
    assert fn["permutation_entropy"] == pytest.approx(math.log(6), abs=0.02)
    # a trend with slope 0.3
    assert series_fingerprint(0.3 * np.arange(500) + noise[:500])["trend_slope"] == pytest.approx(
        0.3, abs=0.01
    )


# ---------------------------------------------------------------- fleet path


def make_long(seed: int = 1) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    parts = []
    for d, n in enumerate([300, 1, 2, 3, 50, 120, 240, 240, 75, 400]):
        temp = rng.normal(size=n).cumsum() if d % 2 else rng.normal(size=n)
        load = np.full(n, 2.0) if d == 4 else rng.gamma(2.0, size=n)
        temp_l = [None if (d == 5 and i % 7 == 0) else float(v) for i, v in enumerate(temp)]
        parts.append(
            pl.DataFrame(
                {
                    "device": f"dev-{(d * 7) % 10:02d}",
                    "ts": np.arange(n) * 60 + d,
                    "temp": temp_l,
                    "load": load,
                },
                schema={
                    "device": pl.String,
                    "ts": pl.Int64,
                    "temp": pl.Float64,
                    "load": pl.Float64,
                },
            )
        )
    return pl.concat(parts)


def test_fleet_equals_per_device_path() -> None:
    long = make_long()
    shuffled = long.sample(fraction=1.0, shuffle=True, seed=3)
    fleet = fleet_fingerprints(
        shuffled, entity="device", time="ts", metrics=["temp", "load"], config=CFG
    )
    names = feature_names(CFG)
    assert fleet.columns == ["device"] + [f"{m}__{f}" for m in ("temp", "load") for f in names]
    assert fleet["device"].to_list() == sorted(long["device"].unique().to_list())
    assert all(dt == pl.Float64 for dt in fleet.drop("device").dtypes)
    for row in fleet.iter_rows(named=True):
        rows = long.filter(pl.col("device") == row["device"]).sort("ts")
        one = device_fingerprint(rows, metrics=["temp", "load"], config=CFG)
        for key, value in one.items():
            np.testing.assert_allclose(
                row[key], value, rtol=1e-12, atol=0, equal_nan=True, err_msg=key
            )
        # and the per-device path agrees with the plain reference
        for key, value in ref_features(rows["temp"].fill_null(NAN).to_numpy(), CFG).items():
            np.testing.assert_allclose(
                row[f"temp__{key}"], value, rtol=1e-6, atol=1e-9, equal_nan=True, err_msg=key
            )
    sorted_first = fleet_fingerprints(
        long.sort("device", "ts"), entity="device", time="ts", metrics=["temp", "load"], config=CFG
    )
    assert sorted_first.equals(fleet)


def test_fleet_row_counts_and_missing() -> None:
    fleet = fleet_fingerprints(make_long(), entity="device", time="ts", metrics=["temp"])
    by_dev = dict(zip(fleet["device"], fleet["temp__count"], strict=True))
    assert sorted(by_dev.values()) == sorted(
        [300.0, 1.0, 2.0, 3.0, 50.0, 120.0 - 18, 240.0, 240.0, 75.0, 400.0]
    )
    assert fleet.filter(pl.col("temp__missing_ratio") > 0).height == 1


def test_datetime_time_and_unsorted_within_device() -> None:
    t0 = pl.datetime(2024, 1, 1)
    long = pl.DataFrame({"id": [1, 1, 1, 2, 2], "v": [3.0, 1.0, 2.0, 5.0, 4.0]}).with_columns(
        t=t0 + pl.duration(hours=pl.Series([2, 0, 1, 1, 0]))
    )
    fp = fleet_fingerprints(
        long, entity="id", time="t", metrics=["v"], config=FingerprintConfig(window=2)
    )
    assert fp["id"].to_list() == [1, 2]
    assert fp["v__trend_slope"].to_list() == [1.0, 1.0]  # 1, 2, 3 and 4, 5 once time-ordered


@pytest.mark.parametrize("tiny", [1.4674805182030052e-184, 5e-324, -3e-200])
def test_values_below_floating_point_spread_give_numbers_not_errors(tiny: float) -> None:
    """A series whose spread (or spectrum) underflows to zero (Schemathesis sent
    0, 0, 1.47e-184 to the fleet service: a division by zero in a kernel, a 500) is scored
    as the constant series it is numerically: skewness and kurtosis 0, no spectrum."""
    fp = series_fingerprint(np.array([0.0, 0.0, tiny, 0.0, 0.0, 0.0]), CFG)
    assert fp["skewness"] == 0.0 and fp["kurtosis"] == 0.0
    assert math.isnan(fp["spectral_centroid"]) and math.isnan(fp["spectral_entropy"])
    long = pl.DataFrame({"d": ["a"] * 3, "t": [0, 1, 2], "v": [0.0, 0.0, tiny]})
    fleet = fleet_fingerprints(long, entity="d", time="t", metrics=["v"], config=CFG)
    assert fleet.height == 1


# ---------------------------------------------------------------- bad input


def test_bad_inputs_raise_actionable_errors() -> None:
    long = make_long()
    with pytest.raises(DataError, match="'nope'"):
        fleet_fingerprints(long, entity="nope", time="ts", metrics=["temp"])
    with pytest.raises(DataError, match="'when'"):
        fleet_fingerprints(long, entity="device", time="when", metrics=["temp"])
    with pytest.raises(DataError, match=r"'site'.*not a number"):
        fleet_fingerprints(
            long.with_columns(site=pl.lit("a")), entity="device", time="ts", metrics=["site"]
        )
    with pytest.raises(DataError, match="reuse a column"):
        fleet_fingerprints(long, entity="device", time="ts", metrics=["ts"])
    with pytest.raises(DataError, match="no rows"):
        fleet_fingerprints(long.head(0), entity="device", time="ts", metrics=["temp"])
    with pytest.raises(DataError, match="null ids"):
        fleet_fingerprints(
            long.with_columns(device=pl.lit(None, pl.String)),
            entity="device",
            time="ts",
            metrics=["temp"],
        )
    with pytest.raises(DataError, match="'x'"):
        device_fingerprint(long, metrics=["x"])
    with pytest.raises(ConfigError, match="window"):
        FingerprintConfig(window=1)
    with pytest.raises(ConfigError, match="lags"):
        FingerprintConfig(lags=(0, 1))


def test_config_and_names() -> None:
    assert FEATURES[0] == "count" and len(set(FEATURES)) == len(FEATURES)
    cfg = FingerprintConfig(include_sample_entropy=False)
    names = feature_names(cfg)
    assert "sample_entropy" not in names and names[-5:] == [
        "acf_1",
        "acf_2",
        "acf_5",
        "acf_10",
        "acf_24",
    ]
    got = series_fingerprint(np.random.default_rng(0).normal(size=100), cfg)
    assert list(got) == names
    assert all(b > a for a, b in pairwise(cfg.lags))
