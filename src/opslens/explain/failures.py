"""Known failures: do the groups and the rare-device ranking point at devices that failed?

* :func:`validate_failed_ids`: ids in the failure list that are not in the data
  are warned about (:class:`~opslens.errors.OpslensWarning`) and set aside.
* :func:`group_enrichment`: per group, failure rate, lift over the fleet rate
  and a one-sided Fisher exact test (is the group *richer* in failures?).
  ``enriched`` means ``p < 0.01`` and ``lift > 1``.
* :func:`ranking_quality`: precision@k, recall@k and AUROC of a score against
  failure, and a plain verdict. Thresholds, with ``k = min(10, n)``:
  *useful* when AUROC ≥ 0.7 **and** precision@k ≥ 2× the base rate;
  *weak* when only one of the two holds (or AUROC ≥ 0.6);
  otherwise *not useful*. With no failed (or no healthy) device it cannot judge.
* :func:`lead_times`: score rolling windows up to each failure date; how long
  before its failure did each failed device first enter the top-k, and how many
  healthy devices were in the top-k then. "Healthy" means never in the failure
  list: a device that fails later is a true early warning, not a false alarm.

Example:
    >>> g = group_enrichment([0, 0, 0, 1, 1, 1], ["a", "b", "c", "d", "e", "f"], {"a", "b"})
    >>> g.select("group", "n_failed", "lift").rows()
    [(0, 2, 2.0), (1, 0, 0.0)]
"""

from __future__ import annotations

import math
import statistics
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
from scipy.stats import fisher_exact
from sklearn.metrics import roc_auc_score

from opslens.errors import DataError, OpslensWarning

__all__ = [
    "RankingQuality",
    "group_enrichment",
    "lead_time_summary",
    "lead_times",
    "ranking_quality",
    "validate_failed_ids",
]


def validate_failed_ids(
    entities: Iterable[str], failed: Iterable[str]
) -> tuple[set[str], list[str]]:
    """Split the failure list into ids present in the data and unknown ids (warned, not fatal).

    Example:
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     known, unknown = validate_failed_ids(["a", "b"], ["a", "zz"])
        >>> sorted(known), unknown, len(caught)
        (['a'], ['zz'], 1)
    """
    present = {str(e) for e in entities}
    wanted = {str(f) for f in failed}
    known = wanted & present
    unknown = sorted(wanted - present)
    if unknown:
        shown = ", ".join(f"'{u}'" for u in unknown[:5]) + (" …" if len(unknown) > 5 else "")
        warnings.warn(
            f"{len(unknown)} of {len(wanted)} failed-device ids are not in the data and are "
            f"ignored: {shown}; check the failure list against the device column",
            OpslensWarning,
            stacklevel=2,
        )
    return known, unknown


def group_enrichment(
    labels: Sequence[int] | np.ndarray, entities: Sequence[str], failed: set[str]
) -> pl.DataFrame:
    """Per group: devices, failures, failure rate, lift, odds ratio, one-sided Fisher p, enriched.

    Ids in ``failed`` that are not among ``entities`` are ignored (run
    :func:`validate_failed_ids` first to warn about them). Noise (-1) is a row too.

    Example:
        >>> g = group_enrichment([0] * 20 + [1] * 100, [str(i) for i in range(120)],
        ...                      {str(i) for i in range(8)} | {"20", "21"})
        >>> g.filter(pl.col("group") == 0).select("n_failed", "lift", "enriched").row(0)
        (8, 4.8, True)
    """
    lab = np.asarray(labels).astype(np.int64)
    if lab.size != len(entities):
        raise DataError(
            f"{lab.size} group labels for {len(entities)} devices",
            fix="pass one group label per device, in the same order",
        )
    frame = pl.DataFrame({"group": lab, "entity": [str(e) for e in entities]}).with_columns(
        pl.col("entity").is_in(sorted(failed)).alias("failed")
    )
    n, n_fail = frame.height, int(frame["failed"].sum())
    per = (
        frame.group_by("group")
        .agg(
            pl.len().cast(pl.Int64).alias("n_devices"),
            pl.col("failed").sum().cast(pl.Int64).alias("n_failed"),
        )
        .sort("group")
    )
    odds, pvals = [], []
    for n_g, a in per.select("n_devices", "n_failed").iter_rows():  # one test per group
        table = [[a, n_g - a], [n_fail - a, (n - n_g) - (n_fail - a)]]
        res = fisher_exact(table, alternative="greater")
        odds.append(float(res.statistic))
        pvals.append(float(res.pvalue))
    return (
        per.with_columns(
            (pl.col("n_failed") / pl.col("n_devices")).alias("failure_rate"),
        )
        .with_columns(
            (
                (pl.col("n_failed") * n) / (pl.col("n_devices") * n_fail)
                if n_fail
                else pl.lit(math.nan)
            ).alias("lift"),
            pl.Series("odds_ratio", odds, dtype=pl.Float64),
            pl.Series("p_value", pvals, dtype=pl.Float64),
        )
        .with_columns(
            ((pl.col("p_value") < 0.01) & (pl.col("lift") > 1)).fill_null(False).alias("enriched")
        )
    )


