"""The residual report's text, every number taken from the typed facts (:class:`ResidualFacts`).

Example:
    >>> facts = ResidualFacts.model_validate({"analysis": {"name": "axes", "recipe": "residual",
    ...     "run_id": "r"}, "profile": {"rows": 10, "axes": ["axis1"], "renamed": {},
    ...     "start": "2025-01-01", "end": "2025-01-02", "dt_seconds": 2.0, "per_axis": {}}})
    >>> residual_narrative(facts, []).summary
    '10 samples of 1 axis, one every 2 s.'
"""

from __future__ import annotations

from typing import Any

from opslens.core.baselines import plain_verdict
from opslens.core.narrative import Narrative, Section, Table
from opslens.explain.text import fmt, headline, plural
from opslens.recipes.residual.facts import HeldOutAlarms, HoldoutLevels, ResidualFacts

__all__ = ["residual_narrative"]


def _alarms_section(held: HeldOutAlarms) -> Section:
    """How often each detector alarmed on the held-out rows, and what that can say."""
    labelled = (
        f"Labels from column '{held.labels}': {plural(held.windows or 0, 'anomaly window')} "
        "held out. F1 (the balance of precision and recall: 1 when every alarm is right and "
        "no labelled row is missed) and the NAB (Numenta Anomaly Benchmark) score, where an "
        "early alarm inside a labelled window earns most and a false alarm costs, judge them."
        if held.labels
        else "No label column (columns.target), so no alarm can be called right or wrong."
    )
    return Section(
        title="Alarms on the held-out rows",
        paragraphs=[
            f"The model alarms at level {held.alarm_level}; the 3-sigma band alarms when an axis "
            f"leaves the mean ± 3 standard deviations of its training values. {labelled} "
            f"Intervals resample {plural(held.units, 'unit')} ({held.unit}). {held.note[0].upper()}"
            f"{held.note[1:]}."
        ],
        table=Table(
            columns=["detector", "share of held-out rows alarmed"],
            rows=[[name, fmt(rate)] for name, rate in held.rates.items()],
        ),
    )


def _verdict(facts: ResidualFacts) -> str:
    """The headline's sentence on the baselines: who won, or the alarm rates when no
    comparison can decide (no labels)."""
    b = facts.baselines
    if b is None:
        return ""
    if any(s.gate for s in b.scores) or not b.scores:
        return plain_verdict(b) or f"{b.verdict[:1].upper()}{b.verdict[1:]}."
    bands = [s for s in b.scores if s.baseline == "three_sigma" and s.metric == "alarm_rate"]
    if not bands:
        return f"{b.verdict[:1].upper()}{b.verdict[1:]}."
    band = bands[0]
    return (
        f"Without labels no baseline can be beaten or lost to: the model alarmed on "
        f"{fmt(100 * band.model)}% of the held-out rows, {band.label} on {fmt(100 * band.value)}%."
    )


def _errors(held: dict[str, HoldoutLevels]) -> str:
    """The headline's sentence on the held-out errors: the three axes with the most."""
    flagged = sorted(((c.error, axis) for axis, c in held.items() if c.error), reverse=True)
    if not flagged:
        return "No axis reached the error level on the held-out rows."
    named = [f"{axis} ({plural(n, 'sample')})" for n, axis in flagged[:3]]
    if len(flagged) > 3:
        named.append("other axes")
    listed = named[0] if len(named) == 1 else ", ".join(named[:-1]) + " and " + named[-1]
    return f"Errors on held-out rows: {listed}."


def _levels(c: HoldoutLevels) -> str:
    return f"{c.alert} / {c.error}"


def _recalibration(retrain: Any) -> Section | None:
    """A recalibration run's comparison: the old and new limits' false alarms and planted
    faults caught on the same recent held-out samples, and the decision.

    Example:
        >>> from types import SimpleNamespace as NS
        >>> s = _recalibration(NS(training_rows=133, rows=67, challenger_wins=True, details={
        ...     "false_alarms_per_week": {"champion": 153.0, "challenger": 0.0},
        ...     "false_alarm_rate": {"champion": 0.97, "challenger": 0.0},
        ...     "faults_caught": {"champion": 3, "challenger": 3, "planted": 3},
        ...     "left_out": {"axis1": {"samples": 0, "rule": "outliers"}}}))
        >>> print(s.paragraphs[0])
        Limits recalibrated on 133 recent samples (none left out as alarmed): false alarms 153 → 0 per week (97% → 0% of 67 held-out samples), planted faults caught 3 of 3 → 3 of 3; the recalibrated limits are better and serve.
    """
    if retrain is None or "false_alarms_per_week" not in (retrain.details or {}):
        return None
    d = retrain.details
    week, rate, caught = d["false_alarms_per_week"], d["false_alarm_rate"], d["faults_caught"]
    dropped = sum(int(v.get("samples", 0)) for v in (d.get("left_out") or {}).values())
    left = (
        f"{plural(dropped, 'alarmed sample')} left out" if dropped else "none left out as alarmed"
    )
    verdict = (
        "the recalibrated limits are better and serve"
        if retrain.challenger_wins
        else "the champion's limits stay (opslens promote --force overrides)"
    )
    return Section(
        title="Recalibration",
        paragraphs=[
            f"Limits recalibrated on {plural(retrain.training_rows, 'recent sample')} ({left}): "
            f"false alarms {fmt(week['champion'])} → {fmt(week['challenger'])} per week "
            f"({fmt(100 * rate['champion'])}% → {fmt(100 * rate['challenger'])}% of "
            f"{plural(retrain.rows, 'held-out sample')}), planted faults caught "
            f"{caught['champion']} of {caught['planted']} → {caught['challenger']} of "
            f"{caught['planted']}; {verdict}."
        ],
    )


