"""project.yaml: pydantic models, ``${ENV}`` interpolation, ``.env`` loading, secret masking.

One file describes every analysis of a project. Unknown keys are errors
(reported with their path, e.g. ``analyses[0].source.pth``); relative paths
resolve against the project file's folder; ``${VAR}`` and ``${VAR:-default}``
are replaced from the environment after ``.env`` beside the file is loaded
(without overriding variables already set). Every password found in a URL and
every value interpolated into a secret-looking key is collected in
:attr:`ProjectConfig.secrets` so logs, manifests and messages can mask it.

Example:
    >>> import os, tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "project.yaml").write_text('''
    ... analyses:
    ...   - name: eta
    ...     recipe: distribution
    ...     source: {kind: sql, url: "${DB_URL}", table: trips}
    ...     columns: {target: duration_min, categorical: [route]}
    ... ''')
    >>> os.environ["DB_URL"] = "postgresql://app:s3cret@db/test"
    >>> project = load_project(d / "project.yaml")
    >>> project.analyses[0].source.url
    'postgresql://app:s3cret@db/test'
    >>> mask_secrets("connecting to postgresql://app:s3cret@db/test", project.secrets)
    'connecting to postgresql://app:***@db/test'
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from dotenv import dotenv_values
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from opslens.errors import ConfigError

__all__ = [
    "RECIPES",
    "AnalysisConfig",
    "Columns",
    "ElasticsearchSource",
    "FileSource",
    "LongLayout",
    "ProjectConfig",
    "SourceConfig",
    "SqlSource",
    "SyntheticSource",
    "TimeWindow",
    "TrackingConfig",
    "load_project",
    "mask_secrets",
    "validation_message",
]

RECIPES = ("distribution", "fleet", "segments", "residual", "propensity")
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)(?P<pw>[^@\s]+)(?=@)")
_SECRET_KEY = re.compile(r"(password|passwd|secret|token|api_key|apikey)", re.IGNORECASE)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TimeWindow(_Strict):
    """Keep rows with ``start <= time < end`` (either bound optional)."""

    start: datetime | None = None
    end: datetime | None = None


class LongLayout(_Strict):
    """How a LONG table pivots to WIDE: one row per ``index`` values, a column per ``key``."""

    index: list[str] = Field(min_length=1)
    key: str
    value: str


class _SourceBase(_Strict):
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
    """A CSV or Parquet file (``format: auto`` decides by the file's suffix)."""

    kind: Literal["file"]
    path: Path
    format: Literal["auto", "csv", "parquet"] = "auto"


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
    """A bundled deterministic generator (``trips`` or ``fleet``) with its keyword arguments."""

    kind: Literal["synthetic"]
    generator: Literal["trips", "fleet"]
    options: dict[str, Any] = Field(default_factory=dict)
    seed: int = 0


SourceConfig = Annotated[
    FileSource | SqlSource | ElasticsearchSource | SyntheticSource, Field(discriminator="kind")
]


class Columns(_Strict):
    """Roles of columns in the data; each recipe says which it needs."""

    entity: str | None = None
    time: str | None = None
    target: str | None = None
    metrics: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list)
    group: str | None = None


