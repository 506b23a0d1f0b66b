"""SQL tables and queries through SQLAlchemy 2 (PostgreSQL via psycopg 3, SQLite, ...).

``postgresql://`` URLs use the psycopg 3 driver. Messages never show a password.

Example:
    >>> import sqlite3, tempfile, pathlib
    >>> db = pathlib.Path(tempfile.mkdtemp()) / "t.db"
    >>> with sqlite3.connect(db) as c:
    ...     _ = c.execute("create table trips (route text, minutes real)")
    ...     _ = c.execute("insert into trips values ('A', 12.5)")
    >>> read_sql(f"sqlite:///{db}", table="trips").to_dicts()
    [{'route': 'A', 'minutes': 12.5}]
"""

from __future__ import annotations

import re

import polars as pl
import sqlalchemy as sa
from sqlalchemy.exc import NoSuchTableError, SQLAlchemyError

from opslens.config import mask_secrets
from opslens.errors import SourceError

__all__ = ["engine_url", "read_sql"]

_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


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
    shown = mask_secrets(url)
    if table is not None and not _TABLE.match(table):
        raise SourceError(
            f"source.table '{table}' is not a plain table name",
            fix="name a table (optionally schema.table), or use source.query for SQL",
        )
    try:
        args = {"connect_timeout": connect_timeout} if url.startswith(("postgres",)) else {}
        engine = sa.create_engine(engine_url(url), connect_args=args)
    except (SQLAlchemyError, ImportError, ValueError) as e:
        raise SourceError(
            f"source.url {shown} is not a usable database URL ({type(e).__name__})",
            fix="use a SQLAlchemy URL such as postgresql://user@host:5432/db or sqlite:///file.db",
        ) from None
    try:
        with engine.connect() as conn:
            if table is not None:
                schema, _, name = table.rpartition(".")
                if not sa.inspect(conn).has_table(name, schema=schema or None):
                    raise SourceError(
                        f"table '{table}' does not exist in the database at {shown}",
                        fix="check source.table (and the schema), or use source.query",
                    )
                reflected = sa.Table(name, sa.MetaData(), schema=schema or None, autoload_with=conn)
                statement = sa.select(reflected)
                frame = pl.read_database(statement, connection=conn, infer_schema_length=None)
            else:
                frame = pl.read_database(
                    sa.text(query or ""), connection=conn, infer_schema_length=None
                )
    except SourceError:
        raise
    except sa.exc.OperationalError as e:
        kind = (
            "connect to"
            if "connect" in str(e).lower() or "unable to open" in str(e).lower()
            else "query"
        )
        detail = mask_secrets(str(e.orig).strip().splitlines()[0] if e.orig else type(e).__name__)
        if kind == "connect to":
            raise SourceError(
                f"could not connect to the database at {shown}: {detail}",
                fix="check source.url (host, port, database) and that the server is running",
            ) from None
        raise SourceError(
            f"the query on {shown} failed: {detail}", fix="check source.query / source.table"
        ) from None
    except (SQLAlchemyError, NoSuchTableError) as e:
        detail = mask_secrets(str(getattr(e, "orig", None) or e).strip().splitlines()[0])
        raise SourceError(
            f"the query on {shown} failed: {detail}", fix="check source.query / source.table"
        ) from None
    finally:
        engine.dispose()
    return frame
