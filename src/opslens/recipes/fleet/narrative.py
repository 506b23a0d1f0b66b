"""The template narrative of a fleet run: devices, rare devices, groups, failures, caveats.

It reads the run's facts through the typed model (:class:`FleetFacts`); a missing section
is a stage that did not run.

Example:
    >>> facts = FleetFacts.model_validate({"analysis": {"name": "fleet", "recipe": "fleet",
    ...     "source": "synthetic", "run_id": "r"}, "prepare": {"entity": "d", "time": "t",
    ...     "metrics": ["t"], "rows_read": 30, "devices": 3, "readings": 30, "start": "a",
    ...     "end": "b", "median_interval_seconds": None, "missing_share": {}}})
    >>> n = fleet_narrative(facts, [])
    >>> n.sections[0].title, n.summary
    ('What was analysed', '3 devices checked.')
"""

from __future__ import annotations

from datetime import timedelta

from opslens.core.narrative import Narrative, Section, Table
from opslens.explain.text import fmt, format_duration, format_p, plural
from opslens.features.fingerprints import describe_feature
from opslens.recipes.fleet.facts import (
    ExplainFacts,
    FailuresFacts,
    FingerprintFacts,
    FleetFacts,
    GroupsFacts,
    HealthFacts,
    InspectedDevice,
    InspectFacts,
    PrepareFacts,
    RareFacts,
)
from opslens.recipes.fleet.findings import METHOD_NAMES, group_name, plain_deviations

__all__ = ["fleet_narrative"]


def _detectors(methods: list[str]) -> str:
    """``One detector (ecod) scores`` / ``Four detectors (a, b, c, d) score``."""
    words = {1: "One detector", 2: "Two detectors", 3: "Three detectors", 4: "Four detectors"}
    verb = "scores" if len(methods) == 1 else "score"
    word = words[len(methods)] if len(methods) in words else plural(len(methods), "detector")
    return f"{word} ({', '.join(methods)}) {verb}"


def _p(value: float | None, name: str) -> str:
    return format_p(float(value), name=name) if value is not None else f"{name} n/a"


def _groups_phrase(grp: GroupsFacts) -> str:
    """``3 behaviour groups and 12 devices that fit no group (DBSCAN)``."""
    noise = f" and {plural(grp.n_noise, 'device')} that fit no group" if grp.n_noise else ""
    best = grp.best_method
    method = METHOD_NAMES[best] if best in METHOD_NAMES else best
    return f"{plural(len(grp.sizes), 'behaviour group')}{noise} ({method})"


def _inspect_bullet(d: InspectedDevice) -> str:
    prof, dec = d.profile, d.decomposition
    if dec.period:
        decomposition = f"; seasonal period {dec.period} readings ({dec.period_source})"
    elif dec.skipped:
        decomposition = f"; decomposition skipped: {dec.skipped} ({dec.fix})"
    else:
        decomposition = ""
    failed = f"; known failure at {d.failure_time[:16]}" if d.failure_time else ""
    if d.events:
        failed += "; events on its timeline: " + ", ".join(
            f"{e.get('kind', 'event')} {str(e.get('time', ''))[:10]}" for e in d.events[:5]
        )
        if len(d.events) > 5:
            failed += f" and {fmt(len(d.events) - 5)} more"
    unit = f" {d.unit}" if d.unit else ""
    return (
        f"{d.device} ({d.metric}): mean {fmt(prof.mean)}{unit}, std "
        f"{fmt(prof.std)}{unit}, {fmt(prof.n_gaps)} gaps, flagged points "
        + ", ".join(f"{m} {fmt(n)}" for m, n in d.point_anomalies.items())
        + f"; {prof.adf_reading}{decomposition}{failed}"
    )


