"""The online checker: one sample at a time equals the whole array; state is JSON; duplicates."""

from __future__ import annotations

import json
import pickle

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opslens.errors import InstanceError
from opslens.recipes.residual.checker import OnlineChecker
from opslens.recipes.residual.predictor import ResidualPredictor
from opslens.recipes.residual.trend import AxisTrend


def predictor(t_long: int = 3, t_short: int = 2) -> ResidualPredictor:
    t = np.arange(50.0)
    models = {
        "a": AxisTrend("linear").fit(t, 0.3 * t + 1.0),
        "b": AxisTrend("piecewise", n_segments=2).fit(t, np.abs(t - 25.0)),
    }
    limits = {
        axis: {"MinC": 1.0, "MaxC": 2.5, "T_long_steps": t_long, "T_short_steps": t_short}
        for axis in models
    }
    return ResidualPredictor(models, limits, time_field="ts", t0_us=1_000_000)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(-4, 4, allow_nan=False), min_size=1, max_size=60),
    st.integers(1, 5),
    st.integers(1, 4),
    st.integers(1, 7),
)
def test_one_at_a_time_equals_the_array_and_chunks(
    residuals: list[float], t_long: int, t_short: int, chunk: int
) -> None:
    p = predictor(t_long, t_short)
    t = np.arange(len(residuals), dtype=float) * 1.5
    trend_a, trend_b = p.models["a"].predict(t), p.models["b"].predict(t)
    frame = pl.DataFrame(
        {"ts": 1.0 + t, "a": trend_a + np.array(residuals), "b": trend_b - np.array(residuals)}
    )
    one = OnlineChecker(p)
    answers = [one.update(row, stream="s") for row in frame.to_dicts()]
    whole = p.predict_frame(frame.with_columns(stream=pl.lit("s")))
    assert whole.to_dicts() == [{k: a[k] for k in whole.columns} for a in answers]
    chunked = OnlineChecker(p)
    parts = [
        chunked.update_many(frame.slice(i, chunk), stream="s")
        for i in range(0, frame.height, chunk)
    ]
    assert pl.concat(parts).equals(whole)
    assert chunked.state("s") == one.state("s")
    # the state is JSON: a service may keep it in Redis and resume from it
    again = OnlineChecker(p)
    half = len(answers) // 2
    for row in frame.to_dicts()[:half]:
        again.update(row, stream="s")
    restored = OnlineChecker(pickle.loads(pickle.dumps(p)))
    restored.states["s"] = json.loads(json.dumps(again.state("s")))
    rest = [restored.update(row, stream="s") for row in frame.to_dicts()[half:]]
    assert rest == answers[half:]


def test_duplicates_are_not_scored_twice_one_at_a_time_or_in_arrays() -> None:
    p = predictor()
    rows = [
        {"ts": 1.0 + i, "seq": s, "a": 0.3 * i + 1.0 + 2.0, "b": 0.0}
        for i, s in enumerate([1, 2, 2, 3, 1, 4])
    ]
    one = OnlineChecker(p)
    answers = [one.update(r) for r in rows]
    assert [a["duplicate"] for a in answers] == [False, False, True, False, True, False]
    assert [a["sample"] for a in answers] == [1, 2, None, 3, None, 4]
    assert [a["a_run"] for a in answers] == [1, 2, None, 3, None, 4]
    assert one.state("default")["n"] == 4
    frame = p.predict_frame(pl.DataFrame(rows))
    assert frame["a_run"].to_list() == [1, 2, None, 3, None, 4]
    # without seq the time orders the stream: time 1.0 is not above seq 4, nor a key seen
    late = p.step({"ts": 1.0, "a": 1.0, "b": 1.0}, one.state("default"))[0]
    assert (late["duplicate"], late["out_of_order"], late["level"]) == (False, True, None)


def test_streams_keep_separate_states() -> None:
    p = predictor(t_long=2)
    checker = OnlineChecker(p)
    high = {"a": 100.0, "b": 100.0}
    assert checker.update({"ts": 1.0, **high}, stream="x")["level"] == "ok"
    assert checker.update({"ts": 1.0, **high}, stream="y")["level"] == "ok"
    assert checker.update({"ts": 2.0, **high, "stream": "x"})["level"] == "error"
    assert checker.state("y")["runs"]["a"] == [1, 1]


@pytest.mark.parametrize(
    ("instance", "message"),
    [
        ({"ts": 1.0, "a": "high", "b": 1.0}, "axis 'a' is 'high', not a number"),
        ({"ts": 1.0, "a": 1.0}, "instance lacks 'b'"),
        ({"ts": "yesterday", "a": 1.0, "b": 1.0}, "'ts' value 'yesterday' is not a timestamp"),
        ({"ts": 1.0, "a": 1.0, "b": 1.0, "seq": "x"}, "'seq' is 'x', not a number"),
    ],
)
def test_bad_samples_are_instance_errors(instance: dict[str, object], message: str) -> None:
    with pytest.raises(InstanceError, match=message):
        predictor().step(instance, None)


def test_times_as_iso_text_timestamps_and_epoch_numbers_agree() -> None:
    p = predictor()
    iso = p.predict_one({"ts": "1970-01-01T00:00:11Z", "a": 1.0, "b": 1.0})
    epoch = p.predict_one({"ts": 11, "a": 1.0, "b": 1.0})
    assert iso == epoch and iso["time_s"] == 10.0
    frame = pl.DataFrame({"ts": ["1970-01-01T00:00:11+00:00"], "a": [1.0], "b": [1.0]})
    assert p.predict_frame(frame)["a_residual"].item() == iso["a_residual"]
