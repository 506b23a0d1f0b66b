"""``opslens demo``: the whole pipeline on bundled synthetic data — batch, report, stream.

The demo writes a project folder (default ``./opslens-demo``) holding the
same project.yaml as ``examples/<recipe>/``, runs it, writes the report,
streams a few instances (one with an unseen category) and says where
everything is.

Example:
    >>> sorted(DEMOS)
    ['distribution', 'fleet']
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from importlib.resources import files
from pathlib import Path

from opslens.config import ProjectConfig, load_project
from opslens.errors import ConfigError

__all__ = ["DEMOS", "demo_project_text", "run_demo"]

DEMOS = ("distribution", "fleet")


def demo_project_text(recipe: str) -> str:
    """The bundled project.yaml of ``recipe``'s demo."""
    return (files("opslens") / "demo_projects" / f"{recipe}.yaml").read_text(encoding="utf-8")


def _distribution_instances(path: Path) -> None:
    from opslens.data.synthetic.trips import make_trips

    sample = make_trips(n_rows=200, seed=99).trips.head(5)
    rows = [
        {k: v for k, v in r.items() if k in ("route", "hour_band", "vehicle_type", "duration_min")}
        for r in sample.iter_rows(named=True)
    ]
    rows.append(
        {
            "route": "R99-new",
            "hour_band": rows[0]["hour_band"],
            "vehicle_type": rows[0]["vehicle_type"],
        }
    )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _stream(
    project: ProjectConfig, name: str, folder: Path, make: Callable[[Path], None]
) -> Iterator[str]:
    from opslens.online.stream import stream_instances

    instances = folder / f"{name}-instances.jsonl"
    make(instances)
    out = folder / f"{name}-predictions.jsonl"
    summary = stream_instances(
        project, name, input_path=instances, output=out, plots_dir=folder / "stream" / name
    )
    yield f"  stream: {summary.scored} instances scored ({summary.rejected} rejected) -> {out.resolve()}"
    yield f"  stream plots: {summary.plots_dir.resolve() if summary.plots_dir else None}"


def run_demo(directory: Path, recipe: str | None = None) -> Iterator[str]:
    """Run the demo of one recipe (or all); yield the lines to print."""
    from opslens.recipes.runner import run_analysis
    from opslens.report.render import write_report
    from opslens.tracking.runs import open_run

    chosen = DEMOS if recipe is None else (recipe,)
    unknown = [r for r in chosen if r not in DEMOS]
    if unknown:
        raise ConfigError(
            f"there is no demo for '{unknown[0]}'", fix=f"use one of: {', '.join(DEMOS)}"
        )
    directory.mkdir(parents=True, exist_ok=True)
    for name in chosen:
        folder = directory / name
        folder.mkdir(exist_ok=True)
        (folder / "project.yaml").write_text(demo_project_text(name), encoding="utf-8")
        if name == "fleet":
            failures = files("opslens") / "demo_projects" / "fleet_failures.csv"
            (folder / "failures.csv").write_text(
                failures.read_text(encoding="utf-8"), encoding="utf-8"
            )
        project = load_project(folder / "project.yaml")
        yield f"[{name}] project: {(folder / 'project.yaml').resolve()}"
        for analysis in project.active_analyses():
            result = run_analysis(project, analysis.name)
            shown = result.headline()
            yield f"  run: {result.run_id} ({shown})"
            report = write_report(open_run(project.runs_root(), analysis.name))
            yield f"  report: {report.resolve()}"
            if name == "distribution":
                yield from _stream(project, analysis.name, folder, _distribution_instances)
