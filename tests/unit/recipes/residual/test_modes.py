"""Models on other signals and per operating mode: a planted mode switch gives no alarms with a
model per mode and alarms without one; flow follows pump speed through a regression; bad inputs
(a mode never seen in training, a regressor missing at scoring, a streaming period longer than
the warm-up) are one line naming the axis and the fix, exit 2 in batch, a per-sample error in a
stream."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from tests.fakes.cli import run_cli

from opslens.errors import InstanceError
from opslens.recipes import project_from_mapping
from opslens.recipes.residual.checker import OnlineChecker
from opslens.recipes.residual.conditional import AxisConditional
from opslens.runner import run_analysis


def pump(seed: int = 0, n: int = 3000) -> pl.DataFrame:
    """A pump, one sample a minute, at two operating points (low / high load): while the
    training window runs (the first 80%) at low load but for a half-hour high-load test
    run, then in shifts of 2-5 hours at each; speed drifts inside each mode, flow follows
    speed, temperature the load, with sensor noise."""
    rng = np.random.default_rng(seed)
    mode = np.zeros(n, dtype=int)
    start = int(rng.integers(n // 4, n // 2))
    mode[start : start + 30] = 1  # the commissioning test run at high load
    i, high = int(0.8 * n), 1
    while i < n:  # long shifts
        length = int(rng.integers(120, 300))
        mode[i : i + length] = high
        i, high = i + length, 1 - high
    speed = np.where(mode == 1, 1500.0, 1000.0) + np.cumsum(rng.normal(0, 2, n)) % 40
    flow = 0.02 * speed + rng.normal(0, 0.3, n)
    temp = np.where(mode == 1, 65.0, 55.0) + rng.normal(0, 0.5, n)
    ts = np.datetime64("2025-03-01T00:00:00", "us") + np.arange(n).astype("timedelta64[m]")
    return pl.DataFrame(
        {
            "ts": ts,
            "mode": np.where(mode == 1, "high", "low"),
            "speed": speed,
            "flow": flow,
            "temp": temp,
        }
    )


#: minute data: an alert must last 10 minutes, an error 5 (the defaults, 5 s and 3 s, are
#: one sample here, so noise alone would raise some)
SUSTAIN = {"thresholds": {"alert_seconds_default": 600.0, "error_seconds_default": 300.0}}


def _run(tmp_path: Path, frame: pl.DataFrame, params: dict[str, Any], metrics: list[str]) -> Any:
    project = project_from_mapping(
        {
            "tracking": {"enabled": False},
            "runs_dir": str(tmp_path / "runs"),
            "analyses": [
                {
                    "name": "pump",
                    "recipe": "residual",
                    "source": {"kind": "memory"},
                    "columns": {"time": "ts", "metrics": metrics},
                    "params": {"registry": {"root_dir": str(tmp_path / "registry")}, **params},
                }
            ],
        }
    )
    return run_analysis(project, "pump", frames={"frame": frame})


def test_a_mode_switch_alarms_without_a_model_per_mode_and_not_with_one(tmp_path: Path) -> None:
    frame = pump()
    plain = _run(tmp_path / "a", frame, SUSTAIN, ["temp"])
    per_mode = _run(tmp_path / "b", frame, {**SUSTAIN, "model": {"mode_column": "mode"}}, ["temp"])
    held = frame.height - plain.facts["prepare"]["rows_train"]
    plain_alarms = plain.facts["thresholds"]["holdout"]["temp"]["error"]
    mode_alarms = per_mode.facts["thresholds"]["holdout"]["temp"]["error"]
    assert plain_alarms > 0.2 * held  # the line against time alarms in every long high shift
    assert mode_alarms == 0
    fit = per_mode.facts["fit"]["axes"]["temp"]
    assert fit["family"] == "per-mode level"
    assert abs(fit["modes"]["high"]["intercept"] - 65.0) < 0.3  # 30 samples
    assert abs(fit["modes"]["low"]["intercept"] - 55.0) < 0.1


def test_flow_from_pump_speed_recovers_the_planted_slope(tmp_path: Path) -> None:
    params = {**SUSTAIN, "model": {"regressors": {"flow": ["speed"]}}}
    result = _run(tmp_path, pump(1), params, ["flow"])
    fit = result.facts["fit"]["axes"]["flow"]
    assert fit["family"] == "regression"
    assert abs(fit["modes"]["*"]["coef"][0] - 0.02) < 5e-4
    assert result.facts["thresholds"]["holdout"]["flow"]["error"] == 0


def test_a_stream_answers_a_bad_sample_with_an_error_and_keeps_going(tmp_path: Path) -> None:
    result = _run(
        tmp_path,
        pump(2),
        {"model": {"mode_column": "mode", "regressors": {"flow": ["speed"]}}},
        ["flow", "temp"],
    )
    checker = OnlineChecker(result.predictor())
    good = {"ts": "2025-03-03T03:00:00", "mode": "low", "speed": 1010.0, "flow": 20.2, "temp": 55}
    assert checker.update(good, stream="p")["level"] == "ok"
    with pytest.raises(InstanceError, match=r"^axis 'flow': mode 'idle' .*never seen in training"):
        checker.update({**good, "ts": "2025-03-03T03:01:00", "mode": "idle"}, stream="p")
    lacking = {k: v for k, v in good.items() if k != "speed"}
    with pytest.raises(InstanceError, match=r"^axis 'flow': input column 'speed' is missing; fix"):
        checker.update({**lacking, "ts": "2025-03-03T03:02:00"}, stream="p")
    assert checker.update({**good, "ts": "2025-03-03T03:03:00"}, stream="p")["sample"] == 2


PROJECT = """
tracking: {{enabled: false}}
analyses:
  - name: pump
    recipe: residual
    source: {{kind: file, path: pump.csv}}
    columns: {{time: ts, metrics: [flow, temp]}}
    params: {params}
