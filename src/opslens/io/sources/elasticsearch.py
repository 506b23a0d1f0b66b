"""Read time-stamped documents from Elasticsearch into a polars frame.

:func:`read_elasticsearch` filters an index by a time window and a set of
entities, then streams every matching document with a point in time (PIT)
and ``search_after`` paging, so millions of documents come back without
the 10,000-hit limit of ``from``/``size`` paging. Each page's ``_source``
objects become one polars frame; the pages are concatenated once at the end.

Time values may be epoch milliseconds (numbers or digit strings) or ISO 8601
strings; they come back as a naive ``Datetime("us")`` column in UTC (values
with an offset are converted to UTC, values without one are taken as UTC,
as Elasticsearch does). Nested objects are flattened to dotted column names
(``{"cpu": {"pct": 1}}`` becomes ``cpu.pct``).

Errors: anything that stops the read (unreachable host, bad credentials,
unknown index, a refused query, an expired PIT, failed shards) raises
:class:`~opslens.errors.SourceError` in one line naming the host (passwords
masked), the index and the fix; a time field whose values are not dates raises
:class:`~opslens.errors.DataError`. An empty result is not an error: the frame
has the expected columns and no rows.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import polars as pl
from elasticsearch import (
    ApiError,
    AuthenticationException,
    AuthorizationException,
    ConnectionError,
    ConnectionTimeout,
    Elasticsearch,
    NotFoundError,
    SerializationError,
    SSLError,
    TransportError,
    UnsupportedProductError,
)

from opslens.config import mask_secrets
from opslens.errors import DataError, OpslensWarning, SourceError

__all__ = ["build_query", "read_elasticsearch"]

_DIGITS = r"^\s*-?\d+\s*$"


def _iso(moment: datetime) -> str:
    """An ISO 8601 string in UTC for a range bound (naive datetimes are taken as UTC)."""
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return aware.isoformat().replace("+00:00", "Z")


def build_query(
    *,
    time_field: str,
    start: datetime | None = None,
    end: datetime | None = None,
    entity_field: str | None = None,
    entities: Sequence[str] | None = None,
    query: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Build the bool query: time range ``[start, end)``, entity terms, the user's query as ``must``.

    Example:
        >>> build_query(time_field="ts", start=datetime(2024, 1, 1), entity_field="device",
        ...             entities=["a", "b"])
        {'bool': {'filter': [{'range': {'ts': {'gte': '2024-01-01T00:00:00Z'}}}, {'terms': {'device': ['a', 'b']}}]}}
        >>> build_query(time_field="ts")
        {'match_all': {}}
    """
    filters: list[dict[str, Any]] = []
    bounds: dict[str, str] = {}
    if start is not None:
        bounds["gte"] = _iso(start)
    if end is not None:
        bounds["lt"] = _iso(end)
    if bounds:
        filters.append({"range": {time_field: bounds}})
    if entities is not None:
        if entity_field is None:
            raise SourceError(
                "an entity filter was given without the entity field to apply it to",
                fix="set columns.entity (the device id field) or drop the entity list",
            )
        wanted = [entities] if isinstance(entities, str) else list(entities)
        filters.append({"terms": {entity_field: wanted}})
    if not filters and not query:
        return {"match_all": {}}
    clauses: dict[str, Any] = {"filter": filters}
    if query:
        clauses["must"] = [dict(query)]
    return {"bool": clauses}


