"""The README and the documentation pages say what is true and their snippets run.

- the Python examples (doctest) of every page run as written;
- the shell commands of the README and the getting-started page (the first things users
  copy) run in a fresh folder, in order; `make` targets are checked with `make -n`;
- every project.yaml snippet validates against the configuration models (so every key it
  names exists), and every `opslens` command line in the docs names options that exist;
- the recipe tables of the README and the docs come from the recipe registry.
"""

from __future__ import annotations

import contextlib
import doctest
import os
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from opslens.recipes import get_recipe, project_from_mapping, recipe_names
from tests.contracts.param_keys import wrong_keys
from tests.fakes.cli import run_cli

ROOT = Path(__file__).parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
GETTING_STARTED = DOCS / "getting-started.md"
PAGES = sorted(DOCS.rglob("*.md"))
BIN = Path(sys.executable).parent


def _blocks(path: Path, *langs: str) -> list[str]:
    pattern = r"```(?:" + "|".join(langs) + r")\n(.*?)```"
    return re.findall(pattern, path.read_text(), re.S)


def _commands(path: Path) -> list[str]:
    """The command lines of a page's bash blocks, comments stripped, continuations joined."""
    lines: list[str] = []
    for block in _blocks(path, "bash"):
        text = block.replace("\\\n", " ")
        for line in text.splitlines():
            line = re.sub(r"\s+#\s.*$", "", line).strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


# --- Python examples -------------------------------------------------------------------------


@pytest.mark.slow
def test_python_examples_of_readme_and_docs_run() -> None:
    attempted = 0
    for page in [README, *PAGES]:
        if ">>>" not in page.read_text():
            continue
        result = doctest.testfile(
            str(page),
            module_relative=False,
            optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
        )
        assert result.failed == 0, page
        attempted += result.attempted
    assert attempted >= 8


