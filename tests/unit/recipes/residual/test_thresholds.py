"""Threshold calibration on hand-computed fixtures, to the last digit."""

from __future__ import annotations

import numpy as np
import pytest

from opslens.recipes.residual.params import ResidualParams
from opslens.recipes.residual.thresholds import calibrate_axis, default_steps, run_lengths

HALVES = [0.5 * i for i in range(1, 22)]  # 0.5, 1.0, ..., 10.5: 21 positives, exact in binary


def test_percentiles_of_the_positive_residuals_only() -> None:
    # 21 positives → numpy's linear percentile at 75 is the 16th value (index 15.0), at 95 the 20th
    r = np.array([-4.0, *HALVES[:10], -1.0, *HALVES[10:], -0.25])
    t = calibrate_axis(r, dt_seconds=1.0, min_pos_for_trim=20, trim_top_ratio=0.02)
    assert t["MinC"] == 8.0 and t["MaxC"] == 10.0
    # 21 * 0.02 = 0.42 → floor 0: nothing trimmed
    assert t["policy"]["method"] == "percentile" and t["policy"]["n_trimmed"] == 0
    assert t["policy"]["n_positive"] == 21 and t["policy"]["n_residuals"] == 24


def test_trimming_on_drops_the_top_fraction_and_off_keeps_it() -> None:
    r = np.array([*HALVES, 100.0, -1.0, -2.0])  # 22 positives, one outlier
    kw = {"dt_seconds": 1.0, "minc_percentile": 50.0, "maxc_percentile": 100.0}
    on = calibrate_axis(r, trim_top_ratio=0.05, min_pos_for_trim=20, **kw)
    # floor(22 * 0.05) = 1 dropped → 21 left: median = 11th = 5.5, max = 10.5
    assert (on["MinC"], on["MaxC"]) == (5.5, 10.5)
    assert on["policy"]["method"] == "percentile_trimmed" and on["policy"]["n_trimmed"] == 1
    off = calibrate_axis(r, trim_top_ratio=0.0, min_pos_for_trim=20, **kw)
    # 22 values: median between the 11th and 12th (5.5, 6.0) = 5.75; max = the outlier
    assert (off["MinC"], off["MaxC"]) == (5.75, 100.0)
    # too few positives for trimming (22 < 30) and no fallback: untrimmed percentiles
    few = calibrate_axis(r, min_pos_for_trim=30, use_mad_fallback=False, **kw)
    assert (few["MinC"], few["MaxC"], few["policy"]["n_trimmed"]) == (5.75, 100.0, 0)


def test_median_mad_fallback_when_positives_are_too_few() -> None:
    r = np.array([-3.0, -1.0, 0.5, 2.0, -2.0, 1.0, -0.5])  # 3 positives < 20
    t = calibrate_axis(r, dt_seconds=1.0)
    # median of all 7 = -0.5; |r + 0.5| = 2.5 .5 1 2.5 1.5 1.5 0 → median 1.5
    assert t["policy"]["method"] == "median_mad"
    assert t["MinC"] == -0.5 + 2.0 * (1.4826 * 1.5)
    assert t["MaxC"] == -0.5 + 3.0 * (1.4826 * 1.5)
    assert round(t["MinC"], 10) == 3.9478 and round(t["MaxC"], 10) == 6.1717
    wider = calibrate_axis(r, dt_seconds=1.0, mad_minc_k=1.0, mad_maxc_k=4.0)
    assert wider["MinC"] == -0.5 + 1.0 * (1.4826 * 1.5)
    assert wider["MaxC"] == -0.5 + 4.0 * (1.4826 * 1.5)


def test_no_positive_residual_without_fallback_is_an_error() -> None:
    with pytest.raises(ValueError, match="no positive residuals"):
        calibrate_axis(np.array([-1.0, -2.0]), dt_seconds=1.0, use_mad_fallback=False)


