"""Device behavioural fingerprints: one row of named series features per device.

For every metric column a device gets the features below, named
``f"{metric}__{feature}"``. :func:`series_fingerprint` computes them for one
series, :func:`device_fingerprint` for one device's rows (what a distributed
engine applies per group) and :func:`fleet_fingerprints` for a whole long
table at once (compiled numba kernels over all devices, in parallel). All three
run the same kernels, so they give the same numbers. The kernels compile on
first use (about 20 s of CPU, once: numba caches them in ``__pycache__``).

Missing values: NaN, null and +-inf readings are *missing*. ``count`` counts
the other (finite) readings and ``missing_ratio`` is the missing share of the
rows. Every other feature is computed on the finite readings in time order with
the missing ones dropped (not interpolated); order-dependent features treat
that compressed series as evenly spaced (the time column only orders rows;
gaps in time are not filled). A series with no finite reading gets ``count`` 0
and NaN elsewhere. A feature that is undefined for a series (too short,
constant) is NaN, never an error or a warning; the rules are listed below.

Features (x = finite readings in time order, n = len(x); std is ddof=0):

=====================  ========================================================
count, missing_ratio   finite readings; missing rows / all rows
mean, std, min, max,   usual; median of an even n is the mean of the middle two
median
skewness, kurtosis     bias-corrected (scipy ``skew``/``kurtosis(bias=False)``,
                       pandas' ``skew``/``kurt``); NaN for n < 3 / n < 4;
                       0 for a constant series (pandas' convention)
win_*                  statistics of the n // window non-overlapping windows of
                       ``window`` points (a trailing partial window is
                       dropped): win_mean_std (std of window means),
                       win_mean_range (max - min of window means),
                       win_std_mean / win_std_std / win_std_max (mean, std, max
                       of window stds), win_min_min, win_max_max,
                       win_range_mean (mean of window max - min). NaN when
                       n < window
trend_slope            least-squares slope of x against 0 .. n-1; NaN for n < 2
level_changes          count of consecutive windows whose means differ by more
                       than ``level_threshold`` x win_std_mean (the typical
                       within-window noise); NaN with fewer than 2 windows
volatility             std of first differences; NaN for n < 2
mean_abs_change        mean of abs first differences; NaN for n < 2
cid_ce                 sqrt(sum of squared differences) (tsfresh, normalize
                       False); 0 for n = 1
sample_entropy         tsfresh's ``sample_entropy`` generalised to m and r:
                       -log(A / B), B = template pairs of length m among all
                       n - m + 1 templates, A = pairs of length m + 1 among
                       the n - m templates, Chebyshev distance <= r x std.
                       (Richman & Moorman count B over the first n - m
                       templates only and use < r; tsfresh's form is kept so
                       the benchmark compares like with like.) NaN when A or
                       B is 0 (tsfresh returns inf or NaN there); only when
                       ``include_sample_entropy``
permutation_entropy    tsfresh's ``permutation_entropy``: Shannon entropy (ln,
                       not normalised) of the ordinal patterns of ``pe_order``
                       values ``pe_delay`` apart; ties ranked by position
                       (earlier = smaller, like a stable argsort). With delay
                       1 equal to tsfresh's ``tau=1``. NaN if no pattern fits
spectral_centroid,     from scipy's one-sided periodogram (mean removed) at
spectral_entropy       the n // 2 positive frequencies k / n (cycles per
                       reading): power-weighted mean frequency, and Shannon
                       entropy of the normalised power divided by
                       ln(n // 2), in [0, 1]. NaN for constant series and
                       n < 2; entropy NaN for n < 4
number_peaks           tsfresh's ``number_peaks(x, n=peaks_support)``: values
                       larger than their ``peaks_support`` neighbours on both
                       sides; 0 for short series
adf_stat, adf_pvalue   statsmodels ``adfuller(x, maxlag=adf_lags,
                       autolag=None, regression="c")`` statistic and MacKinnon
                       p-value, from a batched least-squares kernel. NaN when
                       adfuller refuses (constant, adf_lags > n // 2 - 2) or
                       the regression is degenerate (collinear regressors, or
                       a perfect fit: residual SS <= 1e-10 x total SS, where
                       adfuller reports rounding noise such as -7e15)
acf_<lag>              statsmodels ``acf`` (adjusted=False) at each lag of
                       ``lags``; NaN for lag >= n and constant series
=====================  ========================================================

Example:
    >>> import numpy as np
    >>> fp = series_fingerprint(np.array([1.0, 2.0, np.nan, 4.0]), FingerprintConfig(window=2))
    >>> fp["count"], fp["missing_ratio"], fp["mean"]
    (3.0, 0.25, 2.3333333333333335)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import polars as pl
import scipy.fft
from scipy.special import ndtr

from opslens.core.frames import as_polars
from opslens.errors import ConfigError, DataError
from opslens.features._kernels import (
    KERNEL_COLUMNS,
    fingerprint_kernel,
    segment_cut,
    spectral_kernel,
    spectral_kernel_serial,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "FEATURES",
    "FEATURE_WORDS",
    "FingerprintConfig",
    "RollingFingerprints",
    "describe_feature",
    "device_fingerprint",
    "feature_names",
    "fleet_fingerprints",
    "metric_fingerprints",
    "series_fingerprint",
]

#: Base feature names (config-independent); :func:`feature_names` adds ``acf_<lag>``.
FEATURES: tuple[str, ...] = (
    "count",
    "missing_ratio",
    "mean",
    "std",
    "min",
    "max",
    "median",
    "skewness",
    "kurtosis",
    "win_mean_std",
    "win_mean_range",
    "win_std_mean",
    "win_std_std",
    "win_std_max",
    "win_min_min",
    "win_max_max",
    "win_range_mean",
    "trend_slope",
    "level_changes",
    "volatility",
    "mean_abs_change",
    "cid_ce",
    "sample_entropy",
    "permutation_entropy",
    "spectral_centroid",
    "spectral_entropy",
    "number_peaks",
    "adf_stat",
    "adf_pvalue",
)


#: Each base feature in plain words, for reports.
FEATURE_WORDS: dict[str, str] = {
    "count": "number of readings",
    "missing_ratio": "share of missing readings",
    "mean": "average level",
    "std": "spread (standard deviation)",
    "min": "lowest reading",
    "max": "highest reading",
    "median": "median level",
    "skewness": "skew (lopsidedness)",
    "kurtosis": "heavy tails (kurtosis)",
    "win_mean_std": "drift of the window averages",
    "win_mean_range": "range of the window averages",
    "win_std_mean": "typical short-term spread",
    "win_std_std": "change in short-term spread",
    "win_std_max": "largest short-term spread",
    "win_min_min": "lowest window minimum",
    "win_max_max": "highest window maximum",
    "win_range_mean": "typical range within a window",
    "trend_slope": "trend (slope over time)",
    "level_changes": "number of level shifts",
    "volatility": "step-to-step volatility",
    "mean_abs_change": "average step-to-step change",
    "cid_ce": "complexity (CID)",
    "sample_entropy": "irregularity (sample entropy)",
    "permutation_entropy": "disorder of up/down patterns (permutation entropy)",
    "spectral_centroid": "typical cycle speed (spectral centroid)",
    "spectral_entropy": "spread over cycle lengths (spectral entropy)",
    "number_peaks": "number of peaks",
    "adf_stat": "stationarity test statistic (ADF)",
    "adf_pvalue": "non-stationarity (ADF test p-value)",
}


def describe_feature(name: str) -> str:
    """A fingerprint column in plain words: ``vibration__adf_pvalue`` → ``vibration: non-stationarity …``.

    Example:
        >>> describe_feature("vibration__adf_pvalue")
        'vibration: non-stationarity (ADF test p-value)'
        >>> describe_feature("temp__acf_24"), describe_feature("odd")
        ('temp: autocorrelation at lag 24', 'odd')
    """
    metric, sep, base = name.partition("__")
    if not sep:
        return FEATURE_WORDS.get(name, name)
    if base.startswith("acf_"):
        words = f"autocorrelation at lag {base[4:]}"
    else:
        words = FEATURE_WORDS.get(base, base.replace("_", " "))
    return f"{metric}: {words}"


@dataclass(frozen=True, kw_only=True)
class FingerprintConfig:
    """Parameters of the fingerprint features (see the module docstring for definitions).

    Example:
        >>> FingerprintConfig(window=12, lags=[1, 12]).lags
        (1, 12)
    """

    window: int = 24
    lags: tuple[int, ...] = (1, 2, 5, 10, 24)
    level_threshold: float = 1.0
    sampen_m: int = 2
    sampen_r: float = 0.2
    include_sample_entropy: bool = True
    pe_order: int = 3
    pe_delay: int = 1
    peaks_support: int = 3
    adf_lags: int = 4

    def __post_init__(self) -> None:
        object.__setattr__(self, "lags", tuple(int(lag) for lag in self.lags))
        checks = [
            ("window", self.window >= 2, "an integer >= 2"),
            ("lags", len(self.lags) > 0 and min(self.lags) >= 1, "positive integers"),
            ("lags", len(set(self.lags)) == len(self.lags), "distinct lags"),
            ("level_threshold", self.level_threshold >= 0, "a number >= 0"),
            ("sampen_m", self.sampen_m >= 1, "an integer >= 1"),
            ("sampen_r", self.sampen_r > 0, "a number > 0 (a fraction of the std)"),
            ("pe_order", 2 <= self.pe_order <= 8, "an integer from 2 to 8"),
            ("pe_delay", self.pe_delay >= 1, "an integer >= 1"),
            ("peaks_support", self.peaks_support >= 1, "an integer >= 1"),
            ("adf_lags", self.adf_lags >= 0, "an integer >= 0"),
        ]
        for name, ok, want in checks:
            if not ok:
                raise ConfigError(
                    f"fingerprint parameter {name}={getattr(self, name)!r} is invalid",
                    fix=f"set {name} to {want}",
                )


def feature_names(config: FingerprintConfig = FingerprintConfig()) -> list[str]:
    """Feature names in output order for ``config`` (without the metric prefix).

    Example:
        >>> names = feature_names(FingerprintConfig(lags=(1, 7), include_sample_entropy=False))
        >>> names[-2:], "sample_entropy" in names, len(names)
        (['acf_1', 'acf_7'], False, 30)
    """
    base = [f for f in FEATURES if config.include_sample_entropy or f != "sample_entropy"]
    return base + [f"acf_{lag}" for lag in config.lags]


# MacKinnon (1994/2010) p-value coefficients for regression "c", N = 1, as in
# statsmodels.tsa.adfvalues (tests check mackinnonp gives the same numbers).
_TAU_MAX, _TAU_MIN, _TAU_STAR = 2.74, -18.83, -1.61
_TAU_SMALLP = np.asarray([2.1659, 1.4412, 3.8269]) * np.array([1, 1, 1e-2])
_TAU_LARGEP = np.asarray([1.7339, 9.3202, -1.2745, -1.0368]) * np.array([1, 1e-1, 1e-1, 1e-2])


def _adf_pvalue(stat: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """statsmodels' ``mackinnonp(stat, regression="c", N=1)``, vectorised (NaN stays NaN)."""
    small = ndtr(np.polyval(_TAU_SMALLP[::-1], stat))
    large = ndtr(np.polyval(_TAU_LARGEP[::-1], stat))
    p = np.where(stat <= _TAU_STAR, small, large)
    p = np.where(stat > _TAU_MAX, 1.0, p)
    return np.asarray(np.where(stat < _TAU_MIN, 0.0, p), dtype=np.float64)


