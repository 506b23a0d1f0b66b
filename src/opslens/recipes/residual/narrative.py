"""The residual report's text, every number taken from the facts.

Example:
    >>> n = residual_narrative({"analysis": {"name": "axes"}, "profile": {"rows": 10,
    ...     "axes": ["axis1"], "dt_seconds": 2.0}}, [])
    >>> n.summary
    '10 samples of 1 axis, one every 2 s.'
"""

from __future__ import annotations

from typing import Any

from opslens.core.narrative import Narrative, Section, Table
from opslens.explain.text import fmt, plural

__all__ = ["residual_narrative"]


def residual_narrative(facts: dict[str, Any], plots: list[str]) -> Narrative:
    """Data, fits, model quality and limits, in that order."""
    a = facts.get("analysis", {})
    prof = facts.get("profile", {})
    prep = facts.get("prepare", {})
    fits = facts.get("fit", {}).get("axes", {})
    evaluation = facts.get("evaluate", {}).get("metrics", [])
    limits = facts.get("thresholds", {})
    summary = (
        f"{plural(prof.get('rows'), 'sample')} of {plural(len(prof.get('axes', [])), 'axis', 'axes')}, "
        f"one every {fmt(prof.get('dt_seconds'))} s."
    )
    sections = []
    if prep:
        sections.append(
            Section(
                title="Data",
                paragraphs=[
                    f"Training on {plural(prep.get('rows_train'), 'row')} from "
                    f"{prep.get('train_start')} to {prep.get('train_end') or 'the end'}; "
                    f"{plural(prep.get('rows_test'), 'row')} held out."
                ],
            )
        )
    if fits:
        sections.append(
            Section(
                title="Trend per axis",
                bullets=[
                    f"{axis}: {f['family']} (slope {fmt(f['slope'])} per s); {f['reason']}."
                    for axis, f in fits.items()
                ],
                plots=[p for p in plots if p.endswith("_fit")],
            )
        )
    if evaluation:
        sections.append(
            Section(
                title="Model quality",
                paragraphs=["RMSE against the training mean (the baseline a line must beat)."],
                table=Table(
                    columns=["axis", "split", "R²", "MAE", "RMSE", "baseline RMSE"],
                    rows=[
                        [
                            m["axis"],
                            m["split"],
                            fmt(m["r2"]),
                            fmt(m["mae"]),
                            fmt(m["rmse"]),
                            fmt(m["baseline_rmse"]),
                        ]
                        for m in evaluation
                    ],
                ),
                plots=[p for p in plots if p.endswith("_residual")],
            )
        )
    if limits:
        held = limits.get("holdout", {})
        sections.append(
            Section(
                title="Limits and sustain rules",
                table=Table(
                    columns=[
                        "axis",
                        "MinC",
                        "MaxC",
                        "alert after",
                        "error after",
                        "method",
                        "held-out alert / error samples",
                    ],
                    rows=[
                        [
                            axis,
                            fmt(t["MinC"]),
                            fmt(t["MaxC"]),
                            plural(t["T_long_steps"], "sample"),
                            plural(t["T_short_steps"], "sample"),
                            t["policy"]["method"],
                            f"{held.get(axis, {}).get('alert', 0)} / {held.get(axis, {}).get('error', 0)}",
                        ]
                        for axis, t in limits.get("axes", {}).items()
                    ],
                ),
            )
        )
    if limits:
        held = limits.get("holdout", {})
        flagged = [
            f"{axis} ({plural(c.get('error'), 'sample')})"
            for axis, c in held.items()
            if c.get("error")
        ]
        summary += (
            f" On the held-out rows the error level was reached by {', '.join(flagged)}."
            if flagged
            else " No axis reached the error level on the held-out rows."
        )
    return Narrative(
        title=f"{a.get('name', 'analysis')}: residual limits", summary=summary, sections=sections
    )
