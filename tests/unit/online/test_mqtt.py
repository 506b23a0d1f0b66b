"""MQTT stream against the real Mosquitto (127.0.0.1:1883; with CI=true a missing broker fails):
the planted fault's levels at the predicted samples, no sample scored twice, the CLI, and a
broker that goes away and comes back (a Mosquitto this test starts on a free port)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from tests.conftest import _service_missing
from tests.e2e.residual.fault import fault_samples, trained_project

from opslens.api import load_project
from opslens.online.mqtt import MqttSettings, MqttStream, stream_mqtt
from opslens.tracking.models import load_predictor

HOST, PORT = "127.0.0.1", 1883


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def broker() -> int:
    if not _reachable(PORT):
        _service_missing(f"Mosquitto at {HOST}:{PORT}", ConnectionRefusedError("refused"))
    return PORT


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trained_project(tmp_path_factory.mktemp("mqtt"))


class Collector:
    """Subscribes to a result topic (again after every reconnect) and keeps what arrives."""

    def __init__(self, topic: str, port: int) -> None:
        self.got: list[dict[str, Any]] = []
        self.subscribed = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"c-{uuid.uuid4().hex}"
        )
        self.client.reconnect_delay_set(1, 2)
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = lambda c, u, m: self.got.append(json.loads(m.payload))
        self.client.connect_async(HOST, port)
        self.client.loop_start()
        assert self.subscribed.wait(10)

    def answers(self) -> list[dict[str, Any]]:
        return [g for g in self.got if "status" not in g]

    def wait(self, done: Callable[[], bool], timeout: float = 20.0) -> None:
        end = time.monotonic() + timeout
        while not done() and time.monotonic() < end:
            time.sleep(0.05)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _publisher(port: int) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"p-{uuid.uuid4().hex}")
    client.reconnect_delay_set(1, 2)
    client.connect(HOST, port)
    client.loop_start()
    return client


def _send(client: mqtt.Client, topic: str, samples: list[dict[str, Any]]) -> None:
    for s in samples:
        client.publish(topic, json.dumps(s), qos=1).wait_for_publish(10)


def _ready(c: Collector) -> Callable[[], bool]:
    return lambda: any(g.get("status") == "ready" for g in c.got)


def test_planted_fault_levels_over_mqtt_and_no_sample_scored_twice(
    broker: int, project: Path
) -> None:
    p = load_predictor(project.parent / "runs", "axes").predictor
    samples, expected = fault_samples(p)
    topic, results = f"t/{uuid.uuid4().hex}/samples", f"t/{uuid.uuid4().hex}/levels"
    collector = Collector(results, broker)
    settings = MqttSettings(
        topic=topic,
        analysis="axes",
        result_topic=results,
        port=broker,
        client_id=f"s-{uuid.uuid4().hex}",
    )
    out: dict[str, Any] = {}
    thread = threading.Thread(
        target=lambda: out.update(
            summary=stream_mqtt(load_project(project), settings, max_messages=len(samples) + 2)
        )
    )
    thread.start()
    collector.wait(_ready(collector))
    publisher = _publisher(broker)
    _send(publisher, topic, [*samples[:5], samples[4], *samples[5:]])  # one delivered twice
    _send(publisher, topic, [{"ts": samples[-1]["ts"], "axis1": "high"}])  # a bad sample
    thread.join(30)
    collector.wait(lambda: len(collector.answers()) >= len(samples) + 1)
    publisher.loop_stop()
    collector.close()
    answers = [a for a in collector.answers() if "error" not in a]
    assert [a["level"] for a in answers] == expected
    assert [a["seq"] for a in answers] == list(range(1, len(samples) + 1))
    errors = [a for a in collector.answers() if "error" in a]
    assert len(errors) == 1 and "axis1" in errors[0]["error"]
    summary = out["summary"]
    assert (summary.scored, summary.duplicates, summary.rejected) == (len(samples), 1, 1)
    assert summary.levels["error"] == expected.count("error")


def test_opslens_stream_with_mqtt_topic(broker: int, project: Path) -> None:
    p = load_predictor(project.parent / "runs", "axes").predictor
    samples, expected = fault_samples(p)
    for s in samples:
        del s["stream"]  # the topic names the stream
    topic, results = f"t/{uuid.uuid4().hex}/samples", f"t/{uuid.uuid4().hex}/levels"
    collector = Collector(results, broker)
    cli = Path(sys.executable).parent / "opslens"
    proc = subprocess.Popen(
        [
            str(cli),
            "stream",
            "axes",
            "-p",
            str(project),
            "--mqtt-topic",
            topic,
            "--result-topic",
            results,
            "--mqtt-port",
            str(broker),
            "--max-messages",
            str(len(samples)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        collector.wait(_ready(collector), timeout=60)
        publisher = _publisher(broker)
        _send(publisher, topic, samples)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    collector.wait(lambda: len(collector.answers()) >= len(samples))
    collector.close()
    publisher.loop_stop()
    assert proc.returncode == 0, err
    assert [a["level"] for a in collector.answers()] == expected
    assert {a["stream"] for a in collector.answers()} == {topic}
    assert f"{len(samples)} messages received: {len(samples)} scored" in err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    """Start (and restart) a Mosquitto on a free port; only the processes started here end."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not os.path.exists(binary):
        _service_missing("the mosquitto binary", FileNotFoundError(binary))
    port = _free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} {HOST}\nallow_anonymous true\n")
    started: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([binary, "-c", str(conf)], stderr=subprocess.DEVNULL)
        started.append(proc)
        end = time.monotonic() + 10
        while not _reachable(port) and time.monotonic() < end:
            time.sleep(0.05)
        proc.port = port  # type: ignore[attr-defined]
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(10)