def _analysed(facts: FleetFacts, prep: PrepareFacts, fp: FingerprintFacts | None) -> Section:
    policies = []
    if prep.duplicates_merged:
        policies.append(
            f"{fmt(prep.duplicates_merged)} duplicate timestamps merged ({prep.duplicates_policy})"
        )
    if prep.devices_sorted:
        policies.append(f"{plural(prep.devices_sorted, 'device')}' readings sorted by time")
    if prep.devices_dropped_short:
        policies.append(f"{len(prep.devices_dropped_short)} devices with too few readings left out")
    source = facts.analysis.source or "the source"
    paragraphs = [
        f"{plural(prep.readings, 'reading')} of {plural(prep.devices, 'device')} "
        f"({', '.join(prep.metrics)}) from {source}, {str(prep.start or '')[:16]} to "
        f"{str(prep.end or '')[:16]}."
    ]
    if fp is not None:
        paragraphs.append(
            f"Each device is described by a fingerprint of {plural(fp.features, 'feature')} "
            f"({fmt(fp.features_per_metric)} per metric): rolling-window statistics, trend, "
            "level changes, volatility, autocorrelation, entropy, complexity, spectrum, peaks, "
            "missing share and stationarity."
        )
        if prep.median_interval_seconds and fp.window:
            paragraphs.append(
                f"Readings come every {format_duration(timedelta(seconds=prep.median_interval_seconds))} "
                f"(median gap); window features use {plural(fp.window, 'reading')} and "
                f"autocorrelations the lags {', '.join(map(str, fp.lags or []))} readings."
            )
    if policies:
        paragraphs.append(f"Data policies applied: {'; '.join(policies)}.")
    return Section(title="What was analysed", paragraphs=paragraphs)


def _rare(rare: RareFacts, entity: str, plots: list[str]) -> Section:
    return Section(
        title="Rare devices",
        paragraphs=[
            f"{_detectors(rare.methods)} every device; their scores are put on one "
            f"scale (rank percentile) and averaged. {plural(rare.n_rare, 'device')} "
            f"{'is' if rare.n_rare == 1 else 'are'} flagged rare: a fixed quota, the "
            f"{fmt(100 * rare.contamination)}% with the highest combined "
            "score (params.rare.contamination), so the count says nothing about how many "
            "devices are truly anomalous."
        ],
        table=Table(
            columns=[entity, "rank", "combined score", "most deviating features"],
            rows=[
                [
                    t.device(entity),
                    t.rank,
                    fmt(t.combined),
                    plain_deviations(t.deviating_features or ""),
                ]
                for t in rare.top
            ],
        ),
        plots=[p for p in ("rare_scores",) if p in plots],
    )


def _groups(grp: GroupsFacts, exp: ExplainFacts | None, plots: list[str]) -> Section:
    best = grp.best_method
    by_group = exp.features_of(best) if exp is not None else {}
    return Section(
        title="Behaviour groups",
        paragraphs=[
            f"K-Means: {grp.k_reason}. DBSCAN used eps={fmt(grp.eps)} "
            "from the knee of the k-distance curve; devices it cannot place fit no group "
            f"(noise, not a group). {METHOD_NAMES[best] if best in METHOD_NAMES else best} has "
            f"the highest silhouette: {_groups_phrase(grp)}. Every group of every method, the "
            "devices that fit no group included, was contrasted with the rest of the fleet "
            "(Benjamini-Hochberg q over all those tests)."
        ],
        table=Table(
            columns=["method", "groups", "devices that fit no group", "silhouette"],
            rows=[[s.method, s.n_groups, s.n_noise, fmt(s.silhouette)] for s in grp.summary],
        ),
        bullets=[
            ("Devices that fit no group" if int(g) < 0 else f"Group {g}")
            + ": "
            + ", ".join(
                f"{describe_feature(name)} {'higher' if smd > 0 else 'lower'} "
                f"(SMD {smd:+.2f}, {_p(q, 'q')})"
                for name, smd, q in feats
            )
            for g, feats in by_group.items()
            if feats
        ],
        plots=[p for p in ("embedding", "k_selection", "k_distance") if p in plots],
    )


