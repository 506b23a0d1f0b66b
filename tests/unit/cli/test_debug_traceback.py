"""`--debug` shows an internal error's traceback, with secrets masked like every other output."""

from __future__ import annotations

import importlib

import pytest

cli_app = importlib.import_module("opslens.cli.app")  # the module, not the Typer app


def test_debug_traceback_is_masked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*_: object) -> int:
        raise RuntimeError("cannot reach postgresql://scott:Tiger-canary-77@db.example/prod")

    monkeypatch.setattr(cli_app, "_invoke", broken)
    with pytest.raises(SystemExit) as exit_info:
        cli_app.main(["--debug", "runs"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 1
    assert "Traceback (most recent call last)" in err and "RuntimeError" in err
    assert "Tiger-canary-77" not in err and "db.example" in err
