"""The fleet baselines recover what each is built to see, and are scored with intervals.

Planted fleets: devices that drift slowly in their own history but stay inside the
fleet's range of means (the own-history rule finds them, the robust z of means does
not); devices at another level from the start (the other way round); devices that stay
flat while their peer group moves (only the peer comparison sees them).
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl
import pytest

from opslens.core.baselines import summarise
from opslens.recipes.fleet import RECIPE
from opslens.recipes.fleet.baselines import (
    auroc,
    fleet_baselines,
    max_robust_z_scores,
    own_history_scores,
    score_against_failures,
    unscored_reason,
)
from opslens.recipes.fleet.facts import FleetFacts
from opslens.recipes.fleet.narrative import fleet_narrative

N_DEVICES, DAYS, FAILED = 40, 30, 5
START = datetime(2024, 1, 1)


def _fleet(levels: np.ndarray, drift: np.ndarray, seed: int = 0) -> pl.DataFrame:
    """Hourly readings of two metrics: ``a`` = level + drift ramp over the last half + noise
    (sd 1), ``b`` = pure noise; ``drift[i]`` is device i's rise at the end, in noise sds."""
    rng = np.random.default_rng(seed)
    n = DAYS * 24
    t = np.arange(n)
    ramp = np.clip((t - n / 2) / (n / 2), 0, 1)
    a = levels[:, None] + drift[:, None] * ramp[None, :] + rng.normal(size=(levels.size, n))
    b = rng.normal(size=(levels.size, n))
    return pl.DataFrame(
        {
            "device": np.repeat([f"d{i:02d}" for i in range(levels.size)], n),
            "time": np.tile(np.datetime64(START, "us") + t.astype("timedelta64[h]"), levels.size),
            "a": a.ravel(),
            "b": b.ravel(),
        }
    )


def _aurocs(readings: pl.DataFrame, failed: set[str]) -> dict[str, float]:
    own = own_history_scores(readings, entity="device", time="time", metrics=["a", "b"])
    means = max_robust_z_scores(readings, entity="device", metrics=["a", "b"])
    out = score_against_failures(own, {"max_robust_z": means}, failed, entity="device")
    auc = next(s for s in out if s.metric == "auroc")
    assert auc.interval is not None
    lo, hi = auc.interval
    return {"own_history": auc.model, "max_robust_z": auc.value, "lo": lo, "hi": hi}


def test_slow_drift_within_the_fleets_range_is_found_by_own_history_only() -> None:
    levels = np.linspace(0.0, 40.0, N_DEVICES)  # means spread over 40 noise sds
    drifting = np.arange(17, 17 + FAILED)  # mid-fleet devices, levels 17.4 to 21.5
    drift = np.zeros(N_DEVICES)
    drift[drifting] = 6.0  # +6 sd by the end: the mean over the month moves by ~1.5
    readings = _fleet(levels, drift)
    r = _aurocs(readings, {f"d{i:02d}" for i in drifting})
    assert r["own_history"] >= 0.99, r
    assert r["max_robust_z"] <= 0.5, r  # mid-fleet means are the least extreme
    assert r["own_history"] - r["max_robust_z"] >= 0.5, r
    assert r["lo"] > 0.2, r  # 5 failures of 40: a wide interval, but well above 0


def test_a_level_apart_from_the_start_is_found_by_the_robust_z_of_means() -> None:
    rng = np.random.default_rng(3)
    levels = 20.0 + rng.normal(0.0, 2.0, N_DEVICES)
    levels[:FAILED] += 10.0  # 5 sds of the fleet's spread of levels, no change over time
    readings = _fleet(levels, np.zeros(N_DEVICES), seed=3)
    r = _aurocs(readings, {f"d{i:02d}" for i in range(FAILED)})
    assert r["max_robust_z"] >= 0.95, r
    assert r["own_history"] <= 0.75, r
    assert r["max_robust_z"] - r["own_history"] >= 0.25, r
    assert r["hi"] < 0, r  # own history (as the "model") loses: the interval is below 0


