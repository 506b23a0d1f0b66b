"""SQL tables and queries through SQLAlchemy 2 (PostgreSQL via psycopg 3, SQLite, ...).

``postgresql://`` URLs use the psycopg 3 driver. The URL is parsed with
SQLAlchemy's ``make_url``: a password holding a space works as written, and
one holding an unencoded ``@`` is taken up to the last ``@``. A query is sent
as written: ``:word`` inside it (a string literal, a time such as ``'10:30'``)
is not a bind parameter. Messages never show a password.

Example:
    >>> import sqlite3, tempfile, pathlib
    >>> db = pathlib.Path(tempfile.mkdtemp()) / "t.db"
    >>> with sqlite3.connect(db) as c:
    ...     _ = c.execute("create table trips (route text, minutes real)")
    ...     _ = c.execute("insert into trips values ('A', 12.5)")
    >>> read_sql(f"sqlite:///{db}", table="trips").to_dicts()
    [{'route': 'A', 'minutes': 12.5}]
    >>> read_sql(f"sqlite:///{db}", query="select route || ' :at' as r from trips").to_dicts()
    [{'r': 'A :at'}]
"""

from __future__ import annotations

import re

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from opslens.config.secrets import mask_secrets, mask_url, real_password, url_secrets
from opslens.errors import SourceError

__all__ = ["engine_url", "read_sql"]

_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
_DNS = re.compile(
    r"resolve host|translate host name|name or service not known|nodename nor servname"
    r"|temporary failure in name resolution|no address associated",
    re.IGNORECASE,
)


def engine_url(url: str) -> str:
    """Pick psycopg 3 for plain ``postgresql://`` URLs.

    Example:
        >>> engine_url("postgresql://postgres@127.0.0.1:5432/test")
        'postgresql+psycopg://postgres@127.0.0.1:5432/test'
    """
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _url(url: str) -> URL:
    """The SQLAlchemy URL, its password taken whole even with an unencoded ``@``."""
    parsed = sa.make_url(engine_url(url.strip()))
    password = real_password(url)
    if password is not None and password != parsed.password:
        rest = url.strip().split("://", 1)[1]
        host = rest[rest.split("?", 1)[0].rfind("@") + 1 :]
        parsed = sa.make_url(f"{parsed.drivername}://x@{host}").set(
            username=parsed.username, password=password
        )
    return parsed


def _host(url: URL) -> str:
    return f"{url.host or 'localhost'}" + (f":{url.port}" if url.port else "")


def read_sql(
    url: str, *, table: str | None = None, query: str | None = None, connect_timeout: int = 5
) -> pl.DataFrame:
    """Read a whole table or a query's result into a polars frame.

    Example:
        >>> read_sql("postgresql://u:pw@127.0.0.1:1/test", table="t")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        opslens.errors.SourceError: could not connect to the database at postgresql://u:***@127.0.0.1:1/test...
    """
    hidden = url_secrets(url)
    shown = mask_url(url)
    if table is not None and not _TABLE.match(table):
        raise SourceError(
            f"source.table '{table}' is not a plain table name",
            fix="name a table (optionally schema.table), or use source.query for SQL",
        )
    try:
        target = _url(url)
        args = (
            {"connect_timeout": connect_timeout} if target.drivername.startswith("postgres") else {}
        )
        engine = sa.create_engine(target, connect_args=args)
    except (SQLAlchemyError, ArgumentError, ImportError, ValueError) as e:
        raise SourceError(
            f"source.url {shown} is not a usable database URL ({type(e).__name__})",
            fix="use a SQLAlchemy URL such as postgresql://user@host:5432/db or sqlite:///file.db",
        ) from None
    try:
        try:
            conn = engine.connect()
        except SQLAlchemyError as e:
            detail = _detail(e, hidden)
            if _DNS.search(detail):
                raise SourceError(
                    f"the database host '{_host(target)}' of {shown} cannot be found: {detail}",
                    fix="check the host name in source.url (and the network or DNS)",
                ) from None
            raise SourceError(
                f"could not connect to the database at {shown}: {detail}",
                fix="check source.url (host, port, database, user) and that the server is running",
            ) from None
        with conn:
            return _select(conn, table, query, shown)
    except SQLAlchemyError as e:
        raise SourceError(
            f"the query on {shown} failed: {_detail(e, hidden)}",
            fix="check source.query / source.table",
        ) from None
    finally:
        engine.dispose()


def _select(conn: sa.Connection, table: str | None, query: str | None, shown: str) -> pl.DataFrame:
    if table is not None:
        schema, _, name = table.rpartition(".")
        if not sa.inspect(conn).has_table(name, schema=schema or None):
            raise SourceError(
                f"table '{table}' does not exist in the database at {shown}",
                fix="check source.table (and the schema), or use source.query",
            )
        reflected = sa.Table(name, sa.MetaData(), schema=schema or None, autoload_with=conn)
        return pl.read_database(sa.select(reflected), connection=conn, infer_schema_length=None)
    # every ':' escaped: text() then binds nothing and sends the query as written
    statement = sa.text((query or "").replace(":", r"\:"))
    return pl.read_database(statement, connection=conn, infer_schema_length=None)


def _detail(error: SQLAlchemyError, hidden: set[str]) -> str:
    """The driver's first line (or the error's), secrets masked."""
    orig = getattr(error, "orig", None)
    text = str(orig if orig is not None else error).strip()
    first = text.splitlines()[0] if text else type(error).__name__
    return mask_secrets(first, hidden)
