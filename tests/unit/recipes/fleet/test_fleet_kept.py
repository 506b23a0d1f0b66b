"""Fleet's distributed path (:mod:`opslens.recipes.fleet.kept`) equals the local one.

Run on the local engine flagged ``distributed`` (every engine-contract call the Spark
path makes, in this process): prepare's facts, errors and readings under each data
policy, the sampling interval from per-device gap counts, and a whole run of the
recipe — the same as the local path. tests/e2e/spark runs the same on Spark.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import opslens.recipes as registry
import opslens.runner.run as runner
from opslens.config import AnalysisConfig
from opslens.core.engine import LocalEngine
from opslens.errors import DataError
from opslens.recipes.fleet.kept import _gaps, _interval, interval_of
from opslens.recipes.fleet.prepare import prepare, sampling_interval
from opslens.runner.stages import stage_context
from opslens.synthetic.fleet import make_fleet

SPREAD = LocalEngine(rows_per_slice=7, distributed=True)  # many slices: groups cut across calls


def _analysis(**params: Any) -> AnalysisConfig:
    analysis = {
        "name": "f",
        "recipe": "fleet",
        "source": {"kind": "memory"},
        "columns": {"entity": "d", "time": "t", "metrics": ["v", "w"], "peer_group": "site"},
        "params": {"min_readings": 3, **params},
    }
    return registry.project_from_mapping({"analyses": [analysis]}).analyses[0]


def _raw() -> pl.DataFrame:
    """Four devices (ids out of order), a duplicate pair, one device going back in time, one
    short device, nulls and NaNs, a null device id."""
    t = [datetime(2024, 1, 1) + timedelta(hours=h) for h in range(6)]
    rows = []
    for dev, site in (("c", "x"), ("a", "x"), ("b", "y"), ("e", "y")):
        for i, when in enumerate(t):
            rows.append((dev, site, when, float(i) + (dev == "b"), float(i % 3)))
    rows.append(("a", "x", t[2], 99.0, 1.0))  # a duplicate (a, t2)
    rows[14], rows[15] = rows[15], rows[14]  # device b goes back in time
    rows += [("s", "y", t[0], 1.0, 1.0), ("s", "y", t[1], float("nan"), None)]  # short
    rows.append((None, "x", t[0], 1.0, 1.0))
    return pl.DataFrame(rows, schema=["d", "site", "t", "v", "w"], orient="row").with_columns(
        pl.col("w").cast(pl.Float32)
    )


def _both(raw: pl.DataFrame, **params: Any) -> tuple[Any, Any]:
    analysis = _analysis(**params)
    local = prepare(stage_context(analysis, LocalEngine()), raw, None)
    kept = prepare(stage_context(analysis, SPREAD), raw, None)
    return local, kept


@pytest.mark.parametrize("duplicates", ["mean", "first", "last"])
def test_prepare_on_the_engine_equals_local(duplicates: str) -> None:
    local, kept = _both(_raw(), duplicates=duplicates, unsorted="sort", short_devices="drop")
    assert kept.facts == local.facts
    assert kept.facts["duplicates_merged"] == 1 and kept.facts["devices_sorted"] == 2
    assert kept.facts["devices_dropped_short"] == ["s"]
    a = local.values["readings"]
    b = kept.values["readings"].sort("d", "t").select(a.columns)
    assert_frame_equal(a, b)


@pytest.mark.parametrize(
    ("params", "said"),
    [
        ({}, "1 duplicate (device, timestamp) pair(s), e.g. device a at 2024-01-01 02:00:00"),
        ({"duplicates": "mean"}, "time is not increasing within 2 device(s) (a, b)"),
        ({"duplicates": "mean", "unsorted": "sort"}, "1 device(s) have fewer than 3 readings"),
    ],
)
def test_prepare_on_the_engine_raises_as_local(params: dict[str, Any], said: str) -> None:
    errors = []
    for engine in (LocalEngine(), SPREAD):
        with pytest.raises(DataError) as caught:
            prepare(stage_context(_analysis(**params), engine), _raw(), None)
        errors.append(str(caught.value))
    assert errors[0] == errors[1] and said in errors[0]


def test_interval_from_gap_counts_is_sampling_interval() -> None:
    rng = np.random.default_rng(1)
    for _ in range(100):
        rows: list[tuple[str, int]] = []
        for d in range(int(rng.integers(1, 6))):
            t = np.cumsum(rng.choice([1, 2, 3, 7, 3_600_000_000], size=int(rng.integers(1, 8))))
            rows += [(f"d{d}", int(x)) for x in t]
        frame = pl.DataFrame(rows, schema={"d": pl.String, "t": pl.Int64}, orient="row")
        frame = frame.with_columns(pl.col("t").cast(pl.Datetime("us")))
        gaps = _gaps(frame, entity="d", time="t")
        assert _interval(gaps, frame.schema["t"]) == sampling_interval(frame, "d", "t")
        assert interval_of(SPREAD, frame, "d", "t") == sampling_interval(frame, "d", "t")


def test_a_whole_run_on_the_engine_path_equals_local(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = make_fleet(n_devices=40, n_points=300, n_failing=6, seed=5)
    fleet.readings.write_parquet(tmp_path / "readings.parquet")
    failed = fleet.truth.filter(pl.col("failed")).select("device_id", "failure_time")
    failed.write_csv(tmp_path / "failures.csv")
    (tmp_path / "project.yaml").write_text(
        "tracking: {enabled: false}\n"
        "analyses:\n"
        "  - name: fleet\n"
        "    recipe: fleet\n"
        "    source: {kind: file, path: readings.parquet}\n"
        "    columns: {entity: device_id, time: timestamp, metrics: [temperature, current]}\n"
        "    params:\n"
        "      failures: {path: failures.csv}\n"
        "      lead_time: {window: 2d, step: 1d, horizon: 4d, top_k: 5}\n"
    )
    project = registry.load_project(tmp_path / "project.yaml")
    local = runner.run_analysis(project, "fleet")
    called: list[str] = []
    real = runner.make_engine

    def spread(p: Any) -> LocalEngine:
        called.append(real(p).name)
        return LocalEngine(rows_per_slice=2_000, distributed=True)

    monkeypatch.setattr(runner, "make_engine", spread)
    kept = runner.run_analysis(project, "fleet")
    assert called == ["local"]
    assert kept.metrics == local.metrics
    assert kept.facts == {**local.facts, "analysis": kept.facts["analysis"]}
    assert_frame_equal(local.table("fingerprints"), kept.table("fingerprints"))
