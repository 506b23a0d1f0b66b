"""Checks the CLI makes before any work: writable output paths, one project file, stage lists."""

from __future__ import annotations

from pathlib import Path

import pytest

from opslens.cli.common import check_writable
from opslens.cli.run import _project_path, _stage_list
from opslens.errors import ConfigError


def test_a_writable_file_and_folder_pass(tmp_path: Path) -> None:
    check_writable(tmp_path / "out.jsonl", "--output")
    check_writable(tmp_path / "new" / "plots", "--plots-dir", folder=True)
    check_writable(None, "--output")


@pytest.mark.parametrize(
    ("make", "option", "folder", "words"),
    [
        (lambda d: d, "--output", False, "is a folder"),
        (lambda d: d / "missing" / "out.jsonl", "--output", False, "does not exist"),
        (lambda d: d / "f.txt", "--plots-dir", True, "is a file"),
        (lambda d: d / "f.txt" / "sub", "--plots-dir", True, "is a file, not a folder"),
        (lambda d: d / "f.txt" / "out.jsonl", "--output", False, "is a file, not a folder"),
    ],
)
def test_bad_paths_name_the_option_and_the_path(
    tmp_path: Path, make: object, option: str, folder: bool, words: str
) -> None:
    (tmp_path / "f.txt").write_text("")
    path = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(ConfigError, match=words) as caught:
        check_writable(path, option, folder=folder)
    assert option in str(caught.value) and "fix:" in str(caught.value)


def test_the_project_is_named_once() -> None:
    assert _project_path(None, None) == Path("project.yaml")
    assert _project_path(Path("a.yaml"), None) == _project_path(None, Path("a.yaml"))
    assert _project_path(Path("a.yaml"), Path("a.yaml")) == Path("a.yaml")
    with pytest.raises(ConfigError, match="two project files"):
        _project_path(Path("a.yaml"), Path("b.yaml"))


def test_stage_lists() -> None:
    assert _stage_list(" a , b,,") == ["a", "b"]
    assert _stage_list(",") == []  # named, but no stage: an error later, never "all stages"
    assert _stage_list(None) is None
