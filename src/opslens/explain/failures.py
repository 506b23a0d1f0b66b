"""Known failures: do the groups and the rare-device ranking point at devices that failed?

* :func:`validate_failed_ids`: ids in the failure list that are not in the data
  are warned about (:class:`~opslens.errors.OpslensWarning`) and set aside.
* :func:`group_enrichment`: per group, failure rate, lift over the fleet rate
  and a one-sided Fisher exact test (is the group *richer* in failures?).
  ``enriched`` means ``p < 0.01`` and ``lift > 1``.
* :func:`enrichment_by_method`: the same for every group of every grouping
  method (noise included) at once, with a Benjamini-Hochberg ``q_value`` over
  all those tests; ``enriched`` then means ``q < alpha`` and ``lift > 1``.
* :func:`ranking_quality`: precision@k, recall@k and AUROC of a score against
  failure, a permutation p-value for the AUROC (labels shuffled, seeded), and a
  plain verdict. With ``k = min(10, n)``: *useful* when AUROC ≥ 0.7 **and**
  precision@k ≥ 2× the base rate **and** the permutation p < ``alpha``;
  *weak* when the p-value holds but only one threshold does; otherwise *not
  distinguishable from chance*. With fewer than ``min_failures`` failed devices
  (or no healthy one) it says there are too few to tell.
* :func:`lead_times`: score rolling windows up to each failure date; how long
  before its failure did each failed device first enter the top-k (within
  ``horizon``), and how many healthy devices were in the top-k then. "Healthy"
  means never in the failure list: a device that fails later is a true early
  warning, not a false alarm. Windows count only once they lie wholly inside
  the data. With ``baseline=True`` every healthy device gets a pseudo-failure
  date drawn (seeded) from the real failure dates and is scored the same way:
  how often a healthy device "warns" is the chance rate a lead time must beat
  (:func:`lead_time_summary` compares the two with a one-sided Fisher test).

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
from scipy.stats import fisher_exact, rankdata
from sklearn.metrics import roc_auc_score
from statsmodels.stats.multitest import multipletests

from opslens.errors import DataError, OpslensWarning
from opslens.explain.text import format_duration, format_p, format_pct

__all__ = [
    "RankingQuality",
    "enrichment_by_method",
    "group_enrichment",
    "lead_time_sentence",
    "lead_time_summary",
    "lead_times",
    "permutation_auroc_p",
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


def enrichment_by_method(
    labels: pl.DataFrame, failed: set[str], *, entity: str, alpha: float = 0.01
) -> pl.DataFrame:
    """:func:`group_enrichment` for every method column of ``labels``, BH-corrected across all.

    ``labels`` holds the device column and one integer column per method
    (``-1`` = noise, a row like any group). Rows are sorted by ``q_value``, then
    ``p_value``: the first row is the most enriched group whichever method found it.

    Example:
        >>> lab = pl.DataFrame({"id": list("abcdefgh"), "km": [0, 0, 1, 1, 1, 1, 1, 1],
        ...                     "db": [-1, -1, 0, 0, 0, 0, 0, 0]})
        >>> e = enrichment_by_method(lab, {"a", "b"}, entity="id")
        >>> e.select("method", "group", "n_failed").rows()[:2]
        [('km', 0, 2), ('db', -1, 2)]
    """
    entities = labels[entity].cast(pl.String).to_list()
    parts = [
        group_enrichment(labels[m].to_numpy(), entities, failed).select(
            pl.lit(m).alias("method"), pl.all()
        )
        for m in labels.columns
        if m != entity
    ]
    frame = pl.concat(parts)
    q = multipletests(frame["p_value"].to_numpy(), method="fdr_bh")[1] if frame.height else []
    return (
        frame.with_columns(pl.Series("q_value", q, dtype=pl.Float64))
        .with_columns(((pl.col("q_value") < alpha) & (pl.col("lift") > 1)).alias("enriched"))
        .with_row_index("_order")
        .sort(["q_value", "p_value", "_order"])
        .drop("_order")
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
    auroc_p: float = math.nan
    enough: bool = True


def permutation_auroc_p(
    y: np.ndarray, s: np.ndarray, *, permutations: int = 2000, random_state: int = 0
) -> float:
    """One-sided permutation p-value of AUROC (labels shuffled): ``(1 + #{AUC* >= AUC}) / (1 + B)``.

    Example:
        >>> y = np.array([1, 1, 1, 0, 0, 0, 0, 0, 0, 0])
        >>> p = permutation_auroc_p(y, np.arange(10.0)[::-1], permutations=999)
        >>> 0.005 < p < 0.02
        True
    """
    ranks = rankdata(s)
    n1, n = int(y.sum()), y.size
    n0 = n - n1
    observed = (ranks[y.astype(bool)].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)
    rng = np.random.default_rng(random_state)
    # in chunks of permutations (the same random stream as one draw): a 100,000-device
    # fleet would otherwise hold 2,000 × 100,000 keys and their argsort at once (3 GB)
    chunk = max(1, min(permutations, 2_000_000 // max(1, n)))
    hits = 0
    for lo in range(0, permutations, chunk):
        keys = rng.random((min(chunk, permutations - lo), n))
        picks = np.argsort(keys, axis=1)[:, :n1]
        shuffled = (ranks[picks].sum(axis=1) - n1 * (n1 + 1) / 2) / (n1 * n0)
        hits += int(np.sum(shuffled >= observed - 1e-12))
    return float((1 + hits) / (1 + permutations))


def ranking_quality(
    scores: pl.DataFrame,
    failed: set[str],
    *,
    ks: Sequence[int] = (5, 10, 20, 50),
    entity: str | None = None,
    score: str | None = None,
    min_failures: int = 1,
    permutations: int = 0,
    alpha: float = 0.01,
    random_state: int = 0,
) -> RankingQuality:
    """Precision@k, recall@k and AUROC of ``score`` (higher = more suspicious) against failure.

    ``scores`` holds a device column and a score column (by default the first
    and second columns). Devices are ranked by score, ties by id; k larger than
    the fleet are skipped. With ``permutations`` > 0 the AUROC gets a
    permutation p-value and "useful" needs it below ``alpha``; with fewer than
    ``min_failures`` failed devices the verdict is that there are too few to tell.

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
            n,
            n_fail,
            base,
            auroc,
            precision,
            recall,
            hits,
            k_ref,
            ref_hits,
            False,
            verdict,
            enough=False,
        )
    finite = np.nan_to_num(s, nan=-np.inf, neginf=np.finfo(float).min)
    auroc = float(roc_auc_score(y, finite))
    p_auc = (
        permutation_auroc_p(y, finite, permutations=permutations, random_state=random_state)
        if permutations > 0
        else math.nan
    )
    lift_ok = ref_hits / k_ref >= 2 * base
    auc_ok = auroc >= 0.7
    significant = permutations <= 0 or p_auc < alpha
    enough = n_fail >= min_failures
    useful = auc_ok and lift_ok and significant and enough
    evidence = f"AUROC {auroc:.3g}" + (
        f" (permutation {format_p(p_auc, name='p')})" if permutations > 0 else ""
    )
    evidence += f" and {ref_hits} of the top {k_ref} devices failed (base rate {format_pct(base)})"
    if not enough:
        label = (
            f"too few known failures to tell ({n_fail} known; a verdict needs at least "
            f"{min_failures})"
        )
    elif useful:
        label = "useful risk indicator"
    elif significant and (auc_ok or lift_ok or auroc >= 0.6):
        label = "weak risk indicator"
    elif not significant:
        label = "not distinguishable from chance"
    else:
        label = "not a useful risk indicator"
    return RankingQuality(
        n,
        n_fail,
        base,
        auroc,
        precision,
        recall,
        hits,
        k_ref,
        ref_hits,
        useful,
        f"{label}: {evidence}",
        p_auc,
        enough,
    )


