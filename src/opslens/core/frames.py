"""Frames at the API's edges: polars inside, pandas converted, anything else refused.

Example:
    >>> import pandas as pd
    >>> as_polars(pd.DataFrame({"a": [1, 2]}), what="the data").height
    2
    >>> as_polars([1, 2], what="the data")
    Traceback (most recent call last):
    ...
    opslens.errors.DataError: the data must be a polars or pandas DataFrame, not list; fix: pass pl.DataFrame(...) or pd.DataFrame(...)
"""

from __future__ import annotations

from typing import Any

import polars as pl

from opslens.errors import DataError

__all__ = ["as_polars", "is_frame"]


def is_frame(value: Any) -> bool:
    """Whether ``value`` is a polars or pandas DataFrame.

    Example:
        >>> is_frame(pl.DataFrame()), is_frame("runs/x")
        (True, False)
    """
    return isinstance(value, pl.DataFrame) or (
        type(value).__module__.startswith("pandas") and (type(value).__name__ == "DataFrame")
    )


def as_polars(frame: Any, *, what: str) -> pl.DataFrame:
    """``frame`` as a polars DataFrame (a pandas one converted); DataError for anything else."""
    if isinstance(frame, pl.DataFrame):
        return frame
    if isinstance(frame, pl.LazyFrame):
        collected: pl.DataFrame = frame.collect()
        return collected
    if is_frame(frame):
        try:
            converted: pl.DataFrame = pl.from_pandas(frame, include_index=False)
            return converted
        except Exception as e:  # pyarrow cannot convert a column (mixed objects, ...)
            raise DataError(
                f"{what} could not be converted from pandas: {e}",
                fix="give every column one type (df.convert_dtypes()), or pass a polars DataFrame",
            ) from None
    raise DataError(
        f"{what} must be a polars or pandas DataFrame, not {type(frame).__name__}",
        fix="pass pl.DataFrame(...) or pd.DataFrame(...)",
    )
