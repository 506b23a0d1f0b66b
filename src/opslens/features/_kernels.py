"""Compiled (numba) kernels behind :mod:`opslens.features.fingerprints`.

Every kernel works on *compressed* series: the finite values of one device in
time order, stored back to back in one ``values`` array with ``offsets``
(CSR style: device ``d`` owns ``values[offsets[d]:offsets[d + 1]]``).
:func:`fingerprint_kernel` fills one row of features per device, in parallel
over devices; the column order is :data:`KERNEL_COLUMNS`, then one ``acf``
column per lag. Spectral features (they need an FFT) and the ADF p-value are
finished in numpy by the caller. The definitions are documented in
``fingerprints.py``.

Reductions are plain index loops in IEEE order: no ``reassoc`` fast-math, which
let LLVM vectorise them differently when a kernel was compiled in the process
than when it was loaded from numba's cache, so the first run after an install
gave fingerprints 1e-16 apart from later runs (enough to reorder an autoencoder's
ranking). Measured on 5 million readings it cost nothing visible (the spectral and
ADF features dominate). NaN/inf are never assumed away (no ``nnan``/``ninf``).

Example:
    >>> import numpy as np
    >>> out = fingerprint_kernel(np.arange(10.0), np.array([0, 10]), 5, 1.0,
    ...                          np.array([1]), 2, 0.2, True, 3, 1, 1, 1)
    >>> float(out[0, KERNEL_COLUMNS.index("mean")])
    4.5
"""

from __future__ import annotations

import math

import numba
import numpy as np
import numpy.typing as npt

__all__ = [
    "KERNEL_COLUMNS",
    "fingerprint_kernel",
    "segment_cut",
    "spectral_kernel",
    "spectral_kernel_serial",
]

#: Columns of :func:`fingerprint_kernel`'s output, then one ``acf`` column per lag.
KERNEL_COLUMNS: tuple[str, ...] = (
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
    "level_changes",
    "trend_slope",
    "volatility",
    "mean_abs_change",
    "cid_ce",
    "sample_entropy",
    "permutation_entropy",
    "number_peaks",
    "adf_stat",
)
_NBASE = len(KERNEL_COLUMNS)
_NAN = np.nan
_FAST = {"nsz"}

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@numba.njit(error_model="numpy", cache=True, fastmath=_FAST)
def _summary(x: F64) -> tuple[float, float, float, float]:  # pragma: no cover
    """Min, max, mean and population std in two passes; exact for a constant array.

    Loops index from 0 over whole arrays (callers pass slices): an index
    numba cannot prove non-negative gets a wraparound check that stops LLVM
    from vectorising the loop.
    """
    n = x.size
    lo = x[0]
    hi = x[0]
    s = 0.0
    for i in range(n):
        v = x[i]
        lo = min(lo, v)
        hi = max(hi, v)
        s += v
    if lo == hi:
        return lo, hi, lo, 0.0
    mean = s / n
    ss = 0.0
    for i in range(n):
        d = x[i] - mean
        ss += d * d
    return lo, hi, mean, math.sqrt(ss / n)


@numba.njit(error_model="numpy", cache=True, fastmath=_FAST)
def _moments(x: F64, out: F64) -> None:  # pragma: no cover
    """Mean, population std, min, max, median, bias-corrected skewness and excess kurtosis."""
    n = x.size
    lo = x[0]
    hi = x[0]
    s = 0.0
    for i in range(n):
        v = x[i]
        lo = min(lo, v)
        hi = max(hi, v)
        s += v
    out[2] = lo
    out[3] = hi
    out[4] = np.median(x)
    if lo == hi:  # constant: exact mean and std; skewness, kurtosis 0 (pandas' convention)
        out[0] = lo
        out[1] = 0.0
        out[5] = 0.0 if n >= 3 else _NAN
        out[6] = 0.0 if n >= 4 else _NAN
        return
    mean = s / n
    m2 = 0.0
    m3 = 0.0
    m4 = 0.0
    for i in range(n):
        d = x[i] - mean
        d2 = d * d
        m2 += d2
        m3 += d2 * d
        m4 += d2 * d2
    m2 /= n
    m3 /= n
    m4 /= n
    out[0] = mean
    out[1] = math.sqrt(m2)
    out[5] = _NAN
    out[6] = _NAN
    if m2 == 0.0:  # spread below floating point (subnormal values): constant, as above
        out[5] = 0.0 if n >= 3 else _NAN
        out[6] = 0.0 if n >= 4 else _NAN
        return
    if n >= 3:
        out[5] = m3 / m2**1.5 * math.sqrt(n * (n - 1.0)) / (n - 2.0)
    if n >= 4:
        out[6] = (
            (n - 1.0) / ((n - 2.0) * (n - 3.0)) * ((n + 1.0) * m4 / (m2 * m2) - 3.0 * (n - 1.0))
        )


