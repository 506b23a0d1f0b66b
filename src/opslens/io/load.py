"""Load an analysis's source into one validated polars frame.

This is the single I/O entry for input data: it reads files, SQL and
Elasticsearch by ``source.kind`` (a frame already in hand, synthetic or in
memory, is passed as ``frame``), pivots LONG tables, parses the time axis,
applies the time window and fingerprints the result so a run's manifest names
exactly what it read.

Example:
    >>> from opslens.config import AnalysisConfig
    >>> cfg = AnalysisConfig.model_validate({
    ...     "name": "demo", "recipe": "distribution", "source": {"kind": "memory"},
    ...     "columns": {"time": "t", "target": "minutes"}})
    >>> loaded = load_source(cfg, frame=pl.DataFrame({"t": [0, 60], "minutes": [3.0, 4.0]}))
    >>> loaded.frame.height, len(loaded.fingerprint), loaded.description
    (2, 16, "the in-memory frame 'frame'")
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl

from opslens.config import (
    AnalysisConfig,
    ElasticsearchSource,
    FileSource,
    MemorySource,
    SqlSource,
)
from opslens.config.secrets import mask_url
from opslens.core.columns import parse_time, require_columns
from opslens.errors import ConfigError, DataError
from opslens.io.schema import apply_window, to_wide

__all__ = [
    "Loaded",
    "describe_source",
    "fingerprint_frame",
    "fingerprint_rows",
    "load_source",
    "row_digest",
    "rows_fingerprint",
]


@dataclass(frozen=True)
class Loaded:
    """The loaded frame, its content fingerprint and a printable source description."""

    frame: pl.DataFrame
    fingerprint: str
    description: str


def describe_source(analysis: AnalysisConfig) -> str:
    """A short, password-free description of where the data comes from.

    Example:
        >>> from opslens.config import SqlSource
        >>> cfg = AnalysisConfig(name="a", recipe="fleet", source=SqlSource(kind="sql", url="postgresql://u:pw@h/db", table="t"))
        >>> describe_source(cfg)
        "table 't' at postgresql://u:***@h/db"
    """
    src = analysis.source
    if isinstance(src, FileSource):
        return f"file {src.path}"
    if isinstance(src, SqlSource):
        what = f"table '{src.table}'" if src.table else "query"
        return f"{what} at {mask_url(src.url)}"
    if isinstance(src, ElasticsearchSource):
        hosts = [src.hosts] if isinstance(src.hosts, str) else src.hosts
        return f"Elasticsearch index '{src.index}' at {', '.join(mask_url(h) for h in hosts)}"
    if isinstance(src, MemorySource):
        return f"the in-memory frame '{src.name}'"
    return f"synthetic {src.generator} data (seed {src.seed})"


def fingerprint_frame(frame: pl.DataFrame) -> str:
    """A 16-hex-digit digest of a frame's schema and contents (row order matters).

    Example:
        >>> fingerprint_frame(pl.DataFrame({"a": [1, 2]})) == fingerprint_frame(pl.DataFrame({"a": [1, 2]}))
        True
    """
    digest = hashlib.sha256(str(frame.schema).encode())
    if frame.height:
        digest.update(frame.hash_rows(seed=7).to_numpy().tobytes())
    return digest.hexdigest()[:16]


_DIGEST_SEED = 7


def _plain_types(frame: pl.DataFrame) -> pl.DataFrame:
    """Integers as Int64, floats as Float64, text and categories as String, times as naive
    Datetime[us]: the types a frame has whichever engine read it (Spark reads UInt32 as a
    long, a dictionary as text)."""
    casts: dict[Any, Any] = {}
    for name, dtype in frame.schema.items():
        if dtype.is_integer():
            casts[name] = pl.Int64()
        elif dtype.is_float():
            casts[name] = pl.Float64()
        elif isinstance(dtype, pl.Categorical | pl.Enum):
            casts[name] = pl.String()
        elif isinstance(dtype, pl.Datetime) and (dtype.time_unit != "us" or dtype.time_zone):
            casts[name] = pl.Datetime("us")
    return frame.cast(casts) if casts else frame


def row_digest(frame: pl.DataFrame) -> pl.DataFrame:
    """One row: ``rows``, and the sums of the low and high 32 bits of each row's hash. Sums
    of any split of a frame's rows add up to the whole's, in any order: an engine adds the
    digests of its batches (:func:`rows_fingerprint` makes the fingerprint of the sums).

    Example:
        >>> f = pl.DataFrame({"a": [1, 2, 3]})
        >>> whole = row_digest(f)
        >>> parts = pl.concat([row_digest(f.slice(2)), row_digest(f.slice(0, 2))]).sum()
        >>> whole.equals(parts)
        True
    """
    hashed = _plain_types(frame).hash_rows(seed=_DIGEST_SEED)
    low = (hashed % (1 << 32)).cast(pl.Int64)
    high = (hashed // (1 << 32)).cast(pl.Int64)
    return pl.DataFrame(
        {"rows": [frame.height], "low": [int(low.sum())], "high": [int(high.sum())]},
        schema={"rows": pl.Int64, "low": pl.Int64, "high": pl.Int64},
    )


def rows_fingerprint(schema: pl.Schema, rows: int, low: int, high: int) -> str:
    """The 16-hex-digit fingerprint of a frame's (plain) schema and its rows as a multiset,
    from the sums of :func:`row_digest` (row order does not matter)."""
    names = ", ".join(
        f"{n}: {t}" for n, t in _plain_types(pl.DataFrame(schema=schema)).schema.items()
    )
    total = ((high << 32) + low) % (1 << 64)
    return hashlib.sha256(f"{names}|{rows}|{total}".encode()).hexdigest()[:16]


def fingerprint_rows(frame: pl.DataFrame) -> str:
    """:func:`rows_fingerprint` of a frame here: the fingerprint of a run whose source an
    engine may read (the same for the same rows in any order, on any engine).

    Example:
        >>> f = pl.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
        >>> fingerprint_rows(f) == fingerprint_rows(f.reverse()), len(fingerprint_rows(f))
        (True, 16)
    """
    d = row_digest(frame).row(0)
    return rows_fingerprint(frame.schema, *d)


def _read(analysis: AnalysisConfig) -> pl.DataFrame:
    src = analysis.source
    if isinstance(src, FileSource):
        from opslens.io.sources.files import read_file

        return read_file(src.path, src.format, separator=src.separator, encoding=src.encoding)
    if isinstance(src, SqlSource):
        from opslens.io.sources.sql import read_sql

        return read_sql(src.url, table=src.table, query=src.query)
    if isinstance(src, ElasticsearchSource):
        from opslens.io.sources.elasticsearch import read_elasticsearch

        cols = analysis.columns
        if cols.time is None:
            raise DataError(
                "an Elasticsearch source needs columns.time (the time field to sort and page on)",
                fix="set columns.time to the index's timestamp field",
            )
        fields = [
            c for c in [cols.entity, *cols.metrics, cols.target, *cols.categorical, cols.group] if c
        ]
        if src.layout == "long" and src.long is not None:  # metrics are keys: read the LONG columns
            fields = [*src.long.index, src.long.key, src.long.value]
        window = src.window
        return read_elasticsearch(
            hosts=src.hosts,
            index=src.index,
            time_field=cols.time,
            fields=fields or None,
            start=window.start if window else None,
            end=window.end if window else None,
            entity_field=cols.entity,
            entities=src.entities,
            query=src.query,
            page_size=src.page_size,
            api_key=src.api_key,
            basic_auth=(src.username, src.password or "") if src.username else None,
            verify_certs=src.verify_certs,
            request_timeout=src.request_timeout,
        )
    raise ConfigError(
        f"source kind '{src.kind}' is read before loading (synthetic or in memory)",
        fix="pass the frame to load_source(..., frame=...)",
    )


def load_source(
    analysis: AnalysisConfig,
    frame: pl.DataFrame | None = None,
    *,
    digest: Callable[[pl.DataFrame], str] = fingerprint_frame,
) -> Loaded:
    """Read (unless ``frame`` is given), pivot, parse time and window; DataError if nothing is
    left. ``digest`` makes the fingerprint (:func:`fingerprint_rows` for an engine's input)."""
    where = describe_source(analysis)
    frame = _read(analysis) if frame is None else frame
    src = analysis.source
    if src.layout == "long" and src.long is not None:
        frame = to_wide(frame, index=src.long.index, key=src.long.key, value=src.long.value)
    if frame.height == 0:
        raise DataError(f"{where} has no rows", fix="point the source at a table or file with data")
    time = analysis.columns.time
    if time is not None:
        require_columns(frame, [time], where=where)
        frame = parse_time(frame, time, unit=src.time_unit, where=where)
        if src.window is not None and not isinstance(src, ElasticsearchSource):
            frame = apply_window(frame, time, start=src.window.start, end=src.window.end)
            if frame.height == 0:
                raise DataError(
                    f"no rows of {where} fall in the time window {src.window.start} – {src.window.end}",
                    fix="widen or remove source.window",
                )
    _check_not_all_null(frame, analysis, where)
    return Loaded(frame=frame, fingerprint=digest(frame), description=where)


def _check_not_all_null(frame: pl.DataFrame, analysis: AnalysisConfig, where: str) -> None:
    """A metric with no value in any row says so, rather than failing later as something else."""
    empty = [
        m
        for m in analysis.columns.metrics
        if m in frame.columns
        and (
            frame[m].null_count() == frame.height
            or (frame[m].dtype.is_float() and frame[m].is_nan().fill_null(True).all())
        )
    ]
    if empty:
        raise DataError(
            f"metric column(s) {', '.join(repr(m) for m in empty)} of {where} "
            f"are null in every one of the {frame.height} rows",
            fix="fill the column(s) in the data, or remove them from columns.metrics",
        )
