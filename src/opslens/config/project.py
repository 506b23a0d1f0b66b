"""project.yaml: the project model, ``${ENV}`` interpolation, ``.env`` loading, relative paths.

One file describes every analysis of a project. Unknown keys are errors
(reported with their path, e.g. ``analyses[0].source.pth``); relative paths
resolve against the project file's folder; ``${VAR}`` and ``${VAR:-default}``
are replaced from the environment after ``.env`` beside the file is loaded
(without overriding variables already set). Every secret (a URL's password or
``?password=``, the value of a secret-looking key written or interpolated, a
value from a secret-looking variable) is collected in
:attr:`ProjectConfig.secrets` so logs, manifests and messages can mask it.
A key written twice in one mapping, a file whose aliases expand past 100,000
values, a seed outside numpy's range, an analysis name that cannot be a folder
and an unknown tracking scheme are errors when the file is loaded.

``params`` are typed per recipe: :func:`project_model` builds the project
model whose analyses are a union discriminated on ``recipe`` from the recipes'
params models (``opslens.recipes`` calls it with its registry).

Example:
    >>> import os, tempfile, pathlib
    >>> class P(Strict):
    ...     k: int = 3
    >>> Model = project_model({"toy": P})
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "project.yaml").write_text('''
    ... analyses:
    ...   - name: eta
    ...     recipe: toy
    ...     source: {kind: sql, url: "${DB_URL}", table: trips}
    ...     columns: {target: duration_min, categorical: [route]}
    ... ''')
    >>> os.environ["DB_URL"] = "postgresql://app:s3cret@db/test"
    >>> project = load_project(d / "project.yaml", model=Model)
    >>> project.analyses[0].source.url, project.analyses[0].params.k
    ('postgresql://app:s3cret@db/test', 3)
    >>> from opslens.config.secrets import mask_secrets
    >>> mask_secrets("connecting to postgresql://app:s3cret@db/test", project.secrets)
    'connecting to postgresql://app:***@db/test'
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from opslens.config.base import Strict
from opslens.config.messages import validation_message
from opslens.config.report import ReportConfig
from opslens.config.secrets import collect_secrets, is_secret_key, mask_secrets, url_secrets
from opslens.config.sources import SOURCE_KINDS, SourceConfig
from opslens.errors import ConfigError

__all__ = [
    "AnalysisConfig",
    "Columns",
    "ProjectConfig",
    "TrackingConfig",
    "load_project",
    "project_model",
    "read_project_file",
    "validate_project",
]

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
NAME_MAX = 100  # names a folder, an MLflow experiment and a registered model
SEED_MAX = 2**32 - 1  # numpy's seed range
# what MLflow can track to: a path, file:, a database URL, or a tracking server
TRACKING_SCHEMES = ("file", "sqlite", "postgresql", "mysql", "mssql", "http", "https", "databricks")


def check_seed(value: int) -> int:
    """A seed numpy accepts (0 ≤ seed < 2**32), or a ValueError naming the range.

    Example:
        >>> check_seed(7)
        7
        >>> check_seed(-1)
        Traceback (most recent call last):
        ...
        ValueError: random_state -1 is outside numpy's seed range; use a whole number from 0 to 4294967295
    """
    if not 0 <= value <= SEED_MAX:
        raise ValueError(
            f"random_state {value} is outside numpy's seed range; "
            f"use a whole number from 0 to {SEED_MAX}"
        )
    return value


class Columns(Strict):
    """Roles of columns in the data; each recipe says which it needs."""

    entity: str | None = None
    time: str | None = None
    target: str | None = None
    metrics: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list)
    group: str | None = None
    peer_group: str | None = None


class AnalysisConfig(Strict):
    """One named analysis: a recipe applied to a source (``params`` typed by the recipe)."""

    name: str
    recipe: str
    source: SourceConfig
    columns: Columns = Field(default_factory=Columns)
    params: Any = Field(default_factory=dict)
    random_state: int = 0

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if len(value) > NAME_MAX:
            raise ValueError(
                f"the name is {len(value)} characters long; use at most {NAME_MAX} "
                "(it names a folder of runs/ and an MLflow experiment)"
            )
        if not _NAME.match(value):
            raise ValueError(
                f"the name {value!r} may hold only letters, digits, '_', '.' and '-', and must "
                "start with a letter or digit (it names a folder: no '/', spaces or '..')"
            )
        return value

    @field_validator("random_state")
    @classmethod
    def _seed(cls, value: int) -> int:
        return check_seed(value)


class TrackingConfig(Strict):
    """Where MLflow logs runs and registers models; ``enabled: false`` skips MLflow."""

    uri: str = "sqlite:///mlflow.db"
    enabled: bool = True

    @field_validator("uri")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        scheme = value.split("://", 1)[0].lower() if "://" in value else ""
        if scheme and scheme.split("+", 1)[0] not in TRACKING_SCHEMES:
            raise ValueError(
                f"'{scheme}://' is not a tracking store MLflow can use; write sqlite:///mlflow.db, "
                "a folder path, postgresql://..., or http(s)://host:port of an MLflow server"
            )
        if not value.strip():
            raise ValueError("is empty; write sqlite:///mlflow.db or set tracking.enabled: false")
        return value


class JdbcPartitions(Strict):
    """``spark.jdbc``: how the executors split a JDBC table read (``SparkEngine.read_jdbc``).

    ``num_partitions`` tasks each read one range of ``partition_column`` (a
    number, date or timestamp column) between ``lower_bound`` and ``upper_bound``
    (read off the table with one ``min``/``max`` query when not given); rows
    outside the bounds still land in the first or last range.

    Example:
        >>> JdbcPartitions(partition_column="id", num_partitions=4).num_partitions
        4
    """

    partition_column: str
    num_partitions: int = Field(default=8, ge=1, le=10_000)
    lower_bound: int | str | None = None
    upper_bound: int | str | None = None


class SparkConfig(Strict):
    """``engine: spark``: the master to connect to and any Spark conf (``spark.*`` keys).

    ``local[2]`` runs Spark in this process's JVM on 2 cores; ``spark://host:7077``
    a standalone cluster. ``rows_per_task`` sets how many rows one Python task
    gets (entities are hashed into tasks of about that size). ``jdbc`` splits a
    JDBC table read into partitioned range reads by the executors.
    """

    master: str = "local[2]"
    app_name: str = "opslens"
    conf: dict[str, str | int | float | bool] = Field(default_factory=dict)
    rows_per_task: int = Field(default=1_000_000, ge=1_000)
    jdbc: JdbcPartitions | None = None

    @field_validator("master")
    @classmethod
    def _master(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("is empty; write local[2], local[*] or spark://host:7077")
        return value.strip()

    @field_validator("conf")
    @classmethod
    def _spark_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        bad = [k for k in value if not k.startswith("spark.")]
        if bad:
            raise ValueError(
                f"keys must start with 'spark.' (got {bad[0]!r}), e.g. spark.driver.memory"
            )
        return value


class ProjectConfig(Strict):
    """The whole project file, plus where it lives and which values are secret.

    ``engine`` says where the heavy per-entity stages run: ``local`` (polars in
    this process, the default) or ``spark`` (PySpark at ``spark.master``).
    """

    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    engine: Literal["local", "spark"] = "local"
    spark: SparkConfig = Field(default_factory=SparkConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)
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
        raise ConfigError(f"no analysis named '{name}' in the project", fix=f"use one of: {known}")

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


def project_model(params_models: Mapping[str, type[BaseModel]]) -> type[ProjectConfig]:
    """The project model whose analyses are discriminated on ``recipe``, params typed per recipe.

    Example:
        >>> class P(Strict):
        ...     k: int = 3
        >>> M = project_model({"toy": P})
        >>> a = M.model_validate({"analyses": [{"name": "x", "recipe": "toy",
        ...     "source": {"kind": "memory"}, "params": {"k": 5}}]}).analyses[0]
        >>> type(a).__name__, a.params.k
        ('ToyAnalysis', 5)
    """
    variants: list[type[AnalysisConfig]] = []
    for name, params in params_models.items():
        title = "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]", name)) + "Analysis"
        variants.append(
            create_model(  # type: ignore[call-overload]
                title,
                __base__=AnalysisConfig,
                __doc__=f"An analysis with the {name} recipe.",
                recipe=(Literal[name], ...),  # type: ignore[arg-type]
                params=(params, Field(default_factory=params)),
            )
        )
    item: Any = (
        variants[0]
        if len(variants) == 1
        else Annotated[Union[tuple(variants)], Field(discriminator="recipe")]  # noqa: UP007
    )
    model: type[ProjectConfig] = create_model(  # type: ignore[call-overload]
        "Project", __base__=ProjectConfig, analyses=(list[item], Field(min_length=1))
    )
    model.__doc__ = ProjectConfig.__doc__
    return model


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
        if is_secret_key(name):
            secrets.update(url_secrets(got) or {got})
        return got

    return _ENV.sub(replace, value)


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: str, line: int) -> None:
        super().__init__(key)
        self.key, self.line = key, line


#: libyaml's parser when PyYAML was built with it (several times faster: the CLI reads the
#: project file on every command), else the pure-Python one; both build only plain values
if TYPE_CHECKING:
    _SafeLoader = yaml.SafeLoader
else:
    _SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _UniqueKeyLoader(_SafeLoader):
    """YAML's safe loader, refusing a key written twice in one mapping (YAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
            try:
                repeated = key in seen
            except TypeError:  # an unhashable key; the base loader reports it
                break
            if repeated:
                raise _DuplicateKey(str(key), key_node.start_mark.line + 1)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_MAX_VALUES = 100_000  # a project file, its aliases (*name) expanded, holds far fewer


