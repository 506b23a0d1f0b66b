"""Shape a loaded table: LONG→WIDE pivot and the time window.

Example:
    >>> import polars as pl
    >>> long = pl.DataFrame({"id": [1, 1, 2, 2], "var": ["a", "b", "a", "b"], "val": [1.0, 2.0, 3.0, 4.0]})
    >>> to_wide(long, index=["id"], key="var", value="val").columns
    ['id', 'a', 'b']
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import polars as pl

from opslens.core.columns import require_columns
from opslens.errors import DataError

__all__ = ["apply_window", "to_wide"]


def to_wide(frame: pl.DataFrame, *, index: Sequence[str], key: str, value: str) -> pl.DataFrame:
    """Pivot a LONG table (one row per index × key) to WIDE (a column per key).

    Duplicated (index, key) pairs are an error rather than silently averaged.

    Example:
        >>> long = pl.DataFrame({"id": [1, 1], "var": ["a", "a"], "val": [1.0, 2.0]})
        >>> to_wide(long, index=["id"], key="var", value="val")
        Traceback (most recent call last):
        ...
        opslens.errors.DataError: the LONG table has 1 repeated (id, var) pair(s), e.g. {'id': 1, 'var': 'a'}; fix: make source.long.index identify one row per key, or deduplicate the data
    """
    require_columns(frame, [*index, key, value], where="the LONG table")
    dupes = frame.group_by([*index, key]).len().filter(pl.col("len") > 1)
    if dupes.height:
        example = dupes.drop("len").row(0, named=True)
        raise DataError(
            f"the LONG table has {dupes.height} repeated ({', '.join([*index, key])}) pair(s), e.g. {example}",
            fix="make source.long.index identify one row per key, or deduplicate the data",
        )
    wide = frame.pivot(on=key, index=list(index), values=value, aggregate_function=None)
    return _numbers_from_text(wide, exclude=index).sort(list(index))


def _numbers_from_text(frame: pl.DataFrame, *, exclude: Sequence[str]) -> pl.DataFrame:
    """Cast text columns whose every value is a number (LONG values pivoted from text)."""
    casts = []
    for name, dtype in frame.schema.items():
        if dtype == pl.String and name not in exclude:
            as_float = frame[name].cast(pl.Float64, strict=False)
            if as_float.null_count() == frame[name].null_count():
                casts.append(as_float.alias(name))
    return frame.with_columns(casts) if casts else frame


def apply_window(
    frame: pl.DataFrame, time: str, *, start: datetime | None = None, end: datetime | None = None
) -> pl.DataFrame:
    """Keep rows with ``start <= time < end``; a tz-aware bound is read as UTC.

    Example:
        >>> from datetime import UTC, datetime
        >>> from opslens.core.columns import parse_time
        >>> f = parse_time(pl.DataFrame({"t": [0, 60, 120]}), "t")
        >>> apply_window(f, "t", start=datetime(1970, 1, 1, 0, 1)).height
        2
    """
    if start is not None:
        frame = frame.filter(pl.col(time) >= _naive_utc(start))
    if end is not None:
        frame = frame.filter(pl.col(time) < _naive_utc(end))
    return frame


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
