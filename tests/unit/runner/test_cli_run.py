"""`opslens run` says per analysis whether the model beat its baselines, when the serving alias
was withheld (and that --force serves it anyway), and when a run is partial."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from tests.fakes.cli import run_cli
from tests.unit.runner.test_gate import _recipe

from opslens.runner import run as runner_module

PROJECT = """
tracking: {enabled: false}
analyses:
  - name: toy
    recipe: template
    source: {kind: file, path: minutes.parquet}
    columns: {target: minutes}
"""


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, with_template: None) -> Path:
    # a skewed target: the median (MAE 3.8) beats the mean the toy model predicts (MAE 6.08)
    pl.DataFrame({"minutes": [1.0, 1.0, 1.0, 1.0, 20.0]}).write_parquet(
        tmp_path / "minutes.parquet"
    )
    (tmp_path / "project.yaml").write_text(PROJECT)
    monkeypatch.setattr(runner_module, "get_recipe", lambda _name: _recipe())
    return tmp_path


def test_run_prints_the_verdict_and_the_withheld_alias(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    done = run_cli(["-q", "run"], folder, monkeypatch)
    assert done.code == 0, done.err
    lines = done.out.splitlines()
    assert lines[0].startswith("toy: run ") and " complete -> " in lines[0]
    assert lines[1].startswith("toy: against the baselines: the median is better on MAE")
    assert lines[2].startswith("toy: version 1 registered but not made champion: the median")
    assert lines[2].endswith("; pass --force to serve it anyway")

    forced = run_cli(["-q", "run", "--force"], folder, monkeypatch)
    assert forced.code == 0, forced.err
    assert "not made champion" not in forced.out
    assert "toy: against the baselines: the median is better" in forced.out


def test_run_of_the_first_stages_says_it_is_partial(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    done = run_cli(["-q", "run", "--stages", "score"], folder, monkeypatch)
    assert done.code == 0, done.err
    first = done.out.splitlines()[0]
    assert " partial (not run yet: summarise) -> " in first
    rest = run_cli(["-q", "run", "--stages", "summarise"], folder, monkeypatch)
    assert rest.code == 0, rest.err
    assert " complete -> " in rest.out.splitlines()[0]
