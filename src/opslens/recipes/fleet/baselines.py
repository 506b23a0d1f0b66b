"""The fleet recipe's baselines: what a practitioner would rank devices by before any model.

``own_history``   per device and metric, the median of the recent window (the last
                  ``recent`` of the device's own readings) against its own earlier median,
                  in robust units (the earlier readings' MAD); where a peer group column
                  exists (``columns.group``), also the device's daily median minus its
                  group's same-day median, recent against earlier, in the same units.
                  Score: the largest |z| over metrics (and both comparisons).
``max_robust_z``  robust z of each device's metric means across the fleet
                  ((mean − median of means) / MAD of means); score: the largest |z|.

:func:`score_against_failures` scores the model's ranking and each baseline's on the
same devices against the known failures: AUROC (gating) with a paired bootstrap
interval of the AUROC difference (devices resampled) and a paired permutation p (each
device's two rank percentiles swapped at random), and recall of the failed devices in the
top k (k = the number of failures; not gating; sign-flip permutation p).

Example:
    >>> from datetime import datetime, timedelta
    >>> t = [datetime(2024, 1, 1) + timedelta(days=d) for d in range(20)]
    >>> v = [1.0, 2.0, 3.0, 4.0] * 5
    >>> readings = pl.DataFrame({"d": ["a"] * 20 + ["b"] * 20, "t": t + t,
    ...     "v": v + v[:15] + [9.0] * 5})
    >>> own_history_scores(readings, entity="d", time="t", metrics=["v"],
    ...     recent=timedelta(days=5))["score"].round(2).to_list()
    [0.67, 4.72]
    >>> max_robust_z_scores(readings, entity="d", metrics=["v"])["score"].round(2).to_list()
    [0.67, 0.67]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from functools import partial
from typing import Any

import numpy as np
import polars as pl
from scipy.stats import rankdata

from opslens.core.baselines import Baseline, BaselineScore
from opslens.core.engine import Engine, LocalEngine
from opslens.models.compare import paired_interval, paired_p_value

__all__ = [
    "BASELINES",
    "auroc",
    "fleet_baselines",
    "max_robust_z_scores",
    "own_history_scores",
    "score_against_failures",
    "unscored_reason",
]

BASELINES = (
    Baseline(
        "own_history",
        "a per-device rule on its own history",
        "the recent window's median of each metric against the device's own earlier median "
        "(and, with columns.group, against its peer group's same-day median), in MADs; "
        "the largest over metrics",
    ),
    Baseline(
        "max_robust_z",
        "the largest robust z of metric means",
        "each device's metric means as robust z across the fleet (median and MAD); "
        "the largest |z| over metrics",
    ),
)
_MAD = 1.4826  # MAD → standard deviation of a normal
_CHUNK = 1_000_000  # rows of whole devices per chunk of the per-device aggregations
_SCORE = "score"


def _robust_z(value: pl.Expr, centre: pl.Expr, mad: pl.Expr) -> pl.Expr:
    """(value − centre) / (1.4826·MAD); 0 when both differences vanish, ±inf on a zero MAD."""
    diff = value - centre
    scale = _MAD * mad
    return (
        pl.when(scale > 0)
        .then(diff / scale)
        .when(diff == 0)
        .then(0.0)
        .otherwise(diff.sign() * float("inf"))
    )


def _history_z(
    frame: pl.DataFrame, *, entity: str, time: str, values: Sequence[str], recent: timedelta
) -> pl.DataFrame:
    """Per entity, |robust z| of each value's recent median against its earlier readings."""
    is_recent = pl.col(time) > pl.col(time).max().over(entity) - recent
    flagged = frame.with_columns(is_recent.alias("_recent"))
    aggs = []
    for v in values:
        before = pl.col(v).filter(~pl.col("_recent")).drop_nans()
        now = pl.col(v).filter(pl.col("_recent")).drop_nans()
        mad = (before - before.median()).abs().median()
        aggs.append(_robust_z(now.median(), before.median(), mad).abs().alias(v))
    return flagged.group_by(entity).agg(aggs)


