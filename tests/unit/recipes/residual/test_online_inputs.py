"""The residual online answers around bad and late samples, and the alarm-flood guard.

The guard: one alarm where a stream enters ``error``, none again for ``thresholds.hold_off``
samples, levels unchanged (``hold_off: 0``, the guard off, is for batch analysis: a live
stream served with it warns once; a model saved without it is guarded); NaN / Infinity / null readings are answered ``missing`` naming the
axis (valid JSON: no bare NaN); a late sample is ``out_of_order``, a replay ``duplicate``;
one at a time and arrays agree on all of it. Batch: ``inf``, values near 1e306 and a per-axis
setting naming no axis are one line with exit code 2.
"""

from __future__ import annotations

import json
import logging
import math
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from tests.fakes.cli import run_cli

from opslens.recipes.residual.checker import OnlineChecker, alarms_after
from opslens.recipes.residual.params import StreamingParams
from opslens.recipes.residual.predictor import ResidualPredictor, example_predictor
from opslens.recipes.residual.trend import AxisTrend


def _predictor(hold_off: int, *, streaming: StreamingParams | None = None) -> ResidualPredictor:
    flat = AxisTrend("linear").fit(np.array([0.0, 1e9]), np.array([1.0, 1.0]))
    limits = {"MinC": 5.0, "MaxC": 8.0, "T_long_steps": 1, "T_short_steps": 2, "dt_seconds": 1.0}
    return ResidualPredictor(
        {"a": flat, "b": flat},
        {"a": limits, "b": dict(limits)},
        time_field="ts",
        t0_us=0,
        hold_off=hold_off,
        streaming=streaming,
    )


def _bursts() -> list[dict[str, float]]:
    """Three error episodes on axis a: at samples 10, 20 and 60 (0-based), 4 samples each."""
    rows = []
    for i in range(80):
        high = any(s <= i < s + 4 for s in (10, 20, 60))
        rows.append({"ts": float(i), "seq": i + 1, "a": 20.0 if high else 1.0, "b": 1.0})
    return rows


def test_the_guard_raises_one_alarm_per_episode_and_none_within_the_hold_off() -> None:
    rows = _bursts()
    guarded = OnlineChecker(_predictor(hold_off=30))
    answers = [guarded.update(r) for r in rows]
    alarms = [i for i, a in enumerate(answers) if a["alarm"]]
    # each episode's error starts at its 2nd sample (T_short_steps 2); the 2nd is 10 after the 1st
    assert alarms == [11, 61]
    # the levels are the reference's: every episode is in error, guard or not
    free = [OnlineChecker(_predictor(hold_off=0)).update(r) for r in rows[:1]]
    plain = OnlineChecker(_predictor(hold_off=0))
    free = [plain.update(r) for r in rows]
    assert [a["level"] for a in free] == [a["level"] for a in answers]
    assert [i for i, a in enumerate(free) if a["alarm"]] == [11, 21, 61]
    # arrays give the same alarms, also when cut into blocks that split the hold-off
    p = _predictor(hold_off=30)
    frame = pl.DataFrame(rows)
    assert p.predict_frame(frame)["alarm"].to_list() == [a["alarm"] for a in answers]
    blocks = OnlineChecker(p)
    parts = [blocks.update_many(frame.slice(lo, 15)) for lo in range(0, 80, 15)]
    assert pl.concat(parts)["alarm"].to_list() == [a["alarm"] for a in answers]


@pytest.mark.parametrize("streaming", [None, StreamingParams(warmup_samples=10, window=5)])
def test_a_live_stream_with_the_guard_off_warns_once_and_a_batch_does_not(
    streaming: StreamingParams | None, caplog: pytest.LogCaptureFixture
) -> None:
    off = streaming.model_copy(update={"hold_off": 0}) if streaming is not None else None
    key = "streaming.hold_off" if streaming is not None else "thresholds.hold_off"
    rows = _bursts()
    with caplog.at_level(logging.WARNING, logger="opslens.residual"):
        _predictor(hold_off=0, streaming=off).predict_frame(pl.DataFrame(rows))  # batch: fine
        assert "alarm-flood guard is off" not in caplog.text
        checker = OnlineChecker(_predictor(hold_off=0, streaming=off))
        for r in rows:
            checker.update(r)
        assert caplog.text.count(f"params.{key} is 0: the alarm-flood guard is off") == 1
        assert f"fix: retrain with params.{key}: 288 (the default)" in caplog.text
        caplog.clear()
        guarded = OnlineChecker(_predictor(hold_off=30, streaming=streaming))
        for r in rows:
            guarded.update(r)
        assert "alarm-flood guard" not in caplog.text


