"""The template narrative of a fleet run: devices, rare devices, groups, failures, caveats.

Example:
    >>> facts = {"analysis": {"name": "fleet", "recipe": "fleet", "source": "synthetic"},
    ...          "prepare": {"devices": 3, "readings": 30, "metrics": ["t"], "start": "a", "end": "b"}}
    >>> fleet_narrative(facts, []).sections[0].title
    'What was analysed'
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from opslens.core.narrative import Narrative, Section, Table
from opslens.explain.text import fmt, format_duration, format_p, plural
from opslens.features.fingerprints import describe_feature
from opslens.recipes.fleet.findings import METHOD_NAMES, group_name, plain_deviations

__all__ = ["fleet_narrative"]


def _detectors(methods: list[str]) -> str:
    """``One detector (ecod) scores`` / ``Four detectors (a, b, c, d) score``."""
    words = {1: "One detector", 2: "Two detectors", 3: "Three detectors", 4: "Four detectors"}
    verb = "scores" if len(methods) == 1 else "score"
    return (
        f"{words.get(len(methods), plural(len(methods), 'detector'))} ({', '.join(methods)}) {verb}"
    )


def _p(value: Any, name: str) -> str:
    return format_p(float(value), name=name) if value is not None else f"{name} n/a"


def _groups_phrase(grp: dict[str, Any]) -> str:
    """``3 behaviour groups and 12 devices that fit no group (DBSCAN)``."""
    n_noise = int(grp.get("n_noise") or 0)
    noise = f" and {plural(n_noise, 'device')} that fit no group" if n_noise else ""
    method = METHOD_NAMES.get(str(grp.get("best_method")), grp.get("best_method"))
    return f"{plural(len(grp.get('sizes', [])), 'behaviour group')}{noise} ({method})"


def _inspect_bullet(d: dict[str, Any]) -> str:
    prof = d.get("profile", {})
    dec = d.get("decomposition", {})
    if dec.get("period"):
        decomposition = (
            f"; seasonal period {dec.get('period')} readings ({dec.get('period_source')})"
        )
    elif dec.get("skipped"):
        decomposition = f"; decomposition skipped: {dec['skipped']} ({dec.get('fix')})"
    else:
        decomposition = ""
    failed = f"; known failure at {str(d['failure_time'])[:16]}" if d.get("failure_time") else ""
    unit = f" {d['unit']}" if d.get("unit") else ""
    return (
        f"{d.get('device')} ({d.get('metric')}): mean {fmt(prof.get('mean'))}{unit}, std "
        f"{fmt(prof.get('std'))}{unit}, {fmt(prof.get('n_gaps'))} gaps, flagged points "
        + ", ".join(f"{m} {fmt(n)}" for m, n in (d.get("point_anomalies") or {}).items())
        + f"; {prof.get('adf_reading', '')}{decomposition}{failed}"
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
            + (
                [
                    f"Readings come every {format_duration(timedelta(seconds=interval))} (median "
                    f"gap); window features use {plural(fp.get('window'), 'reading')} and "
                    f"autocorrelations the lags {', '.join(map(str, fp.get('lags') or []))} readings."
                ]
                if (interval := prep.get("median_interval_seconds")) and fp.get("window")
                else []
            )
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
                    f"{'is' if rare.get('n_rare') == 1 else 'are'} flagged rare: a fixed quota, the "
                    f"{fmt(100 * float(rare.get('contamination', 0.05)))}% with the highest combined "
                    "score (params.rare.contamination), so the count says nothing about how many "
                    "devices are truly anomalous."
                ],
                table=Table(
                    columns=[entity, "rank", "combined score", "most deviating features"],
                    rows=[
                        [
                            t.get(entity),
                            t.get("rank"),
                            fmt(t.get("combined")),
                            plain_deviations(str(t.get("deviating_features") or "")),
                        ]
                        for t in top
                    ],
                ),
                plots=[p for p in ("rare_scores",) if p in plots],
            )
        )
    if grp:
        summary = grp.get("summary", [])
        best = str(grp.get("best_method"))
        by_group = (exp.get("group_features") or {}).get(best, {})
        sections.append(
            Section(
                title="Behaviour groups",
                paragraphs=[
                    f"K-Means: {grp.get('k_reason', '')}. DBSCAN used eps={fmt(grp.get('eps'))} "
                    "from the knee of the k-distance curve; devices it cannot place fit no group "
                    f"(noise, not a group). {METHOD_NAMES.get(best, best)} has the highest "
                    f"silhouette: {_groups_phrase(grp)}. Every group of every method, the devices "
                    "that fit no group included, was contrasted with the rest of the fleet "
                    "(Benjamini-Hochberg q over all those tests)."
                ],
                table=Table(
                    columns=["method", "groups", "devices that fit no group", "silhouette"],
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
        )
    if fail.get("configured"):
        ranking = fail.get("ranking", {})
        lead = fail.get("lead_time") or {}
        bullets = [
            f"{group_name(str(e.get('method')), int(e.get('group', 0)))}: {fmt(e.get('n_failed'))} "
            f"of {fmt(e.get('n_devices'))} failed ({fmt(100 * float(e.get('failure_rate') or 0))}%; "
            f"lift {fmt(e.get('lift'))}, {_p(e.get('p_value'), 'Fisher p')}, {_p(e.get('q_value'), 'q')})"
            + (" — enriched" if e.get("enriched") else "")
            for e in fail.get("enrichment", [])
            if e.get("n_failed")
        ]
        paragraphs = [
            f"{fmt(fail.get('n_failed'))} known failures were checked against every group of every "
            "method (one-sided Fisher tests, Benjamini-Hochberg corrected across all groups) and "
            "against the rare-device score (AUROC with a permutation p-value). A verdict needs at "
            f"least {fmt(fail.get('min_failures'))} known failures and a test that holds.",
            f"Verdict on the rare-device score: {ranking.get('verdict', '')}.",
            f"Precision@k: {', '.join(f'@{k} {fmt(v)}' for k, v in ranking.get('precision_at', {}).items())}; "
            f"recall@k: {', '.join(f'@{k} {fmt(v)}' for k, v in ranking.get('recall_at', {}).items())}; "
            f"AUROC {fmt(ranking.get('auroc'))} against a base rate of {fmt(ranking.get('base_rate'))}.",
        ]
        if lead.get("sentence"):
            paragraphs.append(
                "Scored on rolling windows before each failure date (windows count once they lie "
                f"wholly inside the data): {lead['sentence']}"
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
        skipped = int(ins.get("decompositions_skipped") or 0)
        sections.append(
            Section(
                title="The rarest devices up close",
                paragraphs=(
                    [
                        f"{plural(skipped, 'decomposition')} of {len(inspected)} "
                        f"{'was' if skipped == 1 else 'were'} skipped; each reason is given below."
                    ]
                    if skipped
                    else []
                ),
                bullets=[_inspect_bullet(d) for d in inspected],
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
    lead_finding = (fail.get("findings") or [None])[0] if fail.get("configured") else None
    summary_text = (
        f"{plural(prep.get('devices'), 'device')} fingerprinted with {plural(fp.get('features'), 'feature')}; "
        f"{_groups_phrase(grp) if grp else 'no behaviour groups'}; {fmt(rare.get('n_rare'))} devices "
        f"flagged rare (a fixed quota of {fmt(100 * float(rare.get('contamination', 0.05)))}%)."
        + (f" {lead_finding}" if lead_finding else "")
        + (
            f" Rare-device score against known failures: {fail.get('ranking', {}).get('verdict')}."
            if fail.get("configured")
            else ""
        )
    )
    return Narrative(
        title=f"{a.get('name', 'fleet')}: fleet behaviour", summary=summary_text, sections=sections
    )
