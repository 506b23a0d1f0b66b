"""The residual limits against the first things a practitioner tries, on the held-out rows.

Two baselines (:data:`BASELINES`):

* ``three_sigma``: per axis, the mean ± 3 standard deviations of the axis's raw
  values on the training rows the trend was fitted on; a row alarms when an axis
  leaves its band (idle rows, 0 or missing, never alarm, as for the trend).
* ``never_alarm``: the detector that never alarms (NAB's null detector).

The model alarms where the checker's level reaches ``params.baselines.alarm_level``
(the residual limits with their sustain rules). With a label column
(``columns.target``: true inside labelled anomaly windows), the comparison is
precision, recall and F1 of the alarmed rows against the labelled rows (F1 gates
against the band) and the NAB standard-profile score (:mod:`opslens.detect.nab`,
normalised: 0 is the never-alarm detector, 100 perfect; it gates against never
alarming). Without labels, only the share of rows alarmed can be compared; it does
not gate, since nobody knows which alarms were right.

Intervals are 95% paired bootstraps of (model − baseline) over held-out days, or
over 20 blocks of consecutive rows when fewer than 5 days are held out.

Example:
    >>> import numpy as np
    >>> alarms = band_alarms({"a": np.array([9.0, 11.0] * 50)}, {"a": np.array([10.0, 14.0, 0.0])})
    >>> alarms.tolist()
    [False, True, False]
    >>> counts(np.array([True, True, False]), np.array([True, False, True]))
    (1, 1, 1)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from opslens.core.baselines import Baseline, BaselineScore
from opslens.core.recipe import StageContext
from opslens.detect.nab import PROFILES, nab_score, windows_from_labels
from opslens.detect.point import ZScoreDetector
from opslens.errors import DataError
from opslens.models.compare import paired_interval
from opslens.recipes.residual.params import ResidualParams

__all__ = [
    "BASELINES",
    "MIN_DAYS",
    "against_baselines",
    "band_alarms",
    "bands",
    "counts",
    "f1",
    "held_out_comparison",
    "label_flags",
    "units_of",
]

BASELINES = (
    Baseline("three_sigma", "a 3-sigma band per axis"),
    Baseline("never_alarm", "the detector that never alarms"),
)
_LABEL = {b.name: b.label for b in BASELINES}

#: fewer held-out days than this: bootstrap over blocks of consecutive rows instead
MIN_DAYS = 5
_BLOCKS = 20


def label_flags(frame: pl.DataFrame, name: str, where: str) -> pl.Expr:
    """The label column ``name`` as booleans (true or non-zero; missing is false).

    Example:
        >>> f = pl.DataFrame({"y": [0, 1, None]})
        >>> f.select(label_flags(f, "y", "the data"))["y"].to_list()
        [False, True, False]
    """
    if name not in frame.columns:
        raise DataError(
            f"the label column '{name}' (columns.target) is not in {where}",
            fix="set columns.target to a column of the source, or remove columns.target",
        )
    dtype = frame.schema[name]
    if dtype == pl.Boolean:
        flags = pl.col(name)
    elif dtype.is_numeric():
        flags = pl.col(name) != 0
    else:
        raise DataError(
            f"the label column '{name}' of {where} holds {dtype}, not true/false or 0/1",
            fix=f"write {name} as 1 inside labelled anomaly windows and 0 elsewhere",
        )
    return flags.fill_null(False).alias(name)


def bands(train: Mapping[str, np.ndarray]) -> dict[str, ZScoreDetector]:
    """A fitted 3-sigma detector (population mean and std) per axis."""
    return {a: ZScoreDetector(threshold=3.0).fit(v) for a, v in train.items()}


def band_alarms(train: Mapping[str, np.ndarray], held: Mapping[str, np.ndarray]) -> np.ndarray:
    """Rows where any axis leaves its training band; 0 (idle) and missing never alarm."""
    fitted = bands(train)
    n = len(next(iter(held.values())))
    out = np.zeros(n, dtype=bool)
    for axis, values in held.items():
        v = np.asarray(values, dtype=np.float64)
        out |= fitted[axis].predict(np.where(v == 0, np.nan, v))
    return out


def counts(alarms: np.ndarray, labels: np.ndarray) -> tuple[int, int, int]:
    """``(tp, fp, fn)`` of alarmed rows against labelled rows."""
    a, y = np.asarray(alarms, dtype=bool), np.asarray(labels, dtype=bool)
    return int((a & y).sum()), int((a & ~y).sum()), int((~a & y).sum())


def _ratios(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> dict[str, np.ndarray]:
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
        score = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
    return {"precision": precision, "recall": recall, "f1": score}


def f1(tp: int, fp: int, fn: int) -> dict[str, float]:
    """Precision, recall and F1 from counts (0 where undefined: no alarm, no label).

    Example:
        >>> f1(3, 1, 3)
        {'precision': 0.75, 'recall': 0.5, 'f1': 0.6}
    """
    r = _ratios(np.array(tp), np.array(fp), np.array(fn))
    return {k: float(v) for k, v in r.items()}


def units_of(times: np.ndarray) -> tuple[np.ndarray, str]:
    """Bootstrap units of held-out rows in time order: days, or blocks of consecutive rows.

    Example:
        >>> t = np.arange(40).astype("datetime64[h]")
        >>> ids, unit = units_of(t)
        >>> int(ids.max()) + 1, unit
        (20, 'blocks of consecutive held-out rows')
    """
    days = np.asarray(times).astype("datetime64[D]")
    _, ids = np.unique(days, return_inverse=True)
    if ids.size and int(ids.max()) + 1 >= MIN_DAYS:
        return ids.astype(np.int64), "held-out days"
    n = days.size
    return (np.arange(n) * min(_BLOCKS, max(n, 1)) // max(n, 1)).astype(np.int64), (
        "blocks of consecutive held-out rows"
    )


def _per_unit(values: np.ndarray, ids: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(ids, weights=np.asarray(values, dtype=np.float64), minlength=k)


def _count_rows(alarms: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, ...]:
    return (alarms & labels, alarms & ~labels, ~alarms & labels)


def _picks(ids: np.ndarray, random_state: int) -> np.ndarray:
    """1000 bootstrap samples of the units (rows: samples, columns: the units drawn)."""
    k = int(ids.max()) + 1
    return np.random.default_rng(random_state).integers(0, k, size=(1000, k))


def _resampled(rows: Sequence[np.ndarray], ids: np.ndarray, pick: np.ndarray) -> list[np.ndarray]:
    """Each per-row array summed per unit, then over the units of every bootstrap sample."""
    return [_per_unit(r, ids, pick.shape[1])[pick].sum(axis=1) for r in rows]


def _interval(diff: np.ndarray) -> tuple[float, float]:
    lo, hi = np.nanquantile(diff, [0.025, 0.975])
    return float(lo), float(hi)


def _nab_normalised(raw: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """NAB's normalised score from raw scores and window counts (NaN without a window)."""
    c = PROFILES["standard"]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 100.0 * (raw + c.fn * windows) / ((c.tp + c.fn) * windows)
    return np.where(windows > 0, out, np.nan)