@numba.njit(error_model="numpy", cache=True, fastmath=_FAST)
def _windows(x: F64, w: int, thr: float, out: F64) -> None:  # pragma: no cover
    """Statistics of non-overlapping windows of ``w`` points (trailing partial window dropped)."""
    k = x.size // w
    if k == 0:
        for c in range(7, 16):
            out[c] = _NAN
        return
    means = np.empty(k)
    stds = np.empty(k)
    min_min = x[0]
    max_max = x[0]
    range_sum = 0.0
    for j in range(k):
        lo, hi, means[j], stds[j] = _summary(x[j * w : (j + 1) * w])
        min_min = min(min_min, lo)
        max_max = max(max_max, hi)
        range_sum += hi - lo
    lo, hi, _, out[7] = _summary(means)
    out[8] = hi - lo
    _, out[11], out[9], out[10] = _summary(stds)
    out[12] = min_min
    out[13] = max_max
    out[14] = range_sum / k
    if k < 2:
        out[15] = _NAN
        return
    limit = thr * out[9]
    changes = 0
    for j in range(k - 1):
        changes += abs(means[j + 1] - means[j]) > limit
    out[15] = changes


@numba.njit(error_model="numpy", cache=True, fastmath=_FAST)
def _diff_features(x: F64, out: F64) -> None:  # pragma: no cover
    """Trend slope, volatility (std of differences), mean absolute change and CID (cid_ce)."""
    n = x.size
    if n < 2:
        out[16] = _NAN
        out[17] = _NAN
        out[18] = _NAN
        out[19] = 0.0
        return
    ibar = (n - 1) / 2.0
    sxy = 0.0
    for i in range(n):
        sxy += (i - ibar) * x[i]
    sxx = n * (n * n - 1.0) / 12.0  # sum of (i - ibar)^2
    out[16] = sxy / sxx
    dmean = (x[n - 1] - x[0]) / (n - 1)
    sabs = 0.0
    ssq = 0.0
    sdev = 0.0
    head = x[: n - 1]
    tail = x[1:]
    for i in range(n - 1):
        d = tail[i] - head[i]
        sabs += abs(d)
        ssq += d * d
        sdev += (d - dmean) ** 2
    out[17] = math.sqrt(sdev / (n - 1))
    out[18] = sabs / (n - 1)
    out[19] = math.sqrt(ssq)


