"""Describe and filter any table: the general-data functions the UI calls.

``describe_table`` gives one row per column. ``count`` is the number of
present values and ``nulls`` the missing ones; in float columns NaN counts as
missing. Numeric columns get mean/std (sample, ddof=1)/min/quartiles/max over
their present values; string, categorical and boolean columns get their most
frequent value (``top``, ties broken by the smallest value) and its count.

``filter_table`` keeps rows whose columns take one of the listed values
(``equals``), lie in closed ranges (``ranges``; ``None`` leaves a side open)
and whose ``time`` lies in ``[start, end]`` (both inclusive; ISO strings,
dates or datetimes; a naive moment is read in the column's time zone, and as
UTC for a numeric epoch-seconds column). Every condition must hold; a null
never matches.

Example:
    >>> import polars as pl
    >>> frame = pl.DataFrame({"site": ["a", "b", "a"], "temp": [1.0, None, 3.0]})
    >>> describe_table(frame).select("name", "count", "nulls", "mean", "top").rows()
    [('site', 3, 0, None, 'a'), ('temp', 2, 1, 2.0, None)]
    >>> filter_table(frame, equals={"site": ["a"]}, ranges={"temp": (2.0, None)}).height
    1
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING

import polars as pl

from opslens.core.frames import as_polars
from opslens.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["describe_table", "filter_table"]

_SCHEMA: dict[str, pl.DataType] = {
    "name": pl.String(),
    "dtype": pl.String(),
    "count": pl.Int64(),
    "nulls": pl.Int64(),
    "null_share": pl.Float64(),
    "unique": pl.Int64(),
    "mean": pl.Float64(),
    "std": pl.Float64(),
    "min": pl.Float64(),
    "p25": pl.Float64(),
    "median": pl.Float64(),
    "p75": pl.Float64(),
    "max": pl.Float64(),
    "top": pl.String(),
    "top_count": pl.Int64(),
}
_NUMERIC_STATS = ("mean", "std", "min", "p25", "median", "p75", "max")


def _missing_column(name: str, frame: pl.DataFrame, role: str) -> DataError:
    return DataError(
        f"{role} column {name!r} is not in the table (available: {', '.join(frame.columns)})",
        fix="name one of the available columns",
    )


def _present(name: str, dtype: pl.DataType) -> pl.Expr:
    """The column with NaN turned into null (for float columns)."""
    col = pl.col(name)
    return col.fill_nan(None) if dtype.is_float() else col


def describe_table(frame: pl.DataFrame | pd.DataFrame) -> pl.DataFrame:
    """Return one row of descriptive statistics per column of ``frame``.

    Example:
        >>> import polars as pl
        >>> d = describe_table(pl.DataFrame({"x": [1, 2, 3, 4]}))
        >>> d.select("unique", "min", "median", "max").row(0)
        (4, 1.0, 2.5, 4.0)
    """
    frame = as_polars(frame, what="frame")
    exprs: list[pl.Expr] = []
    for name, dtype in frame.schema.items():  # one set of expressions per column, one pass
        col = _present(name, dtype)
        exprs += [
            col.count().alias(f"{name}\0count"),
            col.drop_nulls().n_unique().alias(f"{name}\0unique"),
        ]
        if dtype.is_numeric():
            num = col.cast(pl.Float64)
            exprs += [
                num.mean().alias(f"{name}\0mean"),
                num.std().alias(f"{name}\0std"),
                num.min().alias(f"{name}\0min"),
                num.quantile(0.25, "linear").alias(f"{name}\0p25"),
                num.median().alias(f"{name}\0median"),
                num.quantile(0.75, "linear").alias(f"{name}\0p75"),
                num.max().alias(f"{name}\0max"),
            ]
        elif (
            dtype == pl.String or dtype == pl.Boolean or isinstance(dtype, pl.Categorical | pl.Enum)
        ):
            text = col.cast(pl.String).drop_nulls()
            top = text.mode().sort().first()
            exprs += [top.alias(f"{name}\0top"), (text == top).sum().alias(f"{name}\0top_count")]
    stats = frame.select(exprs).row(0, named=True) if exprs else {}
    n = frame.height
    rows: list[dict[str, object]] = []
    for name, dtype in frame.schema.items():
        count = int(stats[f"{name}\0count"])
        row: dict[str, object] = {
            "name": name,
            "dtype": str(dtype),
            "count": count,
            "nulls": n - count,
            "null_share": (n - count) / n if n else None,
            "unique": int(stats[f"{name}\0unique"]),
        }
        for key in (*_NUMERIC_STATS, "top", "top_count"):
            row[key] = stats.get(f"{name}\0{key}")
        rows.append(row)
    out = pl.DataFrame(rows, schema=_SCHEMA, orient="row")
    return out.with_columns(pl.col(s).fill_nan(None) for s in _NUMERIC_STATS)


def _as_datetime(value: datetime | date | str, side: str) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    try:
        return datetime.fromisoformat(value)
    except ValueError as err:
        raise DataError(
            f"{side}={value!r} is not a date or time",
            fix="write it as ISO 8601, e.g. 2024-01-31 12:00",
        ) from err


def _time_bound(value: datetime | date | str, side: str, dtype: pl.DataType) -> pl.Expr:
    moment = _as_datetime(value, side)
    if isinstance(dtype, pl.Datetime):
        if moment.tzinfo is not None and dtype.time_zone is not None:
            return pl.lit(moment).dt.convert_time_zone(dtype.time_zone).cast(dtype)
        if moment.tzinfo is not None:
            return pl.lit(moment).dt.convert_time_zone("UTC").dt.replace_time_zone(None).cast(dtype)
        naive = pl.lit(moment).cast(pl.Datetime(dtype.time_unit))
        return naive.dt.replace_time_zone(dtype.time_zone) if dtype.time_zone else naive
    if dtype == pl.Date:
        return pl.lit(moment.date())
    # numeric epoch seconds; a naive moment is read as UTC
    stamp = moment.timestamp() if moment.tzinfo else (moment - datetime(1970, 1, 1)).total_seconds()
    return pl.lit(stamp)


def filter_table(
    frame: pl.DataFrame | pd.DataFrame,
    *,
    equals: Mapping[str, Sequence[object]] | None = None,
    ranges: Mapping[str, tuple[float | None, float | None]] | None = None,
    time: str | None = None,
    start: datetime | date | str | None = None,
    end: datetime | date | str | None = None,
) -> pl.DataFrame:
    """Keep the rows matching every condition (values, closed ranges, a time window).

    Example:
        >>> import polars as pl
        >>> from datetime import datetime
        >>> frame = pl.DataFrame({"t": [datetime(2024, 1, d) for d in (1, 2, 3)], "v": [1, 2, 3]})
        >>> filter_table(frame, time="t", start="2024-01-02")["v"].to_list()
        [2, 3]
    """
    frame = as_polars(frame, what="frame")
    conditions: list[pl.Expr] = []
    for name, allowed in (equals or {}).items():
        if name not in frame.columns:
            raise _missing_column(name, frame, "filter")
        values = list(allowed)
        try:
            wanted = pl.Series(values, dtype=frame.schema[name], strict=False)
        except (TypeError, ValueError, pl.exceptions.PolarsError) as err:
            raise DataError(
                f"values {values!r} cannot be compared with column {name!r} ({frame.schema[name]})",
                fix=f"give values of the column's type for {name!r}",
            ) from err
        if wanted.null_count() > sum(v is None for v in values):
            raise DataError(
                f"some of {values!r} are not {frame.schema[name]} values of column {name!r}",
                fix=f"give values of the column's type for {name!r}",
            )
        conditions.append(pl.col(name).is_in(wanted.drop_nulls().implode(), nulls_equal=False))
    for name, (lo, hi) in (ranges or {}).items():
        if name not in frame.columns:
            raise _missing_column(name, frame, "range")
        if not frame.schema[name].is_numeric():
            raise DataError(
                f"range column {name!r} is {frame.schema[name]}, not numeric",
                fix="filter it with equals= or choose a numeric column",
            )
        col = _present(name, frame.schema[name])  # NaN is missing, never in a range
        if lo is not None:
            conditions.append(col >= lo)
        if hi is not None:
            conditions.append(col <= hi)
    if start is not None or end is not None:
        if time is None:
            raise DataError("start/end were given without a time column", fix="pass time=<column>")
        if time not in frame.columns:
            raise _missing_column(time, frame, "time")
        dtype = frame.schema[time]
        if (
            not (dtype.is_temporal() or dtype.is_numeric())
            or dtype == pl.Duration
            or dtype == pl.Time
        ):
            raise DataError(
                f"time column {time!r} is {dtype}, not a date, datetime or epoch seconds",
                fix=f"parse {time!r} to a datetime first",
            )
        if start is not None:
            conditions.append(pl.col(time) >= _time_bound(start, "start", dtype))
        if end is not None:
            conditions.append(pl.col(time) <= _time_bound(end, "end", dtype))
    if not conditions:
        return frame
    return frame.filter(pl.all_horizontal(conditions).fill_null(False))
