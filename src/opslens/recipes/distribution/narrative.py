"""The template narrative of a distribution run: data, K, patterns, who follows which, quality, caveats.

Every number comes from the facts; shares are written as percentages
(``100%``, never ``1``), values with their unit.

It takes the facts as read through the recipe's typed model
(``RECIPE.read_facts(facts_dict)``, a :class:`DistributionFacts`), never a dict.

Example:
    >>> from opslens.recipes.distribution import RECIPE
    >>> facts = RECIPE.read_facts({
    ...     "analysis": {"name": "eta", "recipe": "distribution", "source": "file t.csv", "run_id": "r"},
    ...     "prepare": {"rows_read": 100, "rows_kept": 90, "target": "minutes", "categorical": ["route"],
    ...                 "numeric_columns": ["minutes"], "group": None, "combinations_total": 5,
    ...                 "combinations_kept": 4, "combinations_dropped": 1, "rows_dropped_small": 10,
    ...                 "share_rows_dropped_small": 0.1, "rows_without_target": 0,
    ...                 "min_combination_size": 5, "holdout_rows": 22, "holdout": "the last 25% of t",
    ...                 "target_summary": {"mean": 5.0, "median": 4.0, "min": 1.0, "max": 9.0}}})
    >>> n = distribution_narrative(facts, [])
    >>> n.title, n.summary
    ('eta: distribution patterns', "n/a patterns of 'minutes' across 4 combinations of route.")
    >>> format_pct(1.0), format_pct(0.9049), format_pct(None)
    ('100%', '90.5%', 'n/a')
"""

from __future__ import annotations

from typing import Any

from opslens.core.baselines import plain_verdict
from opslens.core.facts import AnalysisFacts
from opslens.core.narrative import Narrative, Section, Table
from opslens.explain.text import fmt, format_pct, headline, plural
from opslens.recipes.distribution.facts import (
    ChooseKFacts,
    ClassifyFacts,
    ClusterFacts,
    DistributionFacts,
    EvaluateFacts,
    PrepareFacts,
    QuantizeFacts,
)

__all__ = ["distribution_narrative"]

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


def _sentence(text: str) -> str:
    """``text`` as a sentence: capitalised, ending with a full stop."""
    return f"{text[:1].upper()}{text[1:]}."


def _with_unit(value: Any, unit: str) -> str:
    return f"{fmt(value)} {unit}".strip()


def _spans(intervals: list[list[float]] | None, unit: str) -> str:
    """HDR ranges as ``lo–hi ∪ lo–hi unit`` (``n/a`` when none)."""
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


def _patterns(cl: ClusterFacts, unit: str, plots: list[str]) -> list[Section]:
    clusters = cl.clusters
    if not clusters:
        return []
    rows = [
        [
            c.cluster,
            fmt(c.n_combinations),
            fmt(c.n_rows),
            _with_unit(c.median, unit),
            _spans(c.hdr(90), unit),
            format_pct(c.hdr_observed(90)),
            fmt(c.skewness),
            fmt(c.n_outliers)
            + (f" (max {_with_unit(c.outlier_max, unit)})" if c.n_outliers else ""),
        ]
        for c in clusters
    ]
    sections = [
        Section(
            title="The patterns",
            paragraphs=[HDR_SENTENCE],
            bullets=[
                c.description
                + f" ({plural(c.n_combinations, 'combination')}, {plural(c.n_rows, 'row')})"
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
    members = cl.members
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
                    rows=[[m.combination, m.cluster, fmt(m.rows)] for m in members],
                ),
            )
        )
    if cl.outliers:
        sections[0].bullets.append(
            f"{plural(cl.outliers, 'value')} far outside the rest (beyond three interquartile "
            f"ranges; the largest {_with_unit(cl.outlier_max, unit)}) are counted, not drawn, and "
            "do not shape the regions, means or skewness."
        )
    return sections


def _how(strength: float | None) -> str:
    if strength is None:
        return "only its pattern's histogram"
    if strength == 0:
        return "its own histogram only"
    return (
        "its own histogram blended with its pattern's, the own one weighted "
        f"n / (n + {fmt(strength)}) for n training rows"
    )


