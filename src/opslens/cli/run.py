"""``opslens run``, ``opslens runs`` and ``opslens schema``: batch runs, their list, the config schema.

``opslens run PROJECT --report --stream FILE`` is the whole way in one
command: the batch run, then its report, then the stream of FILE scored by
the new model.

Example:
    >>> from opslens.cli.run import _stage_list
    >>> _stage_list("prepare, classify"), _stage_list(","), _stage_list(None)
    (['prepare', 'classify'], [], None)
"""

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from opslens.cli.common import ProjectOpt, check_writable, load, quiet

if TYPE_CHECKING:
    from opslens.config import ProjectConfig
    from opslens.runner import RunResult

__all__ = ["run", "runs", "schema"]

log = logging.getLogger("opslens.cli")
DEFAULT_PROJECT = Path("project.yaml")


def _stage_list(stages: str | None) -> list[str] | None:
    return None if stages is None else [s.strip() for s in stages.split(",") if s.strip()]


def _project_path(argument: Path | None, option: Path | None) -> Path:
    from opslens.errors import ConfigError

    if argument is not None and option is not None and argument != option:
        raise ConfigError(
            f"two project files were given ({argument} and -p {option})",
            fix="name the project once: opslens run PROJECT, or opslens run -p PROJECT",
        )
    return argument or option or DEFAULT_PROJECT


def _stream_after(
    config: "ProjectConfig", result: "RunResult", instances: Path, output: Path | None
) -> str:
    from opslens.online.stream import stream_instances

    target = output or config.root / "stream" / result.analysis / f"{result.run_id}.jsonl"
    target.parent.mkdir(parents=True, exist_ok=True)
    summary = stream_instances(config, result.analysis, input_path=instances, output=target)
    return f"stream: {summary.scored} scored ({summary.rejected} rejected) -> {target}"


def _raise_failed(failed: list[tuple[str, Exception]], secrets: frozenset[str]) -> None:
    """One line per failed analysis on stderr (internal errors last); the last one is raised,
    so the run exits 2 (1 if an internal error was among them) after the others' results."""
    import sys

    from opslens.config import mask_secrets
    from opslens.errors import OpslensError

    failed = sorted(failed, key=lambda f: not isinstance(f[1], OpslensError))
    for name, e in failed[:-1]:
        if isinstance(e, OpslensError):
            line = f"error: '{name}': {e}"
        else:
            line = f"internal error: '{name}': {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        sys.stderr.write(mask_secrets(line, secrets) + "\n")
    name, last = failed[-1]
    if isinstance(last, OpslensError):
        raise type(last)(f"'{name}': {last.problem}", fix=last.fix) from last
    raise last


def _say_run(result: "RunResult") -> None:
    """The lines ``opslens run`` prints for one analysis: the run, its verdict, its promotion."""
    name, shown = result.analysis, result.metrics_line()
    status = result.status
    if result.missing:
        status += f" (not run yet: {', '.join(result.missing)})"
    typer.echo(
        f"{name}: run {result.run_id} {status} -> {result.path}" + (f" ({shown})" if shown else "")
    )
    if result.baselines is not None:
        typer.echo(f"{name}: against the baselines: {result.baselines.verdict}")
    withheld = result.promotion.warning() if result.promotion is not None else None
    if withheld is not None:
        typer.echo(f"{name}: {withheld}")


