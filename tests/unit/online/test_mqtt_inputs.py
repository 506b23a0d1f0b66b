"""MQTT inputs that used to hang or go unanswered, against the real Mosquitto (127.0.0.1:1883;
with CI=true a missing broker fails): an invalid topic filter, port 99999 and a host that does
not resolve fail at once with one line and exit code 2; an empty message gets an ``error``
answer; NaN / Infinity readings are answered ``missing`` in valid JSON; a late sample is
answered ``out_of_order`` while a replay is dropped as a duplicate."""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.residual.fault import fault_samples, trained_project
from tests.fakes.cli import run_cli
from tests.unit.online.test_mqtt import Collector, _publisher, _ready, broker

from opslens.api import load_project
from opslens.online.mqtt import MqttSettings, dumps, filter_problem, stream_mqtt
from opslens.tracking.models import load_predictor

__all__ = ["broker"]  # the fixture, shared with test_mqtt


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trained_project(tmp_path_factory.mktemp("mqtt-inputs"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--mqtt-topic", "a/#/b"],
            "error: --mqtt-topic 'a/#/b' is not a valid MQTT topic filter ('#' must be the last "
            "level); fix: use '+' for a whole level",
        ),
        (
            ["--mqtt-topic", "a/b+/c"],
            "error: --mqtt-topic 'a/b+/c' is not a valid MQTT topic filter ('+' must be a whole",
        ),
        (
            ["--mqtt-topic", "m/+/s", "--mqtt-port", "99999"],
            "error: --mqtt-port 99999 is not a TCP port; fix: give --mqtt-port a number from 1 "
            "to 65535",
        ),
        (
            ["--mqtt-topic", "m/+/s", "--mqtt-host", "no-such-broker.invalid"],
            "error: the MQTT broker host 'no-such-broker.invalid' does not resolve (",
        ),
    ],
)
def test_bad_mqtt_settings_fail_at_once_in_one_line(
    project: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    start = time.monotonic()
    result = run_cli(["stream", "axes", "-p", str(project), *args], project.parent, monkeypatch)
    took = time.monotonic() - start
    assert result.code == 2, result.err
    lines = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "; fix: " in lines[0] and "Traceback" not in result.err
    assert lines[0].startswith(message), lines[0]
    assert took < 10.0  # not the 30 s connect timeout


def test_filter_rules() -> None:
    for good in ("a", "a/b", "+", "#", "a/+/b", "+/+", "a/#", "/a", "a//b"):
        assert filter_problem(good) is None, good
    for bad in ("a/#/b", "#/a", "a#", "a/b#", "a+", "+a/b", "a\x00b"):
        assert filter_problem(bad) is not None, bad


def test_answers_are_valid_json() -> None:
    text = dumps({"x": math.nan, "y": [math.inf, -math.inf, 1.5], "z": {"w": math.nan}})
    assert json.loads(text, parse_constant=lambda c: pytest.fail(c)) == {
        "x": None,
        "y": [None, None, 1.5],
        "z": {"w": None},
    }


def _strict(payload: bytes) -> dict[str, Any]:
    """JSON as a strict parser reads it: NaN and Infinity are not JSON."""
    out: dict[str, Any] = json.loads(payload, parse_constant=lambda c: {"bare": c})
    return out


def test_empty_missing_late_and_replayed_messages(broker: int, project: Path) -> None:
    p = load_predictor(project.parent / "runs", "axes").predictor
    samples, _ = fault_samples(p)
    topic, results = f"t/{uuid.uuid4().hex}/samples", f"t/{uuid.uuid4().hex}/levels"
    raw: list[bytes] = []
    collector = Collector(results, broker)
    collector.client.on_message = lambda c, u, m: (
        raw.append(bytes(m.payload)),
        collector.got.append(_strict(m.payload)),
    )
    settings = MqttSettings(
        topic=topic, analysis="axes", result_topic=results, port=broker, client_id=uuid.uuid4().hex
    )
    first, second, third = samples[0], samples[1], samples[2]
    nan_text = json.dumps({**second, "axis1": math.nan})  # Python writes NaN for a missing reading
    inf_text = json.dumps({**third, "axis2": math.inf})  # and Infinity
    late = {**samples[3], "seq": 0}
    messages = [
        json.dumps(first).encode(),
        b"",  # empty
        nan_text.encode(),
        inf_text.encode(),
        json.dumps(late).encode(),  # seq 0 after seq 3: late
        json.dumps(first).encode(),  # seq 1 again: a replay
        json.dumps(samples[3]).encode(),
    ]
    out: dict[str, Any] = {}
    thread = threading.Thread(
        target=lambda: out.update(
            summary=stream_mqtt(load_project(project), settings, max_messages=len(messages))
        )
    )
    thread.start()
    collector.wait(_ready(collector))
    publisher = _publisher(broker)
    for m in messages:
        publisher.publish(topic, m, qos=1).wait_for_publish(10)
    thread.join(30)
    collector.wait(lambda: len(collector.answers()) >= len(messages) - 1)
    publisher.loop_stop()
    collector.close()
    answers = collector.answers()
    assert len(answers) == len(messages) - 1  # all but the replay
    assert all(b"NaN" not in r and b"Infinity" not in r for r in raw)
    assert answers[0]["level"] == "ok"
    assert answers[1]["error"].startswith("message 2 on t/") and "is empty" in answers[1]["error"]
    assert (answers[2]["axis1_level"], answers[2]["axis1_residual"]) == ("missing", None)
    assert answers[2]["level"] == "missing"
    assert (answers[3]["axis2_level"], answers[3]["level"]) == ("missing", "missing")
    assert (answers[4]["out_of_order"], answers[4]["duplicate"], answers[4]["level"]) == (
        True,
        False,
        None,
    )
    assert answers[5]["seq"] == 4 and answers[5]["level"] == "ok"
    summary = out["summary"]
    assert (summary.scored, summary.rejected, summary.duplicates, summary.out_of_order) == (
        4,
        1,
        1,
        1,
    )
