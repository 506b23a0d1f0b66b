"""``opslens batch``, ``monitor`` (``health``), ``retrain``, ``promote`` and ``models history``:
a deployed model's life cycle, for any analysis whose recipe declares the hooks.

Example:
    >>> from opslens.cli.lifecycle import _alerts_line, _rows_line
    >>> _alerts_line([{"metric": "noise_ratio", "value": 0.4, "threshold": 0.3}])
    'alerts: noise_ratio 0.4 > 0.3'
    >>> _alerts_line([{"metric": "out_of_range", "feature": "month", "value": 1, "threshold": 0.05}])
    'alerts: out_of_range month 1 > 0.05'
    >>> _rows_line({"rows_in": 9, "rows_scored": 9, "noise_ratio": 0.5, "noise_out_of_range": 0.4,
    ...     "noise_in_range": 0.1})
    '9 rows in, 9 scored, 0 rejected; noise ratio 0.5 (0.4 outside the training range, 0.1 inside it in no segment)'
"""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from opslens.cli.common import ProjectOpt, check_writable, load
from opslens.core.atomic import atomic_path
from opslens.errors import ConfigError

if TYPE_CHECKING:
    from opslens.runner.lifecycle import Deployment

__all__ = ["batch", "health", "models_app", "promote", "retrain"]

models_app = typer.Typer(
    help="the registry of an analysis: which version held which alias, when and why",
    no_args_is_help=True,
)

AnalysisArg = Annotated[str, typer.Argument(help="the analysis (a recipe with a life cycle)")]


def _alerts_line(alerts: list[dict[str, Any]]) -> str:
    from opslens.explain.text import fmt

    return "alerts: " + ", ".join(
        f"{a['metric']}{' ' + str(a['feature']) if a.get('feature') else ''} "
        f"{fmt(a['value'])} > {fmt(a['threshold'])}"
        for a in alerts
    )


def _open(ctx: typer.Context, project: Path, analysis: str) -> "Deployment":
    from opslens.lifecycle.registry import open_stores
    from opslens.runner.lifecycle import Deployment

    config = load(ctx, project)
    history, registry = open_stores(config, analysis)
    return Deployment(config, analysis, history, registry)


def _rows_line(r: dict[str, Any]) -> str:
    from opslens.explain.text import fmt

    if "rows_in" not in r:
        return ""
    said = f"{r['rows_in']} rows in, {r.get('rows_scored', r['rows_in'])} scored, "
    said += f"{r.get('rows_rejected', 0)} rejected"
    reasons = r.get("rejected_by_reason") or {}
    if reasons:
        said += " (" + ", ".join(f"{k}: {v}" for k, v in reasons.items()) + ")"
    if "noise_ratio" in r:
        said += f"; noise ratio {fmt(r['noise_ratio'])}"
        if "noise_out_of_range" in r:
            said += (
                f" ({fmt(r['noise_out_of_range'])} outside the training range, "
                f"{fmt(r['noise_in_range'])} inside it in no segment)"
            )
    return said


def _csv_safe(frame: Any) -> Any:
    """``frame`` with nested columns (lists, structs) as JSON text, which CSV can hold."""
    import json

    import polars as pl

    nested = [c for c, t in frame.schema.items() if t.is_nested()]
    if not nested:
        return frame
    return frame.with_columns(
        pl.col(c).map_elements(lambda v: json.dumps(v, default=str), return_dtype=pl.String)
        for c in nested
    )


def batch(
    ctx: typer.Context,
    analysis: AnalysisArg,
    input: Annotated[Path, typer.Option("--input", "-i", help="batch file (Parquet or CSV)")],
    project: ProjectOpt = Path("project.yaml"),
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="predictions file, .parquet or .csv (default: beside the input)"
        ),
    ] = None,
) -> None:
    """Score a batch with the champion, record and monitor it, retrain when due (one run each)."""
    from opslens.cli.score import _format
    from opslens.io.sources.files import read_file

    out = output or input.with_name(f"{input.stem}.predictions.parquet")
    fmt = _format(out)  # a .xlsx name is refused, not written as Parquet
    check_writable(out, "--output")
    from opslens.cli.console import setup_console_logging

    frame = read_file(input, key="--input")
    life = _open(ctx, project, analysis)
    debug = bool(getattr(ctx.find_root().obj, "debug", False))
    # one line per batch: the runs' INFO lines go to each run's run.log only
    setup_console_logging(debug=debug, quiet=not debug, secrets=life.project.secrets)
    result = life.batch(frame)
    with atomic_path(out) as tmp:
        if fmt == "parquet":
            result.predictions.write_parquet(tmp)
        else:
            _csv_safe(result.predictions).write_csv(tmp)
    r = result.record
    said = _rows_line(r) or life.hooks.describe(r)
    typer.echo(
        f"{analysis}: batch {r['batch']} scored by version {result.version}: {said}; "
        f"predictions -> {out} (run {result.run.run_id})"
    )
    if result.alerts:
        typer.echo(_alerts_line(result.alerts))
        for said in (a["message"] for a in result.alerts if a.get("message")):
            typer.echo(f"  {said}")
    if result.retrained is not None:
        typer.echo(f"retrained ({result.retrained.reason}): {result.retrained.summary()}")