def test_default_sustain_steps_from_seconds_and_dt() -> None:
    # the registry's example entry: dt 1.891 s → 5 s = 3 steps, 3 s = 2 steps
    assert (default_steps(5.0, 1.891), default_steps(3.0, 1.891)) == (3, 2)
    assert (default_steps(5.0, 1.0), default_steps(5.0, 2.5), default_steps(0.5, 2.0)) == (5, 2, 1)


def _runs_series(lengths: list[int]) -> np.ndarray:
    """3.0 in runs of ``lengths``, each followed by as many 1.0 and a -1.0: MinC (median) = 2."""
    out: list[float] = []
    for n in lengths:
        out += [3.0] * n + [1.0] * n + [-1.0]
    return np.array(out)


def test_run_length_quantiles_raise_the_steps_only_above_the_defaults() -> None:
    kw = {
        "dt_seconds": 1.0,
        "minc_percentile": 50.0,
        "maxc_percentile": 50.0,
        "trim_top_ratio": 0.0,
        "min_pos_for_trim": 1,
    }
    # runs above MinC = MaxC = 2: [8, 8, 8, 2]; 0.8-quantile 8 > 5 s default, median 8 > 3
    long = calibrate_axis(_runs_series([8, 8, 8, 2]), **kw)
    assert (long["MinC"], long["MaxC"]) == (2.0, 2.0)
    assert (long["T_long_steps"], long["T_short_steps"]) == (8, 8)
    assert long["policy"]["alert_run_quantile"] == 8.0
    # runs [2, 2, 2, 2]: shorter than the defaults, which stay (5 and 3 steps)
    short = calibrate_axis(_runs_series([2, 2, 2, 2]), **kw)
    assert (short["T_long_steps"], short["T_short_steps"]) == (5, 3)
    assert short["policy"]["T_long_default"] == 5 and short["policy"]["T_short_default"] == 3
    # runs [2, 7]: median 4.5 → ceil 5 > 3 (errors); 0.8-quantile 6 → 6 > 5 (alerts)
    mixed = calibrate_axis(_runs_series([2, 7]), **kw)
    assert mixed["policy"]["error_run_quantile"] == 4.5
    assert (mixed["T_long_steps"], mixed["T_short_steps"]) == (6, 5)
    # other quantiles: the 0.5-quantile for alerts too leaves 5; the 1.0 gives 7
    assert calibrate_axis(_runs_series([2, 7]), alert_quantile=0.5, **kw)["T_long_steps"] == 5
    assert calibrate_axis(_runs_series([2, 7]), alert_quantile=1.0, **kw)["T_long_steps"] == 7


def test_run_lengths() -> None:
    assert run_lengths(np.array([], dtype=bool)).tolist() == []
    assert run_lengths(np.array([True] * 4)).tolist() == [4]


def test_the_entry_has_the_registry_shape_and_records_the_policy() -> None:
    t = calibrate_axis(np.array(HALVES), dt_seconds=1.891)
    assert list(t)[:6] == ["MinC", "MaxC", "T_long_steps", "T_short_steps", "dt_seconds", "policy"]
    assert {
        k: t["policy"][k]
        for k in (
            "minc_percentile",
            "maxc_percentile",
            "alert_seconds_default",
            "error_seconds_default",
            "alert_quantile",
            "error_quantile",
        )
    } == {
        "minc_percentile": 75.0,
        "maxc_percentile": 95.0,
        "alert_seconds_default": 5.0,
        "error_seconds_default": 3.0,
        "alert_quantile": 0.8,
        "error_quantile": 0.5,
    }


def test_reference_notebook_settings_are_the_defaults() -> None:
    t = ResidualParams().thresholds
    assert (t.minc_percentile, t.maxc_percentile, t.trim_top_ratio, t.min_pos_for_trim) == (
        75.0,
        95.0,
        0.02,
        20,
    )
    assert (t.use_mad_fallback, t.alert_quantile, t.error_quantile) == (True, 0.8, 0.5)
    assert ResidualParams().prep.interpolate is False
