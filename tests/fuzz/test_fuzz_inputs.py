"""Fuzzing the two doors bytes come in by: the project file and a streamed line.

Any bytes give a result or one ``error: ...; fix: ...`` line with exit code 2,
never an internal error or a traceback. The CLI runs in-process; the budget is
small (200 examples a test; ``OPSLENS_FUZZ_EXAMPLES=5000`` for a long hunt).
"""

from __future__ import annotations

import functools
import io
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opslens.errors import InstanceError
from opslens.online.stream import iter_instances, parse_instance
from opslens.synthetic.trips import make_trips
from tests.fakes.cli import Result, run_cli

FUZZ = settings(
    max_examples=int(os.environ.get("OPSLENS_FUZZ_EXAMPLES", "200")),  # more for a long hunt
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
VALID = """tracking: {enabled: false}
analyses:
  - name: trip-eta
    recipe: distribution
    source: {kind: file, path: trips.csv, separator: ",", encoding: utf-8}
    columns: {time: started_at, target: duration_min, categorical: [route, hour_band]}
    params: {min_combination_size: 20, n_bins: 10, xgboost: {n_estimators: 10}}
    random_state: 3
active: [trip-eta]
"""
KEYS = [
    "tracking", "uri", "enabled", "analyses", "name", "recipe", "source", "kind", "path",
    "url", "table", "query", "hosts", "index", "password", "api_key", "columns", "target",
    "time", "entity", "metrics", "categorical", "params", "random_state", "active", "runs_dir",
    "report", "narrator", "layout", "long", "window", "start", "separator", "encoding",
    "generator", "options", "seed", "n_bins", "k_min", "k_max", "fingerprint", "format",
]  # fmt: skip
WORDS = (
    "file sql memory synthetic distribution fleet csv trips.csv sqlite:///x.db bogus://x".split()
)
WORDS += ["${HOME}", "${NOPE:-}", "7d", "", " ", "..", "/", "a" * 300]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(WORDS),
    st.text(max_size=20),
)
TREES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner, max_size=5),
    ),
    max_leaves=25,
)


@pytest.fixture(autouse=True, scope="module")
def _click_command_built_once() -> Iterator[None]:
    """Typer rebuilds the Click command on every call (~70 ms); the app does not change here."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(typer.main, "get_command", functools.cache(typer.main.get_command))
        yield


def _one_line_or_success(result: Result) -> None:
    text = result.out + result.err
    assert "Traceback" not in text and "internal error" not in text, text
    if result.code == 0:
        return
    assert result.code == 2, (result.code, text)
    errors = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.err


def _load_through_cli(data: bytes) -> Result:
    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as mp:
        (Path(folder) / "project.yaml").write_bytes(data)
        return run_cli(["runs", "-p", "project.yaml"], Path(folder), mp)


@FUZZ
@given(st.binary(max_size=400))
def test_project_loader_any_bytes(data: bytes) -> None:
    _one_line_or_success(_load_through_cli(data))


@FUZZ
@given(TREES)
def test_project_loader_any_yaml_tree(tree: Any) -> None:
    data = yaml.safe_dump({"analyses": tree} if not isinstance(tree, dict) else tree)
    _one_line_or_success(_load_through_cli(data.encode()))


@FUZZ
@given(st.data())
def test_project_loader_mutated_valid_file(data: st.DataObject) -> None:
    text = VALID.encode()
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, min(len(text), start + 12)))
    piece = data.draw(st.binary(max_size=12) | st.sampled_from([b": ", b"- ", b"{", b"]", b"\n  "]))
    _one_line_or_success(_load_through_cli(text[:start] + piece + text[end:]))


@FUZZ
@given(st.binary(max_size=300) | st.text(max_size=200).map(str.encode))
def test_stream_line_parser_any_bytes(line: bytes) -> None:
    item = parse_instance(1, line)
    assert item is None or isinstance(item, dict | InstanceError)
    if isinstance(item, InstanceError):
        assert "\n" not in str(item) and str(item).startswith("line 1 ")
        assert item.fix


@FUZZ
@given(st.lists(st.binary(max_size=60), max_size=8))
def test_iter_instances_one_item_per_non_blank_line(lines: list[bytes]) -> None:
    data = b"\n".join(line.replace(b"\n", b" ").replace(b"\r", b" ") for line in lines)
    items = list(iter_instances(io.TextIOWrapper(io.BytesIO(data), encoding="utf-8")))
    expected = [
        n for n, line in enumerate(data.split(b"\n"), 1) if parse_instance(n, line) is not None
    ]
    assert [n for n, _ in items] == expected


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from opslens.api import load_project
    from opslens.runner import run_analysis

    folder = tmp_path_factory.mktemp("fuzz-stream")
    make_trips(n_rows=2_000, seed=1, n_routes=3).trips.write_csv(folder / "trips.csv")
    (folder / "project.yaml").write_text(VALID)
    run_analysis(load_project(folder / "project.yaml"), "trip-eta")
    return folder


@settings(FUZZ, max_examples=25)
@given(st.lists(st.binary(max_size=80) | st.just(b'{"route": "R01"}'), min_size=1, max_size=6))
def test_stream_cli_any_lines(trained: Path, lines: list[bytes]) -> None:
    data = b"\n".join(lines)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
        result = run_cli(["stream", "trip-eta", "--no-plots"], trained, mp)
    _one_line_or_success(result)
    assert result.code == 0
