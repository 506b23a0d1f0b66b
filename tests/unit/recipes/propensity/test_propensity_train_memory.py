"""The train stage's memory, which sets the driver's peak at the production size (2,000,000
sample rows: about 0.8 GB per copy of the sample or of the design matrix): the fitted rows'
matrix is gathered from the sample column by column, never from a copy of the sample, and
the logistic fit works in that matrix itself; both give what they gave before."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from opslens.recipes.propensity.modelling import design_matrix, fit_logistic
from opslens.recipes.propensity.params import ModelParams

ROWS, FEATURES = 400_000, 40


def _sample() -> pl.DataFrame:
    rng = np.random.default_rng(7)
    data = {f"f{i}": rng.exponential(2.0, ROWS) for i in range(FEATURES)}
    return pl.DataFrame(data).with_columns(
        category=pl.Series(rng.choice(["a", "b", "c"], ROWS)),
        label=pl.Series((rng.random(ROWS) < 0.05).astype(np.int8)),
    )


def _peak(func: Callable[..., Any], *args: Any) -> tuple[Any, int]:
    """``func(*args)`` and the resident memory it added at its peak (polars allocates outside
    Python's tracemalloc): the process's high-water mark, reset first (Linux)."""
    Path("/proc/self/clear_refs").write_text("5")
    before = _status("VmRSS")
    out = func(*args)
    return out, _status("VmHWM") - before


def _status(key: str) -> int:
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith(key))
    return int(line.split()[1]) * 1024


def test_the_fitted_rows_matrix_is_gathered_without_a_copy_of_the_sample() -> None:
    sample = _sample()
    cols = [f"f{i}" for i in range(FEATURES)]
    rows = np.random.default_rng(1).permutation(ROWS)[: ROWS * 3 // 4]
    X, peak = _peak(design_matrix, sample, cols, ["a", "b", "c"], rows)
    np.testing.assert_array_equal(X, design_matrix(sample[rows], cols, ["a", "b", "c"]))
    # the matrix and one column at a time; gathering the sample first held another sample
    assert peak < 1.15 * X.nbytes, peak / X.nbytes


def test_the_logistic_fit_in_place_holds_one_copy_of_the_matrix_and_fits_the_same_model() -> None:
    """The train stage fits the logistic regression last, taking the log and scaling in the
    design matrix itself: one temporary copy at a time (the scaler's, then the regression's
    row-ordered one) instead of two, and the same model bit for bit."""
    sample = _sample()
    cols = [f"f{i}" for i in range(FEATURES)]
    y = sample["label"].to_numpy()
    raw = design_matrix(sample, cols, ["a", "b", "c"])
    plain, plain_peak = _peak(fit_logistic, raw, y, ModelParams(), 0)
    X = raw.copy(order="K")  # the same layout (column after column), so the same sums
    fitted, peak = _peak(lambda: fit_logistic(X, y, ModelParams(), 0, overwrite=True))
    assert peak < 1.3 * X.nbytes < plain_peak, (peak / X.nbytes, plain_peak / X.nbytes)
    np.testing.assert_array_equal(fitted[-1].coef_, plain[-1].coef_)
    np.testing.assert_array_equal(fitted.predict_proba(raw), plain.predict_proba(raw))
    assert fitted[1].get_params()["copy"] is True  # answering later copies its input again
    np.testing.assert_allclose(X.mean(axis=0), 0, atol=1e-9)  # X now holds the scaled features
