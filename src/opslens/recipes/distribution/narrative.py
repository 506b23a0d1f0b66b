"""The template narrative of a distribution run: data, K, patterns, model quality, caveats.

Example:
    >>> facts = {"analysis": {"name": "eta", "recipe": "distribution", "source": "file t.csv"},
    ...          "prepare": {"rows_read": 100, "rows_kept": 90, "target": "minutes", "categorical": ["route"],
    ...                      "combinations_kept": 4, "combinations_dropped": 1, "rows_dropped_small": 10,
    ...                      "rows_without_target": 0, "min_combination_size": 5}}
    >>> distribution_narrative(facts, []).title
    'eta: distribution patterns'
"""

from __future__ import annotations

from typing import Any

from opslens.core.narrative import Narrative, Section, Table
from opslens.explain.text import fmt, plural

__all__ = ["distribution_narrative"]


def _quality(auroc: float | None) -> str:
    if auroc is None:
        return "could not be measured"
    if auroc >= 0.9:
        return "excellent: the attributes tell the patterns apart reliably"
    if auroc >= 0.8:
        return "good: most instances are assigned to the right pattern"
    if auroc >= 0.7:
        return "fair: use the probabilities, not just the top pattern"
    return "weak: the attributes say little about which pattern an instance follows"


def distribution_narrative(facts: dict[str, Any], plots: list[str]) -> Narrative:
    """Sections of a distribution report, every number from ``facts``."""
    a = facts.get("analysis", {})
    prep = facts.get("prepare", {})
    quant = facts.get("quantize", {})
    kf = facts.get("choose_k", {})
    cl = facts.get("cluster", {})
    clf = facts.get("classify", {})
    target = prep.get("target", "the target")
    sections = [
        Section(
            title="What was analysed",
            paragraphs=[
                f"{plural(prep.get('rows_read'), 'row')} from {a.get('source', 'the source')}; the target is "
                f"'{target}', split by the combination of {', '.join(prep.get('categorical', []))}.",
                f"{plural(prep.get('combinations_kept'), 'combination')} with at least "
                f"{plural(prep.get('min_combination_size'), 'row')} were kept; "
                f"{fmt(prep.get('combinations_dropped'))} smaller ones were dropped, costing "
                f"{plural(prep.get('rows_dropped_small'), 'row')}"
                + (
                    f" and {plural(prep.get('rows_without_target'), 'row')} had no target value."
                    if prep.get("rows_without_target")
                    else "."
                ),
                f"Each combination is described by a histogram of '{target}' over {fmt(quant.get('n_bins'))} "
                f"{quant.get('binning', 'quantile')} bins"
                + (
                    f", with bin edges shared within each segment of '{prep.get('group')}'."
                    if prep.get("group")
                    else "."
                ),
            ],
            plots=[p for p in ("initial_distributions",) if p in plots],
        )
    ]
    if kf:
        sections.append(
            Section(
                title="How many patterns",
                paragraphs=[f"{kf.get('reason', '')}."],
                plots=[p for p in ("k_selection",) if p in plots],
            )
        )
    clusters = cl.get("clusters", [])
    if clusters:
        rows = [
            [
                c.get("cluster"),
                fmt(c.get("n_combinations")),
                fmt(c.get("n_rows")),
                fmt(c.get("median")),
                " ∪ ".join(f"{fmt(lo)}–{fmt(hi)}" for lo, hi in (c.get("hdr_90") or [])),
                fmt(c.get("skewness")),
            ]
            for c in clusters
        ]
        sections.append(
            Section(
                title="The patterns",
                bullets=[
                    str(c.get("description", ""))
                    + f" ({plural(c.get('n_combinations'), 'combination')}, {plural(c.get('n_rows'), 'row')})"
                    for c in clusters
                ],
                plots=[p for p in ("cluster_profiles",) if p in plots],
                table=Table(
                    columns=["cluster", "combinations", "rows", "median", "90% HDR", "skewness"],
                    rows=rows,
                ),
            )
        )
    if clf:
        auroc = clf.get("auroc_weighted")
        per_class = clf.get("per_class", {})
        sections.append(
            Section(
                title="Model quality",
                paragraphs=[
                    f"An XGBoost classifier predicts the pattern of a new instance from "
                    f"{', '.join(clf.get('features', []))}. On {fmt(clf.get('test_rows'))} held-out rows its accuracy is "
                    f"{fmt(clf.get('accuracy'))} and its weighted one-vs-rest AUROC is {fmt(auroc)}: {_quality(auroc)}.",
                ],
                bullets=[
                    f"Cluster {k}: precision {fmt(v.get('precision'))}, recall {fmt(v.get('recall'))}, F1 {fmt(v.get('f1-score'))} ({fmt(int(v.get('support', 0)))} rows)"
                    for k, v in per_class.items()
                ],
                plots=[p for p in ("confusion_matrix",) if p in plots],
            )
        )
    caveats = [
        "Patterns describe the combinations seen in the data; a combination never seen is predicted from its known attributes, "
        "and an unknown attribute value is reported in the stream output under 'unknown'.",
        "Highest density regions come from a kernel density estimate of each pattern's rows; with few rows their edges are rough.",
    ]
    if prep.get("combinations_dropped"):
        caveats.append(
            f"{fmt(prep.get('combinations_dropped'))} small combinations are not described by any pattern (raise or lower params.min_combination_size to change this)."
        )
    if any(len(c.get("hdr_90") or []) > 1 for c in clusters):
        caveats.append(
            "A multimodal pattern's mean and median fall between its modes: read its HDR intervals instead."
        )
    sections.append(Section(title="Caveats", bullets=caveats))
    k = kf.get("k") or cl.get("k")
    summary = (
        f"{fmt(k)} distinct patterns of '{target}' across {plural(prep.get('combinations_kept'), 'combination')}; "
        f"the pattern of a new instance is predicted with weighted AUROC {fmt(clf.get('auroc_weighted'))}."
    )
    return Narrative(
        title=f"{a.get('name', 'analysis')}: distribution patterns",
        summary=summary,
        sections=sections,
    )
