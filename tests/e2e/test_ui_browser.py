"""`opslens ui` in headless Chromium (Debian's package, driven by Playwright) on a project
holding all five recipes' demos: Data → Fleet → Known failures on the bundled fleet, Score
on the distribution analysis, then every recipe's own page (Patterns, Residuals, Live,
Monitoring, Propensity) and Runs, with 0 tracebacks and 0 console errors; the Data page's
Run now runs trip-eta for real.

The app is started as a user would (`opslens ui -p project.yaml --port N`) on a free
loopback port. Screenshots of every step are written to the test's folder (and, with
OPSLENS_UI_SHOTS=<dir>, there too). With CI=true a missing Chromium is a failure;
elsewhere the test skips with the reason.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

import opslens
from opslens.synthetic.fleet import make_fleet
from tests.fakes.browser import chromium, opslens_ui
from tests.unit.ui.conftest import all_recipes_project

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("ui")
    all_recipes_project(folder)
    opslens.run(folder / "project.yaml", analysis="trip-eta")
    with opslens_ui(folder) as url:
        yield url


def test_walk_data_fleet_failures_and_score(app: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    shots = [tmp_path]
    if os.environ.get("OPSLENS_UI_SHOTS"):
        shots.append(Path(os.environ["OPSLENS_UI_SHOTS"]))

    def shot(page: object, name: str) -> None:
        # the app is idle when its "running" indicator is gone; then the page is final
        page.wait_for_selector(  # type: ignore[attr-defined]
            '[data-testid="stStatusWidget"]', state="hidden", timeout=120_000
        )
        for folder in shots:
            folder.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(folder / f"ui-{name}.png"), full_page=True)  # type: ignore[attr-defined]

    # the app's "Load the demo fleet" is the fleet generator's 300 devices (seed 0), whose
    # 12 failing devices are pasted as known failures
    failures = (
        make_fleet(seed=0, n_devices=300, n_points=1000)
        .truth.filter(pl.col("failed"))
        .select("device_id", pl.col("failure_time").cast(pl.String))
    )
    pasted = "\n".join(
        f"{r['device_id']},{r['failure_time']}" for r in failures.iter_rows(named=True)
    )
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium(),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(app, wait_until="networkidle")

        page.get_by_role("button", name="Load the demo fleet").click()
        expect(page.get_by_text("Loaded 300 devices")).to_be_visible(timeout=120_000)
        shot(page, "data")

        # Run now: a real run of the project's first analysis (trip-eta), its stages listed
        # as they finish, then its run folder and its verdict against the baselines
        page.get_by_role("button", name="Run now").click()
        expect(page.get_by_text(re.compile(r"Run \S+ of trip-eta complete: "))).to_be_visible(
            timeout=180_000
        )
        expect(page.get_by_text("Against the baselines").first).to_be_visible(timeout=60_000)
        assert page.get_by_text(re.compile(r"✓ stage \w+ done")).count() >= 3
        shot(page, "data-run")

        page.get_by_role("link", name="Fleet", exact=True).click()
        page.get_by_role("button", name="Compute fingerprints and groups").click()
        expect(page.get_by_role("heading", name="Behaviour groups").first).to_be_visible(
            timeout=180_000
        )
        expect(page.get_by_role("heading", name="Findings").first).to_be_visible(timeout=60_000)
        shot(page, "fleet")

        page.get_by_role("link", name="Known failures", exact=True).click()
        page.get_by_label("Failed device ids (one per line, optionally ',<failure time>')").fill(
            pasted
        )
        page.get_by_role("button", name="Check failures").click()
        expect(page.get_by_role("heading", name="Enrichment per group").first).to_be_visible(
            timeout=180_000
        )
        expect(page.get_by_text("12 known failed devices of 300")).to_be_visible(timeout=60_000)
        expect(page.locator('[data-testid="stDataFrame"]').first).to_be_visible(timeout=60_000)
        shot(page, "failures")

        page.get_by_role("link", name="Score", exact=True).click()
        page.get_by_role("button", name="Score").click()
        expect(page.get_by_role("heading", name="Probabilities").first).to_be_visible(
            timeout=60_000
        )
        expect(page.locator("img").first).to_be_visible(timeout=60_000)
        shot(page, "score")

        # every recipe's own page: its first meaningful element, then a screenshot
        for link, visible in (
            ("Patterns", page.get_by_role("heading", name="Held-out scores against the baselines")),
            ("Residuals", page.get_by_role("heading", name="Thresholds and their policy")),
            ("Live", page.get_by_text("Give the feed above to start watching.")),
            ("Monitoring", page.locator('[data-testid="stImage"] img, img')),
            ("Propensity", page.get_by_role("heading", name="Feature importance")),
            ("Runs", page.get_by_role("tab", name="trip-eta")),
        ):
            page.get_by_role("link", name=link, exact=True).click()
            expect(visible.first).to_be_visible(timeout=180_000)
            shot(page, link.lower())
            tracebacks = page.locator('[data-testid="stException"]')
            assert tracebacks.count() == 0, f"{link}: {tracebacks.first.inner_text()}"
        browser.close()
    assert [e for e in errors if "favicon" not in e] == []


def test_the_role_boxes_follow_a_newly_read_table(app: str, tmp_path: Path) -> None:
    """After a second upload the Entity / Time / Metrics boxes show the new table's columns
    (the browser kept the first table's before: the page computed with other ones)."""
    from playwright.sync_api import expect, sync_playwright

    times = [f"2024-01-01T0{i}:00:00" for i in range(6)]
    first = pl.DataFrame({"device_id": ["a", "b"] * 3, "timestamp": times, "temp": [1.0] * 6})
    second = pl.DataFrame({"unit": ["p", "q"] * 3, "when": times, "volt": [2.0] * 6})
    first.write_csv(tmp_path / "a.csv")
    second.write_csv(tmp_path / "b.csv", separator=";")  # sniffed, not read as one column
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1400})
        page.goto(app, wait_until="networkidle")
        page.get_by_text("Upload CSV/Parquet").click()
        boxes = page.get_by_test_id("stSelectbox")
        metrics = page.get_by_test_id("stMultiSelect").filter(has_text="Metrics")
        for name, entity, time_, metric in (
            ("a.csv", "device_id", "timestamp", "temp"),
            ("b.csv", "unit", "when", "volt"),
        ):
            page.locator('input[type="file"]').set_input_files(str(tmp_path / name))
            expect(page.get_by_text(f"Table read: file {name}")).to_be_visible(timeout=60_000)
            entity_box = boxes.filter(has_text="Entity (device id)").locator("input")
            time_box = boxes.filter(has_text="Time").last.locator("input")
            expect(entity_box).to_have_value(entity)
            expect(time_box).to_have_value(time_)
            expect(metrics).to_contain_text(metric)
        page.screenshot(path=str(tmp_path / "ui-data-second-table.png"), full_page=True)
        assert "temp" not in metrics.inner_text()
        assert page.get_by_test_id("stException").count() == 0
        browser.close()
