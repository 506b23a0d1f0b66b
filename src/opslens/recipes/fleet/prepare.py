"""The fleet recipe's ``prepare`` stage: columns checked, data policies applied.

Duplicate (device, timestamp) pairs, time going backwards within a device and
devices with too few readings stop the run by default; ``params.duplicates``,
``params.unsorted`` and ``params.short_devices`` accept them instead.

Example:
    >>> from opslens.config import AnalysisConfig
    >>> cfg = AnalysisConfig.model_validate({"name": "f", "recipe": "fleet",
    ...     "source": {"kind": "memory"}, "columns": {"entity": "device_id"}})
    >>> check_columns(cfg)
    Traceback (most recent call last):
    ...
    opslens.errors.ConfigError: analysis 'f' (fleet) needs columns.time, columns.metrics; fix: name the device id column (entity), the timestamp (time) and one or more metric columns
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from opslens.config import AnalysisConfig
from opslens.core.columns import parse_time, require_columns, require_numeric
from opslens.core.recipe import Out, StageContext
from opslens.errors import ConfigError, DataError
from opslens.recipes.fleet.params import FailureParams, FleetParams

__all__ = ["check_columns", "failure_list", "prepare", "sampling_interval"]

_TIME_COLUMNS = ("failure_time", "failed_at", "failure_date")


_FAILURE_SUFFIXES = (".csv", ".parquet", ".pq")


def check_columns(analysis: AnalysisConfig) -> None:
    """ConfigError, before any work, unless columns and the failure list's path make sense.

    The device, time and metric columns must be named, distinct, and the
    ``params.inspect.metrics`` among the metrics; ``params.failures.path``, when
    set, must be a CSV or Parquet file (its contents are checked by ``prepare``,
    the first stage).
    """
    cols = analysis.columns
    missing = [
        role for role, value in (("entity", cols.entity), ("time", cols.time)) if value is None
    ]
    if missing or not cols.metrics:
        need = [*(f"columns.{m}" for m in missing), *([] if cols.metrics else ["columns.metrics"])]
        raise ConfigError(
            f"analysis '{analysis.name}' (fleet) needs {', '.join(need)}",
            fix="name the device id column (entity), the timestamp (time) and one or more metric columns",
        )
    for role, name in (
        ("entity", cols.entity),
        ("time", cols.time),
        ("group", cols.group),
        ("peer_group", cols.peer_group),
    ):
        if name is not None and name in cols.metrics:
            raise ConfigError(
                f"column '{name}' is both columns.{role} and one of columns.metrics",
                fix=f"remove '{name}' from columns.metrics (metrics are the measured values)",
            )
    dupes = sorted({m for m in cols.metrics if cols.metrics.count(m) > 1})
    if dupes:
        raise ConfigError(
            f"columns.metrics lists '{dupes[0]}' more than once",
            fix="list each metric column once in columns.metrics",
        )
    p = analysis.params if isinstance(analysis.params, FleetParams) else None
    if p is None:
        return
    odd_limits = [m for m in p.limits if m not in cols.metrics]
    if odd_limits:
        raise ConfigError(
            f"params.limits names '{odd_limits[0]}', which is not one of columns.metrics "
            f"({', '.join(cols.metrics)})",
            fix="give params.limits only for metrics of columns.metrics",
        )
    odd = [m for m in p.inspect.metrics if m not in cols.metrics]
    if odd:
        raise ConfigError(
            f"params.inspect.metrics names '{odd[0]}', which is not one of columns.metrics "
            f"({', '.join(cols.metrics)})",
            fix="list metrics of columns.metrics in params.inspect.metrics, or remove the key",
        )
    path = p.failures.path
    if path is None:
        return
    if not path.exists():
        raise ConfigError(
            f"the failure list {path} (params.failures.path) does not exist",
            fix="set params.failures.path to an existing CSV or Parquet file (relative paths "
            "start at the project file's folder), or remove it",
        )
    if not path.is_file():
        raise ConfigError(
            f"the failure list {path} (params.failures.path) is not a file",
            fix="set params.failures.path to a CSV or Parquet file, not a folder",
        )
    if path.suffix.lower() not in _FAILURE_SUFFIXES:
        raise ConfigError(
            f"the failure list {path} (params.failures.path) is neither .csv nor .parquet",
            fix="save the failure list as CSV or Parquet and point params.failures.path at it",
        )


def failure_list(
    p: FailureParams, table: pl.DataFrame | None, entity: str
) -> tuple[set[str], dict[str, datetime]]:
    """Failed device ids (``params.failures.ids`` and the list's table) and failure times.

    The id column is ``params.failures.id_column``, else the device column
    (``columns.entity``), else the only column of a one-column list; the time column ``params.failures.time_column``, else
    one of failure_time, failed_at, failure_date if present. A list without
    rows, or naming columns it lacks, is a DataError naming the key to fix.

    Example:
        >>> table = pl.DataFrame({"device_id": ["d1"], "failure_time": ["2026-01-02T00:00:00"]})
        >>> ids, times = failure_list(FailureParams(ids=["d2"]), table, "device_id")
        >>> sorted(ids), list(times)
        (['d1', 'd2'], ['d1'])
    """
    ids = {str(i) for i in p.ids}
    times: dict[str, datetime] = {}
    if table is None:
        return ids, times
    where = f"the failure list {p.path} (params.failures.path)" if p.path else "the failure list"
    shown = ", ".join(table.columns[:10])
    if p.id_column is not None and p.id_column not in table.columns:
        raise DataError(
            f"column '{p.id_column}' (params.failures.id_column) is not in {where} (columns: {shown})",
            fix="set params.failures.id_column to the column holding the failed devices' ids",
        )
    id_col = p.id_column or (
        entity if entity in table.columns else table.columns[0] if table.width == 1 else None
    )
    if id_col is None:
        raise DataError(
            f"{where} has no column '{entity}' (columns.entity) (columns: {shown})",
            fix="name its id column in params.failures.id_column",
        )
    if p.time_column is not None and p.time_column not in table.columns:
        raise DataError(
            f"column '{p.time_column}' (params.failures.time_column) is not in {where} "
            f"(columns: {shown})",
            fix="set params.failures.time_column to the failure-time column, or remove it",
        )
    table = table.filter(pl.col(id_col).is_not_null())
    if table.height == 0:
        raise DataError(
            f"{where} has no failed device ids (a header only, or an empty '{id_col}' column)",
            fix="add one row per failed device, or remove params.failures.path",
        )
    ids |= set(table[id_col].cast(pl.String).to_list())
    time_col = p.time_column or next((c for c in _TIME_COLUMNS if c in table.columns), None)
    if time_col is not None:
        try:
            parsed = parse_time(table, time_col, where=where)
        except DataError as e:
            raise DataError(
                e.problem,
                fix="write failure times as ISO 8601 (2026-01-02T06:00:00) in the column "
                "named by params.failures.time_column",
            ) from None
        times = {
            str(i): t
            for i, t in zip(parsed[id_col].cast(pl.String), parsed[time_col], strict=True)
            if t is not None
        }
    return ids, times


def _names(frame: pl.DataFrame, column: str, limit: int = 5) -> str:
    values = frame[column].cast(pl.String).to_list()
    return ", ".join(values[:limit]) + (
        f" and {len(values) - limit} more" if len(values) > limit else ""
    )


def sampling_interval(readings: pl.DataFrame, entity: str, time: str) -> timedelta | None:
    """The fleet's sampling interval: the median gap between a device's consecutive readings.

    Example:
        >>> from datetime import datetime, timedelta
        >>> r = pl.DataFrame({"d": ["a", "a", "a", "b", "b"], "t": [datetime(2026, 1, 1, h)
        ...     for h in (0, 1, 2, 0, 1)]})
        >>> sampling_interval(r, "d", "t")
        datetime.timedelta(seconds=3600)
    """
    if _in_order(readings, entity, time):  # each device's rows together: no grouping needed
        times = readings.get_column(time)
        starts = np.cumsum(readings.get_column(entity).rle().struct.field("len").to_numpy())[:-1]
        med = _median_gap(times.to_physical().to_numpy(), starts)
        unit = times.dtype.time_unit if isinstance(times.dtype, pl.Datetime) else "us"
        gap = (
            None
            if med is None
            else pl.Series([med], dtype=pl.Float64)
            .cast(pl.Int64)
            .cast(pl.Duration(unit))  # as polars' median of a duration: truncated
            .item()
        )
    else:
        gap = readings.select(pl.col(time).diff().over(entity).median()).item()
    return gap if isinstance(gap, timedelta) and gap > timedelta(0) else None


def _median_gap(stamp: np.ndarray, starts: np.ndarray, chunk: int = 5_000_000) -> float | None:
    """The median of ``stamp``'s consecutive differences, leaving out those into ``starts``
    (each device's first row), counted ``chunk`` rows at a time: no copy of the whole column.

    Example:
        >>> _median_gap(np.array([0, 10, 20, 100, 103]), np.array([3]), chunk=2)
        10.0
    """
    values: list[np.ndarray] = []
    counts: list[np.ndarray] = []
    for lo in range(1, stamp.size, chunk):
        hi = min(lo + chunk, stamp.size)
        gaps = stamp[lo:hi] - stamp[lo - 1 : hi - 1]
        first = starts[(starts >= lo) & (starts < hi)] - lo
        keep = np.ones(gaps.size, dtype=bool)
        keep[first] = False
        v, c = np.unique(gaps[keep], return_counts=True)
        values.append(v)
        counts.append(c)
    if not values:
        return None
    v, inverse = np.unique(np.concatenate(values), return_inverse=True)
    c = np.bincount(inverse, weights=np.concatenate(counts)).astype(np.int64)
    n = int(c.sum())
    if n == 0:
        return None
    cum = np.cumsum(c)
    low = float(v[np.searchsorted(cum, (n - 1) // 2, side="right")])
    high = float(v[np.searchsorted(cum, n // 2, side="right")])
    return low + (high - low) / 2


def _require_variation(frame: pl.DataFrame, metrics: list[str]) -> None:
    """DataError when every metric holds one value (or none) across the whole fleet."""
    values = [pl.col(m).drop_nulls().drop_nans() for m in metrics]
    spread = frame.select(*(v.min() < v.max() for v in values))  # no hash set of every value
    if not any(spread.row(0)):
        raise DataError(
            f"every metric ({', '.join(metrics)}) is constant across the whole fleet, so no "
            "device can behave differently from another",
            fix="check the source (a stuck sensor or a wrong column?) or name varying columns "
            "in columns.metrics",
        )


def _in_order(frame: pl.DataFrame, entity: str, time: str) -> bool:
    """Whether ``frame`` is sorted by (device, time) already (the usual export order).

    Checked on the run-length encoding of the ids and the raw time stamps, so a
    large fleet is not copied, hashed or sorted to find out.
    """
    runs = frame.get_column(entity).rle()
    ids = runs.struct.field("value")
    if ids.len() > 1 and not bool((ids.slice(1) > ids.slice(0, ids.len() - 1)).all()):
        return False
    stamp = frame.get_column(time).to_physical().to_numpy()
    back = stamp[1:] < stamp[:-1]
    back[np.cumsum(runs.struct.field("len").to_numpy())[:-1] - 1] = False  # a device starts
    return not bool(back.any())


def _reading_counts(frame: pl.DataFrame, entity: str, metrics: list[str]) -> pl.DataFrame:
    """Readings per device and metric (non-null values), from the runs of a frame whose
    devices' rows are contiguous (``prepare`` sorts first): no hash table over every row (at 100 million rows a ``group_by`` held 7 GB).

    Example:
        >>> f = pl.DataFrame({"d": ["a", "a", "b"], "v": [1.0, None, 2.0]})
        >>> _reading_counts(f, "d", ["v"]).rows()
        [('a', 1), ('b', 1)]
    """
    runs = frame.get_column(entity).rle()
    lengths = runs.struct.field("len").to_numpy().astype(np.int64)
    starts = np.concatenate([np.zeros(1, dtype=np.int64), np.cumsum(lengths)[:-1]])
    return pl.DataFrame(
        [
            runs.struct.field("value").alias(entity),
            *(
                pl.Series(
                    m,
                    np.add.reduceat(frame.get_column(m).is_not_null().to_numpy(), starts),
                    dtype=pl.UInt32,
                )
                for m in metrics
            ),
        ]
    )


def _duplicates(frame: pl.DataFrame, entity: str, time: str) -> pl.DataFrame:
    """The (device, time) pairs held by more than one row of a frame sorted by (device, time).

    Duplicates are neighbours once sorted: no hash table over every pair.
    """
    runs = frame.get_column(entity).rle()
    stamp = frame.get_column(time).to_physical().to_numpy()
    same = np.zeros(stamp.size, dtype=bool)
    same[1:] = stamp[1:] == stamp[:-1]
    same[np.cumsum(runs.struct.field("len").to_numpy())[:-1]] = False  # a device starts
    first = same.copy()
    first[1:] &= ~same[:-1]  # the first repeat of each duplicated pair
    return frame.filter(pl.Series(first)).select(entity, time)


def source_columns(ctx: Any, frame: pl.DataFrame) -> tuple[str, str, list[str], list[str]]:
    """The device, time, metric and peer-group columns, checked against the source's (``frame``
    may hold no rows).

    The peer groups (``columns.group``, ``columns.peer_group``) ride along for the change
    scores. A missing column is refused with one line naming its config key.

    Example:
        >>> from types import SimpleNamespace as NS
        >>> cols = NS(entity="unit", time="ts", metrics=["temp"], group=None, peer_group=None)
        >>> ctx = NS(analysis=NS(columns=cols), source="readings.csv")
        >>> source_columns(ctx, pl.DataFrame(schema=["unit", "ts", "temp"]))
        ('unit', 'ts', ['temp'], [])
    """
    cols = ctx.analysis.columns
    entity, time, metrics = str(cols.entity), str(cols.time), list(cols.metrics)
    where, present = ctx.source, frame.columns
    if entity not in present:
        raise DataError(
            f"device column '{entity}' (columns.entity) is not in {where} (columns: {', '.join(present[:15])})",
            fix="set columns.entity to the column that identifies each device",
        )
    peers = list(
        dict.fromkeys(
            str(g) for g in (cols.group, cols.peer_group) if g and g not in (entity, time)
        )
    )
    if cols.peer_group and cols.peer_group not in present:
        raise DataError(
            f"columns.peer_group names '{cols.peer_group}', which is not in {where} "
            f"(columns: {', '.join(present[:15])})",
            fix="set columns.peer_group to the column that groups comparable devices "
            "(site, model, firmware), or remove it",
        )
    require_columns(frame, [time, *metrics, *peers], where=where)
    return entity, time, metrics, peers


def prepare(ctx: StageContext, raw: pl.DataFrame, failure_table: pl.DataFrame | None) -> Out:
    """Check the failure list and the device, time and metric columns; apply the policies.

    A fleet whose every metric is constant stops here: no device can differ.
    """
    if ctx.engine.distributed:  # the readings stay on the engine (.kept)
        from opslens.recipes.fleet.kept import prepare_kept

        return prepare_kept(ctx, raw, failure_table)
    p: FleetParams = ctx.params
    failure_list(p.failures, failure_table, str(ctx.analysis.columns.entity))
    entity, time, metrics, peers = source_columns(ctx, raw)
    where = ctx.source
    frame = raw.select(pl.col(entity).cast(pl.String), time, *metrics, *peers)
    for m in metrics:
        frame = require_numeric(frame, m, where=where)
    if frame[entity].null_count() or frame[time].null_count():  # no copy when there are none
        frame = frame.filter(pl.col(entity).is_not_null() & pl.col(time).is_not_null())
    facts: dict[str, Any] = {
        "entity": entity,
        "time": time,
        "metrics": metrics,
        "rows_read": raw.height,
    }

    in_order = _in_order(frame, entity, time)
    unsorted = (
        frame.head(0).group_by(entity).agg(pl.lit(True).alias("bad"))
        if in_order  # sorted by (device, time): no device goes back in time
        else frame.group_by(entity)
        .agg((pl.col(time).diff() < pl.duration(microseconds=0)).any().alias("bad"))
        .filter(pl.col("bad"))
        .sort(entity)
    )
    if not in_order:
        frame = frame.sort([entity, time], maintain_order=True)
    # duplicates are neighbours once sorted: no hash table over every (device, time) pair
    dupes = _duplicates(frame, entity, time)
    if dupes.height:
        if p.duplicates == "error":
            example = dupes.row(0, named=True)
            raise DataError(
                f"{dupes.height} duplicate (device, timestamp) pair(s), e.g. device {example[entity]} at {example[time]}",
                fix="deduplicate the data, or set params.duplicates to mean, first or last",
            )
        agg = [
            pl.col(m).mean() if p.duplicates == "mean" else getattr(pl.col(m), p.duplicates)()
            for m in metrics
        ] + [pl.col(g).first() for g in peers]
        frame = frame.group_by([entity, time], maintain_order=True).agg(agg).select(frame.columns)
        facts["duplicates_merged"] = dupes.height
        facts["duplicates_policy"] = p.duplicates
    if unsorted.height:
        if p.unsorted == "error":
            raise DataError(
                f"time is not increasing within {unsorted.height} device(s) ({_names(unsorted, entity)})",
                fix="sort the data by device and time, or set params.unsorted: sort",
            )
        facts["devices_sorted"] = unsorted.height

    counts = _reading_counts(frame, entity, metrics)
    short = counts.filter(pl.min_horizontal(metrics) < p.min_readings).sort(entity)
    if short.height:
        if p.short_devices == "error":
            raise DataError(
                f"{short.height} device(s) have fewer than {p.min_readings} readings of some metric ({_names(short, entity)})",
                fix="set params.short_devices: drop to leave them out, or lower params.min_readings (at least 2)",
            )
        frame = frame.join(short.select(entity), on=entity, how="anti")
        facts["devices_dropped_short"] = short[entity].to_list()
    n_devices = counts.height - short.height  # the short ones are dropped or raised
    if n_devices < 3:
        raise DataError(
            f"only {n_devices} device(s) with enough readings; fleet analysis needs at least 3",
            fix="load more devices (or lower params.min_readings)",
        )
    _require_variation(frame, metrics)
    unknown = (
        sorted(set(p.inspect.devices) - set(frame[entity].unique().to_list()))
        if p.inspect.devices
        else []
    )
    if unknown:
        raise DataError(
            f"params.inspect.devices names '{unknown[0]}', which is not among the devices kept",
            fix="list ids of the device column (columns.entity) in params.inspect.devices",
        )
    span = frame.select(pl.col(time).min().alias("start"), pl.col(time).max().alias("end")).row(
        0, named=True
    )
    interval = sampling_interval(frame, entity, time)
    facts.update(
        devices=n_devices,
        readings=frame.height,
        start=span["start"],
        end=span["end"],
        median_interval_seconds=interval.total_seconds() if interval is not None else None,
        missing_share={m: float(frame[m].is_null().mean() or 0.0) for m in metrics},  # type: ignore[arg-type]
    )
    return Out(
        values={"readings": frame},
        facts=facts,
        metrics={"devices": float(n_devices), "readings": float(frame.height)},
    )