def test_a_model_saved_before_the_guard_existed_is_guarded_by_default() -> None:
    p = _predictor(hold_off=0)
    del p.__dict__["hold_off"]  # as a model pickled before thresholds.hold_off existed
    checker = OnlineChecker(p)
    answers = [checker.update(r) for r in _bursts()]
    assert [i for i, a in enumerate(answers) if a["alarm"]] == [11]  # 21, 61 within 288
    built = ResidualPredictor(p.models, p.thresholds, time_field="ts", t0_us=0)
    assert built.hold_off == 288


def test_alarms_after_continues_a_state() -> None:
    error = np.array([True, False, True, False, False, True])
    alarm, was_error, quiet = alarms_after(error[:3], was_error=False, quiet=0, hold_off=2)
    rest, _, _ = alarms_after(error[3:], was_error=was_error, quiet=quiet, hold_off=2)
    whole = alarms_after(error, was_error=False, quiet=0, hold_off=2)[0]
    assert np.r_[alarm, rest].tolist() == whole.tolist() == [True, False, False, False, False, True]


@pytest.mark.parametrize("streaming", [None, StreamingParams(warmup_samples=10, window=5)])
def test_nan_infinity_and_null_readings_are_missing_naming_the_axis(
    streaming: StreamingParams | None,
) -> None:
    p = _predictor(hold_off=0, streaming=streaming)
    rows: list[dict[str, object]] = [
        {"ts": float(i), "a": 1.0 + 0.01 * (i % 3), "b": 1.0} for i in range(12)
    ]
    bad = [math.nan, math.inf, -math.inf, None]
    rows += [{"ts": 12.0 + k, "a": v, "b": 1.0} for k, v in enumerate(bad)]
    rows.append({"ts": 16.0, "a": 1.0, "b": 1.0})
    checker = OnlineChecker(p)
    answers = [checker.update(r) for r in rows]
    for a in answers[12:16]:
        assert (a["a_level"], a["a_residual"], a["b_level"], a["level"]) == (
            "missing",
            None,
            "ok",
            "missing",
        )
        # what MQTT and the service send: valid JSON, no bare NaN or Infinity
        json.dumps(a, allow_nan=False)
    assert answers[16]["level"] == "ok"
    frame = pl.DataFrame(
        {k: [r[k] for r in rows] for k in ("ts", "a", "b")},
        schema={"ts": pl.Float64, "a": pl.Float64, "b": pl.Float64},
    )
    in_arrays = p.predict_frame(frame)
    assert in_arrays["a_level"].to_list() == [a["a_level"] for a in answers]
    assert in_arrays["level"].to_list() == [a["level"] for a in answers]
    assert in_arrays["a_residual"].is_null().to_list()[12:16] == [True] * 4


def test_an_alert_outranks_a_missing_reading() -> None:
    p = example_predictor()  # MinC 5 alert after 2
    checker = OnlineChecker(p)
    checker.update({"ts": 0.0, "axis1": 10.0})
    assert checker.update({"ts": 1.0, "axis1": 10.0})["level"] == "alert"
    assert checker.update({"ts": 2.0, "axis1": math.nan})["level"] == "missing"


@pytest.mark.parametrize("streaming", [None, StreamingParams(warmup_samples=10, window=5)])
def test_a_late_sample_is_out_of_order_and_a_replay_a_duplicate(
    streaming: StreamingParams | None,
) -> None:
    p = _predictor(hold_off=0, streaming=streaming)
    seqs = [1, 2, 3, 5, 4, 5, 2, 6]  # 4 came late; 5 and 2 are replays
    rows = [{"ts": float(i), "seq": s, "a": 1.0, "b": 1.0} for i, s in enumerate(seqs)]
    checker = OnlineChecker(p)
    answers = [checker.update(r) for r in rows]
    assert [a["out_of_order"] for a in answers] == [0, 0, 0, 0, 1, 0, 0, 0]
    assert [a["duplicate"] for a in answers] == [0, 0, 0, 0, 0, 1, 1, 0]
    assert [a["level"] is None for a in answers] == [0, 0, 0, 0, 1, 1, 1, 0]
    frame = p.predict_frame(pl.DataFrame(rows))
    assert frame["out_of_order"].to_list() == [a["out_of_order"] for a in answers]
    assert frame["duplicate"].to_list() == [a["duplicate"] for a in answers]
    # the state is JSON and carries the newest keys: a restored stream tells them apart too
    restored = json.loads(json.dumps(checker.state()))
    assert p.step({"ts": 9.0, "seq": 6, "a": 1.0, "b": 1.0}, restored)[0]["duplicate"]
    assert p.step({"ts": 9.0, "seq": 0, "a": 1.0, "b": 1.0}, restored)[0]["out_of_order"]


