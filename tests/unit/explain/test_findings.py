"""Findings: every sentence states numbers that come from its inputs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import polars as pl
import pytest

from opslens.cluster.groups import BehaviourGroups, find_groups
from opslens.detect.population import RareDevices, rank_rare_devices
from opslens.explain.contrasts import group_contrasts, top_group_features
from opslens.explain.failures import RankingQuality, group_enrichment, ranking_quality
from opslens.explain.text import format_duration, format_p
from opslens.recipes.fleet.findings import METHOD_NAMES, fleet_findings


@dataclass(frozen=True)
class Inputs:
    fp: pl.DataFrame
    rare: RareDevices
    groups: BehaviourGroups
    labels: np.ndarray
    contrasts: pl.DataFrame
    enrichment: pl.DataFrame
    ranking: RankingQuality
    failed: set[str]


@pytest.fixture(scope="module")
def inputs() -> Inputs:
    """3 groups × 40 devices in 8 features; group "hot" runs high vibration and holds 8 failures."""
    rng = np.random.default_rng(0)
    truth = np.repeat([0, 1, 2], 40)
    X = rng.normal(size=(120, 8))
    X[:, 0] += 6.0 * (truth == 2)  # vibration__std
    X[:, 1] -= 6.0 * (truth == 1)  # temp__mean
    X[:, 2:4] += 5.0 * (truth == 0)[:, None]
    X[3, 5:8] += 9.0  # one odd device
    names = ["vibration__std", "temp__mean", *(f"f{j}" for j in range(2, 8))]
    ids = [f"dev{i:03d}" for i in range(120)]
    fp = pl.DataFrame({"device": ids, **{n: X[:, j] for j, n in enumerate(names)}})
    failed = {ids[i] for i in range(80, 88)} | {ids[10], ids[50]}
    rare = rank_rare_devices(fp, entity="device", top_n=5, methods=("isolation_forest", "ecod"))
    groups = find_groups(fp, entity="device", methods=("kmeans", "agglomerative"), k_max=5)
    assert groups.best_method is not None
    labels = groups.labels[groups.best_method].to_numpy()
    contrasts = group_contrasts(fp, labels, entity="device")
    enrichment = group_enrichment(labels, ids, failed)
    ranking = ranking_quality(rare.scores.select("device", "combined"), failed)
    return Inputs(fp, rare, groups, labels, contrasts, enrichment, ranking, failed)


def test_every_part_states_its_numbers(inputs: Inputs) -> None:
    lead = {
        "n_failed": 10,
        "n_detected": 7,
        "median_lead_time": timedelta(days=12, hours=5),
        "top_k": 10,
        "n_healthy": 110,
        "healthy_detected": 11,
        "healthy_median_lead_time": timedelta(days=3),
        "p_value": 2e-5,
        "beats_chance": True,
    }
    lines = fleet_findings(
        n_devices=120,
        rare=inputs.rare,
        groups=inputs.groups,
        contrasts=inputs.contrasts,
        enrichment=inputs.enrichment,
        ranking=inputs.ranking,
        lead=lead,
    )
    text = "\n".join(lines)
    hot = int(np.bincount(inputs.labels[80:120]).argmax())  # the group holding planted group 2
    row = inputs.enrichment.filter(pl.col("group") == hot).row(0, named=True)
    assert row["n_failed"] == 8
    # the report leads with the most enriched group, and what sets it apart, in plain words
    assert lines[0].startswith(
        f"8 of the 10 known failures are in group {hot} of "
        f"{METHOD_NAMES[str(inputs.groups.best_method)]} (40 devices): {row['lift']:.1f}× the "
        "fleet rate (Fisher p"
    )
    assert "it stands apart by higher vibration: spread (standard deviation)" in lines[0]

    n_rare = int(inputs.rare.scores["is_rare"].sum())
    assert lines[1].startswith(f"{n_rare} of 120 devices behave rarely by a fixed quota: the 5%")
    assert "(params.rare.contamination), a set share rather than a count of anomalies" in lines[1]
    top = inputs.rare.top.row(0, named=True)
    assert f"{top['device']} (combined score {top['combined']:.2f})" in lines[2]
    assert "σ" not in lines[2] and "__" not in text

    best = inputs.groups.summary.filter(pl.col("method") == inputs.groups.best_method).row(
        0, named=True
    )
    assert f"{best['n_groups']} behaviour groups, silhouette {best['silhouette']:.2f}" in text
    assert inputs.groups.k_choice.reason in text
    vib = top_group_features(inputs.contrasts, 2)[hot][0]
    assert vib[0] == "vibration__std"
    assert (
        f"Group {hot} (40 devices) stands apart by higher vibration: spread (standard deviation) "
        f"(SMD {vib[1]:+.1f}" in text
    )
    assert "10 of 120 devices are known to have failed (fleet rate 8.33%)." in text
    assert inputs.ranking.verdict in text
    assert (
        "7 of 10 failed devices entered the top 10 before failing (median 12 days 5 hours ahead); "
        "at matched pseudo-failure dates 11 of 110 healthy devices did (median 3 days ahead), "
        "so the warning beats chance (Fisher p = 2e-05)." in text
    )


def test_missing_parts_are_left_out(inputs: Inputs) -> None:
    lines = fleet_findings(
        n_devices=120,
        rare=inputs.rare,
        groups=inputs.groups,
        contrasts=inputs.contrasts,
        enrichment=None,
        ranking=None,
        lead=None,
    )
    text = "\n".join(lines)
    assert "Fisher" not in text and "AUROC" not in text and "before failing" not in text
    n_groups = inputs.contrasts["group"].n_unique()
    assert n_groups >= 3
    assert len(lines) == 2 + 1 + n_groups  # rare (2), best method (1), one per group


def test_too_few_failures_are_said_plainly(inputs: Inputs) -> None:
    spread = {f"dev{i:03d}" for i in (0, 41, 85)}  # three failures: too few for a verdict
    enrichment = group_enrichment(inputs.labels, inputs.fp["device"].to_list(), spread)
    ranking = ranking_quality(
        inputs.rare.scores.select("device", "combined"), spread, min_failures=5, permutations=200
    )
    lines = fleet_findings(
        n_devices=120,
        rare=inputs.rare,
        groups=inputs.groups,
        contrasts=inputs.contrasts,
        enrichment=enrichment,
        ranking=ranking,
        lead=None,
    )
    assert lines[0].endswith("but too few failures are known to call it a risk group.")
    assert (
        "With 3 known failures there are too few to tell whether any group or the rare-device "
        "score points at risk (a verdict needs at least 5)." in lines
    )
    assert "too few known failures to tell (3 known; a verdict needs at least 5)" in lines[-1]
    assert "useful risk indicator" not in " ".join(lines)


def test_formatters() -> None:
    assert format_p(3.2e-6) == "3e-06"
    assert format_p(0.012) == "0.012"
    assert format_p(1e-14, name="p") == "p < 1e-10"
    assert format_duration(timedelta(days=2, hours=16)) == "2 days 16 hours"
    assert format_duration(timedelta(days=1)) == "1 day"
    assert format_duration(timedelta(hours=5)) == "5 hours"
    assert format_duration(timedelta(minutes=30)) == "30 minutes"
    assert format_duration(-timedelta(hours=1, minutes=30)) == "-1 hour 30 minutes"
