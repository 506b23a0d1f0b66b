"""`opslens report`: --narrator, --all (an index of every analysis), --serve, and bad options."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from markupsafe import escape

from opslens.report.facts import read_baselines, short_verdict
from opslens.tracking.runs import open_run
from tests.fakes.cli import run_cli
from tests.fakes.llm_servers import LlmServers

pytestmark = pytest.mark.slow

OLD = Path(__file__).parents[1] / "data" / "old_runs"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("report-cli")
    # two recipes are enough for the CLI's options (test_report_browser renders every recipe)
    text = (OLD / "project.yaml").read_text()
    (folder / "project.yaml").write_text(text + "active: [eta-small, fleet-small]\n")
    mp = pytest.MonkeyPatch()
    try:
        assert run_cli(["run", "project.yaml"], folder, mp).code == 0
    finally:
        mp.undo()
    return folder


def test_all_writes_an_index_of_every_analysis(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_cli(["report", "--all"], project, monkeypatch)
    assert result.code == 0, result.err
    index = project / "runs" / "index.html"
    assert result.out.strip() == f"report: {index}"
    html = index.read_text()
    links = re.findall(r'href="([^"]+)"', html)
    assert sorted(link.split("/")[0] for link in links) == ["eta-small", "fleet-small"]
    for link in links:
        assert (index.parent / link).is_file()
    assert "log_score=" in html and "devices=60" in html
    # which won against the baselines, per analysis, as the facts' typed section says
    for name in ("eta-small", "fleet-small"):
        run = open_run(project / "runs", name)
        verdict = short_verdict(read_baselines(run.facts))
        assert verdict.startswith(("beats baselines", "loses to ", "no baselines scored"))
        assert str(escape(verdict)) in html


def test_facts_their_model_rejects_are_one_line_and_exit_2(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "copy"
    shutil.copytree(project, folder)
    run = open_run(folder / "runs", "fleet-small")
    target = run.path / "facts.json"
    target.chmod(0o644)
    target.write_text(json.dumps({**run.facts, "rare": {**run.facts["rare"], "n_rare": "many"}}))
    result = run_cli(["report", "fleet-small"], folder, monkeypatch)
    assert result.code == 2
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert "facts.json does not match the fleet recipe's facts model at 'rare.n_rare'" in lines[0]
    assert "fix: rerun the analysis" in lines[0]


def test_an_llm_narrator_from_the_command_line(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = "The run found {choose_k.k} patterns across {prepare.combinations_kept} combinations."
    answer = json.dumps({"sentences": [{"text": text, "cites": []}]})
    with LlmServers(answer=answer) as llm:
        text = (project / "project.yaml").read_text()
        (project / "llm.yaml").write_text(
            text + f"report: {{openai: {{url: '{llm.url}/v1'}}, retries: 0}}\n"
        )
        result = run_cli(
            ["report", "eta-small", "-p", "llm.yaml", "--narrator", "openai"], project, monkeypatch
        )
    assert result.code == 0, result.err
    html = Path(result.out.split("report: ", 1)[1].strip()).read_text()
    assert "narrator: openai (local-model)" in html
    assert "The run found 3 patterns across 96 combinations." in html


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["report", "eta-small", "--narrator", "gpt"], "--narrator 'gpt' is not a narrator"),
        (["report"], "name one analysis, or pass --all"),
        (["report", "eta-small", "--all"], "name one analysis, or pass --all"),
        (["report", "eta-small", "--run", "../../outside"], "is missing or incomplete"),
    ],
)
def test_bad_report_options(
    project: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], needle: str
) -> None:
    result = run_cli(args, project, monkeypatch)
    assert result.code == 2
    lines = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and needle in lines[0] and "fix:" in lines[0], result.err


def test_serve_prints_the_address_and_serves_until_interrupted(project: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "opslens.cli", "report", "eta-small", "--serve"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        url = None
        for line in proc.stdout:  # event-based: the line is printed once the server listens
            if line.startswith("serving "):
                url = line.split()[1]
                break
        assert url is not None and url.startswith("http://127.0.0.1:")
        page = httpx.get(url, timeout=10)
        assert page.status_code == 200 and "eta-small: distribution patterns" in page.text
        proc.send_signal(signal.SIGINT)
        out, _err = proc.communicate(timeout=30)
        assert proc.returncode == 0 and "stopped" in out
    finally:
        if proc.poll() is None:
            proc.kill()
