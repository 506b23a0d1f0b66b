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

from typing import Any

import polars as pl

from opslens.config import AnalysisConfig
from opslens.core.columns import require_columns, require_numeric
from opslens.core.recipe import Out, StageContext
from opslens.errors import ConfigError, DataError
from opslens.recipes.fleet.params import FleetParams

__all__ = ["check_columns", "prepare"]


def check_columns(analysis: AnalysisConfig) -> None:
    """ConfigError unless the device, time and metric columns are named."""
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


def _names(frame: pl.DataFrame, column: str, limit: int = 5) -> str:
    values = frame[column].cast(pl.String).to_list()
    return ", ".join(values[:limit]) + (
        f" and {len(values) - limit} more" if len(values) > limit else ""
    )


def prepare(ctx: StageContext, raw: pl.DataFrame) -> Out:
    """Select and check device, time and metric columns; apply the documented policies."""
    p: FleetParams = ctx.params
    cols = ctx.analysis.columns
    entity, time, metrics = str(cols.entity), str(cols.time), list(cols.metrics)
    where = ctx.source
    if entity not in raw.columns:
        raise DataError(
            f"device column '{entity}' (columns.entity) is not in {where} (columns: {', '.join(raw.columns[:15])})",
            fix="set columns.entity to the column that identifies each device",
        )
    require_columns(raw, [time, *metrics], where=where)
    frame = raw.select(pl.col(entity).cast(pl.String), time, *metrics)
    for m in metrics:
        frame = require_numeric(frame, m, where=where)
    frame = frame.filter(pl.col(entity).is_not_null() & pl.col(time).is_not_null())
    facts: dict[str, Any] = {
        "entity": entity,
        "time": time,
        "metrics": metrics,
        "rows_read": raw.height,
    }

    dupes = frame.group_by([entity, time]).len().filter(pl.col("len") > 1)
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
        ]
        frame = frame.group_by([entity, time], maintain_order=True).agg(agg).select(frame.columns)
        facts["duplicates_merged"] = dupes.height
        facts["duplicates_policy"] = p.duplicates

    unsorted = (
        frame.group_by(entity)
        .agg((pl.col(time).diff() < pl.duration(microseconds=0)).any().alias("bad"))
        .filter(pl.col("bad"))
        .sort(entity)
    )
    if unsorted.height:
        if p.unsorted == "error":
            raise DataError(
                f"time is not increasing within {unsorted.height} device(s) ({_names(unsorted, entity)})",
                fix="sort the data by device and time, or set params.unsorted: sort",
            )
        facts["devices_sorted"] = unsorted.height
    frame = frame.sort([entity, time], maintain_order=True)

    counts = frame.group_by(entity).agg(pl.col(m).is_not_null().sum().alias(m) for m in metrics)
    short = counts.filter(pl.min_horizontal(metrics) < p.min_readings).sort(entity)
    if short.height:
        if p.short_devices == "error":
            raise DataError(
                f"{short.height} device(s) have fewer than {p.min_readings} readings of some metric ({_names(short, entity)})",
                fix="set params.short_devices: drop to leave them out, or lower params.min_readings (at least 2)",
            )
        frame = frame.join(short.select(entity), on=entity, how="anti")
        facts["devices_dropped_short"] = short[entity].to_list()
    n_devices = frame[entity].n_unique()
    if n_devices < 3:
        raise DataError(
            f"only {n_devices} device(s) with enough readings; fleet analysis needs at least 3",
            fix="load more devices (or lower params.min_readings)",
        )
    span = frame.select(pl.col(time).min().alias("start"), pl.col(time).max().alias("end")).row(
        0, named=True
    )
    interval = frame.select(pl.col(time).diff().over(entity).median()).item()
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