def _evaluation(
    ev: EvaluateFacts, prep: PrepareFacts | None, unit: str, plots: list[str]
) -> Section:
    title = "How good the predicted distribution is"
    best, own, glob = ev.blended, ev.own_histogram, ev.global_histogram
    if best is None or own is None or glob is None:
        return Section(title=title, paragraphs=[_sentence(ev.skipped or "not scored")])
    holdout = prep.holdout if prep is not None else "held-out rows"
    timed = prep is not None and prep.holdout_from is not None
    sampled = (
        f", a seeded sample of {fmt(ev.test_rows_scored)} scored"
        if ev.test_rows_scored < ev.test_rows
        else ""
    )
    if not ev.strength_chosen_on:  # a run from before the weight was chosen on the training period
        chosen = "the weight chosen on this holdout"
    elif not ev.strength_scan:
        chosen = f"the weight is {ev.strength_chosen_on}"
    else:
        chosen = f"the weight chosen on {ev.strength_chosen_on}, not on this holdout"
    lead = (
        f"The model was trained on the {'earlier' if timed else 'other'} rows and scored on "
        f"{holdout} ({plural(ev.test_rows, 'row')}{sampled}; "
        f"{fmt(ev.test_rows_unseen_combination)} of them from combinations not seen in "
        f"training). For a known combination it predicts {_how(ev.strength)} ({chosen}); "
        "the baselines are the histogram of all training rows and the raw "
        "histogram of the instance's own combination."
    )
    cov = ev.coverages
    table_rows = [
        [
            label,
            fmt(s.log_score),
            _with_unit(s.crps, unit),
            *[format_pct(s.coverage(c)) for c in cov],
        ]
        for label, s in (
            ("the prediction", best),
            ("own histogram", own),
            ("global histogram", glob),
        )
    ]
    if ev.own_weights and ev.strength is not None and ev.strength > 0:
        lead += (
            " So "
            + ", ".join(
                f"the {w.which} combination ({plural(w.rows, 'training row')}) keeps "
                f"{format_pct(w.weight)} of its own shape"
                for w in ev.own_weights
            )
            + ": large combinations keep their own shape, small ones borrow from their pattern."
        )
    verdict = (
        "The prediction beats both baselines."
        if best.log_score >= own.log_score and best.log_score >= glob.log_score
        else "The prediction does not beat both baselines: prefer "
        + ("the own histogram." if own.log_score > glob.log_score else "the global histogram.")
    )
    return Section(
        title="How good the predicted distribution is",
        paragraphs=[lead, LOG_SCORE_SENTENCE, COVERAGE_SENTENCE, CRPS_SENTENCE, verdict],
        table=Table(
            columns=["prediction", "log score", "CRPS", *[f"{c}% HDR coverage" for c in cov]],
            rows=table_rows,
        ),
        plots=[p for p in ("holdout_scores",) if p in plots],
    )


def _what(
    a: AnalysisFacts,
    prep: PrepareFacts | None,
    quant: QuantizeFacts | None,
    unit: str,
    plots: list[str],
) -> Section:
    if prep is None:
        return Section(
            title="What was analysed", paragraphs=[f"Data from {a.source or 'the source'}."]
        )
    target = prep.target
    n_bins = quant.n_bins if quant is not None else None
    binning = quant.binning if quant is not None else "quantile"
    return Section(
        title="What was analysed",
        paragraphs=[
            f"{plural(prep.rows_read, 'row')} from {a.source or 'the source'}; the target is "
            f"'{target}'" + (f" in {unit}" if unit else "") + ", split by the combination of "
            f"{', '.join(prep.categorical)}.",
            f"{plural(prep.combinations_kept, 'combination')} with at least "
            f"{plural(prep.min_combination_size, 'row')} were kept; "
            f"{fmt(prep.combinations_dropped)} smaller ones were dropped, costing "
            f"{plural(prep.rows_dropped_small, 'row')}"
            + (
                f" and {plural(prep.rows_without_target, 'row')} had no target value."
                if prep.rows_without_target
                else "."
            ),
            f"Each combination is described by a histogram of '{target}' over {fmt(n_bins)} "
            f"{binning} bins learned on the training rows"
            + (
                f", with bin edges of its own in each segment of '{prep.group}'."
                if prep.group
                else "."
            ),
        ],
        plots=[p for p in ("initial_distributions",) if p in plots],
    )