def run(
    ctx: typer.Context,
    project_arg: Annotated[
        Path | None, typer.Argument(help="project file (default project.yaml)", show_default=False)
    ] = None,
    project_opt: Annotated[
        Path | None, typer.Option("--project", "-p", help="project file (as the argument)")
    ] = None,
    analysis: Annotated[
        list[str] | None,
        typer.Option("--analysis", "-a", help="run only this analysis (repeatable)"),
    ] = None,
    stages: Annotated[
        str | None,
        typer.Option("--stages", help="comma-separated stages; others come from the latest run"),
    ] = None,
    skip_stages: Annotated[
        str | None,
        typer.Option(
            "--skip-stages", help="comma-separated stages not to run; from the latest run"
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="reuse saved results even if they were made with other settings, and make "
            "the new model champion even if it loses to one of its baselines",
        ),
    ] = False,
    pipeline: Annotated[
        str, typer.Option("--pipeline", help="the recipe's pipeline to run")
    ] = "train",
    report: Annotated[
        bool, typer.Option("--report", help="then write the report of each new run")
    ] = False,
    stream: Annotated[
        Path | None,
        typer.Option("--stream", help="then score this JSON-lines file with the new model"),
    ] = None,
    stream_output: Annotated[
        Path | None,
        typer.Option(
            "--stream-output", help="where --stream writes (default stream/<analysis>/<run>.jsonl)"
        ),
    ] = None,
) -> None:
    """Run the active analyses (or --analysis NAME) and commit a run folder each."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from opslens.cli.console import stderr_console
    from opslens.errors import ConfigError, SourceError
    from opslens.runner import run_analysis

    config = load(ctx, _project_path(project_arg, project_opt))
    names = analysis or [a.name for a in config.active_analyses()]
    for name in names:
        config.analysis(name)
    if stream is not None:
        if len(names) != 1:
            raise ConfigError(
                f"--stream scores one analysis's instances, but {len(names)} would run",
                fix="name the analysis with --analysis NAME",
            )
        if not stream.is_file():
            raise SourceError(
                f"instances file {stream} does not exist",
                fix="pass --stream FILE.jsonl naming a JSON-lines file of instances",
            )
        check_writable(stream_output, "--stream-output")
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=stderr_console,
        transient=True,
        disable=quiet(ctx) or not stderr_console.is_terminal,
    ) as progress:
        failed: list[tuple[str, Exception]] = []
        for name in names:
            try:
                result = run_analysis(
                    config,
                    name,
                    stages=_stage_list(stages),
                    skip=_stage_list(skip_stages),
                    force=force,
                    pipeline=pipeline,
                    progress=progress,
                )
            except Exception as e:  # each analysis succeeds or fails on its own
                if len(names) == 1:
                    raise
                log.debug("'%s' failed", name, exc_info=True)
                failed.append((name, e))
                continue
            _say_run(result)
            if report:
                from opslens.api import write_report

                typer.echo(f"report: {write_report(config, name, run_id=result.run_id)}")
            if stream is not None:
                typer.echo(_stream_after(config, result, stream, stream_output))
    if failed:
        _raise_failed(failed, config.secrets)


class _LazyTracker:
    """A tracker made on first use (any attribute): ``opslens runs`` reads run folders, and
    needs the tracking store only to move a serving alias an interrupted run left behind."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._tracker: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._tracker is None:
            self._tracker = self._make()
        return getattr(self._tracker, name)


def runs(ctx: typer.Context, project: ProjectOpt = DEFAULT_PROJECT) -> None:
    """List runs, newest first: whether the model beat its baselines, key metrics; damaged runs
    are marked."""
    from rich.console import Console
    from rich.table import Table

    from opslens.explain.text import format_metric
    from opslens.report.facts import read_baselines, short_verdict
    from opslens.runner.promotion import repair_alias
    from opslens.runner.tracked import make_tracker
    from opslens.tracking.runs import LATEST, damaged_runs, list_runs, repair_latest

    config = load(ctx, project, typed=False)
    root = config.runs_root()
    table = Table(title="opslens runs")
    for col in ("analysis", "run", "recipe", "finished", "against the baselines", "key metrics"):
        table.add_column(col)
    # MLflow only if a killed run left the serving alias to move (importing it costs seconds)
    tracker = _LazyTracker(lambda: make_tracker(config)) if config.tracking.enabled else None
    for a in config.analyses:
        try:
            repair_latest(root, a.name)
        except OSError as e:
            log.warning("'%s': could not repair the latest pointer (%s)", a.name, e.strerror)
        if tracker is not None:
            try:
                repair_alias(root, a.name, tracker)
            except Exception as e:  # listing runs goes on; the next run tries again
                log.warning("'%s': could not repair the serving alias (%s)", a.name, e)
        latest_file = root / a.name / LATEST
        latest = latest_file.read_text().strip() if latest_file.is_file() else None
        views = list_runs(root, a.name)
        damaged = damaged_runs(root, a.name)
        if not views and not damaged:
            table.add_row(a.name, "(no runs)", a.recipe, "", "", "")
        for view in views:
            m = view.manifest
            metrics = ", ".join(
                f"{k}={format_metric(v)}" for k, v in list(m.get("metrics", {}).items())[:4]
            )
            verdict = (
                short_verdict(read_baselines(view.facts, where=str(view.path / "facts.json")))
                if view.has("facts.json") and view.pipeline in ("train", "retrain")
                else ""
            )
            mark = "".join(
                (
                    f" ({view.pipeline})" if view.pipeline != "train" else "",
                    " (partial)" if view.status == "partial" else "",
                    " (latest)" if view.run_id == latest else "",
                )
            )
            table.add_row(
                a.name,
                view.run_id + mark,
                m.get("recipe", ""),
                str(m.get("finished", ""))[:19],
                verdict,
                metrics,
            )
        for run_id, why in damaged:
            log.warning("'%s': run %s is damaged: %s", a.name, run_id, why)
            table.add_row(a.name, f"{run_id} (damaged)", a.recipe, "", "", why)
    Console(width=180, emoji=False).print(table)  # ":name:" in a cell stays as written


def schema(
    recipe: Annotated[
        str | None, typer.Argument(help="a recipe (its params); default: the whole project file")
    ] = None,
) -> None:
    """Print the JSON Schema of project.yaml, or of one recipe's params (for editors and CI)."""
    from opslens.recipes import analysis_json_schema, params_json_schema

    found = analysis_json_schema() if recipe is None else params_json_schema(recipe)
    typer.echo(json.dumps(found, indent=2))
