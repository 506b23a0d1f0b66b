"""The ``health`` stage: sensor faults apart, own-history and peer change, failure risk, the warning rule.

Runs on the daily panel of the readings (each device's daily mean per metric;
``columns.peer_group`` names the peer groups). Sensor faults are listed on their own
and their metrics left out of the risk from the fault's first day on (unless
``params.sensors.in_risk``); the risk ranking combines the rare stage's score with
own-history and peer-relative change (:mod:`~opslens.recipes.fleet.risk`); with known
failure dates, the warning rule (:func:`~opslens.recipes.fleet.change.cusum_alarms`) is
evaluated against chance and against the per-device baseline rule.

Example:
    >>> parts = {"rarity": np.array([0.9, 0.1, 0.8]), "own_change": np.array([0.2, 0.9, 0.5]),
    ...     "peer_change": np.array([1.0, 0.4, 0.7])}
    >>> learned_weights(parts, np.array([True, False, False]))
    {'rarity': 0.3, 'own_change': 0.3, 'peer_change': 0.4}

Learned weights are validated out of fold: each device's risk uses the weights learned
on the other folds' failures, so its own label never sets its weight.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import polars as pl

from opslens.core.recipe import Out, StageContext
from opslens.recipes.fleet.baselines import auroc
from opslens.recipes.fleet.change import (
    ChangeRules,
    change_table,
    cusum_alarms,
    streak_alarms,
    warning_lead_times,
    warning_summary,
)
from opslens.recipes.fleet.daily import daily_panel
from opslens.recipes.fleet.events import event_features, event_list, reset_days
from opslens.recipes.fleet.params import FleetParams
from opslens.recipes.fleet.prepare import failure_list
from opslens.recipes.fleet.risk import COMPONENTS, percentile, risk_ranking
from opslens.recipes.fleet.sensors import SensorRules, mask_faults, sensor_faults

__all__ = [
    "OutOfFold",
    "WarningResult",
    "health",
    "learned_weights",
    "out_of_fold_risk",
    "warning_comparison",
]


@dataclass(frozen=True)
class WarningResult:
    """The warning rule's and the baseline rule's lead times and summaries (with failure dates)."""

    table: pl.DataFrame
    summary: dict[str, Any]


def _combined(parts: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
    """The risk formula of :func:`risk_ranking` on component percentiles (missing parts skipped)."""
    num = np.zeros(next(iter(parts.values())).shape)
    den = np.zeros_like(num)
    for c, values in parts.items():
        ok = np.isfinite(values)
        num += np.where(ok, values, 0.0) * weights[c]
        den += np.where(ok, weights[c], 0.0)
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def learned_weights(parts: Mapping[str, np.ndarray], failed: np.ndarray) -> dict[str, float]:
    """The weights (a grid of tenths that sum to 1) whose combined risk ranks the failures best.

    Ties go to the most even weights. The run validates them out of fold
    (:func:`out_of_fold_risk`); these, learned on every known failure, are the ones reported.
    """
    best: tuple[float, float, tuple[int, ...]] = (-1.0, -1.0, (0, 0, 0))
    for a in range(11):
        for b in range(11 - a):
            grid = (a, b, 10 - a - b)
            w = {c: g / 10 for c, g in zip(COMPONENTS, grid, strict=True)}
            score = float(auroc(failed, _combined(parts, w)))
            key = (round(score, 6), min(grid) / 10, grid)
            if key[:2] > best[:2]:
                best = key
    return {c: g / 10 for c, g in zip(COMPONENTS, best[2], strict=True)}


@dataclass(frozen=True)
class OutOfFold:
    """Each device's risk with weights learned without its own label, its fold, each fold's weights."""

    risk: np.ndarray
    fold: np.ndarray
    fold_weights: list[dict[str, float]]


def out_of_fold_risk(
    parts: Mapping[str, np.ndarray], failed: np.ndarray, *, n_splits: int = 5, random_state: int = 0
) -> OutOfFold:
    """The combined risk of every device with weights learned on the other folds' failures.

    Devices are split in ``n_splits`` stratified folds (seeded; at most one fold per known
    failure); the weights of a fold's devices are :func:`learned_weights` on the rest, so a
    device's own label never sets its weight and the AUROC of the result is honest.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> failed = np.arange(40) < 10
        >>> parts = {"rarity": rng.random(40), "own_change": rng.random(40),
        ...     "peer_change": np.where(failed, 0.9, 0.3) + rng.random(40) / 10}
        >>> oof = out_of_fold_risk(parts, failed, random_state=0)
        >>> len(oof.fold_weights), bool(oof.risk[failed].min() > oof.risk[~failed].max())
        (5, True)
    """
    from sklearn.model_selection import StratifiedKFold

    failed = np.asarray(failed, dtype=bool)
    k = int(max(2, min(n_splits, failed.sum(), (~failed).sum())))
    folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=random_state)
    risk = np.zeros(failed.shape)
    fold = np.zeros(failed.shape, dtype=np.int64)
    fold_weights: list[dict[str, float]] = []
    for i, (train, test) in enumerate(folds.split(np.zeros(failed.size), failed)):
        w = learned_weights({c: v[train] for c, v in parts.items()}, failed[train])
        risk[test] = _combined({c: v[test] for c, v in parts.items()}, w)
        fold[test] = i
        fold_weights.append(w)
    return OutOfFold(risk=risk, fold=fold, fold_weights=fold_weights)


def _rules(p: FleetParams) -> tuple[ChangeRules, SensorRules]:
    c, s = p.change, p.sensors
    change = ChangeRules(
        baseline_days=c.baseline_days,
        recent_days=c.recent_days,
        k=c.k,
        h=c.h,
        streak_z=c.streak_z,
        streak_days=c.streak_days,
    )
    sensors = SensorRules(
        min_run=s.min_run, jump_z=s.jump_z, max_gap=s.max_gap, limits=dict(p.limits)
    )
    return change, sensors


_CHUNK = 2_000_000  # resample × device draws held at once


def _paired_interval(
    a: np.ndarray, b: np.ndarray, *, random_state: int
) -> tuple[float, tuple[float, float]]:
    """:func:`~opslens.models.compare.paired_interval` (rows as units, 1,000 resamples), its
    resamples drawn in chunks: the same random stream, never 1,000 × devices at once."""
    keep = np.isfinite(a) & np.isfinite(b)
    d = a[keep] - b[keep]
    if d.size == 0:
        return float("nan"), (float("nan"), float("nan"))
    n_boot = 1000
    rng = np.random.default_rng(random_state)
    step = max(1, min(n_boot, _CHUNK // d.size))
    means = np.concatenate(
        [
            d[rng.integers(0, d.size, size=(min(step, n_boot - lo), d.size))].sum(axis=1) / d.size
            for lo in range(0, n_boot, step)
        ]
    )
    lo_, hi_ = np.quantile(means, [0.025, 0.975])
    return float(d.sum() / d.size), (float(lo_), float(hi_))


def _paired_p(a: np.ndarray, b: np.ndarray, *, random_state: int) -> float:
    """:func:`~opslens.models.compare.paired_p_value` (rows as units, 2,000 sign flips), its
    flips drawn in chunks: the same random stream, never 2,000 × devices at once."""
    keep = np.isfinite(a) & np.isfinite(b)
    d = a[keep] - b[keep]
    if d.size == 0:
        return float("nan")
    n_perm = 2000
    observed = abs(d.sum()) / d.size
    rng = np.random.default_rng(random_state)
    step = max(1, min(n_perm, _CHUNK // d.size))
    hits = 0
    for lo in range(0, n_perm, step):
        signs = rng.choice(np.array([-1.0, 1.0]), size=(min(step, n_perm - lo), d.size))
        hits += int(np.sum(np.abs(signs @ d) / d.size >= observed - 1e-15))
    return float((1 + hits) / (n_perm + 1))


def warning_comparison(
    ours: pl.DataFrame, base: pl.DataFrame, *, random_state: int = 0
) -> dict[str, Any]:
    """The warning rule against the baseline rule, device by device, with spread and a test.

    Healthy devices warned at their matched dates (ours − baseline, in devices) and the
    failed devices' lead (days; an unwarned failure counts 0): each with a 95% paired
    bootstrap interval (devices resampled) and a sign-flip permutation p-value
    (:mod:`opslens.models.compare`'s, drawn in chunks so 100,000 devices never hold
    2,000 × 100,000 draws at once; the same random stream), both seeded.

    Example:
        >>> f = pl.DataFrame({"device": list("abcdef"), "failed": [True] * 2 + [False] * 4,
        ...     "lead_days": [10, 8, None, None, None, 2]})
        >>> b = f.with_columns(pl.Series("lead_days", [9, 8, 3, 4, None, 2]))
        >>> c = warning_comparison(f, b)
        >>> c["healthy_warned_diff"], c["lead_days_diff"]
        (-2, 0.5)
    """
    pair = ours.select("device", "failed", pl.col("lead_days").alias("a")).join(
        base.select("device", pl.col("lead_days").alias("b")), on="device", how="inner"
    )
    healthy = pair.filter(~pl.col("failed"))
    failed = pair.filter(pl.col("failed"))
    out: dict[str, Any] = {}
    if healthy.height:
        a = healthy["a"].is_not_null().to_numpy().astype(float)
        b = healthy["b"].is_not_null().to_numpy().astype(float)
        mean, (lo, hi) = _paired_interval(a, b, random_state=random_state)
        out |= {
            "healthy_warned_diff": round(mean * a.size),
            "healthy_warned_interval": [round(lo * a.size, 2), round(hi * a.size, 2)],
            "healthy_warned_p": _paired_p(a, b, random_state=random_state),
        }
    if failed.height:
        a = failed["a"].fill_null(0).cast(pl.Float64).to_numpy()
        b = failed["b"].fill_null(0).cast(pl.Float64).to_numpy()
        mean, (lo, hi) = _paired_interval(a, b, random_state=random_state)
        out |= {
            "lead_days_diff": round(mean, 2),
            "lead_days_interval": [round(lo, 2), round(hi, 2)],
            "lead_days_p": _paired_p(a, b, random_state=random_state),
        }
    return out


def _warning(
    masked: Any,
    rules: ChangeRules,
    resets: np.ndarray | None,
    failure_days: dict[str, date],
    *,
    horizon_days: int,
    exclude: list[str],
    random_state: int,
) -> WarningResult:
    frames = {}
    summaries = {}
    for name, alarms in (
        ("cusum", cusum_alarms(masked, rules, resets)),
        ("streak", streak_alarms(masked, rules, resets)),
    ):
        frames[name] = warning_lead_times(
            alarms,
            masked,
            failure_days,
            horizon_days=horizon_days,
            exclude=exclude,
            random_state=random_state,
        )
        summaries[name] = warning_summary(frames[name])
    ours, base = summaries["cusum"], summaries["streak"]
    comparison = warning_comparison(frames["cusum"], frames["streak"], random_state=random_state)
    more = int(ours["n_detected"] or 0) - int(base["n_detected"] or 0)
    fewer = int(base["healthy_warned"] or 0) - int(ours["healthy_warned"] or 0)
    earlier = float(ours["median_lead_days"] or 0) - float(base["median_lead_days"] or 0)
    beats = more >= 0 and fewer >= 0 and earlier >= 0 and (more > 0 or fewer > 0 or earlier > 0)
    table = frames["cusum"].join(
        frames["streak"].select(
            "device",
            pl.col("lead_days").alias("baseline_lead_days"),
            pl.col("ever_raised").alias("baseline_ever_raised"),
        ),
        on="device",
        how="left",
        maintain_order="left",
    )
    summary = {
        **ours,
        "baseline": base,
        "beats_baseline": beats,
        "comparison": comparison,
        "horizon_days": horizon_days,
    }
    return WarningResult(table=table, summary=summary)


def _reranked(ranking: pl.DataFrame, risk: np.ndarray, entity: str) -> pl.DataFrame:
    """``ranking`` (a :func:`risk_ranking` frame) with ``risk`` replaced and ranked again."""
    return (
        ranking.drop("rank")
        .with_columns(
            pl.when(pl.col("risk").is_null())
            .then(None)
            .otherwise(pl.Series("risk", risk, dtype=pl.Float64))
            .alias("risk")
        )
        .sort(["risk", entity], descending=[True, False], nulls_last=True)
        .with_row_index("rank", offset=1)
        .with_columns(pl.col("rank").cast(pl.Int64))
    )


def health(
    ctx: StageContext,
    readings: Any,
    rare_scores: pl.DataFrame,
    failure_table: pl.DataFrame | None,
    event_table: pl.DataFrame | None = None,
) -> Out:
    """Sensor faults, change scores, the failure-risk ranking and the warning rule.

    With maintenance events (``params.events``), a device's baseline starts at its last
    reset event and event counts and recency per kind join the risk table.
    """
    p: FleetParams = ctx.params
    cols = ctx.analysis.columns
    entity, time, metrics = str(cols.entity), str(cols.time), list(cols.metrics)
    change_rules, sensor_rules = _rules(p)
    panel = daily_panel(
        readings, entity=entity, time=time, metrics=metrics, peer=cols.peer_group, engine=ctx.engine
    )
    faults = sensor_faults(panel, entity=entity, rules=sensor_rules)
    faulty = sorted(set(faults.filter(pl.col("kind") != "dropout")[entity].to_list()))
    masked = panel if p.sensors.in_risk else mask_faults(panel, faults, entity=entity)
    events = event_list(p.events, event_table, entity) if event_table is not None else None
    resets = (
        reset_days(events, panel, entity=entity, kinds=p.events.resets)
        if events is not None
        else None
    )
    change = change_table(masked, entity=entity, rules=change_rules, resets=resets)
    ids, times = failure_list(p.failures, failure_table, entity)
    known = ids & set(panel.devices.astype(str).tolist())
    rarity = rare_scores.select(entity, pl.col("combined").alias("score"))
    excluded = [] if p.sensors.in_risk else faulty
    equal = risk_ranking(
        change, rarity, entity=entity, h=change_rules.h, faulty=excluded, units=p.units
    )
    weights: dict[str, float] = {c: 1.0 for c in COMPONENTS}
    weights_from = "equal"
    component_auroc: dict[str, float] = {}
    equal_auroc = None
    equal_p10 = None
    oof: OutOfFold | None = None
    if len(known) >= p.failures.min_failures:
        labels = equal[entity].is_in(sorted(known)).to_numpy()
        parts = {
            c: percentile(equal[c].cast(pl.Float64).fill_null(np.nan).to_numpy())
            for c in COMPONENTS
        }
        for c, values in parts.items():
            if np.isfinite(values).any():  # a missing component value ranks lowest
                component_auroc[c] = round(float(auroc(labels, np.nan_to_num(values))), 4)
        equal_risk = _combined(parts, weights)
        equal_auroc = round(float(auroc(labels, equal_risk)), 4)
        top10 = np.argsort(-equal_risk, kind="stable")[:10]
        equal_p10 = round(float(labels[top10].mean()), 4)
        if p.risk.weights is None:
            weights, weights_from = learned_weights(parts, labels), "learned"
            oof = out_of_fold_risk(parts, labels, random_state=ctx.random_state)
    if p.risk.weights is not None:
        given: dict[str, float] = {str(k): v for k, v in p.risk.weights.items()}
        weights, weights_from = {c: float(given.get(c, 0.0)) for c in COMPONENTS}, "set"
    risk = (
        equal
        if weights_from == "equal"
        else _reranked(equal, oof.risk, entity)
        if oof is not None
        else risk_ranking(
            change,
            rarity,
            entity=entity,
            h=change_rules.h,
            faulty=excluded,
            weights=weights,
            units=p.units,
        )
    )
    warning = WarningResult(table=pl.DataFrame(), summary={})
    known_days = {k: v.date() for k, v in times.items() if k in known}
    if known_days:
        warning = _warning(
            masked,
            change_rules,
            resets,
            known_days,
            horizon_days=max(1, p.lead_time.horizon.days),
            exclude=sorted(known - set(known_days)),
            random_state=ctx.random_state,
        )
    if events is not None and events.height:
        end = panel.days[-1].astype("datetime64[D]").item()
        risk = risk.join(
            event_features(events, entity, end=end), on=entity, how="left", maintain_order="left"
        )
    top = risk.head(10)
    facts: dict[str, Any] = {
        "peer_group": cols.peer_group,
        "peer_groups": len(panel.peer_names),
        "lonely_devices": panel.lonely,
        "days": int(panel.days.size),
        "n_sensor_faults": faults.height,
        "faulty_devices": len(faulty),
        "fault_kinds": dict(faults.group_by("kind").len().sort("kind").iter_rows()),
        "sensor_faults": faults.head(50).with_columns(pl.col("since").cast(pl.String)).to_dicts(),
        "sensor_faults_in_risk": p.sensors.in_risk,
        "weights": weights,
        "weights_from": weights_from,
        "component_auroc": component_auroc or None,
        "equal_weights_auroc": equal_auroc,
        "equal_weights_precision_at_10": equal_p10,
        "fold_weights": oof.fold_weights if oof is not None else None,
        "top": [
            {
                "device": str(r[entity]),
                "rank": int(r["rank"]),
                "risk": float(r["risk"]) if r["risk"] is not None else None,
                "explanation": r["explanation"],
            }
            for r in top.iter_rows(named=True)
        ],
        "warning": warning.summary or None,
        "events": None
        if events is None
        else {
            "n_events": events.height,
            "kinds": dict(events.group_by("kind").len().sort("kind").iter_rows()),
            "devices_reset": int((resets > 0).sum()) if resets is not None else 0,
        },
    }
    tables = {
        "sensor_faults": faults,
        "risk": risk,
        "change": change,
    }
    return Out(
        values={
            "risk_scores": risk.select(entity, pl.col("risk").alias("score")),
            "warning_result": warning,
        },
        tables=tables,
        facts=facts,
        metrics={"sensor_faults": float(faults.height)},
    )