"""


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            "{model: {mode_column: mode}}",
            "axis 'flow': mode 'standby' (column mode) was never seen in training",
        ),
        (
            "{mode: streaming, streaming: {period: 86400}}",
            "axis 'flow': params.streaming.period 86400 s is 1440 samples",
        ),
        (
            "{model: {regressors: {flow: [rpm]}}}",
            "axis 'flow': regressor column 'rpm' is not in",
        ),
    ],
)
def test_bad_training_inputs_are_one_line_errors_with_exit_code_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, params: str, message: str
) -> None:
    frame = pump(3)
    late = pl.arange(0, frame.height, eager=True) > int(frame.height * 0.9)
    frame.with_columns(
        pl.when(late).then(pl.lit("standby")).otherwise("mode").alias("mode")
    ).write_csv(tmp_path / "pump.csv")
    (tmp_path / "project.yaml").write_text(PROJECT.format(params=params))
    result = run_cli(["run", "project.yaml"], tmp_path, monkeypatch)
    assert result.code == 2, result.err
    lines = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "; fix: " in lines[0] and "Traceback" not in result.err
    assert message in lines[0], lines[0]


def test_a_regressor_missing_at_scoring_is_one_line_with_exit_code_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pump(4).write_csv(tmp_path / "pump.csv")
    params = "{model: {regressors: {flow: [speed]}}}"
    (tmp_path / "project.yaml").write_text(PROJECT.format(params=params))
    assert run_cli(["run", "project.yaml"], tmp_path, monkeypatch).code == 0
    pump(5).drop("speed").write_csv(tmp_path / "new.csv")
    result = run_cli(
        ["score", "pump", "--input", "new.csv", "--output", "out.csv"], tmp_path, monkeypatch
    )
    assert result.code == 2, result.err
    lines = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.err
    assert "axis 'flow': input column 'speed' is missing; fix: send 'speed'" in lines[0]


def test_bad_samples_at_scoring_stop_a_batch_and_are_per_sample_errors_in_a_stream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pump(6).write_csv(tmp_path / "pump.csv")
    params = "{model: {mode_column: mode, regressors: {flow: [speed]}}}"
    (tmp_path / "project.yaml").write_text(PROJECT.format(params=params))
    assert run_cli(["run", "project.yaml"], tmp_path, monkeypatch).code == 0
    # batch: a mode never seen in training is one line naming the axis, exit 2, nothing written
    new = pump(7, n=200).with_columns(mode=pl.lit("standby"))
    new.write_csv(tmp_path / "new.csv")
    result = run_cli(
        ["score", "pump", "--input", "new.csv", "--output", "out.csv"], tmp_path, monkeypatch
    )
    assert result.code == 2, result.err
    lines = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.err, result.err
    assert lines[0].startswith("error: axis 'flow': mode 'standby' (column mode) was never seen")
    assert "; fix: add samples of that mode to the training window" in lines[0]
    assert not (tmp_path / "out.csv").exists()
    # stream: the bad samples are answered with an error each, the others scored in order
    good = {"ts": "2025-03-04T03:00:00", "mode": "low", "speed": 1010.0, "flow": 20.2, "temp": 55}
    samples = [
        good,
        {**good, "ts": "2025-03-04T03:01:00", "mode": "standby"},
        {k: v for k, v in good.items() if k != "speed"} | {"ts": "2025-03-04T03:02:00"},
        {**good, "ts": "2025-03-04T03:03:00"},
    ]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(x) + "\n" for x in samples))
    args = "stream pump -p project.yaml --input in.jsonl --output out.jsonl --no-plots"
    assert run_cli(args.split(), tmp_path, monkeypatch).code == 0
    out = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [o["line"] for o in out] == [1, 2, 3, 4]  # nothing lost
    assert out[1]["error"].startswith("axis 'flow': mode 'standby' (column mode) was never seen")
    assert out[2]["error"].startswith("axis 'flow': input column 'speed' is missing; fix:")
    assert [o.get("sample") for o in out] == [1, None, None, 2]
    assert out[3]["level"] == "ok" and "error" not in out[3]


def test_conditional_model_is_a_scikit_learn_estimator() -> None:
    from sklearn.base import clone

    m = AxisConditional(("speed",), "mode", axis="flow")
    assert clone(m).get_params() == m.get_params()


def test_modes_found_by_clustering_speed_give_no_alarms_where_one_model_alarms(
    tmp_path: Path,
) -> None:
    frame = pump().drop("mode")  # no column names the mode: it is found from the speed
    plain = _run(tmp_path / "a", frame, SUSTAIN, ["temp"])
    found = _run(tmp_path / "b", frame, {**SUSTAIN, "model": {"mode_signals": ["speed"]}}, ["temp"])
    held = frame.height - plain.facts["prepare"]["rows_train"]
    assert plain.facts["thresholds"]["holdout"]["temp"]["error"] > 0.2 * held
    assert found.facts["thresholds"]["holdout"]["temp"]["error"] == 0
    modes = found.facts["fit"]["modes"]
    # auto: two modes (low and high load), chosen on held-out error over one to six
    assert modes["n_modes"] == 2 and set(modes["holdout_error"]) == {str(k) for k in range(1, 7)}
    assert modes["holdout_error"]["2"] < 0.5 * modes["holdout_error"]["1"]
    assert abs(modes["centres"]["mode1"]["speed"] - 1020.0) < 15.0
    assert abs(modes["centres"]["mode2"]["speed"] - 1520.0) < 15.0
    fit = found.facts["fit"]["axes"]["temp"]
    assert abs(fit["modes"]["mode1"]["intercept"] - 55.0) < 0.1
    assert abs(fit["modes"]["mode2"]["intercept"] - 65.0) < 0.3
    # online, the found modes answer one sample at a time as in arrays
    p = found.predictor()
    checker = OnlineChecker(p)
    tail = frame.tail(300)
    one = [checker.update(r, stream="s")["level"] for r in tail.to_dicts()]
    assert p.predict_frame(tail)["level"].to_list() == one
    assert one.count("error") == 0


def test_one_mode_is_chosen_when_the_machine_runs_at_one_point(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    n = 3000
    steady = pump(n=n).with_columns(  # one operating point: speed and temperature only noise
        speed=pl.Series(1000.0 + rng.normal(0, 5, n)), temp=pl.Series(55.0 + rng.normal(0, 0.5, n))
    )
    found = _run(tmp_path, steady, {**SUSTAIN, "model": {"mode_signals": ["speed"]}}, ["temp"])
    modes = found.facts["fit"]["modes"]
    assert modes["n_modes"] == 1, modes["reason"]
    assert found.facts["fit"]["axes"]["temp"]["family"] == "linear"  # its own family, no modes


def test_a_mode_signal_that_is_an_axis_is_refused(tmp_path: Path) -> None:
    from opslens.errors import ConfigError

    with pytest.raises(
        ConfigError, match=r"params\.model\.mode_signals names 'speed', which is an"
    ):
        _run(tmp_path, pump(), {"model": {"mode_signals": ["speed"]}}, ["speed", "temp"])


def _two_noises(seed: int = 0, n: int = 4000) -> tuple[pl.DataFrame, np.ndarray]:
    """Shifts of 2-5 hours alternate between a quiet low-load mode (temperature noise 0.1)
    and a rough high-load one (noise 1.0); in the held-out fifth, a low-load shift carries a
    fault: temperature 0.8 above normal for 40 minutes (8 quiet-mode deviations, less than
    the rough mode's own swings)."""
    rng = np.random.default_rng(seed)
    mode = np.zeros(n, dtype=int)
    i, high = 0, 0
    while i < n:
        length = int(rng.integers(120, 300))
        mode[i : i + length] = high
        i, high = i + length, 1 - high
    temp = np.where(mode == 1, 65.0 + rng.normal(0, 1.0, n), 55.0 + rng.normal(0, 0.1, n))
    low_late = np.flatnonzero((mode == 0) & (np.arange(n) > int(0.85 * n)))
    start = int(low_late[0]) + 20
    fault = np.zeros(n, dtype=bool)
    fault[start : start + 40] = True
    fault &= mode == 0
    temp = temp + np.where(fault, 0.8, 0.0)
    ts = np.datetime64("2025-03-01T00:00:00", "us") + np.arange(n).astype("timedelta64[m]")
    frame = pl.DataFrame({"ts": ts, "mode": np.where(mode == 1, "high", "low"), "temp": temp})
    return frame, fault


def test_limits_per_mode_catch_a_fault_the_pooled_limits_miss(tmp_path: Path) -> None:
    frame, fault = _two_noises()
    both = {**SUSTAIN["thresholds"], "direction": "both"}
    pooled = _run(
        tmp_path / "a", frame, {"model": {"mode_column": "mode"}, "thresholds": both}, ["temp"]
    )
    own = _run(
        tmp_path / "b",
        frame,
        {"model": {"mode_column": "mode"}, "thresholds": {**both, "per_mode": True}},
        ["temp"],
    )
    limits = own.facts["thresholds"]["axes"]["temp"]["modes"]
    assert limits["low"]["MaxC"] < 0.3 < 1.0 < limits["high"]["MaxC"]  # each mode's own noise
    held = frame.height - own.facts["prepare"]["rows_train"]
    in_fault = fault[-held:]
    for result, caught in ((pooled, False), (own, True)):
        levels = result.predictor().predict_frame(frame)["level"].to_numpy()[-held:]
        errors = levels == "error"
        assert bool(errors[in_fault].any()) is caught
        assert errors[~in_fault].sum() <= 0.01 * held  # no flood outside the fault
    # one sample at a time gives the same levels as the batch, per-mode limits included
    p = own.predictor()
    checker = OnlineChecker(p)
    tail = frame.tail(held)
    one = [checker.update(r, stream="s")["level"] for r in tail.to_dicts()]
    assert p.predict_frame(tail)["level"].to_list() == one
