r"""The Data page: read a fleet table, give its columns roles, filter it, use it.

Sources: the demo fleet, an uploaded CSV/Parquet file (up to 1 GB), a
PostgreSQL table or query, an Elasticsearch index. The table read is turned
into the WIDE frame every page analyses (an entity column, a time column,
numeric metric columns; a LONG table is pivoted first), previewed, described
and filtered; "Use this data" makes it the session's data. "Run now" starts a real run
(:func:`opslens.ui.running.run_now`, the runner ``opslens run`` uses) of one of the
project's analyses, or of the fleet recipe on the data in use, and shows its stages as
they finish, its run folder and its verdict against the baselines.

Passwords and API keys stay in their widgets: they are not copied anywhere else
in the session, never passed to a cached function, and masked in every message.

Example:
    >>> read_table_bytes("t.csv", b"id,v\na,1\n").to_dicts()
    [{'id': 'a', 'v': 1}]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from io import BytesIO
from typing import Any
from urllib.parse import quote, quote_plus

import polars as pl
import streamlit as st

from opslens.config import ProjectConfig, mask_secrets
from opslens.core.columns import parse_time, require_numeric
from opslens.errors import DataError, OpslensError, SourceError
from opslens.features.table import describe_table, filter_table
from opslens.io.schema import to_wide
from opslens.ui.running import run_now, show_result
from opslens.ui.state import (
    HASH_FUNCS,
    LoadedData,
    get_data,
    project,
    project_root,
    set_data,
    show_error,
)

__all__ = [
    "MAX_UPLOAD_BYTES",
    "RAW",
    "SOURCES",
    "RawTable",
    "read_table_bytes",
    "render",
    "select_metrics",
    "shape_table",
    "sniff_separator",
    "table_project",
]

SOURCES = ("Demo fleet", "Upload CSV/Parquet", "PostgreSQL", "Elasticsearch")
LAYOUTS = ("WIDE", "LONG")
MAX_UPLOAD_BYTES = 1024**3
PREVIEW_ROWS = 200
RAW = "data_raw"
ROLE_KEYS = ("layout", "col_entity", "col_time", "col_key", "col_value", "col_metrics")
FILTER_KEYS = ("filter_devices", "filter_time")
DEMO_LABEL = "demo fleet (seed 0, 300 devices × 1000 hourly readings)"
DEMO_ROLES = ("device_id", "timestamp", ("temperature", "vibration", "current"))
ES_AUTH = ("None", "User and password", "API key")
#: the analysis a run of the table in use is committed as (the fleet recipe on it)
TABLE_ANALYSIS = "data-in-use"
RUN_RESULT = "data_run_result"


@dataclass(frozen=True)
class RawTable:
    """A table as read from a source, before its columns have roles.

    ``source_id`` tells one read from another (an upload's file id, ...);
    ``entity``/``time``/``metrics`` are suggested roles (None: guessed).
    """

    frame: pl.DataFrame
    label: str
    source_id: str
    entity: str | None = None
    time: str | None = None
    metrics: tuple[str, ...] | None = None


# --- pure helpers (no Streamlit) -----------------------------------------------------------


#: the separators offered for a CSV upload ("auto": sniffed from the header line)
SEPARATORS = {"auto": None, "comma ,": ",", "semicolon ;": ";", "tab": "\t", "pipe |": "|"}


def sniff_separator(data: bytes) -> str:
    """The usual separator (``,`` ``;`` tab ``|``) found most often in the header line.

    Example:
        >>> sniff_separator(b"id;t;v\\na;1;2,5\\n"), sniff_separator(b"v\\n1\\n")
        (';', ',')
    """
    header = data.split(b"\n", 1)[0]
    counts = {sep: header.count(sep.encode()) for sep in (",", ";", "\t", "|")}
    best = max(counts, key=lambda k: counts[k])
    return best if counts[best] else ","


def read_table_bytes(
    name: str, data: bytes, *, separator: str | None = None, encoding: str = "utf-8"
) -> pl.DataFrame:
    """Read an uploaded file's bytes: Parquet for ``.parquet``/``.pq``, CSV otherwise, with
    ``separator`` (None: sniffed from the header) and ``encoding`` (as the CLI's
    ``source.separator`` / ``source.encoding``).

    Example:
        >>> read_table_bytes("t.csv", b"id;v\\na;1\\n").columns
        ['id', 'v']
        >>> read_table_bytes("junk.parquet", b"not parquet")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        opslens.errors.SourceError: cannot read 'junk.parquet' as Parquet: ...
    """
    kind = "Parquet" if name.lower().endswith((".parquet", ".pq")) else "CSV"
    sep = separator or sniff_separator(data)
    try:
        if kind == "Parquet":
            frame = pl.read_parquet(BytesIO(data))
        else:
            text = data if encoding.lower() in ("utf-8", "utf8") else data.decode(encoding).encode()
            frame = pl.read_csv(BytesIO(text), separator=sep, infer_schema_length=None)
    except Exception as e:  # polars, pyarrow and the OS raise many kinds for a broken file
        text_ = str(e).strip()
        reason = text_.splitlines()[0][:200] if text_ else type(e).__name__
        raise SourceError(
            f"cannot read '{name}' as {kind}: {reason}",
            fix=f"upload a valid {kind} file"
            + (
                f" (a CSV needs a header row; choose its Separator and Encoding, "
                f"now {SHOWN.get(sep, sep)} and {encoding})"
                if kind == "CSV"
                else ""
            ),
        ) from None
    if frame.height == 0:
        raise SourceError(f"'{name}' holds no rows", fix="upload a file with data rows")
    if kind == "CSV" and frame.width == 1:
        raise SourceError(
            f"'{name}' was read as one column '{frame.columns[0][:60]}' with the separator "
            f"{SHOWN.get(sep, sep)}",
            fix="choose the file's Separator above (comma, semicolon, tab or pipe)",
        )
    return frame


SHOWN = {",": "',' (comma)", ";": "';' (semicolon)", "\t": "tab", "|": "'|' (pipe)"}


def _distinct(roles: dict[str, str]) -> None:
    seen: dict[str, str] = {}
    for role, column in roles.items():
        if column in seen:
            raise DataError(
                f"column '{column}' is chosen both as {seen[column]} and as {role}",
                fix="give each role its own column",
            )
        seen[column] = role


def shape_table(
    frame: pl.DataFrame,
    *,
    entity: str,
    time: str,
    layout: str = "WIDE",
    key: str | None = None,
    value: str | None = None,
) -> pl.DataFrame:
    """The table with a parsed time column, the entity as text and, for LONG, pivoted WIDE.

    Example:
        >>> long = pl.DataFrame({"id": [1, 1], "t": [0, 0], "k": ["a", "b"], "v": [1.0, 2.0]})
        >>> shape_table(long, entity="id", time="t", layout="LONG", key="k", value="v").columns
        ['id', 't', 'a', 'b']
    """
    roles = {"the entity": entity, "the time": time}
    if layout == "LONG":
        if key is None or value is None:
            raise DataError(
                "a LONG table needs a key column and a value column",
                fix="choose the column naming the metric (key) and the one holding its reading (value)",
            )
        roles |= {"the key": key, "the value": value}
    _distinct(roles)
    out = parse_time(frame, time, where="the table")
    out = out.with_columns(pl.col(entity).cast(pl.String))
    if layout == "LONG" and key is not None and value is not None:
        out = to_wide(out, index=[entity, time], key=key, value=value)
    return out


def select_metrics(
    frame: pl.DataFrame, *, entity: str, time: str, metrics: Sequence[str]
) -> pl.DataFrame:
    """Keep entity, time and the metrics (as Float64), sorted; DataError for a wrong choice.

    Example:
        >>> f = pl.DataFrame({"id": ["a"], "t": [0], "site": ["x"]})
        >>> select_metrics(f, entity="id", time="t", metrics=["site"])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        opslens.errors.DataError: column 'site' in the table is not numeric: 1 value(s) such as 'x' are not numbers...
    """
    if not metrics:
        raise DataError(
            "no metric column is chosen", fix="choose at least one numeric column under Metrics"
        )
    for name in metrics:
        if name in (entity, time):
            role = "entity" if name == entity else "time"
            raise DataError(
                f"column '{name}' is chosen both as the {role} and as a metric",
                fix="give each role its own column",
            )
    out = frame.select(entity, time, *metrics)
    for name in metrics:
        out = require_numeric(out, name, where="the table")
    return out.sort(entity, time)


def table_project(data: LoadedData, config: ProjectConfig | None = None) -> ProjectConfig:
    """A project of one fleet analysis (``TABLE_ANALYSIS``) reading ``data`` from memory, with
    the tracking and run folders of ``config`` (without one: ``runs/`` in the working folder,
    MLflow off), for the runner.

    Example:
        >>> d = LoadedData(pl.DataFrame({"id": ["a"], "t": [1], "v": [1.0]}), "id", "t", ["v"], "x")
        >>> table_project(d).analysis(TABLE_ANALYSIS).columns.metrics
        ['v']
    """
    from opslens.recipes import project_from_mapping

    tracking = config.tracking.model_dump(mode="json") if config else {"enabled": False}
    root = config.root if config else project_root()
    runs = str(config.runs_root()) if config else "runs"
    columns = {"entity": data.entity, "time": data.time, "metrics": list(data.metrics)}
    return project_from_mapping(
        {
            "tracking": tracking,
            "runs_dir": runs,
            "analyses": [
                {
                    "name": TABLE_ANALYSIS,
                    "recipe": "fleet",
                    "source": {"kind": "memory", "name": TABLE_ANALYSIS},
                    "columns": columns,
                }
            ],
        },
        root=root,
        where="the Data page's table",
    )


# --- cached steps (data and parameters only, never a secret) ---------------------------------


@st.cache_data(show_spinner="Making the demo fleet…")
def _demo_readings() -> pl.DataFrame:
    from opslens.synthetic.fleet import make_fleet

    return make_fleet(seed=0, n_devices=300, n_points=1000).readings


@st.cache_data(show_spinner="Preparing the columns…", hash_funcs=HASH_FUNCS, max_entries=8)
def _shape(
    frame: pl.DataFrame, entity: str, time: str, layout: str, key: str | None, value: str | None
) -> pl.DataFrame:
    return shape_table(frame, entity=entity, time=time, layout=layout, key=key, value=value)


@st.cache_data(show_spinner=False, hash_funcs=HASH_FUNCS, max_entries=8)
def _select(frame: pl.DataFrame, entity: str, time: str, metrics: tuple[str, ...]) -> pl.DataFrame:
    return select_metrics(frame, entity=entity, time=time, metrics=metrics)


@st.cache_data(show_spinner=False, hash_funcs=HASH_FUNCS, max_entries=8)
def _filter(
    frame: pl.DataFrame,
    entity: str,
    devices: tuple[str, ...] | None,
    time: str,
    start: datetime | None,
    end: datetime | None,
) -> pl.DataFrame:
    equals = {entity: list(devices)} if devices is not None else None
    return filter_table(frame, equals=equals, time=time, start=start, end=end)


@st.cache_data(show_spinner="Describing the table…", hash_funcs=HASH_FUNCS, max_entries=8)
def _describe(frame: pl.DataFrame) -> pl.DataFrame:
    return describe_table(frame)


# --- page ---------------------------------------------------------------------------------


def _masked(error: Exception, secrets: set[str]) -> OpslensError:
    """The error as an OpslensError whose problem and fix have every secret masked."""
    variants = {
        s
        for secret in secrets
        if secret
        for s in (secret, quote(secret, safe=""), quote_plus(secret))
    }
    if isinstance(error, OpslensError):
        fix = mask_secrets(error.fix, variants) if error.fix else None
        return type(error)(mask_secrets(error.problem, variants), fix=fix)
    text = str(error).strip()
    first = text.splitlines()[0][:300] if text else ""
    return SourceError(
        mask_secrets(f"{type(error).__name__}: {first}", variants),
        fix="check the connection settings",
    )


def _in_app_words(error: Exception) -> Exception:
    """A source error whose fix names the CLI's ``source.url`` told in the page's fields."""
    if isinstance(error, SourceError) and error.fix and "source.url" in error.fix:
        return SourceError(
            error.problem,
            fix="check the Host, Port, Database, User and Password fields above and that "
            "the server is running and accepts connections from this machine",
        )
    return error


def _summary(data: LoadedData) -> tuple[int, int]:
    return int(data.frame[data.entity].n_unique()), data.frame.height


def _use(data: LoadedData) -> None:
    set_data(data)
    n, rows = _summary(data)
    st.success(f"Loaded {n} devices, {rows:,} readings")


def _set_raw(raw: RawTable) -> None:
    """Remember a newly read table; the column roles and filters start afresh."""
    for key in (*ROLE_KEYS, *FILTER_KEYS):
        st.session_state.pop(key, None)
    st.session_state[RAW] = raw


def _keep_if(key: str, valid: Callable[[Any], bool]) -> None:
    """Drop a widget's remembered value that no longer fits its options (the default applies)."""
    if key in st.session_state and not valid(st.session_state[key]):
        del st.session_state[key]


def _demo() -> None:
    st.write(
        "A synthetic fleet: 300 devices × 1000 hourly readings of temperature, vibration and "
        "current, in three behaviour groups, with a few devices drifting towards failure."
    )
    if not st.button("Load the demo fleet", key="load_demo", type="primary"):
        return
    entity, time, metrics = DEMO_ROLES
    try:
        frame = _demo_readings()
        _set_raw(RawTable(frame, DEMO_LABEL, "demo", entity, time, metrics))
        table = _select(_shape(frame, entity, time, "WIDE", None, None), entity, time, metrics)
    except Exception as e:
        show_error(e)
        return
    _use(LoadedData(table, entity, time, list(metrics), DEMO_LABEL))


def _upload() -> None:
    uploaded = st.file_uploader(
        "A CSV or Parquet file (up to 1 GB)", type=["csv", "parquet"], key="upload"
    )
    c1, c2 = st.columns(2)
    chosen = c1.selectbox(
        "Separator (CSV)",
        list(SEPARATORS),
        key="upload_separator",
        help="as source.separator in project.yaml; auto: the one most frequent in the header",
    )
    encoding = (
        c2.text_input(
            "Encoding (CSV)",
            value="utf-8",
            key="upload_encoding",
            help="as source.encoding in project.yaml, e.g. utf-8, latin-1, cp1252",
        ).strip()
        or "utf-8"
    )
    if uploaded is None:
        return
    separator = SEPARATORS[str(chosen)]
    source_id = f"upload:{uploaded.file_id}:{chosen}:{encoding}"
    current = st.session_state.get(RAW)
    if isinstance(current, RawTable) and current.source_id == source_id:
        return
    if uploaded.size > MAX_UPLOAD_BYTES:
        show_error(
            SourceError(
                f"'{uploaded.name}' is {uploaded.size / 1024**3:.1f} GB, above the 1 GB upload limit",
                fix="upload a smaller extract (fewer devices or a shorter time range) or read it from PostgreSQL",
            )
        )
        return
    try:
        import codecs

        codecs.lookup(encoding)
        frame = read_table_bytes(
            uploaded.name, uploaded.getvalue(), separator=separator, encoding=encoding
        )
    except LookupError:
        st.session_state.pop(RAW, None)
        show_error(
            SourceError(f"unknown encoding '{encoding}'", fix="type e.g. utf-8, latin-1 or cp1252")
        )
        return
    except Exception as e:
        st.session_state.pop(RAW, None)
        show_error(e)
        return
    _set_raw(RawTable(frame, f"file {uploaded.name}", source_id))


def _postgres() -> None:
    from sqlalchemy import URL

    c1, c2, c3 = st.columns([3, 1, 2])
    host = c1.text_input("Host", value="127.0.0.1", key="pg_host")
    port = c2.text_input("Port", value="5432", key="pg_port")
    database = c3.text_input("Database", value="postgres", key="pg_database")
    c4, c5 = st.columns(2)
    user = c4.text_input("User", value="postgres", key="pg_user")
    password = c5.text_input("Password", type="password", key="pg_password")
    mode = st.radio("Read", ("Table", "Query"), key="pg_mode", horizontal=True)
    if mode == "Table":
        table: str | None = st.text_input("Table (or schema.table)", key="pg_table").strip()
        query: str | None = None
    else:
        table = None
        query = st.text_area("SQL query", key="pg_query").strip()
    if not st.button("Read from PostgreSQL", key="pg_load", type="primary"):
        return
    where = f"{user}@{host}:{port}/{database}"
    try:
        if not (table or query):
            raise SourceError(
                "no table or query is given", fix="type a table name or a SQL query to read"
            )
        if not port.strip().isdigit():
            raise SourceError(f"port '{port}' is not a number", fix="type the port, e.g. 5432")
        url = URL.create(
            "postgresql",
            username=user.strip() or None,
            password=password or None,
            host=host.strip() or None,
            port=int(port),
            database=database.strip() or None,
        ).render_as_string(hide_password=False)
        from opslens.io.sources.sql import read_sql

        with st.spinner(f"Reading from PostgreSQL at {host}:{port}…"):
            frame = read_sql(url, table=table or None, query=query or None)
        if frame.height == 0:
            raise SourceError(
                f"the {'table' if table else 'query'} at {where} returned no rows",
                fix="check the table or query",
            )
    except Exception as e:
        show_error(_masked(_in_app_words(e), {password}))
        return
    what = f"table {table}" if table else "a query"
    _set_raw(RawTable(frame, f"PostgreSQL {where}, {what}", f"pg:{where}:{table or query}"))


def _elasticsearch() -> None:
    hosts = st.text_input(
        "Hosts (comma-separated URLs)", value="http://127.0.0.1:9200", key="es_hosts"
    )
    c1, c2 = st.columns(2)
    index = c1.text_input("Index", key="es_index").strip()
    time_field = c2.text_input("Time field", value="@timestamp", key="es_time").strip()
    auth = st.radio("Authentication", ES_AUTH, key="es_auth", horizontal=True)
    user = password = api_key = ""
    if auth == ES_AUTH[1]:
        c3, c4 = st.columns(2)
        user = c3.text_input("User", key="es_user")
        password = c4.text_input("Password", type="password", key="es_password")
    elif auth == ES_AUTH[2]:
        api_key = st.text_input("API key", type="password", key="es_api_key")
    if not st.button("Read from Elasticsearch", key="es_load", type="primary"):
        return
    host_list = [h.strip() for h in hosts.split(",") if h.strip()]
    try:
        if not host_list or not index or not time_field:
            raise SourceError(
                "the hosts, the index and the time field are all needed",
                fix="type them, e.g. http://127.0.0.1:9200, metrics and @timestamp",
            )
        from opslens.io.sources.elasticsearch import read_elasticsearch

        with st.spinner(f"Reading index '{index}' from Elasticsearch…"):
            frame = read_elasticsearch(
                hosts=host_list,
                index=index,
                time_field=time_field,
                basic_auth=(user, password) if user else None,
                api_key=api_key or None,
            )
        if frame.height == 0:
            raise SourceError(
                f"index '{index}' returned no documents", fix="check the index and the time field"
            )
    except Exception as e:
        show_error(_masked(e, {password, api_key}))
        return
    where = ", ".join(mask_secrets(h, {password, api_key}) for h in host_list)
    _set_raw(
        RawTable(
            frame, f"Elasticsearch {where}, index {index}", f"es:{where}:{index}", time=time_field
        )
    )


def _guess_entity(frame: pl.DataFrame) -> str:
    texts = [c for c, t in frame.schema.items() if t == pl.String or isinstance(t, pl.Categorical)]
    named = [c for c in texts if any(w in c.lower() for w in ("device", "id", "entity", "unit"))]
    return (named or texts or frame.columns)[0]


def _guess_time(frame: pl.DataFrame, entity: str) -> str:
    temporal = [c for c, t in frame.schema.items() if t.is_temporal() and c != entity]
    named = [
        c
        for c in frame.columns
        if c != entity and any(w in c.lower() for w in ("time", "date", "ts"))
    ]
    others = [c for c in frame.columns if c != entity]
    return (temporal or named or others or frame.columns)[0]


def _select_role(
    where: Any, label: str, options: list[str], key: str, default: str | None, help: str
) -> str:
    _keep_if(key, lambda v: v in options)
    if key not in st.session_state:
        # set through the session state, not ``index``: the browser is told the new value
        # even when the widget (the same key) showed another table's column before
        st.session_state[key] = default if default in options else options[0]
    return str(where.selectbox(label, options, key=key, help=help))


def _roles(raw: RawTable) -> tuple[pl.DataFrame, str, str, list[str]] | None:
    """The column-role widgets; the checked WIDE table and its roles, or None (error shown)."""
    st.subheader("Columns")
    frame = raw.frame
    columns = frame.columns
    layout = st.radio(
        "Layout",
        LAYOUTS,
        key="layout",
        horizontal=True,
        help="WIDE: one column per metric. LONG: one row per reading, a key column names the metric.",
    )
    c1, c2 = st.columns(2)
    entity_guess = raw.entity if raw.entity is not None and raw.entity in columns else None
    entity = _select_role(
        c1,
        "Entity (device id)",
        columns,
        "col_entity",
        entity_guess or _guess_entity(frame),
        "the column naming the device",
    )
    time_guess = raw.time if raw.time is not None and raw.time in columns else None
    time = _select_role(
        c2,
        "Time",
        columns,
        "col_time",
        time_guess or _guess_time(frame, entity),
        "timestamps, ISO 8601 text or epoch seconds",
    )
    key = value = None
    if layout == "LONG":
        c3, c4 = st.columns(2)
        rest = [c for c in columns if c not in (entity, time)]
        texts = [c for c in rest if frame.schema[c] == pl.String] or rest
        numbers = [c for c in rest if frame.schema[c].is_numeric()] or rest
        key = _select_role(
            c3,
            "Key (metric name)",
            columns,
            "col_key",
            texts[0] if texts else None,
            "the column naming the metric of each row",
        )
        value = _select_role(
            c4,
            "Value",
            columns,
            "col_value",
            numbers[0] if numbers else None,
            "the column holding the reading",
        )
    try:
        wide = _shape(frame, entity, time, layout, key, value)
    except Exception as e:
        show_error(e)
        return None
    candidates = [c for c in wide.columns if c not in (entity, time)]
    suggested = [m for m in raw.metrics or () if m in candidates] if layout == "WIDE" else []
    default = suggested or [c for c in candidates if wide.schema[c].is_numeric()]
    _keep_if("col_metrics", lambda v: isinstance(v, list) and set(v) <= set(candidates))
    if "col_metrics" not in st.session_state:
        st.session_state["col_metrics"] = default
    metrics = st.multiselect(
        "Metrics", candidates, key="col_metrics", help="numeric columns to analyse"
    )
    try:
        table = _select(wide, entity, time, tuple(metrics))
    except Exception as e:
        show_error(e)
        return None
    return table, entity, time, list(metrics)


def _time_step(span: timedelta) -> timedelta:
    if span >= timedelta(days=2):
        return timedelta(hours=1)
    if span >= timedelta(hours=2):
        return timedelta(minutes=1)
    return timedelta(seconds=1)


def _filters(table: pl.DataFrame, entity: str, time: str) -> pl.DataFrame | None:
    """The device and time-range filters; the filtered table, or None (a warning shown)."""
    st.subheader("Filters")
    devices = sorted(table[entity].drop_nulls().unique().to_list())
    _keep_if("filter_devices", lambda v: isinstance(v, list) and set(v) <= set(devices))
    if "filter_devices" not in st.session_state:
        st.session_state["filter_devices"] = []
    chosen = st.multiselect(
        "Devices",
        devices,
        key="filter_devices",
        placeholder=f"all {len(devices)} devices (choose some to narrow)",
    )
    start = end = None
    lo, hi = table[time].min(), table[time].max()
    if isinstance(lo, datetime) and isinstance(hi, datetime) and lo < hi:
        _keep_if(
            "filter_time",
            lambda v: isinstance(v, tuple | list) and len(v) == 2 and lo <= v[0] <= v[1] <= hi,
        )
        start, end = st.slider(
            "Time range",
            min_value=lo,
            max_value=hi,
            value=(lo, hi),
            step=_time_step(hi - lo),
            format="YYYY-MM-DD HH:mm",
            key="filter_time",
        )
    # nothing chosen is every device: no chip per device is drawn for a large fleet
    subset = tuple(chosen) if 0 < len(chosen) < len(devices) else None
    window = (start, end) if (start, end) != (lo, hi) else (None, None)
    try:
        filtered = _filter(table, entity, subset, time, *window)
    except Exception as e:
        show_error(e)
        return None
    if filtered.height == 0:
        st.warning("No reading falls in the chosen devices and time range: widen the filters.")
        return None
    return filtered


def _source_section(source: str) -> None:
    if source == SOURCES[0]:
        _demo()
    elif source == SOURCES[1]:
        _upload()
    elif source == SOURCES[2]:
        _postgres()
    else:
        _elasticsearch()


def _run_section() -> None:
    """The "Run now" section: a real run (the project's runner, as ``opslens run``) of one of the
    project's analyses on its own source, or of the fleet recipe on the data in use; its
    stages as they finish, then its run folder and its verdict against the baselines."""
    st.subheader("Run an analysis")
    config = project()
    data = get_data()
    choices: dict[str, str] = {}
    for a in config.analyses if config is not None else []:
        choices[f"{a.name} ({a.recipe}, its source in project.yaml)"] = a.name
    if data is not None:
        choices[f"the data in use, with the fleet recipe ({data.label})"] = TABLE_ANALYSIS
    if not choices:
        st.caption(
            "Press Use this data above (or start the app with a project: "
            "`opslens ui -p project.yaml`) to run an analysis from here."
        )
        return
    labels = list(choices)
    _keep_if("run_choice", lambda v: v in labels)
    label = st.selectbox("Analysis", labels, key="run_choice")
    name = choices[str(label)]
    clicked = st.button("Run now", key="run_now", type="primary")
    st.caption(
        "A real run, as `opslens run`: its run folder (and MLflow run, when tracking is on) "
        "is committed; the Runs page lists the project's runs."
    )
    if clicked:
        st.session_state.pop(RUN_RESULT, None)
        if name == TABLE_ANALYSIS and data is not None:
            try:
                where = table_project(data, config)
            except Exception as e:
                show_error(e)
                return
            result = run_now(where, name, frames={TABLE_ANALYSIS: data.frame})
        elif config is not None:
            result = run_now(config, name)
        else:  # pragma: no cover - a choice is always one of the two
            return
        if result is not None:
            st.session_state[RUN_RESULT] = result
    shown = st.session_state.get(RUN_RESULT)
    if shown is not None:
        show_result(shown)


def render() -> None:
    """Draw the Data page."""
    st.title("Data")
    status = st.empty()
    source = st.radio("Source", SOURCES, key="data_source", horizontal=True)
    _source_section(str(source))
    raw = st.session_state.get(RAW)
    if isinstance(raw, RawTable):
        st.caption(
            f"Table read: {raw.label} — {raw.frame.height:,} rows, {raw.frame.width} columns"
        )
        roles = _roles(raw)
        filtered = None
        if roles is not None:
            table, entity, time, metrics = roles
            filtered = _filters(table, entity, time)
            if filtered is not None:
                n = filtered[entity].n_unique()
                st.subheader("Preview")
                st.caption(
                    f"{filtered.height:,} readings of {n} devices; the first {PREVIEW_ROWS} rows:"
                )
                st.dataframe(filtered.head(PREVIEW_ROWS), hide_index=True)
                st.subheader("Statistics")
                try:
                    st.dataframe(_describe(filtered), hide_index=True)
                except Exception as e:
                    show_error(e)
        clicked = st.button(
            "Use this data", key="use_data", type="primary", disabled=filtered is None
        )
        if clicked and filtered is not None and roles is not None:
            _, entity, time, metrics = roles
            label = raw.label if filtered.height == roles[0].height else f"{raw.label} (filtered)"
            _use(LoadedData(filtered, entity, time, metrics, label))
    else:
        st.info("Choose a source above and read a table.")
    data = get_data()
    if data is not None:
        n, rows = _summary(data)
        status.caption(f"In use: {data.label} — {n} devices, {rows:,} readings")
    _run_section()
