"""A loopback HTTP server speaking the part of the Elasticsearch 9 REST API a reader needs.

No Elasticsearch server can be installed here, so the Elasticsearch source is
tested against this one. It answers, with the documented response shapes:

- ``GET /`` and ``HEAD /``: cluster info (``version.number`` 9.x);
- ``POST /<index>/_pit?keep_alive=..``: ``{"id": ..., "_shards": ...}``; unknown index:
  404 ``index_not_found_exception``;
- ``POST|GET /_search`` with ``pit``, ``sort``, ``search_after``, ``size``, ``query``,
  ``_source``, ``track_total_hits``: ``{"pit_id", "took", "timed_out", "_shards",
  "hits": {"total"?, "max_score": null, "hits": [{"_index", "_id", "_score": null,
  "_source", "sort"}]}}``; a new ``pit_id`` on each response when ``rotate_pit_ids``;
- ``POST|GET /<index>/_search`` without a PIT, ``from``/``size`` up to 10,000 hits;
- ``DELETE /_pit``: ``{"succeeded": true, "num_freed": n}``.

Every response carries ``X-Elastic-Product: Elasticsearch`` (the Python client
refuses a 2xx response without it) and, when the request asked for
``application/vnd.elasticsearch+json; compatible-with=9`` (as the v9 client does),
that same media type. Queries: ``bool`` (filter, must, should, must_not),
``range`` (gte/gt/lt/lte; dates as epoch millis or ISO 8601), ``terms``, ``term``,
``exists``, ``match_all``; anything else is a 400 ``parsing_exception``. Dates sort
as epoch millis; ``_shard_doc`` is the document's insertion number. Every request
is recorded (method, path, params, body) so tests can check how they were paged.

Example:
    >>> with EsLoopback() as es:
    ...     es.add_index("m", [{"ts": "2024-01-01T00:00:00Z", "v": 1.0}], date_fields=["ts"])
    ...     es.url.startswith("http://127.0.0.1:")
    True
"""

from __future__ import annotations

import base64
import bisect
import functools
import itertools
import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from tests.fakes.loopback import JsonLoopback

__all__ = ["EsLoopback", "Recorded"]

_LONG_MAX = 9_223_372_036_854_775_807
_LONG_MIN = -9_223_372_036_854_775_808
_MAX_RESULT_WINDOW = 10_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Recorded:
    """One request the server received (its JSON body decoded) and the PIT id it answered with."""

    method: str
    path: str
    params: dict[str, str]
    body: Any
    headers: dict[str, str]
    status: int = 0
    response_pit_id: str | None = None


class _Reject(Exception):
    """An Elasticsearch error response to send back."""

    def __init__(self, status: int, kind: str, reason: str, **extra: Any) -> None:
        super().__init__(reason)
        self.status = status
        self.body = _error_body(status, kind, reason, **extra)
        self.headers: dict[str, str] = {}


def _error_body(status: int, kind: str, reason: str, **extra: Any) -> dict[str, Any]:
    """The documented error shape: ``{"error": {"root_cause": [...], "type", "reason"}, "status"}``."""
    cause = {"type": kind, "reason": reason, **extra}
    return {"error": {"root_cause": [cause], **cause}, "status": status}


@functools.lru_cache(maxsize=1 << 16)
def _millis(value: Any) -> int:
    """Epoch milliseconds of a date value (number, digit string or ISO 8601; naive = UTC)."""
    if isinstance(value, bool):
        raise ValueError(f"not a date: {value!r}")
    if isinstance(value, int | float):
        return int(value)
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        return int(text)
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def _get(doc: Mapping[str, Any], path: str) -> Any:
    """A field by dotted path, flat (``"a.b"``) or nested (``{"a": {"b": ..}}``); None if absent."""
    if path in doc:
        return doc[path]
    node: Any = doc
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _pick(doc: Mapping[str, Any], paths: Sequence[str]) -> dict[str, Any]:
    """The ``_source`` subset holding ``paths`` (nested objects kept nested)."""
    out: dict[str, Any] = {}
    for path in paths:
        if path in doc:
            out[path] = doc[path]
            continue
        value = _get(doc, path)
        if value is None and not _has(doc, path):
            continue
        parts = path.split(".")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def _has(doc: Mapping[str, Any], path: str) -> bool:
    node: Any = doc
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


