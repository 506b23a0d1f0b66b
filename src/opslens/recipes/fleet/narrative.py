"""The template narrative of a fleet run: devices, rare devices, groups, failures, caveats.

Example:
    >>> facts = {"analysis": {"name": "fleet", "recipe": "fleet", "source": "synthetic"},
    ...          "prepare": {"devices": 3, "readings": 30, "metrics": ["t"], "start": "a", "end": "b"}}
    >>> fleet_narrative(facts, []).sections[0].title
    'What was analysed'
"""

from __future__ import annotations

from typing import Any

from opslens.core.narrative import Narrative, Section, Table
from opslens.explain.text import fmt, plural

__all__ = ["fleet_narrative"]


def _detectors(methods: list[str]) -> str:
    """``One detector (ecod) scores`` / ``Four detectors (a, b, c, d) score``."""
    words = {1: "One detector", 2: "Two detectors", 3: "Three detectors", 4: "Four detectors"}
    verb = "scores" if len(methods) == 1 else "score"
    return (
        f"{words.get(len(methods), plural(len(methods), 'detector'))} ({', '.join(methods)}) {verb}"
    )


def fleet_narrative(facts: dict[str, Any], plots: list[str]) -> Narrative:
    """Sections of a fleet report, every number from ``facts``."""
    a = facts.get("analysis", {})
    prep = facts.get("prepare", {})
    fp = facts.get("fingerprint", {})
    rare = facts.get("rare", {})
    grp = facts.get("groups", {})
    exp = facts.get("explain", {})
    fail = facts.get("failures", {})
    ins = facts.get("inspect", {})
    entity = prep.get("entity", "device")
    policies = []
    if prep.get("duplicates_merged"):
        policies.append(
            f"{fmt(prep['duplicates_merged'])} duplicate timestamps merged ({prep.get('duplicates_policy')})"
        )
    if prep.get("devices_sorted"):
        policies.append(f"{plural(prep['devices_sorted'], 'device')}' readings sorted by time")
    if prep.get("devices_dropped_short"):
        policies.append(
            f"{len(prep['devices_dropped_short'])} devices with too few readings left out"
        )
    sections = [
        Section(
            title="What was analysed",
            paragraphs=[
                f"{plural(prep.get('readings'), 'reading')} of {plural(prep.get('devices'), 'device')} ({', '.join(prep.get('metrics', []))}) "
                f"from {a.get('source', 'the source')}, {str(prep.get('start', ''))[:16]} to {str(prep.get('end', ''))[:16]}.",
                f"Each device is described by a fingerprint of {plural(fp.get('features'), 'feature')} "
                f"({fmt(fp.get('features_per_metric'))} per metric): rolling-window statistics, trend, level changes, "
                "volatility, autocorrelation, entropy, complexity, spectrum, peaks, missing share and stationarity.",
            ]
            + ([f"Data policies applied: {'; '.join(policies)}."] if policies else []),
        )
    ]
    top = rare.get("top", [])
    if top:
        sections.append(
            Section(
                title="Rare devices",
                paragraphs=[
                    f"{_detectors(rare.get('methods', []))} every device; their scores are put on one "
                    f"scale (rank percentile) and averaged. {plural(rare.get('n_rare'), 'device')} "
                    f"{'lies' if rare.get('n_rare') == 1 else 'lie'} above the "
                    f"{fmt(1 - float(rare.get('contamination', 0.05)))} quantile of the combined score."
                ],
                table=Table(
                    columns=[entity, "rank", "combined score", "most deviating features"],
                    rows=[
                        [
                            t.get(entity),
                            t.get("rank"),
                            fmt(t.get("combined")),
                            t.get("deviating_features"),
                        ]
                        for t in top
                    ],
                ),
                plots=[p for p in ("rare_scores",) if p in plots],
            )
        )
    if grp:
        summary = grp.get("summary", [])
        sections.append(
            Section(
                title="Behaviour groups",
                paragraphs=[
                    f"K-Means: {grp.get('k_reason', '')}. DBSCAN used eps={fmt(grp.get('eps'))} "
                    f"from the knee of the k-distance curve. The groups below are those of {grp.get('best_method')}, "
                    "the method with the highest silhouette."
                ],
                table=Table(
                    columns=["method", "groups", "noise devices", "silhouette"],
                    rows=[
                        [
                            s.get("method"),
                            s.get("n_groups"),
                            s.get("n_noise"),
                            fmt(s.get("silhouette")),
                        ]
                        for s in summary
                    ],
                ),
                bullets=[
                    f"Group {g}: "
                    + ", ".join(
                        f"{name} {'higher' if smd > 0 else 'lower'} (SMD {smd:+.2f}, q={fmt(q)})"
                        for name, smd, q in feats
                    )
                    for g, feats in (exp.get("group_features") or {}).items()
                    if feats
                ],
                plots=[p for p in ("embedding", "k_selection", "k_distance") if p in plots],
            )
        )
    if fail.get("configured"):
        ranking = fail.get("ranking", {})
        lead = fail.get("lead_time") or {}
        bullets = [
            ("No group (noise)" if e.get("group") == -1 else f"Group {e.get('group')}")
            + f": {fmt(e.get('n_failed'))} of {fmt(e.get('n_devices'))} failed "
            f"({fmt(e.get('failure_rate'))}; lift {fmt(e.get('lift'))}, Fisher p={fmt(e.get('p_value'))})"
            + (" — enriched" if e.get("enriched") else "")
            for e in fail.get("enrichment", [])
        ]
        paragraphs = [
            f"{fmt(fail.get('n_failed'))} known failures were checked against the findings. {ranking.get('verdict', '')}",
            f"Precision@k: {', '.join(f'@{k} {fmt(v)}' for k, v in ranking.get('precision_at', {}).items())}; "
            f"recall@k: {', '.join(f'@{k} {fmt(v)}' for k, v in ranking.get('recall_at', {}).items())}; "
            f"AUROC {fmt(ranking.get('auroc'))} against a base rate of {fmt(ranking.get('base_rate'))}.",
        ]
        if lead:
            paragraphs.append(
                "Scored on rolling windows up to each failure date: "
                + ", ".join(f"{k.replace('_', ' ')} {fmt(v)}" for k, v in lead.items())
                + "."
            )
        if fail.get("unknown_ids"):
            paragraphs.append(
                f"{len(fail['unknown_ids'])} ids in the failure list are not in the data and were ignored: "
                f"{', '.join(fail['unknown_ids'][:10])}."
            )
        sections.append(
            Section(
                title="Known failures",
                paragraphs=paragraphs,
                bullets=bullets,
                plots=[p for p in ("failure_rates",) if p in plots],
            )
        )
    findings = fail.get("findings") or exp.get("findings") or []
    if findings:
        sections.append(Section(title="Findings", bullets=list(findings)))
    inspected = ins.get("devices", [])
    if inspected:
        bullets = []
        for d in inspected:
            prof = d.get("profile", {})
            dec = d.get("decomposition", {})
            bullets.append(
                f"{d.get('device')} ({d.get('metric')}): mean {fmt(prof.get('mean'))}, std {fmt(prof.get('std'))}, "
                f"{fmt(prof.get('n_gaps'))} gaps, flagged points "
                + ", ".join(f"{m} {fmt(n)}" for m, n in (d.get("point_anomalies") or {}).items())
                + f"; {prof.get('adf_reading', '')}"
                + (
                    f"; seasonal period {dec.get('period')} ({dec.get('period_source')})"
                    if dec.get("period")
                    else ""
                )
            )
        sections.append(
            Section(
                title="The rarest devices up close",
                bullets=bullets,
                plots=[p for p in plots if p.startswith("device_")],
            )
        )
    sections.append(
        Section(
            title="Caveats",
            bullets=[
                "Rare is relative to this fleet: a device can be unusual without being faulty, and a fault shared by many devices is not rare.",
                "Scores are rank percentiles: they order devices but do not measure how far apart they are; read the deviating features.",
                "Group enrichment and ranking quality need known failures; without them the findings describe behaviour, not risk.",
            ],
        )
    )
    summary_text = (
        f"{plural(prep.get('devices'), 'device')} fingerprinted with {plural(fp.get('features'), 'feature')}; "
        f"{fmt(rare.get('n_rare'))} rare devices and {len(grp.get('sizes', []))} behaviour groups found"
        + (
            f"; rare-device score against known failures: AUROC {fmt(fail.get('ranking', {}).get('auroc'))}."
            if fail.get("configured")
            else "."
        )
    )
    return Narrative(
        title=f"{a.get('name', 'fleet')}: fleet behaviour", summary=summary_text, sections=sections
    )
