"""``opslens score``: batch scoring of a file with an analysis's model, on the project's engine.

Example:
    >>> from opslens.cli.score import _format
    >>> _format(__import__("pathlib").Path("scores.csv"))
    'csv'
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated

import typer

from opslens.cli.common import ProjectOpt, check_writable, load
from opslens.errors import ConfigError
from opslens.tracking.runs import writing

__all__ = ["score"]


def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix == ".csv":
        return "csv"
    raise ConfigError(
        f"--output {path} is neither .parquet nor .csv",
        fix="name the output file scores.parquet or scores.csv",
    )


def score(
    ctx: typer.Context,
    analysis: Annotated[str, typer.Argument(help="analysis name")],
    input: Annotated[Path, typer.Option("--input", "-i", help="CSV or Parquet file to score")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="where the answers go (.parquet or .csv)")
    ],
    project: ProjectOpt = Path("project.yaml"),
    source: Annotated[
        str,
        typer.Option(
            "--from", help="latest: the latest run's model; registry: the MLflow alias 'current'"
        ),
    ] = "latest",
) -> None:
    """Score every row of a file (every device, for fleet) and write the answers in one go.

    Runs where the project's ``engine`` says: here in slices, or on Spark
    (``engine: spark``) with the model broadcast once to the tasks.
    """
    from opslens.api import score as score_frame

    if source not in ("latest", "registry"):
        raise ConfigError(
            f"--from {source!r} is unknown", fix="write --from latest or --from registry"
        )
    fmt = _format(output)
    check_writable(output, "--output")
    config = load(ctx, project)
    t0 = time.perf_counter()
    answers = score_frame(config, input, analysis, source=source)  # type: ignore[arg-type]
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    with writing(output):
        try:
            if fmt == "parquet":
                answers.write_parquet(tmp)
            else:
                answers.write_csv(tmp)
            os.replace(tmp, output)
        finally:
            tmp.unlink(missing_ok=True)
    typer.echo(
        f"{analysis}: {answers.height} answers → {output} "
        f"({config.engine} engine, {time.perf_counter() - t0:.1f} s)"
    )