@dataclass
class _Index:
    docs: list[dict[str, Any]]
    date_fields: frozenset[str]


@dataclass
class _Pit:
    index: str
    docs: list[tuple[int, dict[str, Any]]]  # (shard_doc, source) snapshot at open time
    date_fields: frozenset[str]
    ids: set[str] = field(default_factory=set)
    # (query, sort) -> sorted hits and their keys: a PIT's view never changes, so later
    # pages of the same search reuse the first page's work
    cache: dict[str, tuple[list[Any], list[tuple[Any, ...]]]] = field(default_factory=dict)


class EsLoopback(JsonLoopback):
    """An in-memory Elasticsearch 9 look-alike on ``127.0.0.1`` (a free port), for tests.

    ``basic_auth`` makes every request require those credentials (401 otherwise);
    ``product_header=False`` drops ``X-Elastic-Product`` (the client must refuse it);
    ``shard_failures`` reports that many failed shards on every search.

    Example:
        >>> with EsLoopback(basic_auth=("elastic", "pw")) as es:
        ...     es.add_index("m", [])
        ...     sorted(es.indices)
        ['m']
    """

    def __init__(
        self,
        *,
        basic_auth: tuple[str, str] | None = None,
        rotate_pit_ids: bool = True,
        product_header: bool = True,
        shard_failures: int = 0,
        version: str = "9.1.0",
    ) -> None:
        super().__init__()
        self.basic_auth = basic_auth
        self.rotate_pit_ids = rotate_pit_ids
        self.product_header = product_header
        self.shard_failures = shard_failures
        self.version = version
        self.indices: dict[str, _Index] = {}
        self.requests: list[Recorded] = []
        self._pits: dict[str, _Pit] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def response_headers(self, request_headers: dict[str, str]) -> dict[str, str]:
        """The content type Elasticsearch's client asked for, and the product header."""
        compatible = "compatible-with" in request_headers.get("accept", "")
        out = {
            "Content-Type": "application/vnd.elasticsearch+json;compatible-with=9"
            if compatible
            else "application/json"
        }
        if self.product_header:
            out["X-Elastic-Product"] = "Elasticsearch"
        return out

    # ---- data and inspection ---------------------------------------------------------------
    def add_index(
        self, name: str, docs: Iterable[Mapping[str, Any]], *, date_fields: Iterable[str] = ()
    ) -> None:
        """Create (or replace) an index holding ``docs`` as ``_source``; ``date_fields`` sort as dates."""
        with self._lock:
            self.indices[name] = _Index([dict(d) for d in docs], frozenset(date_fields))

    @property
    def open_pits(self) -> int:
        """How many points in time are still open."""
        with self._lock:
            return len({id(p) for p in self._pits.values()})

    def searches(self) -> list[Recorded]:
        """The recorded search requests, in order."""
        return [r for r in self.requests if r.path.endswith("/_search")]

    # ---- request handling ------------------------------------------------------------------
    def handle(
        self, method: str, target: str, headers: Mapping[str, str], raw: bytes
    ) -> tuple[int, dict[str, str], Any]:
        """Answer one request: (status, extra headers, JSON body or None for HEAD)."""
        parts = urlsplit(target)
        path = unquote(parts.path)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        status, extra, payload = 200, {}, None
        try:
            self._check_auth(headers, path)
            self._check_media_type(headers)
            status, payload = self._route(method, path, params, body)
        except _Reject as rej:
            status, extra, payload = rej.status, rej.headers, rej.body
        pit_id = payload.get("pit_id", payload.get("id")) if isinstance(payload, dict) else None
        with self._lock:
            self.requests.append(
                Recorded(method, path, params, body, dict(headers), status, pit_id)
            )
        return status, extra, payload

    def _check_auth(self, headers: Mapping[str, str], path: str) -> None:
        if self.basic_auth is None:
            return
        given = headers.get("authorization", "")
        user, password = self.basic_auth
        expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        if given == expected:
            return
        if not given:
            reason = f"missing authentication credentials for REST request [{path}]"
        else:
            name = "?"
            if given.startswith("Basic "):
                name = base64.b64decode(given[6:]).decode("utf-8", "replace").split(":", 1)[0]
            reason = f"unable to authenticate user [{name}] for REST request [{path}]"
        rej = _Reject(401, "security_exception", reason)
        rej.headers["WWW-Authenticate"] = 'Basic realm="security", charset="UTF-8"'
        raise rej

    def _check_media_type(self, headers: Mapping[str, str]) -> None:
        for name in ("accept", "content-type"):
            value = headers.get(name, "")
            if "compatible-with=" in value:
                version = value.split("compatible-with=", 1)[1].split(";")[0].strip()
                if version not in ("8", "9"):
                    raise _Reject(
                        400,
                        "media_type_header_exception",
                        f"Invalid media-type value on headers [{name.title()}]",
                    )

    def _route(
        self, method: str, path: str, params: Mapping[str, str], body: Any
    ) -> tuple[int, Any]:
        segments = [s for s in path.split("/") if s]
        if method in ("GET", "HEAD") and not segments:
            return 200, (None if method == "HEAD" else self._info())
        if method == "POST" and len(segments) == 2 and segments[1] == "_pit":
            return 200, self._open_pit(segments[0], params)
        if method == "DELETE" and segments == ["_pit"]:
            return self._close_pit(body)
        if method in ("GET", "POST") and segments and segments[-1] == "_search":
            index = segments[0] if len(segments) == 2 else None
            return 200, self._search(index, params, body if isinstance(body, dict) else {})
        raise _Reject(
            405 if segments else 400,
            "illegal_argument_exception",
            f"Incorrect HTTP method for uri [{path}] and method [{method}]",
        )

    def _info(self) -> dict[str, Any]:
        return {
            "name": "loopback-node",
            "cluster_name": "opslens-loopback",
            "cluster_uuid": "bG9vcGJhY2stY2x1c3Rlcg",
            "version": {
                "number": self.version,
                "build_flavor": "default",
                "build_type": "tar",
                "build_hash": "0" * 40,
                "build_date": "2025-01-01T00:00:00.000Z",
                "build_snapshot": False,
                "lucene_version": "10.2.0",
                "minimum_wire_compatibility_version": "8.19.0",
                "minimum_index_compatibility_version": "8.0.0",
            },
            "tagline": "You Know, for Search",
        }

    def _resolve(self, expression: str) -> list[str]:
        names = [n for n in expression.split(",") if n]
        for name in names:
            if name not in self.indices:
                raise _Reject(
                    404,
                    "index_not_found_exception",
                    f"no such index [{name}]",
                    **{
                        "resource.type": "index_or_alias",
                        "resource.id": name,
                        "index_uuid": "_na_",
                        "index": name,
                    },
                )
        return names

    def _new_id(self) -> str:
        return base64.urlsafe_b64encode(f"loopback-pit-{next(self._ids)}".encode()).decode()

    def _open_pit(self, expression: str, params: Mapping[str, str]) -> dict[str, Any]:
        if "keep_alive" not in params:
            raise _Reject(
                400,
                "action_request_validation_exception",
                "Validation Failed: 1: [keep_alive] is not specified;",
            )
        with self._lock:
            names = self._resolve(expression)
            docs: list[tuple[int, dict[str, Any]]] = []
            dates: set[str] = set()
            for name in names:
                docs.extend((len(docs), d) for d in self.indices[name].docs)
                dates |= self.indices[name].date_fields
            pit = _Pit(expression, docs, frozenset(dates))
            pit_id = self._new_id()
            pit.ids.add(pit_id)
            self._pits[pit_id] = pit
        return {
            "id": pit_id,
            "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
        }

    def _close_pit(self, body: Any) -> tuple[int, dict[str, Any]]:
        pit_id = body.get("id") if isinstance(body, dict) else None
        with self._lock:
            pit = self._pits.get(str(pit_id))
            if pit is None:
                return 404, {"succeeded": True, "num_freed": 0}
            for alias in pit.ids:
                self._pits.pop(alias, None)
        return 200, {"succeeded": True, "num_freed": 1}

    def _search(
        self, index: str | None, params: Mapping[str, str], body: dict[str, Any]
    ) -> dict[str, Any]:
        pit_spec = body.get("pit")
        with self._lock:
            if pit_spec is not None:
                if index is not None:
                    raise _Reject(
                        400,
                        "illegal_argument_exception",
                        "[indices] cannot be used with point in time. "
                        "Do not specify any index with point in time.",
                    )
                pit = self._pits.get(str(pit_spec.get("id")))
                if pit is None:
                    raise _Reject(
                        404,
                        "search_context_missing_exception",
                        f"No search context found for id [{pit_spec.get('id')}]",
                    )
                docs, dates, label = pit.docs, pit.date_fields, pit.index
            else:
                names = self._resolve(index or ",".join(self.indices))
                docs = []
                for name in names:
                    docs.extend((len(docs), d) for d in self.indices[name].docs)
                dates = frozenset().union(*(self.indices[n].date_fields for n in names))
                label, pit = ",".join(names), None
        size = int(body.get("size", params.get("size", 10)))
        start = int(body.get("from", params.get("from", 0)))
        if pit is None and start + size > _MAX_RESULT_WINDOW:
            raise _Reject(
                400,
                "illegal_argument_exception",
                f"Result window is too large, from + size must be less than or equal to: "
                f"[{_MAX_RESULT_WINDOW}] but was [{start + size}].",
            )
        query = body.get("query", {"match_all": {}})
        sort = _sort_spec(body.get("sort"))
        signature = json.dumps([query, sort], sort_keys=True, default=str)
        cached = pit.cache.get(signature) if pit is not None else None
        if cached is None:
            matched = [(seq, d) for seq, d in docs if _matches(query, d, frozenset(dates))]
            keyed = sorted(
                (_sort_key(sort, seq, d, frozenset(dates)) for seq, d in matched),
                key=lambda item: item[0],
            )
            cached = (keyed, [k for k, _, _, _ in keyed])
            if pit is not None:
                pit.cache[signature] = cached
        keyed, keys = cached
        first = 0
        if body.get("search_after") is not None:
            after = _after_key(sort, body["search_after"], frozenset(dates))
            first = bisect.bisect_right(keys, after)
        page = keyed[first + start : first + start + size]
        includes = _includes(body.get("_source"), params)
        hits = [
            {
                "_index": label,
                "_id": str(seq),
                "_score": None,
                "_source": d if includes is None else _pick(d, includes),
                "sort": values,
            }
            for _, values, seq, d in page
        ]
        total = len(keyed)
        hits_obj: dict[str, Any] = {"max_score": None, "hits": hits}
        tracking = body.get("track_total_hits", _MAX_RESULT_WINDOW)
        if tracking is True:
            hits_obj["total"] = {"value": total, "relation": "eq"}
        elif tracking is not False:
            limit = int(tracking)
            hits_obj["total"] = {
                "value": min(total, limit),
                "relation": "eq" if total <= limit else "gte",
            }
        failed = self.shard_failures
        shards: dict[str, Any] = {
            "total": max(1, failed + 1),
            "successful": 1,
            "skipped": 0,
            "failed": failed,
        }
        if failed:
            shards["failures"] = [
                {
                    "shard": 1,
                    "index": label,
                    "reason": {"type": "node_not_connected_exception", "reason": "node left"},
                }
            ]
        response: dict[str, Any] = {"took": 1, "timed_out": False, "_shards": shards}
        if pit is not None and pit_spec is not None:
            with self._lock:
                pit_id = str(pit_spec["id"])
                if self.rotate_pit_ids:
                    pit_id = self._new_id()
                    pit.ids.add(pit_id)
                    self._pits[pit_id] = pit
            response = {"pit_id": pit_id, **response}
        response["hits"] = hits_obj
        return response