def _expanded_size(value: Any, sizes: dict[int, int]) -> int:
    """How many values ``value`` holds once YAML aliases are expanded (each shared node sized once).

    A node that holds itself (``a: &a [*a]``) has no size: ValueError.
    """
    if not isinstance(value, dict | list):
        return 1
    if sizes.get(id(value)) == -1:
        raise ValueError("a value holds itself")
    if id(value) not in sizes:
        sizes[id(value)] = -1
        items = value.values() if isinstance(value, dict) else value
        sizes[id(value)] = 1 + sum(_expanded_size(v, sizes) for v in items)
    return sizes[id(value)]


def _resolve_paths(raw: dict[str, Any], root: Path) -> None:
    for analysis in raw.get("analyses") or []:
        source = analysis.get("source") if isinstance(analysis, dict) else None
        if isinstance(source, dict) and source.get("kind") == "file" and source.get("path"):
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
        elif isinstance(value, str) and value.strip() and (key == "path" or key.endswith("_path")):
            p = Path(value).expanduser()
            params[key] = str(p if p.is_absolute() else root / p)


def read_project_file(path: str | Path) -> tuple[dict[str, Any], Path, frozenset[str]]:
    """The file's mapping, interpolated and with paths resolved; its folder; the secrets found."""
    path = Path(path)
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "does not exist"
        raise ConfigError(
            f"project file {path} {what}",
            fix="pass the path of your project.yaml (see examples/), or run `opslens demo`",
        )
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except RecursionError:
        raise ConfigError(
            f"{path} nests too deeply to be a project file",
            fix="start from examples/distribution/project.yaml",
        ) from None
    except _DuplicateKey as e:
        raise ConfigError(
            f"{path}: key '{e.key}' appears twice in one mapping (line {e.line})",
            fix="keep one of the two; YAML would silently use the last",
        ) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or (str(e) if e.args else "malformed YAML")
        raise ConfigError(
            f"{path} is not valid YAML{where}: {problem}",
            fix="check indentation, colons and quotes on that line",
        ) from None
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"{path} is not UTF-8 text (byte {e.start})", fix="save the project file as UTF-8"
        ) from None
    except (OSError, ValueError) as e:
        raise ConfigError(
            f"cannot read {path}: {e}", fix="check the file's permissions and encoding"
        ) from None
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{path} must hold a mapping with an 'analyses' list, not {type(raw).__name__}",
            fix="start from examples/distribution/project.yaml",
        )
    try:
        size = _expanded_size(raw, {})
    except ValueError:
        raise ConfigError(
            f"{path} has an alias (*name) inside the value it names",
            fix="write the value out instead of the alias",
        ) from None
    if size > _MAX_VALUES:
        raise ConfigError(
            f"{path} holds more than {_MAX_VALUES:,} values once its aliases (*name) are expanded",
            fix="write the project without nested aliases",
        )
    analyses = raw.get("analyses")
    if analyses is not None and not isinstance(analyses, list):
        raise ConfigError(
            f"{path}: 'analyses' must be a list of analyses, not {type(analyses).__name__}",
            fix="write analyses: followed by '- name: ...' items (see examples/)",
        )
    root = path.resolve().parent
    env: dict[str, str] = {}
    try:
        if (root / ".env").is_file():
            from dotenv import dotenv_values  # imported only where a .env is (a cold CLI's cost)

            env = {k: v for k, v in dotenv_values(root / ".env").items() if v is not None}
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(
            f"cannot read {root / '.env'} ({type(e).__name__})",
            fix="save .env as UTF-8 text with KEY=value lines, or remove it",
        ) from None
    env.update(os.environ)
    secrets: set[str] = set()
    raw = _interpolate(raw, env, "", secrets)
    collect_secrets(raw, secrets)
    _resolve_paths(raw, root)
    return raw, root, frozenset(secrets)


