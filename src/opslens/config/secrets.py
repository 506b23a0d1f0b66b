"""Secrets: collect the values to hide, and mask them in any text or log record.

When a project is loaded, :func:`collect_secrets` gathers every value that
must never be shown: the value of every secret-looking key (``password:``,
``api_key:``, ``token:``, ... written in the file or interpolated from the
environment) and, from every URL, its password (parsed with SQLAlchemy's
``make_url``, so a password holding a space, a ``:`` or an unencoded ``@`` is
found whole) and its secret query parameters (libpq's ``?password=``). Logs,
manifests, MLflow parameters, reports and error messages pass through
:func:`mask_secrets`; :func:`mask_url` hides a URL's secrets without a list.

Example:
    >>> found = collect_secrets({"source": {"url": "postgresql://u:my pw@h/db", "api_key": "k-123"}})
    >>> sorted(found)
    ['k-123', 'my pw']
    >>> mask_secrets("postgresql://u:my pw@h/db, key k-123", found)
    'postgresql://u:***@h/db, key ***'
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from typing import Any, NamedTuple
from urllib.parse import quote

__all__ = [
    "SECRET_KEY",
    "SecretFilter",
    "collect_secrets",
    "is_secret_key",
    "mask_secrets",
    "mask_url",
    "real_password",
    "url_secrets",
]

SECRET_KEY = re.compile(
    r"(?:^|[_\-.])(password|passwd|pwd|secret|token|api_?key|access_?key|private_?key"
    r"|credentials?)(?:$|[_\-.])",
    re.IGNORECASE,
)
# a URL with user info in free text: the password runs to the token's last '@'
URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)(?P<pw>\S*)(?=@)")
_QUERY_SECRET = re.compile(
    r"(?P<head>[?&;](?:password|passwd|pwd|sslpassword|token|access_token|api_?key|secret)=)"
    r"(?P<value>(?!\*\*\*)[^&;\s'\"]+)",
    re.IGNORECASE,
)
_MASK = "***"


def is_secret_key(key: str) -> bool:
    """Whether a config key holds a secret (``api_key_env`` names a variable, so it does not).

    Example:
        >>> [is_secret_key(k) for k in ("password", "api_key", "db_token", "api_key_env", "max_tokens")]
        [True, True, True, False, False]
    """
    if key.lower().endswith(("_env", "_file", "_path")):
        return False
    return SECRET_KEY.search(key) is not None


class _UrlParts(NamedTuple):
    password: str | None
    raw_password: str | None
    query_secrets: tuple[str, ...]


def _parse(url: str) -> _UrlParts | None:
    """The URL's password (decoded and as written) and secret query values; None if not a URL."""
    if "://" not in url:
        return None
    if "@" not in url and "?" not in url:  # no user info, no query: nothing secret to parse
        return _UrlParts(password=None, raw_password=None, query_secrets=())
    from sqlalchemy.engine.url import make_url  # a pure parser; imported only for URLs
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url.strip())
    except (ArgumentError, ValueError, TypeError):
        return None
    query = tuple(
        value
        for key, values in parsed.query.items()
        if is_secret_key(key)
        for value in ((values,) if isinstance(values, str) else values)
        if value
    )
    password = parsed.password
    raw: str | None = None
    head = re.match(r"^\s*[^:/]+://[^:/@]*:", url)
    # make_url stops at the first '@': a host still holding one means the password did not
    split = parsed.host is not None and "@" in parsed.host
    if head is not None and (password is not None or split):
        rest = url[head.end() :]
        raw = rest[: rest.split("?", 1)[0].rfind("@")]
        password = raw if split else password
    return _UrlParts(password=password, raw_password=raw, query_secrets=query)


def url_secrets(url: str) -> set[str]:
    """Every secret in one URL: the password (decoded and as written) and secret query values.

    Example:
        >>> sorted(url_secrets("postgresql://u:p%40ss@h/db?sslmode=require&password=q1"))
        ['p%40ss', 'p@ss', 'q1']
        >>> sorted(url_secrets("postgresql://u:p@ss@h/db"))
        ['p@ss']
        >>> url_secrets("sqlite:///runs.db")
        set()
    """
    parts = _parse(url)
    if parts is None:
        return set()
    found = {parts.password, parts.raw_password, *parts.query_secrets}
    return {s for s in found if s}


def real_password(url: str) -> str | None:
    """The password a URL means, even when it holds an unencoded ``@`` (make_url stops at the first).

    Example:
        >>> real_password("postgresql://u:p@ss@h/db"), real_password("postgresql://u@h/db")
        ('p@ss', None)
    """
    parts = _parse(url)
    return None if parts is None else parts.password


def mask_url(url: str) -> str:
    """``url`` with its password and secret query values replaced by ``***``.

    Example:
        >>> mask_url("postgresql://u:p@ss w@h:5432/db?password=x1&sslmode=require")
        'postgresql://u:***@h:5432/db?password=***&sslmode=require'
    """
    return mask_secrets(url, url_secrets(url))


def _variants(secret: str) -> set[str]:
    """A secret as it may appear in text, JSON and URLs."""
    return {secret, json.dumps(secret)[1:-1], quote(secret, safe=""), quote(secret)}


def mask_secrets(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace known secret values, URL passwords and secret query values in ``text`` by ``***``.

    Values shorter than 3 characters are left alone (they would mask ordinary words).

    Example:
        >>> mask_secrets("sqlite:///x.db, mysql://me:pw@h/db, postgresql://h/db?password=abc")
        'sqlite:///x.db, mysql://me:***@h/db, postgresql://h/db?password=***'
    """
    out = text
    every = {v for s in secrets if s and len(s) >= 3 for v in _variants(s)}
    for secret in sorted(every, key=len, reverse=True):
        out = out.replace(secret, _MASK)
    out = URL_PASSWORD.sub(lambda m: m.group("head") + _MASK, out)
    return _QUERY_SECRET.sub(lambda m: m.group("head") + _MASK, out)


def collect_secrets(value: Any, secrets: set[str] | None = None, key: str = "") -> set[str]:
    """Every secret in a config mapping: values of secret-looking keys and secrets in URLs.

    Example:
        >>> sorted(collect_secrets({"es": {"password": "hunter2", "api_key_env": "MY_KEY"},
        ...                         "hosts": ["https://elastic:pw9@es:9200"]}))
        ['hunter2', 'pw9']
    """
    found: set[str] = set() if secrets is None else secrets
    if isinstance(value, dict):
        for k, v in value.items():
            collect_secrets(v, found, str(k))
    elif isinstance(value, list):
        for v in value:
            collect_secrets(v, found, key)
    elif isinstance(value, str) and value:
        if is_secret_key(key):
            found.add(value)
        found |= url_secrets(value)
    return found


class SecretFilter(logging.Filter):
    """A logging filter that masks secrets in every record, its traceback included.

    Example:
        >>> record = logging.LogRecord("x", logging.INFO, "", 0, "db %s", ("postgresql://u:pw@h/db",), None)
        >>> _ = SecretFilter().filter(record); record.msg
        'db postgresql://u:***@h/db'
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = frozenset(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message (and traceback text) with secrets masked."""
        message = record.getMessage()
        if record.exc_info and record.exc_info[0] is not None:
            message += "\n" + logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            message += "\n" + record.exc_text
            record.exc_text = None
        if record.stack_info:
            message += "\n" + record.stack_info
            record.stack_info = None
        record.msg = mask_secrets(message, self.secrets)
        record.args = None
        return True