# ---- query, sort and _source semantics ---------------------------------------------------------
def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _matches(query: Mapping[str, Any], doc: Mapping[str, Any], dates: frozenset[str]) -> bool:
    if not isinstance(query, Mapping) or len(query) != 1:
        raise _Reject(400, "parsing_exception", "query malformed, must start with start_object")
    ((kind, spec),) = query.items()
    if kind == "match_all":
        return True
    if kind == "bool":
        must = _as_list(spec.get("filter")) + _as_list(spec.get("must"))
        if not all(_matches(q, doc, dates) for q in must):
            return False
        if any(_matches(q, doc, dates) for q in _as_list(spec.get("must_not"))):
            return False
        should = _as_list(spec.get("should"))
        return not should or any(_matches(q, doc, dates) for q in should)
    if kind == "range":
        ((name, bounds),) = spec.items()
        value = _get(doc, name)
        if value is None:
            return False
        try:
            conv = _millis if name in dates else float
            v = conv(value)
            checks = {
                "gte": lambda b: v >= conv(b),
                "gt": lambda b: v > conv(b),
                "lte": lambda b: v <= conv(b),
                "lt": lambda b: v < conv(b),
            }
            return all(checks[op](b) for op, b in bounds.items() if op in checks)
        except ValueError as exc:
            raise _Reject(400, "parse_exception", f"failed to parse date field [{exc}]") from exc
    if kind in ("terms", "term"):
        ((name, wanted),) = ((k, v) for k, v in spec.items() if k != "boost")
        if kind == "term" and isinstance(wanted, Mapping):
            wanted = wanted.get("value")
        options = set(_as_list(wanted)) if kind == "terms" else {wanted}
        return any(v in options for v in _as_list(_get(doc, name)))
    if kind == "exists":
        return _get(doc, spec["field"]) is not None
    raise _Reject(400, "parsing_exception", f"unknown query [{kind}]", line=1, col=1)


