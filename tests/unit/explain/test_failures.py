"""Known failures: enrichment, ranking quality, id validation and lead times, on exact examples."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest
from scipy.stats import fisher_exact
from sklearn.metrics import roc_auc_score

from opslens.errors import DataError, OpslensWarning
from opslens.explain.failures import (
    enrichment_by_method,
    group_enrichment,
    lead_time_summary,
    lead_times,
    ranking_quality,
    validate_failed_ids,
)

# --- enrichment ---------------------------------------------------------------------------------


def test_planted_group_is_enriched_with_exact_lift() -> None:
    ids = [f"d{i:03d}" for i in range(120)]
    labels = np.r_[np.zeros(20, int), np.ones(60, int), np.full(40, 2)]
    failed = {ids[i] for i in range(8)} | {ids[20], ids[90]}  # 8/20 in group 0, 2/100 elsewhere
    e = group_enrichment(labels, ids, failed)
    assert e.columns == [
        "group", "n_devices", "n_failed", "failure_rate", "lift", "odds_ratio", "p_value",
        "enriched",
    ]  # fmt: skip
    g0 = e.row(0, named=True)
    assert (g0["n_devices"], g0["n_failed"], g0["failure_rate"]) == (20, 8, 0.4)
    assert g0["lift"] == 4.8  # 0.4 / (10 / 120), exactly
    expected = fisher_exact([[8, 12], [2, 98]], alternative="greater")
    assert g0["p_value"] == pytest.approx(expected.pvalue, rel=1e-12)
    assert g0["p_value"] < 0.01 and g0["enriched"]
    assert g0["odds_ratio"] == pytest.approx(8 * 98 / (12 * 2))
    g1 = e.row(1, named=True)
    assert g1["n_failed"] == 1 and g1["lift"] == pytest.approx(0.2) and not g1["enriched"]


def test_enrichment_without_failures_and_with_noise_group() -> None:
    e = group_enrichment([-1, 0, 0, 1], ["a", "b", "c", "d"], set())
    assert e["group"].to_list() == [-1, 0, 1]
    assert e["lift"].is_nan().all() and not e["enriched"].any()
    with pytest.raises(DataError, match="3 group labels for 4 devices"):
        group_enrichment([0, 0, 1], ["a", "b", "c", "d"], {"a"})


# --- ranking quality ----------------------------------------------------------------------------


def test_precision_recall_auroc_exact_on_a_hand_example() -> None:
    ids = [f"d{i}" for i in range(10)]
    scores = pl.DataFrame({"device": ids, "score": np.arange(10, 0, -1, dtype=float)})
    failed = {"d0", "d2", "d7"}  # ranks 1, 3 and 8
    q = ranking_quality(scores, failed, ks=(1, 2, 3, 5, 10, 20))
    assert q.precision_at == {1: 1.0, 2: 0.5, 3: 2 / 3, 5: 0.4, 10: 0.3}
    assert q.recall_at == {1: 1 / 3, 2: 1 / 3, 3: 2 / 3, 5: 2 / 3, 10: 1.0}
    assert q.hits_at[5] == 2
    assert q.auroc == pytest.approx(15 / 21)  # pairs: 7 + 6 + 2 of 3 × 7
    y = [i in (0, 2, 7) for i in range(10)]
    assert q.auroc == pytest.approx(roc_auc_score(y, scores["score"].to_numpy()))
    assert (q.n_devices, q.n_failed, q.base_rate) == (10, 3, 0.3)


def test_auroc_matches_sklearn_on_random_scores_with_ties() -> None:
    rng = np.random.default_rng(0)
    s = np.round(rng.normal(size=300), 1)
    y = rng.random(300) < 0.1
    ids = [f"d{i}" for i in range(300)]
    frame = pl.DataFrame({"id": ids, "s": s})
    q = ranking_quality(frame, {i for i, f in zip(ids, y, strict=True) if f})
    assert q.auroc == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def _fleet_ranking(failed_ranks: list[int]) -> tuple[pl.DataFrame, set[str]]:
    ids = [f"d{i:03d}" for i in range(1, 101)]
    scores = pl.DataFrame({"id": ids, "score": np.linspace(1.0, 0.0, 100)})
    return scores, {f"d{r:03d}" for r in failed_ranks}


def test_verdicts() -> None:
    q = ranking_quality(*_fleet_ranking([1, 2, 3, 15]))
    assert q.useful
    assert q.auroc == pytest.approx(373 / 384)
    assert q.verdict == (
        "useful risk indicator: AUROC 0.971 and 3 of the top 10 devices failed (base rate 4%)"
    )
    q = ranking_quality(*_fleet_ranking([50, 70, 90, 100]))
    assert not q.useful and q.verdict.startswith("not a useful risk indicator: AUROC 0.2")
    q = ranking_quality(
        *_fleet_ranking([2, 60, 70, 80])
    )  # 1 of 10 = 2.5× the base rate, AUROC < 0.6
    assert not q.useful and q.verdict.startswith("weak risk indicator")
    q = ranking_quality(*_fleet_ranking([]))
    assert not q.useful and q.verdict.startswith("cannot judge") and np.isnan(q.auroc)


# --- failed ids ---------------------------------------------------------------------------------


def test_unknown_failed_ids_are_warned_not_fatal() -> None:
    with pytest.warns(OpslensWarning, match="2 of 3 failed-device ids are not in the data"):
        known, unknown = validate_failed_ids(["a", "b", "c"], ["b", "x9", "x1"])
    assert known == {"b"} and unknown == ["x1", "x9"]


# --- lead times ---------------------------------------------------------------------------------

T0 = datetime(2024, 3, 1)


def _planted_readings() -> pl.DataFrame:
    """Hourly readings for 20 days; the score is the standard deviation over the window.

    a: loud from day 10 (fails day 15); b: loud from day 16 (fails day 18);
    f: always quiet (fails day 12); c: healthy, one loud day (day 4-5) then slightly noisy;
    d, e: healthy and quiet. Values alternate ±amplitude, so std ∝ amplitude exactly.
    """
    hours = np.arange(20 * 24)
    sign = np.where(hours % 2 == 0, 1.0, -1.0)
    amp = {
        "a": np.where(hours >= 240, 5.0, 0.05),
        "b": np.where(hours >= 384, 3.0, 0.01),
        "c": np.where((hours >= 96) & (hours < 120), 10.0, 0.3),
        "d": np.full(hours.size, 0.1),
        "e": np.full(hours.size, 0.2),
        "f": np.full(hours.size, 0.15),
    }
    frames = [
        pl.DataFrame(
            {
                "dev": dev,
                "ts": [T0 + timedelta(hours=int(h) + 1) for h in hours],
                "v": a * sign,
            }
        )
        for dev, a in amp.items()
    ]
    return pl.concat(frames)


def _window_std(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.group_by("dev").agg(pl.col("v").std().alias("score"))


def test_lead_times_exact_on_a_planted_example() -> None:
    readings = _planted_readings()
    failures = {
        "a": T0 + timedelta(days=15),
        "b": T0 + timedelta(days=18),
        "f": T0 + timedelta(days=12),
        "zz": T0 + timedelta(days=3),
    }
    with pytest.warns(OpslensWarning, match="'zz'"):
        out = lead_times(
            readings,
            entity="dev",
            time="ts",
            failure_times=failures,
            score_window=_window_std,
            window=timedelta(days=1),
            step=timedelta(days=1),
            top_k=2,
            horizon=timedelta(days=10),
        )
    # checkpoints: day 2 (= day 12 - 10) .. day 17; window (t - 1 day, t].
    # a is loud in windows ending day 11 and later: first alert day 11, lead 4 days; the
    # other top-2 device then is c (healthy) → 1 false alarm. b: first alert day 17 beside a,
    # which is in the failure list → 0 false alarms. f never makes the top 2.
    rows = {r["dev"]: r for r in out.iter_rows(named=True)}
    assert out["dev"].to_list() == ["a", "b", "f"]
    assert rows["a"]["first_alert"] == T0 + timedelta(days=11)
    assert rows["a"]["lead_time"] == timedelta(days=4)
    assert rows["a"]["false_alarms"] == 1
    assert rows["b"]["first_alert"] == T0 + timedelta(days=17)
    assert rows["b"]["lead_time"] == timedelta(days=1)
    assert rows["b"]["false_alarms"] == 0
    assert rows["f"]["first_alert"] is None and rows["f"]["lead_time"] is None
    assert rows["f"]["false_alarms"] is None
    assert out["top_k"].to_list() == [2, 2, 2]

    summary = lead_time_summary(out)
    assert {k: summary[k] for k in ("n_failed", "n_detected", "share_detected")} == {
        "n_failed": 3,
        "n_detected": 2,
        "share_detected": pytest.approx(2 / 3),
    }
    assert summary["median_lead_time"] == timedelta(days=2, hours=12)
    assert summary["mean_false_alarms"] == 0.5 and summary["top_k"] == 2
    assert summary["n_healthy"] == 0 and summary["beats_chance"] is None


def test_lead_times_counts_false_alarms_at_the_alert_moment() -> None:
    readings = _planted_readings()
    # top 3: a still first alerts on day 11, now beside c and e (both healthy); b's alert
    # on day 17 shares the top 3 with a (failing) and c (healthy).
    out = lead_times(
        readings,
        entity="dev",
        time="ts",
        failure_times={"a": T0 + timedelta(days=15), "b": T0 + timedelta(days=18)},
        score_window=_window_std,
        window=timedelta(days=1),
        step=timedelta(days=1),
        top_k=3,
        horizon=timedelta(days=13),
    )
    rows = {r["dev"]: r for r in out.iter_rows(named=True)}
    assert rows["a"]["lead_time"] == timedelta(days=4) and rows["a"]["false_alarms"] == 2
    assert rows["b"]["lead_time"] == timedelta(days=1) and rows["b"]["false_alarms"] == 1


def test_lead_times_rejects_bad_arguments() -> None:
    readings = _planted_readings()
    kwargs = {
        "failure_times": {"a": T0 + timedelta(days=15)},
        "score_window": _window_std,
        "window": timedelta(days=1),
        "step": timedelta(days=1),
        "top_k": 2,
    }
    with pytest.raises(DataError, match="'when'"):
        lead_times(readings, entity="dev", time="when", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="not a datetime"):
        lead_times(readings, entity="dev", time="v", **kwargs)  # type: ignore[arg-type]
    kwargs["top_k"] = 0
    with pytest.raises(DataError, match="positive"):
        lead_times(readings, entity="dev", time="ts", **kwargs)  # type: ignore[arg-type]


# --- chance baseline, verdicts, every group of every method -------------------------------------


def _fleet_with_warnings(n: int, failing: int, warns: bool) -> tuple[pl.DataFrame, dict]:
    """Hourly readings for 30 days of ``n`` devices; ``failing`` fail at planted days.

    With ``warns`` a failing device gets loud in the 3 days before its failure; either way
    every device has one loud day at a random moment (the noise a healthy device shows).
    """
    rng = np.random.default_rng(4)
    hours = np.arange(30 * 24)
    sign = np.where(hours % 2 == 0, 1.0, -1.0)
    fail_day = {f"d{i:02d}": int(rng.integers(12, 29)) for i in range(failing)}
    frames = []
    for i in range(n):
        dev = f"d{i:02d}"
        amp = np.full(hours.size, 1.0 + 0.1 * rng.random())
        loud = int(rng.integers(0, 29)) * 24
        amp[loud : loud + 24] = 4.0
        if warns and dev in fail_day:
            end = fail_day[dev] * 24
            amp[end - 72 : end] = 6.0
        ts = [T0 + timedelta(hours=int(h) + 1) for h in hours]
        frames.append(pl.DataFrame({"dev": dev, "ts": ts, "v": amp * sign}))
    return pl.concat(frames), {d: T0 + timedelta(days=day) for d, day in fail_day.items()}


@pytest.mark.parametrize(("warns", "beats"), [(True, True), (False, False)])
def test_lead_time_is_judged_against_healthy_devices_at_pseudo_dates(
    warns: bool, beats: bool
) -> None:
    readings, failures = _fleet_with_warnings(60, 15, warns)
    out = lead_times(
        readings,
        entity="dev",
        time="ts",
        failure_times=failures,
        score_window=_window_std,
        window=timedelta(days=1),
        step=timedelta(days=1),
        top_k=4,
        horizon=timedelta(days=7),
        baseline=True,
        random_state=0,
    )
    assert out.filter(~pl.col("failed")).height == 45  # every healthy device scored
    healthy_dates = set(out.filter(~pl.col("failed"))["failure_time"].to_list())
    assert healthy_dates <= set(failures.values())  # matched to real failure dates
    summary = lead_time_summary(out)
    assert summary["n_healthy"] == 45 and summary["beats_chance"] is beats, summary
    if warns:
        assert summary["n_detected"] >= 13 and summary["p_value"] < 1e-3
    else:
        assert summary["p_value"] > 0.05
    again = lead_times(
        readings,
        entity="dev",
        time="ts",
        failure_times=failures,
        score_window=_window_std,
        window=timedelta(days=1),
        step=timedelta(days=1),
        top_k=4,
        horizon=timedelta(days=7),
        baseline=True,
        random_state=0,
    )
    assert again.equals(out)


def test_lead_time_counts_only_windows_inside_the_data() -> None:
    readings = _planted_readings()
    # c is loud on day 4-5 and "fails" on day 6; with a 5-day window and a 10-day horizon the
    # old count started at day -4 with windows that were mostly before the data began
    out = lead_times(
        readings,
        entity="dev",
        time="ts",
        failure_times={"c": T0 + timedelta(days=6)},
        score_window=_window_std,
        window=timedelta(days=5),
        step=timedelta(days=1),
        top_k=1,
        horizon=timedelta(days=10),
    )
    first_reading = T0 + timedelta(hours=1)
    assert out["first_alert"][0] >= first_reading + timedelta(days=5)
    assert out["first_alert"][0] == first_reading + timedelta(days=5)


def test_verdict_needs_enough_failures_and_a_significant_auroc() -> None:
    ids = [f"d{i:03d}" for i in range(200)]
    scores = pl.DataFrame({"id": ids, "s": np.linspace(1.0, 0.0, 200)})
    two = ranking_quality(scores, {"d000", "d001"}, min_failures=5, permutations=500)
    assert not two.useful and two.auroc == 1.0
    assert two.verdict.startswith("too few known failures to tell (2 known")
    strong = ranking_quality(
        scores, {f"d{i:03d}" for i in range(8)}, min_failures=5, permutations=500
    )
    assert strong.useful and strong.verdict.startswith("useful risk indicator")
    assert strong.auroc_p == pytest.approx(1 / 501)
    rng = np.random.default_rng(1)
    noise = pl.DataFrame({"id": ids, "s": rng.random(200)})
    chance = ranking_quality(
        noise, {f"d{i:03d}" for i in range(0, 200, 25)}, min_failures=5, permutations=500
    )
    assert not chance.useful and chance.auroc_p > 0.01


def test_enrichment_covers_every_group_of_every_method_with_one_correction() -> None:
    ids = [f"d{i:02d}" for i in range(60)]
    failed = {f"d{i:02d}" for i in range(50, 60)}
    labels = pl.DataFrame(
        {
            "id": ids,
            "kmeans": [0] * 30 + [1] * 30,  # failures diluted in group 1
            "dbscan": [0] * 50 + [-1] * 10,  # the noise holds all failures
        }
    )
    e = enrichment_by_method(labels, failed, entity="id")
    assert e.height == 4
    top = e.row(0, named=True)
    assert (top["method"], top["group"], top["n_failed"]) == ("dbscan", -1, 10) and top["enriched"]
    expected = np.asarray(e["p_value"]) * 4 / (np.argsort(np.argsort(e["p_value"])) + 1)
    assert top["q_value"] == pytest.approx(min(1.0, expected[0]))