@numba.njit(error_model="numpy", cache=True)
def _sample_entropy(x: F64, m: int, r: float) -> float:  # pragma: no cover
    """tsfresh's sample entropy; NaN when no template pair matches (A or B is 0).

    Templates are sorted by their first value, so each is compared only with
    the run of later templates within ``r`` in that coordinate (about 11% of
    all pairs for Gaussian data with r = 0.2 std). The other coordinates are
    gathered into contiguous rows in sorted order, so the inner loop vectorises.
    """
    n = x.size
    nb = n - m + 1  # templates of length m; those of length m + 1 are the first nb - 1
    if nb < 2:
        return _NAN
    if x.min() == x.max():  # constant: every pair matches
        a = (nb - 1) * (nb - 2) // 2
        b = nb * (nb - 1) // 2
    else:
        order = np.argsort(x[:nb], kind="quicksort")
        coords = np.empty((m + 1, nb))  # row c: coordinate c of the templates, sorted
        for p in range(nb):
            i = order[p]
            for c in range(m):
                coords[c, p] = x[i + c]
            coords[m, p] = x[i + m] if i < nb - 1 else np.inf  # no (m + 1)-template
        first = coords[0]
        dist = np.empty(nb)  # Chebyshev distance over coordinates 1 .. m-1
        a = 0
        b = 0
        end = 1
        for p in range(nb - 1):
            end = max(end, p + 1)
            while end < nb and first[end] - first[p] <= r:
                end += 1
            cnt = end - p - 1
            if cnt == 0:
                continue
            lastrow = coords[m, p + 1 : end]
            lp = coords[m, p]
            bb = 0
            aa = 0
            if m == 2:  # the default, fused
                row1 = coords[1, p + 1 : end]
                c1 = coords[1, p]
                for q in range(cnt):
                    d = abs(row1[q] - c1)
                    bb += 1 if d <= r else 0
                    aa += 1 if max(d, abs(lastrow[q] - lp)) <= r else 0
                a += aa
                b += bb
                continue
            dd = dist[:cnt]
            dd[:] = 0.0
            for c in range(1, m):
                row = coords[c, p + 1 : end]
                cp = coords[c, p]
                for q in range(cnt):
                    dd[q] = max(dd[q], abs(row[q] - cp))
            for q in range(cnt):
                bb += 1 if dd[q] <= r else 0
                aa += 1 if max(dd[q], abs(lastrow[q] - lp)) <= r else 0
            a += aa
            b += bb
    if a == 0 or b == 0:
        return _NAN
    return -math.log(a / b)


@numba.njit(error_model="numpy", cache=True)
def _permutation_entropy(x: F64, order: int, delay: int) -> float:  # pragma: no cover
    """Shannon entropy (natural log, not normalised) of ordinal patterns; ties ranked by position.

    A pattern's code is its Lehmer code: for each position k, the number of
    later positions with a smaller value, weighted by (order - 1 - k)!.
    """
    npat = x.size - (order - 1) * delay
    if npat <= 0:
        return _NAN
    fact = np.ones(order, dtype=np.int64)
    for k in range(order - 2, -1, -1):
        fact[k] = fact[k + 1] * (order - 1 - k)
    codes = np.zeros(npat, dtype=np.int64)
    for k in range(order - 1):
        fk = fact[k]
        xk = x[k * delay : k * delay + npat]
        for j in range(k + 1, order):
            xj = x[j * delay : j * delay + npat]
            for i in range(npat):
                codes[i] += fk if xj[i] < xk[i] else 0
    counts = np.zeros(fact[0] * order, dtype=np.int64)
    for i in range(npat):
        counts[codes[i]] += 1
    h = 0.0
    for c in counts:
        if c > 0:
            p = c / npat
            h -= p * math.log(p)
    return h


@numba.njit(error_model="numpy", cache=True)
def _number_peaks(x: F64, support: int) -> float:  # pragma: no cover
    """tsfresh's number_peaks: values larger than their ``support`` neighbours on each side."""
    m = x.size - 2 * support
    if m <= 0:
        return 0.0
    mid = x[support : support + m]
    peak = np.ones(m, dtype=np.bool_)
    for k in range(1, support + 1):
        left = x[support - k : support - k + m]
        right = x[support + k : support + k + m]
        for i in range(m):
            peak[i] &= (mid[i] > left[i]) & (mid[i] > right[i])
    count = 0
    for i in range(m):
        count += 1 if peak[i] else 0
    return float(count)


@numba.njit(error_model="numpy", cache=True, fastmath=_FAST)
def _acf(x: F64, mean: float, lags: I64, out: F64) -> None:  # pragma: no cover
    """Autocorrelation at each lag as statsmodels' ``acf`` (adjusted=False); NaN if undefined."""
    n = x.size
    xc = np.empty(n)
    for t in range(n):
        xc[t] = x[t] - mean
    c0 = _dot(xc, xc)
    for li in range(lags.size):
        lag = lags[li]
        if lag >= n or c0 == 0.0:
            out[li] = _NAN
        else:
            out[li] = _dot(xc[: n - lag], xc[lag:]) / c0


