"""Every form of a secret is found when a project loads and masked in text and log records."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from opslens.api import load_project
from opslens.config import SecretFilter, mask_secrets
from opslens.config.secrets import collect_secrets, is_secret_key, mask_url, url_secrets
from opslens.errors import ConfigError

FORMS = [
    # (URL, every secret it holds, the URL masked)
    ("postgresql://u:plain-pw@h:5432/db", {"plain-pw"}, "postgresql://u:***@h:5432/db"),
    ("postgresql://u:two words@h/db", {"two words"}, "postgresql://u:***@h/db"),
    ("postgresql://u:at@in@side@h/db", {"at@in@side"}, "postgresql://u:***@h/db"),
    ("postgresql://u:enc%40ded@h/db", {"enc%40ded", "enc@ded"}, "postgresql://u:***@h/db"),
    ("postgresql://u:co:lon/sl@h/db", {"co:lon/sl"}, "postgresql://u:***@h/db"),
    (
        "postgresql://u@h/db?sslmode=require&password=q-pw",
        {"q-pw"},
        "postgresql://u@h/db?sslmode=require&password=***",
    ),
    ("https://elastic:es-pw@es:9200", {"es-pw"}, "https://elastic:***@es:9200"),
    ("sqlite:///runs/x.db", set(), "sqlite:///runs/x.db"),
]


@pytest.mark.parametrize(("url", "secrets", "masked"), FORMS, ids=[f[0] for f in FORMS])
def test_url_forms_are_found_and_masked(url: str, secrets: set[str], masked: str) -> None:
    assert url_secrets(url) == secrets
    assert mask_url(url) == masked
    assert mask_secrets(f"error at {url}: refused", secrets) == f"error at {masked}: refused"


def test_free_text_urls_are_masked_without_a_list() -> None:
    # a password with a space needs the list the loader collects (or mask_url on the URL alone)
    text = "tried postgresql://u:p@ss@h/db and mysql://me:xy@h/db?password=zz"
    assert (
        mask_secrets(text) == "tried postgresql://u:***@h/db and mysql://me:***@h/db?password=***"
    )


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("password", True),
        ("api_key", True),
        ("apikey", True),
        ("token", True),
        ("access_token", True),
        ("client_secret", True),
        ("api_key_env", False),
        ("max_tokens", False),
        ("path", False),
        ("username", False),
    ],
)
def test_secret_keys(key: str, secret: bool) -> None:
    assert is_secret_key(key) is secret


def test_literal_secret_keys_anywhere_in_the_file(tmp_path: Path) -> None:
    (tmp_path / "project.yaml").write_text(
        """
analyses:
  - name: es
    recipe: fleet
    source: {kind: elasticsearch, hosts: "https://elastic:h0st-pw@es:9200", index: m,
             username: elastic, password: "lit eral@pw", api_key: "k3y-value"}
    columns: {entity: device, time: ts, metrics: [cpu]}
"""
    )
    project = load_project(tmp_path / "project.yaml")
    assert {"lit eral@pw", "k3y-value", "h0st-pw"} <= project.secrets
    dumped = project.analyses[0].model_dump_json()
    masked = mask_secrets(dumped, project.secrets)
    assert not any(s in masked for s in ("lit eral", "eral@pw", "k3y-value", "h0st-pw"))
    assert collect_secrets({"x": {"token": "t0ken-1", "api_key_env": "MY_KEY"}}) == {"t0ken-1"}


def test_json_and_url_encoded_variants_are_masked() -> None:
    secret = 'q"uo\\te'
    assert mask_secrets('{"password": "q\\"uo\\\\te"}', {secret}) == '{"password": "***"}'
    assert mask_secrets("u:q%22uo%5Cte@", {secret}) == "u:***@"


def test_secret_in_an_error_of_validation_is_masked(tmp_path: Path) -> None:
    (tmp_path / "project.yaml").write_text(
        "analyses:\n  - name: a\n    recipe: distribution\n    source: {kind: sql, "
        'url: "postgresql://u:my pw@h/db", table: t, pasword: x}\n'
    )
    with pytest.raises(ConfigError) as err:
        load_project(tmp_path / "project.yaml")
    assert "pasword" in str(err.value) and "my pw" not in str(err.value)


def test_log_filter_masks_message_and_traceback() -> None:
    try:
        raise RuntimeError("cannot reach postgresql://u:tb-secret@h/db")
    except RuntimeError:
        record = logging.LogRecord(
            "opslens", logging.ERROR, "", 0, "failed with %s", ("k3y-value",), None
        )
        import sys

        record.exc_info = sys.exc_info()
    SecretFilter({"k3y-value"}).filter(record)
    assert record.exc_info is None and record.args is None
    assert "tb-secret" not in record.msg and "k3y-value" not in record.msg
    assert "RuntimeError: cannot reach postgresql://u:***@h/db" in record.msg
