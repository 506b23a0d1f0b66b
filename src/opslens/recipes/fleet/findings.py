"""Plain-language findings for the fleet recipe, written from the numbers only.

Each sentence states numbers taken from its inputs (rare-device scores,
behaviour groups, group contrasts, failure enrichment, ranking quality, lead
times); nothing is inferred that the numbers do not show. Pass ``None`` for a
part that was not computed (e.g. no failure list) and its sentences are left out.
With known failures, the findings open with the most enriched group of any
grouping method (DBSCAN's "fits no group" included); a verdict is given only
when enough failures are known and its significance test holds.

Example:
    >>> _devices(1), _devices(3)
    ('1 device', '3 devices')
    >>> plain_deviations("vibration__adf_pvalue +69.4σ, temp__mean -2.1σ")
    'vibration: non-stationarity (ADF test p-value) far above the fleet (69 × its usual spread), temp: average level below the fleet (2.1 × its usual spread)'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import polars as pl
from statsmodels.stats.multitest import multipletests

from opslens.cluster.groups import BehaviourGroups
from opslens.detect.population import RareDevices
from opslens.explain.contrasts import top_group_features
from opslens.explain.failures import RankingQuality, lead_time_sentence
from opslens.explain.text import fmt, format_duration, format_p, plural
from opslens.features.fingerprints import describe_feature

__all__ = ["METHOD_NAMES", "fleet_findings", "group_name", "plain_deviations"]

METHOD_NAMES = {"kmeans": "K-Means", "dbscan": "DBSCAN", "agglomerative": "Agglomerative (Ward)"}
_DEVIATION = re.compile(r"^\s*(\S+)\s+([+-]?\d+(?:\.\d+)?)σ\s*$")


def _devices(n: int) -> str:
    return plural(n, "device")


def group_name(method: str, group: int) -> str:
    """``group 2 of K-Means`` / ``the devices DBSCAN fits in no group``.

    Example:
        >>> group_name("kmeans", 2), group_name("dbscan", -1)
        ('group 2 of K-Means', 'the devices DBSCAN fits in no group')
    """
    name = METHOD_NAMES.get(method, method)
    return f"the devices {name} fits in no group" if group < 0 else f"group {group} of {name}"


def plain_deviations(text: str) -> str:
    """``name +z σ`` items (the rare ranking's deviating features) in plain words."""
    out = []
    for item in text.split(","):
        m = _DEVIATION.match(item)
        if m is None:
            if item.strip():
                out.append(item.strip())
            continue
        z = float(m.group(2))
        far = "far " if abs(z) >= 10 else ""
        side = "above" if z >= 0 else "below"
        size = f"{abs(z):.0f}" if abs(z) >= 10 else f"{abs(z):.1f}"
        out.append(
            f"{describe_feature(m.group(1))} {far}{side} the fleet ({size} × its usual spread)"
        )
    return ", ".join(out)


def _features_text(feats: list[tuple[str, float, float]]) -> str:
    return " and ".join(
        f"{'higher' if smd >= 0 else 'lower'} {describe_feature(name)} "
        f"(SMD {smd:+.1f}, {format_p(q, name='q')})"
        for name, smd, q in feats
    )


def _by_method(frame: pl.DataFrame, method: str | None) -> pl.DataFrame:
    """A contrasts or enrichment table with a ``method`` column (added for one-method tables)."""
    if "method" in frame.columns or method is None:
        return frame
    return frame.select(pl.lit(method).alias("method"), pl.all())


def _ranked(enrichment: pl.DataFrame) -> pl.DataFrame:
    """Most enriched first; a one-method table without ``q_value`` gets BH q over its groups."""
    if "q_value" not in enrichment.columns:
        q = multipletests(enrichment["p_value"].to_numpy(), method="fdr_bh")[1]
        enrichment = enrichment.with_columns(pl.Series("q_value", q, dtype=pl.Float64))
    return enrichment.sort(["q_value", "p_value"], maintain_order=True)


def _tops(
    contrasts: pl.DataFrame, method: str, n: int
) -> dict[int, list[tuple[str, float, float]]]:
    if contrasts.height == 0 or "method" not in contrasts.columns:
        return {}
    return top_group_features(contrasts.filter(pl.col("method") == method), n)


def _rare_sentences(n_devices: int, rare: RareDevices) -> list[str]:
    n_rare = int(rare.scores["is_rare"].sum())
    share = 100 * rare.detector.contamination
    out = [
        f"{n_rare} of {n_devices} devices behave rarely by a fixed quota: the {share:.3g}% with "
        f"the highest combined score of {plural(len(rare.detector.methods), 'detector')} are "
        "flagged (params.rare.contamination), a set share rather than a count of anomalies found."
    ]
    if rare.top.height:
        first = rare.top.row(0, named=True)
        ent = rare.top.columns[0]
        out.append(
            f"The most unusual device is {first[ent]} (combined score {first['combined']:.2f}): "
            f"{plain_deviations(str(first['deviating_features']))}."
        )
    return out


def _group_sentences(groups: BehaviourGroups, contrasts: pl.DataFrame) -> list[str]:
    out: list[str] = []
    k = groups.k_choice
    best = groups.best_method
    if best is None:
        out.append(
            "No clustering method finds two or more well-separated behaviour groups "
            f"(K-Means was asked for K={k.k})."
        )
        return out
    row = groups.summary.filter(pl.col("method") == best).row(0, named=True)
    noise = f" and {_devices(row['n_noise'])} that fit no group" if row["n_noise"] else ""
    out.append(
        f"{METHOD_NAMES.get(best, best)} separates the fleet best: "
        f"{plural(row['n_groups'], 'behaviour group')}{noise}, silhouette {row['silhouette']:.2f} "
        f"(K-Means: {k.reason})."
    )
    contrasts = _by_method(contrasts, best)
    if contrasts.height == 0:
        return out
    mine = contrasts.filter(pl.col("method") == best)
    sizes = dict(mine.select("group", "n_group").unique().iter_rows())
    tops = _tops(contrasts, best, 2)
    for g in sorted(sizes, key=lambda g: (g < 0, g)):
        who, s_ = ("The devices that fit no group", "") if g < 0 else (f"Group {g}", "s")
        feats = tops.get(int(g), [])
        if feats:
            out.append(f"{who} ({_devices(sizes[g])}) stand{s_} apart by {_features_text(feats)}.")
        else:
            out.append(
                f"{who} ({_devices(sizes[g])}) show{s_} no feature that differs significantly "
                "from the rest of the fleet."
            )
    return out


def _lead_group(enrichment: pl.DataFrame, contrasts: pl.DataFrame, enough: bool) -> list[str]:
    """The opening sentence: the most enriched group of any method, with what sets it apart."""
    n_fail = int(enrichment.filter(pl.col("method") == enrichment["method"][0])["n_failed"].sum())
    if n_fail == 0:
        return []
    top = enrichment.row(0, named=True)
    where = group_name(str(top["method"]), int(top["group"]))
    q = top.get("q_value", top["p_value"])
    text = (
        f"{top['n_failed']} of the {n_fail} known failures are in {where} "
        f"({_devices(top['n_devices'])}): {top['lift']:.1f}× the fleet rate "
        f"({format_p(top['p_value'], name='Fisher p')}; {format_p(q, name='q')} after the "
        "Benjamini-Hochberg correction over every group of every method)"
    )
    if not enough:
        return [text + ", but too few failures are known to call it a risk group."]
    if not top["enriched"]:
        return [text + "; no group holds more failures than chance would explain."]
    feats = _tops(contrasts, str(top["method"]), 3).get(int(top["group"]), [])
    apart = f"; it stands apart by {_features_text(feats)}" if feats else ""
    return [text + apart + "."]


def _failure_sentences(enrichment: pl.DataFrame, enough: bool, min_failures: int) -> list[str]:
    first = enrichment.filter(pl.col("method") == enrichment["method"][0])
    n_fail = int(first["n_failed"].sum())
    if n_fail == 0:
        return ["None of the known failed devices is in the data, so groups cannot be checked."]
    n_dev = int(first["n_devices"].sum())
    out = [
        f"{n_fail} of {n_dev} devices are known to have failed "
        f"(fleet rate {100 * n_fail / n_dev:.3g}%)."
    ]
    if not enough:
        out.append(
            f"With {plural(n_fail, 'known failure')} there are too few to tell whether any group "
            f"or the rare-device score points at risk (a verdict needs at least {min_failures})."
        )
        return out
    rest = enrichment.slice(1).filter(pl.col("enriched"))
    for r in rest.iter_rows(named=True):
        out.append(
            f"Also enriched: {group_name(str(r['method']), int(r['group']))} "
            f"({r['n_failed']} of {_devices(r['n_devices'])}, {r['lift']:.1f}× the fleet rate, "
            f"{format_p(r.get('q_value', r['p_value']), name='q')})."
        )
    return out


def fleet_findings(
    *,
    n_devices: int,
    rare: RareDevices,
    groups: BehaviourGroups,
    contrasts: pl.DataFrame,
    enrichment: pl.DataFrame | None,
    ranking: RankingQuality | None,
    lead: dict[str, Any] | None,
    min_failures: int = 5,
) -> list[str]:
    """Short plain-language sentences summarising the fleet analysis, each built from its numbers.

    ``contrasts`` and ``enrichment`` hold every method (a ``method`` column, as
    :func:`~opslens.explain.contrasts.contrasts_by_method` and
    :func:`~opslens.explain.failures.enrichment_by_method` give them, most
    enriched first) or only ``groups.best_method``'s groups.

    Example:
        >>> import numpy as np
        >>> from opslens.cluster.groups import find_groups
        >>> from opslens.detect.population import rank_rare_devices
        >>> from opslens.explain.contrasts import group_contrasts
        >>> rng = np.random.default_rng(0)
        >>> X = np.vstack([rng.normal(c, 0.3, size=(20, 2)) for c in (0.0, 3.0)])
        >>> fp = pl.DataFrame({"id": [str(i) for i in range(40)], "a": X[:, 0], "b": X[:, 1]})
        >>> rare = rank_rare_devices(fp, entity="id", methods=("ecod",), top_n=3)
        >>> g = find_groups(fp, entity="id", methods=("kmeans",), k_max=3)
        >>> c = group_contrasts(fp, g.labels["kmeans"].to_numpy(), entity="id")
        >>> lines = fleet_findings(n_devices=40, rare=rare, groups=g, contrasts=c,
        ...                        enrichment=None, ranking=None, lead=None)
        >>> lines[2].startswith("K-Means separates the fleet best: 2 behaviour groups")
        True
    """
    contrasts = _by_method(contrasts, groups.best_method)
    out: list[str] = []
    enough = True
    if enrichment is not None and enrichment.height:
        enrichment = _ranked(_by_method(enrichment, groups.best_method))
        n_fail = int(
            enrichment.filter(pl.col("method") == enrichment["method"][0])["n_failed"].sum()
        )
        enough = n_fail >= min_failures
        out += _lead_group(enrichment, contrasts, enough)
    out += _rare_sentences(n_devices, rare)
    out += _group_sentences(groups, contrasts)
    if enrichment is not None and enrichment.height:
        out += _failure_sentences(enrichment, enough, min_failures)
    if ranking is not None:
        out.append(f"Rare-device score against the known failures: {ranking.verdict}.")
    if lead is not None and lead.get("n_failed"):
        out.append(lead_time_sentence(lead))
    return out


def _days(x: float) -> str:
    return format_duration(timedelta(days=x))


def _share(n: int, of: int) -> str:
    return f"{n} of {of}" + (f" ({100 * n / of:.0f}%)" if of else "")


def lead_facts(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The warning rule's summary as the failures stage's lead-time facts, with one plain sentence.

    Example:
        >>> base = {"n_failed": 12, "n_detected": 12, "median_lead_days": 14.5, "n_healthy": 288,
        ...     "healthy_warned": 9, "healthy_warned_share": 0.03, "healthy_ever_raised": 37,
        ...     "p_value": 1e-16}
        >>> ours = {**base, "median_lead_days": 15.0, "healthy_warned": 3,
        ...     "healthy_warned_share": 0.01, "healthy_ever_raised": 16, "baseline": base,
        ...     "beats_baseline": True, "horizon_days": 30}
        >>> print(lead_facts(ours)["sentence"])
        The warning rule warned 12 of 12 failed devices within 30 days of failing (median 15 days ahead) and 3 of 288 (1%) healthy devices at matched pseudo-failure dates: better than chance (Fisher p < 1e-10) and better than the simple per-device rule (12 of 12, median 14 days 12 hours ahead, 9 of 288 (3%) healthy).
    """
    base = summary.get("baseline") or {}
    n, det, healthy = summary["n_failed"], summary["n_detected"], summary["n_healthy"]
    lead = summary.get("median_lead_days")
    p = summary.get("p_value")
    beats_chance = p is not None and p < 0.01
    when = f" (median {_days(lead)} ahead)" if lead is not None else ""
    chance = (
        f"better than chance ({format_p(p, name='Fisher p')})"
        if beats_chance and p is not None
        else "not clearly better than chance"
        + (f" ({format_p(p, name='Fisher p')})" if p is not None else "")
    )
    rule = (
        "better than the simple per-device rule"
        if summary.get("beats_baseline")
        else "not better than the simple per-device rule"
    )
    b_lead = base.get("median_lead_days")
    b_when = f", median {_days(b_lead)} ahead" if b_lead is not None else ""
    sentence = (
        f"The warning rule warned {det} of {n} failed devices within "
        f"{summary.get('horizon_days')} days of failing{when} and "
        f"{_share(summary['healthy_warned'], healthy)} healthy devices at matched pseudo-failure dates: "
        f"{chance} and {rule} ({base.get('n_detected')} of {base.get('n_failed')}{b_when}, "
        f"{_share(int(base.get('healthy_warned') or 0), int(base.get('n_healthy') or 0))} healthy)"
        + _against(summary.get("comparison") or {})
        + "."
    )
    return {
        "n_failed": n,
        "n_detected": det,
        "share_detected": det / n if n else None,
        "median_lead_time": _days(lead) if lead is not None else None,
        "top_k": None,
        "n_healthy": healthy,
        "healthy_detected": summary["healthy_warned"],
        "healthy_share_detected": summary.get("healthy_warned_share"),
        "p_value": p,
        "beats_chance": beats_chance,
        "sentence": sentence,
        "rule": "peer-relative CUSUM above params.change.h on any metric",
        "median_lead_days": lead,
        "horizon_days": summary.get("horizon_days"),
        "healthy_ever_raised": summary.get("healthy_ever_raised"),
        "baseline": base or None,
        "beats_baseline": summary.get("beats_baseline"),
        "comparison": summary.get("comparison"),
    }


def _signed_days(x: float) -> str:
    """A duration for an interval bound that may be below zero: '-3 hours', '1 day 6 hours'."""
    return ("-" if x < 0 else "") + _days(abs(x))


def _against(c: Mapping[str, Any]) -> str:
    """'; device by device: 6 fewer healthy devices warned (95% interval ...)' or ''."""
    parts = []
    d, ci = c.get("healthy_warned_diff"), c.get("healthy_warned_interval")
    if d is not None and ci is not None:
        way, lo, hi = ("fewer", -ci[1], -ci[0]) if d <= 0 else ("more", ci[0], ci[1])
        parts.append(
            f"{abs(d)} {way} healthy devices warned (95% interval {fmt(lo)} to {fmt(hi)} {way}, "
            f"{format_p(float(c.get('healthy_warned_p', 1.0)), name='permutation p')})"
        )
    d, ci = c.get("lead_days_diff"), c.get("lead_days_interval")
    if d is not None and ci is not None:
        way, lo, hi = ("earlier", ci[0], ci[1]) if d >= 0 else ("later", -ci[1], -ci[0])
        parts.append(
            f"failures warned {_days(abs(d))} {way} on average (95% interval {_signed_days(lo)} "
            f"to {_signed_days(hi)} {way}, "
            f"{format_p(float(c.get('lead_days_p', 1.0)), name='permutation p')})"
        )
    return "; device by device against it: " + " and ".join(parts) if parts else ""