def _daily_medians(
    readings: pl.DataFrame, *, entity: str, time: str, metrics: Sequence[str], group: str
) -> pl.DataFrame:
    """Daily median of each metric per device (and its group)."""
    day = pl.col(time).dt.truncate("1d").alias(time)
    return readings.group_by(entity, group, day).agg(
        pl.col(m).fill_nan(None).median() for m in metrics
    )


def _peer_residuals(
    daily: pl.DataFrame, *, entity: str, time: str, metrics: Sequence[str], group: str
) -> pl.DataFrame:
    """Daily medians (:func:`_daily_medians`) minus the group's same-day median of those."""
    return daily.sort(entity, time).with_columns(
        pl.col(m) - pl.col(m).median().over(group, time) for m in metrics
    )


def _sorted_first(
    part: pl.DataFrame, *, func: Callable[[pl.DataFrame], pl.DataFrame], by: list[str]
) -> pl.DataFrame:
    return func(part.sort(by))


def _chunked(
    frame: Any,
    entity: str,
    func: Callable[[pl.DataFrame], pl.DataFrame],
    rows_per_chunk: int | None,
    engine: Engine | None = None,
    time: str | None = None,
) -> pl.DataFrame:
    """``func`` on ``rows_per_chunk`` rows of whole devices at a time, concatenated; on a
    distributed ``engine`` run there on whole devices (rows sorted by device and ``time``, as
    the local readings are), the answers here."""
    if engine is not None and engine.distributed:
        order = [entity] if time is None else [entity, time]
        out: pl.DataFrame = engine.per_group(
            frame, entity, partial(_sorted_first, func=func, by=order)
        )
        return out
    if rows_per_chunk is None:
        return func(frame)
    return LocalEngine(rows_per_slice=rows_per_chunk).per_group(frame, entity, func)


def own_history_scores(
    readings: pl.DataFrame,
    *,
    entity: str,
    time: str,
    metrics: Sequence[str],
    recent: timedelta = timedelta(days=7),
    group: str | None = None,
    rows_per_chunk: int | None = _CHUNK,
    engine: Engine | None = None,
) -> pl.DataFrame:
    """Each device's largest |robust z| of its recent window against its own earlier history.

    The window is the last ``recent`` before the device's own last reading. With
    ``group`` (a column of ``readings``), the device's daily medians minus its group's
    same-day medians are judged the same way, and the larger z counts. A device without
    an earlier period scores null. Columns: ``entity``, ``score``, sorted by ``entity``.
    The per-device work runs ``rows_per_chunk`` rows of whole devices at a time (``None``:
    all at once); the scores are the same.

    Example:
        >>> from datetime import datetime
        >>> r = pl.DataFrame({"d": ["a", "a", "a", "b", "b", "b"], "v": [1.0, 2, 3, 1, 2, 30],
        ...     "t": [datetime(2024, 1, i) for i in (1, 2, 3)] * 2})
        >>> own_history_scores(r, entity="d", time="t", metrics=["v"], recent=timedelta(days=1))["score"].to_list()
        [2.023..., 38.44...]
    """
    daily: list[pl.DataFrame] = []

    def per_device(part: pl.DataFrame) -> pl.DataFrame:
        if group is not None:
            daily.append(
                _daily_medians(part, entity=entity, time=time, metrics=metrics, group=group)
            )
        return _history_z(part, entity=entity, time=time, values=metrics, recent=recent)

    if engine is not None and engine.distributed:  # pure functions: they run elsewhere
        shape: dict[str, Any] = {"entity": entity, "time": time, "metrics": metrics}
        history = partial(_history_z, entity=entity, time=time, values=metrics, recent=recent)
        parts = [_chunked(readings, entity, history, None, engine, time)]
        if group is not None:
            medians = partial(_daily_medians, **shape, group=group)
            daily.append(_chunked(readings, entity, medians, None, engine, time))
    else:
        parts = [_chunked(readings, entity, per_device, rows_per_chunk)]
    if group is not None:
        peers = _peer_residuals(
            pl.concat(daily), entity=entity, time=time, metrics=metrics, group=group
        )
        parts.append(_history_z(peers, entity=entity, time=time, values=metrics, recent=recent))
    zs = pl.concat(parts).with_columns(pl.col(m).fill_nan(None) for m in metrics)
    return zs.group_by(entity).agg(pl.max_horizontal(metrics).max().alias(_SCORE)).sort(entity)


