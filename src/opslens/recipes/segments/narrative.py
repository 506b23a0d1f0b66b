"""The template narrative of a segments run: data, segments and noise, both targets' models.

It reads the run's typed facts (:class:`~opslens.recipes.segments.facts.SegmentsFacts`);
the report puts the comparison with the baseline (one global LightGBM) first by
itself, and the summary says in one sentence whether the model beat it.

Example:
    >>> facts = SegmentsFacts.model_validate({
    ...     "analysis": {"name": "pat", "recipe": "segments", "source": "synthetic", "run_id": "r"},
    ...     "prepare": {"rows_read": 100, "rows_kept": 98, "rows_dropped": 2, "train_rows": 74,
    ...         "test_rows": 24, "features": ["a", "b"], "categorical": [], "model_features": [],
    ...         "series_target": "y", "resource_target": "h"}})
    >>> n = segments_narrative(facts, [])
    >>> n.title, n.summary
    ('pat: segments and per-segment predictions', 'pat: 98 rows prepared.')
    >>> n.sections[0].paragraphs[0]
    '100 rows read from synthetic, 98 kept; 74 to train and 24 held out. Segments are defined by a, b.'
"""

from __future__ import annotations

from opslens.core.baselines import plain_verdict
from opslens.core.narrative import Narrative, Section, Table
from opslens.explain.text import fmt, headline, plural
from opslens.recipes.segments.facts import (
    FitFacts,
    PrepareFacts,
    ScoreFacts,
    SegmentsFacts,
    TargetFacts,
)

__all__ = ["segments_narrative"]


def _gain(seg: float | None, glob: float | None) -> str:
    if seg is None or not glob:
        return "n/a"
    return f"{fmt(100 * (1 - seg / glob), 2)}%"


def _data(prep: PrepareFacts, source: str | None) -> Section:
    return Section(
        title="Data",
        paragraphs=[
            f"{plural(prep.rows_read, 'row')} read from {source or 'the data'}, "
            f"{fmt(prep.rows_kept)} kept; {fmt(prep.train_rows)} to train and "
            f"{fmt(prep.test_rows)} held out. Segments are defined by "
            f"{', '.join(prep.features)}."
        ],
    )


def _segments(fit: FitFacts, plots: list[str]) -> Section:
    on_global = (
        f" (segments {', '.join(str(s) for s in fit.segments_on_global)})."
        if fit.segments_on_global
        else "; every segment has its own models."
    )
    return Section(
        title="Segments",
        paragraphs=[
            f"HDBSCAN found {plural(fit.segments, 'segment')}; "
            f"{plural(fit.noise_points, 'training point')} "
            f"({fmt(100 * fit.noise_ratio, 2)}%) were noise and were placed by the kNN "
            f"(k-nearest-neighbours) fallback: each takes the segment of its nearest training "
            f"points. Segments with fewer than {plural(fit.min_segment_rows, 'row')} are "
            f"scored by the global model{on_global}"
        ],
        plots=[p for p in ("segments",) if p in plots],
        table=Table(["segment", "rows"], [[s, n] for s, n in fit.segment_sizes.items()]),
    )


def _target_row(target: str, t: TargetFacts) -> list[str]:
    seg, glob = t.segment, t.global_
    return [
        target,
        fmt(seg.rmse),
        fmt(glob.rmse),
        _gain(seg.rmse, glob.rmse),
        fmt(seg.mae),
        fmt(seg.r2),
    ]


def _models(rows: list[list[str]], plots: list[str]) -> Section:
    return Section(
        title="The model as served against the global model",
        paragraphs=[
            "RMSE (root mean squared error) is the typical size of a prediction's error, in "
            "the target's unit: lower is better; MAE (mean absolute error) is the average size "
            "of an error, and R² (the share of the target's variation the model explains) is 1 "
            "for a perfect model. "
            "Held-out RMSE of the model as served (each segment answered by the global "
            "LightGBM, its own model or the global one plus a correction, as chosen; rows of "
            "segments too small for a choice by the global model) and of the global model "
            "alone, trained on all rows, on the same held-out rows."
        ],
        plots=[p for p in ("rmse_comparison", "segment_rmse") if p in plots],
        table=Table(["target", "RMSE as served", "RMSE global", "gain", "MAE", "R²"], rows),
    )


def _choice_rows(fit: FitFacts) -> list[list[str]]:
    return [
        [
            target,
            s,
            c.choice,
            c.noise_choice,
            fmt(c.rows),
            fmt(c.rmse_global),
            fmt(c.rmse_segment),
            fmt(c.rmse_blend),
            fmt(c.p_value),
        ]
        for target, t in fit.targets.items()
        for s, c in t.choices.items()
    ]


