"""CSV and Parquet files.

A CSV is read with a ``separator`` (``,``; a tab for ``.tsv``) and an
``encoding`` (``utf-8``). When a file read as one column holds another usual
separator in its header, or its bytes are not in the encoding, the error says
which ``source.separator`` or ``source.encoding`` to set.

Example:
    >>> import polars as pl, tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> pl.DataFrame({"a": [1, 2]}).write_csv(p)
    >>> read_file(p).shape
    (2, 1)
"""

from __future__ import annotations

import codecs
import io
from pathlib import Path
from typing import Literal

import polars as pl

from opslens.errors import SourceError

__all__ = ["read_file"]

_SEPARATORS = (";", "\t", "|", ",")
_SHOWN = {"\t": '"\\t"', ";": "';'", "|": "'|'", ",": "','"}


def read_file(
    path: str | Path,
    format: Literal["auto", "csv", "parquet"] = "auto",
    *,
    separator: str | None = None,
    encoding: str = "utf-8",
    key: str = "source.path",
) -> pl.DataFrame:
    """Read a CSV or Parquet file into a polars frame; SourceError naming the file otherwise.

    ``key`` is the config key or CLI option that named the file: the fixes name it.

    Example:
        >>> read_file("/no/such/trips.csv")
        Traceback (most recent call last):
        ...
        opslens.errors.SourceError: data file /no/such/trips.csv does not exist; fix: check source.path (relative paths start at the project file's folder)
    """
    path = Path(path)
    source = key == "source.path"
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "does not exist"
        raise SourceError(
            f"data file {path} {what}",
            fix=f"check {key} (relative paths start at the project file's folder)"
            if not key.startswith("--")
            else f"pass {key} a CSV or Parquet file that exists",
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
                fix="set source.format to csv or parquet"
                if source
                else f"give {key} a file ending in .csv or .parquet",
            )
    try:
        if fmt == "parquet":
            return pl.read_parquet(path)
        sep = separator or ("\t" if path.suffix.lower() == ".tsv" else ",")
        frame = _read_csv(path, sep, encoding)
    except pl.exceptions.NoDataError:
        raise SourceError(
            f"data file {path} is empty", fix=f"point {key} at a file with a header and rows"
        ) from None
    except UnicodeDecodeError as e:
        raise SourceError(
            f"data file {path} is not {encoding} text (byte offset {e.start})",
            fix="set source.encoding to the file's encoding, e.g. latin-1 or cp1252"
            if source
            else f"write the file {key} names as UTF-8",
        ) from None
    except (pl.exceptions.PolarsError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "utf-8" in first.lower():
            raise SourceError(
                f"data file {path} is not {encoding} text ({first})",
                fix="set source.encoding to the file's encoding, e.g. latin-1 or cp1252"
                if source
                else f"write the file {key} names as UTF-8",
            ) from None
        raise SourceError(
            f"cannot read {path} as {fmt}: {first}",
            fix=f"check that the file is valid {fmt} or set source.format"
            if source
            else f"check that the file {key} names is valid {fmt}",
        ) from None
    _check_separator(frame, path, sep)
    return frame


def _read_csv(path: Path, separator: str, encoding: str) -> pl.DataFrame:
    """Polars reads UTF-8 itself; any other encoding is decoded by Python first."""
    source: Path | io.BytesIO = path
    if codecs.lookup(encoding).name != "utf-8":
        source = io.BytesIO(path.read_bytes().decode(encoding).encode("utf-8"))
    return pl.read_csv(
        source, separator=separator, infer_schema_length=10_000, try_parse_dates=True
    )


def _check_separator(frame: pl.DataFrame, path: Path, used: str) -> None:
    """A one-column frame whose header holds another separator was read with the wrong one."""
    if frame.width != 1:
        return
    header = frame.columns[0]
    found = [s for s in _SEPARATORS if s != used and s in header]
    if found:
        raise SourceError(
            f"data file {path} read as one column '{header[:60]}': it looks separated by "
            f"{_SHOWN[found[0]]}, not {_SHOWN.get(used, repr(used))}",
            fix=f"set source.separator: {_SHOWN[found[0]]}",
        )