@numba.njit(error_model="numpy", cache=True, fastmath=_FAST)
def _dot(a: F64, b: F64) -> float:  # pragma: no cover
    """``a @ b`` for equal-length 1-D arrays, vectorised."""
    s = 0.0
    for r in range(a.size):
        s += a[r] * b[r]
    return s


@numba.njit(error_model="numpy", cache=True, fastmath=_FAST)
def _sum(a: F64) -> float:  # pragma: no cover
    """``a.sum()``, vectorised."""
    s = 0.0
    for r in range(a.size):
        s += a[r]
    return s


@numba.njit(error_model="numpy", cache=True, fastmath=_FAST)
def _adf_stat(x: F64, lags: int, constant: bool) -> float:  # pragma: no cover
    """ADF t-statistic, regression 'c', fixed ``lags``, as statsmodels' adfuller(autolag=None).

    Regress dx[t] on (x[t], dx[t-1], ..., dx[t-lags], 1) for t = lags .. n-2.
    The intercept is removed by centring (Frisch-Waugh-Lovell); the centred
    cross products come from dot products of shifted slices (values shifted
    near their mean first, so nothing cancels), are scaled to unit diagonal and
    solved by Cholesky.
    """
    n = x.size
    if constant or lags > n // 2 - 2:
        return _NAN
    nobs = n - 1 - lags
    p = lags + 1  # regressors: level, then lags 1..lags; variable p is the response
    dof = nobs - p - 1
    if dof <= 0:
        return _NAN
    xs = _sum(x[lags : n - 1]) / nobs
    dshift = (x[n - 1] - x[0]) / (n - 1)
    lev = x[lags : n - 1] - xs
    dif = x[1:] - x[: n - 1] - dshift
    # variable v >= 1 is dif[start[v] : start[v] + nobs]; lag v for v <= lags, lag 0 (y) for v = p
    start = np.empty(p + 1, dtype=np.int64)
    for v in range(1, p):
        start[v] = lags - v
    start[p] = lags
    sums = np.empty(p + 1)
    sums[0] = _sum(lev)
    for v in range(1, p + 1):
        sums[v] = _sum(dif[start[v] : start[v] + nobs])
    cross = np.empty((p + 1, p + 1))
    cross[0, 0] = _dot(lev, lev)
    for i in range(1, p + 1):
        di = dif[start[i] : start[i] + nobs]
        cross[i, 0] = _dot(di, lev)
        for j in range(1, i + 1):
            cross[i, j] = _dot(di, dif[start[j] : start[j] + nobs])
    for i in range(p + 1):
        for j in range(i + 1):
            cross[i, j] -= sums[i] * sums[j] / nobs
    scale = np.empty(p)
    for i in range(p):
        if cross[i, i] <= 0.0:
            return _NAN
        scale[i] = math.sqrt(cross[i, i])
    chol = np.zeros((p, p))
    for i in range(p):
        for j in range(i + 1):
            s = cross[i, j] / (scale[i] * scale[j])
            for k in range(j):
                s -= chol[i, k] * chol[j, k]
            if i == j:
                if s <= 1e-12:  # (near-)collinear regressors: the statistic is undefined
                    return _NAN
                chol[i, i] = math.sqrt(s)
            else:
                chol[i, j] = s / chol[j, j]
    z = np.empty(p)  # forward: L z = X'y (scaled)
    u = np.zeros(p)  # forward: L u = e0, so (X'X)^-1[0, 0] = |u|^2 (scaled)
    u[0] = 1.0
    for i in range(p):
        s = cross[p, i] / scale[i]
        w = u[i]
        for k in range(i):
            s -= chol[i, k] * z[k]
            w -= chol[i, k] * u[k]
        z[i] = s / chol[i, i]
        u[i] = w / chol[i, i]
    beta = np.empty(p)  # backward: L^T beta = z
    for i in range(p - 1, -1, -1):
        s = z[i]
        for k in range(i + 1, p):
            s -= chol[k, i] * beta[k]
        beta[i] = s / chol[i, i]
    rss = cross[p, p]
    inv00 = 0.0
    for i in range(p):
        rss -= z[i] * z[i]  # y'X (X'X)^-1 X'y = |z|^2
        inv00 += u[i] * u[i]
    if rss <= 1e-10 * cross[p, p]:  # (near-)perfect fit: the statistic is rounding noise
        return _NAN
    # the column scaling cancels: t = beta0 / se0 in scaled and raw units alike
    return float(beta[0] / math.sqrt(rss / dof * inv00))