_PARALLEL_ROWS = 4096


def _spectral(
    values: npt.NDArray[np.float64], offsets: npt.NDArray[np.int64], constant: npt.NDArray[np.bool_]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Spectral centroid and normalised entropy per device; one batched FFT per distinct length."""
    lengths = np.diff(offsets)
    centroid = np.full(lengths.size, np.nan)
    entropy = np.full(lengths.size, np.nan)
    usable = (lengths >= 2) & ~constant
    for n in np.unique(lengths[usable]):
        devs = np.flatnonzero(usable & (lengths == n))
        if devs.size == lengths.size:  # every device, all of length n: a view, no gather
            block = values[offsets[0] : offsets[-1]].reshape(devs.size, n)
        else:
            block = values[offsets[devs][:, None] + np.arange(n)]
        block = block - block.mean(axis=1, keepdims=True)
        spec = scipy.fft.rfft(block, axis=1, workers=-1)
        # small batches (one per distinct length): a thread launch costs more than the work
        kernel = spectral_kernel if devs.size >= _PARALLEL_ROWS else spectral_kernel_serial
        centroid[devs], entropy[devs] = kernel(spec, int(n))
    return centroid, entropy


def _fingerprint_matrix(
    values: npt.NDArray[np.float64], offsets: npt.NDArray[np.int64], config: FingerprintConfig
) -> npt.NDArray[np.float64]:
    """Feature matrix (devices x :func:`feature_names`) of CSR-stored series."""
    with np.errstate(all="ignore"):
        finite = np.isfinite(values)
        rows = np.diff(offsets).astype(np.float64)
        if finite.all():
            cvalues, coffsets = values, offsets
        else:
            kept = np.concatenate([[0], np.cumsum(finite)])
            cvalues, coffsets = values[finite], kept[offsets]
        count = np.diff(coffsets).astype(np.float64)
        if not (cvalues.flags.writeable and cvalues.flags.c_contiguous):
            cvalues = np.array(cvalues, dtype=np.float64)  # one compiled signature: writable C
        kern = _kernel(cvalues, np.ascontiguousarray(coffsets, dtype=np.int64), config)
        col = {name: kern[:, i] for i, name in enumerate(KERNEL_COLUMNS)}
        col["count"] = count
        col["missing_ratio"] = (rows - count) / rows
        col["adf_pvalue"] = _adf_pvalue(col["adf_stat"])
        col["spectral_centroid"], col["spectral_entropy"] = _spectral(
            cvalues, coffsets, col["min"] == col["max"]
        )
        for i, lag in enumerate(config.lags):
            col[f"acf_{lag}"] = kern[:, len(KERNEL_COLUMNS) + i]
        return np.column_stack([col[name] for name in feature_names(config)])


#: per fingerprint config: where the kernel's columns and the others go among feature_names
_LAYOUTS: dict[
    FingerprintConfig, tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], dict[str, int]]
] = {}


def _layout(
    config: FingerprintConfig,
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], dict[str, int]]:
    """The kernel's output columns that are features, their positions among
    :func:`feature_names`, and the positions of the features finished in numpy."""
    got = _LAYOUTS.get(config)
    if got is None:
        names = feature_names(config)
        at = {name: i for i, name in enumerate(names)}
        kernel = [*KERNEL_COLUMNS, *(f"acf_{lag}" for lag in config.lags)]
        src = np.array([i for i, name in enumerate(kernel) if name in at], dtype=np.intp)
        dst = np.array([at[kernel[i]] for i in src], dtype=np.intp)
        rest = ("count", "missing_ratio", "adf_pvalue", "spectral_centroid", "spectral_entropy")
        got = _LAYOUTS[config] = (src, dst, {name: at[name] for name in rest})
    return got


_MIN, _MAX, _ADF = (KERNEL_COLUMNS.index(c) for c in ("min", "max", "adf_stat"))


def _kernel(values: np.ndarray, offsets: np.ndarray, config: FingerprintConfig) -> np.ndarray:
    """:func:`fingerprint_kernel` on series packed in ``values`` (series ``i`` is
    ``values[offsets[i]:offsets[i + 1]]``) with ``config``'s settings: one row per series."""
    out: np.ndarray = fingerprint_kernel(
        values,
        offsets,
        int(config.window),
        float(config.level_threshold),
        np.asarray(config.lags, dtype=np.int64),
        int(config.sampen_m),
        float(config.sampen_r),
        bool(config.include_sample_entropy),
        int(config.pe_order),
        int(config.pe_delay),
        int(config.peaks_support),
        int(config.adf_lags),
    )
    return out


def metric_fingerprints(
    values: npt.NDArray[np.float64], config: FingerprintConfig
) -> npt.NDArray[np.float64]:
    """The fingerprints of one device's metrics (one series per row of ``values``, all of the
    same readings in time order, NaN for a missing one): a row of :func:`feature_names` per
    metric, each equal to :func:`_fingerprint_matrix` of that series alone, at the cost of
    one kernel call for all of them (a device's single prediction: no table, no per-metric
    set-up). Run it with ``numba.set_num_threads(1)``: a few series are not worth the threads.

    Example:
        >>> v = np.vstack([np.sin(np.arange(50) / 3.0), np.arange(50.0)])
        >>> v[1, 7] = np.nan
        >>> one = _fingerprint_matrix(v[1].copy(), np.array([0, 50]), FingerprintConfig())
        >>> bool(np.array_equal(metric_fingerprints(v, FingerprintConfig())[1], one[0],
        ...                     equal_nan=True))
        True
    """
    k, n = values.shape
    src, dst, at = _layout(config)
    with np.errstate(all="ignore"):
        finite = np.isfinite(values)
        if finite.all():
            cvalues = np.array(values, dtype=np.float64, order="C").reshape(-1)
            coffsets = np.arange(0, (k + 1) * n, n, dtype=np.int64)
        else:
            cvalues = values[finite]  # row by row: each metric's finite readings, in order
            coffsets = np.zeros(k + 1, dtype=np.int64)
            np.cumsum(finite.sum(axis=1), out=coffsets[1:])
        kern = _kernel(cvalues, coffsets, config)
        out = np.empty((k, len(dst) + len(at)))
        out[:, dst] = kern[:, src]
        count = np.diff(coffsets).astype(np.float64)
        out[:, at["count"]] = count
        out[:, at["missing_ratio"]] = (float(n) - count) / float(n)
        out[:, at["adf_pvalue"]] = _adf_pvalue(kern[:, _ADF])  # elementwise: as one at a time
        out[:, at["spectral_centroid"]] = out[:, at["spectral_entropy"]] = np.nan
        for j in range(k):  # _spectral of each series alone: the same one-row FFT
            size = int(coffsets[j + 1] - coffsets[j])
            if size >= 2 and kern[j, _MIN] != kern[j, _MAX]:
                block = cvalues[coffsets[j] : coffsets[j + 1]].reshape(1, size)
                block = block - block.mean(axis=1, keepdims=True)
                spec = scipy.fft.rfft(block, axis=1, workers=-1)
                centroid, entropy = spectral_kernel_serial(spec, size)
                out[j, at["spectral_centroid"]] = centroid[0]
                out[j, at["spectral_entropy"]] = entropy[0]
        return out


def series_fingerprint(
    values: npt.ArrayLike, config: FingerprintConfig = FingerprintConfig()
) -> dict[str, float]:
    """Fingerprint of one series in time order (may hold NaN): ``{feature: value}``.

    Example:
        >>> fp = series_fingerprint(np.sin(np.arange(200) / 4.0))
        >>> round(fp["acf_1"], 3), fp["number_peaks"], round(fp["spectral_centroid"], 3)
        (0.968, 8.0, 0.04)
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    matrix = _fingerprint_matrix(x, np.array([0, x.size], dtype=np.int64), config)
    return {name: float(v) for name, v in zip(feature_names(config), matrix[0], strict=True)}


def _check_columns(frame: pl.DataFrame, columns: Sequence[str], role: str) -> None:
    """Raise DataError for a missing column."""
    for name in columns:
        if name not in frame.columns:
            raise DataError(
                f"{role} column {name!r} is not in the table (columns: {', '.join(frame.columns)})",
                fix=f"name an existing column as the {role}",
            )


def _metric_values(frame: pl.DataFrame, metric: str) -> npt.NDArray[np.float64]:
    """A metric column as float64 with nulls as NaN; DataError if it is not numeric."""
    series = frame.get_column(metric)
    if not series.dtype.is_numeric():
        raise DataError(
            f"metric column {metric!r} has type {series.dtype}, not a number",
            fix=f"cast {metric!r} to a numeric type or leave it out of the metrics",
        )
    return series.cast(pl.Float64).fill_null(np.nan).to_numpy().astype(np.float64, copy=False)


def device_fingerprint(
    frame: pl.DataFrame | pd.DataFrame,
    *,
    metrics: Sequence[str],
    config: FingerprintConfig = FingerprintConfig(),
) -> dict[str, float]:
    """Fingerprint of one device's rows (already time-sorted): ``{f"{metric}__{feature}": value}``.

    Example:
        >>> df = pl.DataFrame({"temp": [20.0, 21.0, None, 23.0], "load": [1, 1, 1, 1]})
        >>> fp = device_fingerprint(df, metrics=["temp", "load"], config=FingerprintConfig(window=2))
        >>> fp["temp__missing_ratio"], fp["load__std"], fp["load__acf_1"]
        (0.25, 0.0, nan)
    """
    frame = as_polars(frame, what="frame")
    _check_columns(frame, metrics, "metric")
    out: dict[str, float] = {}
    for metric in metrics:
        fp = series_fingerprint(_metric_values(frame, metric), config)
        out.update({f"{metric}__{name}": v for name, v in fp.items()})
    return out


def _sorted_runs(
    frame: pl.DataFrame, entity: str, time: str
) -> tuple[pl.DataFrame, pl.Series, npt.NDArray[np.int64]]:
    """The frame sorted by (entity, time), the entity ids and the CSR offsets of their rows.

    An already sorted frame (the usual export order) is detected in linear time and not re-sorted.
    """
    runs = frame.get_column(entity).rle()
    ids = runs.struct.field("value")
    ok = bool(ids.len() < 2 or (ids.slice(1) > ids.slice(0, ids.len() - 1)).all())
    if ok:
        times = frame.get_column(time)
        if times.null_count() > 0:
            ok = False
        else:
            stamp = times.to_physical().to_numpy()
            lengths = runs.struct.field("len").to_numpy().astype(np.int64)
            starts = np.cumsum(lengths)[:-1]
            back = stamp[1:] < stamp[:-1]
            back[starts - 1] = False  # a new device may start earlier in time
            ok = not back.any()
    if not ok:
        frame = frame.sort([entity, time], maintain_order=True)
        runs = frame.get_column(entity).rle()
        ids = runs.struct.field("value")
    lengths = runs.struct.field("len").to_numpy().astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return frame, ids.alias(entity), offsets


def fleet_fingerprints(
    long: pl.DataFrame | pd.DataFrame,
    *,
    entity: str,
    time: str,
    metrics: Sequence[str],
    config: FingerprintConfig = FingerprintConfig(),
) -> pl.DataFrame:
    """Fingerprints of every device in a long table: one row per device, sorted by ``entity``.

    Columns: ``entity``, then ``f"{metric}__{feature}"`` (Float64) for each metric
    and :func:`feature_names`. Rows are ordered by (entity, time) first (a stable
    sort: rows with equal times keep their order, null times come first; an
    already sorted table is detected and not re-sorted); devices may have
    different lengths. Null entity ids, a missing or non-numeric column, a
    column named in two roles and an empty table raise :class:`DataError`.
    A pandas DataFrame is converted to polars first (NaN and None both read as
    missing); anything that is not a frame raises :class:`DataError`.

    Example:
        >>> long = pl.DataFrame({"dev": ["b", "a", "a", "b", "a"], "t": [1, 2, 1, 2, 3],
        ...                      "v": [5.0, 2.0, 1.0, 7.0, 4.0]})
        >>> fp = fleet_fingerprints(long, entity="dev", time="t", metrics=["v"])
        >>> fp.select("dev", "v__count", "v__trend_slope").rows()
        [('a', 3.0, 1.5), ('b', 2.0, 2.0)]
    """
    long = as_polars(long, what="long")
    _check_columns(long, [entity], "entity")
    _check_columns(long, [time], "time")
    _check_columns(long, metrics, "metric")
    if not metrics:
        raise DataError(
            "no metric columns were given", fix="name at least one numeric metric column"
        )
    roles = [entity, time, *metrics]
    if len(set(roles)) < len(roles):
        raise DataError(
            f"entity {entity!r}, time {time!r} and metrics {list(metrics)} reuse a column",
            fix="name each column once: one entity, one time and distinct metric columns",
        )
    if long.height == 0:
        raise DataError("the table has no rows", fix="give a table with at least one reading")
    if long.get_column(entity).null_count() > 0:
        raise DataError(
            f"entity column {entity!r} has null ids",
            fix=f"drop or fill the rows whose {entity!r} is null",
        )
    frame, ids, offsets = _sorted_runs(long.select([entity, time, *metrics]), entity, time)
    names = feature_names(config)
    columns: list[pl.Series] = [ids]
    for metric in metrics:
        matrix = _fingerprint_matrix(_metric_values(frame, metric), offsets, config)
        columns.extend(
            pl.Series(f"{metric}__{name}", matrix[:, i], dtype=pl.Float64)
            for i, name in enumerate(names)
        )
    return pl.DataFrame(columns)


class RollingFingerprints:
    """Fingerprints of every device's readings in ``(t - window, t]``, checkpoint after checkpoint.

    The same numbers as :func:`fleet_fingerprints` of the readings in that
    window, without re-slicing, re-grouping and re-sorting the table each time:
    the table is sorted by (entity, time) once, each device's window is found
    by one vectorised binary search per checkpoint, and only devices whose
    window holds other rows than at the previous checkpoint are recomputed
    (the kernels see exactly the rows they would see in the slice). Devices
    with fewer than ``min_rows`` rows in the window are left out.

    Example:
        >>> from datetime import datetime, timedelta
        >>> t0 = datetime(2024, 1, 1)
        >>> long = pl.DataFrame({"dev": ["a", "b"] * 4,
        ...                      "ts": [t0 + timedelta(hours=i // 2) for i in range(8)],
        ...                      "v": [1.0, 5.0, 2.0, 5.0, 4.0, 6.0, 8.0, 5.0]})
        >>> roll = RollingFingerprints(long, entity="dev", time="ts", metrics=["v"],
        ...                            window=timedelta(hours=2), config=FingerprintConfig(window=2))
        >>> roll.at(t0 + timedelta(hours=3)).select("dev", "v__mean").rows()
        [('a', 6.0), ('b', 5.5)]
    """

    def __init__(
        self,
        long: pl.DataFrame,
        *,
        entity: str,
        time: str,
        metrics: Sequence[str],
        window: timedelta,
        config: FingerprintConfig = FingerprintConfig(),
        min_rows: int = 1,
    ) -> None:
        frame, ids, offsets = _sorted_runs(long.select([entity, time, *metrics]), entity, time)
        self.entity, self.metrics, self.config = entity, list(metrics), config
        self.window, self.min_rows = window, min_rows
        self._ids = ids
        self._values = {m: _metric_values(frame, m) for m in metrics}
        stamps = frame.get_column(time)
        self._dtype = stamps.dtype
        # physical time stamps (no copy), sorted within each device: one search per device
        self._stamps = np.ascontiguousarray(stamps.to_physical().to_numpy(), dtype=np.int64)
        self._offsets = offsets
        self._bounds: npt.NDArray[np.int64] | None = None
        self._rows: dict[str, npt.NDArray[np.float64]] = {}
        self.recomputed = 0

    def _cut(self, t: datetime) -> npt.NDArray[np.int64]:
        """Per device, the index of its first row after ``t``."""
        stamp = pl.Series([t], dtype=self._dtype).to_physical()[0]
        return np.asarray(segment_cut(self._stamps, self._offsets, int(stamp)))

    def at(self, t: datetime) -> pl.DataFrame:
        """Entity and ``f"{metric}__{feature}"`` columns of the devices with a window at ``t``."""
        bounds = np.column_stack([self._cut(t - self.window), self._cut(t)])
        prev = self._bounds
        todo = (
            np.arange(bounds.shape[0])
            if prev is None
            else np.flatnonzero((bounds != prev).any(axis=1))
        )
        self._bounds = bounds
        self.recomputed += int(todo.size)
        lo, hi = bounds[todo, 0], bounds[todo, 1]
        lengths = hi - lo
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        rows = np.repeat(lo - offsets[:-1], lengths) + np.arange(offsets[-1], dtype=np.int64)
        names = feature_names(self.config)
        for m in self.metrics:
            matrix = self._rows.setdefault(m, np.full((bounds.shape[0], len(names)), np.nan))
            if todo.size:
                matrix[todo] = _fingerprint_matrix(self._values[m][rows], offsets, self.config)
        keep = (bounds[:, 1] - bounds[:, 0]) >= max(self.min_rows, 1)
        columns: list[pl.Series] = [self._ids.filter(pl.Series(keep))]
        for m in self.metrics:
            kept = self._rows[m][keep]
            columns.extend(
                pl.Series(f"{m}__{name}", kept[:, i], dtype=pl.Float64)
                for i, name in enumerate(names)
            )
        return pl.DataFrame(columns)