def _sum_interval(
    model: np.ndarray, base: np.ndarray, ids: np.ndarray, scale: float, random_state: int
) -> tuple[float, float]:
    """Interval of ``scale · Σ(model − baseline)``: per-unit sums through paired_interval."""
    k = int(ids.max()) + 1
    factor = scale * k
    _, interval = paired_interval(
        _per_unit(model, ids, k) * factor,
        _per_unit(base, ids, k) * factor,
        random_state=random_state,
    )
    return interval


_METRICS = {
    "precision": "precision of the alarmed held-out rows",
    "recall": "recall of the labelled held-out rows",
    "f1": "F1 of alarmed rows against labelled rows",
}


def _labelled(
    model: np.ndarray,
    band: np.ndarray,
    labels: np.ndarray,
    ids: np.ndarray,
    random_state: int,
) -> list[BaselineScore]:
    n = int(model.size)
    scores = []
    mine, theirs = f1(*counts(model, labels)), f1(*counts(band, labels))
    pick = _picks(ids, random_state)
    model_r, band_r = (
        _ratios(*_resampled(_count_rows(a, labels), ids, pick)) for a in (model, band)
    )
    for metric, label in _METRICS.items():
        scores.append(
            BaselineScore(
                baseline="three_sigma",
                label=_LABEL["three_sigma"],
                metric=metric,
                metric_label=label,
                model=mine[metric],
                value=theirs[metric],
                higher_is_better=True,
                n=n,
                interval=_interval(model_r[metric] - band_r[metric]),
                gate=metric == "f1",
            )
        )
    windows = windows_from_labels(labels)
    starts = np.zeros(n)
    starts[[first for first, _ in windows]] = 1.0
    nab = {
        name: nab_score(a, windows)
        for name, a in (
            ("model", model),
            ("three_sigma", band),
            ("never_alarm", np.zeros(n, dtype=bool)),
        )
    }
    resampled = {
        name: _nab_normalised(*_resampled((s.contributions, starts), ids, pick))
        for name, s in nab.items()
    }
    for baseline in ("three_sigma", "never_alarm"):
        scores.append(
            BaselineScore(
                baseline=baseline,
                label=_LABEL[baseline],
                metric="nab_standard",
                metric_label="NAB standard-profile score (0: never alarming, 100: perfect)",
                model=nab["model"].normalised,
                value=nab[baseline].normalised,
                higher_is_better=True,
                n=len(windows),
                unit=f"labelled windows in {n} held-out rows",
                interval=_interval(resampled["model"] - resampled[baseline]),
                gate=baseline == "never_alarm",
            )
        )
    return scores


