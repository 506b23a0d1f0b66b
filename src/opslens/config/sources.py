"""Where an analysis's data comes from: one model per ``source.kind``.

Example:
    >>> from pydantic import TypeAdapter
    >>> TypeAdapter(SourceConfig).validate_python({"kind": "file", "path": "t.csv"}).format
    'auto'
"""

from __future__ import annotations

import codecs
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from opslens.config.base import Strict

__all__ = [
    "SOURCE_KINDS",
    "ElasticsearchSource",
    "FileSource",
    "LongLayout",
    "MemorySource",
    "SourceConfig",
    "SqlSource",
    "SyntheticSource",
    "TimeWindow",
]


class TimeWindow(Strict):
    """Keep rows with ``start <= time < end`` (either bound optional)."""

    start: datetime | None = None
    end: datetime | None = None


class LongLayout(Strict):
    """How a LONG table pivots to WIDE: one row per ``index`` values, a column per ``key``."""

    index: list[str] = Field(min_length=1)
    key: str
    value: str


class _SourceBase(Strict):
    layout: Literal["wide", "long"] = "wide"
    long: LongLayout | None = None
    time_unit: Literal["auto", "s", "ms", "us"] = "auto"
    window: TimeWindow | None = None

    @model_validator(mode="after")
    def _long_needs_layout(self) -> _SourceBase:
        if self.layout == "long" and self.long is None:
            raise ValueError(
                "layout 'long' needs source.long: {index: [...], key: ..., value: ...}"
            )
        return self


class FileSource(_SourceBase):
    """A CSV or Parquet file (``format: auto`` decides by the file's suffix).

    A CSV is read with ``separator`` (``,``; a ``.tsv`` file defaults to a tab)
    and ``encoding`` (``utf-8``; any codec Python knows, e.g. ``latin-1``, ``cp1252``).

    Example:
        >>> FileSource(kind="file", path="t.csv", separator=";", encoding="latin-1").separator
        ';'
    """

    kind: Literal["file"]
    path: Path
    format: Literal["auto", "csv", "parquet"] = "auto"
    separator: str | None = None
    encoding: str = "utf-8"

    @field_validator("path", mode="before")
    @classmethod
    def _not_empty(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            raise ValueError("is empty, not a file (a ${VAR:-} with no value?); name the data file")
        return value

    @field_validator("separator")
    @classmethod
    def _one_character(cls, value: str | None) -> str | None:
        if value is not None and len(value.encode("utf-8")) != 1:
            raise ValueError(
                f"{value!r} is not one character; write e.g. ',', ';', '|' or \"\\t\" for a tab"
            )
        return value

    @field_validator("encoding")
    @classmethod
    def _known_codec(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(
                f"{value!r} is not a text encoding Python knows; write e.g. utf-8, latin-1 or cp1252"
            ) from None
        return value


class SqlSource(_SourceBase):
    """A table or a query through SQLAlchemy (PostgreSQL via psycopg 3, SQLite, ...)."""

    kind: Literal["sql"]
    url: str
    table: str | None = None
    query: str | None = None

    @model_validator(mode="after")
    def _table_or_query(self) -> SqlSource:
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of source.table or source.query")
        return self


class ElasticsearchSource(_SourceBase):
    """An Elasticsearch index, read with point-in-time + search_after paging."""

    kind: Literal["elasticsearch"]
    hosts: list[str] | str
    index: str
    entities: list[str] | None = None
    query: dict[str, Any] | None = None
    page_size: int = Field(default=5000, ge=1, le=10_000)
    api_key: str | None = None
    username: str | None = None
    password: str | None = None
    verify_certs: bool = True
    request_timeout: float = Field(default=30.0, gt=0)


class SyntheticSource(_SourceBase):
    """A bundled deterministic generator (``trips``, ``fleet``, ...) with its keyword arguments."""

    kind: Literal["synthetic"]
    generator: str
    options: dict[str, Any] = Field(default_factory=dict)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)


class MemorySource(_SourceBase):
    """A frame handed over in memory (``opslens.run(frame, ...)``), found by ``name``."""

    kind: Literal["memory"]
    name: str = "frame"


SourceConfig = Annotated[
    FileSource | SqlSource | ElasticsearchSource | SyntheticSource | MemorySource,
    Field(discriminator="kind"),
]
SOURCE_KINDS = ("file", "sql", "elasticsearch", "synthetic", "memory")