@dataclass(frozen=True)
class RankingQuality:
    """How well a score ranks known failures: precision/recall@k, AUROC and a verdict."""

    n_devices: int
    n_failed: int
    base_rate: float
    auroc: float
    precision_at: dict[int, float]
    recall_at: dict[int, float]
    hits_at: dict[int, int]
    verdict_k: int
    verdict_hits: int
    useful: bool
    verdict: str


def _pct(x: float) -> str:
    return f"{100 * x:.3g}%"


def ranking_quality(
    scores: pl.DataFrame,
    failed: set[str],
    *,
    ks: Sequence[int] = (5, 10, 20, 50),
    entity: str | None = None,
    score: str | None = None,
) -> RankingQuality:
    """Precision@k, recall@k and AUROC of ``score`` (higher = more suspicious) against failure.

    ``scores`` holds a device column and a score column (by default the first
    and second columns). Devices are ranked by score, ties by id; k larger than
    the fleet are skipped.

    Example:
        >>> s = pl.DataFrame({"id": list("abcdef"), "score": [6.0, 5.0, 4.0, 3.0, 2.0, 1.0]})
        >>> q = ranking_quality(s, {"a", "c"}, ks=(1, 2, 4))
        >>> q.precision_at, q.recall_at, q.auroc
        ({1: 1.0, 2: 0.5, 4: 0.5}, {1: 0.5, 2: 0.5, 4: 1.0}, 0.875)
    """
    ent = entity or scores.columns[0]
    sc = score or scores.columns[1]
    ranked = scores.select(pl.col(ent).cast(pl.String), pl.col(sc).cast(pl.Float64)).sort(
        [sc, ent], descending=[True, False], nulls_last=True
    )
    y = ranked[ent].is_in(sorted(failed)).to_numpy()
    s = ranked[sc].fill_null(-np.inf).to_numpy()
    n, n_fail = y.size, int(y.sum())
    base = n_fail / n if n else math.nan
    cum = np.cumsum(y)
    valid = [k for k in ks if 0 < k <= n]
    hits = {k: int(cum[k - 1]) for k in valid}
    precision = {k: hits[k] / k for k in valid}
    recall = {k: (hits[k] / n_fail if n_fail else math.nan) for k in valid}
    k_ref = min(10, n)
    ref_hits = int(cum[k_ref - 1]) if n else 0
    if n_fail == 0 or n_fail == n:
        auroc = math.nan
        verdict = (
            f"cannot judge the ranking as a risk indicator: {n_fail} of {n} devices failed, "
            "so there is nothing to separate"
        )
        return RankingQuality(
            n, n_fail, base, auroc, precision, recall, hits, k_ref, ref_hits, False, verdict
        )
    auroc = float(roc_auc_score(y, np.nan_to_num(s, nan=-np.inf, neginf=np.finfo(float).min)))
    lift_ok = ref_hits / k_ref >= 2 * base
    auc_ok = auroc >= 0.7
    useful = auc_ok and lift_ok
    label = (
        "useful risk indicator"
        if useful
        else "weak risk indicator"
        if (auc_ok or lift_ok or auroc >= 0.6)
        else "not a useful risk indicator"
    )
    verdict = (
        f"{label}: AUROC {auroc:.2f} and {ref_hits} of the top {k_ref} devices failed "
        f"(base rate {_pct(base)})"
    )
    return RankingQuality(
        n, n_fail, base, auroc, precision, recall, hits, k_ref, ref_hits, useful, verdict
    )