def read_elasticsearch(
    *,
    hosts: str | Sequence[str],
    index: str,
    time_field: str,
    fields: Sequence[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    entity_field: str | None = None,
    entities: Sequence[str] | None = None,
    query: Mapping[str, Any] | None = None,
    page_size: int = 5000,
    keep_alive: str = "2m",
    api_key: str | None = None,
    basic_auth: tuple[str, str] | None = None,
    verify_certs: bool = True,
    request_timeout: float = 30.0,
    client: Elasticsearch | None = None,
) -> pl.DataFrame:
    """Read every document of ``index`` in ``[start, end)`` (and ``entities``) with PIT paging.

    ``hosts`` are full URLs (``http://127.0.0.1:9200``; the scheme and port are
    required). The returned frame holds ``entity_field`` (if given), ``time_field``
    (naive UTC ``Datetime("us")``) and ``fields`` (all ``_source`` fields when
    ``None``), sorted by time; a requested field that no document holds is absent
    (the caller's column check names it). A given ``client`` is used as it is and
    not closed.

    Example:
        >>> try:
        ...     read_elasticsearch(hosts="http://127.0.0.1:1", index="metrics", time_field="ts")
        ... except SourceError as err:
        ...     print(err.fix)
        check source.hosts and that the server is running
    """
    host_list = [hosts] if isinstance(hosts, str) else list(hosts)
    where = ", ".join(mask_secrets(h) for h in host_list) or "(no host)"
    if page_size < 1:
        raise SourceError(
            f"page size {page_size} for Elasticsearch index '{index}' is not positive",
            fix="set source.page_size to a positive number such as 5000",
        )
    search_query = build_query(
        time_field=time_field,
        start=start,
        end=end,
        entity_field=entity_field,
        entities=entities,
        query=query,
    )
    owned = client is None
    es = (
        client
        if client is not None
        else _connect(host_list, where, api_key, basic_auth, verify_certs, request_timeout)
    )
    if not owned:
        where = _client_hosts(es) or where
    keep: list[str] = [c for c in (entity_field, time_field) if c is not None]
    includes = list(dict.fromkeys([*keep, *fields])) if fields is not None else None
    try:
        pages = _fetch_pages(es, index, search_query, time_field, includes, page_size, keep_alive)
    except (ApiError, TransportError) as exc:
        raise _translate(exc, where=where, index=index, keep_alive=keep_alive) from exc
    finally:
        if owned:
            es.close()
    return _assemble(pages, index=index, time_field=time_field, keep=keep, fields=fields)


def _connect(
    hosts: list[str],
    where: str,
    api_key: str | None,
    basic_auth: tuple[str, str] | None,
    verify_certs: bool,
    request_timeout: float,
) -> Elasticsearch:
    """A client that fails fast: no retries, so an unreachable host errors at once."""
    for host in hosts:
        parts = urlsplit(host)
        if not parts.scheme or not parts.hostname or parts.port is None:
            raise SourceError(
                f"Elasticsearch host '{mask_secrets(host)}' is not a full URL",
                fix="write it with scheme and port, e.g. http://127.0.0.1:9200 or https://es.example:9200",
            )
    try:
        return Elasticsearch(
            hosts,
            api_key=api_key,
            basic_auth=basic_auth,
            verify_certs=verify_certs,
            request_timeout=request_timeout,
            max_retries=0,
            retry_on_timeout=False,
        )
    except (ValueError, TypeError) as exc:
        raise SourceError(
            f"cannot configure an Elasticsearch client for {where}: {mask_secrets(str(exc))}",
            fix="check source.hosts, source.api_key and source.basic_auth",
        ) from exc


def _client_hosts(es: Elasticsearch) -> str:
    """The node URLs of a client, for messages."""
    try:
        return ", ".join(mask_secrets(str(node.base_url)) for node in es.transport.node_pool.all())
    except AttributeError:
        return ""


def _fetch_pages(
    es: Elasticsearch,
    index: str,
    search_query: dict[str, Any],
    time_field: str,
    includes: list[str] | None,
    page_size: int,
    keep_alive: str,
) -> list[pl.DataFrame]:
    """Open a PIT, page through it with ``search_after``, always close it; one frame per page."""
    pit_id: str = es.open_point_in_time(index=index, keep_alive=keep_alive)["id"]
    pages: list[pl.DataFrame] = []
    sort = [{time_field: "asc"}, {"_shard_doc": "asc"}]
    source: dict[str, Any] | bool = {"includes": includes} if includes is not None else True
    search_after: list[Any] | None = None
    finished = False
    try:
        while True:
            resp = es.search(
                pit={"id": pit_id, "keep_alive": keep_alive},
                query=search_query,
                sort=sort,
                size=page_size,
                source=source,
                track_total_hits=False,
                search_after=search_after,
            )
            pit_id = resp.get("pit_id", pit_id)
            _check_complete(resp, index)
            hits = resp["hits"]["hits"]
            if hits:
                pages.append(_page_frame(hits))
                search_after = hits[-1]["sort"]
            if len(hits) < page_size:
                break
        finished = True
    finally:
        try:
            es.close_point_in_time(id=pit_id)
        except (ApiError, TransportError) as exc:
            # The PIT expires by itself after keep_alive; a failed close must not
            # hide the data already read, nor the error that brought us here.
            if finished:
                warnings.warn(
                    f"could not close the point in time on index '{index}' ({exc}); "
                    f"it expires by itself after {keep_alive}",
                    OpslensWarning,
                    stacklevel=3,
                )
    return pages


def _check_complete(resp: Any, index: str) -> None:
    """Refuse partial pages: failed shards or a timed-out search would silently drop documents."""
    shards = resp.get("_shards") or {}
    failed = int(shards.get("failed") or 0)
    if failed:
        failures = shards.get("failures") or [{}]
        reason = (failures[0].get("reason") or {}).get("reason", "no reason given")
        raise SourceError(
            f"{failed} of {shards.get('total', '?')} shards of index '{index}' failed "
            f"while reading ({reason})",
            fix="check the cluster health (GET _cluster/health) and read again",
        )
    if resp.get("timed_out"):
        raise SourceError(
            f"a search on index '{index}' timed out and returned partial results",
            fix="narrow the time window or raise source.request_timeout",
        )


def _error_parts(exc: ApiError) -> tuple[str, str]:
    """The error type and the most specific reason of an Elasticsearch error body."""
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error")
    if not isinstance(error, dict):
        return str(exc.message), str(error or exc.message)
    kind = str(error.get("type") or exc.message)
    reason = error.get("reason")
    if not reason or reason == "all shards failed":
        causes = error.get("root_cause") or [{}]
        caused_by = error.get("caused_by") or {}
        first = causes[0] if isinstance(causes[0], dict) else {}
        reason = first.get("reason") or caused_by.get("reason") or reason
    text = " ".join(str(reason or kind).split())
    return kind, text[:300]


def _translate(
    exc: ApiError | TransportError, *, where: str, index: str, keep_alive: str
) -> SourceError:
    """One actionable line for a client error: what failed, where, and the fix."""
    at = f"Elasticsearch at {where}"
    if isinstance(exc, SSLError):
        return SourceError(
            f"TLS with {at} failed while reading index '{index}' ({mask_secrets(exc.message)})",
            fix="use the scheme the server speaks (http:// or https://) in source.hosts; "
            "for a self-signed certificate set source.verify_certs: false",
        )
    if isinstance(exc, ConnectionTimeout):
        return SourceError(
            f"{at} did not answer in time while reading index '{index}'",
            fix="check source.hosts and the network, or raise source.request_timeout",
        )
    if isinstance(exc, ConnectionError):
        reason = mask_secrets(str(exc.message)).split("): ", 1)[-1]
        return SourceError(
            f"could not reach {at} ({reason}) while reading index '{index}'",
            fix="check source.hosts and that the server is running",
        )
    if isinstance(exc, SerializationError):
        return SourceError(
            f"{at} sent a response that could not be decoded while reading index '{index}'",
            fix="check that source.hosts points at Elasticsearch, not another HTTP service",
        )
    if isinstance(exc, UnsupportedProductError):
        return SourceError(
            f"the server at {where} is not Elasticsearch (no 'X-Elastic-Product: Elasticsearch' header)",
            fix="point source.hosts at an Elasticsearch 8 or 9 server",
        )
    if isinstance(exc, AuthenticationException):
        return SourceError(
            f"{at} rejected the credentials (401) while reading index '{index}'",
            fix="check source.api_key or source.basic_auth (user and password)",
        )
    if isinstance(exc, AuthorizationException):
        _, reason = _error_parts(exc)
        return SourceError(
            f"the credentials used for {at} may not read index '{index}' (403: {reason})",
            fix=f"grant the 'read' privilege on '{index}' to that user or API key",
        )
    if isinstance(exc, ApiError):
        kind, reason = _error_parts(exc)
        if isinstance(exc, NotFoundError) and kind == "index_not_found_exception":
            return SourceError(
                f"index '{index}' does not exist on {at}",
                fix="check source.index (GET /_cat/indices lists the indices)",
            )
        if kind == "search_context_missing_exception":
            return SourceError(
                f"the point in time on index '{index}' at {where} expired while reading",
                fix=f"raise source.keep_alive (now {keep_alive})",
            )
        return SourceError(
            f"{at} refused the search on index '{index}' ({exc.meta.status} {kind}: {reason})",
            fix="check source.query, columns.time and columns.entity against the index mapping",
        )
    return SourceError(
        f"could not read index '{index}' from {at} ({mask_secrets(str(exc))})",
        fix="check source.hosts and that the server is running",
    )


def _page_frame(hits: list[dict[str, Any]]) -> pl.DataFrame:
    """One page of hits as a frame, nested objects flattened to dotted names."""
    frame = pl.from_dicts([hit.get("_source") or {} for hit in hits], infer_schema_length=None)
    while any(isinstance(dtype, pl.Struct) for dtype in frame.schema.values()):
        frame = frame.select(
            pl.col(name).struct.unnest().name.prefix(f"{name}.")
            if isinstance(dtype, pl.Struct)
            else pl.col(name)
            for name, dtype in frame.schema.items()
        )
    return frame


def _parse_time(frame: pl.DataFrame, time_field: str, index: str) -> pl.DataFrame:
    """Turn epoch milliseconds or ISO 8601 strings into naive UTC ``Datetime("us")``."""
    col = frame.get_column(time_field)
    dtype = col.dtype
    try:
        if dtype == pl.Null:
            parsed = col.cast(pl.Datetime("us"))
        elif dtype.is_integer():
            parsed = pl.from_epoch(col.cast(pl.Int64) * 1000, time_unit="us")
        elif dtype.is_float():
            parsed = pl.from_epoch((col * 1000.0).round().cast(pl.Int64), time_unit="us")
        elif dtype == pl.String and bool(col.drop_nulls().str.contains(_DIGITS).all()):
            parsed = pl.from_epoch(col.str.strip_chars().cast(pl.Int64) * 1000, time_unit="us")
        elif dtype == pl.String:
            parsed = col.str.to_datetime(time_unit="us", strict=True)
            if isinstance(parsed.dtype, pl.Datetime) and parsed.dtype.time_zone is not None:
                parsed = parsed.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        else:
            raise TypeError(str(dtype))
    except (pl.exceptions.PolarsError, TypeError) as exc:
        sample = col.drop_nulls().head(1).to_list()
        raise DataError(
            f"time field '{time_field}' of index '{index}' holds values that are not dates "
            f"(type {dtype}, e.g. {sample[0] if sample else None!r})",
            fix="store ISO 8601 strings or epoch milliseconds there, or set columns.time to the date field",
        ) from exc
    return frame.with_columns(parsed.alias(time_field))


def _assemble(
    pages: list[pl.DataFrame],
    *,
    index: str,
    time_field: str,
    keep: list[str],
    fields: Sequence[str] | None,
) -> pl.DataFrame:
    """Concatenate the pages once; order columns as entity, time, fields; empty frame if no hits."""
    wanted = list(dict.fromkeys([*keep, *(fields or [])]))
    if not pages:
        schema: dict[str, pl.DataType] = {name: pl.Float64() for name in wanted}
        schema[time_field] = pl.Datetime("us")
        if len(keep) == 2:
            schema[keep[0]] = pl.String()
        return pl.DataFrame(schema=schema)
    seen = list(dict.fromkeys(name for page in pages for name in page.columns))
    if time_field not in seen:
        raise DataError(
            f"no document read from index '{index}' has the time field '{time_field}' "
            f"(fields seen: {', '.join(seen[:12]) or 'none'})",
            fix="set columns.time to a date field of the index",
        )
    parsed = [
        _parse_time(page, time_field, index) if time_field in page.columns else page
        for page in pages
    ]
    frame = pl.concat(parsed, how="diagonal_relaxed") if len(parsed) > 1 else parsed[0]
    if frame.schema.get(time_field) != pl.Datetime("us"):
        frame = frame.with_columns(pl.col(time_field).cast(pl.Datetime("us")))
    order = [name for name in wanted if name in frame.columns]
    order += [name for name in frame.columns if name not in order]
    return frame.select(order)
