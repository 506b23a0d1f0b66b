"""The stream never dies on one line: invalid UTF-8, JSON nested past the recursion limit and a
5,000-digit number each get their error line, from a file as from stdin, and the stream goes on."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from opslens.synthetic.trips import make_trips
from tests.fakes.cli import run_cli

PROJECT = """
tracking: {enabled: false}
analyses:
  - name: trip-eta
    recipe: distribution
    source: {kind: file, path: trips.csv}
    columns: {time: started_at, target: duration_min, categorical: [route, hour_band]}
    params: {min_combination_size: 20, xgboost: {n_estimators: 10}}
"""
GOOD = b'{"route": "R01", "hour_band": "night"}'
LINES = [
    GOOD,
    GOOD,
    GOOD,
    b'{"route": "R0\xff\xfe1", "hour_band": "night"}',  # invalid UTF-8
    b'{"route": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",  # RecursionError in json
    b'{"route": "R01", "hour_band": "night", "duration_min": ' + b"9" * 5_000 + b"}",
    b'{"route": ' + b"7" * 5_000 + b', "hour_band": "night"}',
    GOOD,
]
EXPECTED_ERRORS = {
    4: "line 4 is not UTF-8 text (byte 14 is 0xff)",
    5: "line 5 nests JSON too deeply",
    6: "an integer of 5000 digits is too long",
    7: "an integer of 5000 digits is too long",
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from opslens.api import load_project
    from opslens.runner import run_analysis

    folder = tmp_path_factory.mktemp("stream-lines")
    make_trips(n_rows=3_000, seed=1, n_routes=3).trips.write_csv(folder / "trips.csv")
    (folder / "project.yaml").write_text(PROJECT)
    run_analysis(load_project(folder / "project.yaml"), "trip-eta")
    (folder / "bad.jsonl").write_bytes(b"\n".join(LINES) + b"\n")
    return folder


def _check(out: str) -> None:
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["line"] for r in records] == list(range(1, len(LINES) + 1))
    errors = {r["line"]: r["error"] for r in records if "error" in r}
    assert sorted(errors) == sorted(EXPECTED_ERRORS)
    for number, words in EXPECTED_ERRORS.items():
        assert words in errors[number], errors[number]
        assert "; fix: " in errors[number]
    scored = [r for r in records if "error" not in r]
    assert len(scored) == 4 and {r["cluster"] for r in scored} == {scored[0]["cluster"]}


def test_bad_lines_in_a_file(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_cli(
        ["stream", "trip-eta", "--input", "bad.jsonl", "--no-plots"], folder, monkeypatch
    )
    assert result.code == 0, result.err
    _check(result.out)
    assert "4 instances scored, 4 instances rejected" in result.err


def test_bad_lines_on_stdin(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stdin = io.TextIOWrapper(io.BytesIO((folder / "bad.jsonl").read_bytes()), encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", stdin)
    result = run_cli(["stream", "trip-eta", "--no-plots"], folder, monkeypatch)
    assert result.code == 0, result.err
    _check(result.out)
