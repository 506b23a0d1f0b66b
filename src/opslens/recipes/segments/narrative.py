"""The template narrative of a segments run: data, segments and noise, both targets' models.

Example:
    >>> facts = {"analysis": {"name": "pat", "recipe": "segments", "source": "synthetic"},
    ...          "prepare": {"rows_read": 100, "rows_kept": 98, "train_rows": 74, "test_rows": 24,
    ...                      "features": ["a", "b"]}}
    >>> segments_narrative(facts, []).title
    'pat: segments and per-segment predictions'
"""

from __future__ import annotations

from typing import Any

from opslens.core.narrative import Narrative, Section, Table
from opslens.explain.text import fmt, plural

__all__ = ["segments_narrative"]


def _gain(seg: float, glob: float) -> str:
    if not glob:
        return "n/a"
    return f"{fmt(100 * (1 - seg / glob), 2)}%"


def segments_narrative(facts: dict[str, Any], plots: list[str]) -> Narrative:
    """Sections of a segments report, every number from ``facts``."""
    a = facts.get("analysis", {})
    prep = facts.get("prepare", {})
    fit = facts.get("fit") or {}
    sections = [
        Section(
            title="Data",
            paragraphs=[
                f"{plural(prep.get('rows_read', 0), 'row')} read from {a.get('source')}, "
                f"{fmt(prep.get('rows_kept'))} kept; {fmt(prep.get('train_rows'))} to train and "
                f"{fmt(prep.get('test_rows'))} held out. Segments are defined by "
                f"{', '.join(prep.get('features', []))}."
            ],
        )
    ]
    summary = f"{a.get('name')}: {plural(prep.get('rows_kept', 0), 'row')} prepared."
    if fit:
        sizes = fit["segment_sizes"]
        sections.append(
            Section(
                title="Segments",
                paragraphs=[
                    f"HDBSCAN found {plural(fit['segments'], 'segment')}; "
                    f"{plural(fit['noise_points'], 'training point')} "
                    f"({fmt(100 * fit['noise_ratio'], 2)}%) were noise and were placed by the kNN "
                    "fallback. Segments with fewer than "
                    f"{plural(fit['min_segment_rows'], 'row')} are scored by the global model"
                    + (
                        f" (segments {', '.join(str(s) for s in fit['segments_on_global'])})."
                        if fit["segments_on_global"]
                        else "; every segment has its own models."
                    )
                ],
                plots=[p for p in ("segments",) if p in plots],
                table=Table(["segment", "rows"], [[s, n] for s, n in sizes.items()]),
            )
        )
        rows = []
        for target, t in fit["targets"].items():
            seg, glob = t["segment"], t["global"]
            rows.append(
                [
                    target,
                    fmt(seg["rmse"]),
                    fmt(glob["rmse"]),
                    _gain(seg["rmse"], glob["rmse"]),
                    fmt(seg["mae"]),
                    fmt(seg["r2"]),
                ]
            )
        sections.append(
            Section(
                title="Per-segment models against one global model",
                paragraphs=[
                    "Held-out RMSE of the per-segment LightGBM models and of one LightGBM model "
                    "trained on all rows, on the same held-out rows."
                ],
                plots=[p for p in ("rmse_comparison", "segment_rmse") if p in plots],
                table=Table(
                    ["target", "RMSE per segment", "RMSE global", "gain", "MAE", "R²"], rows
                ),
            )
        )
        summary = (
            f"{a.get('name')}: {plural(fit['segments'], 'segment')} from "
            f"{plural(fit['training_rows'], 'training row')}; per-segment models reach RMSE "
            + " and ".join(f"{r[1]} for {r[0]} (global {r[2]})" for r in rows)
            + "."
        )
    return Narrative(
        title=f"{a.get('name')}: segments and per-segment predictions",
        summary=summary,
        sections=sections,
    )
