"""The one column check: required columns, numeric targets, the time axis.

Every recipe checks its configured columns through these, so a missing or
mistyped column reads the same everywhere.

Example:
    >>> import polars as pl
    >>> require_columns(pl.DataFrame({"a": [1]}), ["a"], where="t.csv")
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import polars as pl

from opslens.errors import DataError

__all__ = [
    "MAX_MAGNITUDE",
    "check_magnitude",
    "parse_time",
    "require_columns",
    "require_numeric",
]

MAX_MAGNITUDE = 1e100
"""Numbers beyond this are refused (or their rows dropped): squares and sums of them overflow."""


def require_columns(frame: pl.DataFrame, names: Sequence[str | None], *, where: str) -> None:
    """DataError naming the first configured column that the frame lacks.

    Example:
        >>> require_columns(pl.DataFrame({"a": [1]}), ["b"], where="trips.csv")
        Traceback (most recent call last):
        ...
        opslens.errors.DataError: column 'b' is not in trips.csv (columns: a); fix: name an existing column under columns: in project.yaml
    """
    for name in names:
        if name is not None and name not in frame.columns:
            shown = ", ".join(frame.columns[:20]) + (" ..." if frame.width > 20 else "")
            raise DataError(
                f"column '{name}' is not in {where} (columns: {shown})",
                fix="name an existing column under columns: in project.yaml",
            )


def check_magnitude(frame: pl.DataFrame, names: Sequence[str], *, where: str) -> None:
    """DataError for the first numeric column with an infinite value or a magnitude beyond
    :data:`MAX_MAGNITUDE` (nulls and NaN are left to the caller).

    Example:
        >>> check_magnitude(pl.DataFrame({"x": [1.0, -2e305]}), ["x"], where="t.csv")
        Traceback (most recent call last):
        ...
        opslens.errors.DataError: column 'x' in t.csv has a value of magnitude 2e+305, beyond 1e+100; fix: rescale 'x' (e.g. to thousands) or remove those rows
    """
    for name in names:
        if name not in frame.columns or not frame.schema[name].is_numeric():
            continue
        v = frame[name].cast(pl.Float64)
        n_inf = int(v.is_infinite().sum())
        if n_inf:
            raise DataError(
                f"column '{name}' in {where} holds {n_inf} infinite value(s)",
                fix=f"remove or fix those rows of '{name}'",
            )
        big = v.abs().fill_nan(None).max()
        if isinstance(big, float) and big > MAX_MAGNITUDE:
            raise DataError(
                f"column '{name}' in {where} has a value of magnitude {big:.3g}, "
                f"beyond {MAX_MAGNITUDE:.0e}",
                fix=f"rescale '{name}' (e.g. to thousands) or remove those rows",
            )


def require_numeric(frame: pl.DataFrame, name: str, *, where: str) -> pl.DataFrame:
    """Cast ``name`` to Float64, or DataError if it holds text that is not numbers.

    Example:
        >>> require_numeric(pl.DataFrame({"x": ["1", "2.5"]}), "x", where="t.csv")["x"].to_list()
        [1.0, 2.5]
    """
    dtype = frame.schema[name]
    if dtype.is_numeric():
        return frame.with_columns(pl.col(name).cast(pl.Float64))
    if dtype == pl.String:
        cast = frame[name].cast(pl.Float64, strict=False)
        bad = frame.filter(cast.is_null() & frame[name].is_not_null())
        if bad.height == 0:
            return frame.with_columns(cast.alias(name))
        example = bad[name][0]
        raise DataError(
            f"column '{name}' in {where} is not numeric: {bad.height} value(s) such as {example!r} are not numbers",
            fix=f"clean column '{name}' or name a numeric column",
        )
    raise DataError(
        f"column '{name}' in {where} has type {dtype}, not numbers",
        fix=f"name a numeric column instead of '{name}'",
    )


_OFFSET = r"(?:[zZ]|[+-]\d{2}:?\d{2})\s*$"


def _check_offsets(text: pl.Series, name: str, where: str) -> None:
    """DataError when ISO text mixes timestamps with a UTC offset and without one.

    Example:
        >>> _check_offsets(pl.Series(["2024-01-01 10:00", "2024-01-01T11:00+02:00"]), "t", "x")
        Traceback (most recent call last):
        ...
        opslens.errors.DataError: time column 't' in x mixes timestamps with a UTC offset (such as '2024-01-01T11:00+02:00') and without one (such as '2024-01-01 10:00'), so their times cannot be compared; fix: write every timestamp of 't' with its offset (e.g. 2024-01-01T10:00:00+02:00) or every one without
    """
    values = text.drop_nulls()
    has = values.str.contains(_OFFSET)
    if not has.any() or has.all():
        return
    with_offset, without = values.filter(has)[0], values.filter(~has)[0]
    raise DataError(
        f"time column '{name}' in {where} mixes timestamps with a UTC offset (such as "
        f"{with_offset!r}) and without one (such as {without!r}), so their times cannot be "
        "compared",
        fix=f"write every timestamp of '{name}' with its offset (e.g. 2024-01-01T10:00:00+02:00) "
        "or every one without",
    )


def parse_time(
    frame: pl.DataFrame,
    name: str,
    *,
    unit: Literal["auto", "s", "ms", "us"] = "auto",
    where: str = "the data",
) -> pl.DataFrame:
    """Make ``name`` a Datetime[us] column from timestamps, ISO text or epoch numbers.

    ``auto`` reads numbers as epoch seconds (milliseconds when they exceed 1e11).

    Example:
        >>> parse_time(pl.DataFrame({"t": [0, 60]}), "t")["t"].to_list()
        [datetime.datetime(1970, 1, 1, 0, 0), datetime.datetime(1970, 1, 1, 0, 1)]
    """
    require_columns(frame, [name], where=where)
    dtype = frame.schema[name]
    col = pl.col(name)
    if isinstance(dtype, pl.Datetime):
        expr = (
            col.dt.convert_time_zone("UTC").dt.replace_time_zone(None) if dtype.time_zone else col
        )
        return frame.with_columns(expr.dt.cast_time_unit("us"))
    if dtype == pl.Date:
        return frame.with_columns(col.cast(pl.Datetime("us")))
    if dtype.is_numeric():
        if unit == "auto":
            top = frame[name].abs().max()
            unit = "ms" if top is not None and float(top) > 1e11 else "s"  # type: ignore[arg-type]
        factor = {"s": 1_000_000, "ms": 1_000, "us": 1}[unit]
        return frame.with_columns(
            (col.cast(pl.Float64) * factor).round(0).cast(pl.Int64).cast(pl.Datetime("us"))
        )
    if dtype == pl.String:
        parsed = frame[name].str.to_datetime(time_unit="us", strict=False, time_zone="UTC")
        bad = parsed.is_null() & frame[name].is_not_null()
        if bad.any():
            _check_offsets(frame[name], name, where)
            example = frame.filter(bad)[name][0]
            raise DataError(
                f"time column '{name}' in {where} has {int(bad.sum())} value(s) that are not timestamps, such as {example!r}",
                fix="use ISO 8601 timestamps or epoch seconds, or set source.time_unit",
            )
        return frame.with_columns(parsed.dt.replace_time_zone(None).alias(name))
    raise DataError(
        f"time column '{name}' in {where} has type {dtype}",
        fix="use timestamps, ISO 8601 text or epoch seconds",
    )