def test_the_peer_group_comparison_sees_a_device_that_does_not_follow_its_group() -> None:
    drift = np.full(N_DEVICES, -6.0)  # the whole group falls (a common cause) ...
    drift[:FAILED] = 0.0  # ... except 5 devices that stay where they were
    readings = _fleet(np.full(N_DEVICES, 10.0), drift).with_columns(pl.lit("g1").alias("site"))
    kwargs = {"entity": "device", "time": "time", "metrics": ["a"]}
    alone = own_history_scores(readings, **kwargs)  # type: ignore[arg-type]
    peers = own_history_scores(readings, group="site", **kwargs)  # type: ignore[arg-type]
    flat = pl.col("device").is_in([f"d{i:02d}" for i in range(FAILED)])
    assert alone.filter(flat)["score"].to_numpy().max() < 1.0  # its own history: nothing happened
    assert peers.filter(flat)["score"].to_numpy().min() > 3.0  # against its peers: 3+ MADs apart


def test_auroc_counts_ties_half_and_resamples_row_by_row() -> None:
    y = np.array([[1, 0, 0, 1], [1, 1, 1, 1]])
    s = np.array([[0.9, 0.1, 0.5, 0.5], [1.0, 2.0, 3.0, 4.0]])
    out = auroc(y, s)
    assert out[0] == pytest.approx(0.875)
    assert np.isnan(out[1])  # no negative to rank against


def test_recall_at_k_uses_k_failures_and_only_auroc_gates() -> None:
    ids = [f"d{i}" for i in range(20)]
    model = pl.DataFrame({"id": ids, "score": np.arange(20.0)[::-1]})  # d0 highest
    base = pl.DataFrame({"id": ids, "score": np.arange(20.0)})  # d19 highest
    failed = {"d0", "d1", "d2", "d19"}
    out = score_against_failures(model, {"own_history": base}, failed, entity="id")
    by = {s.metric: s for s in out}
    assert by["recall_at_k"].model == 0.75 and by["recall_at_k"].value == 0.25
    assert by["recall_at_k"].metric_label == "recall of the failed devices in the top 4"
    assert (by["auroc"].gate, by["recall_at_k"].gate) == (True, False)
    assert by["auroc"].unit == "devices, 4 failed" and by["auroc"].n == 20
    # AUROC 0.75 (model) vs 0.25 (baseline); the verdict names the winner
    assert by["auroc"].model == pytest.approx(0.75)
    assert summarise(out).verdict.startswith("the model beats a per-device rule on its own")


def test_without_known_failures_nothing_is_scored_and_the_facts_say_why() -> None:
    readings = _fleet(np.zeros(5), np.zeros(5))
    model = pl.DataFrame({"device": [f"d{i:02d}" for i in range(5)], "score": np.arange(5.0)})
    kwargs = {"entity": "device", "time": "time", "metrics": ["a"]}
    assert fleet_baselines(readings, model, set(), **kwargs) == []  # type: ignore[arg-type]
    everyone = set(model["device"].to_list())
    assert fleet_baselines(readings, model, everyone, **kwargs) == []  # type: ignore[arg-type]
    assert "no known failure among the 5 devices" in unscored_reason(0, 5)
    assert "all 5 devices failed" in unscored_reason(5, 5)
    facts = FleetFacts.model_validate(
        {
            "analysis": {"name": "f", "recipe": "fleet", "run_id": "r"},
            "failures": {"configured": False, "baselines_unscored": unscored_reason(0, 5)},
        }
    )
    summary = fleet_narrative(facts, []).summary
    assert summary.endswith(
        "The simple baselines were not scored: no known failures among the devices."
    )
    assert len(summary.split()) <= 40


def test_the_recipe_declares_both_baselines_and_the_summary_states_the_verdict() -> None:
    assert [b.name for b in RECIPE.baselines] == ["own_history", "max_robust_z"]
    ids = [f"d{i}" for i in range(10)]
    model = pl.DataFrame({"id": ids, "score": np.arange(10.0)})
    base = pl.DataFrame({"id": ids, "score": np.arange(10.0)[::-1]})
    scores = score_against_failures(model, {"max_robust_z": base}, {"d0", "d1"}, entity="id")
    facts = FleetFacts.model_validate(
        {
            "analysis": {"name": "f", "recipe": "fleet", "run_id": "r"},
            "baselines": summarise(scores).model_dump(),
        }
    )
    summary = fleet_narrative(facts, []).summary
    assert len(summary.split()) <= 40
    assert (
        "Against the baselines: the largest robust z of metric means is better on AUROC against "
        "known failures: 1 against 0 (10 devices, 2 failed)." in summary
    ), summary


