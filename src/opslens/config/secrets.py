"""Secrets: collect the values to hide, and mask them in any text or log record.

Every password found in a URL and every value interpolated into a
secret-looking key is collected when a project is loaded; logs, manifests,
MLflow parameters, reports and error messages pass through :func:`mask_secrets`.

Example:
    >>> mask_secrets("postgresql+psycopg://u:pw@host/db and token abc123", {"abc123"})
    'postgresql+psycopg://u:***@host/db and token ***'
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

__all__ = ["SECRET_KEY", "SecretFilter", "collect_url_passwords", "mask_secrets"]

URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)(?P<pw>[^@\s]+)(?=@)")
SECRET_KEY = re.compile(r"(password|passwd|secret|token|api_key|apikey)", re.IGNORECASE)


def mask_secrets(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace URL passwords and known secret values in ``text`` by ``***``.

    Example:
        >>> mask_secrets("sqlite:///x.db, mysql://me:pw@h/db")
        'sqlite:///x.db, mysql://me:***@h/db'
    """
    out = URL_PASSWORD.sub(lambda m: m.group("head") + "***", text)
    for secret in sorted(secrets, key=len, reverse=True):
        if secret and len(secret) >= 3:
            out = out.replace(secret, "***")
    return out


def collect_url_passwords(value: Any, secrets: set[str]) -> None:
    """Add every password found in a URL anywhere in ``value`` (nested dicts/lists) to ``secrets``.

    Example:
        >>> found = set(); collect_url_passwords({"a": ["postgresql://u:pw1@h/db"]}, found); found
        {'pw1'}
    """
    if isinstance(value, dict):
        for v in value.values():
            collect_url_passwords(v, secrets)
    elif isinstance(value, list):
        for v in value:
            collect_url_passwords(v, secrets)
    elif isinstance(value, str):
        for m in URL_PASSWORD.finditer(value):
            secrets.add(m.group("pw"))


class SecretFilter(logging.Filter):
    """A logging filter that masks URL passwords and known secret values in every record.

    Example:
        >>> record = logging.LogRecord("x", logging.INFO, "", 0, "db %s", ("postgresql://u:pw@h/db",), None)
        >>> _ = SecretFilter().filter(record); record.msg
        'db postgresql://u:***@h/db'
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = frozenset(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message with secrets masked."""
        record.msg = mask_secrets(record.getMessage(), self.secrets)
        record.args = None
        return True