class AnalysisConfig(_Strict):
    """One named analysis: a recipe applied to a source."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    recipe: Literal["distribution", "fleet", "segments", "residual", "propensity"]
    source: SourceConfig
    columns: Columns = Field(default_factory=Columns)
    params: dict[str, Any] = Field(default_factory=dict)
    random_state: int = 0


class TrackingConfig(_Strict):
    """Where MLflow logs runs and registers models; ``enabled: false`` skips MLflow."""

    uri: str = "sqlite:///mlflow.db"
    enabled: bool = True


class ProjectConfig(_Strict):
    """The whole project file, plus where it lives and which values are secret."""

    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    runs_dir: Path = Path("runs")
    analyses: list[AnalysisConfig] = Field(min_length=1)
    active: list[str] | None = None
    root: Path = Path(".")
    secrets: frozenset[str] = frozenset()

    @field_validator("analyses")
    @classmethod
    def _unique_names(cls, value: list[AnalysisConfig]) -> list[AnalysisConfig]:
        names = [a.name for a in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"analysis names must be unique; repeated: {', '.join(dupes)}")
        return value

    @model_validator(mode="after")
    def _active_known(self) -> ProjectConfig:
        known = {a.name for a in self.analyses}
        unknown = [n for n in self.active or [] if n not in known]
        if unknown:
            raise ValueError(
                f"active names unknown analyses {unknown}; known: {', '.join(sorted(known))}"
            )
        return self

    def analysis(self, name: str) -> AnalysisConfig:
        """The analysis called ``name``, or a ConfigError listing the known names."""
        for a in self.analyses:
            if a.name == name:
                return a
        known = ", ".join(a.name for a in self.analyses)
        raise ConfigError(
            f"no analysis named '{name}' in the project",
            fix=f"use one of: {known}",
        )

    def active_analyses(self) -> list[AnalysisConfig]:
        """The analyses `opslens run` runs: those in ``active``, or all."""
        if self.active is None:
            return list(self.analyses)
        return [self.analysis(n) for n in self.active]

    def runs_root(self) -> Path:
        """The folder that holds ``<analysis>/<run_id>`` run folders."""
        return self.runs_dir if self.runs_dir.is_absolute() else self.root / self.runs_dir

    def tracking_uri(self) -> str:
        """The MLflow tracking URI with a relative sqlite path resolved against the project."""
        uri = self.tracking.uri
        prefix = "sqlite:///"
        if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
            return prefix + str((self.root / uri[len(prefix) :]).resolve())
        return uri


def mask_secrets(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace URL passwords and known secret values in ``text`` by ``***``.

    Example:
        >>> mask_secrets("postgresql+psycopg://u:pw@host/db and token abc123", {"abc123"})
        'postgresql+psycopg://u:***@host/db and token ***'
    """
    out = _URL_PASSWORD.sub(lambda m: m.group("head") + "***", text)
    for secret in sorted(secrets, key=len, reverse=True):
        if secret and len(secret) >= 3:
            out = out.replace(secret, "***")
    return out


def validation_message(error: ValidationError, where: str) -> str:
    """One line naming every invalid key by its path in the file.

    Example:
        >>> try:
        ...     TrackingConfig.model_validate({"urii": "x"})
        ... except ValidationError as e:
        ...     print(validation_message(e, "project.yaml"))
        project.yaml: top level key 'urii' is not allowed (unknown key)
    """
    parts = []
    for err in error.errors():
        loc = _path(err["loc"])
        if err["type"] == "extra_forbidden":
            key = str(err["loc"][-1])
            parent = _path(err["loc"][:-1]) or "top level"
            parts.append(f"{parent} key '{key}' is not allowed (unknown key)")
        elif err["type"] == "missing":
            parts.append(f"'{loc}' is required")
        elif err["type"] == "union_tag_invalid":
            parts.append(
                f"'{loc}.kind' must be one of file, sql, elasticsearch, synthetic "
                f"(got {err.get('input', {}).get('kind')!r})"
                if isinstance(err.get("input"), dict)
                else f"'{loc}': {err['msg']}"
            )
        else:
            msg = err["msg"].removeprefix("Value error, ")
            parts.append(f"'{loc}': {msg}" if loc else msg)
    return f"{where}: " + "; ".join(parts)