def max_robust_z_scores(
    readings: pl.DataFrame,
    *,
    entity: str,
    metrics: Sequence[str],
    rows_per_chunk: int | None = _CHUNK,
    engine: Engine | None = None,
    time: str | None = None,
) -> pl.DataFrame:
    """Each device's largest |robust z| of its metric means across the fleet.

    Columns: ``entity``, ``score``, sorted by ``entity``. The means are taken
    ``rows_per_chunk`` rows of whole devices at a time (``None``: all at once).

    Example:
        >>> r = pl.DataFrame({"d": list("abcde"), "v": [1.0, 2.0, 3.0, 4.0, 40.0]})
        >>> max_robust_z_scores(r, entity="d", metrics=["v"])["score"].round(2).to_list()
        [1.35, 0.67, 0.0, 0.67, 24.96]
    """

    def per_device(part: pl.DataFrame) -> pl.DataFrame:
        return part.group_by(entity).agg(pl.col(m).fill_nan(None).mean() for m in metrics)

    means = _chunked(readings, entity, per_device, rows_per_chunk, engine, time)
    z = [
        _robust_z(pl.col(m), pl.col(m).median(), (pl.col(m) - pl.col(m).median()).abs().median())
        .abs()
        .fill_nan(None)
        for m in metrics
    ]
    return means.select(entity, pl.max_horizontal(z).alias(_SCORE)).sort(entity)


def auroc(y: np.ndarray, s: np.ndarray) -> np.ndarray:
    """AUROC of scores ``s`` (last axis: devices; ties count half) for labels ``y`` of the same
    shape; nan where a row has no positive or no negative.

    Example:
        >>> float(auroc(np.array([1, 0, 0, 1]), np.array([0.9, 0.1, 0.5, 0.5])))
        0.875
    """
    y = np.asarray(y, dtype=bool)
    ranks = rankdata(np.asarray(s, dtype=float), axis=-1)
    n1 = y.sum(axis=-1)
    n0 = y.shape[-1] - n1
    with np.errstate(invalid="ignore", divide="ignore"):
        out: np.ndarray = (np.where(y, ranks, 0.0).sum(axis=-1) - n1 * (n1 + 1) / 2) / (n1 * n0)
    return out


