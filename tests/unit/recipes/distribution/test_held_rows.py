"""The rows the distribution recipe holds in memory: all of them up to ``params.max_rows``,
else a seeded uniform sample drawn per row position, so every engine and every slicing of
the rows holds the same ones; the holdout drawn the same way."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from opslens.core.engine import LocalEngine
from opslens.recipes.distribution.rows import POSITION, draws_at, holdout_mask, with_holdout
from opslens.recipes.distribution.stages import held_rows


def test_draws_at_any_positions_equal_the_whole_stream() -> None:
    every = np.random.default_rng(11).random(50_000)
    rng = np.random.default_rng(0)
    for size in (1, 7, 1_000, 20_000):
        at = rng.choice(50_000, size, replace=False)
        # a small span makes the generator jump between many chunks
        assert np.array_equal(draws_at(at, 11, span=64), every[at])
        assert np.array_equal(draws_at(at, 11), every[at])
    assert draws_at(np.array([], dtype=np.int64), 11).size == 0


def _frame(n: int) -> pl.DataFrame:
    return LocalEngine().positions(pl.DataFrame({"v": np.arange(n) * 2.0}), POSITION)


def test_every_row_is_held_up_to_max_rows() -> None:
    frame = _frame(5_000)
    held = held_rows(LocalEngine(), frame, 5_000, max_rows=5_000, seed=1)
    assert held.equals(frame)


@pytest.mark.parametrize("slice_rows", [100_000, 777])
def test_beyond_max_rows_a_uniform_sample_the_same_for_any_slicing(slice_rows: int) -> None:
    frame = _frame(100_000)
    whole = held_rows(LocalEngine(), frame, 100_000, max_rows=10_000, seed=1)
    sliced = held_rows(LocalEngine(rows_per_slice=slice_rows), frame, 100_000, 10_000, seed=1)
    assert sliced.equals(whole)
    assert abs(whole.height - 10_000) < 400  # binomial(100,000, 0.1): sd 95
    assert whole[POSITION].is_sorted() and whole[POSITION].n_unique() == whole.height
    # uniform over the positions: each tenth of the rows holds about a tenth of the sample
    tenths = np.bincount(whole[POSITION].to_numpy() // 10_000, minlength=10)
    assert tenths.min() > 850 and tenths.max() < 1_150
    other = held_rows(LocalEngine(), frame, 100_000, max_rows=10_000, seed=2)
    assert not other[POSITION].equals(whole[POSITION])  # another seed, another sample


def test_the_holdout_without_time_is_the_seeded_draw_of_each_row() -> None:
    frame = _frame(10_000)
    flagged = with_holdout(frame, time=None, cutoff=0.0, share=0.25, seed=4)
    mask, _ = holdout_mask(frame, None, 0.25, seed=4)
    assert np.array_equal(flagged["holdout"].to_numpy(), mask)
    assert 0.23 < mask.mean() < 0.27
    # any slice of the rows flags its rows alike
    part = with_holdout(frame.slice(3_000, 500), time=None, cutoff=0.0, share=0.25, seed=4)
    assert np.array_equal(part["holdout"].to_numpy(), mask[3_000:3_500])


def test_a_prepared_table_without_positions_is_binned_as_before() -> None:
    """A run folder written before the positions: ``--stages quantize`` reuses its table."""
    from opslens.config import AnalysisConfig
    from opslens.core.recipe import StageContext
    from opslens.recipes.distribution.params import DistributionParams
    from opslens.recipes.distribution.stages import quantize_stage

    rng = np.random.default_rng(0)
    prepared = pl.DataFrame(
        {
            "comb": rng.choice(["a", "b", "c"], 600),
            "y": rng.gamma(2.0, 3.0, 600),
            "holdout": np.arange(600) >= 450,
        }
    )
    analysis = AnalysisConfig.model_validate(
        {
            "name": "t",
            "recipe": "distribution",
            "source": {"kind": "file", "path": "t.csv"},
            "columns": {"target": "y"},
        }
    )
    ctx = StageContext(analysis=analysis, params=DistributionParams(n_bins=5), random_state=0)
    with_positions = LocalEngine().positions(prepared, POSITION)
    old, new = (quantize_stage(ctx, f).values for f in (prepared, with_positions))
    assert old["quantized"].equals(new["quantized"])
    assert old["histograms"].equals(new["histograms"])
    assert int(new["histograms"]["n_rows"].sum()) == 450


@pytest.mark.parametrize("n", [1, 2, 999, 1_000, 20_001])
def test_exact_median_equals_polars(n: int) -> None:
    from opslens.recipes.distribution.stages import exact_median

    rng = np.random.default_rng(n)
    values = np.round(rng.gamma(2.0, 5.0, n), 1)  # ties, as durations in minutes have
    frame = pl.DataFrame({"_value": values}).with_columns(
        pl.when(pl.Series(rng.random(n) < 0.1)).then(None).otherwise(pl.col("_value"))
    )
    finite = int(frame["_value"].is_not_null().sum())
    want = frame["_value"].median()
    for sample in (values[:50], values, np.array([])):  # edges from a sample, all, none
        engine = LocalEngine(rows_per_slice=max(n // 3, 1))
        assert exact_median(engine, frame, finite, sample) == want