def _unlabelled(
    model: np.ndarray, band: np.ndarray, ids: np.ndarray, random_state: int
) -> list[BaselineScore]:
    n = int(model.size)
    never = np.zeros(n, dtype=bool)
    return [
        BaselineScore(
            baseline=name,
            label=_LABEL[name],
            metric="alarm_rate",
            metric_label="share of held-out rows alarmed (no labels: which alarms are right "
            "is unknown)",
            model=float(model.mean()),
            value=float(other.mean()),
            higher_is_better=False,
            n=n,
            interval=_sum_interval(model, other, ids, 1.0 / n, random_state),
            gate=False,
        )
        for name, other in (("three_sigma", band), ("never_alarm", never))
    ]


def held_out_comparison(
    *,
    times: np.ndarray,
    model: np.ndarray,
    train: Mapping[str, np.ndarray],
    held: Mapping[str, np.ndarray],
    labels: np.ndarray | None,
    random_state: int,
) -> tuple[list[BaselineScore], dict[str, object]]:
    """The baseline scores and the ``held_out`` facts for the model's alarms ``model``.

    ``times`` and ``held`` (raw values per axis) are the held-out rows in time order,
    ``train`` the training values per axis the band is fitted on, ``labels`` true
    inside labelled anomaly windows (None without a label column).
    """
    model = np.asarray(model, dtype=bool)
    band = band_alarms(train, held)
    ids, unit = units_of(times)
    fitted = bands(train)
    facts: dict[str, object] = {
        "rows": int(model.size),
        "windows": None,
        "units": int(ids.max()) + 1 if ids.size else 0,
        "unit": unit,
        "rates": {"model": float(model.mean()), "three_sigma": float(band.mean())},
        "bands": {
            a: (d.center_ - 3.0 * d.scale_, d.center_ + 3.0 * d.scale_) for a, d in fitted.items()
        },
    }
    y = None if labels is None else np.asarray(labels, dtype=bool)
    if y is not None and y.any():
        facts["windows"] = len(windows_from_labels(y))
        facts["note"] = (
            "alarms are scored against the labelled rows: precision, recall and F1 per row, "
            "and NAB's standard profile per labelled window"
        )
        return _labelled(model, band, y, ids, random_state), facts
    facts["windows"] = None if y is None else 0
    facts["note"] = (
        "without labels only the share of rows alarmed is compared, and it does not decide "
        "the verdict: nobody knows which of the alarms were right"
        if y is None
        else "the labels mark no anomaly among the held-out rows, so every alarm there is "
        "a false alarm; only the share of rows alarmed is compared"
    )
    return _unlabelled(model, band, ids, random_state), facts


def against_baselines(
    ctx: StageContext,
    held: pl.DataFrame,
    levels: pl.DataFrame,
    residuals: pl.DataFrame,
    axes: list[str],
) -> tuple[list[BaselineScore], dict[str, Any]]:
    """The thresholds stage's comparison: the limits' held-out ``levels`` against the baselines.

    Returns the scores and the ``held_out`` facts (:class:`.facts.HeldOutAlarms`).
    """
    p: ResidualParams = ctx.params
    time, label = str(ctx.analysis.columns.time), ctx.analysis.columns.target
    alarm = ("error",) if p.baselines.alarm_level == "error" else ("alert", "error")
    train = residuals.filter(pl.col("split") == "train")
    scores, facts = held_out_comparison(
        times=held[time].to_numpy(),
        model=levels["level"].is_in(alarm).to_numpy(),
        train={a: train.filter(pl.col("axis") == a)["value"].to_numpy() for a in axes},
        held={a: held[a].cast(pl.Float64).to_numpy() for a in axes},
        labels=None if label is None else held[label].to_numpy(),
        random_state=ctx.random_state,
    )
    return scores, {"alarm_level": p.baselines.alarm_level, "labels": label, **facts}
