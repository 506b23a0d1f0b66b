"""Fleet on a distributed engine (``engine: spark``): the readings never reach the driver.

The stages of :mod:`.stages` and :mod:`.prepare` hand their readings work here when
``ctx.engine.distributed``. The readings stay an **engine frame** (on Spark a
DataFrame on the executors, written by them as a Parquet folder by the runner);
every per-device step is a function of whole devices run by the engine
(``per_group``: Spark's ``applyInArrow``), and the driver gets only per-device
answers: one summary row per device in ``prepare``, the fingerprint table, the
daily means (devices × days) in ``health``, the baselines' per-device scores,
the window fingerprints of at most ``WINDOW_DEVICES`` devices, and the series of
the few devices ``inspect`` draws. Only the engine contract is used (no Spark
here), and the per-device work is the polars code of the local path, on each
device's rows in (device, time) order — so the answers equal the local engine's.

Example:
    >>> from datetime import datetime
    >>> part = pl.DataFrame({"d": ["a", "a", "a"], "__order": [0, 1, 2],
    ...     "t": [datetime(2024, 1, 1, h) for h in (0, 2, 1)], "v": [1.0, 2.0, 3.0]})
    >>> facts = device_facts(part, entity="d", time="t", metrics=["v"], peers=[],
    ...     duplicates="error")
    >>> facts.select("d", "unsorted", "dupes", "rows", "n__v", "gap_values").rows()
    [('a', True, 0, 3, 3, [3600000000])]
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from datetime import timedelta
from functools import partial
from typing import Any

import numpy as np
import polars as pl

from opslens.core.columns import require_numeric
from opslens.core.engine import Engine
from opslens.core.recipe import Out, StageContext
from opslens.errors import DataError
from opslens.recipes.fleet.params import FleetParams

__all__ = [
    "ORDER",
    "device_facts",
    "device_rows",
    "devices_of",
    "interval_of",
    "ordered",
    "prepare_kept",
]

#: the input's row order, numbered by the engine before the rows are grouped by device
ORDER = "__order"
_INTERVALS: weakref.WeakKeyDictionary[Any, timedelta | None] = weakref.WeakKeyDictionary()


def ordered(
    part: pl.DataFrame, *, func: Callable[[pl.DataFrame], pl.DataFrame], by: Sequence[str]
) -> pl.DataFrame:
    """``func`` on ``part`` sorted by ``by`` (device, time: the order the local engine's sorted
    readings have, so floating-point sums add up in the same order).

    Example:
        >>> ordered(pl.DataFrame({"t": [2, 1]}), func=lambda f: f.head(1), by=["t"]).item()
        1
    """
    return func(part.sort(list(by)))


def _selected(
    batch: pl.DataFrame,
    *,
    entity: str,
    time: str,
    metrics: list[str],
    peers: list[str],
    where: str,
) -> pl.DataFrame:
    """The row-wise part of :func:`.prepare.prepare` on one batch: the columns it keeps (the
    device id as text, metrics as numbers, :data:`ORDER`), rows without device or time left out."""
    frame = batch.select(pl.col(entity).cast(pl.String), time, *metrics, *peers, ORDER)
    for m in metrics:
        frame = require_numeric(frame, m, where=where)
    return frame.filter(pl.col(entity).is_not_null() & pl.col(time).is_not_null())


def _then(
    part: pl.DataFrame,
    *,
    first: Callable[[pl.DataFrame], pl.DataFrame],
    then: Callable[[pl.DataFrame], pl.DataFrame],
) -> pl.DataFrame:
    """``then(first(part))``: the row-wise selection and a per-device step in one pass."""
    return then(first(part))


def _merged(
    part: pl.DataFrame,
    *,
    entity: str,
    time: str,
    metrics: list[str],
    peers: list[str],
    duplicates: str,
) -> pl.DataFrame:
    """Whole devices in input order, sorted by (device, time) stably, duplicate (device, time)
    pairs merged by ``params.duplicates`` as :func:`.prepare.prepare` merges them."""
    frame = part.sort(ORDER).drop(ORDER).sort([entity, time], maintain_order=True)
    if (
        duplicates == "error"
        or not frame.select(pl.struct(entity, time).is_duplicated().any()).item()
    ):
        return frame
    agg = [
        pl.col(m).mean() if duplicates == "mean" else getattr(pl.col(m), duplicates)()
        for m in metrics
    ] + [pl.col(g).first() for g in peers]
    return frame.group_by([entity, time], maintain_order=True).agg(agg).select(frame.columns)


def _gaps(frame: pl.DataFrame, *, entity: str, time: str) -> pl.DataFrame:
    """Per device (rows in time order): its distinct gaps between consecutive readings (in the
    time column's unit) and how often each occurs, as two lists."""
    stamp = pl.col(time).to_physical()
    return (
        frame.select(entity, (stamp - stamp.shift()).over(entity).alias("gap"))
        .drop_nulls("gap")
        .group_by(entity, "gap")
        .len()
        .sort(entity, "gap")
        .group_by(entity, maintain_order=True)
        .agg(
            pl.col("gap").cast(pl.Int64).alias("gap_values"),
            pl.col("len").cast(pl.Int64).alias("gap_counts"),
        )
    )


def device_facts(
    part: pl.DataFrame,
    *,
    entity: str,
    time: str,
    metrics: list[str],
    peers: list[str],
    duplicates: str,
) -> pl.DataFrame:
    """One row per device of ``part`` (rows with :data:`ORDER`): what :func:`.prepare.prepare`
    checks and reports — time going back in input order (``unsorted``), duplicate pairs
    (``dupes``, the first one's time), rows after merging, per metric the readings
    (``n__m``), nulls (``null__m``) and the range without NaN (``lo__m``, ``hi__m``), the
    first and last time, and the gaps between readings (:func:`_gaps`)."""
    back = (pl.col(time).diff() < pl.duration(microseconds=0)).any().alias("unsorted")
    unsorted = part.sort(ORDER).group_by(entity).agg(back)
    pairs = part.group_by(entity, time).len().filter(pl.col("len") > 1)
    dupes = pairs.group_by(entity).agg(
        pl.len().cast(pl.Int64).alias("dupes"), pl.col(time).min().alias("dupe_time")
    )
    frame = _merged(
        part, entity=entity, time=time, metrics=metrics, peers=peers, duplicates=duplicates
    )
    finite = [pl.col(m).drop_nulls().drop_nans() for m in metrics]
    per = frame.group_by(entity).agg(
        pl.len().cast(pl.Int64).alias("rows"),
        *(pl.col(m).is_not_null().sum().cast(pl.Int64).alias(f"n__{m}") for m in metrics),
        *(pl.col(m).is_null().sum().cast(pl.Int64).alias(f"null__{m}") for m in metrics),
        *(v.min().alias(f"lo__{m}") for v, m in zip(finite, metrics, strict=True)),
        *(v.max().alias(f"hi__{m}") for v, m in zip(finite, metrics, strict=True)),
        pl.col(time).min().alias("start"),
        pl.col(time).max().alias("end"),
    )
    out = (
        per.join(unsorted, on=entity, how="left")
        .join(dupes, on=entity, how="left")
        .join(_gaps(frame, entity=entity, time=time), on=entity, how="left")
        .with_columns(pl.col("dupes").fill_null(0))
    )
    lists = pl.List(pl.Int64)
    return out.with_columns(pl.col("gap_values", "gap_counts").fill_null(pl.lit([], dtype=lists)))


def device_rows(
    part: pl.DataFrame,
    *,
    entity: str,
    time: str,
    metrics: list[str],
    peers: list[str],
    duplicates: str,
    min_readings: int,
) -> pl.DataFrame:
    """The prepared readings of whole devices: sorted by (device, time), duplicates merged, a
    device with fewer than ``min_readings`` readings of some metric left out (``prepare``
    has raised already where the policy says so)."""
    frame = _merged(
        part, entity=entity, time=time, metrics=metrics, peers=peers, duplicates=duplicates
    )
    short = (
        frame.group_by(entity)
        .agg(pl.min_horizontal(pl.col(m).is_not_null().sum() for m in metrics).alias("__n"))
        .filter(pl.col("__n") < min_readings)
    )
    return frame.join(short.select(entity), on=entity, how="anti") if short.height else frame


def _median_of_counts(values: np.ndarray, counts: np.ndarray) -> float | None:
    """The median of values given with their counts, as :func:`.prepare._median_gap` takes it.

    Example:
        >>> _median_of_counts(np.array([10, 3, 80]), np.array([2, 1, 1]))
        10.0
    """
    if values.size == 0:
        return None
    v, inverse = np.unique(values, return_inverse=True)
    c = np.bincount(inverse, weights=counts).astype(np.int64)
    n = int(c.sum())
    if n == 0:
        return None
    cum = np.cumsum(c)
    low = float(v[np.searchsorted(cum, (n - 1) // 2, side="right")])
    high = float(v[np.searchsorted(cum, n // 2, side="right")])
    return low + (high - low) / 2


def _interval(gaps: pl.DataFrame, dtype: pl.DataType) -> timedelta | None:
    """The sampling interval from per-device gap counts (:func:`_gaps`), as
    :func:`.prepare.sampling_interval` gives it for the same readings."""
    flat = gaps.select(pl.col("gap_values").explode(), pl.col("gap_counts").explode()).drop_nulls()
    med = _median_of_counts(flat["gap_values"].to_numpy(), flat["gap_counts"].to_numpy())
    unit = dtype.time_unit if isinstance(dtype, pl.Datetime) else "us"
    if med is None:
        return None
    gap = pl.Series([med], dtype=pl.Float64).cast(pl.Int64).cast(pl.Duration(unit)).item()
    return gap if isinstance(gap, timedelta) and gap > timedelta(0) else None


def interval_of(engine: Engine, readings: Any, entity: str, time: str) -> timedelta | None:
    """The fleet's sampling interval of prepared readings on the engine (the median gap
    between a device's consecutive readings), the per-device gaps counted by the engine;
    remembered per frame, so the stages of a run count them once."""
    try:
        return _INTERVALS[readings]
    except (KeyError, TypeError):
        pass
    gaps = engine.per_group(
        readings,
        entity,
        partial(ordered, func=partial(_gaps, entity=entity, time=time), by=[entity, time]),
    )
    found = _interval(gaps, engine.head(readings, 0).schema[time])
    try:
        _INTERVALS[readings] = found
    except TypeError:  # a frame that takes no weak reference: counted again next time
        pass
    return found


def _of_devices(batch: pl.DataFrame, *, entity: str, devices: list[str]) -> pl.DataFrame:
    return batch.filter(pl.col(entity).is_in(devices))


def devices_of(
    engine: Engine, readings: Any, entity: str, time: str, devices: Sequence[str]
) -> pl.DataFrame:
    """The readings of ``devices`` only, here, sorted by (device, time) as the local readings are.

    Example:
        >>> from opslens.core.engine import LocalEngine
        >>> r = pl.DataFrame({"d": ["b", "a", "a"], "t": [1, 2, 1]})
        >>> devices_of(LocalEngine(), r, "d", "t", ["a"]).rows()
        [('a', 1), ('a', 2)]
    """
    chosen = partial(_of_devices, entity=entity, devices=[str(d) for d in devices])
    return engine.collect(engine.map_batches(readings, chosen, keep=True)).sort(entity, time)


def _names(frame: pl.DataFrame, column: str, limit: int = 5) -> str:
    from opslens.recipes.fleet.prepare import _names as named

    return named(frame, column, limit)


def prepare_kept(ctx: StageContext, raw: Any, failure_table: pl.DataFrame | None) -> Out:
    """:func:`.prepare.prepare` on the engine: the same checks, policies, errors and facts from
    one summary row per device; the prepared readings left on the engine."""
    from opslens.recipes.fleet.prepare import _require_variation, failure_list, source_columns

    p: FleetParams = ctx.params
    engine = ctx.engine
    failure_list(p.failures, failure_table, str(ctx.analysis.columns.entity))
    where = ctx.source
    entity, time, metrics, peers = source_columns(ctx, engine.head(raw, 0))
    keys: dict[str, Any] = {"entity": entity, "time": time, "metrics": metrics, "peers": peers}
    # rows grouped by device as they come (their order numbered first); each call selects
    # and casts its rows, then works on whole devices: one pass of Python per step
    numbered = engine.numbered(raw, ORDER)
    selected = partial(_selected, **keys, where=where)
    summary = engine.per_group(
        numbered,
        entity,
        partial(_then, first=selected, then=partial(device_facts, **keys, duplicates=p.duplicates)),
    ).sort(entity)
    facts: dict[str, Any] = {
        "entity": entity,
        "time": time,
        "metrics": metrics,
        "rows_read": engine.height(raw),
    }
    n_dupes = int(summary["dupes"].sum())
    if n_dupes:
        if p.duplicates == "error":
            example = summary.filter(pl.col("dupes") > 0).row(0, named=True)
            raise DataError(
                f"{n_dupes} duplicate (device, timestamp) pair(s), e.g. device {example[entity]} at {example['dupe_time']}",
                fix="deduplicate the data, or set params.duplicates to mean, first or last",
            )
        facts["duplicates_merged"] = n_dupes
        facts["duplicates_policy"] = p.duplicates
    unsorted = summary.filter(pl.col("unsorted"))
    if unsorted.height:
        if p.unsorted == "error":
            raise DataError(
                f"time is not increasing within {unsorted.height} device(s) ({_names(unsorted, entity)})",
                fix="sort the data by device and time, or set params.unsorted: sort",
            )
        facts["devices_sorted"] = unsorted.height
    short = summary.filter(pl.min_horizontal(f"n__{m}" for m in metrics) < p.min_readings)
    if short.height:
        if p.short_devices == "error":
            raise DataError(
                f"{short.height} device(s) have fewer than {p.min_readings} readings of some metric ({_names(short, entity)})",
                fix="set params.short_devices: drop to leave them out, or lower params.min_readings (at least 2)",
            )
        facts["devices_dropped_short"] = short[entity].to_list()
    kept = summary.join(short.select(entity), on=entity, how="anti")
    n_devices = kept.height
    if n_devices < 3:
        raise DataError(
            f"only {n_devices} device(s) with enough readings; fleet analysis needs at least 3",
            fix="load more devices (or lower params.min_readings)",
        )
    ranges = pl.DataFrame(
        {m: [kept[f"lo__{m}"].min(), kept[f"hi__{m}"].max()] for m in metrics},
        schema={m: pl.Float64 for m in metrics},
    )
    _require_variation(ranges, metrics)
    unknown = (
        sorted(set(p.inspect.devices) - set(kept[entity].to_list())) if p.inspect.devices else []
    )
    if unknown:
        raise DataError(
            f"params.inspect.devices names '{unknown[0]}', which is not among the devices kept",
            fix="list ids of the device column (columns.entity) in params.inspect.devices",
        )
    rows = partial(device_rows, **keys, duplicates=p.duplicates, min_readings=p.min_readings)
    readings = engine.per_group(
        numbered, entity, partial(_then, first=selected, then=rows), keep=True
    )
    interval = _interval(kept, summary.schema["start"])
    n_readings = int(kept["rows"].sum())
    facts.update(
        devices=n_devices,
        readings=n_readings,
        start=kept["start"].min(),
        end=kept["end"].max(),
        median_interval_seconds=interval.total_seconds() if interval is not None else None,
        missing_share={m: float(int(kept[f"null__{m}"].sum()) / n_readings) for m in metrics},
    )
    return Out(
        values={"readings": readings},
        facts=facts,
        metrics={"devices": float(n_devices), "readings": float(n_readings)},
    )
