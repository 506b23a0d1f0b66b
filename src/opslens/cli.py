"""The ``opslens`` command: parse arguments, call the API, map errors to exit codes.

Exit codes: 0 success; 2 a problem with input or configuration (one line on
stderr naming it and the fix); 1 an internal error (a traceback with --debug).

Example:
    >>> from typer.testing import CliRunner
    >>> CliRunner().invoke(app, ["--version"]).output.startswith("opslens ")
    True
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from opslens import __version__
from opslens.errors import OpslensError

if TYPE_CHECKING:
    from opslens.config import ProjectConfig

__all__ = ["app", "main"]

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="opslens: patterns, anomalies, predictions, limits and reports from operational data.",
)
log = logging.getLogger("opslens.cli")
_state: dict[str, Any] = {"debug": False, "secrets": frozenset()}

ProjectOpt = Annotated[
    Path, typer.Option("--project", "-p", help="project file", show_default=True)
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"opslens {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks and debug logs")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version")
    ] = False,
) -> None:
    from opslens.logs import setup_console_logging

    _state["debug"] = debug
    setup_console_logging(debug=debug)


def _load(project: Path) -> ProjectConfig:
    from opslens.config import load_project
    from opslens.logs import setup_console_logging

    config = load_project(project)
    _state["secrets"] = config.secrets
    setup_console_logging(debug=bool(_state["debug"]), secrets=config.secrets)
    return config


@app.command()
def run(
    project: Annotated[Path, typer.Argument(help="project file")] = Path("project.yaml"),
    analysis: Annotated[
        list[str] | None,
        typer.Option("--analysis", "-a", help="run only this analysis (repeatable)"),
    ] = None,
    stages: Annotated[
        str | None,
        typer.Option("--stages", help="comma-separated stages; others come from the latest run"),
    ] = None,
) -> None:
    """Run the active analyses (or --analysis NAME) and commit a run folder each."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from opslens.logs import stderr_console
    from opslens.recipes.runner import run_analysis

    config = _load(project)
    names = analysis or [a.name for a in config.active_analyses()]
    for name in names:
        config.analysis(name)
    stage_list = [s.strip() for s in stages.split(",") if s.strip()] if stages else None
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=stderr_console,
        transient=True,
    ) as progress:
        for name in names:
            result = run_analysis(config, name, stages=stage_list, progress=progress)
            shown = result.headline()
            typer.echo(
                f"{name}: run {result.run_id} complete -> {result.path}"
                + (f" ({shown})" if shown else "")
            )


@app.command()
def stream(
    analysis: Annotated[str, typer.Argument(help="analysis name")],
    project: ProjectOpt = Path("project.yaml"),
    input: Annotated[
        str, typer.Option("--input", "-i", help="JSON-lines file of instances, or - for stdin")
    ] = "-",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="write JSON lines here (default stdout)")
    ] = None,
    plots: Annotated[
        bool, typer.Option("--plots/--no-plots", help="save a plot per instance")
    ] = True,
    plots_dir: Annotated[Path | None, typer.Option("--plots-dir", help="where plots go")] = None,
) -> None:
    """Predict each streamed instance with the latest run's model; one JSON line out per line in."""
    from opslens.online.stream import stream_instances

    config = _load(project)
    source = sys.stdin if input == "-" else None
    summary = stream_instances(
        config,
        analysis,
        input_path=None if input == "-" else Path(input),
        stdin=source,
        output=output,
        plots=plots,
        plots_dir=plots_dir,
    )
    log.info(
        "%d instance(s) scored, %d rejected; plots in %s",
        summary.scored,
        summary.rejected,
        summary.plots_dir or "-",
    )


@app.command()
def report(
    analysis: Annotated[str, typer.Argument(help="analysis name")],
    project: ProjectOpt = Path("project.yaml"),
    run_id: Annotated[str, typer.Option("--run", help="run id (default: latest)")] = "latest",
) -> None:
    """Write report.html (self-contained, plots embedded) into the run folder."""
    from opslens.report.render import write_report
    from opslens.tracking.runs import open_run

    config = _load(project)
    config.analysis(analysis)
    path = write_report(open_run(config.runs_root(), analysis, run_id))
    typer.echo(f"report: {path}")


@app.command()
def runs(project: ProjectOpt = Path("project.yaml")) -> None:
    """List complete runs with their key metrics (newest first)."""
    from rich.console import Console
    from rich.table import Table

    from opslens.tracking.runs import LATEST, list_runs

    config = _load(project)
    table = Table(title="opslens runs")
    for col in ("analysis", "run", "recipe", "finished", "key metrics"):
        table.add_column(col)
    for a in config.analyses:
        latest_file = config.runs_root() / a.name / LATEST
        latest = latest_file.read_text().strip() if latest_file.is_file() else None
        views = list_runs(config.runs_root(), a.name)
        if not views:
            table.add_row(a.name, "(no runs)", a.recipe, "", "")
        for view in views:
            m = view.manifest
            metrics = ", ".join(f"{k}={v:.3f}" for k, v in list(m.get("metrics", {}).items())[:4])
            mark = " (latest)" if view.run_id == latest else ""
            table.add_row(
                a.name,
                view.run_id + mark,
                m.get("recipe", ""),
                str(m.get("finished", ""))[:19],
                metrics,
            )
    Console(width=160).print(table)


@app.command()
def demo(
    recipe: Annotated[
        str | None, typer.Argument(help="distribution or fleet (default: all)")
    ] = None,
    directory: Annotated[
        Path, typer.Option("--dir", help="where the demo project is written")
    ] = Path("opslens-demo"),
) -> None:
    """Run the whole pipeline on bundled synthetic data: batch, report, a short stream."""
    from opslens.demo import run_demo

    for line in run_demo(directory, recipe):
        typer.echo(line)


def main() -> None:
    """Entry point: run the app, printing input errors in one line with exit code 2."""
    from opslens.config import mask_secrets

    try:
        app(standalone_mode=False)
    except OpslensError as e:
        if _state["debug"]:
            logging.getLogger("opslens").exception("failed")
        sys.stderr.write(f"error: {mask_secrets(str(e), _state['secrets'])}\n")
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
        if _state["debug"]:
            raise
        sys.stderr.write(
            f"internal error: {type(e).__name__}: {mask_secrets(str(e), _state['secrets']).splitlines()[0] if str(e) else ''} "
            "(run with --debug for the traceback and report it)\n"
        )
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
