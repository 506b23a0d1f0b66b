"""Render a run's report.html: facts → narrator → one self-contained HTML file (plots embedded).

Example:
    >>> import tempfile, pathlib
    >>> from opslens.tracking.runs import RunWriter, open_run
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> w = RunWriter(root, "eta"); w.write_json("manifest.json", {"status": "complete"})
    >>> w.write_json("facts.json", {"analysis": {"name": "eta", "recipe": "no-such", "run_id": "r"}})
    >>> _ = w.commit()
    >>> path = write_report(open_run(root, "eta"))
    >>> path.name, "<html" in path.read_text()
    ('report.html', True)

A facts file its recipe's model rejects is an error naming the field, never a report:

    >>> w = RunWriter(root, "eta"); w.write_json("manifest.json", {"status": "complete"})
    >>> w.write_json("facts.json", {"analysis": {"name": "eta", "recipe": "fleet", "run_id": "r"},
    ...     "fingerprint": {"devices": "many"}})
    >>> write_report(open_run(root, "eta", w.commit().name))
    Traceback (most recent call last):
    ...
    opslens.errors.RunError: .../facts.json does not match the fleet recipe's facts model at 'fingerprint.devices': Input should be a valid integer, ...; fix: rerun the analysis (`opslens run`) to write its facts again
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup, escape

from opslens import __version__
from opslens.core.atomic import atomic_write_text
from opslens.core.narrative import Narrator
from opslens.explain.text import fmt
from opslens.report.facts import read_run_facts
from opslens.report.narrators.template import TemplateNarrator
from opslens.tracking.runs import RunView

__all__ = ["render_report", "write_report"]


def _flat_facts(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Every fact as (dotted path, value as shown), so a reader can check each number."""
    if isinstance(value, dict):
        return [
            r
            for k, v in value.items()
            for r in _flat_facts(v, f"{prefix}.{k}" if prefix else str(k))
        ]
    if isinstance(value, list) and value and all(isinstance(v, dict | list) for v in value):
        return [r for i, v in enumerate(value) for r in _flat_facts(v, f"{prefix}[{i}]")]
    return [(prefix, fmt(value) if not isinstance(value, list) else ", ".join(map(fmt, value)))]


def _marked(text: str, flagged: list[str]) -> Markup:
    """``text`` escaped, with each flagged sentence in it wrapped in <mark>."""
    out = escape(text)
    for sentence in flagged:
        safe = escape(sentence)
        if safe in out:
            out = Markup(
                out.replace(
                    safe,
                    Markup(
                        '<mark class="ungrounded" title="a figure here is not what the facts it cites say">'
                    )
                    + safe
                    + Markup("</mark>"),
                )
            )
    return Markup(out)


def _anchor(title: str) -> str:
    return "s-" + "".join(ch if ch.isalnum() else "-" for ch in title.lower()).strip("-")


def render_report(run: RunView, narrator: Narrator | None = None) -> str:
    """The report's HTML for ``run``: self-contained (plots embedded), printable, with contents."""
    narrator = narrator or TemplateNarrator()
    facts = run.facts
    typed = read_run_facts(facts, where=str(run.path / "facts.json"))
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
    env.filters["marked"] = lambda text: _marked(str(text), narrative.ungrounded)
    env.filters["anchor"] = _anchor
    template = env.get_template("report.html.j2")
    return template.render(
        n=narrative,
        images=plots,
        reused=reused,
        plot_origin=plot_origin,
        facts=_flat_facts(facts),  # as written; validated above
        run_id=run.run_id,
        recipe=typed.analysis.recipe,
        written=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        narrator=narrative.narrator,
        version=__version__,
    )


def write_report(run: RunView, narrator: Narrator | None = None) -> Path:
    """Write ``report.html`` into the run folder atomically and return its path."""
    html = render_report(run, narrator)
    target = run.path / "report.html"
    atomic_write_text(target, html)
    return target
