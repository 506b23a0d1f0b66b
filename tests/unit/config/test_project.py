"""project.yaml: validation with key paths, ${ENV} and .env, secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from opslens.api import load_project
from opslens.config import mask_secrets
from opslens.errors import ConfigError

MINIMAL = """
analyses:
  - name: eta
    recipe: distribution
    source: {kind: file, path: data/trips.csv}
    columns: {target: duration_min, categorical: [route]}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "project.yaml"
    path.write_text(text)
    return path


def test_minimal_file_gets_defaults_and_resolves_paths(tmp_path: Path) -> None:
    project = load_project(_write(tmp_path, MINIMAL))
    analysis = project.analyses[0]
    assert analysis.source.path == tmp_path / "data" / "trips.csv"  # type: ignore[union-attr]
    assert project.tracking_uri() == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    assert project.runs_root() == tmp_path.resolve() / "runs"
    assert [a.name for a in project.active_analyses()] == ["eta"]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (MINIMAL.replace("path: data", "pth: data"), "analyses[0].source key 'pth' is not allowed"),
        (MINIMAL + "colour: blue\n", "top level key 'colour' is not allowed"),
        (MINIMAL.replace("recipe: distribution", "recipe: magic"), "analyses[0].recipe"),
        (MINIMAL.replace("kind: file", "kind: ftp"), "'analyses[0].source.kind' must be one of"),
        (MINIMAL + "active: [nope]\n", "active names unknown analyses ['nope']"),
        ("analyses: []\n", "analyses"),
        ("- just\n- a list\n", "must hold a mapping"),
        ("analyses:\n  - name: a\n    recipe: [unclosed\n", "is not valid YAML at line"),
    ],
)
def test_invalid_files_name_the_key(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_project(_write(tmp_path, text))
    assert needle in str(err.value)
    assert "\n" not in str(err.value)


def test_env_and_dotenv_interpolation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DB_URL", raising=False)
    monkeypatch.setenv("TABLE", "trips")
    (tmp_path / ".env").write_text(
        "DB_URL=postgresql://app:pa55word@127.0.0.1:5432/test\nTABLE=ignored\n"
    )
    text = MINIMAL.replace(
        "{kind: file, path: data/trips.csv}", '{kind: sql, url: "${DB_URL}", table: "${TABLE}"}'
    )
    project = load_project(_write(tmp_path, text))
    src = project.analyses[0].source
    assert src.url == "postgresql://app:pa55word@127.0.0.1:5432/test"  # type: ignore[union-attr]
    assert src.table == "trips"  # type: ignore[union-attr]  # the environment wins over .env
    assert "pa55word" in project.secrets
    assert (
        mask_secrets(f"x {src.url} y", project.secrets)
        == "x postgresql://app:***@127.0.0.1:5432/test y"
    )  # type: ignore[union-attr]


def test_missing_env_variable_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    text = MINIMAL.replace("data/trips.csv", '"${NOT_SET_ANYWHERE}/trips.csv"')
    with pytest.raises(ConfigError, match=r"environment variable NOT_SET_ANYWHERE is not set"):
        load_project(_write(tmp_path, text))


def test_default_value_in_interpolation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATA_DIR", raising=False)
    project = load_project(
        _write(tmp_path, MINIMAL.replace("data/trips.csv", '"${DATA_DIR:-other}/t.csv"'))
    )
    assert project.analyses[0].source.path == tmp_path / "other" / "t.csv"  # type: ignore[union-attr]


def test_secret_valued_keys_are_masked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ES_PASSWORD", "zebra-42")
    text = MINIMAL.replace(
        "{kind: file, path: data/trips.csv}",
        '{kind: elasticsearch, hosts: "http://127.0.0.1:9200", index: t, username: u, password: "${ES_PASSWORD}"}',
    )
    project = load_project(_write(tmp_path, text))
    assert mask_secrets("login zebra-42 failed", project.secrets) == "login *** failed"


def test_unknown_analysis_lists_known(tmp_path: Path) -> None:
    project = load_project(_write(tmp_path, MINIMAL))
    with pytest.raises(ConfigError, match=r"no analysis named 'x'.*use one of: eta"):
        project.analysis("x")
