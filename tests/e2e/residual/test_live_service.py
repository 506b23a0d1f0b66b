"""The Live page watching the opslens service: a real `opslens serve` (started here on a
free loopback port, with a token) checks a stream of the residual demo's samples; the page
shows the levels the service answered, sample for sample, with the version that answered;
a wrong token or a service that is not there is one error naming the page's field."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from opslens.api import load_project
from opslens.cli.demo import demo_file_text
from opslens.recipes import get_recipe
from opslens.runner import load_input, run_analysis

pytestmark = pytest.mark.slow

TOKEN = "live-t0k"
PAGE = "from opslens.recipes.residual.pages.live import render\nrender()\n"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, list[Any]]]:
    """The residual demo run once, `opslens serve` on it (with a token), and its answers to the
    demo's live samples (60, past the fault planted on axis2) posted as stream 'rig-1'."""
    folder = tmp_path_factory.mktemp("live-service")
    (folder / "project.yaml").write_text(demo_file_text("residual"))
    project = load_project(folder / "project.yaml")
    result = run_analysis(project, "machine-axes")
    analysis = project.analysis("machine-axes")
    demo = get_recipe("residual").demo
    assert demo is not None and demo.instances is not None
    samples = demo.instances(load_input(analysis).frame, analysis)
    assert len(samples) > 50
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    env = {**os.environ, "OPSLENS_SERVICE_TOKEN": TOKEN}
    cmd = [sys.executable, "-m", "opslens.cli", "serve", "-p", "project.yaml", "--port", str(port)]
    proc = subprocess.Popen(
        cmd, cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    try:
        for _ in range(600):  # bounded: the service says it is up on /health
            assert proc.poll() is None, proc.communicate()[1].decode()
            try:
                if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        answers = []
        with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
            for sample in samples:
                body = client.post("/predict/machine-axes", json={**sample, "stream": "rig-1"})
                assert body.status_code == 200, body.text
                answers.append(body.json())
            assert answers[0]["run_id"] == result.run_id
        yield folder, url, answers
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)


def _page(folder: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("OPSLENS_PROJECT", str(folder / "project.yaml"))
    monkeypatch.chdir(folder)
    at = AppTest.from_string(PAGE, default_timeout=180).run()
    at.selectbox(key="live_analysis").set_value("machine-axes").run()
    at.radio(key="live_feed").set_value("opslens service").run()
    assert not at.exception
    return at


def test_the_page_shows_what_the_service_answered(
    served: tuple[Path, str, list[Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, url, answers = served
    at = _page(folder, monkeypatch)
    at.text_input(key="live_url").set_value(url)
    at.text_input(key="live_token").set_value(TOKEN)
    at.number_input(key="live_rows").set_value(50).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    newest = [a["answer"] for a in answers[-50:]]
    counts = pl.DataFrame(at.dataframe[0].value)
    assert counts["axis"].to_list() == ["axis1", "axis2", "axis3"]
    for row in counts.iter_rows(named=True):
        levels = [a[f"{row['axis']}_level"] for a in newest]
        assert (row["ok"], row["alert"], row["error"]) == (
            levels.count("ok"),
            levels.count("alert"),
            levels.count("error"),
        )
        assert row["now"] == levels[-1]
    assert sum(counts["error"]) > 0  # the planted fault is in the newest samples
    version = answers[-1]["version"]
    captions = [c.value for c in at.caption]
    assert any(f"version {version}" in c and "50 newest" in c for c in captions), captions
    # one stream only: the one posted; another stream has no sample yet
    at.text_input(key="live_stream").set_value("rig-2").run()
    assert any("No sample yet" in i.value for i in at.info) and not at.error


def test_a_wrong_token_or_no_service_names_the_field(
    served: tuple[Path, str, list[Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, url, _ = served
    at = _page(folder, monkeypatch)
    at.text_input(key="live_url").set_value(url)
    at.text_input(key="live_token").set_value("wrong").run()
    assert not at.exception
    assert len(at.error) == 1 and "Token field" in at.error[0].value
    assert TOKEN not in at.error[0].value and "wrong" not in at.error[0].value
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = int(s.getsockname()[1])
    at.text_input(key="live_url").set_value(f"http://127.0.0.1:{closed}").run()
    assert len(at.error) == 1 and "Service URL field" in at.error[0].value


def test_the_service_lists_the_newest_answers_per_stream(
    served: tuple[Path, str, list[Any]],
) -> None:
    _, url, answers = served
    headers = {"Authorization": f"Bearer {TOKEN}"}
    body = httpx.get(f"{url}/recent/machine-axes?n=5&stream=rig-1", headers=headers).json()
    assert [r["axis2_level"] for r in body["rows"]] == [
        a["answer"]["axis2_level"] for a in answers[-5:]
    ]
    assert {r["version"] for r in body["rows"]} == {answers[-1]["version"]}
    unknown = httpx.get(f"{url}/recent/nope", headers=headers)
    assert unknown.status_code == 404 and unknown.json()["known"] == ["machine-axes", "pump"]
    assert httpx.get(f"{url}/recent/machine-axes").status_code == 401
