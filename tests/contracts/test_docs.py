"""The documentation site builds with no warning (`mkdocs build --strict`): every page in the
nav, every link and anchor found, every docstring of the API reference readable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]

pytestmark = pytest.mark.slow


def test_the_site_builds_strict(tmp_path: Path) -> None:
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "WARNING" not in done.stderr
    pages = {p.relative_to(site).as_posix() for p in site.rglob("index.html")}
    for page in ["getting-started/index.html", "recipes/fleet/index.html", "api/index.html"]:
        assert page in pages
    api = (site / "api" / "index.html").read_text()
    # the API reference is built from the docstrings, doctests shown as code
    assert "load_predictor" in api and "OpslensError" in api and "&gt;&gt;&gt;" in api


def test_every_page_is_in_the_nav() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in (ROOT / "docs").rglob("*.md"):
        assert page.relative_to(ROOT / "docs").as_posix() in nav, page


def test_the_service_page_shows_the_openapi_the_service_serves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.contracts.openapi_doc import BEGIN, END, render, served_spec
    from tests.fakes.cli import run_cli

    result = run_cli(["demo", "distribution", "--dir", "demo"], tmp_path, monkeypatch)
    assert result.code == 0, result.err
    rendered = render(served_spec(tmp_path / "demo" / "distribution" / "project.yaml"))
    page = (ROOT / "docs" / "service.md").read_text()
    shown = page[page.index(BEGIN) : page.index(END) + len(END)]
    assert shown == rendered, (
        "docs/service.md's OpenAPI tables are stale: regenerate them with "
        "`python -m tests.contracts.openapi_doc opslens-demo/distribution/project.yaml`"
    )
    assert "| POST | `/predict/trip-eta` |" in shown and "`TripEtaInstance`" in shown