def lead_times(
    readings: pl.DataFrame,
    *,
    entity: str,
    time: str,
    failure_times: Mapping[str, datetime],
    score_window: Callable[[pl.DataFrame], pl.DataFrame] | None = None,
    window: timedelta,
    step: timedelta,
    top_k: int,
    horizon: timedelta | None = None,
    track: Callable[[list[datetime]], Iterable[datetime]] | None = None,
    baseline: bool = False,
    exclude: Iterable[str] = (),
    random_state: int = 0,
    score_at: Callable[[datetime], pl.DataFrame] | None = None,
) -> pl.DataFrame:
    """How long before failure each failed device first entered the top-k, and the false alarms then.

    Checkpoints run from ``earliest failure - horizon``, but never before the
    first reading + ``window`` (a window must lie wholly inside the data), in
    steps of ``step`` while before the latest failure.
    At checkpoint ``t`` the readings in ``(t - window, t]`` go to
    ``score_window``, which returns a frame whose first column is the device id
    and second its score (higher = more unusual); the ``top_k`` by score (ties
    by id) are the alerts. A failed device's first alert is the first
    checkpoint strictly before its failure (and no more than ``horizon`` before
    it) at which it is in the top-k;
    ``lead_time = failure_time - first_alert`` (null if never);
    ``false_alarms`` counts top-k devices then that are not in the failure list.
    ``score_at`` (instead of ``score_window``) gets the checkpoint ``t`` itself
    and scores the same window incrementally (it is called in time order), e.g.
    with :class:`~opslens.features.fingerprints.RollingFingerprints`.
    ``track`` (optional) wraps the list of checkpoints, e.g. in a progress bar.
    Failure-list ids absent from ``readings`` are warned about and left out.
    ``baseline=True`` adds a row (``failed`` False) per healthy device, scored
    at a pseudo-failure date drawn with ``random_state`` from the failure dates;
    ``exclude`` names devices known to have failed at an unknown time (neither
    healthy nor false alarms).

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
    if (score_window is None) == (score_at is None):
        raise DataError(
            "lead_times needs exactly one of score_window and score_at",
            fix="pass score_window (a window of readings -> scores) or score_at (t -> scores)",
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
    # the incremental scorer needs only the distinct times, not a sorted copy of the readings
    data = (
        readings.select(pl.col(time).unique().sort())
        if score_at is not None
        else readings.sort(time)
    )
    present = readings[entity].cast(pl.String).unique().sort().to_list()
    known, _ = validate_failed_ids(present, failure_times)
    fails = {k: v for k, v in failure_times.items() if k in known}
    duration = pl.Duration(tdtype.time_unit)
    schema: dict[str, pl.DataType] = {
        entity: pl.String(),
        "failed": pl.Boolean(),
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
    # a window counts only once it lies wholly inside the data
    start = max(first_time + window, min(fails.values()) - horizon if horizon else first_time)
    end = max(fails.values())
    moments: list[datetime] = []
    t = start
    while t < end:
        moments.append(t)
        t = t + step
    alerts: list[pl.DataFrame] = []
    for t in track(moments) if track is not None else moments:
        lo = int(times.search_sorted(t - window, side="right"))
        hi = int(times.search_sorted(t, side="right"))
        if hi > lo:
            if score_at is not None:
                scored = score_at(t)
            else:
                assert score_window is not None  # checked above: exactly one is given
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
    dates = {**fails, **_pseudo_dates(present, fails, exclude, random_state)} if baseline else fails
    devices = pl.DataFrame(
        {
            entity: list(dates),
            "failed": [d in fails for d in dates],
            "failure_time": list(dates.values()),
        },
        schema={entity: pl.String, "failed": pl.Boolean, "failure_time": tdtype},
    )
    if not alerts:
        return (
            devices.with_columns(
                pl.lit(None, tdtype).alias("first_alert"),
                pl.lit(None, duration).alias("lead_time"),
                pl.lit(None, pl.Int64).alias("false_alarms"),
                pl.lit(top_k, pl.Int64).alias("top_k"),
            )
            .select(list(schema))
            .sort(["failed", entity], descending=[True, False])
        )
    hits = pl.concat(alerts).with_columns(pl.col("checkpoint").cast(tdtype))
    never_failed = ~pl.col(entity).is_in(sorted(set(fails) | set(exclude)))
    false_alarms = (
        hits.filter(never_failed)
        .group_by("checkpoint")
        .agg(pl.len().cast(pl.Int64).alias("false_alarms"))
    )
    checkpoints = hits.select("checkpoint").unique().join(false_alarms, on="checkpoint", how="left")
    in_reach = pl.col("checkpoint") < pl.col("failure_time")
    if horizon is not None:
        in_reach &= pl.col("checkpoint") >= pl.col("failure_time") - horizon
    first = (
        hits.join(devices.select(entity, "failure_time"), on=entity)
        .filter(in_reach)
        .group_by(entity)
        .agg(pl.col("checkpoint").min().alias("first_alert"))
    )
    return (
        devices.join(first, on=entity, how="left")
        .join(checkpoints, left_on="first_alert", right_on="checkpoint", how="left")
        .with_columns(
            (pl.col("failure_time") - pl.col("first_alert")).alias("lead_time"),
            pl.when(pl.col("first_alert").is_not_null())
            .then(pl.col("false_alarms").fill_null(0))
            .alias("false_alarms"),
            pl.lit(top_k, pl.Int64).alias("top_k"),
        )
        .select(list(schema))
        .sort(["failed", entity], descending=[True, False])
    )


def _pseudo_dates(
    present: Sequence[str],
    fails: Mapping[str, datetime],
    exclude: Iterable[str],
    random_state: int,
) -> dict[str, datetime]:
    """A pseudo-failure date per healthy device, drawn (seeded) from the real failure dates."""
    skip = set(fails) | {str(e) for e in exclude}
    healthy = [d for d in present if d not in skip]
    pool = sorted(fails.values())
    picks = np.random.default_rng(random_state).integers(0, len(pool), size=len(healthy))
    return {d: pool[int(i)] for d, i in zip(healthy, picks, strict=True)}


def lead_time_summary(frame: pl.DataFrame, *, alpha: float = 0.05) -> dict[str, Any]:
    """Failed devices detected before failure, median lead time, and the healthy devices' chance rate.

    Rows with ``failed`` False (the baseline of :func:`lead_times`) give the
    share of healthy devices that entered the top-k before their pseudo-failure
    date; ``p_value`` is a one-sided Fisher test that failed devices are detected
    more often, and ``beats_chance`` is ``p_value < alpha``.

    Example:
        >>> from datetime import datetime, timedelta
        >>> f = pl.DataFrame({"lead_time": [timedelta(days=2), None, timedelta(days=4)],
        ...                   "false_alarms": [1, None, 2], "top_k": [5, 5, 5]})
        >>> s = lead_time_summary(f)
        >>> s["n_detected"], s["median_lead_time"], s["mean_false_alarms"], s["n_healthy"]
        (2, datetime.timedelta(days=3), 1.5, 0)
    """
    failed_rows = frame.filter(pl.col("failed")) if "failed" in frame.columns else frame
    healthy = frame.filter(~pl.col("failed")) if "failed" in frame.columns else frame.clear()
    detected = failed_rows.filter(pl.col("lead_time").is_not_null())
    n, n_det = failed_rows.height, detected.height
    leads = detected["lead_time"].to_list()
    h_det = healthy.filter(pl.col("lead_time").is_not_null())
    h_leads = h_det["lead_time"].to_list()
    out: dict[str, Any] = {
        "n_failed": n,
        "n_detected": n_det,
        "share_detected": n_det / n if n else math.nan,
        "median_lead_time": statistics.median(leads) if leads else None,
        "mean_false_alarms": float(detected["false_alarms"].mean()) if n_det else None,  # type: ignore[arg-type]
        "top_k": int(frame["top_k"][0]) if frame.height and "top_k" in frame.columns else None,
        "n_healthy": healthy.height,
        "healthy_detected": h_det.height,
        "healthy_share_detected": h_det.height / healthy.height if healthy.height else None,
        "healthy_median_lead_time": statistics.median(h_leads) if h_leads else None,
        "p_value": None,
        "beats_chance": None,
    }
    if n and healthy.height:
        table = [[n_det, n - n_det], [h_det.height, healthy.height - h_det.height]]
        p = float(fisher_exact(table, alternative="greater").pvalue)
        out.update(p_value=p, beats_chance=p < alpha)
    return out


def lead_time_sentence(summary: Mapping[str, Any]) -> str:
    """One plain sentence: failing devices' detection and lead time against the chance baseline.

    Example:
        >>> from datetime import timedelta
        >>> lead_time_sentence({"n_failed": 10, "n_detected": 8, "median_lead_time": timedelta(days=3),
        ...     "top_k": 10, "n_healthy": 90, "healthy_detected": 9, "p_value": 1e-6,
        ...     "beats_chance": True, "healthy_median_lead_time": timedelta(days=2)})
        '8 of 10 failed devices entered the top 10 before failing (median 3 days ahead); at matched pseudo-failure dates 9 of 90 healthy devices did (median 2 days ahead), so the warning beats chance (Fisher p = 1e-06).'
    """
    n, n_det, k = summary.get("n_failed", 0), summary.get("n_detected", 0), summary.get("top_k")
    top = f"top {k}" if k else "top of the ranking"
    med = summary.get("median_lead_time")
    when = f" (median {format_duration(med)} ahead)" if med is not None else ""
    text = f"{n_det} of {n} failed devices entered the {top} before failing{when}"
    n_h = summary.get("n_healthy") or 0
    if not n_h or summary.get("p_value") is None:
        return text + "; no healthy devices were scored for a chance baseline."
    h_med = summary.get("healthy_median_lead_time")
    h_when = f" (median {format_duration(h_med)} ahead)" if h_med is not None else ""
    verdict = (
        "so the warning beats chance"
        if summary.get("beats_chance")
        else "so the warning does not beat chance"
    )
    return (
        f"{text}; at matched pseudo-failure dates {summary.get('healthy_detected')} of {n_h} "
        f"healthy devices did{h_when}, {verdict} ({format_p(summary['p_value'], name='Fisher p')})."
    )
