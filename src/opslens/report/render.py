"""Render a run's report.html: facts → narrator → one self-contained HTML file (plots embedded).

Example:
    >>> import tempfile, pathlib
    >>> from opslens.tracking.runs import RunWriter, open_run
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> w = RunWriter(root, "eta"); w.write_json("manifest.json", {"status": "complete"})
    >>> w.write_json("facts.json", {"analysis": {"name": "eta", "recipe": "distribution"}})
    >>> _ = w.commit()
    >>> path = write_report(open_run(root, "eta"))
    >>> path.name, "<html" in path.read_text()
    ('report.html', True)
"""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from opslens import __version__
from opslens.core.narrative import Narrator
from opslens.report.narrators.template import TemplateNarrator
from opslens.tracking.runs import RunView

__all__ = ["render_report", "write_report"]


def render_report(run: RunView, narrator: Narrator | None = None) -> str:
    """The report's HTML for ``run``."""
    narrator = narrator or TemplateNarrator()
    facts = run.facts
    plots = {p.stem: base64.b64encode(p.read_bytes()).decode("ascii") for p in run.plots()}
    narrative = narrator.narrate(facts, sorted(plots))
    manifest = run.manifest
    reused = {
        stage: info.get("run_id")
        for stage, info in (manifest.get("stages") or {}).items()
        if info.get("status") == "reused"
    }
    plot_origin = {
        p.stem: run.origin(f"plots/{p.name}").get("run_id")
        for p in run.plots()
        if run.origin(f"plots/{p.name}").get("status") == "reused"
    }
    env = Environment(
        loader=PackageLoader("opslens.report", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
    )
    template = env.get_template("report.html.j2")
    return template.render(
        n=narrative,
        images=plots,
        reused=reused,
        plot_origin=plot_origin,
        run_id=run.run_id,
        recipe=facts.get("analysis", {}).get("recipe", ""),
        written=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        narrator=type(narrator).__name__.removesuffix("Narrator").lower() or "template",
        version=__version__,
    )


def write_report(run: RunView, narrator: Narrator | None = None) -> Path:
    """Write ``report.html`` into the run folder atomically and return its path."""
    html = render_report(run, narrator)
    target = run.path / "report.html"
    tmp = target.with_name("report.html.part")
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, target)
    return target
