"""``opslens batch``, ``health``, ``retrain`` and ``models history``: a segments model in service.

Example:
    >>> from opslens.cli.lifecycle import _alerts_line
    >>> _alerts_line([{"metric": "noise_ratio", "value": 0.4, "threshold": 0.3}])
    'alerts: noise_ratio 0.4 > 0.3'
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from opslens.cli.common import ProjectOpt, load
from opslens.errors import ConfigError

__all__ = ["batch", "health", "models_app", "retrain"]

models_app = typer.Typer(
    help="the registry of a segments analysis: alias history", no_args_is_help=True
)

AnalysisArg = Annotated[str, typer.Argument(help="the analysis (recipe: segments)")]


def _alerts_line(alerts: list[dict[str, Any]]) -> str:
    from opslens.explain.text import fmt

    return "alerts: " + ", ".join(
        f"{a['metric']} {fmt(a['value'])} > {fmt(a['threshold'])}" for a in alerts
    )


def _open(ctx: typer.Context, project: Path, analysis: str) -> Any:
    from opslens.lifecycle.segments import SegmentsLifecycle

    return SegmentsLifecycle.open(load(ctx, project), analysis)


def batch(
    ctx: typer.Context,
    analysis: AnalysisArg,
    input: Annotated[Path, typer.Option("--input", "-i", help="batch file (Parquet or CSV)")],
    project: ProjectOpt = Path("project.yaml"),
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="predictions file (default: beside the input)"),
    ] = None,
) -> None:
    """Score a batch with the champion, record its metrics, retrain when due."""
    from opslens.explain.text import fmt
    from opslens.io.sources.files import read_file

    life = _open(ctx, project, analysis)
    frame = read_file(input)
    out = output or input.with_name(f"{input.stem}.predictions.parquet")
    result = life.batch(frame, out)
    r = result.record
    typer.echo(
        f"{analysis}: batch {r['batch']} scored by version {result.version}: "
        f"{r['rows_in']} rows in, {r['rows_scored']} scored, {r['rows_rejected']} rejected"
        + (
            " (" + ", ".join(f"{k}: {v}" for k, v in r["rejected_by_reason"].items()) + ")"
            if r["rejected_by_reason"]
            else ""
        )
        + f"; noise ratio {fmt(r['noise_ratio'])}; predictions -> {result.output}"
    )
    if result.alerts:
        typer.echo(_alerts_line(result.alerts))
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
        typer.echo(
            f"last batch {last['batch']}: {last['rows_in']} rows, noise ratio "
            f"{fmt(last['noise_ratio'])}, {fmt(last['processing_seconds'])} s, "
            f"{fmt(last['peak_memory_mb'])} MB"
        )
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
        bool, typer.Option("--if-due", help="retrain only if the noise window or schedule says so")
    ] = False,
    project: ProjectOpt = Path("project.yaml"),
) -> None:
    """Retrain now (--reason) or when due (--if-due); promote the challenger if it wins."""
    if (reason is None) == (not if_due):
        raise ConfigError(
            "give exactly one of --reason TEXT or --if-due",
            fix="e.g. `opslens retrain NAME --reason 'new ward opened'`",
        )
    life = _open(ctx, project, analysis)
    result = life.retrain(f"manual: {reason}") if reason is not None else life.retrain_if_due()
    if result is None:
        typer.echo(f"{analysis}: no retraining due")
        return
    typer.echo(f"{analysis}: retrained ({result.reason}): {result.summary()}")


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
