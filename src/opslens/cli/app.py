"""The ``opslens`` command: parse arguments, call the API, map errors to exit codes.

Exit codes: 0 success; 2 a problem with input or configuration (one line on
stderr naming it and the fix); 1 an internal error (a traceback with --debug);
130 interrupted. The commands live one group per module (``run``, ``online``,
``report``, ``demo``); their state (``--debug``, the secrets to mask) travels
in the click context, never in module globals.

Example:
    >>> from typer.testing import CliRunner
    >>> CliRunner().invoke(app, ["--version"]).output.startswith("opslens ")
    True
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated

import typer

from opslens import __version__
from opslens.cli import demo, online, report, run, ui
from opslens.errors import OpslensError

__all__ = ["CliState", "app", "main"]

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="opslens: patterns, anomalies, predictions, limits and reports from operational data.",
)


@dataclass
class CliState:
    """What one invocation knows: whether to debug, and which values to mask."""

    debug: bool = False
    secrets: frozenset[str] = field(default_factory=frozenset)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"opslens {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks and debug logs")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version")
    ] = False,
) -> None:
    from opslens.cli.console import setup_console_logging

    if not isinstance(ctx.obj, CliState):
        ctx.obj = CliState()
    ctx.obj.debug = debug
    setup_console_logging(debug=debug)


app.command("run")(run.run)
app.command("runs")(run.runs)
app.command("schema")(run.schema)
app.command("stream")(online.stream)
app.command("report")(report.report)
app.command("demo")(demo.demo)
app.command("ui")(ui.ui)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: run the app, printing input errors in one line with exit code 2."""
    from opslens.config import mask_secrets

    args = list(sys.argv[1:] if argv is None else argv)
    state = CliState(debug="--debug" in args)
    try:
        code = app(args=args, obj=state, standalone_mode=False, prog_name="opslens")
    except OpslensError as e:
        if state.debug:
            logging.getLogger("opslens").exception("failed")
        sys.stderr.write(f"error: {mask_secrets(str(e), state.secrets)}\n")
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        sys.stderr.write("interrupted; the previous complete run is untouched\n")
        raise SystemExit(130) from None
    except SystemExit:
        raise
    except Exception as e:  # usage errors of Typer's click arrive here too
        if hasattr(e, "show") and hasattr(e, "exit_code"):
            e.show()
            raise SystemExit(int(e.exit_code)) from None
        if state.debug:
            raise
        first = mask_secrets(str(e), state.secrets).splitlines()[0] if str(e) else ""
        sys.stderr.write(
            f"internal error: {type(e).__name__}: {first} "
            "(run with --debug for the traceback and report it)\n"
        )
        raise SystemExit(1) from None
    if isinstance(code, int) and code:
        raise SystemExit(code)
