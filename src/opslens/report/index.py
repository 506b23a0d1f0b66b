"""An index page linking the latest report of every analysis, with which won against the
baselines (``verdict``, :func:`opslens.report.facts.short_verdict`) and its key metrics.

Example:
    >>> html = render_index([{"analysis": "eta", "recipe": "distribution", "run_id": "r1",
    ...     "finished": "2026-01-01T00:00", "metrics": {"rows": 10.0}, "href": "eta/r1/report.html",
    ...     "verdict": "loses to one global LightGBM on RMSE of duration_min (12.2 against 13.5)"}])
    >>> 'href="eta/r1/report.html"' in html and "rows=10" in html
    True
    >>> '<td class="loses">loses to one global LightGBM on RMSE of duration_min' in html
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from opslens import __version__
from opslens.core.atomic import atomic_write_text
from opslens.explain.text import format_metric

__all__ = ["render_index", "write_index"]


def render_index(rows: Sequence[dict[str, Any]]) -> str:
    """The index page's HTML: one row per analysis (its latest run, metrics and report link)."""
    env = Environment(
        loader=PackageLoader("opslens.report", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
    )
    shown = [
        {
            **r,
            "metrics_text": ", ".join(
                f"{k}={format_metric(v)}" for k, v in list((r.get("metrics") or {}).items())[:6]
            ),
        }
        for r in rows
    ]
    return env.get_template("index.html.j2").render(
        rows=shown,
        written=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        version=__version__,
    )


def write_index(runs_root: Path, rows: Sequence[dict[str, Any]]) -> Path:
    """Write ``<runs_root>/index.html`` atomically; ``href`` of each row is relative to it."""
    target = Path(runs_root) / "index.html"
    atomic_write_text(target, render_index(rows))
    return target