def _choices(fit: FitFacts) -> Section | None:
    """Which model answers each segment's rows per target, and the out-of-fold figures."""
    rows = _choice_rows(fit)
    if not rows:
        return None
    counts = {target: [c.choice for c in t.choices.values()] for target, t in fit.targets.items()}
    said = "; ".join(
        f"{target}: {', '.join(f'{n} on {k}' for k in ('segment', 'blend', 'global') if (n := c.count(k)))}"
        for target, c in counts.items()
    )
    folds = fit.model_choice.get("folds", "")
    return Section(
        title="Model per segment",
        paragraphs=[
            "Per segment and target, the global model answers unless the segment's own "
            "LightGBM or the global model plus a per-segment correction (blend) has a lower "
            f"RMSE on {folds}-fold out-of-fold predictions of the training rows, by at least "
            f"{fmt(100 * float(fit.model_choice.get('min_gain', 0)), 2)}% and by one standard "
            "error (one-sided paired t-test: the p-value (the chance of so large a gain by luck "
            "alone) is below 0.16); noise rows (placed by the kNN fallback) "
            "get the global answer unless their segments' models are better on the noise rows "
            f"of all segments together. Segments on each: {said}."
        ],
        table=Table(
            [
                "target",
                "segment",
                "choice",
                "noise rows' choice",
                "rows",
                "RMSE global",
                "RMSE own",
                "RMSE blend",
                "p",
            ],
            rows,
        ),
    )


def _ranges(score: ScoreFacts) -> str:
    if not score.out_of_range:
        return " Every input was inside its training range."
    named = ", ".join(
        f"{name} ({fmt(100 * r['share'], 2)}% of the rows)"
        for name, r in score.out_of_range.items()
    )
    said = f" Outside the training range: {named}."
    if score.past_range:
        said += (
            f" {', '.join(score.past_range)} lie past it in nearly every row: a counter that "
            "retraining cannot bring back in range; drop it or encode it."
        )
    return said


def _scored(score: ScoreFacts) -> Section:
    return Section(
        title="Scored rows",
        paragraphs=[
            f"{plural(score.rows_in, 'row')} in, {fmt(score.rows_scored)} scored, "
            f"{fmt(score.rows_rejected)} rejected; {fmt(100 * score.noise_ratio, 2)}% of the "
            "scored rows were placed by the kNN fallback "
            f"({fmt(100 * score.noise_out_of_range, 2)}% outside the training range, "
            f"{fmt(100 * score.noise_in_range, 2)}% inside it but in no segment) and "
            f"{fmt(100 * score.global_share, 2)}% were scored by the global model." + _ranges(score)
        ],
        table=Table(["reason", "rows"], [[r, n] for r, n in score.rejected_by_reason.items()])
        if score.rejected_by_reason
        else None,
    )


def segments_narrative(facts: SegmentsFacts, plots: list[str]) -> Narrative:
    """Sections of a segments report, every number from the typed ``facts``.

    Example:
        >>> from opslens.core.baselines import BaselineScore, summarise
        >>> facts = SegmentsFacts.model_validate({"analysis": {"name": "pat",
        ...     "recipe": "segments", "run_id": "r"}})
        >>> facts.baselines = summarise([BaselineScore(baseline="global_model",
        ...     label="one global LightGBM with the same features", metric="rmse_y",
        ...     metric_label="RMSE of y", model=1.5, value=1.2, higher_is_better=False, n=90)])
        >>> segments_narrative(facts, []).summary
        'pat: 0 rows prepared. One global LightGBM with the same features does better than the model on held-out data, so it is not served without --force.'
    """
    a = facts.analysis
    sections = [] if facts.prepare is None else [_data(facts.prepare, a.source)]
    rows_kept = 0 if facts.prepare is None else facts.prepare.rows_kept
    summary = f"{a.name}: {plural(rows_kept, 'row')} prepared."
    errors = ""
    fit = facts.fit
    if fit is not None:
        rows = [_target_row(target, t) for target, t in fit.targets.items()]
        sections += [_segments(fit, plots), _models(rows, plots)]
        choices = _choices(fit)
        if choices is not None:
            sections.append(choices)
        summary = f"{plural(fit.segments, 'segment')} found in {plural(fit.training_rows, 'training row')}."
        errors = (
            "Typical prediction error on held-out rows: "
            + " and ".join(f"{r[1]} for {r[0]}" for r in rows)
            + "."
        )
    if facts.score is not None:
        sections.append(_scored(facts.score))
    return Narrative(
        title=f"{a.name}: segments and per-segment predictions",
        summary=headline(summary, plain_verdict(facts.baselines), errors),
        sections=sections,
    )