def health(
    ctx: typer.Context, analysis: AnalysisArg, project: ProjectOpt = Path("project.yaml")
) -> None:
    """Print health, the last batch's alerts and error statistics."""
    from opslens.explain.text import fmt

    h = _open(ctx, project, analysis).health()
    typer.echo(
        f"{analysis}: {h['status']}; champion version {h['champion']}"
        + (f", challenger version {h['challenger']}" if h["challenger"] else "")
        + f"; {h['batches']} batches"
    )
    last = h["last_batch"]
    if last:
        line = f"last batch {last['batch']}: {_rows_line(last) or 'scored'}"
        if "processing_seconds" in last:
            line += f", {fmt(last['processing_seconds'])} s"
        if "peak_memory_mb" in last:
            line += f", {fmt(last['peak_memory_mb'])} MB"
        typer.echo(line)
    typer.echo(_alerts_line(h["alerts"]) if h["alerts"] else "alerts: none")
    e = h["errors"]
    typer.echo(
        f"errors: {e['errors']} {e['by_kind']}; rows rejected: {e['rows_rejected']} "
        f"{e['rejected_by_reason']}"
    )
    for err in h["recent_errors"]:
        typer.echo(f"  {err['at'][:19]} {err['kind']}: {err['message']}")


def retrain(
    ctx: typer.Context,
    analysis: AnalysisArg,
    reason: Annotated[str | None, typer.Option("--reason", help="why (manual retraining)")] = None,
    if_due: Annotated[
        bool, typer.Option("--if-due", help="retrain only if the recipe's monitoring says so")
    ] = False,
    project: ProjectOpt = Path("project.yaml"),
) -> None:
    """Retrain now (--reason) or when due (--if-due); the challenger wins on held-out data or waits."""
    if (reason is None) == (not if_due):
        raise ConfigError(
            "give exactly one of --reason TEXT or --if-due",
            fix="e.g. `opslens retrain NAME --reason 'new ward opened'`",
        )
    if reason is not None and not reason.strip():
        raise ConfigError(
            "--reason is empty; the history keeps why each retraining ran",
            fix="say why, e.g. `opslens retrain NAME --reason 'new ward opened'`",
        )
    life = _open(ctx, project, analysis)
    result = (
        life.retrain(f"manual: {reason}", require_new=True)
        if reason is not None
        else life.retrain_if_due()
    )
    if result is None:
        typer.echo(f"{analysis}: no retraining due")
        return
    typer.echo(f"{analysis}: retrained ({result.reason}): {result.summary()}")


def promote(
    ctx: typer.Context,
    analysis: AnalysisArg,
    version: Annotated[str, typer.Option("--version", help="the registered version to serve")],
    force: Annotated[
        bool, typer.Option("--force", help="promote even if it loses to the champion")
    ] = False,
    reason: Annotated[str, typer.Option("--reason", help="why (kept in the history)")] = "",
    project: ProjectOpt = Path("project.yaml"),
) -> None:
    """Make a registered version champion after comparing it with the champion on held-out data."""
    life = _open(ctx, project, analysis)
    comparison = life.promote(version, force=force, reason=reason)
    if comparison is None and not force:
        typer.echo(f"{analysis}: version {version} is champion")
        return
    said = f": {comparison.summary()}" if comparison is not None else ""
    typer.echo(f"{analysis}: version {version} is champion{said}")


@models_app.command("history")
def history(
    ctx: typer.Context, analysis: AnalysisArg, project: ProjectOpt = Path("project.yaml")
) -> None:
    """Which version held which alias, from when until when, and why it moved."""
    moves = _open(ctx, project, analysis).alias_history()
    if not moves:
        typer.echo(f"{analysis}: no alias has been set yet")
    for m in moves:
        typer.echo(
            f"{m['alias']}: version {m['version']} (was {m['previous'] or '-'}) "
            f"from {m['at'][:19]} until {(m['until'] or 'now')[:19]}: {m['reason']}"
        )