def _path(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("file", "sql", "elasticsearch", "synthetic") and out.endswith("source"):
            continue
        else:
            out += ("." if out else "") + str(part)
    return out


def _interpolate(value: Any, env: Mapping[str, str], path: str, secrets: set[str]) -> Any:
    if isinstance(value, dict):
        return {
            k: _interpolate(v, env, f"{path}.{k}" if path else str(k), secrets)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_interpolate(v, env, f"{path}[{i}]", secrets) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def replace(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in env:
            got = env[name]
        elif default is not None:
            got = default
        else:
            raise ConfigError(
                f"'{path}' uses ${{{name}}} but the environment variable {name} is not set",
                fix=f"export {name}=... or put {name}=... in .env beside the project file",
            )
        key = path.rsplit(".", 1)[-1]
        if _SECRET_KEY.search(key) or _SECRET_KEY.search(name):
            if not _URL_PASSWORD.search(got):
                secrets.add(got)
        return got

    return _ENV.sub(replace, value)


def _collect_url_passwords(value: Any, secrets: set[str]) -> None:
    if isinstance(value, dict):
        for v in value.values():
            _collect_url_passwords(v, secrets)
    elif isinstance(value, list):
        for v in value:
            _collect_url_passwords(v, secrets)
    elif isinstance(value, str):
        for m in _URL_PASSWORD.finditer(value):
            secrets.add(m.group("pw"))


def _resolve_paths(raw: dict[str, Any], root: Path) -> None:
    for analysis in raw.get("analyses") or []:
        source = analysis.get("source") if isinstance(analysis, dict) else None
        if isinstance(source, dict) and source.get("kind") == "file" and "path" in source:
            p = Path(str(source["path"])).expanduser()
            source["path"] = str(p if p.is_absolute() else root / p)
        if isinstance(source, dict) and source.get("kind") == "sql":
            url = str(source.get("url", ""))
            m = re.match(r"^(sqlite(?:\+\w+)?:///)(?!/)(.+)$", url)
            if m and m.group(2) != ":memory:":
                source["url"] = m.group(1) + str((root / m.group(2)).resolve())
        params = analysis.get("params") if isinstance(analysis, dict) else None
        if isinstance(params, dict):
            _resolve_param_paths(params, root)


def _resolve_param_paths(params: dict[str, Any], root: Path) -> None:
    """Resolve every ``path`` / ``*_path`` string in recipe params against the project folder."""
    for key, value in params.items():
        if isinstance(value, dict):
            _resolve_param_paths(value, root)
        elif isinstance(value, str) and (key == "path" or key.endswith("_path")):
            p = Path(value).expanduser()
            params[key] = str(p if p.is_absolute() else root / p)


def load_project(path: str | Path) -> ProjectConfig:
    """Read, interpolate and validate a project file; ConfigError on any problem.

    Example:
        >>> load_project("/nonexistent/project.yaml")
        Traceback (most recent call last):
        ...
        opslens.errors.ConfigError: project file /nonexistent/project.yaml does not exist; fix: pass the path of your project.yaml (see examples/), or run `opslens demo`
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"project file {path} does not exist",
            fix="pass the path of your project.yaml (see examples/), or run `opslens demo`",
        )
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or "malformed YAML"
        raise ConfigError(
            f"{path} is not valid YAML{where}: {problem}",
            fix="check indentation, colons and quotes on that line",
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(
            f"cannot read {path}: {e}", fix="check the file's permissions and encoding"
        ) from None
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{path} must hold a mapping with an 'analyses' list, not {type(raw).__name__}",
            fix="start from examples/distribution/project.yaml",
        )
    root = path.resolve().parent
    env: dict[str, str] = (
        {k: v for k, v in dotenv_values(root / ".env").items() if v is not None}
        if (root / ".env").is_file()
        else {}
    )
    env.update(os.environ)
    secrets: set[str] = set()
    raw = _interpolate(raw, env, "", secrets)
    _collect_url_passwords(raw, secrets)
    _resolve_paths(raw, root)
    raw["root"] = str(root)
    raw["secrets"] = frozenset(secrets)
    try:
        return ProjectConfig.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(
            mask_secrets(validation_message(e, str(path)), secrets),
            fix="correct or remove the key(s) named; see the README's configuration section",
        ) from None
