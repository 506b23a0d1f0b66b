"""Run the opslens CLI in-process, as `opslens ...` would, capturing exit code and output."""

from __future__ import annotations

import io
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class Result:
    code: int
    out: str
    err: str


def run_cli(args: list[str], cwd: Path, monkeypatch: pytest.MonkeyPatch) -> Result:
    from opslens import cli

    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", ["opslens", *args])
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with redirect_stdout(out), redirect_stderr(err):
        try:
            cli.main()
        except SystemExit as e:
            code = int(e.code or 0)
    return Result(code, out.getvalue(), err.getvalue())