def validate_project(
    raw: dict[str, Any],
    *,
    model: type[ProjectConfig],
    root: Path,
    secrets: frozenset[str] = frozenset(),
    where: str = "project",
) -> ProjectConfig:
    """Validate a project mapping with ``model``; ConfigError naming every bad key."""
    data = {**raw, "root": str(root), "secrets": secrets}
    try:
        return model.model_validate(data)
    except ValidationError as e:
        tags = (*SOURCE_KINDS, *_recipe_tags(model))
        raise ConfigError(
            mask_secrets(validation_message(e, where, tags), secrets),
            fix="correct or remove the key(s) named; `opslens schema` lists every key",
        ) from None


@cache
def _recipe_tags(model: type[ProjectConfig]) -> list[str]:
    schema = model.model_json_schema()
    return [
        str(d["properties"]["recipe"].get("const"))
        for d in schema.get("$defs", {}).values()
        if "recipe" in d.get("properties", {}) and "const" in d["properties"]["recipe"]
    ]


def load_project(path: str | Path, *, model: type[ProjectConfig] = ProjectConfig) -> ProjectConfig:
    """Read, interpolate and validate a project file; ConfigError on any problem.

    Example:
        >>> load_project("/nonexistent/project.yaml")
        Traceback (most recent call last):
        ...
        opslens.errors.ConfigError: project file /nonexistent/project.yaml does not exist; fix: pass the path of your project.yaml (see examples/), or run `opslens demo`
    """
    raw, root, secrets = read_project_file(path)
    return validate_project(raw, model=model, root=root, secrets=secrets, where=str(path))
