"""Plain-language findings for the fleet recipe, written from the numbers only.

Each sentence states numbers taken from its inputs (rare-device scores,
behaviour groups, group contrasts, failure enrichment, ranking quality, lead
times); nothing is inferred that the numbers do not show. Pass ``None`` for a
part that was not computed (e.g. no failure list) and its sentences are left out.

Example:
    >>> _devices(1), _devices(3)
    ('1 device', '3 devices')
"""

from __future__ import annotations

from typing import Any

import polars as pl

from opslens.cluster.groups import BehaviourGroups
from opslens.detect.population import RareDevices
from opslens.explain.contrasts import top_group_features
from opslens.explain.failures import RankingQuality
from opslens.explain.text import format_duration, format_p, plural

__all__ = ["fleet_findings"]

_METHOD_NAMES = {"kmeans": "K-Means", "dbscan": "DBSCAN", "agglomerative": "Agglomerative (Ward)"}


def _devices(n: int) -> str:
    return plural(n, "device")


def _rare_sentences(n_devices: int, rare: RareDevices) -> list[str]:
    n_rare = int(rare.scores["is_rare"].sum())
    q = 1.0 - rare.detector.contamination
    out = [
        f"{n_rare} of {n_devices} devices behave rarely (combined score above the fleet's "
        f"{100 * q:.3g}th percentile, from {plural(len(rare.detector.methods), 'detector')})."
    ]
    if rare.top.height:
        first = rare.top.row(0, named=True)
        ent = rare.top.columns[0]
        out.append(
            f"The most unusual device is {first[ent]} (combined score {first['combined']:.2f}), "
            f"driven by {first['deviating_features']}."
        )
    return out


def _group_sentences(groups: BehaviourGroups, contrasts: pl.DataFrame) -> list[str]:
    out: list[str] = []
    k = groups.k_choice
    if groups.best_method is None:
        out.append(
            "No clustering method finds two or more well-separated behaviour groups "
            f"(K-Means was asked for K={k.k})."
        )
        return out
    row = groups.summary.filter(pl.col("method") == groups.best_method).row(0, named=True)
    noise = f"; {row['n_noise']} devices fit no group" if row["n_noise"] else ""
    out.append(
        f"{_METHOD_NAMES.get(groups.best_method, groups.best_method)} separates the fleet best: "
        f"{row['n_groups']} behaviour groups, silhouette {row['silhouette']:.2f}{noise} "
        f"(K-Means: {k.reason})."
    )
    if contrasts.height == 0:
        return out
    sizes = dict(contrasts.select("group", "n_group").unique().iter_rows())
    tops = top_group_features(contrasts, 2)
    for g in sorted(sizes):
        feats = tops.get(int(g), [])
        if feats:
            parts = " and ".join(
                f"{'higher' if smd >= 0 else 'lower'} {name} (SMD {smd:+.1f}, q = {format_p(q)})"
                for name, smd, q in feats
            )
            out.append(f"Group {g} ({_devices(sizes[g])}) stands apart by {parts}.")
        else:
            out.append(
                f"Group {g} ({_devices(sizes[g])}) shows no feature that differs significantly "
                "from the rest of the fleet."
            )
    return out


def _failure_sentences(enrichment: pl.DataFrame) -> list[str]:
    n_fail = int(enrichment["n_failed"].sum())
    if n_fail == 0:
        return ["None of the known failed devices is in the data, so groups cannot be checked."]
    n_dev = int(enrichment["n_devices"].sum())
    rich = enrichment.filter(pl.col("enriched")).sort("p_value")
    out = [
        f"{n_fail} of {n_dev} devices are known to have failed "
        f"(fleet rate {100 * n_fail / n_dev:.3g}%)."
    ]
    for r in rich.iter_rows(named=True):
        out.append(
            f"{r['n_failed']} of the {n_fail} known failures are in "
            + (f"group {r['group']}" if r["group"] != -1 else "the devices that fit no group")
            + f" ({_devices(r['n_devices'])}): {r['lift']:.1f}× the fleet rate, "
            f"Fisher p = {format_p(r['p_value'])}."
        )
    if rich.height == 0:
        p_min = float(enrichment["p_value"].min())  # type: ignore[arg-type]
        out.append(
            "No group holds more known failures than chance would explain "
            f"(lowest one-sided Fisher p = {format_p(p_min)})."
        )
    return out


def _lead_sentence(lead: dict[str, Any]) -> list[str]:
    n, n_det, k = lead.get("n_failed", 0), lead.get("n_detected", 0), lead.get("top_k")
    if not n:
        return []
    top = f"top {k}" if k else "top of the ranking"
    if not n_det:
        return [f"None of the {n} failed devices entered the {top} before failing."]
    med = lead.get("median_lead_time")
    fa = lead.get("mean_false_alarms")
    when = f", a median {format_duration(med)} ahead" if med is not None else ""
    cost = (
        f", with {fa:.1f} never-failing devices in the {top} on average at that moment"
        if fa is not None
        else ""
    )
    return [f"{n_det} of {n} failed devices entered the {top} before failing{when}{cost}."]


def fleet_findings(
    *,
    n_devices: int,
    rare: RareDevices,
    groups: BehaviourGroups,
    contrasts: pl.DataFrame,
    enrichment: pl.DataFrame | None,
    ranking: RankingQuality | None,
    lead: dict[str, Any] | None,
) -> list[str]:
    """Short plain-language sentences summarising the fleet analysis, each built from its numbers.

    ``contrasts`` and ``enrichment`` should describe the labels of
    ``groups.best_method``.

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
    out = _rare_sentences(n_devices, rare)
    out += _group_sentences(groups, contrasts)
    if enrichment is not None and enrichment.height:
        out += _failure_sentences(enrichment)
    if ranking is not None:
        v = ranking.verdict
        if v.startswith("cannot"):
            out.append(f"Rare-device score against known failures: {v}.")
        else:
            out.append(
                f"Against the known failures, the rare-device score is {'' if v.startswith('not') else 'a '}{v}."
            )
    if lead is not None:
        out += _lead_sentence(lead)
    return out