@pytest.mark.parametrize("shuffled", [False, True], ids=["sorted", "shuffled"])
def test_chunked_baselines_score_as_the_whole_table(shuffled: bool) -> None:
    drift = np.zeros(N_DEVICES)
    drift[:FAILED] = 6.0
    readings = _fleet(np.linspace(0.0, 10.0, N_DEVICES), drift).with_columns(
        pl.format("s{}", pl.col("device").str.slice(2).cast(pl.Int64) % 3).alias("site")
    )
    if shuffled:  # devices not in runs: chunks are hash buckets of devices
        readings = readings.sample(fraction=1.0, shuffle=True, seed=2)
    kwargs = {"entity": "device", "time": "time", "metrics": ["a", "b"]}
    per_device = readings.height // N_DEVICES
    for group in (None, "site"):
        whole = own_history_scores(readings, group=group, rows_per_chunk=None, **kwargs)  # type: ignore[arg-type]
        means = max_robust_z_scores(
            readings, entity="device", metrics=["a", "b"], rows_per_chunk=None
        )
        for rows in (per_device, 7 * per_device):
            chunked = own_history_scores(readings, group=group, rows_per_chunk=rows, **kwargs)  # type: ignore[arg-type]
            assert chunked.equals(whole)  # the same floats, device by device
            # polars sums a group's mean in an order of its own (two whole-table runs differ
            # in the last bits too): the same to 1e-12 and the same ranking
            chunked_means = max_robust_z_scores(
                readings, entity="device", metrics=["a", "b"], rows_per_chunk=rows
            )
            assert chunked_means["device"].equals(means["device"])
            np.testing.assert_allclose(chunked_means["score"], means["score"], rtol=1e-12)
            assert chunked_means["score"].rank().equals(means["score"].rank())
        # the drifting devices lead the own-history ranking
        top = whole.sort("score", descending=True)["device"].head(FAILED).to_list()
        assert sorted(top) == [f"d{i:02d}" for i in range(FAILED)]


def test_counted_ranks_give_the_sorted_ranks_auroc_bit_for_bit() -> None:
    """The bootstrap and permutation AUROCs by counting equal rankdata's, ties included."""
    from scipy.stats import rankdata

    from opslens.recipes.fleet.baselines import _auroc_interval, _auroc_p_value

    rng = np.random.default_rng(1)
    n = 3000
    y = rng.random(n) < 0.05
    model = np.round(rng.normal(size=n), 2) + y  # ties, and the failures score higher
    model[:5] = -np.inf  # devices without a score
    base = np.round(rng.normal(size=n), 1)
    n_boot, chunk = 200, 2_000_000 // n
    # the reference: every resample's scores ranked again (scipy's rankdata in auroc)
    draws = np.random.default_rng(0)
    diffs = []
    for lo in range(0, n_boot, chunk):
        idx = draws.integers(0, n, size=(min(chunk, n_boot - lo), n))
        diffs.append(auroc(y[idx], model[idx]) - auroc(y[idx], base[idx]))
    lo_, hi_ = np.nanquantile(np.concatenate(diffs), [0.025, 0.975])
    assert _auroc_interval(y, model, base, n_boot=n_boot, random_state=0) == (lo_, hi_)
    a, b = rankdata(model) / n, rankdata(base) / n
    observed = abs(float(auroc(y, a) - auroc(y, b)))
    swaps = np.random.default_rng(0)
    hits = 0
    for _ in range(0, n_boot, chunk):
        swap = swaps.random((min(chunk, n_boot - _), n)) < 0.5
        pa, pb = np.where(swap, b, a), np.where(swap, a, b)
        ys = np.broadcast_to(y, pa.shape)
        hits += int(np.sum(np.abs(auroc(ys, pa) - auroc(ys, pb)) >= observed - 1e-12))
    assert _auroc_p_value(y, model, base, n_perm=n_boot, random_state=0) == (1 + hits) / (
        n_boot + 1
    )
    assert 0.6 < auroc(y, model) < 0.9 and lo_ > 0  # the planted failures: the model wins