def _codes(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Each value's position among the distinct values (same order, same ties) and their count."""
    distinct, inverse = np.unique(values, return_inverse=True)
    return inverse.reshape(values.shape).astype(np.int64), int(distinct.size)


def _auroc_of_codes(y: np.ndarray, codes: np.ndarray, n_codes: int) -> np.ndarray:
    """:func:`auroc` of scores given as order codes (:func:`_codes`), row by row, by counting.

    The average ranks are the ones :func:`~scipy.stats.rankdata` gives the scores (ties
    share the mean of their places), so the AUROC is the same float, without a sort per
    row: a count of each code per row (one ``bincount``) and its running sum.
    """
    m, n = codes.shape
    flat = codes + (np.arange(m, dtype=np.int64) * n_codes)[:, None]
    counts = np.bincount(flat.ravel(), minlength=m * n_codes).reshape(m, n_codes)
    below = np.cumsum(counts, axis=1) - counts  # values under each code, per row
    ranks = (
        np.take_along_axis(below, codes, axis=1)
        + (np.take_along_axis(counts, codes, axis=1) + 1) / 2
    )
    n1 = y.sum(axis=-1)
    n0 = n - n1
    with np.errstate(invalid="ignore", divide="ignore"):
        out: np.ndarray = (np.where(y, ranks, 0.0).sum(axis=-1) - n1 * (n1 + 1) / 2) / (n1 * n0)
    return out


def _auroc_interval(
    y: np.ndarray, model: np.ndarray, base: np.ndarray, *, n_boot: int, random_state: int
) -> tuple[float, float]:
    """95% bootstrap interval of AUROC(model) − AUROC(base), devices resampled (paired);
    resamples drawn in chunks so a large fleet never holds all of them at once. A resample
    ranks the devices' order codes by counting (:func:`_auroc_of_codes`: the same AUROC
    as ranking the resampled scores)."""
    rng = np.random.default_rng(random_state)
    chunk = max(1, min(n_boot, 2_000_000 // max(1, y.size)))
    model_codes, n_model = _codes(model)
    base_codes, n_base = _codes(base)
    parts = []
    for lo_ in range(0, n_boot, chunk):
        idx = rng.integers(0, y.size, size=(min(chunk, n_boot - lo_), y.size))
        parts.append(
            _auroc_of_codes(y[idx], model_codes[idx], n_model)
            - _auroc_of_codes(y[idx], base_codes[idx], n_base)
        )
    diff = np.concatenate(parts)
    lo, hi = np.nanquantile(diff, [0.025, 0.975])
    return float(lo), float(hi)


def _auroc_p_value(
    y: np.ndarray, model: np.ndarray, base: np.ndarray, *, n_perm: int, random_state: int
) -> float:
    """Two-sided paired permutation p of AUROC(model) − AUROC(base): each device's two rank
    percentiles swapped at random (the null: the two rankings are exchangeable)."""
    a = rankdata(model) / model.size
    b = rankdata(base) / base.size
    observed = abs(float(auroc(y, a) - auroc(y, b)))
    codes, n_codes = _codes(np.concatenate([a, b]))  # one order over both percentiles
    ca, cb = codes[: a.size], codes[a.size :]
    rng = np.random.default_rng(random_state)
    chunk = max(1, min(n_perm, 2_000_000 // max(1, y.size)))
    hits = 0
    done = 0
    while done < n_perm:
        m = min(chunk, n_perm - done)
        swap = rng.random((m, y.size)) < 0.5
        pa, pb = np.where(swap, cb, ca), np.where(swap, ca, cb)
        ys = np.broadcast_to(y, pa.shape)
        diff = np.abs(_auroc_of_codes(ys, pa, n_codes) - _auroc_of_codes(ys, pb, n_codes))
        hits += int(np.sum(diff >= observed - 1e-12))
        done += m
    return (1 + hits) / (n_perm + 1)


def score_against_failures(
    model: pl.DataFrame,
    baselines: Mapping[str, pl.DataFrame],
    failed: set[str],
    *,
    entity: str,
    n_boot: int = 1000,
    random_state: int = 0,
) -> list[BaselineScore]:
    """Model and baselines ranked against the known failures on the same devices.

    ``model`` and each baseline are (``entity``, ``score``) frames, higher = more
    suspicious; devices missing a score rank last. Per baseline: AUROC (gating, with a
    paired bootstrap interval of model − baseline) and recall of the failed devices in
    the top k, k = the number of failed devices (not gating; interval over failed devices).

    Example:
        >>> ids = [f"d{i}" for i in range(10)]
        >>> m = pl.DataFrame({"id": ids, "score": [9.0, 8, 7, 1, 2, 3, 4, 5, 6, 0]})
        >>> b = pl.DataFrame({"id": ids, "score": [0.0, 1, 2, 3, 4, 5, 6, 7, 8, 9]})
        >>> out = score_against_failures(m, {"max_robust_z": b}, {"d0", "d1", "d2"}, entity="id")
        >>> [(s.metric, s.model, s.value) for s in out]
        [('auroc', 1.0, 0.0), ('recall_at_k', 1.0, 0.0)]
    """
    labels = {b.name: b.label for b in BASELINES}
    frame = model.select(entity, pl.col(_SCORE).alias("_model"))
    for name, scores in baselines.items():
        frame = frame.join(scores.select(entity, pl.col(_SCORE).alias(name)), on=entity, how="left")
    frame = frame.sort(entity)
    y = frame[entity].is_in(sorted(failed)).to_numpy()
    k = int(y.sum())

    def column(name: str) -> np.ndarray:
        return frame[name].cast(pl.Float64).fill_nan(None).fill_null(-np.inf).to_numpy()

    def hits(s: np.ndarray) -> np.ndarray:
        top = np.argsort(-s, kind="stable")[:k]  # ties broken by device id
        return np.isin(np.flatnonzero(y), top).astype(float)

    m = column("_model")
    out: list[BaselineScore] = []
    for name in baselines:
        b = column(name)
        hm, hb = hits(m), hits(b)
        _, recall_interval = paired_interval(hm, hb, n_boot=n_boot, random_state=random_state)
        tests = {
            "auroc": _auroc_p_value(y, m, b, n_perm=n_boot, random_state=random_state),
            "recall_at_k": paired_p_value(hm, hb, n_perm=n_boot, random_state=random_state),
        }
        for metric, label, pair, interval, gate in (
            (
                "auroc",
                "AUROC against known failures",
                (auroc(y, m), auroc(y, b)),
                _auroc_interval(y, m, b, n_boot=n_boot, random_state=random_state),
                True,
            ),
            (
                "recall_at_k",
                f"recall of the failed devices in the top {k}",
                (hm.mean(), hb.mean()),
                recall_interval,
                False,
            ),
        ):
            out.append(
                BaselineScore(
                    baseline=name,
                    label=labels.get(name, name),
                    metric=metric,
                    metric_label=label,
                    model=float(pair[0]),
                    value=float(pair[1]),
                    higher_is_better=True,
                    n=y.size,
                    unit=f"devices, {k} failed",
                    interval=interval,
                    p_value=tests[metric],
                    gate=gate,
                )
            )
    return out


def unscored_reason(n_failed: int, n_devices: int) -> str:
    """Why the baselines were not scored: no known failure, or nothing but failures.

    Example:
        >>> unscored_reason(0, 10)
        'the baselines (a per-device rule on its own history; the largest robust z of metric means) were not scored: no known failure among the 10 devices to rank them against (params.failures.ids or params.failures.path)'
    """
    names = "; ".join(b.label for b in BASELINES)
    why = (
        f"no known failure among the {n_devices} devices to rank them against "
        "(params.failures.ids or params.failures.path)"
        if n_failed == 0
        else f"all {n_devices} devices failed, so there is nothing to separate"
    )
    return f"the baselines ({names}) were not scored: {why}"


def fleet_baselines(
    readings: pl.DataFrame,
    model: pl.DataFrame,
    failed: set[str],
    *,
    entity: str,
    time: str,
    metrics: Sequence[str],
    group: str | None = None,
    recent: timedelta = timedelta(days=7),
    n_boot: int = 1000,
    random_state: int = 0,
    engine: Engine | None = None,
) -> list[BaselineScore]:
    """Both baselines built from ``readings`` and scored beside ``model`` (entity, score);
    empty when ``failed`` holds none or all of the model's devices (nothing to rank against).

    Example:
        >>> fleet_baselines(pl.DataFrame(), pl.DataFrame({"d": ["a"], "score": [1.0]}), set(),
        ...     entity="d", time="t", metrics=["v"])
        []
    """
    n_failed = int(model[entity].is_in(sorted(failed)).sum())
    if n_failed in (0, model.height):
        return []
    scores = {
        "own_history": own_history_scores(
            readings,
            entity=entity,
            time=time,
            metrics=metrics,
            recent=recent,
            group=group,
            engine=engine,
        ),
        "max_robust_z": max_robust_z_scores(
            readings, entity=entity, metrics=metrics, engine=engine, time=time
        ),
    }
    return score_against_failures(
        model, scores, failed, entity=entity, n_boot=n_boot, random_state=random_state
    )