PROJECT = """
tracking: {{enabled: false}}
analyses:
  - name: axes
    recipe: residual
    source: {{kind: file, path: axes.csv}}
    columns: {{time: ts, metrics: [a, b]}}
    params: {params}
"""


@pytest.mark.parametrize(
    ("value", "params", "message"),
    [
        (math.inf, "{}", "axis 'a' of "),
        (1e306, "{}", "axis 'a' of "),
        (1.0, "{model: {axes: {c: huber}}}", "params.model.axes names axis 'c', which is not"),
        (1.0, "{thresholds: {directions: {z: both}}}", "params.thresholds.directions names axis"),
    ],
)
def test_bad_values_and_unknown_axes_are_one_line_errors_with_exit_code_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: float, params: str, message: str
) -> None:
    n = 200
    a = 1.0 + 0.01 * np.arange(n) + np.sin(np.arange(n))
    a[150] = value if value != 1.0 else a[150]
    ts = np.datetime64("2025-01-01T00:00:00", "ms") + (1000 * np.arange(n)).astype(
        "timedelta64[ms]"
    )
    pl.DataFrame({"ts": ts, "a": a, "b": np.cos(np.arange(n)) + 3.0}).write_csv(
        tmp_path / "axes.csv"
    )
    (tmp_path / "project.yaml").write_text(PROJECT.format(params=params))
    result = run_cli(["run", "project.yaml"], tmp_path, monkeypatch)
    assert result.code == 2, result.err
    lines = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "; fix: " in lines[0] and "Traceback" not in result.err
    assert message in lines[0], lines[0]
    if value == math.inf:
        assert "holds 1 infinite value(s) (row 151 the first)" in lines[0]
    if value == 1e306:
        assert "magnitude 1e+306, beyond 1e+100; fix: rescale 'a'" in lines[0]


@pytest.mark.parametrize("streaming", [None, StreamingParams(warmup_samples=20, window=9)])
def test_a_stream_the_model_no_longer_fits_says_so_once(
    streaming: StreamingParams | None, caplog: pytest.LogCaptureFixture
) -> None:
    """A change that stays (a level shift against the reference's trend; noise 100 times
    larger for the streaming mode, whose rolling median follows a shift): 100 samples per
    window, 20% allowed; from sample 150 on (nearly) every sample is beyond the limits, so
    the window ending at sample 200 says so, and nothing says it again."""
    p = _predictor(hold_off=0, streaming=streaming)
    p.fit_watch = (100, 0.2)
    rng = np.random.default_rng(0)
    a = 1.0 + rng.normal(0, 0.01, 400)
    if streaming is None:
        a[150:] += 30.0
    else:
        a[150:] += rng.normal(0, 1.0, 250)
    rows = [{"ts": float(i), "a": float(a[i]), "b": 1.0} for i in range(400)]
    checker = OnlineChecker(p)
    with caplog.at_level("WARNING", logger="opslens.residual"):
        for r in rows:
            checker.update(r)
    said = [r.message for r in caplog.records if "no longer fits" in r.message]
    assert len(said) == 1, said
    assert re.match(
        r"^(4\d|50)% of the last 100 samples of this stream \(up to sample 200\)", said[0]
    )
    assert "fix: recalibrate it (opslens retrain NAME" in said[0]
    state = checker.state()
    assert state is not None and state["unfit"] is True
    # in arrays, cut anywhere: the same warning at the same sample, the same state
    caplog.clear()
    blocks = OnlineChecker(p)
    with caplog.at_level("WARNING", logger="opslens.residual"):
        frame = pl.DataFrame(rows)
        for lo in range(0, 400, 70):
            blocks.update_many(frame.slice(lo, 70))
    again = [r.message for r in caplog.records if "no longer fits" in r.message]
    assert again == said
    other = blocks.state()
    assert other is not None
    assert {k: other[k] for k in ("fit_n", "fit_bad", "unfit")} == {
        k: state[k] for k in ("fit_n", "fit_bad", "unfit")
    }


def test_a_stream_that_fits_never_says_so(caplog: pytest.LogCaptureFixture) -> None:
    p = _predictor(hold_off=0)
    p.fit_watch = (50, 0.2)
    checker = OnlineChecker(p)
    with caplog.at_level("WARNING", logger="opslens.residual"):
        for i in range(300):
            checker.update({"ts": float(i), "a": 1.0 + (20.0 if i % 10 == 0 else 0.0), "b": 1.0})
    assert not [r for r in caplog.records if "no longer fits" in r.message]  # 10% < 20%