def _sort_spec(raw: Any) -> list[tuple[str, bool]]:
    """``[(field, descending)]``; ``_shard_doc`` appended as the tiebreaker when missing."""
    spec: list[tuple[str, bool]] = []
    for item in _as_list(raw):
        if isinstance(item, str):
            spec.append((item, False))
            continue
        ((name, order),) = item.items()
        if isinstance(order, Mapping):
            order = order.get("order", "asc")
        spec.append((name, str(order) == "desc"))
    if not any(name == "_shard_doc" for name, _ in spec):
        spec.append(("_shard_doc", False))
    return spec


def _sort_value(
    name: str, seq: int, doc: Mapping[str, Any], dates: frozenset[str], desc: bool
) -> Any:
    if name == "_shard_doc":
        return seq
    value = _get(doc, name)
    if value is None:
        return _LONG_MIN if desc else _LONG_MAX
    return _millis(value) if name in dates else value


def _key_part(value: Any, desc: bool) -> Any:
    if not desc:
        return value
    if isinstance(value, int | float):
        return -value
    raise _Reject(400, "illegal_argument_exception", "descending sort only on numbers and dates")


def _sort_key(
    spec: list[tuple[str, bool]], seq: int, doc: dict[str, Any], dates: frozenset[str]
) -> tuple[tuple[Any, ...], list[Any], int, dict[str, Any]]:
    values = [_sort_value(name, seq, doc, dates, desc) for name, desc in spec]
    key = tuple(_key_part(v, desc) for v, (_, desc) in zip(values, spec, strict=True))
    return key, values, seq, doc


def _after_key(spec: list[tuple[str, bool]], after: Any, dates: frozenset[str]) -> tuple[Any, ...]:
    values = _as_list(after)
    if len(values) != len(spec):
        raise _Reject(
            400,
            "illegal_argument_exception",
            f"search_after has {len(values)} value(s) but sort has {len(spec)}.",
        )
    out = []
    for value, (name, desc) in zip(values, spec, strict=True):
        if name in dates and isinstance(value, str):
            value = _millis(value)
        out.append(_key_part(value, desc))
    return tuple(out)


def _includes(source: Any, params: Mapping[str, str]) -> list[str] | None:
    """The ``_source`` fields to return; None for the whole document."""
    if "_source_includes" in params:
        return params["_source_includes"].split(",")
    if source is None or source is True:
        return None
    if source is False:
        return []
    if isinstance(source, str):
        return [source]
    if isinstance(source, list):
        return [str(s) for s in source]
    if isinstance(source, Mapping):
        inc = source.get("includes", source.get("include"))
        return None if inc is None else [str(s) for s in _as_list(inc)]
    return None
