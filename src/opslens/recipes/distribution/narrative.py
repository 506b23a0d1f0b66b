"""The template narrative of a distribution run: data, K, patterns, who follows which, quality, caveats.

Every number comes from the facts; shares are written as percentages
(``100%``, never ``1``), values with their unit.

Example:
    >>> facts = {"analysis": {"name": "eta", "recipe": "distribution", "source": "file t.csv"},
    ...          "prepare": {"rows_read": 100, "rows_kept": 90, "target": "minutes", "categorical": ["route"],
    ...                      "combinations_kept": 4, "combinations_dropped": 1, "rows_dropped_small": 10,
    ...                      "rows_without_target": 0, "min_combination_size": 5}}
    >>> distribution_narrative(facts, []).title
    'eta: distribution patterns'
    >>> pct(1.0), pct(0.9049), pct(None)
    ('100%', '90.5%', 'n/a')
"""

from __future__ import annotations

from typing import Any

from opslens.core.narrative import Narrative, Section, Table
from opslens.explain.text import fmt, plural

__all__ = ["distribution_narrative", "pct"]

HDR_SENTENCE = (
    "A highest density region (HDR) is the narrowest set of value ranges that holds the stated "
    "share of the rows: '90% HDR 10–14 min' means 90% of these rows took between 10 and 14 minutes, "
    "and two ranges mean two peaks."
)
LOG_SCORE_SENTENCE = (
    "The log score is the average log of the probability a prediction gave to the bin a held-out "
    "value actually fell in: higher (closer to 0) is better, and a gain of 0.1 means the observed "
    "outcomes were about 10% more probable under the prediction."
)
COVERAGE_SENTENCE = (
    "Coverage is the share of held-out values that fell inside the predicted 50% and 90% HDRs: "
    "an honest prediction covers close to 50% and 90%; less means it is overconfident."
)
CRPS_SENTENCE = (
    "The CRPS measures how far the predicted distribution is from the observed value, in the "
    "target's unit: lower is better."
)


def pct(share: Any) -> str:
    """A share in [0, 1] as a percentage (``100%``, ``90.5%``)."""
    if share is None:
        return "n/a"
    x = float(share) * 100
    return f"{x:.0f}%" if abs(x - round(x)) < 0.05 else f"{x:.1f}%"


def _with_unit(value: Any, unit: str) -> str:
    return f"{fmt(value)} {unit}".strip()


def _spans(intervals: list[list[float]] | None, unit: str) -> str:
    text = " ∪ ".join(f"{fmt(lo)}–{fmt(hi)}" for lo, hi in (intervals or []))
    return f"{text} {unit}".strip() if text else "n/a"


def _quality(auroc: float | None) -> str:
    if auroc is None:
        return "could not be measured (the held-out combinations held one pattern only)"
    if auroc >= 0.9:
        return "the attributes place a new combination in its pattern reliably"
    if auroc >= 0.8:
        return "most new combinations are placed in the right pattern"
    if auroc >= 0.7:
        return "fair: use the probabilities, not just the top pattern"
    return "weak: the attributes say little about the pattern of a combination not seen before"


def _patterns(cl: dict[str, Any], unit: str, plots: list[str]) -> list[Section]:
    clusters = cl.get("clusters", [])
    if not clusters:
        return []
    rows = [
        [
            c.get("cluster"),
            fmt(c.get("n_combinations")),
            fmt(c.get("n_rows")),
            _with_unit(c.get("median"), unit),
            _spans(c.get("hdr_90"), unit),
            pct(c.get("hdr_90_observed")),
            fmt(c.get("skewness")),
            fmt(c.get("n_outliers", 0))
            + (f" (max {_with_unit(c.get('outlier_max'), unit)})" if c.get("n_outliers") else ""),
        ]
        for c in clusters
    ]
    sections = [
        Section(
            title="The patterns",
            paragraphs=[HDR_SENTENCE],
            bullets=[
                str(c.get("description", ""))
                + f" ({plural(c.get('n_combinations'), 'combination')}, {plural(c.get('n_rows'), 'row')})"
                for c in clusters
            ],
            plots=[p for p in ("cluster_profiles",) if p in plots],
            table=Table(
                columns=[
                    "pattern",
                    "combinations",
                    "rows",
                    "median",
                    "90% HDR",
                    "rows inside",
                    "skewness",
                    "outliers",
                ],
                rows=rows,
            ),
        )
    ]
    members = cl.get("members", [])
    if members:
        sections.append(
            Section(
                title="Which combinations follow which pattern",
                paragraphs=[
                    f"The {plural(len(members), 'largest combination')}, largest first "
                    "(rows of the training period); the clusters table lists every one."
                ],
                table=Table(
                    columns=["combination", "pattern", "rows"],
                    rows=[[m["combination"], m["cluster"], fmt(m["rows"])] for m in members],
                ),
            )
        )
    if cl.get("outliers"):
        sections[0].bullets.append(
            f"{plural(cl.get('outliers'), 'value')} far outside the rest (beyond three interquartile "
            f"ranges; the largest {_with_unit(cl.get('outlier_max'), unit)}) are counted, not drawn, and "
            "do not shape the regions, means or skewness."
        )
    return sections