def test_a_broker_that_goes_away_is_reconnected_and_nothing_is_scored_twice(
    own_broker: Callable[[], subprocess.Popen[bytes]], project: Path
) -> None:
    p = load_predictor(project.parent / "runs", "axes").predictor
    samples, expected = fault_samples(p)
    proc = own_broker()
    port = proc.port  # type: ignore[attr-defined]
    topic, results = "m/samples", "m/levels"
    collector = Collector(results, port)
    settings = MqttSettings(
        topic=topic, analysis="axes", result_topic=results, port=port, min_delay=1, max_delay=2
    )
    stream = MqttStream(p, settings, run_id="r")
    stream.start()
    stop = threading.Event()
    thread = threading.Thread(target=lambda: stream.run(stop=stop))
    thread.start()
    try:
        collector.wait(_ready(collector))
        half = len(samples) // 2
        publisher = _publisher(port)
        _send(publisher, topic, samples[:half])
        collector.wait(lambda: len(collector.answers()) >= half)
        publisher.loop_stop()
        proc.terminate()  # the broker goes away ...
        proc.wait(10)
        collector.wait(lambda: stream.summary.disconnects >= 1, timeout=10)
        own_broker()  # ... and comes back on the same port
        collector.wait(lambda: stream.summary.connects >= 2 and stream.ready.is_set())
        collector.wait(lambda: collector.subscribed.is_set() and len(_ready_count(collector)) >= 2)
        publisher = _publisher(port)
        # the samples around the outage again (a publisher retrying), then the rest
        _send(publisher, topic, samples[half - 3 : half] + samples[half:])
        collector.wait(lambda: len(collector.answers()) >= len(samples))
        publisher.loop_stop()
    finally:
        stop.set()
        thread.join(10)
        stream.stop()
        collector.close()
    assert stream.summary.disconnects >= 1 and stream.summary.connects >= 2
    assert [a["seq"] for a in collector.answers()] == list(range(1, len(samples) + 1))
    assert [a["level"] for a in collector.answers()] == expected
    assert stream.summary.duplicates == 3


def _ready_count(c: Collector) -> list[dict[str, Any]]:
    return [g for g in c.got if g.get("status") == "ready"]


def test_no_broker_is_a_one_line_source_error(project: Path) -> None:
    from opslens.errors import SourceError

    settings = MqttSettings(topic="t", analysis="axes", port=_free_port())
    with pytest.raises(
        SourceError, match=r"no MQTT broker answered at 127\.0\.0\.1:\d+ within 1 s"
    ):
        stream_mqtt(load_project(project), settings, connect_timeout=1.0)


def test_a_wildcard_result_topic_is_a_config_error() -> None:
    from opslens.errors import ConfigError

    with pytest.raises(ConfigError, match="has a wildcard"):
        MqttSettings(topic="a/#", analysis="axes", result_topic="b/#")