def residual_narrative(facts: ResidualFacts, plots: list[str]) -> Narrative:
    """Data, fits, model quality, limits and held-out alarms, in that order."""
    prof, prep, limits = facts.profile, facts.prepare, facts.thresholds
    summary = (
        f"{plural(prof.rows, 'sample')} of {plural(len(prof.axes), 'axis', 'axes')}, "
        f"one every {fmt(prof.dt_seconds)} s."
        if prof is not None
        else ""
    )
    sections = []
    errors = ""
    if prep is not None:
        sections.append(
            Section(
                title="Data",
                paragraphs=[
                    f"Training on {plural(prep.rows_train, 'row')} from "
                    f"{prep.train_start} to {prep.train_end or 'the end'}; "
                    f"{plural(prep.rows_test, 'row')} held out."
                ],
            )
        )
    if facts.fit is not None and facts.fit.axes:
        sections.append(
            Section(
                title="Trend per axis",
                bullets=[
                    f"{axis}: {f.family} (slope {fmt(f.slope)} per s); {f.reason}."
                    if f.slope is not None
                    else f"{axis}: {f.family}; {f.reason}."
                    for axis, f in facts.fit.axes.items()
                ],
                plots=[p for p in plots if p.endswith("_fit")],
            )
        )
    if facts.evaluate is not None and facts.evaluate.metrics:
        sections.append(
            Section(
                title="Model quality",
                paragraphs=[
                    "R² (the share of the axis's variation the model explains: 1 is perfect), "
                    "MAE (mean absolute error) and RMSE (root mean squared error: the typical "
                    "size of an error, in the axis's unit) on training and held-out rows, next "
                    "to the RMSE of the training mean (the baseline a line must beat)."
                ],
                table=Table(
                    columns=["axis", "split", "R²", "MAE", "RMSE", "baseline RMSE"],
                    rows=[
                        [m.axis, m.split, fmt(m.r2), fmt(m.mae), fmt(m.rmse), fmt(m.baseline_rmse)]
                        for m in facts.evaluate.metrics
                    ],
                ),
                plots=[p for p in plots if p.endswith("_residual")],
            )
        )
    if limits is not None:
        held = limits.holdout
        sections.append(
            Section(
                title="Limits and sustain rules",
                paragraphs=[
                    "MinC (the lowest residual, measured minus predicted value, counted as "
                    "normal) and MaxC (the highest) are each axis's limits; a run of samples "
                    "outside them as long as 'alert after' raises an alert, as long as 'error "
                    "after' an error."
                ],
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
                            fmt(t.MinC),
                            fmt(t.MaxC),
                            plural(t.T_long_steps, "sample"),
                            plural(t.T_short_steps, "sample"),
                            t.policy.method,
                            _levels(held[axis] if axis in held else HoldoutLevels()),
                        ]
                        for axis, t in limits.axes.items()
                    ],
                ),
            )
        )
        errors = _errors(held)
        if limits.streaming:
            sections.append(
                Section(
                    title="Streaming mode: each stream learns its own normal",
                    bullets=[
                        f"{axis}: {f.family}"
                        + (f" (period {f.period_samples} samples)" if f.period_samples else "")
                        + f", limits {fmt(f.centre - f.below)} … {fmt(f.centre + f.above)} "
                        f"around the baseline ({f.direction}) after a warm-up of "
                        f"{plural(f.warmup, 'sample')}; {f.reason}."
                        for axis, f in limits.streaming.items()
                    ],
                )
            )
        if limits.held_out is not None:
            sections.append(_alarms_section(limits.held_out))
    recal = _recalibration(getattr(facts, "retrain", None))
    if recal is not None:
        sections.append(recal)
        summary = summary or recal.paragraphs[0]
    return Narrative(
        title=f"{facts.analysis.name}: residual limits",
        summary=headline(summary, _verdict(facts), errors),
        sections=sections,
    )