@numba.njit(error_model="numpy", cache=True, parallel=True)
def fingerprint_kernel(
    values: F64,
    offsets: I64,
    window: int,
    level_threshold: float,
    lags: I64,
    sampen_m: int,
    sampen_r: float,
    do_sampen: bool,
    pe_order: int,
    pe_delay: int,
    peaks_support: int,
    adf_lags: int,
) -> F64:  # pragma: no cover
    """Fill one row of :data:`KERNEL_COLUMNS` (+ one acf column per lag) per device."""
    ndev = offsets.size - 1
    out = np.full((ndev, _NBASE + lags.size), np.nan)
    for d in numba.prange(ndev):
        x = values[offsets[d] : offsets[d + 1]]
        if x.size == 0:
            continue
        row = out[d]
        _moments(x, row)
        constant = row[2] == row[3]
        _windows(x, window, level_threshold, row)
        _diff_features(x, row)
        if do_sampen:
            row[20] = _sample_entropy(x, sampen_m, sampen_r * row[1])
        row[21] = _permutation_entropy(x, pe_order, pe_delay)
        row[22] = _number_peaks(x, peaks_support)
        row[23] = _adf_stat(x, adf_lags, constant)
        _acf(x, row[0], lags, row[_NBASE:])
    return out


@numba.njit(error_model="numpy", cache=True, parallel=True, fastmath=_FAST)
def spectral_kernel(
    spec: npt.NDArray[np.complex128], n: int
) -> tuple[F64, F64]:  # pragma: no cover
    """Spectral centroid and normalised entropy of each row of ``rfft`` output for length ``n``.

    Power at the positive frequencies k / n (k = 1 .. n // 2), one-sided as in
    scipy's periodogram: every bin doubled but the Nyquist one of an even n,
    applied here as halving the Nyquist bin (both features are ratios).
    """
    rows = spec.shape[0]
    nbins = n // 2
    centroid = np.empty(rows)
    entropy = np.full(rows, np.nan)
    for d in numba.prange(rows):
        power = np.empty(nbins)
        for k in range(nbins):
            c = spec[d, k + 1]
            power[k] = c.real * c.real + c.imag * c.imag
        if n % 2 == 0:
            power[nbins - 1] *= 0.5
        total = 0.0
        moment = 0.0
        for k in range(nbins):
            total += power[k]
            moment += power[k] * (k + 1)
        if total == 0.0:  # a spectrum below floating point (subnormal values): none
            centroid[d] = _NAN
            entropy[d] = _NAN
            continue
        centroid[d] = moment / total / n
        if nbins >= 2:
            h = 0.0
            for k in range(nbins):
                q = power[k] / total
                if q > 0.0:
                    h -= q * math.log(q)
            entropy[d] = h / math.log(nbins)
    return centroid, entropy


#: :func:`spectral_kernel` on one thread: the same loop body, without the thread launch
spectral_kernel_serial = numba.njit(cache=True, fastmath=_FAST)(spectral_kernel.py_func)


@numba.njit(error_model="numpy", cache=True)
def segment_cut(stamps: I64, offsets: I64, t: int) -> I64:  # pragma: no cover
    """Per segment ``d`` of ``stamps`` (sorted within it), the index of its first stamp > ``t``."""
    ndev = offsets.size - 1
    out = np.empty(ndev, dtype=np.int64)
    for d in range(ndev):
        lo, hi = offsets[d], offsets[d + 1]
        out[d] = lo + np.searchsorted(stamps[lo:hi], t, side="right")
    return out
