"""The local engine: slices and hash buckets of whole groups give one call's answer."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from opslens.core.engine import Engine, LocalEngine, buckets
from opslens.engines import make_engine
from opslens.engines.spark import SparkEngine
from opslens.recipes import project_from_mapping


def _frame(contiguous: bool) -> pl.DataFrame:
    rng = np.random.default_rng(0)
    f = pl.DataFrame({"g": np.repeat(np.arange(50), rng.integers(1, 40, 50)).astype(str)})
    f = f.with_columns(v=pl.Series(rng.normal(size=f.height)))
    return f if contiguous else f.sample(fraction=1.0, shuffle=True, seed=2)


def _per_group(f: pl.DataFrame) -> pl.DataFrame:
    return f.group_by("g").agg(pl.col("v").sum(), n=pl.len())


@pytest.mark.parametrize("contiguous", [True, False])
def test_parts_of_whole_groups_equal_one_call(contiguous: bool) -> None:
    frame = _frame(contiguous)
    seen: list[int] = []
    engine = LocalEngine(rows_per_slice=100)
    out = engine.per_group(
        frame,
        "g",
        lambda f: _per_group(f).with_columns(k=pl.lit(len(seen))),
        track=lambda parts: (seen.append(1) or p for p in parts),
    )
    whole = _per_group(frame)
    assert len(seen) >= frame.height // 100  # it really ran in parts
    assert out["g"].n_unique() == out.height == 50  # no group split between parts
    assert_frame_equal(out.drop("k").sort("g"), whole.sort("g"), check_exact=False, abs_tol=1e-12)


def test_rows_caps_the_part_size() -> None:
    frame = _frame(True)
    calls: list[int] = []
    LocalEngine().per_group(frame, "g", lambda f: calls.append(f.height) or f.head(0), rows=200)
    assert len(calls) >= frame.height // 200 and max(calls) < 260


def test_batches_keep_input_positions() -> None:
    frame = pl.DataFrame({"x": np.arange(1000)})
    answers = LocalEngine(rows_per_slice=128).map_batches(
        frame, lambda f: f.select(row=pl.int_range(pl.len(), dtype=pl.Int64), y=pl.col("x") * 2)
    )
    assert answers["row"].to_list() == list(range(1000))
    assert answers["y"].to_list() == [2 * i for i in range(1000)]


def test_buckets_are_seeded_and_in_range() -> None:
    keys = pl.Series([f"u{i}" for i in range(1000)])
    a, b = buckets(keys, 7), buckets(keys, 7)
    assert a.equals(b) and a.min() == 0 and a.max() == 6
    assert a.value_counts()["count"].min() > 100  # spread over every bucket


def test_make_engine_picks_the_configured_engine() -> None:
    base = {
        "analyses": [
            {
                "name": "a",
                "recipe": "fleet",
                "source": {"kind": "file", "path": "x.csv"},
                "columns": {"entity": "d", "time": "t", "metrics": ["v"]},
            }
        ]
    }
    local = make_engine(project_from_mapping(base))
    spark = make_engine(
        project_from_mapping({**base, "engine": "spark", "spark": {"master": "local[1]"}})
    )
    assert isinstance(local, LocalEngine) and isinstance(local, Engine)
    assert (
        isinstance(spark, SparkEngine) and isinstance(spark, Engine) and spark.master == "local[1]"
    )
    assert local.sessions(pl.DataFrame(), gap=timedelta(1), by="u", time="t") is None
