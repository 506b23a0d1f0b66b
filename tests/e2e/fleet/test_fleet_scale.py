"""Scaling the fleet recipe: incremental lead-time scoring gives exactly the full recomputation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import polars as pl
import pytest

from opslens.core.engine import LocalEngine
from opslens.core.recipe import StageContext
from opslens.detect.population import rank_rare_devices
from opslens.explain.failures import lead_times
from opslens.features.fingerprints import FingerprintConfig, RollingFingerprints, fleet_fingerprints
from opslens.recipes import project_from_mapping
from opslens.recipes.fleet.params import analysed_features
from opslens.recipes.fleet.rolling import rolling_window_scorer
from opslens.recipes.fleet.stages import _config
from opslens.synthetic.fleet import make_fleet

METRICS = ["temperature", "vibration", "current"]


def _context(methods: list[str]) -> StageContext:
    project = project_from_mapping(
        {
            "tracking": {"enabled": False},
            "analyses": [
                {
                    "name": "fleet",
                    "recipe": "fleet",
                    "source": {"kind": "memory"},
                    "columns": {"entity": "device_id", "time": "timestamp", "metrics": METRICS},
                    "params": {"lead_time": {"window": "3d", "step": "1d", "methods": methods}},
                }
            ],
        }
    )
    a = project.analysis("fleet")
    return StageContext(analysis=a, params=a.params, random_state=0)


@pytest.fixture(scope="module")
def readings() -> pl.DataFrame:
    """A small fleet with gaps; one device stops reporting half-way, one starts late."""
    r = make_fleet(n_devices=24, n_points=360, n_failing=4, seed=3).readings
    t0 = r["timestamp"].min()
    half = t0 + timedelta(hours=200)  # type: ignore[operator]
    late = t0 + timedelta(hours=120)  # type: ignore[operator]
    return r.filter(
        ~((pl.col("device_id") == "dev-0001") & (pl.col("timestamp") > half))
        & ~((pl.col("device_id") == "dev-0002") & (pl.col("timestamp") < late))
    )


def _full_recomputation(
    ctx: StageContext, config: FingerprintConfig
) -> Callable[[pl.DataFrame], pl.DataFrame]:
    """The scorer before the incremental one: fingerprint the window slice, rank it."""
    p = ctx.params
    min_readings = max(p.min_readings, config.window)

    def score(frame: pl.DataFrame) -> pl.DataFrame:
        counts = frame.group_by("device_id").len().filter(pl.col("len") >= min_readings)
        frame = frame.join(counts.select("device_id"), on="device_id", how="semi")
        fp = fleet_fingerprints(
            frame, entity="device_id", time="timestamp", metrics=METRICS, config=config
        )
        ranked = rank_rare_devices(
            analysed_features(fp, p),
            entity="device_id",
            top_n=1,
            random_state=0,
            methods=p.lead_time.methods,
        )
        return ranked.scores.select("device_id", pl.col("combined").alias("score"))

    return score


def _score_window(ctx: StageContext, readings: pl.DataFrame, config: FingerprintConfig) -> Any:
    cols = ctx.analysis.columns
    return rolling_window_scorer(
        readings,
        entity=str(cols.entity),
        time=str(cols.time),
        metrics=list(cols.metrics),
        params=ctx.params,
        config=config,
        random_state=ctx.random_state,
    )


def _checkpoints(readings: pl.DataFrame) -> list[datetime]:
    t0: datetime = readings["timestamp"].min()  # type: ignore[assignment]
    return [t0 + timedelta(days=3, hours=17 * i) for i in range(16)]


@pytest.mark.parametrize("methods", [["ecod"], ["ecod", "isolation_forest"]])
def test_incremental_scores_equal_the_full_recomputation_at_every_checkpoint(
    readings: pl.DataFrame, methods: list[str]
) -> None:
    ctx = _context(methods)
    config = _config(ctx, readings)
    window = ctx.params.lead_time.window
    incremental = _score_window(ctx, readings, config)
    full = _full_recomputation(ctx, config)
    data = readings.sort("timestamp")
    for t in _checkpoints(readings):
        frame = data.filter(pl.col("timestamp") > t - window, pl.col("timestamp") <= t)
        expected = full(frame).sort("device_id")
        got = incremental(t).sort("device_id")
        assert got.equals(expected), t  # exactly: same devices, bit-identical scores


def test_rolling_fingerprints_equal_the_slice_and_skip_unchanged_devices(
    readings: pl.DataFrame,
) -> None:
    config = FingerprintConfig(window=12, lags=(1, 24))
    window = timedelta(days=2)
    rolling = RollingFingerprints(
        readings,
        entity="device_id",
        time="timestamp",
        metrics=METRICS,
        window=window,
        config=config,
    )
    data = readings.sort("timestamp")
    moments = _checkpoints(readings)
    for t in moments:
        frame = data.filter(pl.col("timestamp") > t - window, pl.col("timestamp") <= t)
        expected = fleet_fingerprints(
            frame, entity="device_id", time="timestamp", metrics=METRICS, config=config
        )
        assert rolling.at(t).equals(expected, null_equal=True), t
    # dev-0001 stopped reporting: once its window is empty it is not recomputed
    n_devices = readings["device_id"].n_unique()
    assert rolling.recomputed < n_devices * len(moments)


def test_lead_times_with_the_incremental_scorer_equal_the_slice_scorer(
    readings: pl.DataFrame,
) -> None:
    ctx = _context(["ecod"])
    config = _config(ctx, readings)
    t0: datetime = readings["timestamp"].min()  # type: ignore[assignment]
    failures = {"dev-0003": t0 + timedelta(days=12), "dev-0004": t0 + timedelta(days=14)}
    common = {
        "entity": "device_id",
        "time": "timestamp",
        "failure_times": failures,
        "window": ctx.params.lead_time.window,
        "step": timedelta(days=1),
        "top_k": 5,
        "horizon": timedelta(days=8),
        "baseline": True,
    }
    old = lead_times(readings, score_window=_full_recomputation(ctx, config), **common)  # type: ignore[arg-type]
    new = lead_times(readings, score_at=_score_window(ctx, readings, config), **common)  # type: ignore[arg-type]
    assert new.equals(old)
    assert new.height == readings["device_id"].n_unique()


@pytest.mark.parametrize("order", ["sorted", "shuffled"])
def test_fingerprints_in_device_slices_equal_one_call(readings: pl.DataFrame, order: str) -> None:
    import opslens.recipes.fleet.stages as stages

    prepared = readings.sort(["device_id", "timestamp"])
    if order == "shuffled":  # devices not contiguous: hash buckets instead of slices
        prepared = prepared.sample(fraction=1.0, shuffle=True, seed=3)
    ctx = replace(_context(["ecod"]), engine=LocalEngine(rows_per_slice=prepared.height // 4))
    chunked = stages.fingerprint(ctx, prepared).values["fingerprints"]
    whole = fleet_fingerprints(
        prepared,
        entity="device_id",
        time="timestamp",
        metrics=METRICS,
        config=_config(ctx, prepared),
    )
    assert chunked.equals(whole, null_equal=True)