def _failures(fail: FailuresFacts, plots: list[str]) -> Section:
    ranking = fail.ranking
    bullets = [
        f"{group_name(e.method, e.group)}: {fmt(e.n_failed)} "
        f"of {fmt(e.n_devices)} failed ({fmt(100 * (e.failure_rate or 0.0))}%; "
        f"lift {fmt(e.lift)}, {_p(e.p_value, 'Fisher p')}, {_p(e.q_value, 'q')})"
        + (" — enriched" if e.enriched else "")
        for e in fail.enrichment or []
        if e.n_failed
    ]
    paragraphs = [
        f"{fmt(fail.n_failed)} known failures were checked against every group of every "
        "method (one-sided Fisher tests, Benjamini-Hochberg corrected across all groups) and "
        "against the failure-risk ranking (AUROC: the chance that a failed device ranks above "
        "a healthy one, with a permutation p-value). A verdict needs at "
        f"least {fmt(fail.min_failures)} known failures and a test that holds."
    ]
    if ranking is not None:
        paragraphs += [
            f"Verdict on the failure-risk ranking: {ranking.verdict}.",
            f"Precision@k: {', '.join(f'@{k} {fmt(v)}' for k, v in ranking.precision_at.items())}; "
            f"recall@k: {', '.join(f'@{k} {fmt(v)}' for k, v in ranking.recall_at.items())}; "
            f"AUROC {fmt(ranking.auroc)} against a base rate of {fmt(ranking.base_rate)}.",
        ]
    if fail.lead_time is not None and fail.lead_time.sentence:
        paragraphs.append(
            "The warning rule raises a device on the first day its peer-relative CUSUM passes "
            "params.change.h on any metric; the simple per-device rule raises it after "
            "params.change.streak_days days in a row beyond params.change.streak_z baseline "
            "sd; healthy devices are checked at pseudo-failure dates drawn from the real "
            f"ones: {fail.lead_time.sentence}"
        )
    if fail.unknown_ids:
        paragraphs.append(
            f"{len(fail.unknown_ids)} ids in the failure list are not in the data and were "
            f"ignored: {', '.join(fail.unknown_ids[:10])}."
        )
    return Section(
        title="Known failures",
        paragraphs=paragraphs,
        bullets=bullets,
        plots=[p for p in ("failure_rates",) if p in plots],
    )


def _inspected(ins: InspectFacts, plots: list[str]) -> Section:
    skipped = ins.decompositions_skipped
    return Section(
        title="The rarest devices up close",
        paragraphs=(
            [
                f"{plural(skipped, 'decomposition')} of {len(ins.devices)} "
                f"{'was' if skipped == 1 else 'were'} skipped; each reason is given below."
            ]
            if skipped
            else []
        ),
        bullets=[_inspect_bullet(d) for d in ins.devices],
        plots=[p for p in plots if p.startswith("device_")],
    )


_CAVEATS = [
    "Rare is relative to this fleet: a device can be unusual without being faulty, and a fault "
    "shared by many devices is not rare.",
    "Scores are rank percentiles: they order devices but do not measure how far apart they "
    "are; read the deviating features.",
    "Group enrichment and ranking quality need known failures; without them the findings "
    "describe behaviour, and the risk weights are equal.",
    "Change is measured against each device's first weeks: a device that was already "
    "degrading then looks normal to its own history (its peers still see it).",
]


HEADLINE_WORDS = 40


def _summary(facts: FleetFacts) -> str:
    """The headline in plain words (at most 40): devices, sensor faults, risk, warning, baselines.

    The first sentence and the verdict against the baselines always stand (a loss is
    stated with its figures); the others are added in order of importance while the
    headline stays within :data:`HEADLINE_WORDS` words. The detail is in the sections.
    """
    prep, health, fail = facts.prepare, facts.health, facts.failures
    first = (
        f"{plural(prep.devices, 'device')} checked" if prep is not None else "No devices checked"
    )
    if health is not None:
        first += (
            f"; {plural(health.n_sensor_faults, 'sensor fault')} listed apart"
            if health.n_sensor_faults
            else "; no sensor faults"
        )
    first += "."
    optional = []
    ranking = fail.ranking if fail is not None and fail.configured else None
    lead = fail.lead_time if fail is not None and fail.configured else None
    if ranking is not None and "10" in ranking.precision_at:
        hits = round(10 * float(ranking.precision_at["10"] or 0.0))
        optional.append(f"{hits} of the 10 devices most at risk are known failures.")
    if lead is not None and lead.median_lead_days is not None:
        share = lead.healthy_share_detected
        healthy = f", {100 * share:.0f}% of healthy ones" if share is not None else ""
        optional.append(
            f"Warned {lead.n_detected} of {lead.n_failed} failures a median "
            f"{lead.median_lead_time} ahead{healthy}."
        )
    if health is not None and health.top and ranking is None:
        top = health.top[0]
        optional.append(f"Most at risk: {top.device}, {top.explanation}.")
    last = ""
    if facts.baselines is not None:
        last = (
            "It beats both simple baselines."
            if facts.baselines.model_wins
            else f"Against the baselines: {facts.baselines.verdict}."
        )
    elif fail is not None and fail.baselines_unscored:
        last = "The simple baselines were not scored: no known failures among the devices."
    text = first
    for sentence in optional:
        if len(f"{text} {sentence} {last}".split()) > HEADLINE_WORDS:
            break
        text = f"{text} {sentence}"
    return f"{text} {last}".strip()