def _evaluation(ev: dict[str, Any], prep: dict[str, Any], unit: str, plots: list[str]) -> Section:
    cov = ev.get("coverages", [50, 90])
    names = (("the prediction", "blended"), ("own histogram", "own_histogram"))
    table_rows = [
        [
            label,
            fmt(ev[key].get("log_score")),
            _with_unit(ev[key].get("crps"), unit),
            *[pct(ev[key].get(f"coverage_{c}")) for c in cov],
        ]
        for label, key in (*names, ("global histogram", "global_histogram"))
    ]
    best, own, glob = (
        ev["blended"]["log_score"],
        ev["own_histogram"]["log_score"],
        ev["global_histogram"]["log_score"],
    )
    verdict = (
        "The prediction beats both baselines."
        if best >= own and best >= glob
        else "The prediction does not beat both baselines: prefer "
        + ("the own histogram." if own > glob else "the global histogram.")
    )
    strength = ev.get("strength")
    how = (
        "only its pattern's histogram"
        if strength is None
        else "its own histogram only"
        if strength == 0
        else f"its own histogram blended with its pattern's, the own one weighted n / (n + {fmt(strength)}) for n training rows"
    )
    return Section(
        title="How good the predicted distribution is",
        paragraphs=[
            f"The model was trained on the earlier rows and scored on {prep.get('holdout', 'held-out rows')} "
            f"({plural(ev.get('test_rows'), 'row')}"
            + (
                f", a seeded sample of {fmt(ev.get('test_rows_scored'))} scored"
                if ev.get("test_rows_scored", ev.get("test_rows", 0)) < ev.get("test_rows", 0)
                else ""
            )
            + f"; {fmt(ev.get('test_rows_unseen_combination'))} of them from "
            f"combinations not seen in training). For a known combination it predicts {how} (the weight "
            "chosen on this holdout); the baselines are the histogram of all training rows and the raw "
            "histogram of the instance's own combination.",
            LOG_SCORE_SENTENCE,
            COVERAGE_SENTENCE,
            CRPS_SENTENCE,
            verdict,
        ],
        table=Table(
            columns=["prediction", "log score", "CRPS", *[f"{c}% HDR coverage" for c in cov]],
            rows=table_rows,
        ),
        plots=[p for p in ("holdout_scores",) if p in plots],
    )


def distribution_narrative(facts: dict[str, Any], plots: list[str]) -> Narrative:
    """Sections of a distribution report, every number from ``facts``."""
    a = facts.get("analysis", {})
    prep = facts.get("prepare", {})
    quant = facts.get("quantize", {})
    kf = facts.get("choose_k", {})
    cl = facts.get("cluster", {})
    clf = facts.get("classify", {})
    ev = clf.get("holdout_scores", {})
    unit = str(cl.get("unit") or "")
    clusters = cl.get("clusters", [])
    target = prep.get("target", "the target")
    sections = [
        Section(
            title="What was analysed",
            paragraphs=[
                f"{plural(prep.get('rows_read'), 'row')} from {a.get('source', 'the source')}; the target is "
                f"'{target}'" + (f" in {unit}" if unit else "") + ", split by the combination of "
                f"{', '.join(prep.get('categorical', []))}.",
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
                f"{quant.get('binning', 'quantile')} bins learned on the training rows"
                + (
                    f", with bin edges of its own in each segment of '{prep.get('group')}'."
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
                paragraphs=[
                    f"{kf.get('reason', '')}. Each K was scored by how probable the held-out values "
                    "are under their combination's pattern; the silhouette and Calinski-Harabasz "
                    "indices are recorded in the curve as second opinions."
                ],
                plots=[p for p in ("k_selection",) if p in plots],
            )
        )
    sections.extend(_patterns(cl, unit, plots))
    if ev:
        sections.append(_evaluation(ev, prep, unit, plots))
    if clf:
        auroc = clf.get("auroc_weighted")
        sections.append(
            Section(
                title="Placing a combination never seen before",
                paragraphs=[
                    f"An XGBoost classifier predicts the pattern from {', '.join(clf.get('features', []))}. "
                    f"Scored on {plural(clf.get('test_combinations'), 'combination')} it did not see in "
                    f"training ({plural(clf.get('test_rows'), 'row')}), its accuracy is "
                    f"{pct(clf.get('accuracy'))} and its weighted one-vs-rest AUROC {fmt(auroc)}: "
                    f"{_quality(auroc)}. A combination seen in training is not placed by the "
                    "classifier: its own pattern is known.",
                ],
                plots=[p for p in ("confusion_matrix",) if p in plots],
            )
        )
    caveats = [
        "An instance with a level never seen in training is answered from the known combinations that "
        "share its known attributes (weighted by their rows); the level is flagged under 'unknown' "
        "and on its plot.",
        'Levels are compared as written once normalised: 6, 6.0 and "6" are one level.',
    ]
    if prep.get("combinations_dropped"):
        caveats.append(
            f"{fmt(prep.get('combinations_dropped'))} small combinations are not described by any pattern "
            "(lower params.min_combination_size to keep them)."
        )
    if any(len(c.get("hdr_90") or []) > 1 for c in clusters):
        caveats.append(
            "A multimodal pattern's mean and median fall between its peaks: read its HDR ranges instead."
        )
    sections.append(Section(title="Caveats", bullets=caveats))
    k = kf.get("k") or cl.get("k")
    summary = f"{fmt(k)} distinct patterns of '{target}' across {plural(prep.get('combinations_kept'), 'combination')}."
    if ev:
        top = ev.get("coverages", [50, 90])[-1]
        summary += (
            f" On the held-out rows the predicted distribution scores a log score of "
            f"{fmt(ev['blended']['log_score'])} (own histogram {fmt(ev['own_histogram']['log_score'])}, "
            f"global {fmt(ev['global_histogram']['log_score'])}) and its 90% HDR covers "
            f"{pct(ev['blended'].get(f'coverage_{top}'))} of them (nominal {top}%)."
        )
    return Narrative(
        title=f"{a.get('name', 'analysis')}: distribution patterns",
        summary=summary,
        sections=sections,
    )
