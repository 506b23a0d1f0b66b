"""The ``data-gen`` stage's work: events (generated or yours) → validated events, items, users.

Columns by role: ``columns.entity`` the user (default ``user_id``), ``columns.group``
the item (``item_id``), ``columns.target`` the event type (``event_type``),
``columns.time`` the timestamp (``timestamp``). Inside the recipe they are renamed
to those defaults. Timestamps with UTC offsets are converted to UTC (so
``10:00+02:00`` and ``08:00Z`` are the same instant); naive timestamps are read
as UTC; a column mixing naive and offset timestamps is refused.

Example:
    >>> from datetime import datetime
    >>> raw = pl.DataFrame({"user_id": ["a", "a"], "item_id": ["x", "x"],
    ...     "event_type": ["View", "purchase"], "timestamp": [datetime(2024, 1, 1), datetime(2024, 1, 2)]})
    >>> canonical_events(raw, EventColumns(), {})[0]["event_type"].to_list()
    ['view', 'purchase']
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from opslens.config import AnalysisConfig
from opslens.core.columns import parse_time, require_columns
from opslens.errors import DataError, OpslensWarning
from opslens.recipes.propensity.point_in_time import EVENT_KINDS

__all__ = [
    "EventColumns",
    "canonical_events",
    "check_columns",
    "event_columns",
    "item_table",
    "user_table",
]


@dataclass(frozen=True)
class EventColumns:
    """The source's column for each role."""

    user: str = "user_id"
    item: str = "item_id"
    event_type: str = "event_type"
    time: str = "timestamp"


def event_columns(analysis: AnalysisConfig) -> EventColumns:
    """The configured columns, defaults where ``columns:`` names none.

    Example:
        >>> a = AnalysisConfig.model_validate({"name": "p", "recipe": "propensity",
        ...     "source": {"kind": "memory"}, "columns": {"entity": "visitor"}})
        >>> event_columns(a).user, event_columns(a).item
        ('visitor', 'item_id')
    """
    c = analysis.columns
    return EventColumns(
        user=c.entity or "user_id",
        item=c.group or "item_id",
        event_type=c.target or "event_type",
        time=c.time or "timestamp",
    )


def check_columns(analysis: AnalysisConfig) -> None:
    """Nothing to check before loading: every role has a default (checked on the data)."""
    event_columns(analysis)


def canonical_events(
    raw: pl.DataFrame, cols: EventColumns, names: Mapping[str, str], where: str = "the events"
) -> tuple[pl.DataFrame, dict[str, int]]:
    """user_id, item_id, event_type (one of the four kinds), timestamp; unknown types counted.

    Event names are matched case-insensitively with ``-`` and spaces read as ``_``
    (``Add-To-Cart`` is ``add_to_cart``); ``names`` maps your own names first.
    """
    require_columns(raw, [cols.user, cols.item, cols.time], where=where)
    if cols.event_type not in raw.columns:
        raise DataError(
            f"the event-type column '{cols.event_type}' is not in {where} "
            f"(columns: {', '.join(raw.columns[:20])})",
            fix="name the event-type column under columns.target in project.yaml",
        )
    frame = parse_time(raw, cols.time, where=where)
    # normalise the few distinct names, then map every row (text work on 10^7 rows is slow)
    distinct = frame[cols.event_type].cast(pl.String).drop_nulls().unique()
    normal = pl.Series(distinct.replace(dict(names)) if names else distinct)
    normal = normal.str.to_lowercase().str.replace_all(r"[\s\-]+", "_")
    kind = pl.col(cols.event_type).cast(pl.String).replace(distinct, normal)
    out = frame.select(
        pl.col(cols.user).cast(pl.String).alias("user_id"),
        pl.col(cols.item).cast(pl.String).alias("item_id"),
        kind.alias("event_type"),
        pl.col(cols.time).alias("timestamp"),
    )
    known = pl.col("event_type").is_in(list(EVENT_KINDS))
    unknown = out.filter(~known)["event_type"].fill_null("<empty>").value_counts(sort=True)
    counts = dict(zip(unknown["event_type"].to_list(), unknown["count"].to_list(), strict=True))
    out = out.filter(known)
    for column, name, key in (
        ("user_id", cols.user, "columns.entity"),
        ("item_id", cols.item, "columns.group"),
        ("timestamp", cols.time, "columns.time"),
    ):
        if out.height and out[column].null_count() == out.height:
            raise DataError(
                f"every event of {where} has a null '{name}' (the {column.replace('_', ' ')} "
                f"column, {key})",
                fix=f"fill column '{name}', or name the column that holds them in {key}",
            )
    out = out.drop_nulls(["user_id", "item_id", "timestamp"])
    if out.height == 0:
        raise DataError(
            f"no events of {where} are of a known type ({', '.join(EVENT_KINDS)})",
            fix="map your event names with params.event_names",
        )
    if out.filter(pl.col("event_type") == "purchase").height == 0:
        raise DataError(
            f"{where} holds no purchase events, so there is nothing to predict",
            fix="include purchases, or map your purchase event with params.event_names",
        )
    return out, counts


