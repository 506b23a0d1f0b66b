"""Reports of every recipe render in headless Chromium: no console error, no network request,
no broken image, readable on a phone.

Chromium (Debian's package) is started with a network log; any request the page makes to
http(s) is a failure, apart from the browser's own background hosts. With CI=true a missing
Chromium is a failure; elsewhere the test skips with the reason.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from opslens.api import load_project, write_report
from opslens.recipes import recipe_names
from opslens.runner import run_analysis
from tests.fakes.browser import chromium

pytestmark = pytest.mark.slow

OLD = Path(__file__).parents[1] / "data" / "old_runs"
BROWSER_HOSTS = ("google.com", "googleapis.com", "gvt1.com", "gstatic.com")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
]


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("reports")
    shutil.copy(OLD / "project.yaml", folder / "project.yaml")
    project = load_project(folder / "project.yaml")
    out = {}
    for analysis in project.analyses:
        run_analysis(project, analysis.name)
        out[analysis.recipe] = write_report(project, analysis.name)
    assert set(out) == set(recipe_names()), "every registered recipe has a report here"
    return out


@pytest.mark.parametrize("recipe", recipe_names())
def test_report_is_self_contained(reports: dict[str, Path], recipe: str) -> None:
    html = reports[recipe].read_text()
    images = re.findall(r'<img[^>]*src="([^"]+)"', html)
    assert len(images) >= 3
    for src in images:
        assert src.startswith("data:image/png;base64,"), src[:60]
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert not re.findall(r'(?:src|href)="https?://', html)
    assert '<nav class="toc"' in html and "@media print" in html and 'id="s-facts"' in html
    assert reports[recipe].stat().st_size < 10_000_000


@pytest.mark.parametrize("recipe", recipe_names())
@pytest.mark.parametrize("width", [1100, 390])
def test_report_renders_in_chromium(
    reports: dict[str, Path], recipe: str, width: int, tmp_path: Path
) -> None:
    browser = chromium()
    shot, netlog = tmp_path / f"{recipe}-{width}.png", tmp_path / "net.json"
    done = subprocess.run(
        [
            browser,
            *FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--log-net-log={netlog}",
            f"--window-size={width},1600",
            f"--screenshot={shot}",
            reports[recipe].as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shot.is_file() and shot.stat().st_size > 20_000, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []
    urls = set(re.findall(r'"url":"(https?://[^"]+)"', netlog.read_text()))
    page = sorted(u for u in urls if not any(h in u.split("/")[2] for h in BROWSER_HOSTS))
    assert page == [], page