def lead_times(
    readings: pl.DataFrame,
    *,
    entity: str,
    time: str,
    failure_times: Mapping[str, datetime],
    score_window: Callable[[pl.DataFrame], pl.DataFrame],
    window: timedelta,
    step: timedelta,
    top_k: int,
    horizon: timedelta | None = None,
    track: Callable[[list[datetime]], Iterable[datetime]] | None = None,
) -> pl.DataFrame:
    """How long before failure each failed device first entered the top-k, and the false alarms then.

    Checkpoints run from ``earliest failure - horizon`` (default: the first
    reading + ``window``) in steps of ``step`` while before the latest failure.
    At checkpoint ``t`` the readings in ``(t - window, t]`` go to
    ``score_window``, which returns a frame whose first column is the device id
    and second its score (higher = more unusual); the ``top_k`` by score (ties
    by id) are the alerts. A failed device's first alert is the first
    checkpoint strictly before its failure at which it is in the top-k;
    ``lead_time = failure_time - first_alert`` (null if never);
    ``false_alarms`` counts top-k devices then that are not in the failure list.
    ``track`` (optional) wraps the list of checkpoints, e.g. in a progress bar.
    Failure-list ids absent from ``readings`` are warned about and left out.

    Example:
        >>> from datetime import datetime, timedelta
        >>> t0 = datetime(2024, 1, 1)
        >>> r = pl.DataFrame({"dev": ["a", "b"] * 4, "ts": [t0 + timedelta(days=i // 2) for i in range(8)],
        ...                   "v": [1.0, 5.0, 1.0, 5.0, 9.0, 5.0, 9.0, 5.0]})
        >>> score = lambda f: f.group_by("dev").agg(pl.col("v").max().alias("score"))
        >>> out = lead_times(r, entity="dev", time="ts", failure_times={"a": t0 + timedelta(days=4)},
        ...                  score_window=score, window=timedelta(days=1), step=timedelta(days=1),
        ...                  top_k=1, horizon=timedelta(days=3))
        >>> out.select("dev", "lead_time", "false_alarms").rows()
        [('a', datetime.timedelta(days=2), 0)]
    """
    for col in (entity, time):
        if col not in readings.columns:
            raise DataError(
                f"column '{col}' is not in the readings (columns: {', '.join(readings.columns[:8])})",
                fix="name an existing column in columns.entity / columns.time",
            )
    if top_k < 1 or step <= timedelta(0) or window <= timedelta(0):
        raise DataError(
            f"top_k={top_k}, step={step}, window={window}: each must be positive",
            fix="pass a top_k of at least 1 and a positive step and window",
        )
    tdtype = readings.schema[time]
    if not isinstance(tdtype, pl.Datetime):
        raise DataError(
            f"column '{time}' is {tdtype}, not a datetime",
            fix="parse the time column to a datetime before computing lead times",
        )
    data = readings.sort(time)
    known, _ = validate_failed_ids(data[entity].cast(pl.String).unique().to_list(), failure_times)
    fails = {k: v for k, v in failure_times.items() if k in known}
    duration = pl.Duration(tdtype.time_unit)
    schema: dict[str, pl.DataType] = {
        entity: pl.String(),
        "failure_time": tdtype,
        "first_alert": tdtype,
        "lead_time": duration,
        "false_alarms": pl.Int64(),
        "top_k": pl.Int64(),
    }
    if not fails:
        return pl.DataFrame(schema=schema)
    times = data[time]
    first_time: datetime = times.min()  # type: ignore[assignment]
    start = (min(fails.values()) - horizon) if horizon is not None else first_time + window
    end = max(fails.values())
    alerts: list[pl.DataFrame] = []
    moments: list[datetime] = []
    t = start
    while t < end:
        moments.append(t)
        t = t + step
    for t in track(moments) if track is not None else moments:
        lo = int(times.search_sorted(t - window, side="right"))
        hi = int(times.search_sorted(t, side="right"))
        if hi > lo:
            scored = score_window(data.slice(lo, hi - lo))
            top = (
                scored.select(
                    pl.col(scored.columns[0]).cast(pl.String).alias(entity),
                    pl.col(scored.columns[1]).cast(pl.Float64).alias("score"),
                )
                .sort(["score", entity], descending=[True, False], nulls_last=True)
                .head(top_k)
            )
            alerts.append(top.select(entity).with_columns(pl.lit(t).alias("checkpoint")))
    failed_frame = pl.DataFrame(
        {entity: list(fails), "failure_time": list(fails.values())},
        schema={entity: pl.String, "failure_time": tdtype},
    )
    if not alerts:
        return failed_frame.with_columns(
            pl.lit(None, tdtype).alias("first_alert"),
            pl.lit(None, duration).alias("lead_time"),
            pl.lit(None, pl.Int64).alias("false_alarms"),
            pl.lit(top_k, pl.Int64).alias("top_k"),
        ).sort(entity)
    hits = pl.concat(alerts).with_columns(pl.col("checkpoint").cast(tdtype))
    false_alarms = (
        hits.filter(~pl.col(entity).is_in(list(fails)))
        .group_by("checkpoint")
        .agg(pl.len().cast(pl.Int64).alias("false_alarms"))
    )
    checkpoints = hits.select("checkpoint").unique().join(false_alarms, on="checkpoint", how="left")
    first = (
        hits.join(failed_frame, on=entity)
        .filter(pl.col("checkpoint") < pl.col("failure_time"))
        .group_by(entity)
        .agg(pl.col("checkpoint").min().alias("first_alert"))
    )
    return (
        failed_frame.join(first, on=entity, how="left")
        .join(checkpoints, left_on="first_alert", right_on="checkpoint", how="left")
        .with_columns(
            (pl.col("failure_time") - pl.col("first_alert")).alias("lead_time"),
            pl.when(pl.col("first_alert").is_not_null())
            .then(pl.col("false_alarms").fill_null(0))
            .alias("false_alarms"),
            pl.lit(top_k, pl.Int64).alias("top_k"),
        )
        .select(list(schema))
        .sort(entity)
    )


def lead_time_summary(frame: pl.DataFrame) -> dict[str, Any]:
    """Share of failed devices detected, median lead time, mean false alarms at first alert.

    Example:
        >>> from datetime import datetime, timedelta
        >>> f = pl.DataFrame({"lead_time": [timedelta(days=2), None, timedelta(days=4)],
        ...                   "false_alarms": [1, None, 2], "top_k": [5, 5, 5]})
        >>> s = lead_time_summary(f)
        >>> s["n_detected"], s["median_lead_time"], s["mean_false_alarms"]
        (2, datetime.timedelta(days=3), 1.5)
    """
    detected = frame.filter(pl.col("lead_time").is_not_null())
    n, n_det = frame.height, detected.height
    leads = detected["lead_time"].to_list()
    return {
        "n_failed": n,
        "n_detected": n_det,
        "share_detected": n_det / n if n else math.nan,
        "median_lead_time": statistics.median(leads) if leads else None,
        "mean_false_alarms": float(detected["false_alarms"].mean()) if n_det else None,  # type: ignore[arg-type]
        "top_k": int(frame["top_k"][0]) if n and "top_k" in frame.columns else None,
    }