_FIX = {
    "item": "point params.items.path at the table that lists every item, or set params.items.id_column",
    "user": "point params.users.path at the table that lists every user, or set params.users.id_column",
}


def _mismatch(kind: str, missing: pl.Series, path: object) -> DataError:
    return DataError(
        f"{missing.len()} {kind}s in the events are not in the {kind} table {path} "
        f"(such as {', '.join(repr(v) for v in missing.head(3).to_list())})",
        fix=_FIX[kind],
    )


def item_table(
    events: pl.DataFrame,
    raw: pl.DataFrame,
    table: pl.DataFrame | None,
    cols: EventColumns,
    id_column: str | None,
    path: object,
    columns: Mapping[Any, str] | None = None,
) -> pl.DataFrame:
    """item_id, category, price, discount: from the item table, else the events' columns;
    ``columns`` (``params.items.columns``) names the table's own column of a role. An item
    table with a ``valid_from`` column is a price history (one row per item and time,
    kept; the features read it as of each prediction time).

    Example:
        >>> ev = pl.DataFrame({"item_id": ["x"]})
        >>> t = pl.DataFrame({"item_id": ["x"], "categoryid": [7]})
        >>> item_table(ev, ev, t, EventColumns(), None, "items.csv", {"category": "categoryid"})["category"].to_list()
        ['7']
    """
    if table is not None:
        key = id_column or (cols.item if cols.item in table.columns else table.columns[0])
        require_columns(table, [key], where=f"the item table {path}")
        table = _mapped(table, columns or {}, f"the item table {path}", key)
        source = table.rename({key: "item_id"}).with_columns(pl.col("item_id").cast(pl.String))
        missing = events.select("item_id").unique().join(source, on="item_id", how="anti")
        if missing.height:
            raise _mismatch("item", missing["item_id"].sort(), path)
    else:
        raw = _mapped(raw, columns or {}, "the events", cols.item)
        present = [c for c in ("category", "price", "discount") if c in raw.columns]
        source = raw.select(pl.col(cols.item).cast(pl.String).alias("item_id"), *present)
    dated = table is not None and "valid_from" in source.columns
    if dated:  # a price history: one row per item and valid_from, read as of each time
        source = parse_time(source, "valid_from", where=f"the item table {path}")
        source = source.with_columns(pl.col("valid_from").dt.replace_time_zone(None))
    items = source.unique(
        ["item_id", "valid_from"] if dated else "item_id", keep="first", maintain_order=True
    )
    return (
        items.select(
            "item_id",
            *(["valid_from"] if dated else []),
            (
                pl.col("category").cast(pl.String)
                if "category" in items.columns
                else pl.lit(None, pl.String)
            )
            .fill_null("unknown")
            .alias("category"),
            (
                pl.col("price").cast(pl.Float64)
                if "price" in items.columns
                else pl.lit(None, pl.Float64)
            ).alias("price"),
            (pl.col("discount").cast(pl.Float64) if "discount" in items.columns else pl.lit(0.0))
            .fill_null(0.0)
            .alias("discount"),
        )
        .join(events.select("item_id").unique(), on="item_id", how="semi")
        .sort(["item_id", "valid_from"] if dated else "item_id")
    )


def _mapped(frame: pl.DataFrame, columns: Mapping[Any, str], where: str, key: str) -> pl.DataFrame:
    """``frame`` with each mapped column renamed to its role; a mapping naming a column
    the frame lacks is a warning naming it (the role is then read as if unmapped)."""
    renames = {}
    for role, column in columns.items():
        if column in frame.columns and column != key:
            renames[column] = role
        elif column != role:
            warnings.warn(
                f"params.items.columns maps {role} to '{column}', which {where} does not have "
                f"(columns: {', '.join(frame.columns[:12])}); {role} is read as if unmapped",
                OpslensWarning,
                stacklevel=3,
            )
    if not renames:
        return frame
    return frame.drop(r for r in renames.values() if r in frame.columns).rename(renames)


def user_table(
    events: pl.DataFrame,
    raw: pl.DataFrame,
    table: pl.DataFrame | None,
    cols: EventColumns,
    id_column: str | None,
    path: object,
) -> pl.DataFrame:
    """One row per user: persona (where known), events, first and last seen."""
    seen = events.group_by("user_id").agg(
        events=pl.len(), first_seen=pl.col("timestamp").min(), last_seen=pl.col("timestamp").max()
    )
    if table is not None:
        key = id_column or (cols.user if cols.user in table.columns else table.columns[0])
        require_columns(table, [key], where=f"the user table {path}")
        given = table.rename({key: "user_id"}).with_columns(pl.col("user_id").cast(pl.String))
        missing = seen.select("user_id").join(given, on="user_id", how="anti")
        if missing.height:
            raise _mismatch("user", missing["user_id"].sort(), path)
        return seen.join(given.unique("user_id", keep="first"), on="user_id", how="left").sort(
            "user_id"
        )
    if "persona" in raw.columns:
        persona = raw.select(pl.col(cols.user).cast(pl.String).alias("user_id"), "persona").unique(
            "user_id", keep="first"
        )
        seen = seen.join(persona, on="user_id", how="left")
    return seen.sort("user_id")
