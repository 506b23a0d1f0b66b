"""``opslens score``: batch scoring of a file with an analysis's model, on the project's engine.

Example:
    >>> from opslens.cli.score import _format
    >>> _format(__import__("pathlib").Path("scores.csv"))
    'csv'
"""

import time
from pathlib import Path
from typing import Annotated

import typer

from opslens.cli.common import ProjectOpt, check_writable, load
from opslens.core.atomic import atomic_path
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
            "--from",
            help="latest: the latest run's model; registry: the MLflow alias 'champion'",
        ),
    ] = "latest",
) -> None:
    """Score every row of a file (every device, for fleet) and write the answers in one go.

    Runs where the project's ``engine`` says: here in slices, or on Spark
    (``engine: spark``) with the model broadcast once to the tasks.
    """
    from opslens.io.sources.files import read_file
    from opslens.runner import run_analysis
    from opslens.tracking.models import load_model

    if source not in ("latest", "registry"):
        raise ConfigError(
            f"--from {source!r} is unknown", fix="write --from latest or --from registry"
        )
    fmt = _format(output)
    check_writable(output, "--output")
    config = load(ctx, project)
    t0 = time.perf_counter()
    loaded = load_model(config, analysis, source)  # type: ignore[arg-type]
    spark_reads = config.engine == "spark" and input.suffix.lower() in (".parquet", ".pq")
    if spark_reads and not input.is_file():
        read_file(input, key="--input")  # its one-line "does not exist" error
    result = run_analysis(
        config,
        analysis,
        pipeline="score",
        inputs={
            "batch": input if spark_reads else read_file(input, key="--input"),
            "champion": loaded.predictor,
        },
        reason=f"scored {input} with the model of run {loaded.run_id}",
        promote=False,
    )
    answers = result.table("answers")
    with writing(output), atomic_path(output) as tmp:
        if fmt == "parquet":
            answers.write_parquet(tmp)
        else:
            answers.write_csv(tmp)
    typer.echo(
        f"{analysis}: {answers.height} answers → {output} "
        f"({config.engine} engine, {time.perf_counter() - t0:.1f} s; run {result.run_id})"
    )