def _health(health: HealthFacts, entity: str) -> list[Section]:
    """Sensor faults (apart) and the failure-risk ranking with its explanations."""
    kinds = ", ".join(f"{fmt(n)} {k.replace('_', ' ')}" for k, n in health.fault_kinds.items())
    faults = Section(
        title="Sensor faults",
        paragraphs=[
            f"{plural(health.n_sensor_faults, 'sensor fault')} on "
            f"{plural(health.faulty_devices, 'device')}"
            + (f" ({kinds})" if kinds else "")
            + ": readings that say more about the sensor than the machine (a flatline, a value "
            "stuck for days, a cap while the peers run higher, a jump no machine makes in a "
            "day, days without readings, values outside params.limits). "
            + (
                "They are kept in the failure-risk ranking (params.sensors.in_risk)."
                if health.sensor_faults_in_risk
                else "Their metrics are left out of the failure-risk ranking from the fault's "
                "first day on, and so is the rarity of their devices."
            )
        ],
        bullets=[
            f"{f.model_extra.get(entity) if f.model_extra else ''}: {f.kind.replace('_', ' ')} "
            f"since {f.since}: {f.detail}"
            for f in health.sensor_faults[:20]
        ],
    )
    peers = (
        f"its peer group ({health.peer_group}, {plural(health.peer_groups, 'group')})"
        if health.peer_group
        else "the whole fleet (no columns.peer_group)"
    )
    how = {
        "learned": "learned from the known failures (the weights whose risk ranks them best), "
        "and validated out of fold: each device's risk uses the weights learned on the other "
        f"{plural(len(health.fold_weights or []) - 1, 'fold')} of the devices, so its own failure "
        "never sets its weight"
        + (
            f"; with equal weights the AUROC is {fmt(health.equal_weights_auroc)}"
            + (
                f" and {fmt(round(health.equal_weights_precision_at_10 * 10))} of the top 10 failed"
                if health.equal_weights_precision_at_10 is not None
                else ""
            )
            if health.equal_weights_auroc is not None
            else ""
        ),
        "set": "set in params.risk.weights",
        "equal": "equal",
    }[health.weights_from]
    paragraphs = [
        "Failure risk combines three things, each as a rank over the fleet: how rare the "
        "device's whole history is (rarity), how far its recent weeks moved from its own "
        f"first weeks (own change), and how far it moved against {peers} on the same days "
        "(peer change: a CUSUM, a running sum of the daily deviations, and the level shift). "
        f"Weights: {', '.join(f'{k.replace(chr(95), chr(32))} {fmt(v)}' for k, v in health.weights.items())}, {how}."
    ]
    if health.lonely_devices:
        paragraphs.append(
            f"{plural(len(health.lonely_devices), 'device')} alone in a peer group "
            "were compared with the whole fleet."
        )
    risk = Section(
        title="Devices most at risk",
        paragraphs=paragraphs,
        bullets=[f"{t.rank}. {t.device}: {t.explanation}" for t in health.top],
    )
    return [faults, risk]


def fleet_narrative(facts: FleetFacts, plots: list[str]) -> Narrative:
    """Sections of a fleet report, every number from the typed ``facts``."""
    prep, rare, grp, fail, ins = (
        facts.prepare,
        facts.rare,
        facts.groups,
        facts.failures,
        facts.inspect,
    )
    entity = prep.entity if prep is not None else "device"
    sections = [_analysed(facts, prep, facts.fingerprint)] if prep is not None else []
    if facts.health is not None:
        sections += _health(facts.health, entity)
    if rare is not None and rare.top:
        sections.append(_rare(rare, entity, plots))
    if grp is not None:
        sections.append(_groups(grp, facts.explain, plots))
    if fail is not None and fail.configured:
        sections.append(_failures(fail, plots))
    findings = (fail.findings if fail is not None else None) or (
        facts.explain.findings if facts.explain is not None else []
    )
    if findings:
        sections.append(Section(title="Findings", bullets=list(findings)))
    if ins is not None and ins.devices:
        sections.append(_inspected(ins, plots))
    sections.append(Section(title="Caveats", bullets=list(_CAVEATS)))
    return Narrative(
        title=f"{facts.analysis.name}: fleet behaviour", summary=_summary(facts), sections=sections
    )
