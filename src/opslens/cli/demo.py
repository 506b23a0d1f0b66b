"""``opslens demo``: the whole pipeline on bundled synthetic data — batch, report, stream.

For each recipe with a demo (``Recipe.demo``) it writes a project folder
(default ``./opslens-demo/<recipe>``) holding the files of the recipe's
``demo/`` folder (the same project.yaml as ``examples/<recipe>/``), runs it,
writes the report, streams the recipe's demo instances and says where
everything is.

Example:
    >>> {"distribution", "fleet"} <= set(demo_recipes())
    True
"""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from opslens.errors import ConfigError

__all__ = ["demo", "demo_file_text", "demo_recipes", "run_demo"]


def demo_recipes() -> list[str]:
    """The registered recipes that ship a demo."""
    from opslens.recipes import get_recipe, recipe_names

    return [n for n in recipe_names() if get_recipe(n).demo is not None]


def demo_file_text(recipe: str, name: str = "project.yaml") -> str:
    """A file of ``recipe``'s bundled demo folder."""
    from opslens.recipes import get_recipe

    package = get_recipe(recipe).package
    from importlib.resources import files  # not for every command's start

    return (files(package) / "demo" / name).read_text(encoding="utf-8")


def run_demo(directory: Path, recipe: str | None = None) -> Iterator[str]:
    """Run the demo of one recipe (or all); yield the lines to print."""
    from opslens.api import load_project, write_report
    from opslens.online.stream import stream_instances
    from opslens.recipes import get_recipe
    from opslens.runner import load_input, run_analysis

    available = demo_recipes()
    chosen = available if recipe is None else [recipe]
    unknown = [r for r in chosen if r not in available]
    if unknown:
        raise ConfigError(
            f"there is no demo for '{unknown[0]}'", fix=f"use one of: {', '.join(available)}"
        )
    directory.mkdir(parents=True, exist_ok=True)
    for name in chosen:
        spec = get_recipe(name).demo
        assert spec is not None
        folder = directory / name
        folder.mkdir(exist_ok=True)
        for file in spec.files:
            (folder / file).write_text(demo_file_text(name, file), encoding="utf-8")
        project = load_project(folder / "project.yaml")
        yield f"[{name}] project: {(folder / 'project.yaml').resolve()}"
        for analysis in project.active_analyses():
            result = run_analysis(project, analysis.name)
            yield f"  run: {result.run_id} ({result.headline()})"
            yield f"  report: {write_report(project, analysis.name).resolve()}"
            if spec.instances is None:
                continue
            instances = folder / f"{analysis.name}-instances.jsonl"
            rows = spec.instances(load_input(analysis).frame, analysis)
            instances.write_text("".join(json.dumps(r, default=str) + "\n" for r in rows))
            out = folder / f"{analysis.name}-predictions.jsonl"
            summary = stream_instances(
                project,
                analysis.name,
                input_path=instances,
                output=out,
                plots_dir=folder / "stream" / analysis.name,
            )
            yield (
                f"  stream: {summary.scored} scored ({summary.rejected} rejected) -> {out.resolve()}"
            )
            if summary.plots_dir is not None:
                yield f"  stream plots: {summary.plots_dir.resolve()}"


def demo(
    recipe: Annotated[str | None, typer.Argument(help="one recipe (default: all)")] = None,
    directory: Annotated[
        Path, typer.Option("--dir", help="where the demo project is written")
    ] = Path("opslens-demo"),
) -> None:
    """Run the whole pipeline on bundled synthetic data: batch, report, a short stream."""
    for line in run_demo(directory, recipe):
        typer.echo(line)
