"""CSV and Parquet files.

Example:
    >>> import polars as pl, tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> pl.DataFrame({"a": [1, 2]}).write_csv(p)
    >>> read_file(p).shape
    (2, 1)
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import polars as pl

from opslens.errors import SourceError

__all__ = ["read_file"]


def read_file(path: str | Path, format: Literal["auto", "csv", "parquet"] = "auto") -> pl.DataFrame:
    """Read a CSV or Parquet file into a polars frame; SourceError naming the file otherwise.

    Example:
        >>> read_file("/no/such/trips.csv")
        Traceback (most recent call last):
        ...
        opslens.errors.SourceError: data file /no/such/trips.csv does not exist; fix: check source.path in project.yaml (relative paths start at the project file's folder)
    """
    path = Path(path)
    if not path.is_file():
        raise SourceError(
            f"data file {path} does not exist",
            fix="check source.path in project.yaml (relative paths start at the project file's folder)",
        )
    fmt = format
    if fmt == "auto":
        suffix = path.suffix.lower()
        if suffix in (".parquet", ".pq"):
            fmt = "parquet"
        elif suffix in (".csv", ".txt", ".tsv"):
            fmt = "csv"
        else:
            raise SourceError(
                f"cannot tell the format of {path} from its suffix '{suffix}'",
                fix="set source.format to csv or parquet",
            )
    try:
        if fmt == "parquet":
            return pl.read_parquet(path)
        return pl.read_csv(
            path,
            separator="\t" if path.suffix.lower() == ".tsv" else ",",
            infer_schema_length=10_000,
            try_parse_dates=True,
        )
    except pl.exceptions.NoDataError:
        raise SourceError(
            f"data file {path} is empty", fix="point source.path at a file with a header and rows"
        ) from None
    except (pl.exceptions.PolarsError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SourceError(
            f"cannot read {path} as {fmt}: {first}",
            fix=f"check that the file is valid {fmt} or set source.format",
        ) from None