# --- shell commands --------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("page", [README, GETTING_STARTED], ids=["README", "getting-started"])
def test_shell_commands_run_as_written(page: Path, tmp_path: Path) -> None:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    commands = _commands(page)
    assert len(commands) >= 4
    ran = []
    for line in commands:
        if line.startswith("make "):
            # the make targets exist and resolve (a dry run: `make test` would run this test)
            done = subprocess.run(
                ["make", "-n", *line.split()[1:]], cwd=ROOT, capture_output=True, text=True
            )
        else:
            done = subprocess.run(
                ["bash", "-c", f"set -o pipefail; {line}"],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
        assert done.returncode == 0, (line, done.stderr[-2000:])
        ran.append((line, done.stdout))
    reports = [out for line, out in ran if " report " in line]
    assert reports and all("report.html" in out for out in reports)
    streamed = [out for line, out in ran if " stream " in line]
    assert all('"cluster"' in out for out in streamed)


# --- configuration snippets ------------------------------------------------------------------


@cache
def _example_analysis(recipe: str) -> dict[str, Any]:
    project = yaml.safe_load((ROOT / "examples" / recipe / "project.yaml").read_text())
    analyses: list[dict[str, Any]] = project["analyses"]
    return analyses[-1]


def _snippet_project(page: Path, snippet: dict[str, Any]) -> dict[str, Any] | None:
    """The project a snippet means: itself, the page's recipe example with it merged in, or a
    minimal project with its top-level sections."""
    if "analyses" in snippet:
        return snippet
    if page.parent.name == "recipes" and page.stem in recipe_names():
        analysis = {**_example_analysis(page.stem), **snippet}
        return {"analyses": [analysis]}
    top = {"tracking", "runs_dir", "engine", "spark", "report", "active"}
    if set(snippet) <= top:
        return {"analyses": [_example_analysis("distribution")], **snippet}
    return None


def test_every_project_snippet_validates(tmp_path: Path) -> None:
    checked = 0
    for page in [README, *PAGES]:
        for block in _blocks(page, "yaml", "yml"):
            snippet = yaml.safe_load(block)
            assert isinstance(snippet, dict), (page, block[:80])
            project = _snippet_project(page, snippet)
            assert project is not None, f"{page.name}: a snippet no test can place: {list(snippet)}"
            # a recipe page's snippet names the files of its example project (failures.csv)
            folder = ROOT / "examples" / page.stem
            root = folder if page.parent.name == "recipes" and folder.is_dir() else tmp_path
            with contextlib.chdir(root):
                project_from_mapping(project, root=root, where=f"{page.name} snippet")
            checked += 1
    assert checked >= 12


def test_params_keys_named_in_the_docs_exist() -> None:
    for page in [README, *PAGES]:
        recipe = page.stem if page.parent.name == "recipes" and page.stem != "index" else None
        assert wrong_keys(page.read_text(), recipe) == [], page


@cache
def _help(command: tuple[str, ...]) -> str:
    mp = pytest.MonkeyPatch()
    try:
        result = run_cli([*command, "--help"], ROOT, mp)
    finally:
        mp.undo()
    assert result.code == 0, (command, result.err)
    return result.out


def _opslens_calls(line: str) -> list[list[str]]:
    calls = []
    for part in line.split("|"):
        words = part.split()
        if "opslens" in words:
            calls.append(words[words.index("opslens") + 1 :])
    return calls


def test_every_opslens_command_line_names_options_that_exist() -> None:
    checked = 0
    for page in [README, *PAGES]:
        for line in _commands(page):
            for args in _opslens_calls(line):
                command = tuple(args[:2]) if args[:1] == ["models"] else tuple(args[:1])
                text = _help(command)
                for option in (a.split("=")[0] for a in args if a.startswith("--")):
                    assert option in text, f"{page.name}: `opslens {' '.join(args)}`: {option}"
                checked += 1
    assert checked >= 15


# --- true statements -------------------------------------------------------------------------


def _recipe_row(name: str, link: str) -> str:
    r = get_recipe(name)
    labels = "; ".join(b.label for b in r.baselines)
    return f"| [{name}]({link}) | {r.summary} | {labels} |"


@pytest.mark.parametrize("name", recipe_names())
def test_the_recipe_tables_come_from_the_registry(name: str) -> None:
    readme = README.read_text()
    assert _recipe_row(name, f"docs/recipes/{name}.md") in readme
    assert _recipe_row(name, f"recipes/{name}.md") in (DOCS / "index.md").read_text()
    listing = (DOCS / "recipes" / "index.md").read_text()
    assert _recipe_row(name, f"{name}.md") + f" `examples/{name}/project.yaml` |" in listing
    # the "your own data" list: the example project and the getting-started section
    assert f"| {name} | `examples/{name}/project.yaml` | [" in readme
    assert (ROOT / "examples" / name / "project.yaml").is_file()
    assert f"### {name}: " in GETTING_STARTED.read_text()
    assert (DOCS / "recipes" / f"{name}.md").is_file()
    assert f"recipes/{name}.md" in (ROOT / "mkdocs.yml").read_text()


def test_the_table_check_can_fail() -> None:
    assert _recipe_row("distribution", "x") not in README.read_text()


def test_no_stale_statements() -> None:
    text = "\n".join(p.read_text() for p in [README, *PAGES])
    assert "planned" not in text and "come next" not in text
    # make demo installs the core package only; the app is an extra
    assert "make demo / make test install it already" not in text
    # the residual recipe's stream id is `stream`
    assert '{"stream_id": "axis-7"' not in text and '{"stream": "axis-7"' in text
    assert "../shared" not in text


def test_the_readme_is_a_short_front_page() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= 120
    for page in PAGES:
        if page.name != "griffe_examples.py" and page.parent == DOCS:
            assert f"docs/{page.name}" in README.read_text() or page.name == "index.md", page


# --- the error messages of "Errors and fixes" are the ones opslens prints -------------------

TRIPS = "trip_id,started_at,route,hour_band,vehicle_type,weekday,duration_min\n"
ETA = """analyses:
  - name: {name}
    recipe: {recipe}
    source: {source}
    columns: {{target: {target}, categorical: [route]}}
{params}"""
#: (project file fields, command) per documented error; the Spark one needs a Spark master
SCENARIOS: list[tuple[dict[str, str], list[str]]] = [
    ({"source": "{kind: file, pth: data/trips.csv}"}, ["run"]),
    ({"params": "    params: {n_bin: 3}\n"}, ["run"]),
    ({"recipe": "distributon"}, ["run"]),
    ({}, ["report", "nosuch"]),
    ({}, ["run", "--stages", ","]),
    ({}, ["run", "--bogus"]),
    ({"source": "{kind: file, path: trips.csv}"}, ["run"]),
    ({"target": "minutes"}, ["run"]),
    ({}, ["run"]),
    ({}, ["report", "trip-eta"]),
    ({"name": "eta"}, ["promote", "eta", "--version", "9"]),
    (
        {"source": "{kind: sql, url: 'postgresql://postgres@127.0.0.1:5432/test', table: nosuch}"},
        ["run"],
    ),
]
#: documented lines whose cases need a Spark cluster: tested against the loopback cluster in
#: tests/e2e/spark (unreachable master, executors on another Python, an unreadable input)
NOT_REPRODUCED = [
    "error: spark.master spark://10.0.0.5:7077 is unreachable",
    "error: the Spark executors run Python 3.10 and this driver runs Python 3.11",
    "error: the Spark executors at spark://10.0.0.5:7077 cannot read",
]


@pytest.mark.slow
def test_the_documented_error_lines_are_what_opslens_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    documented = [
        line for line in (DOCS / "errors.md").read_text().splitlines() if line.startswith("error:")
    ]
    printed = []
    for i, (fields, args) in enumerate(SCENARIOS):
        folder = tmp_path / str(i) / "eta"
        (folder / "data").mkdir(parents=True)
        (folder / "data" / "trips.csv").write_text(
            TRIPS + "1,2025-01-01T08:00,R1,morning,van,1,12\n"
        )
        values = {
            "name": "trip-eta",
            "recipe": "distribution",
            "source": "{kind: file, path: data/trips.csv}",
            "target": "duration_min",
            "params": "",
            **fields,
        }
        (folder / "project.yaml").write_text(ETA.format(**values))
        result = run_cli(args, folder, monkeypatch)
        assert result.code == 2, (args, result.err)
        last = result.err.strip().splitlines()[-1]
        printed.append(last.replace(str(folder), "/home/me/eta"))
    missing = [p for p in printed if p not in documented]
    assert missing == [], "printed but not documented as printed"
    unproduced = [
        d for d in documented if d not in printed and not d.startswith(tuple(NOT_REPRODUCED))
    ]
    assert unproduced == [], "documented but not printed"
