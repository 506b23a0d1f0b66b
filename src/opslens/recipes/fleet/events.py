"""Maintenance and error events: ``(device, time, kind)`` rows from a second source.

``params.events`` names the file (CSV or Parquet, read by the runner) and its columns.
A repair (a kind in ``params.events.resets``) resets the device's own baseline: the
change scores and the warning rule compare a repaired device with its post-repair self.
Per kind, each device's event count and days since its last event join the risk table.

Example:
    >>> from datetime import datetime
    >>> from pathlib import Path
    >>> t = pl.DataFrame({"device_id": ["a", "a", "b"], "time": [datetime(2024, 1, 3),
    ...     datetime(2024, 1, 9), datetime(2024, 1, 5)], "kind": ["error", "repair", "error"]})
    >>> p = EventParams(path=Path("events.csv"))
    >>> ev = event_list(p, t, "device_id")
    >>> event_features(ev, "device_id", end=date(2024, 1, 10)).sort("device_id").rows()
    [('a', 1, 7, 1, 1), ('b', 1, 5, 0, None)]
"""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

from opslens.core.columns import parse_time
from opslens.errors import DataError
from opslens.recipes.fleet.daily import DailyPanel
from opslens.recipes.fleet.params import EventParams

__all__ = ["event_features", "event_list", "reset_days"]


def event_list(p: EventParams, table: pl.DataFrame, entity: str) -> pl.DataFrame:
    """The events as (entity, time, kind) with string ids; a missing column names its key."""
    where = f"the event list {p.path} (params.events.path)"
    shown = ", ".join(table.columns[:10])
    id_col = p.id_column or entity
    for key, col in (
        ("id_column", id_col),
        ("time_column", p.time_column),
        ("kind_column", p.kind_column),
    ):
        if col not in table.columns:
            raise DataError(
                f"column '{col}' (params.events.{key}) is not in {where} (columns: {shown})",
                fix=f"set params.events.{key} to the event list's column",
            )
    frame = parse_time(
        table.select(id_col, p.time_column, p.kind_column), p.time_column, where=where
    )
    return frame.select(
        pl.col(id_col).cast(pl.String).alias(entity),
        pl.col(p.time_column).cast(pl.Datetime("us")).alias("time"),
        pl.col(p.kind_column).cast(pl.String).alias("kind"),
    ).drop_nulls()


def reset_days(
    events: pl.DataFrame, panel: DailyPanel, *, entity: str, kinds: list[str]
) -> np.ndarray:
    """Per panel row: the day index of the device's last reset event (0 without one)."""
    out = np.zeros(panel.devices.size, dtype=np.int64)
    if events.is_empty():
        return out
    last = (
        events.filter(pl.col("kind").is_in(kinds))
        .group_by(entity)
        .agg(pl.col("time").max().dt.date().alias("day"))
    )
    index = {str(d): i for i, d in enumerate(panel.devices)}
    for dev, day in last.iter_rows():
        if dev in index:
            d = int((np.datetime64(day, "D") - panel.days[0]).astype(np.int64))
            out[index[dev]] = min(max(d, 0), panel.days.size - 1)
    return out


def event_features(events: pl.DataFrame, entity: str, *, end: date) -> pl.DataFrame:
    """Per device, per kind: ``events_<kind>`` (count) and ``days_since_<kind>`` at ``end``."""
    kinds = sorted(events["kind"].unique().to_list())
    agg = []
    for k in kinds:
        mine = pl.col("kind") == k
        agg += [
            mine.sum().cast(pl.Int64).alias(f"events_{k}"),
            (pl.lit(end) - pl.col("time").filter(mine).max().dt.date())
            .dt.total_days()
            .alias(f"days_since_{k}"),
        ]
    return events.group_by(entity).agg(agg)