def _k_section(kf: ChooseKFacts, plots: list[str]) -> Section:
    paragraphs = [
        f"{kf.reason}. Each K was scored by how probable the later training rows "
        "are under their combination's own histogram shrunk towards its pattern, as the model "
        "predicts (the holdout is kept for the final scores); the silhouette and "
        "Calinski-Harabasz indices are recorded in the curve as second opinions."
    ]
    rows = []
    if kf.shape_checks:
        paragraphs.append(
            "A cluster may hold groups of combinations that differ in shape, not only in "
            "location or scale: inside each cluster, the groups the finest K separates were "
            "tested on the later training rows (each combination standardised by its own "
            "median and interquartile range, a permutation test over combinations of the "
            "Jensen-Shannon distance between the groups' pooled histograms, Bonferroni-"
            f"corrected at {format_pct(kf.shape_alpha)}). The smallest K from the one-standard-error choice whose clusters "
            "merge no distinct shapes is kept. A p-value is how likely a difference this large "
            "would be by chance alone: below the corrected threshold two shapes are called distinct."
        )
        for c in kf.shape_checks:
            best = min(c.tests, key=lambda t: t.p_value) if c.tests else None
            rows.append(
                [
                    c.k,
                    fmt(c.pairs),
                    fmt(c.distinct),
                    fmt(best.p_value) if best is not None else "n/a",
                    "chosen" if c.k == kf.k else "merges distinct shapes",
                ]
            )
    return Section(
        title="How many patterns",
        paragraphs=paragraphs,
        table=Table(
            columns=["K", "pairs tested", "distinct in shape", "smallest p-value", "verdict"],
            rows=rows,
        )
        if rows
        else None,
        plots=[p for p in ("k_selection",) if p in plots],
    )


def _placing(clf: ClassifyFacts, plots: list[str]) -> Section:
    auroc = clf.auroc_weighted
    return Section(
        title="Placing a combination never seen before",
        paragraphs=[
            f"An XGBoost classifier predicts the pattern from {', '.join(clf.features)}. "
            f"Scored on {plural(clf.test_combinations, 'combination')} it did not see in "
            f"training ({plural(clf.test_rows, 'row')}), its accuracy is "
            f"{format_pct(clf.accuracy)} and its weighted one-vs-rest AUROC (the chance that a "
            f"combination of a pattern is ranked above one of another: 0.5 is a guess, 1 "
            f"perfect) {fmt(auroc)}: "
            f"{_quality(auroc)}. A combination seen in training is not placed by the "
            "classifier: its own pattern is known.",
        ],
        plots=[p for p in ("confusion_matrix",) if p in plots],
    )


def _summary(facts: DistributionFacts, target: str) -> str:
    """The headline: at most 40 words, no jargon (HDR, log score live in the sections)."""
    prep, kf, cl = facts.prepare, facts.choose_k, facts.cluster
    ev = facts.classify.holdout_scores if facts.classify is not None else None
    k = (kf.k if kf is not None else None) or (cl.k if cl is not None else None)
    kept = prep.combinations_kept if prep is not None else None
    attrs = prep.categorical if prep is not None else []
    of = f" of {_join(attrs)}" if 0 < len(attrs) <= 3 else ""
    found = f"{fmt(k)} patterns of '{target}' across {plural(kept, 'combination')}{of}."
    checked = ""
    if ev is not None and ev.blended and ev.coverages:
        top = ev.coverages[-1]
        checked = (
            f"{format_pct(ev.blended.coverage(top))} of held-out values fell in the range predicted "
            f"to hold {top}%."
        )
    elif ev is not None and ev.skipped:
        checked = _sentence(ev.skipped)
    return headline(found, plain_verdict(facts.baselines), checked)


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def distribution_narrative(facts: DistributionFacts, plots: list[str]) -> Narrative:
    """Sections of a distribution report, every number from the typed ``facts``."""
    prep, cl, kf, clf = facts.prepare, facts.cluster, facts.choose_k, facts.classify
    unit = (cl.unit if cl is not None else "") or ""
    clusters = cl.clusters if cl is not None else []
    target = prep.target if prep is not None else "the target"
    sections = [_what(facts.analysis, prep, facts.quantize, unit, plots)]
    if kf is not None:
        sections.append(_k_section(kf, plots))
    if cl is not None:
        sections.extend(_patterns(cl, unit, plots))
    if clf is not None:
        sections.append(_evaluation(clf.holdout_scores, prep, unit, plots))
        sections.append(_placing(clf, plots))
    caveats = [
        "An instance with a level never seen in training is answered from the known combinations that "
        "share its known attributes (weighted by their rows); the level is flagged under 'unknown' "
        "and on its plot.",
        'Levels are compared as written once normalised: 6, 6.0 and "6" are one level.',
    ]
    if prep is not None and prep.combinations_dropped:
        caveats.append(
            f"{fmt(prep.combinations_dropped)} small combinations are not described by any pattern "
            "(lower params.min_combination_size to keep them)."
        )
    if any(len(c.hdr(90) or []) > 1 for c in clusters):
        caveats.append(
            "A multimodal pattern's mean and median fall between its peaks: read its HDR ranges instead."
        )
    sections.append(Section(title="Caveats", bullets=caveats))
    return Narrative(
        title=f"{facts.analysis.name}: distribution patterns",
        summary=_summary(facts, target),
        sections=sections,
    )
