"""Database URLs in config: a monitoring history is a SQLAlchemy URL of a known database.

Example:
    >>> from pydantic import TypeAdapter
    >>> TypeAdapter(DatabaseUrl).validate_python("postgresql+psycopg://u@h/db")
    'postgresql+psycopg://u@h/db'
    >>> TypeAdapter(DatabaseUrl).validate_python("bogus://nowhere")
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for function-after[check_database_url(), str]
    ...
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

__all__ = ["DATABASE_SCHEMES", "DatabaseUrl", "check_database_url"]

DATABASE_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mariadb", "mssql", "oracle")


def check_database_url(value: str) -> str:
    """``value`` if it is ``<database>[+driver]://...`` of a known database, else ValueError.

    Example:
        >>> check_database_url("sqlite:///history.db")
        'sqlite:///history.db'
    """
    scheme = value.split("://", 1)[0].lower() if "://" in value else ""
    if scheme.split("+", 1)[0] not in DATABASE_SCHEMES:
        shown = f"'{scheme}://'" if scheme else f"'{value}'"
        raise ValueError(
            f"{shown} is not a database URL; write sqlite:///history.db or "
            "postgresql://user@host:5432/db"
        )
    return value


DatabaseUrl = Annotated[str, AfterValidator(check_database_url)]
