"""The ``opslens`` command: parse arguments, call the API, map errors to exit codes.

Exit codes: 0 success; 2 a problem with input, configuration or the file
system, and usage errors (one line on stderr, the last one, naming it and the
fix); 1 an internal error (a traceback with --debug); 130 interrupted by
Ctrl-C, 143 by SIGTERM (one line: ``interrupted; the previous complete run is
untouched``). ``-q/--quiet`` shows only warnings and errors. The commands live
one group per module (``run``, ``online``, ``report``, ``demo``); their state
(``--debug``, ``--quiet``, the secrets to mask) travels in the click context,
never in module globals.

Example:
    >>> from typer.testing import CliRunner
    >>> CliRunner().invoke(app, ["--version"]).output.startswith("opslens ")
    True
"""

import errno
import logging
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated

import typer

from opslens import __version__
from opslens.cli import demo, online, report, run, score, serve, ui
from opslens.cli import lifecycle as lifecycle_cli
from opslens.errors import OpslensError

__all__ = ["CliState", "app", "main"]

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Click's own help layout: Typer's Rich panels import Rich's markdown, traceback and
    # pretty-printing modules, more than half of a cold `opslens --help`'s CPU time
    rich_markup_mode=None,
    help="opslens: patterns, anomalies, predictions, limits and reports from operational data.",
)


@dataclass
class CliState:
    """What one invocation knows: whether to debug, and which values to mask."""

    debug: bool = False
    quiet: bool = False
    secrets: frozenset[str] = field(default_factory=frozenset)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"opslens {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks and debug logs")] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="show only warnings and errors")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version")
    ] = False,
) -> None:
    from opslens.cli.console import setup_console_logging

    if not isinstance(ctx.obj, CliState):
        ctx.obj = CliState()
    ctx.obj.debug = debug
    ctx.obj.quiet = quiet and not debug
    setup_console_logging(debug=debug, quiet=ctx.obj.quiet)


app.command("run")(run.run)
app.command("runs")(run.runs)
app.command("schema")(run.schema)
app.command("stream")(online.stream)
app.command("score")(score.score)
app.command("report")(report.report)
app.command("demo")(demo.demo)
app.command("ui")(ui.ui)
app.command("serve")(serve.serve)
app.command("batch")(lifecycle_cli.batch)
app.command("monitor")(lifecycle_cli.health)
app.command("health", hidden=True)(lifecycle_cli.health)
app.command("promote")(lifecycle_cli.promote)
app.command("retrain")(lifecycle_cli.retrain)
app.add_typer(lifecycle_cli.models_app, name="models")


_FS_ERRORS = {
    errno.ENOSPC: "free disk space, or choose a path on another disk",
    errno.EDQUOT: "free disk space, or choose a path on another disk",
    errno.EROFS: "choose a path on a writable file system",
    errno.EACCES: "choose a path you may write, or change its permissions",
    errno.EPERM: "choose a path you may write, or change its permissions",
    errno.ENOENT: "create the folder, or choose a path that exists",
    errno.ENOTDIR: "a file is where a folder should be: choose another path",
    errno.EISDIR: "name a file, not a folder",
    errno.EEXIST: "choose another path, or move what is there away",
    errno.ENAMETOOLONG: "choose a shorter path",
}


def _fail(state: CliState, message: str) -> None:
    from opslens.cli.console import stderr_console
    from opslens.config import mask_secrets

    stderr_console.file.flush()
    sys.stdout.flush()
    sys.stderr.write(mask_secrets(message, state.secrets) + "\n")


def _usage(e: Exception) -> str | None:
    """A Click usage error (Typer's own copy of Click raises it) as one line, or None."""
    if not (hasattr(e, "format_message") and hasattr(e, "exit_code")):
        return None
    ctx = getattr(e, "ctx", None)
    command = getattr(ctx, "command_path", None) or "opslens"
    message = " ".join(str(e.format_message()).split()).rstrip(".")
    return f"error: {message}; fix: see `{command} --help`"


def _invoke(args: list[str], state: CliState, signals: list[int]) -> int:
    """Run the app; map each way it can end to (one line on stderr and) an exit code.

    ``signals`` are those received so far: Typer turns an interrupt into exit code 130
    itself, so the signal (SIGINT 130, SIGTERM 143) is taken from there.
    """
    from opslens.runner.interrupts import MESSAGE

    try:
        code = app(args=args, obj=state, standalone_mode=False, prog_name="opslens")
    except OpslensError as e:
        if state.debug:
            logging.getLogger("opslens").exception("failed")
        _fail(state, f"error: {e}")
        return 2
    except (KeyboardInterrupt, typer.Abort):
        _fail(state, MESSAGE)
        return 128 + (signals[0] if signals else signal.SIGINT)
    except OSError as e:
        if e.errno not in _FS_ERRORS or state.debug:
            raise
        where = f" {e.filename}" if e.filename else ""
        _fail(state, f"error: cannot use{where} ({e.strerror}); fix: {_FS_ERRORS[e.errno]}")
        return 2
    except Exception as e:
        usage = _usage(e)
        if usage is None:
            raise
        if type(e).__name__ != "NoArgsIsHelpError":  # bare `opslens`: the help was the answer
            _fail(state, usage)
        return int(getattr(e, "exit_code", 2))
    if code == 130 and signals:  # Typer's exit for an interrupt it caught
        _fail(state, MESSAGE)
        return 128 + signals[0]
    return code if isinstance(code, int) else 0


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: run the app; input errors in one line with exit code 2, Ctrl-C 130, SIGTERM 143."""
    from opslens.runner.interrupts import catch_signals

    args = list(sys.argv[1:] if argv is None else argv)
    state = CliState(debug="--debug" in args, quiet="-q" in args or "--quiet" in args)
    with catch_signals() as signals:
        try:
            code = _invoke(args, state, signals)
        except SystemExit:
            raise
        except Exception as e:
            if state.debug:  # the traceback, with every secret masked like any other output
                import traceback

                _fail(state, traceback.format_exc().rstrip())
                raise SystemExit(1) from None
            first = str(e).splitlines()[0] if str(e) else ""
            _fail(
                state,
                f"internal error: {type(e).__name__}: {first} "
                "(run with --debug for the traceback and report it)",
            )
            code = 1
    if code:
        raise SystemExit(code)
